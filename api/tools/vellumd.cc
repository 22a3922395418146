// vellumd: the Vellum server. Serves every ledger under --data over gRPC
// (api/proto/vellum/v1/vellum.proto) with the standard health service and
// server reflection.
//
//   vellumd [--listen 127.0.0.1:7410] [--data ./vellum-data] [--config FILE]
//           [--auth TOKENS.json] [--tls-cert CERT --tls-key KEY [--tls-client-ca CA]]
//           [group-commit and limit flags, see --help]
//
// Every flag can also come from a TOML/INI config file (--config), e.g.
//   listen = "0.0.0.0:7410"
//   auth = "/etc/vellum/tokens.json"
//
// Without credentials (no --auth tokens and no client-certificate CA) the
// server refuses any listen address but loopback. It prints one line
// "vellumd: listening on HOST:PORT ..." on stdout once it serves (with
// --listen HOST:0 the kernel picks the port and the line names it).
//
// SIGTERM/SIGINT: stop accepting calls, finish the ones in flight (up to
// --shutdown-grace), then close every ledger, which commits everything
// already queued. A transaction is acknowledged only once durable, so none
// is lost.
//
// Exit codes: 0 after a clean shutdown, 2 bad flags or configuration,
// 1 could not start (data directory, port) or failed at runtime.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "../src/server/auth.h"
#include "../src/server/registry.h"
#include "../src/server/service.h"
#include "vellum/indexes/view_store.h"

namespace {

using vellum::Result;
using vellum::Status;
namespace server = vellum::api::server;

struct Flags {
  std::string listen = "127.0.0.1:7410";
  std::string data = "./vellum-data";
  std::string auth_file;
  std::string tls_cert, tls_key, tls_client_ca;
  std::string log_level = "info";
  // Group commit and back-pressure.
  size_t max_block_transactions = 8192;
  size_t max_block_mib = 16;
  size_t queue_capacity = 65536;
  int queue_wait_ms = 100;
  // Views: memory held for speed, per ledger.
  std::uint64_t flush_every_pages = vellum::indexes::LmdbViewStoreOptions{}.flush_every_pages;
  std::uint64_t flush_every_mib = vellum::indexes::LmdbViewStoreOptions{}.flush_every_bytes >> 20;
  size_t page_cache_pages = vellum::indexes::LmdbViewStoreOptions{}.page_cache_entries;
  // Limits.
  int max_message_mib = 64;
  size_t max_transaction_mib = 4;
  size_t max_ledgers = 1000;
  size_t max_sessions = 10000;
  int session_timeout_s = 60;
  size_t max_watch_streams = 64;
  int max_concurrent_streams = 1024;
  int shutdown_grace_s = 10;
};

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return vellum::NotFound("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool IsLoopback(const std::string& address) {
  std::string host = address.substr(0, address.rfind(':'));
  if (host.rfind("ipv4:", 0) == 0) host = host.substr(5);
  if (host.rfind("ipv6:", 0) == 0) host = host.substr(5);
  return host == "localhost" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

std::shared_ptr<grpc::ServerCredentials> Credentials(const Flags& flags, Status& error) {
  if (flags.tls_cert.empty() && flags.tls_key.empty()) {
    if (!flags.tls_client_ca.empty()) error = vellum::InvalidArgument("--tls-client-ca needs --tls-cert and --tls-key");
    return grpc::InsecureServerCredentials();
  }
  if (flags.tls_cert.empty() || flags.tls_key.empty()) {
    error = vellum::InvalidArgument("TLS needs both --tls-cert and --tls-key");
    return nullptr;
  }
  auto cert = ReadFile(flags.tls_cert);
  auto key = ReadFile(flags.tls_key);
  if (!cert.ok() || !key.ok()) {
    error = !cert.ok() ? cert.status() : key.status();
    return nullptr;
  }
  grpc::SslServerCredentialsOptions options;
  options.pem_key_cert_pairs.push_back({*key, *cert});
  if (!flags.tls_client_ca.empty()) {
    auto ca = ReadFile(flags.tls_client_ca);
    if (!ca.ok()) {
      error = ca.status();
      return nullptr;
    }
    options.pem_root_certs = *ca;
    options.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

int Run(const Flags& flags, const std::shared_ptr<spdlog::logger>& log) {
  server::ServiceOptions service_options;
  service_options.logger = log;
  service_options.max_sessions = flags.max_sessions;
  service_options.max_watch_streams = flags.max_watch_streams;
  service_options.session_idle_timeout = std::chrono::seconds(flags.session_timeout_s);
  if (!flags.auth_file.empty()) {
    auto text = ReadFile(flags.auth_file);
    if (!text.ok()) {
      log->critical("auth file: {}", text.status().message());
      return 2;
    }
    auto auth = server::ParseAuthConfig(*text);
    if (!auth.ok()) {
      log->critical("auth file {}: {}", flags.auth_file, auth.status().message());
      return 2;
    }
    service_options.auth = std::move(auth).value();
  }
  const bool has_credentials = service_options.auth.enabled() || !flags.tls_client_ca.empty();
  if (!has_credentials && !IsLoopback(flags.listen)) {
    log->critical(
        "refusing to listen on {} without credentials: configure --auth (bearer tokens) or --tls-client-ca, "
        "or listen on 127.0.0.1",
        flags.listen);
    return 2;
  }
  if (service_options.auth.enabled() && flags.tls_cert.empty() && !IsLoopback(flags.listen)) {
    log->warn("bearer tokens will cross the network in clear text: configure --tls-cert/--tls-key");
  }
  Status tls_error;
  auto credentials = Credentials(flags, tls_error);
  if (credentials == nullptr || !tls_error.ok()) {
    log->critical("TLS: {}", tls_error.message());
    return 2;
  }

  server::RegistryOptions registry_options;
  registry_options.data_dir = flags.data;
  registry_options.max_ledgers = flags.max_ledgers;
  auto& journal = registry_options.db.journal;
  journal.max_block_transactions = flags.max_block_transactions;
  journal.max_block_bytes = flags.max_block_mib << 20;
  journal.queue_capacity = flags.queue_capacity;
  journal.enqueue_timeout = std::chrono::milliseconds(flags.queue_wait_ms);
  journal.max_transaction_bytes = flags.max_transaction_mib << 20;
  registry_options.db.view_store.flush_every_pages = flags.flush_every_pages;
  registry_options.db.view_store.flush_every_bytes = flags.flush_every_mib << 20;
  registry_options.db.view_store.page_cache_entries = flags.page_cache_pages;
  auto registry = server::LedgerRegistry::Open(registry_options);
  if (!registry.ok()) {
    log->critical("data directory {}: {}", flags.data, registry.status().ToString());
    return 1;
  }
  for (const std::string& name : (*registry)->Names()) {
    auto db = (*registry)->Get(name);
    if (db.ok()) log->info("opened ledger='{}' blocks={}", name, (*db)->journal().size());
  }

  server::Services services(registry->get(), service_options);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(flags.listen, credentials, &port);
  builder.SetMaxReceiveMessageSize(flags.max_message_mib << 20);
  builder.SetMaxSendMessageSize(256 << 20);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, flags.max_concurrent_streams);
  // Sync streams (WatchJournal) get a bounded thread pool.
  grpc::ResourceQuota quota("vellumd");
  quota.SetMaxThreads(static_cast<int>(flags.max_watch_streams) + 16);
  builder.SetResourceQuota(quota);
  services.Register(builder);
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  if (grpc_server == nullptr || port == 0) {
    log->critical("cannot listen on {}", flags.listen);
    return 1;
  }
  const std::string host = flags.listen.substr(0, flags.listen.rfind(':'));
  const std::string bound = host + ":" + std::to_string(port);
  const std::string security = std::string(flags.tls_cert.empty() ? "plaintext" : "TLS") +
                               (service_options.auth.enabled() ? ", bearer tokens" : ", no auth: loopback only");
  std::cout << "vellumd: listening on " << bound << " (" << security << "; data " << flags.data << ", "
            << (*registry)->Names().size() << " ledgers)" << std::endl;
  log->info("listening address={} security=\"{}\" data={}", bound, security, flags.data);

  // Signals are blocked in every thread (see main); this one waits for them.
  std::thread waiter([&] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int sig = 0;
    sigwait(&set, &sig);
    log->info("signal={} shutting down: finishing calls in flight (grace {}s)", sig, flags.shutdown_grace_s);
    grpc_server->GetHealthCheckService()->Shutdown();
    services.Shutdown();
    grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(flags.shutdown_grace_s));
  });
  grpc_server->Wait();
  waiter.join();
  grpc_server.reset();
  log->info("calls finished; closing ledgers");
  registry->reset();  // commits whatever is queued, then closes each ledger
  log->info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vellumd: the Vellum verifiable ledger server"};
  Flags flags;
  app.set_config("--config", "", "TOML/INI file with any of these flags");
  app.add_option("--listen", flags.listen, "address to serve on (HOST:PORT; port 0 picks a free one)")
      ->capture_default_str();
  app.add_option("--data", flags.data, "data directory (one subdirectory per ledger)")->capture_default_str();
  app.add_option("--auth", flags.auth_file, "bearer tokens and per-ledger roles (JSON, see README)")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-cert", flags.tls_cert, "server certificate chain (PEM)")->check(CLI::ExistingFile);
  app.add_option("--tls-key", flags.tls_key, "server private key (PEM)")->check(CLI::ExistingFile);
  app.add_option("--tls-client-ca", flags.tls_client_ca, "require client certificates signed by this CA (PEM)")
      ->check(CLI::ExistingFile);
  app.add_option("--log-level", flags.log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  auto* group = app.add_option_group("group commit", "how transactions are batched into blocks");
  group->add_option("--max-block-transactions", flags.max_block_transactions, "transactions per block at most")
      ->check(CLI::Range(size_t{1}, size_t{1} << 20))
      ->capture_default_str();
  group->add_option("--max-block-mib", flags.max_block_mib, "block size at most (MiB)")
      ->check(CLI::Range(size_t{1}, size_t{256}))
      ->capture_default_str();
  group->add_option("--queue-capacity", flags.queue_capacity, "transactions waiting for a block, per ledger")
      ->check(CLI::Range(size_t{1}, size_t{1} << 24))
      ->capture_default_str();
  group->add_option("--queue-wait-ms", flags.queue_wait_ms, "how long a write waits for queue space before RESOURCE_EXHAUSTED")
      ->check(CLI::Range(0, 60000))
      ->capture_default_str();
  auto* views = app.add_option_group("views", "memory each ledger's views hold for speed");
  views->add_option("--flush-every-pages", flags.flush_every_pages,
                    "new map pages (~3.3 KB each) held before a background flush writes them; more rewrites fewer")
      ->check(CLI::Range(std::uint64_t{1024}, std::uint64_t{1} << 24))
      ->capture_default_str();
  views->add_option("--flush-every-mib", flags.flush_every_mib,
                    "unflushed pages and values (MiB) that start a background flush, whatever the page count")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 20))
      ->capture_default_str();
  views->add_option("--page-cache-pages", flags.page_cache_pages, "flushed map pages kept decoded in memory (0: none)")
      ->capture_default_str();
  auto* limits = app.add_option_group("limits");
  limits->add_option("--max-message-mib", flags.max_message_mib, "largest request (MiB)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  limits->add_option("--max-transaction-mib", flags.max_transaction_mib, "largest encoded transaction (MiB)")
      ->check(CLI::Range(size_t{1}, size_t{64}))
      ->capture_default_str();
  limits->add_option("--max-ledgers", flags.max_ledgers)->check(CLI::Range(size_t{1}, size_t{100000}))->capture_default_str();
  limits->add_option("--max-sessions", flags.max_sessions, "open interactive transactions")
      ->check(CLI::Range(size_t{1}, size_t{1} << 20))
      ->capture_default_str();
  limits->add_option("--session-timeout", flags.session_timeout_s, "idle seconds before a session expires")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  limits->add_option("--max-watch-streams", flags.max_watch_streams, "concurrent WatchJournal streams")
      ->check(CLI::Range(size_t{1}, size_t{4096}))
      ->capture_default_str();
  limits->add_option("--max-concurrent-streams", flags.max_concurrent_streams, "concurrent calls per connection")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  limits->add_option("--shutdown-grace", flags.shutdown_grace_s, "seconds calls in flight get at shutdown")
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }

  // Structured logs on stderr: key=value pairs after the level.
  auto log = std::make_shared<spdlog::logger>("vellumd", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  log->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ level=%l %v", spdlog::pattern_time_type::utc);
  log->set_level(spdlog::level::from_str(flags.log_level));
  log->flush_on(spdlog::level::info);

  // Block the shutdown signals before any thread starts, so only the waiter
  // thread in Run receives them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return Run(flags, log);
}
