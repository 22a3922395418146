// The ledgers one vellumd serves. Each ledger NAME lives in
// DATA_DIR/ledgers/DIRNAME, a LedgerDb directory, where DIRNAME is NAME with
// every '/' written as '~' ('~' is not allowed in ledger names, so the
// mapping is one to one). The ledger's own metadata holds its real name.
//
// Creating a ledger writes its genesis block (a "sys/ledger" map holding the
// name), so a new ledger already has a signed digest and proofs work at once.
//
// Thread-safety: all methods are thread-safe; LedgerDb pointers stay valid
// until the registry is destroyed.
#ifndef VELLUM_API_SERVER_REGISTRY_H_
#define VELLUM_API_SERVER_REGISTRY_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "vellum/api/ledger_db.h"
#include "vellum/base/status.h"

namespace vellum::api::server {

struct RegistryOptions {
  std::string data_dir = "./vellum-data";
  LedgerDbOptions db;
  size_t max_ledgers = 1000;
};

class LedgerRegistry {
 public:
  // Creates DATA_DIR if needed and opens every ledger in it (each verifies
  // its journal tip and brings its views up to date). Errors name the ledger.
  static Result<std::unique_ptr<LedgerRegistry>> Open(const RegistryOptions& options);
  // Closes every ledger: queued transactions are committed first.
  ~LedgerRegistry();

  // NotFound naming the ledger.
  Result<LedgerDb*> Get(std::string_view name) const;
  // InvalidArgument (name), AlreadyExists, ResourceExhausted (max_ledgers).
  Result<LedgerDb*> Create(std::string_view name);
  std::vector<std::string> Names() const;

  const std::string& data_dir() const { return options_.data_dir; }

 private:
  explicit LedgerRegistry(RegistryOptions options) : options_(std::move(options)) {}
  std::string DirOf(std::string_view name) const;

  RegistryOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<LedgerDb>, std::less<>> ledgers_;
};

}  // namespace vellum::api::server

#endif  // VELLUM_API_SERVER_REGISTRY_H_
