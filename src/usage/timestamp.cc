// Timestamp parsing and RFC3339Nano formatting (§4.4), without libc time zones.
//
// The stored text is part of the event hash, so it must match Go's time.Format(RFC3339Nano) on
// the UTC instant byte for byte: trailing fractional zeros trimmed, nanoseconds kept, "Z".
// Parsing accepts what Go's time.Parse accepts for the four upstream layouts: RFC3339 with an
// optional fraction ('.' or ','; digits past the ninth ignored), "Z" or "+hh:mm", a one- or
// two-digit hour (Go's fallback parser), and the zone-less "T"/space forms read as UTC. Dates
// are validated like Go does (month 1-12, day within the month, hour < 24, minute and second
// < 60). Civil-date arithmetic uses Howard Hinnant's days_from_civil algorithms on int64, so any
// instant an int64 millisecond count can hold formats without overflow.
#include <charconv>
#include <cstring>

#include "usage/internal.h"

namespace cpamp::usage {

namespace {

constexpr int64_t kSecondsThreshold = 10'000'000'000;  // below: seconds, else milliseconds

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = FloorDiv(y, 400);
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = FloorDiv(z, 146097);
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned DaysIn(unsigned m, int64_t y) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

void AppendPadded(std::string& out, int64_t v, int width) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  for (int i = static_cast<int>(res.ptr - buf); i < width; ++i) out.push_back('0');
  out.append(buf, res.ptr);
}

std::string FormatRfc3339Nano(int64_t secs, int64_t nanos) {
  int64_t days = FloorDiv(secs, 86400);
  int64_t sod = secs - days * 86400;
  int64_t y = 0;
  unsigned m = 0;
  unsigned d = 0;
  CivilFromDays(days, &y, &m, &d);
  std::string out;
  out.reserve(32);
  if (y < 0) {
    out.push_back('-');
    AppendPadded(out, -y, 4);
  } else {
    AppendPadded(out, y, 4);
  }
  out.push_back('-');
  AppendPadded(out, m, 2);
  out.push_back('-');
  AppendPadded(out, d, 2);
  out.push_back('T');
  AppendPadded(out, sod / 3600, 2);
  out.push_back(':');
  AppendPadded(out, sod / 60 % 60, 2);
  out.push_back(':');
  AppendPadded(out, sod % 60, 2);
  if (nanos != 0) {
    char frac[10];
    int64_t n = nanos;
    for (int i = 8; i >= 0; --i) {
      frac[i] = static_cast<char>('0' + n % 10);
      n /= 10;
    }
    int len = 9;
    while (len > 0 && frac[len - 1] == '0') --len;
    out.push_back('.');
    out.append(frac, static_cast<size_t>(len));
  }
  out.push_back('Z');
  return out;
}

std::optional<ParsedTimestamp> FromEpochNumber(int64_t v) {
  int64_t ms = v;
  if (v < kSecondsThreshold) {
    if (v < INT64_MIN / 1000) return std::nullopt;
    ms = v * 1000;
  }
  return ParsedTimestamp{ms, FormatTimestampMs(ms)};
}

// Reads exactly `n` digits at s[*pos].
bool Digits(std::string_view s, size_t* pos, size_t n, int* out) {
  if (*pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

bool Expect(std::string_view s, size_t* pos, char c) {
  if (*pos >= s.size() || s[*pos] != c) return false;
  ++*pos;
  return true;
}

std::optional<ParsedTimestamp> ParseLayouts(std::string_view s) {
  size_t p = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!Digits(s, &p, 4, &year) || !Expect(s, &p, '-') || !Digits(s, &p, 2, &month) ||
      !Expect(s, &p, '-') || !Digits(s, &p, 2, &day)) {
    return std::nullopt;
  }
  if (p >= s.size() || (s[p] != 'T' && s[p] != ' ')) return std::nullopt;
  const bool t_form = s[p] == 'T';
  ++p;
  if (!Digits(s, &p, 1, &hour)) return std::nullopt;
  if (p < s.size() && s[p] >= '0' && s[p] <= '9') hour = hour * 10 + (s[p++] - '0');
  if (!Expect(s, &p, ':') || !Digits(s, &p, 2, &minute) || !Expect(s, &p, ':') ||
      !Digits(s, &p, 2, &second)) {
    return std::nullopt;
  }
  int64_t nanos = 0;
  if (p + 1 < s.size() && (s[p] == '.' || s[p] == ',') && s[p + 1] >= '0' && s[p + 1] <= '9') {
    ++p;
    int digits = 0;
    while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
      if (digits < 9) {
        nanos = nanos * 10 + (s[p] - '0');
        ++digits;
      }
      ++p;
    }
    for (; digits < 9; ++digits) nanos *= 10;
  }
  int64_t offset_seconds = 0;
  if (p < s.size()) {
    if (!t_form) return std::nullopt;
    if (s[p] == 'Z' && p + 1 == s.size()) {
      p = s.size();
    } else if (s[p] == '+' || s[p] == '-') {
      int sign = s[p] == '-' ? -1 : 1;
      ++p;
      int oh = 0, om = 0;
      if (!Digits(s, &p, 2, &oh) || !Expect(s, &p, ':') || !Digits(s, &p, 2, &om) ||
          p != s.size() || oh > 23 || om > 59) {
        return std::nullopt;
      }
      offset_seconds = static_cast<int64_t>(sign) * (oh * 3600 + om * 60);
    } else {
      return std::nullopt;
    }
  }
  if (month < 1 || month > 12 || day < 1 ||
      day > static_cast<int>(DaysIn(static_cast<unsigned>(month), year)) || hour > 23 ||
      minute > 59 || second > 59) {
    return std::nullopt;
  }
  int64_t secs =
      DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
      int64_t{hour} * 3600 + int64_t{minute} * 60 + second - offset_seconds;
  ParsedTimestamp out;
  out.ms = secs * 1000 + nanos / 1'000'000;
  out.text = FormatRfc3339Nano(secs, nanos);
  return out;
}

}  // namespace

std::string FormatTimestampMs(int64_t ms) {
  int64_t secs = ms / 1000;
  int64_t rem = ms % 1000;
  if (rem < 0) {
    --secs;
    rem += 1000;
  }
  return FormatRfc3339Nano(secs, rem * 1'000'000);
}

std::optional<ParsedTimestamp> ParseTimestampText(std::string_view text) {
  std::string_view s = internal::GoTrimSpace(text);
  if (s.empty()) return std::nullopt;
  {
    // strconv.ParseInt(s, 10, 64): optional sign, digits only.
    std::string_view digits = s[0] == '+' ? s.substr(1) : s;
    int64_t v = 0;
    if (!digits.empty() && digits[0] != '+' && (s[0] != '+' || digits[0] != '-')) {
      auto res = std::from_chars(digits.data(), digits.data() + digits.size(), v, 10);
      if (res.ec == std::errc() && res.ptr == digits.data() + digits.size()) {
        return FromEpochNumber(v);
      }
    }
  }
  return ParseLayouts(s);
}

namespace internal {

std::optional<ParsedTimestamp> ReadTimestampValue(const bj::value* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_number()) {
    double d = v->is_double()  ? v->get_double()
               : v->is_int64() ? static_cast<double>(v->get_int64())
                               : static_cast<double>(v->get_uint64());
    if (!(d > -9.2e18 && d < 9.2e18)) return std::nullopt;
    return FromEpochNumber(static_cast<int64_t>(d));
  }
  if (v->is_string()) return ParseTimestampText(ScalarString(v));
  return std::nullopt;
}

}  // namespace internal

}  // namespace cpamp::usage
