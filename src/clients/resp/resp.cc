// RESP2 codec.
//
// Design: the parser keeps one contiguous input buffer with a read offset, and parses scalars
// atomically: a simple string, error, integer or bulk string is taken only once all of its
// bytes (header, payload, trailing CRLF) are buffered; until then Next() answers NeedMore
// without consuming anything. Array headers are consumed at once and push a Frame; completed
// elements are moved into the innermost frame. A long reply (LPOP usage 1000) therefore never
// needs more buffer than its largest element, and re-parsing after NeedMore costs only a
// header, never a rescan of the payload. `scanned_` remembers how far the current line was
// already searched for its CRLF so byte-by-byte feeding stays linear.
//
// Limits are checked on the header digits, before the payload is waited for or allocated;
// arrays never reserve more than a few slots up front, so `*1048576` costs nothing until its
// elements arrive. Totals per top-level value (element count, wire bytes) bound what a
// never-ending nested reply could pile up. This file depends only on the standard library and
// base/status.h (header-only use) so the fuzz harness builds it with a bare clang++ line.
#include "clients/resp/resp.h"

#include <algorithm>
#include <utility>

namespace cpamp::resp {
namespace {

constexpr std::size_t kMaxReserve = 16;           // array slots reserved before elements arrive
constexpr std::size_t kDebugPayloadBytes = 64;    // DebugString truncation
constexpr std::size_t kDebugArrayElements = 8;    // DebugString truncation
constexpr std::size_t kShrinkCapacity = 1 << 20;  // give back buffer memory above this

// Printable form of a byte for error messages: itself if printable ASCII, else \xNN.
std::string PrintableByte(unsigned char c) {
  if (c >= 0x20 && c < 0x7f) return std::string(1, static_cast<char>(c));
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string{'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
}

// Escaped, truncated rendering of a payload for messages.
std::string Printable(std::string_view s, std::size_t max_bytes) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < max_bytes; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') out += '\\';
    out += PrintableByte(c);
  }
  if (s.size() > max_bytes) out += "...";
  return out;
}

void AppendLine(char prefix, std::string_view body, std::string* out) {
  out->push_back(prefix);
  out->append(body);
  out->append("\r\n");
}

// Simple strings and errors end at the first CR or LF, so those bytes cannot be sent as is.
void AppendSanitizedLine(char prefix, std::string_view body, std::string* out) {
  out->push_back(prefix);
  for (char c : body) out->push_back(c == '\r' || c == '\n' ? ' ' : c);
  out->append("\r\n");
}

void AppendInteger(char prefix, std::int64_t n, std::string* out) {
  AppendLine(prefix, std::to_string(n), out);
}

void AppendBulk(std::string_view bytes, std::string* out) {
  AppendInteger('$', static_cast<std::int64_t>(bytes.size()), out);
  out->append(bytes);
  out->append("\r\n");
}

// Strict decimal: optional '-', then 1..19 digits, no overflow. Used for `:` replies.
bool ParseSignedDecimal(std::string_view s, std::int64_t* out) {
  bool negative = false;
  if (!s.empty() && s.front() == '-') {
    negative = true;
    s.remove_prefix(1);
  }
  if (s.empty() || s.size() > 19) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  const std::uint64_t max_magnitude =
      negative ? std::uint64_t{1} << 63 : (std::uint64_t{1} << 63) - 1;
  if (v > max_magnitude) return false;
  *out = negative ? static_cast<std::int64_t>(~v + 1) : static_cast<std::int64_t>(v);
  return true;
}

enum class LengthKind { kNull, kLength, kTooLarge, kInvalid };

// A `$` or `*` length: exactly "-1" (null), or digits. Values beyond `limit` (including ones
// that overflow 64 bits) are reported as kTooLarge without further arithmetic.
LengthKind ParseLength(std::string_view s, std::size_t limit, std::size_t* out) {
  if (s == "-1") return LengthKind::kNull;
  if (s.empty()) return LengthKind::kInvalid;
  std::uint64_t v = 0;
  bool too_large = false;
  for (char c : s) {
    if (c < '0' || c > '9') return LengthKind::kInvalid;
    if (!too_large) {
      v = v * 10 + static_cast<std::uint64_t>(c - '0');
      if (v > limit) too_large = true;
    }
  }
  if (too_large) return LengthKind::kTooLarge;
  *out = static_cast<std::size_t>(v);
  return LengthKind::kLength;
}

// "an array", "a bulk string", ... for messages.
std::string WithArticle(Value::Type type) {
  const std::string_view name = TypeName(type);
  const bool vowel = name.front() == 'a' || name.front() == 'e' || name.front() == 'i';
  return (vowel ? "an " : "a ") + std::string(name);
}

}  // namespace

// ---- Value --------------------------------------------------------------------------------

Value Value::SimpleString(std::string_view s) {
  Value v;
  v.type = Type::kSimpleString;
  v.str = std::string(s);
  return v;
}

Value Value::ErrorReply(std::string_view message) {
  Value v;
  v.type = Type::kError;
  v.str = std::string(message);
  return v;
}

Value Value::Integer(std::int64_t n) {
  Value v;
  v.type = Type::kInteger;
  v.integer = n;
  return v;
}

Value Value::Bulk(std::string_view bytes) {
  Value v;
  v.type = Type::kBulkString;
  v.str = std::string(bytes);
  return v;
}

Value Value::NullBulk() { return Value{}; }

Value Value::Array(std::vector<Value> elements) {
  Value v;
  v.type = Type::kArray;
  v.elements = std::move(elements);
  return v;
}

Value Value::NullArray() {
  Value v;
  v.type = Type::kNullArray;
  return v;
}

bool Value::operator==(const Value& other) const {
  return type == other.type && str == other.str && integer == other.integer &&
         elements == other.elements;
}

std::string_view TypeName(Value::Type type) {
  switch (type) {
    case Value::Type::kSimpleString:
      return "simple string";
    case Value::Type::kError:
      return "error";
    case Value::Type::kInteger:
      return "integer";
    case Value::Type::kBulkString:
      return "bulk string";
    case Value::Type::kNullBulk:
      return "null bulk string";
    case Value::Type::kArray:
      return "array";
    case Value::Type::kNullArray:
      return "null array";
  }
  return "unknown";
}

std::string DebugString(const Value& value) {
  switch (value.type) {
    case Value::Type::kSimpleString:
      return "simple\"" + Printable(value.str, kDebugPayloadBytes) + "\"";
    case Value::Type::kError:
      return "error\"" + Printable(value.str, kDebugPayloadBytes) + "\"";
    case Value::Type::kInteger:
      return "integer(" + std::to_string(value.integer) + ")";
    case Value::Type::kBulkString:
      return "bulk(" + std::to_string(value.str.size()) + ")\"" +
             Printable(value.str, kDebugPayloadBytes) + "\"";
    case Value::Type::kNullBulk:
      return "null-bulk";
    case Value::Type::kNullArray:
      return "null-array";
    case Value::Type::kArray: {
      std::string out = "array[" + std::to_string(value.elements.size()) + "]{";
      for (std::size_t i = 0; i < value.elements.size(); ++i) {
        if (i == kDebugArrayElements) {
          out += ", ...";
          break;
        }
        if (i > 0) out += ", ";
        out += DebugString(value.elements[i]);
      }
      return out + "}";
    }
  }
  return "unknown";
}

// ---- Encoding -----------------------------------------------------------------------------

std::string EncodeCommand(const std::vector<std::string_view>& args) {
  std::size_t size = 16;
  for (std::string_view a : args) size += a.size() + 16;
  std::string out;
  out.reserve(size);
  AppendInteger('*', static_cast<std::int64_t>(args.size()), &out);
  for (std::string_view a : args) AppendBulk(a, &out);
  return out;
}

std::string EncodeSimple(std::string_view s) {
  std::string out;
  AppendSanitizedLine('+', s, &out);
  return out;
}

std::string EncodeError(std::string_view message) {
  std::string out;
  AppendSanitizedLine('-', message, &out);
  return out;
}

std::string EncodeInteger(std::int64_t n) {
  std::string out;
  AppendInteger(':', n, &out);
  return out;
}

std::string EncodeBulk(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() + 16);
  AppendBulk(bytes, &out);
  return out;
}

std::string EncodeNullBulk() { return "$-1\r\n"; }

std::string EncodeArray(const std::vector<Value>& elements) {
  std::string out;
  AppendInteger('*', static_cast<std::int64_t>(elements.size()), &out);
  for (const Value& e : elements) AppendEncoded(e, &out);
  return out;
}

std::string EncodeNullArray() { return "*-1\r\n"; }

std::string Encode(const Value& value) {
  std::string out;
  AppendEncoded(value, &out);
  return out;
}

void AppendEncoded(const Value& value, std::string* out) {
  switch (value.type) {
    case Value::Type::kSimpleString:
      AppendSanitizedLine('+', value.str, out);
      return;
    case Value::Type::kError:
      AppendSanitizedLine('-', value.str, out);
      return;
    case Value::Type::kInteger:
      AppendInteger(':', value.integer, out);
      return;
    case Value::Type::kBulkString:
      AppendBulk(value.str, out);
      return;
    case Value::Type::kNullBulk:
      out->append("$-1\r\n");
      return;
    case Value::Type::kArray:
      AppendInteger('*', static_cast<std::int64_t>(value.elements.size()), out);
      for (const Value& e : value.elements) AppendEncoded(e, out);
      return;
    case Value::Type::kNullArray:
      out->append("*-1\r\n");
      return;
  }
}

// ---- Parser -------------------------------------------------------------------------------

Parser::Parser(Limits limits) : limits_(limits) {
  // A configuration bug, not input: the largest allowed element must fit in the buffer.
  CHECK(limits_.max_buffered_bytes > limits_.max_bulk_length + limits_.max_line_length + 4);
  CHECK(limits_.max_nesting_depth > 0 && limits_.max_total_elements > 0);
}

void Parser::Feed(std::string_view bytes) {
  if (failed() || bytes.empty()) return;
  Compact();
  if (bytes.size() > limits_.max_buffered_bytes - buffered_bytes()) {
    Fail("buffered input exceeds " + std::to_string(limits_.max_buffered_bytes) + " bytes");
    return;
  }
  buf_.append(bytes);
}

ParseResult Parser::Fail(std::string message) {
  error_ = std::move(message);
  buf_.clear();
  buf_.shrink_to_fit();
  pos_ = 0;
  scanned_ = 0;
  stack_.clear();
  return ParseResult::ProtocolError(error_);
}

void Parser::Consume(std::size_t n) {
  pos_ += n;
  value_bytes_ += n;
  scanned_ = 0;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
}

void Parser::Compact() {
  if (pos_ > 0 && pos_ >= buf_.size() - pos_) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  if (buf_.capacity() > kShrinkCapacity && buf_.size() < buf_.capacity() / 4) {
    buf_.shrink_to_fit();
  }
}

Parser::LineStatus Parser::FindLine(std::size_t* line_end) {
  const std::size_t body = pos_ + 1;  // the line's content starts after the prefix byte
  const std::size_t limit_end = body + limits_.max_line_length;  // last allowed CR position
  const std::size_t end = std::min(buf_.size(), limit_end + 1);
  for (std::size_t i = body + scanned_; i < end; ++i) {
    const char c = buf_[i];
    if (c == '\n') {
      Fail("line terminated by LF without CR");
      return LineStatus::kError;
    }
    if (c != '\r') continue;
    scanned_ = i - body;
    if (i + 1 == buf_.size()) return LineStatus::kNeedMore;
    if (buf_[i + 1] != '\n') {
      Fail("CR not followed by LF");
      return LineStatus::kError;
    }
    *line_end = i;
    return LineStatus::kFound;
  }
  if (end > body) scanned_ = end - body;
  if (buf_.size() > limit_end) {
    Fail("line longer than " + std::to_string(limits_.max_line_length) + " bytes");
    return LineStatus::kError;
  }
  return LineStatus::kNeedMore;
}

ParseResult Parser::ParseElement(bool* pushed) {
  *pushed = false;
  if (pos_ >= buf_.size()) return ParseResult::NeedMore();
  const char prefix = buf_[pos_];
  if (prefix != '+' && prefix != '-' && prefix != ':' && prefix != '$' && prefix != '*') {
    return Fail("unsupported RESP prefix '" + PrintableByte(static_cast<unsigned char>(prefix)) +
                "'");
  }
  std::size_t line_end = 0;
  switch (FindLine(&line_end)) {
    case LineStatus::kNeedMore:
      return ParseResult::NeedMore();
    case LineStatus::kError:
      return ParseResult::ProtocolError(error_);
    case LineStatus::kFound:
      break;
  }
  const std::string_view line(buf_.data() + pos_ + 1, line_end - pos_ - 1);
  const std::size_t header_bytes = line_end + 2 - pos_;

  if (value_elements_ >= limits_.max_total_elements) {
    return Fail("value has more than " + std::to_string(limits_.max_total_elements) + " elements");
  }
  // Wire bytes this element needs (payload included for bulk strings), checked before waiting.
  auto over_value_budget = [&](std::size_t element_bytes) {
    return element_bytes >
           limits_.max_value_bytes - std::min(value_bytes_, limits_.max_value_bytes);
  };

  switch (prefix) {
    case '+':
    case '-':
    case ':': {
      if (over_value_budget(header_bytes)) {
        return Fail("value exceeds " + std::to_string(limits_.max_value_bytes) + " bytes");
      }
      Value v;
      if (prefix == ':') {
        std::int64_t n = 0;
        if (!ParseSignedDecimal(line, &n)) {
          return Fail("invalid integer '" + Printable(line, 32) + "'");
        }
        v = Value::Integer(n);
      } else {
        v = prefix == '+' ? Value::SimpleString(line) : Value::ErrorReply(line);
      }
      ++value_elements_;
      Consume(header_bytes);
      return ParseResult::Of(std::move(v));
    }
    case '$': {
      std::size_t n = 0;
      switch (ParseLength(line, limits_.max_bulk_length, &n)) {
        case LengthKind::kInvalid:
          return Fail("invalid bulk length '" + Printable(line, 32) + "'");
        case LengthKind::kTooLarge:
          return Fail("bulk length " + Printable(line, 32) + " exceeds limit " +
                      std::to_string(limits_.max_bulk_length));
        case LengthKind::kNull:
          if (over_value_budget(header_bytes)) {
            return Fail("value exceeds " + std::to_string(limits_.max_value_bytes) + " bytes");
          }
          ++value_elements_;
          Consume(header_bytes);
          return ParseResult::Of(Value::NullBulk());
        case LengthKind::kLength:
          break;
      }
      const std::size_t total = header_bytes + n + 2;
      if (over_value_budget(total)) {
        return Fail("value exceeds " + std::to_string(limits_.max_value_bytes) + " bytes");
      }
      if (buf_.size() - pos_ < total) return ParseResult::NeedMore();
      const std::size_t payload = line_end + 2;
      if (buf_[payload + n] != '\r' || buf_[payload + n + 1] != '\n') {
        return Fail("bulk string of length " + std::to_string(n) + " not followed by CRLF");
      }
      Value v = Value::Bulk(std::string_view(buf_.data() + payload, n));
      ++value_elements_;
      Consume(total);
      return ParseResult::Of(std::move(v));
    }
    default: {  // '*'
      if (stack_.size() >= limits_.max_nesting_depth) {
        return Fail("arrays nested deeper than " + std::to_string(limits_.max_nesting_depth));
      }
      std::size_t n = 0;
      switch (ParseLength(line, limits_.max_array_elements, &n)) {
        case LengthKind::kInvalid:
          return Fail("invalid array length '" + Printable(line, 32) + "'");
        case LengthKind::kTooLarge:
          return Fail("array length " + Printable(line, 32) + " exceeds limit " +
                      std::to_string(limits_.max_array_elements));
        case LengthKind::kNull:
          if (over_value_budget(header_bytes)) {
            return Fail("value exceeds " + std::to_string(limits_.max_value_bytes) + " bytes");
          }
          ++value_elements_;
          Consume(header_bytes);
          return ParseResult::Of(Value::NullArray());
        case LengthKind::kLength:
          break;
      }
      if (over_value_budget(header_bytes)) {
        return Fail("value exceeds " + std::to_string(limits_.max_value_bytes) + " bytes");
      }
      ++value_elements_;
      Consume(header_bytes);
      if (n == 0) return ParseResult::Of(Value::Array({}));
      Frame frame;
      frame.array.type = Value::Type::kArray;
      frame.array.elements.reserve(std::min(n, kMaxReserve));
      frame.expected = n;
      stack_.push_back(std::move(frame));
      *pushed = true;
      return ParseResult::NeedMore();
    }
  }
}

ParseResult Parser::Next() {
  if (failed()) return ParseResult::ProtocolError(error_);
  while (true) {
    bool pushed = false;
    ParseResult r = ParseElement(&pushed);
    if (pushed) continue;
    if (!r.has_value()) return r;
    Value v = std::move(r.value);
    // Move the finished element into its array; finishing an array may finish its parent.
    while (true) {
      if (stack_.empty()) {
        value_elements_ = 0;
        value_bytes_ = 0;
        return ParseResult::Of(std::move(v));
      }
      Frame& top = stack_.back();
      top.array.elements.push_back(std::move(v));
      if (top.array.elements.size() < top.expected) break;
      v = std::move(top.array);
      stack_.pop_back();
    }
  }
}

// ---- Server side --------------------------------------------------------------------------

Result<std::vector<std::string>> CommandArgs(const Value& command) {
  if (command.type != Value::Type::kArray) {
    return Error(ErrorCode::kBadRequest,
                 "command must be an array of bulk strings, got " + WithArticle(command.type));
  }
  std::vector<std::string> args;
  args.reserve(command.elements.size());
  for (std::size_t i = 0; i < command.elements.size(); ++i) {
    const Value& e = command.elements[i];
    switch (e.type) {
      case Value::Type::kBulkString:
      case Value::Type::kSimpleString:
        args.push_back(e.str);
        break;
      case Value::Type::kInteger:
        args.push_back(std::to_string(e.integer));
        break;
      case Value::Type::kNullBulk:
        args.emplace_back();
        break;
      case Value::Type::kError:
      case Value::Type::kArray:
      case Value::Type::kNullArray:
        return Error(ErrorCode::kBadRequest, "command argument " + std::to_string(i + 1) + " is " +
                                                 WithArticle(e.type) + "; expected a bulk string");
    }
  }
  return args;
}

}  // namespace cpamp::resp
