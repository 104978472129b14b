// RESP2 codec: the strict, bounded subset of the Redis serialization protocol that CPA speaks
// on its API port (spec/cpa-protocol.md §2). Pure bytes in, values out; no sockets here.
//
// Used on both sides: the collector encodes commands and parses replies; the CPA simulator
// parses commands and encodes replies. Supported types are the five RESP2 prefixes CPA routes
// to its RESP handler (`+ - : $ *`) including the null bulk `$-1` and null array `*-1`.
// Inline commands, RESP3 types and bare-LF line endings are rejected.
//
// Threading: every function here is pure; a Parser is a plain value owned by one connection
// and must not be used from two threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace cpamp::resp {

// One RESP2 value. `str` holds the payload of simple strings, errors and bulk strings;
// `integer` that of integers; `elements` the children of an array. Other fields stay empty.
struct Value {
  enum class Type : std::uint8_t {
    kSimpleString,  // +OK
    kError,         // -ERR message
    kInteger,       // :42
    kBulkString,    // $5 hello
    kNullBulk,      // $-1
    kArray,         // *n ...
    kNullArray,     // *-1
  };

  Type type = Type::kNullBulk;
  std::string str;
  std::int64_t integer = 0;
  std::vector<Value> elements;

  static Value SimpleString(std::string_view s);
  static Value ErrorReply(std::string_view message);
  static Value Integer(std::int64_t n);
  static Value Bulk(std::string_view bytes);
  static Value NullBulk();
  static Value Array(std::vector<Value> elements);
  static Value NullArray();

  bool IsNull() const { return type == Type::kNullBulk || type == Type::kNullArray; }
  bool operator==(const Value& other) const;
};

// Short human description for logs and test failures, e.g. `bulk(5)"hello"` or
// `array[2]{...}`. Long payloads are truncated; control bytes are escaped.
std::string DebugString(const Value& value);
std::string_view TypeName(Value::Type type);

// ---- Encoding (never fails) -------------------------------------------------------------

// A command as CPA expects it: an array of bulk strings, e.g. {"LPOP", "usage", "10"}.
std::string EncodeCommand(const std::vector<std::string_view>& args);
// Simple strings and errors cannot carry CR or LF on the wire; each such byte becomes a space.
std::string EncodeSimple(std::string_view s);
std::string EncodeError(std::string_view message);  // message includes the prefix: "ERR ..."
std::string EncodeInteger(std::int64_t n);
std::string EncodeBulk(std::string_view bytes);
std::string EncodeNullBulk();
std::string EncodeArray(const std::vector<Value>& elements);
std::string EncodeNullArray();
std::string Encode(const Value& value);
// Appends the encoding of `value` to `*out` (avoids a temporary on hot paths).
void AppendEncoded(const Value& value, std::string* out);

// ---- Parsing ------------------------------------------------------------------------------

inline constexpr std::size_t kDefaultMaxBulkLength = std::size_t{64} << 20;    // 64 MiB
inline constexpr std::size_t kDefaultMaxArrayElements = std::size_t{1} << 20;  // per array
inline constexpr std::size_t kDefaultMaxNestingDepth = 8;                      // arrays deep
inline constexpr std::size_t kDefaultMaxLineLength = std::size_t{64} << 10;    // 64 KiB
// Total values (scalars and arrays, nested included) in one top-level value.
inline constexpr std::size_t kDefaultMaxTotalElements = std::size_t{1} << 20;
// Total wire bytes of one top-level value.
inline constexpr std::size_t kDefaultMaxValueBytes = std::size_t{256} << 20;
// Unconsumed input the parser holds. Must fit the largest single element (bulk + header);
// the rest is headroom for one read chunk fed while a partial element is pending.
inline constexpr std::size_t kDefaultMaxBufferedBytes =
    kDefaultMaxBulkLength + (std::size_t{1} << 20);

struct Limits {
  std::size_t max_bulk_length = kDefaultMaxBulkLength;
  std::size_t max_array_elements = kDefaultMaxArrayElements;
  std::size_t max_nesting_depth = kDefaultMaxNestingDepth;
  std::size_t max_line_length = kDefaultMaxLineLength;  // a header or simple line, CRLF excluded
  std::size_t max_total_elements = kDefaultMaxTotalElements;
  std::size_t max_value_bytes = kDefaultMaxValueBytes;
  std::size_t max_buffered_bytes = kDefaultMaxBufferedBytes;
};

// What Parser::Next() produced.
struct ParseResult {
  enum class Kind : std::uint8_t { kNeedMore, kValue, kProtocolError };

  Kind kind = Kind::kNeedMore;
  Value value;        // set when kind == kValue
  std::string error;  // set when kind == kProtocolError

  static ParseResult NeedMore() { return ParseResult{}; }
  static ParseResult Of(Value v) { return ParseResult{Kind::kValue, std::move(v), {}}; }
  static ParseResult ProtocolError(std::string message) {
    return ParseResult{Kind::kProtocolError, Value{}, std::move(message)};
  }
  bool need_more() const { return kind == Kind::kNeedMore; }
  bool has_value() const { return kind == Kind::kValue; }
  bool is_error() const { return kind == Kind::kProtocolError; }
};

// Incremental RESP2 parser over a byte stream.
//
// Feed() appends received bytes; Next() returns the next complete top-level value, NeedMore
// when the buffered bytes end mid-value, or a ProtocolError. Completed elements of a partial
// array are consumed as they arrive, so the buffer holds at most one partial element plus
// whatever the caller fed since. Every length prefix is checked against Limits before any
// allocation. After a ProtocolError the stream has lost its framing: the parser stays failed
// and every later Next() returns the same error (the caller closes the connection).
//
// Usage: after each Feed(), call Next() until it returns NeedMore or an error. Feeding more
// than `max_buffered_bytes` of unconsumed input fails the parser.
//
// Known error messages: `unsupported RESP prefix 'X'` for an unknown first byte (printable
// bytes as themselves, others as \xNN), e.g. `unsupported RESP prefix 'H'` for an HTTP answer.
class Parser {
 public:
  // `limits.max_buffered_bytes` must exceed max_bulk_length + max_line_length + 4 (CHECKed).
  explicit Parser(Limits limits = Limits{});

  void Feed(std::string_view bytes);
  ParseResult Next();

  // Bytes fed but not yet consumed by a returned value or a completed array element.
  std::size_t buffered_bytes() const { return buf_.size() - pos_; }
  bool failed() const { return !error_.empty(); }
  // True between values: no partial value is pending (buffered bytes may start the next one).
  bool at_value_boundary() const { return stack_.empty(); }

 private:
  struct Frame {
    Value array;
    std::size_t expected = 0;
  };
  enum class LineStatus : std::uint8_t { kNeedMore, kFound, kError };

  ParseResult Fail(std::string message);
  LineStatus FindLine(std::size_t* line_end);
  // Tries to parse one element at pos_. Returns kValue with a scalar (or an empty/null array),
  // kNeedMore, or kProtocolError. An array header with elements pushes a frame and returns
  // NeedMore with `*pushed` set, so the caller keeps going.
  ParseResult ParseElement(bool* pushed);
  void Consume(std::size_t n);
  void Compact();

  Limits limits_;
  std::string buf_;
  std::size_t pos_ = 0;      // first unconsumed byte in buf_
  std::size_t scanned_ = 0;  // bytes after pos_ known to hold no line terminator
  std::vector<Frame> stack_;
  std::size_t value_elements_ = 0;  // values started in the current top-level value
  std::size_t value_bytes_ = 0;     // wire bytes consumed by the current top-level value
  std::string error_;
};

// Server side: turns a parsed command into its arguments, as CPA reads them
// (spec §2.2): each element of the array may be a bulk string, a simple string or an integer,
// all read as text, and a null bulk `$-1` reads as "". An empty array `*0` gives an empty
// vector (CPA answers `-ERR empty command` and keeps the connection). Anything else (not an
// array, a null array, a nested array or an error element) is a kBadRequest error, for which
// CPA answers `-ERR protocol error` and closes.
Result<std::vector<std::string>> CommandArgs(const Value& command);

}  // namespace cpamp::resp
