// vellumd's gRPC services (api/proto/vellum/v1/vellum.proto) over a
// LedgerRegistry. Unary calls use gRPC's callback API: queries run inline,
// Execute/Commit hand the transaction to the journal and finish from its
// acknowledgement, so no thread waits on a commit. WatchJournal is a
// synchronous streaming handler, one thread per stream, bounded.
//
// Every call is authorized first (auth.h); refused calls are logged with the
// peer, the method and the reason.
//
// Thread-safety: thread-safe; Shutdown() before destroying.
#ifndef VELLUM_API_SERVER_SERVICE_H_
#define VELLUM_API_SERVER_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <memory>

#include <spdlog/logger.h>

#include "auth.h"
#include "registry.h"

namespace vellum::api::server {

struct ServiceOptions {
  AuthConfig auth;
  size_t max_watch_streams = 64;
  size_t max_sessions = 10000;
  std::chrono::seconds session_idle_timeout{60};
  std::shared_ptr<spdlog::logger> logger;  // required
};

class Services {
 public:
  Services(LedgerRegistry* registry, ServiceOptions options);
  ~Services();
  Services(const Services&) = delete;
  Services& operator=(const Services&) = delete;

  // Adds every service to `builder` (call once, before BuildAndStart).
  void Register(grpc::ServerBuilder& builder);
  // Ends watch streams; call before grpc::Server::Shutdown returns.
  void Shutdown();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace vellum::api::server

#endif  // VELLUM_API_SERVER_SERVICE_H_
