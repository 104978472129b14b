// cpa-sim entry point: flags (CLI11) -> SimOptions -> Simulator; prints the one
// "cpa-sim listening on <host>:<port>" line tests wait for, then runs until SIGINT/SIGTERM.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "sim.h"

int main(int argc, char** argv) {
  cpamp::sim::SimOptions opt;
  std::string listen = "127.0.0.1:0";
  std::string emulate;
  CLI::App app{"cpa-sim: CLIProxyAPI simulator (RESP + HTTP on one port)"};
  app.add_option("--listen", listen, "host:port to listen on (port 0 = any free port)");
  app.add_option("--management-key", opt.management_key, "management key (AUTH / Bearer)");
  app.add_flag("--allow-remote", opt.allow_remote, "accept management auth from non-loopback");
  app.add_flag("--usage-enabled", opt.usage_enabled, "start with usage-statistics-enabled=true");
  app.add_option("--retention-seconds", opt.retention_seconds,
                 "redis-usage-queue-retention-seconds (<=0 -> 60, max 3600)");
  app.add_option("--rate", opt.rate, "generated records per second (0 = none)");
  app.add_option("--count", opt.count, "stop generating after N records (0 = unlimited)");
  app.add_flag("--paced", opt.paced,
               "never overfill a usage subscriber: a slow consumer slows the generator instead "
               "of being dropped (CPA does not do this)");
  app.add_option("--seed", opt.seed, "random seed for record content");
  app.add_option("--preload", opt.preload, "records queued at start (never expire)");
  app.add_option("--emulate", emulate,
                 "older CPA behaviours, comma separated: no-subscribe, no-support-refresh, "
                 "no-http-queue, legacy-fields, resp-disabled, home-mode");
  app.add_option("--version-header", opt.version, "X-CPA-VERSION value");
  app.add_option("--logs-bytes", opt.logs_bytes, "approximate size of GET /logs");
  CLI11_PARSE(app, argc, argv);

  const std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    std::cerr << "cpa-sim: --listen must be host:port\n";
    return 2;
  }
  opt.host = listen.substr(0, colon);
  if (opt.host.size() >= 2 && opt.host.front() == '[' && opt.host.back() == ']') {
    opt.host = opt.host.substr(1, opt.host.size() - 2);
  }
  try {
    const int port = std::stoi(listen.substr(colon + 1));
    if (port < 0 || port > 65535) throw std::out_of_range("port");
    opt.port = static_cast<std::uint16_t>(port);
  } catch (const std::exception&) {
    std::cerr << "cpa-sim: invalid port in --listen\n";
    return 2;
  }
  auto emulation = cpamp::sim::ParseEmulation(emulate);
  if (!emulation.ok()) {
    std::cerr << "cpa-sim: " << emulation.status().message() << "\n";
    return 2;
  }
  opt.emulation = *emulation;
  opt.handle_signals = true;

  cpamp::sim::Simulator sim(opt);
  if (auto st = sim.Start(); !st.ok()) {
    std::cerr << "cpa-sim: " << st.message() << "\n";
    return 1;
  }
  std::printf("cpa-sim listening on %s:%u\n", opt.host.c_str(), static_cast<unsigned>(sim.port()));
  std::fflush(stdout);
  sim.Wait();
  return 0;
}
