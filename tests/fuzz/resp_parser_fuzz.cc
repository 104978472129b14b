// libFuzzer harness for the RESP2 parser (src/clients/resp/resp.h).
//
// Each input is parsed three ways: fed at once, fed in pseudo-random pieces (the split points
// come from a hash of the input, so a crash reproduces from the input file alone), and with
// tight limits so the limit paths run. Invariants checked on every input:
//   1. No crash, leak or undefined behaviour (ASan/UBSan).
//   2. Splitting does not change the outcome: same values in the same order, then the same
//      final state (the same protocol error, or waiting for more bytes).
//   3. Every parsed value re-encodes canonically: Encode(v) parses back to exactly v, and
//      encoding that again gives the same bytes. Canonical encodings are never longer than the
//      bytes they came from.
//   4. A failed parser stays failed with the same message; an unknown first byte yields the
//      exact `unsupported RESP prefix 'X'` message.
//   5. CommandArgs either fails on a value or returns one argument per element.
// Built by tests/fuzz/run-fuzzers.sh from this file and src/clients/resp/resp.cc only.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "clients/resp/resp.h"

namespace {

using cpamp::resp::Encode;
using cpamp::resp::Limits;
using cpamp::resp::Parser;
using cpamp::resp::ParseResult;
using cpamp::resp::Value;

#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "invariant failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

struct Outcome {
  std::vector<Value> values;
  std::string error;  // empty: the input ended waiting for more bytes
};

// Drains the parser; returns false once a protocol error ends the stream.
bool Drain(Parser& parser, Outcome* out) {
  while (true) {
    ParseResult r = parser.Next();
    if (r.need_more()) return true;
    if (r.is_error()) {
      FUZZ_CHECK(!r.error.empty());
      FUZZ_CHECK(parser.failed());
      out->error = r.error;
      // Sticky: the same error again, even after more input.
      parser.Feed("+OK\r\n");
      ParseResult again = parser.Next();
      FUZZ_CHECK(again.is_error() && again.error == r.error);
      return false;
    }
    FUZZ_CHECK(r.has_value());
    out->values.push_back(std::move(r.value));
  }
}

Outcome ParseWhole(std::string_view data, const Limits& limits) {
  Parser parser(limits);
  Outcome out;
  parser.Feed(data);
  if (Drain(parser, &out)) FUZZ_CHECK(out.error.empty());
  return out;
}

Outcome ParseSplit(std::string_view data, const Limits& limits, std::uint64_t seed) {
  Parser parser(limits);
  Outcome out;
  std::size_t off = 0;
  while (off < data.size()) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    // Mostly tiny pieces (1..8 bytes), sometimes larger ones.
    const std::size_t piece = (seed >> 60) < 12 ? 1 + ((seed >> 33) % 8) : 1 + ((seed >> 33) % 512);
    const std::size_t n = std::min(piece, data.size() - off);
    parser.Feed(data.substr(off, n));
    off += n;
    if (!Drain(parser, &out)) break;
  }
  return out;
}

std::uint64_t Fnv1a(std::string_view data) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : data) h = (h ^ c) * 1099511628211ULL;
  return h;
}

void CheckRoundTrip(const Value& v) {
  const std::string wire = Encode(v);
  Parser parser;
  parser.Feed(wire);
  ParseResult r = parser.Next();
  FUZZ_CHECK(r.has_value());
  FUZZ_CHECK(r.value == v);
  FUZZ_CHECK(parser.Next().need_more());
  FUZZ_CHECK(parser.buffered_bytes() == 0);
  FUZZ_CHECK(Encode(r.value) == wire);

  cpamp::Result<std::vector<std::string>> args = cpamp::resp::CommandArgs(v);
  if (args.ok()) FUZZ_CHECK(v.type == Value::Type::kArray && args->size() == v.elements.size());
  FUZZ_CHECK(!cpamp::resp::DebugString(v).empty());
}

bool SameOutcome(const Outcome& a, const Outcome& b) {
  return a.values == b.values && a.error == b.error;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  const Limits defaults;
  const Outcome whole = ParseWhole(input, defaults);
  FUZZ_CHECK(SameOutcome(whole, ParseSplit(input, defaults, Fnv1a(input))));

  std::size_t encoded = 0;
  for (const Value& v : whole.values) {
    CheckRoundTrip(v);
    encoded += Encode(v).size();
  }
  FUZZ_CHECK(encoded <= size);

  if (size > 0 && whole.values.empty()) {
    const char c = input[0];
    const bool known = c == '+' || c == '-' || c == ':' || c == '$' || c == '*';
    if (!known) FUZZ_CHECK(whole.error.rfind("unsupported RESP prefix '", 0) == 0);
  }

  // Tight limits: the limit paths must fail cleanly and stay split-independent (the buffer
  // limit is large enough for every fuzz input, so it is not the one that trips).
  Limits tight;
  tight.max_bulk_length = 64;
  tight.max_array_elements = 4;
  tight.max_nesting_depth = 3;
  tight.max_line_length = 24;
  tight.max_total_elements = 12;
  tight.max_value_bytes = 256;
  tight.max_buffered_bytes = std::size_t{1} << 20;
  const Outcome tight_whole = ParseWhole(input, tight);
  FUZZ_CHECK(SameOutcome(tight_whole, ParseSplit(input, tight, Fnv1a(input) ^ 0x5bd1e995)));
  for (const Value& v : tight_whole.values) CheckRoundTrip(v);

  // A tiny buffer limit trips on undrained input; it must only ever fail cleanly.
  Limits small_buffer = tight;
  small_buffer.max_buffered_bytes = 128;
  (void)ParseSplit(input, small_buffer, Fnv1a(input) + 1);
  return 0;
}
