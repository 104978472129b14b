// cpa-sim: a CLIProxyAPI (CPA) simulator for tests, benchmarks and the demo.
//
// One TCP port serves RESP and HTTP, routed by the first byte like CPA
// (spec/cpa-protocol.md §2.1): the RESP usage queue and Pub/Sub (§2), the HTTP usage queue
// (§3), the management API essentials (§4), `GET /v1/models`, and an unauthenticated,
// loopback-only control API under `/_sim/` (see README.md). Records come from
// RecordGenerator (records.h) at a chosen rate.
//
// Threading: Start() runs everything on one internal I/O thread; Stop() (or a signal when
// `handle_signals` is set) ends it and joins. port() may be read from any thread after
// Start(). A Simulator is not copyable.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace cpamp::sim {

// Older-CPA behaviours (--emulate, comma separated).
struct Emulation {
  bool no_subscribe = false;        // < v7.0.7: SUBSCRIBE is an unknown command
  bool no_support_refresh = false;  // < v7.1.39: no {"support_refresh":true} first message
  bool no_http_queue = false;       // < v6.10.8: GET /v0/management/usage-queue is a 404
  bool legacy_fields = false;       // v6.10.8 record shape (§1.5)
  bool resp_disabled = false;       // v7.1.17: "-ERR RESP AUTH disabled; use mTLS" and close
  bool home_mode = false;           // Home mode: RESP refusal line, management 404 (empty)
};

// Parses "no-subscribe,legacy-fields,..." ("" = none). Unknown names are a kBadRequest error.
Result<Emulation> ParseEmulation(std::string_view csv);

struct SimOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0 = any free port
  std::string management_key = "sim-management-key";
  bool allow_remote = false;   // remote-management.allow-remote
  bool usage_enabled = false;  // usage-statistics-enabled at start (CPA default: false)
  int retention_seconds = 60;  // redis-usage-queue-retention-seconds (CPA clamps to 1..3600)
  double rate = 0;             // generated records per second; 0 = none
  std::uint64_t count = 0;     // stop generating after this many records; 0 = unlimited
  bool paced = false;          // never overfill a usage subscriber (a slow consumer slows
                               // the generator); false = publish at `rate` like CPA
  std::uint64_t seed = 1;
  std::uint64_t preload = 0;  // records queued at start (lazily materialised, never expire)
  Emulation emulation;
  std::string version = "7.2.140";  // X-CPA-VERSION
  std::string commit = "a7e3596";
  std::string build_date = "2026-08-01T00:00:00Z";
  bool support_plugin = true;
  std::size_t logs_bytes = std::size_t{4} << 20;  // approximate size of GET /logs
  bool handle_signals = false;                    // stop on SIGINT/SIGTERM
};

class Simulator {
 public:
  explicit Simulator(SimOptions options);
  ~Simulator();  // Stop()s
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  // Binds the listener and starts the I/O thread. Errors: bind/listen failures.
  Status Start();
  std::uint16_t port() const;
  // Blocks until the simulator stops (Stop() from another thread or a handled signal).
  void Wait();
  // Stops accepting, closes every connection, joins the I/O thread. Idempotent.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cpamp::sim
