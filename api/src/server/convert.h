// Conversions between the wire messages (vellum.v1) and Vellum's own types.
// Only this file and service.cc know the generated protobuf types.
#ifndef VELLUM_API_SERVER_CONVERT_H_
#define VELLUM_API_SERVER_CONVERT_H_

#include <grpcpp/support/status.h>

#include <google/protobuf/repeated_field.h>

#include "vellum/base/status.h"
#include "vellum/journal/format.h"
#include "vellum/journal/ledger.h"
#include "vellum/v1/vellum.pb.h"

namespace vellum::api::server {

grpc::Status ToGrpc(const Status& status);

// The journal operation of a wire operation, encoded by its engine.
// InvalidArgument naming the operation index for an empty oneof or a body
// the engine refuses (key/value sizes, JSON that is not an object...).
Result<journal::Transaction> ToTransaction(const google::protobuf::RepeatedPtrField<v1::Operation>& ops,
                                           const std::string& token);

void ToReceipt(const journal::Receipt& receipt, v1::Receipt* out);

}  // namespace vellum::api::server

#endif  // VELLUM_API_SERVER_CONVERT_H_
