// Process wiring: configuration → lock → data key → database → bootstrap → HTTP server →
// collector, and the reverse on shutdown. The only place that knows every context.
#pragma once

#include <string>

namespace cpamp::app {

inline constexpr const char* kVersion = "0.1.0";

// Runs the Manager Server until SIGINT/SIGTERM. Returns the process exit code; start-up
// failures are logged as one clear line.
int Serve();

}  // namespace cpamp::app
