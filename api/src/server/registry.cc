#include "registry.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "vellum/indexes/map_ops.h"

namespace vellum::api::server {

namespace fs = std::filesystem;

std::string LedgerRegistry::DirOf(std::string_view name) const {
  std::string dir(name);
  std::replace(dir.begin(), dir.end(), '/', '~');
  return (fs::path(options_.data_dir) / "ledgers" / dir).string();
}

Result<std::unique_ptr<LedgerRegistry>> LedgerRegistry::Open(const RegistryOptions& options) {
  std::unique_ptr<LedgerRegistry> registry(new LedgerRegistry(options));
  const fs::path root = fs::path(options.data_dir) / "ledgers";
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return Unavailable("cannot create data directory " + root.string() + ": " + ec.message());
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (entry.is_directory()) dirs.push_back(entry.path());
  }
  if (ec) return Unavailable("cannot list " + root.string() + ": " + ec.message());
  std::sort(dirs.begin(), dirs.end());
  for (const auto& dir : dirs) {
    auto db = LedgerDb::Open(dir.string(), options.db);
    if (!db.ok()) return db.status().WithContext("opening ledger in " + dir.string());
    const std::string name = (*db)->journal().meta().name;
    if (registry->DirOf(name) != dir.string()) {
      return FailedPrecondition("directory " + dir.string() + " holds ledger '" + name + "', expected in " +
                                registry->DirOf(name));
    }
    registry->ledgers_.emplace(name, std::move(db).value());
  }
  return registry;
}

LedgerRegistry::~LedgerRegistry() {
  std::lock_guard lock(mu_);
  ledgers_.clear();
}

Result<LedgerDb*> LedgerRegistry::Get(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = ledgers_.find(name);
  if (it == ledgers_.end()) return NotFound("ledger '" + std::string(name) + "' does not exist");
  return it->second.get();
}

Result<LedgerDb*> LedgerRegistry::Create(std::string_view name) {
  VELLUM_RETURN_IF_ERROR(journal::ValidateLedgerName(name));
  std::lock_guard lock(mu_);
  if (ledgers_.count(name) != 0) return AlreadyExists("ledger '" + std::string(name) + "' already exists");
  if (ledgers_.size() >= options_.max_ledgers) {
    return ResourceExhausted("this server holds its maximum of " + std::to_string(options_.max_ledgers) + " ledgers");
  }
  const std::string dir = DirOf(name);
  if (fs::exists(dir)) return AlreadyExists("directory " + dir + " already exists");
  VELLUM_ASSIGN_OR_RETURN(std::unique_ptr<LedgerDb> db, LedgerDb::Create(dir, name, options_.db));
  // Genesis: the ledger's name in its own state, so block 0 exists.
  indexes::MapOp op{{"sys", "ledger", ""},
                    indexes::MapSpec{merkle::MapKind::kPlain, merkle::kZeroHash},
                    indexes::MapMutation::Put("name", std::string(name))};
  journal::Transaction genesis;
  genesis.operations.push_back({indexes::MapOpKind(op), indexes::EncodeMapOp(op)});
  VELLUM_RETURN_IF_ERROR(db->Execute(std::move(genesis)).status().WithContext("writing the genesis block"));
  VELLUM_RETURN_IF_ERROR(db->journal().Checkpoint().status());
  LedgerDb* out = db.get();
  ledgers_.emplace(std::string(name), std::move(db));
  return out;
}

std::vector<std::string> LedgerRegistry::Names() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> names;
  for (const auto& [name, db] : ledgers_) names.push_back(name);
  return names;
}

}  // namespace vellum::api::server
