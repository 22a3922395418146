#include "convert.h"

#include "vellum/engines/document/doc_ops.h"
#include "vellum/engines/kv/kv_ops.h"
#include "vellum/merkle/hasher.h"

namespace vellum::api::server {
namespace {

namespace kv = engines::kv;
namespace doc = engines::document;

journal::Operation KvOperation(kv::KvOp op) { return {kv::KvOpKind(op), kv::EncodeKvOp(op)}; }
journal::Operation ZsetOperation(kv::ZsetOp op) { return {kv::ZsetOpKind(op), kv::EncodeZsetOp(op)}; }

Result<journal::Operation> DocOperation(doc::DocOp op) {
  VELLUM_ASSIGN_OR_RETURN(std::string body, doc::EncodeDocOp(op));
  return journal::Operation{doc::DocOpKind(op), std::move(body)};
}

Result<journal::Operation> ToOperation(const v1::Operation& op) {
  switch (op.op_case()) {
    case v1::Operation::kKvPut: {
      const auto& m = op.kv_put();
      return KvOperation({kv::KvOp::Type::kPut, m.namespace_(), m.key(), m.value(), std::nullopt});
    }
    case v1::Operation::kKvDelete: {
      const auto& m = op.kv_delete();
      return KvOperation({kv::KvOp::Type::kDelete, m.namespace_(), m.key(), std::nullopt, std::nullopt});
    }
    case v1::Operation::kKvCompareAndSet: {
      const auto& m = op.kv_compare_and_set();
      return KvOperation({kv::KvOp::Type::kCompareAndSet, m.namespace_(), m.key(),
                          m.has_value() ? std::optional<std::string>(m.value()) : std::nullopt,
                          m.has_expected() ? std::optional<std::string>(m.expected()) : std::nullopt});
    }
    case v1::Operation::kKvAssert: {
      const auto& m = op.kv_assert();
      return KvOperation({kv::KvOp::Type::kAssert, m.namespace_(), m.key(), std::nullopt,
                          m.has_expected() ? std::optional<std::string>(m.expected()) : std::nullopt});
    }
    case v1::Operation::kZsetAdd: {
      const auto& m = op.zset_add();
      kv::ZsetOp z;
      z.type = kv::ZsetOp::Type::kAdd;
      z.ns = m.namespace_();
      z.set = m.set();
      z.member = m.member();
      z.score = m.score();
      return ZsetOperation(std::move(z));
    }
    case v1::Operation::kZsetIncrement: {
      const auto& m = op.zset_increment();
      kv::ZsetOp z;
      z.type = kv::ZsetOp::Type::kIncrement;
      z.ns = m.namespace_();
      z.set = m.set();
      z.member = m.member();
      z.score = m.delta();
      return ZsetOperation(std::move(z));
    }
    case v1::Operation::kZsetRemove: {
      const auto& m = op.zset_remove();
      kv::ZsetOp z;
      z.type = kv::ZsetOp::Type::kRemove;
      z.ns = m.namespace_();
      z.set = m.set();
      z.member = m.member();
      return ZsetOperation(std::move(z));
    }
    case v1::Operation::kDocInsert: {
      const auto& m = op.doc_insert();
      doc::DocOp d;
      d.type = doc::DocOp::Type::kInsert;
      d.collection = m.collection();
      d.id = m.id();
      d.json = m.json();
      return DocOperation(std::move(d));
    }
    case v1::Operation::kDocReplace: {
      const auto& m = op.doc_replace();
      doc::DocOp d;
      d.type = doc::DocOp::Type::kReplace;
      d.collection = m.collection();
      d.id = m.id();
      d.json = m.json();
      if (m.has_expected_version()) d.expected_version = m.expected_version();
      return DocOperation(std::move(d));
    }
    case v1::Operation::kDocDelete: {
      const auto& m = op.doc_delete();
      doc::DocOp d;
      d.type = doc::DocOp::Type::kDelete;
      d.collection = m.collection();
      d.id = m.id();
      if (m.has_expected_version()) d.expected_version = m.expected_version();
      return DocOperation(std::move(d));
    }
    case v1::Operation::kDocCreateIndex: {
      doc::DocOp d;
      d.type = doc::DocOp::Type::kCreateIndex;
      d.collection = op.doc_create_index().collection();
      d.path = op.doc_create_index().path();
      return DocOperation(std::move(d));
    }
    case v1::Operation::kDocSetValidator: {
      doc::DocOp d;
      d.type = doc::DocOp::Type::kSetValidator;
      d.collection = op.doc_set_validator().collection();
      d.json = op.doc_set_validator().schema();
      return DocOperation(std::move(d));
    }
    case v1::Operation::kDocAssert: {
      const auto& m = op.doc_assert();
      doc::DocOp d;
      d.type = doc::DocOp::Type::kAssert;
      d.collection = m.collection();
      d.id = m.id();
      if (m.has_expected_version()) d.expected_version = m.expected_version();
      return DocOperation(std::move(d));
    }
    case v1::Operation::OP_NOT_SET:
      break;
  }
  return InvalidArgument("operation has no kind set");
}

}  // namespace

grpc::Status ToGrpc(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return {static_cast<grpc::StatusCode>(status.code()), status.message()};
}

Result<journal::Transaction> ToTransaction(const google::protobuf::RepeatedPtrField<v1::Operation>& ops,
                                           const std::string& token) {
  if (ops.empty()) return InvalidArgument("a transaction needs at least one operation");
  if (static_cast<size_t>(ops.size()) > journal::kMaxOperationsPerTransaction) {
    return InvalidArgument("a transaction holds at most " + std::to_string(journal::kMaxOperationsPerTransaction) +
                           " operations; got " + std::to_string(ops.size()));
  }
  if (token.size() > journal::kMaxClientTokenSize) {
    return InvalidArgument("idempotency token longer than " + std::to_string(journal::kMaxClientTokenSize) + " bytes");
  }
  journal::Transaction tx;
  tx.client_token = token;
  tx.operations.reserve(static_cast<size_t>(ops.size()));
  for (int i = 0; i < ops.size(); ++i) {
    auto op = ToOperation(ops[i]);
    if (!op.ok()) return op.status().WithContext("operation " + std::to_string(i));
    tx.operations.push_back(std::move(op).value());
  }
  return tx;
}

void ToReceipt(const journal::Receipt& receipt, v1::Receipt* out) {
  out->set_tx_seq(receipt.tx_seq);
  out->set_block_height(receipt.block_height);
  out->set_index_in_block(receipt.index_in_block);
  out->set_tx_hash(std::string(merkle::HashView(receipt.tx_hash)));
  out->set_block_hash(std::string(merkle::HashView(receipt.block_hash)));
}

}  // namespace vellum::api::server
