#include "clients/resp/resp.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

// Tracks the largest single heap allocation so tests can prove that limits reject a length
// prefix before anything of that size is allocated.
namespace {
std::atomic<std::size_t> g_largest_allocation{0};
// Out of line so the compiler cannot pair an inlined free() with a visible operator new.
[[gnu::noinline]] void ReleaseMemory(void* p) noexcept { std::free(p); }
}  // namespace

void* operator new(std::size_t n) {
  std::size_t prev = g_largest_allocation.load();
  while (n > prev && !g_largest_allocation.compare_exchange_weak(prev, n)) {
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { ReleaseMemory(p); }
void operator delete(void* p, std::size_t) noexcept { ReleaseMemory(p); }

namespace cpamp::resp {

// Readable gtest failure output for values.
void PrintTo(const Value& v, std::ostream* os) { *os << DebugString(v); }

namespace {

using Type = Value::Type;

// Feeds `bytes` in one go and collects every value until NeedMore; fails on a protocol error.
std::vector<Value> ParseAll(std::string_view bytes, Limits limits = Limits{}) {
  Parser parser(limits);
  parser.Feed(bytes);
  std::vector<Value> out;
  while (true) {
    ParseResult r = parser.Next();
    if (r.need_more()) break;
    EXPECT_FALSE(r.is_error()) << r.error;
    if (r.is_error()) break;
    out.push_back(std::move(r.value));
  }
  EXPECT_EQ(parser.buffered_bytes(), 0u);
  return out;
}

// The protocol error `bytes` produce, or "" if none. The input is fed in `chunk`-byte pieces
// (all at once by default) and drained after each piece, as a connection would.
std::string ParseError(std::string_view bytes, Limits limits = Limits{},
                       std::size_t chunk = std::string_view::npos) {
  Parser parser(limits);
  for (std::size_t off = 0; off < bytes.size(); off += chunk) {
    parser.Feed(bytes.substr(off, chunk));
    while (true) {
      ParseResult r = parser.Next();
      if (r.is_error()) return r.error;
      if (r.need_more()) break;
    }
  }
  return "";
}

Limits SmallLimits() {
  Limits l;
  l.max_bulk_length = 32;
  l.max_array_elements = 8;
  l.max_nesting_depth = 3;
  l.max_line_length = 16;
  l.max_total_elements = 20;
  l.max_value_bytes = 200;
  l.max_buffered_bytes = 128;
  return l;
}

std::vector<Value> EveryType() {
  return {
      Value::SimpleString("OK"),
      Value::SimpleString(""),
      Value::ErrorReply("ERR unsupported channel 'errors'"),
      Value::Integer(0),
      Value::Integer(-1),
      Value::Integer(INT64_MAX),
      Value::Integer(INT64_MIN),
      Value::Bulk(""),
      Value::Bulk(std::string("bin\r\n\0ary", 10)),
      Value::NullBulk(),
      Value::Array({}),
      Value::NullArray(),
      Value::Array({Value::Bulk("a"), Value::Integer(2), Value::NullBulk(),
                    Value::Array({Value::SimpleString("x"), Value::NullArray()})}),
  };
}

TEST(RespEncode, ProducesExactBytesForEveryType) {
  EXPECT_EQ(EncodeSimple("OK"), "+OK\r\n");
  EXPECT_EQ(EncodeError("ERR empty command"), "-ERR empty command\r\n");
  EXPECT_EQ(EncodeInteger(-42), ":-42\r\n");
  EXPECT_EQ(EncodeBulk("hello"), "$5\r\nhello\r\n");
  EXPECT_EQ(EncodeBulk(""), "$0\r\n\r\n");
  EXPECT_EQ(EncodeNullBulk(), "$-1\r\n");
  EXPECT_EQ(EncodeNullArray(), "*-1\r\n");
  EXPECT_EQ(EncodeArray({}), "*0\r\n");
  EXPECT_EQ(EncodeArray({Value::Bulk("a"), Value::Integer(1)}), "*2\r\n$1\r\na\r\n:1\r\n");
}

TEST(RespEncode, CommandIsArrayOfBulkStrings) {
  EXPECT_EQ(EncodeCommand({"LPOP", "usage", "10"}),
            "*3\r\n$4\r\nLPOP\r\n$5\r\nusage\r\n$2\r\n10\r\n");
  EXPECT_EQ(EncodeCommand({"AUTH", ""}), "*2\r\n$4\r\nAUTH\r\n$0\r\n\r\n");
  EXPECT_EQ(EncodeCommand({}), "*0\r\n");
}

TEST(RespEncode, SimpleAndErrorLinesCannotInjectFrames) {
  EXPECT_EQ(EncodeError("ERR unsupported channel 'a\r\n+OK'"),
            "-ERR unsupported channel 'a  +OK'\r\n");
  EXPECT_EQ(EncodeSimple("x\ny"), "+x y\r\n");
  EXPECT_EQ(Encode(Value::ErrorReply("a\rb")), "-a b\r\n");
}

TEST(RespRoundTrip, EveryTypeSurvivesEncodeThenParse) {
  for (const Value& v : EveryType()) {
    std::vector<Value> parsed = ParseAll(Encode(v));
    ASSERT_EQ(parsed.size(), 1u) << DebugString(v);
    EXPECT_EQ(parsed[0], v);
  }
}

TEST(RespRoundTrip, ByteByByteFeedingGivesSameValues) {
  std::string stream;
  for (const Value& v : EveryType()) stream += Encode(v);
  Parser parser;
  std::vector<Value> got;
  for (char c : stream) {
    parser.Feed(std::string_view(&c, 1));
    while (true) {
      ParseResult r = parser.Next();
      ASSERT_FALSE(r.is_error()) << r.error;
      if (r.need_more()) break;
      got.push_back(std::move(r.value));
    }
  }
  EXPECT_EQ(got, EveryType());
  EXPECT_EQ(parser.buffered_bytes(), 0u);
  EXPECT_TRUE(parser.at_value_boundary());
}

TEST(RespParse, NeedMoreUntilValueIsComplete) {
  Parser parser;
  parser.Feed("$5\r\nhel");
  EXPECT_TRUE(parser.Next().need_more());
  parser.Feed("lo\r");
  EXPECT_TRUE(parser.Next().need_more());
  parser.Feed("\n");
  ParseResult r = parser.Next();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value, Value::Bulk("hello"));
  EXPECT_TRUE(parser.Next().need_more());
}

TEST(RespParse, MultipleValuesInOneFeed) {
  std::vector<Value> got = ParseAll("+OK\r\n:7\r\n$3\r\nabc\r\n");
  EXPECT_EQ(got,
            (std::vector<Value>{Value::SimpleString("OK"), Value::Integer(7), Value::Bulk("abc")}));
}

TEST(RespParse, PipelinedRepliesArriveInOrder) {
  // AUTH, then LPOP usage (empty), LPOP usage 5 (empty), LPOP usage 2 (two records), an error.
  std::vector<Value> got = ParseAll(
      "+OK\r\n$-1\r\n*0\r\n*2\r\n$7\r\n{\"a\":1}\r\n$7\r\n{\"b\":2}\r\n"
      "-ERR unknown command 'ping'\r\n");
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[0], Value::SimpleString("OK"));
  EXPECT_EQ(got[1], Value::NullBulk());
  EXPECT_EQ(got[2], Value::Array({}));
  EXPECT_EQ(got[3], Value::Array({Value::Bulk("{\"a\":1}"), Value::Bulk("{\"b\":2}")}));
  EXPECT_EQ(got[4], Value::ErrorReply("ERR unknown command 'ping'"));
}

TEST(RespParse, NullBulkEmptyBulkEmptyArrayAndNullArrayAreDistinct) {
  std::vector<Value> got = ParseAll("$-1\r\n$0\r\n\r\n*0\r\n*-1\r\n");
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].type, Type::kNullBulk);
  EXPECT_TRUE(got[0].IsNull());
  EXPECT_EQ(got[1].type, Type::kBulkString);
  EXPECT_TRUE(got[1].str.empty());
  EXPECT_FALSE(got[1].IsNull());
  EXPECT_EQ(got[2].type, Type::kArray);
  EXPECT_TRUE(got[2].elements.empty());
  EXPECT_FALSE(got[2].IsNull());
  EXPECT_EQ(got[3].type, Type::kNullArray);
  EXPECT_TRUE(got[3].IsNull());
  EXPECT_NE(got[0], got[1]);
  EXPECT_NE(got[2], got[3]);
}

TEST(RespParse, IntegersAreStrict) {
  EXPECT_EQ(ParseAll(":9223372036854775807\r\n:-9223372036854775808\r\n"),
            (std::vector<Value>{Value::Integer(INT64_MAX), Value::Integer(INT64_MIN)}));
  EXPECT_EQ(ParseError(":9223372036854775808\r\n"), "invalid integer '9223372036854775808'");
  EXPECT_EQ(ParseError(":\r\n"), "invalid integer ''");
  EXPECT_EQ(ParseError(":+1\r\n"), "invalid integer '+1'");
  EXPECT_EQ(ParseError(":1 \r\n"), "invalid integer '1 '");
  EXPECT_EQ(ParseError(":-\r\n"), "invalid integer '-'");
}

TEST(RespParse, NegativeLengthsOtherThanMinusOneAreErrors) {
  EXPECT_EQ(ParseError("$-2\r\n"), "invalid bulk length '-2'");
  EXPECT_EQ(ParseError("$-0\r\n"), "invalid bulk length '-0'");
  EXPECT_EQ(ParseError("*-5\r\n"), "invalid array length '-5'");
  EXPECT_EQ(ParseError("$\r\n"), "invalid bulk length ''");
  EXPECT_EQ(ParseError("$+3\r\nabc\r\n"), "invalid bulk length '+3'");
  EXPECT_EQ(ParseError("*x\r\n"), "invalid array length 'x'");
}

TEST(RespParse, LinesMustEndInCrlf) {
  EXPECT_EQ(ParseError("+OK\n"), "line terminated by LF without CR");
  EXPECT_EQ(ParseError("*1\n$4\nLPOP\n"), "line terminated by LF without CR");
  EXPECT_EQ(ParseError("+OK\rX"), "CR not followed by LF");
  EXPECT_EQ(ParseError("$3\r\nabcXY"), "bulk string of length 3 not followed by CRLF");
  EXPECT_EQ(ParseError("$3\r\nabc\n\r"), "bulk string of length 3 not followed by CRLF");
  // A CR at the very end may still be followed by LF: that is NeedMore, not an error.
  EXPECT_EQ(ParseError(":12\r"), "");
}

TEST(RespParse, HttpAnswerIsUnsupportedPrefix) {
  EXPECT_EQ(ParseError("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            "unsupported RESP prefix 'H'");
  EXPECT_EQ(ParseError(std::string("\0", 1)), "unsupported RESP prefix '\\x00'");
  EXPECT_EQ(ParseError("_\r\n"), "unsupported RESP prefix '_'");     // RESP3 null
  EXPECT_EQ(ParseError("PING\r\n"), "unsupported RESP prefix 'P'");  // inline command
  // Inside an array as well.
  EXPECT_EQ(ParseError("*2\r\n$1\r\na\r\n%1\r\n"), "unsupported RESP prefix '%'");
}

TEST(RespParse, ErrorIsStickyAndDropsBufferedInput) {
  Parser parser;
  parser.Feed("+OK\r\nHTTP/1.1 400 Bad Request\r\n");
  ASSERT_TRUE(parser.Next().has_value());
  ParseResult r = parser.Next();
  ASSERT_TRUE(r.is_error());
  EXPECT_TRUE(parser.failed());
  EXPECT_EQ(parser.buffered_bytes(), 0u);
  parser.Feed("+OK\r\n");
  ParseResult again = parser.Next();
  ASSERT_TRUE(again.is_error());
  EXPECT_EQ(again.error, "unsupported RESP prefix 'H'");
}

TEST(RespLimits, HugeBulkLengthIsRejectedBeforeAllocating) {
  Parser parser;
  parser.Feed("$999999999999\r\n");
  g_largest_allocation = 0;
  ParseResult r = parser.Next();
  const std::size_t largest = g_largest_allocation;
  ASSERT_TRUE(r.is_error());
  EXPECT_EQ(r.error, "bulk length 999999999999 exceeds limit 67108864");
  EXPECT_LT(largest, 4096u);
  // Overflowing 64 bits is the same error, not a wrap-around.
  EXPECT_EQ(ParseError("$99999999999999999999999999\r\n"),
            "bulk length 99999999999999999999999999 exceeds limit 67108864");
}

TEST(RespLimits, BulkOverLimitFailsOnHeaderAlone) {
  Limits l = SmallLimits();
  EXPECT_EQ(ParseError("$33\r\n", l), "bulk length 33 exceeds limit 32");
  EXPECT_EQ(ParseAll("$32\r\n" + std::string(32, 'x') + "\r\n", l).size(), 1u);
}

TEST(RespLimits, ArrayHeaderNeverReservesItsDeclaredLength) {
  Parser parser;
  parser.Feed("*1048576\r\n");  // at the default limit: accepted
  g_largest_allocation = 0;
  EXPECT_TRUE(parser.Next().need_more());
  EXPECT_LT(g_largest_allocation.load(), 4096u);
  EXPECT_EQ(ParseError("*1048577\r\n"), "array length 1048577 exceeds limit 1048576");
  EXPECT_EQ(ParseError("*9\r\n", SmallLimits()), "array length 9 exceeds limit 8");
}

TEST(RespLimits, DeepNestingIsRejected) {
  auto nested = [](int depth) {
    std::string s;
    for (int i = 0; i < depth; ++i) s += "*1\r\n";
    return s + ":1\r\n";
  };
  EXPECT_EQ(ParseAll(nested(8)).size(), 1u);  // default depth 8 is allowed
  EXPECT_EQ(ParseError(nested(9)), "arrays nested deeper than 8");
  EXPECT_EQ(ParseError("*1\r\n*1\r\n*1\r\n*0\r\n", SmallLimits()), "arrays nested deeper than 3");
}

TEST(RespLimits, LongLineWithoutCrlfIsRejected) {
  Limits l = SmallLimits();
  EXPECT_EQ(ParseError("+" + std::string(17, 'a'), l), "line longer than 16 bytes");
  EXPECT_EQ(ParseError("+" + std::string(16, 'a'), l), "");  // could still end in CRLF
  EXPECT_EQ(ParseAll("+" + std::string(16, 'a') + "\r\n", l).size(), 1u);
  EXPECT_EQ(ParseError(":" + std::string(70000, '1')), "line longer than 65536 bytes");
}

TEST(RespLimits, TotalElementsAndBytesPerValueAreBounded) {
  Limits l = SmallLimits();  // 20 values, 200 bytes
  // 3 x 8 nested elements: every array is within its own limit, the total is not.
  std::string many = "*3\r\n";
  for (int i = 0; i < 3; ++i) {
    many += "*7\r\n";
    for (int j = 0; j < 7; ++j) many += ":1\r\n";
  }
  EXPECT_EQ(ParseError(many, l, 16), "value has more than 20 elements");
  std::string big = "*8\r\n";
  for (int i = 0; i < 8; ++i) big += "$30\r\n" + std::string(30, 'x') + "\r\n";
  EXPECT_EQ(ParseError(big, l, 16), "value exceeds 200 bytes");
}

TEST(RespLimits, BufferedBytesAreBoundedAndConsumedInputIsReleased) {
  Limits l = SmallLimits();  // 128 buffered bytes
  Parser parser(l);
  // 10,000 values fed one at a time and drained: consumed bytes never count.
  for (int i = 0; i < 10000; ++i) {
    parser.Feed("$10\r\n0123456789\r\n");
    ParseResult r = parser.Next();
    ASSERT_TRUE(r.has_value()) << r.error;
    ASSERT_TRUE(parser.Next().need_more());
  }
  EXPECT_EQ(parser.buffered_bytes(), 0u);
  // Undrained input beyond the limit fails the parser.
  Parser greedy(l);
  greedy.Feed(std::string(100, '+'));
  EXPECT_FALSE(greedy.failed());
  greedy.Feed(std::string(29, '+'));
  ASSERT_TRUE(greedy.failed());
  EXPECT_EQ(greedy.Next().error, "buffered input exceeds 128 bytes");
}

TEST(RespLimits, LongArrayStreamsThroughASmallBuffer) {
  // An array whose total size is far above max_buffered_bytes parses when fed in chunks,
  // because completed elements are consumed as they arrive.
  Limits l;
  l.max_bulk_length = 64;
  l.max_line_length = 32;
  l.max_buffered_bytes = 256;
  std::vector<Value> records;
  for (int i = 0; i < 1000; ++i)
    records.push_back(Value::Bulk("{\"n\":" + std::to_string(i) + "}"));
  const std::string wire = EncodeArray(records);
  Parser parser(l);
  std::vector<Value> got;
  for (std::size_t off = 0; off < wire.size(); off += 100) {
    parser.Feed(std::string_view(wire).substr(off, 100));
    while (true) {
      ParseResult r = parser.Next();
      ASSERT_FALSE(r.is_error()) << r.error;
      if (r.need_more()) break;
      got.push_back(std::move(r.value));
    }
    EXPECT_LE(parser.buffered_bytes(), 100u + 64u);
  }
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], Value::Array(records));
}

// Exact frames from spec/cpa-protocol.md §2.4.
TEST(RespSubscribe, ConfirmationAndMessagesParseAndEncodeExactly) {
  const std::string confirmation = "*3\r\n$9\r\nsubscribe\r\n$5\r\nusage\r\n:1\r\n";
  const std::string first =
      "*3\r\n$7\r\nmessage\r\n$5\r\nusage\r\n$24\r\n{\"support_refresh\":true}\r\n";
  const std::string record = R"({"model":"gpt-5.5","tokens":{"input_tokens":3}})";
  const std::string message = "*3\r\n$7\r\nmessage\r\n$5\r\nusage\r\n$" +
                              std::to_string(record.size()) + "\r\n" + record + "\r\n";
  const std::string pong = "*2\r\n$4\r\npong\r\n$-1\r\n";
  const std::string unsubscribe = "*3\r\n$11\r\nunsubscribe\r\n$5\r\nusage\r\n:0\r\n";

  const Value want_confirmation =
      Value::Array({Value::Bulk("subscribe"), Value::Bulk("usage"), Value::Integer(1)});
  const Value want_first = Value::Array(
      {Value::Bulk("message"), Value::Bulk("usage"), Value::Bulk("{\"support_refresh\":true}")});
  const Value want_message =
      Value::Array({Value::Bulk("message"), Value::Bulk("usage"), Value::Bulk(record)});
  const Value want_pong = Value::Array({Value::Bulk("pong"), Value::NullBulk()});
  const Value want_unsubscribe =
      Value::Array({Value::Bulk("unsubscribe"), Value::Bulk("usage"), Value::Integer(0)});

  std::vector<Value> got = ParseAll(confirmation + first + message + pong + unsubscribe);
  EXPECT_EQ(got, (std::vector<Value>{want_confirmation, want_first, want_message, want_pong,
                                     want_unsubscribe}));
  // The simulator side produces the same bytes.
  EXPECT_EQ(Encode(want_confirmation), confirmation);
  EXPECT_EQ(Encode(want_first), first);
  EXPECT_EQ(Encode(want_message), message);
  EXPECT_EQ(Encode(want_pong), pong);
  EXPECT_EQ(Encode(want_unsubscribe), unsubscribe);
}

TEST(RespCommandArgs, ArrayOfBulkStringsBecomesArgs) {
  std::vector<Value> cmd = ParseAll(EncodeCommand({"LPOP", " usage ", "10"}));
  ASSERT_EQ(cmd.size(), 1u);
  Result<std::vector<std::string>> args = CommandArgs(cmd[0]);
  ASSERT_TRUE(args.ok()) << args.status().message();
  EXPECT_EQ(*args, (std::vector<std::string>{"LPOP", " usage ", "10"}));
}

TEST(RespCommandArgs, ReadsSimpleIntegerAndNullElementsAsTextLikeCpa) {
  Result<std::vector<std::string>> args = CommandArgs(
      Value::Array({Value::SimpleString("AUTH"), Value::Integer(-7), Value::NullBulk()}));
  ASSERT_TRUE(args.ok());
  EXPECT_EQ(*args, (std::vector<std::string>{"AUTH", "-7", ""}));
}

TEST(RespCommandArgs, EmptyArrayGivesNoArgs) {
  Result<std::vector<std::string>> args = CommandArgs(Value::Array({}));
  ASSERT_TRUE(args.ok());
  EXPECT_TRUE(args->empty());
}

TEST(RespCommandArgs, RejectsNonCommands) {
  struct Case {
    Value value;
    std::string message;
  };
  const std::vector<Case> cases = {
      {Value::SimpleString("PING"),
       "command must be an array of bulk strings, got a simple string"},
      {Value::Bulk("PING"), "command must be an array of bulk strings, got a bulk string"},
      {Value::NullArray(), "command must be an array of bulk strings, got a null array"},
      {Value::Array({Value::Bulk("LPOP"), Value::Array({})}),
       "command argument 2 is an array; expected a bulk string"},
      {Value::Array({Value::ErrorReply("ERR x")}),
       "command argument 1 is an error; expected a bulk string"},
  };
  for (const Case& c : cases) {
    Result<std::vector<std::string>> args = CommandArgs(c.value);
    ASSERT_FALSE(args.ok()) << DebugString(c.value);
    EXPECT_EQ(args.status().code(), ErrorCode::kBadRequest);
    EXPECT_EQ(args.status().message(), c.message);
  }
}

TEST(RespDebugString, DescribesAndTruncates) {
  EXPECT_EQ(DebugString(Value::Bulk("a\r\n")), "bulk(3)\"a\\x0d\\x0a\"");
  EXPECT_EQ(DebugString(Value::Array({Value::Integer(1), Value::NullBulk()})),
            "array[2]{integer(1), null-bulk}");
  EXPECT_EQ(DebugString(Value::Bulk(std::string(100, 'x'))),
            "bulk(100)\"" + std::string(64, 'x') + "...\"");
}

}  // namespace
}  // namespace cpamp::resp
