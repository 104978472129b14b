// Logging: spdlog to stderr, with a last line of defence against leaking secrets.
//
// Every secret the process learns (admin key, CPA management key, data key) is registered with
// RegisterSecret(); the sink replaces any registered value by "[REDACTED]" before writing.
// Code must still never log secrets on purpose — this only catches mistakes.
#pragma once

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

namespace cpamp {

// Installs the process-wide logger (stderr, "YYYY/MM/DD HH:MM:SS message" lines).
void InitLogging(bool verbose = false);
// Adds a value that must never be written to any log. Values shorter than 6 bytes are ignored
// (they would redact ordinary words).
void RegisterSecret(std::string_view secret);
// Applies the redaction to a string (exposed for tests and for texts leaving the process).
std::string RedactSecrets(std::string_view text);

}  // namespace cpamp
