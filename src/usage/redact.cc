// Redaction, sanitising and masking (§4.8, §4.9).
//
// RedactFailureText() runs the eight upstream steps in the documented order, each as a
// hand-written linear scan instead of a regex: this runs for every failed record and for every
// kept response-header value, so it must cost ~nothing when no anchor ("authorization", "bearer",
// "_token", "api", a key prefix, "cookie", '@') occurs. Each pass copies only when it finds a
// match. Where the spec leaves a pattern's extent open, the scans choose the safe side: a value
// runs to its closing quote when quoted, else to whitespace or one of ,;&}"' (the authorization
// value runs to the end of the line because "Bearer <token>" contains a space), and values
// inside a JSON array ("Set-Cookie":["..."], as found in the headers JSON appended to fail
// bodies) are handled like quoted values.
#include <openssl/evp.h>

#include <cstring>
#include <memory>

#include "usage/internal.h"

namespace cpamp::usage {

namespace {

using internal::GoTrimSpace;

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool IsWordChar(char c) { return IsAlnum(c) || c == '_'; }
bool IsBlank(char c) { return c == ' ' || c == '\t'; }
bool IsSpaceChar(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// Case-insensitive search for an ASCII-lowercase needle.
size_t FindCI(std::string_view s, std::string_view needle, size_t from) {
  if (needle.empty() || s.size() < needle.size()) return std::string_view::npos;
  const char first = needle[0];
  for (size_t i = from; i + needle.size() <= s.size(); ++i) {
    if (Lower(s[i]) != first) continue;
    size_t k = 1;
    while (k < needle.size() && Lower(s[i + k]) == needle[k]) ++k;
    if (k == needle.size()) return i;
  }
  return std::string_view::npos;
}

// The extent of a field value starting at `pos` (after the separator and blanks): an optional
// '[' then either a quoted string (content only, escapes honoured) or a bare run.
struct ValueSpan {
  size_t begin = 0;  // first content byte
  size_t end = 0;    // one past the last content byte
};

ValueSpan ScanValue(std::string_view s, size_t pos, bool to_end_of_line) {
  while (pos < s.size() && IsBlank(s[pos])) ++pos;
  if (pos < s.size() && s[pos] == '[') {
    ++pos;
    while (pos < s.size() && IsBlank(s[pos])) ++pos;
  }
  if (pos < s.size() && (s[pos] == '"' || s[pos] == '\'')) {
    char q = s[pos++];
    size_t e = pos;
    while (e < s.size() && s[e] != q) e += (s[e] == '\\' && e + 1 < s.size()) ? 2 : 1;
    return {pos, std::min(e, s.size())};
  }
  size_t e = pos;
  if (to_end_of_line) {
    while (e < s.size() && s[e] != '\n' && s[e] != '\r' && s[e] != '"' && s[e] != '\'' &&
           s[e] != ',' && s[e] != ';' && s[e] != '&' && s[e] != '}') {
      ++e;
    }
    while (e > pos && IsBlank(s[e - 1])) --e;
  } else {
    while (e < s.size() && !IsSpaceChar(s[e]) && s[e] != ',' && s[e] != ';' && s[e] != '&' &&
           s[e] != '}' && s[e] != ']' && s[e] != '"' && s[e] != '\'') {
      ++e;
    }
  }
  return {pos, e};
}

// After a field name ending at `pos`: optional closing quote, blanks, ':' or '=', blanks.
// Returns the position after the separator or npos.
size_t SkipSeparator(std::string_view s, size_t pos) {
  if (pos < s.size() && (s[pos] == '"' || s[pos] == '\'')) ++pos;
  while (pos < s.size() && IsBlank(s[pos])) ++pos;
  if (pos >= s.size() || (s[pos] != ':' && s[pos] != '=')) return std::string_view::npos;
  ++pos;
  while (pos < s.size() && IsBlank(s[pos])) ++pos;
  return pos;
}

// Step 1: "authorization: <anything up to the end of the value>" -> "authorization: [redacted]".
bool RedactAuthorization(const std::string& in, std::string& out) {
  constexpr std::string_view kKey = "authorization";
  size_t at = FindCI(in, kKey, 0);
  if (at == std::string::npos) return false;
  bool changed = false;
  size_t copied = 0;
  while (at != std::string::npos) {
    size_t sep = SkipSeparator(in, at + kKey.size());
    if (sep != std::string::npos) {
      ValueSpan v = ScanValue(in, sep, true);
      if (v.end > v.begin) {
        out.append(in, copied, at - copied);
        out.append("authorization: [redacted]");
        copied = v.end;
        changed = true;
        at = FindCI(in, kKey, v.end);
        continue;
      }
    }
    at = FindCI(in, kKey, at + kKey.size());
  }
  if (changed) out.append(in, copied, std::string::npos);
  return changed;
}

bool IsBearerTokenChar(char c) {
  return IsAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' ||
         c == '=';
}

// Step 2: "Bearer <8+ token chars>" -> "Bearer [redacted]".
bool RedactBearer(const std::string& in, std::string& out) {
  constexpr std::string_view kKey = "bearer";
  size_t at = FindCI(in, kKey, 0);
  if (at == std::string::npos) return false;
  bool changed = false;
  size_t copied = 0;
  while (at != std::string::npos) {
    size_t p = at + kKey.size();
    bool boundary = at == 0 || !IsWordChar(in[at - 1]);
    size_t q = p;
    while (q < in.size() && IsBlank(in[q])) ++q;
    size_t e = q;
    while (e < in.size() && IsBearerTokenChar(in[e])) ++e;
    if (boundary && q > p && e - q >= 8) {
      out.append(in, copied, at - copied);
      out.append("Bearer [redacted]");
      copied = e;
      changed = true;
      at = FindCI(in, kKey, e);
    } else {
      at = FindCI(in, kKey, p);
    }
  }
  if (changed) out.append(in, copied, std::string::npos);
  return changed;
}

// Steps 3, 4: "<name><sep><value>" -> "<name><sep>[redacted]" for every name in `names`.
bool RedactFieldValues(const std::string& in, std::string& out,
                       std::initializer_list<std::string_view> names, std::string_view anchor) {
  if (FindCI(in, anchor, 0) == std::string::npos) return false;
  struct Span {
    size_t begin, end;
  };
  std::vector<Span> spans;
  size_t pos = 0;
  while (pos < in.size()) {
    size_t best = std::string::npos;
    size_t best_len = 0;
    for (std::string_view n : names) {
      size_t at = FindCI(in, n, pos);
      if (at < best || (at == best && n.size() > best_len)) {
        best = at;
        best_len = n.size();
      }
    }
    if (best == std::string::npos) break;
    size_t sep = SkipSeparator(in, best + best_len);
    if (sep != std::string::npos) {
      ValueSpan v = ScanValue(in, sep, false);
      if (v.end > v.begin) {
        spans.push_back({v.begin, v.end});
        pos = v.end;
        continue;
      }
    }
    pos = best + best_len;
  }
  if (spans.empty()) return false;
  size_t copied = 0;
  for (const Span& sp : spans) {
    out.append(in, copied, sp.begin - copied);
    out.append("[redacted]");
    copied = sp.end;
  }
  out.append(in, copied, std::string::npos);
  return true;
}

struct KeyPrefix {
  std::string_view prefix;
  size_t min_body;
};
// Step 5 prefixes, longest first where one is a prefix of another. Minimum body lengths the
// spec leaves open are chosen to avoid masking ordinary identifiers.
constexpr KeyPrefix kKeyPrefixes[] = {
    {"github_pat_", 20}, {"sk-", 6},  {"sess-", 6}, {"ghp_", 16},
    {"AIza", 8},         {"hf_", 10}, {"pk_", 10},  {"rk_", 10},
};

bool IsKeyChar(char c) { return IsAlnum(c) || c == '_' || c == '-'; }

// Step 5: key-shaped tokens -> "[redacted]".
bool RedactKeyTokens(const std::string& in, std::string& out) {
  bool changed = false;
  size_t copied = 0;
  size_t i = 0;
  while (i < in.size()) {
    char c = in[i];
    if ((c != 's' && c != 'g' && c != 'A' && c != 'h' && c != 'p' && c != 'r') ||
        (i > 0 && IsKeyChar(in[i - 1]))) {
      ++i;
      continue;
    }
    size_t matched_end = 0;
    for (const KeyPrefix& kp : kKeyPrefixes) {
      if (in.compare(i, kp.prefix.size(), kp.prefix) != 0) continue;
      size_t e = i + kp.prefix.size();
      while (e < in.size() && IsKeyChar(in[e])) ++e;
      if (e - i - kp.prefix.size() >= kp.min_body) matched_end = e;
      break;
    }
    if (matched_end == 0) {
      ++i;
      continue;
    }
    out.append(in, copied, i - copied);
    out.append("[redacted]");
    copied = i = matched_end;
    changed = true;
  }
  if (changed) out.append(in, copied, std::string::npos);
  return changed;
}

// Step 6: JSON "cookie"/"set-cookie" values and Cookie:/Set-Cookie: header values.
bool RedactCookies(const std::string& in, std::string& out) {
  constexpr std::string_view kKey = "cookie";
  size_t at = FindCI(in, kKey, 0);
  if (at == std::string::npos) return false;
  bool changed = false;
  size_t copied = 0;
  while (at != std::string::npos) {
    size_t key_begin = at;
    if (at >= 4 && FindCI(std::string_view(in).substr(at - 4, 4), "set-", 0) == 0) key_begin -= 4;
    size_t after = at + kKey.size();
    ValueSpan v{0, 0};
    bool found = false;
    if (key_begin > 0 && in[key_begin - 1] == '"' && after < in.size() && in[after] == '"') {
      size_t p = after + 1;
      while (p < in.size() && IsSpaceChar(in[p])) ++p;
      if (p < in.size() && in[p] == ':') {
        ++p;
        while (p < in.size() && IsSpaceChar(in[p])) ++p;
        if (p < in.size() && in[p] == '[') {
          // ["a","b"] -> ["[redacted]"]
          size_t e = p + 1;
          while (e < in.size() && in[e] != ']') {
            if (in[e] == '"') {
              ++e;
              while (e < in.size() && in[e] != '"')
                e += (in[e] == '\\' && e + 1 < in.size()) ? 2 : 1;
            }
            ++e;
          }
          if (e < in.size()) {
            out.append(in, copied, p + 1 - copied);
            out.append("\"[redacted]\"");
            copied = e;
            changed = true;
            at = FindCI(in, kKey, e);
            continue;
          }
        } else if (p < in.size() && in[p] == '"') {
          v = ScanValue(in, p, false);
          found = true;
        }
      }
    } else if (after < in.size() && in[after] == ':') {
      size_t p = after + 1;
      while (p < in.size() && IsBlank(in[p])) ++p;
      size_t e = p;
      while (e < in.size() && in[e] != '\n' && in[e] != '\r') ++e;
      v = {p, e};
      found = true;
    }
    if (found && v.end > v.begin) {
      out.append(in, copied, v.begin - copied);
      out.append("[redacted]");
      copied = v.end;
      changed = true;
      at = FindCI(in, kKey, v.end);
      continue;
    }
    at = FindCI(in, kKey, after);
  }
  if (changed) out.append(in, copied, std::string::npos);
  return changed;
}

bool IsEmailLocalChar(char c) {
  return IsAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}
bool IsLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Step 7: local@domain.tld -> l***@domain.tld.
bool RedactEmails(const std::string& in, std::string& out) {
  size_t at = in.find('@');
  if (at == std::string::npos) return false;
  bool changed = false;
  size_t copied = 0;
  size_t floor = 0;  // end of the previous match; a new local part starts at or after it
  while (at != std::string::npos) {
    size_t b = at;
    while (b > floor && IsEmailLocalChar(in[b - 1])) --b;
    size_t e = at + 1;
    while (e < in.size() && (IsAlnum(in[e]) || in[e] == '.' || in[e] == '-')) ++e;
    // The domain needs "<1+ chars>.<2+ letters>" somewhere inside its run.
    bool domain_ok = false;
    size_t match_end = 0;
    for (size_t d = at + 2; d < e; ++d) {
      if (in[d] != '.') continue;
      size_t l = d + 1;
      while (l < e && IsLetter(in[l])) ++l;
      if (l - d - 1 >= 2) {
        domain_ok = true;
        match_end = l;
      }
    }
    if (b < at && domain_ok) {
      out.append(in, copied, b - copied);
      out.push_back(in[b]);
      out.append("***");
      copied = at;  // '@' and the domain are kept
      floor = match_end;
      changed = true;
      at = in.find('@', match_end);
      continue;
    }
    floor = at + 1;
    at = in.find('@', at + 1);
  }
  if (changed) out.append(in, copied, std::string::npos);
  return changed;
}

bool IsNonGraphicOrSpace(uint32_t r) {
  if (r <= 0x20 || (r >= 0x7F && r <= 0xA0)) return true;
  switch (r) {
    case 0xAD:
    case 0x61C:
    case 0x6DD:
    case 0x70F:
    case 0x1680:
    case 0x180E:
    case 0xFEFF:
    case 0xFFFE:
    case 0xFFFF:
      return true;
    default:
      break;
  }
  return (r >= 0x600 && r <= 0x605) || (r >= 0x2000 && r <= 0x200F) ||
         (r >= 0x2028 && r <= 0x202F) || (r >= 0x205F && r <= 0x206F) || r == 0x3000 ||
         (r >= 0xFFF9 && r <= 0xFFFB) || (r >= 0xE000 && r <= 0xF8FF) || r >= 0xF0000 ||
         (r >= 0xE0000 && r <= 0xE007F) || (r >= 0x1D173 && r <= 0x1D17A) || r == 0x110BD;
}

uint32_t DecodeUtf8(std::string_view s, size_t i, size_t* size) {
  // Valid input only (callers repair first).
  auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    *size = 1;
    return c;
  }
  if (c < 0xE0) {
    *size = 2;
    return (c & 0x1Fu) << 6 | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
  }
  if (c < 0xF0) {
    *size = 3;
    return (c & 0x0Fu) << 12 | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 6 |
           (static_cast<unsigned char>(s[i + 2]) & 0x3Fu);
  }
  *size = 4;
  return (c & 0x07u) << 18 | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 12 |
         (static_cast<unsigned char>(s[i + 2]) & 0x3Fu) << 6 |
         (static_cast<unsigned char>(s[i + 3]) & 0x3Fu);
}

struct MdDeleter {
  void operator()(EVP_MD* md) const { EVP_MD_free(md); }
};

const EVP_MD* Sha256Md() {
  static const std::unique_ptr<EVP_MD, MdDeleter> md(EVP_MD_fetch(nullptr, "SHA256", nullptr));
  return md.get();
}

}  // namespace

std::string RedactFailureText(std::string_view text) {
  std::string cur = internal::IsValidUtf8(text) ? std::string(text) : internal::ToValidUtf8(text);
  std::string next;
  auto step = [&](bool (*pass)(const std::string&, std::string&)) {
    next.clear();
    if (pass(cur, next)) cur.swap(next);
  };
  step(RedactAuthorization);
  step(RedactBearer);
  step([](const std::string& in, std::string& out) {
    return RedactFieldValues(in, out, {"access_token", "refresh_token", "id_token"}, "_token");
  });
  step([](const std::string& in, std::string& out) {
    return RedactFieldValues(in, out, {"api key", "api-key", "api_key", "apikey"}, "api");
  });
  step(RedactKeyTokens);
  step(RedactCookies);
  step(RedactEmails);
  std::string_view trimmed = GoTrimSpace(cur);
  std::string out;
  if (trimmed.size() > kFailSummaryMaxBytes) {
    out.assign(trimmed.substr(0, internal::RuneBoundaryPrefix(trimmed, kFailSummaryMaxBytes)));
    out.append("...");
  } else {
    out.assign(trimmed);
  }
  return out;
}

std::string SanitizeClientField(std::string_view text, size_t max_bytes) {
  std::string valid;
  if (!internal::IsValidUtf8(text)) {
    valid = internal::ToValidUtf8(text);
    text = valid;
  }
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  size_t i = 0;
  while (i < text.size()) {
    size_t n = 1;
    uint32_t r = DecodeUtf8(text, i, &n);
    if (IsNonGraphicOrSpace(r)) {
      pending_space = true;
    } else {
      if (pending_space && !out.empty()) out.push_back(' ');
      pending_space = false;
      out.append(text.substr(i, n));
    }
    i += n;
  }
  internal::LimitBytesWithEllipsis(out, max_bytes);
  return out;
}

bool LooksSecret(std::string_view v) {
  if (v.empty() || v.find_first_of(" /\\") != std::string_view::npos) return false;
  return v.substr(0, 3) == "sk-" || v.substr(0, 4) == "AIza" || v.size() >= 32;
}

std::string MaskSource(std::string_view raw) {
  std::string_view s = GoTrimSpace(raw);
  if (s.empty()) return {};
  if (size_t at = s.find('@'); at != std::string_view::npos) {
    std::string_view local = s.substr(0, at);
    std::string out(local.substr(0, internal::RuneBoundaryPrefix(local, 3)));
    out.append("***");
    out.append(s.substr(at));
    return out;
  }
  if (!LooksSecret(s)) return std::string(s);
  if (s.size() <= 8) return "m:****";
  size_t head = internal::RuneBoundaryPrefix(s, 4);
  size_t tail = s.size() - 4;
  while (tail < s.size() && (static_cast<unsigned char>(s[tail]) & 0xC0) == 0x80) ++tail;
  std::string out("m:");
  out.append(s.substr(0, head));
  out.append("...");
  out.append(s.substr(tail));
  return out;
}

std::string Sha256Hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &len, Sha256Md(), nullptr) != 1) len = 0;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(static_cast<size_t>(len) * 2, '0');
  for (size_t i = 0; i < len; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xF];
  }
  return out;
}

std::string SafeRawJson(std::string_view json_text) {
  boost::json::parse_options opts;
  opts.allow_invalid_utf8 = true;
  opts.max_depth = 1000;
  boost::system::error_code ec;
  unsigned char buf[4096];
  boost::json::monotonic_resource mr(buf, sizeof(buf));
  boost::json::value v = boost::json::parse(json_text, ec, &mr, opts);
  if (!ec) {
    std::string out;
    out.reserve(json_text.size() + 16);
    if (internal::AppendRedactedGoJson(out, v)) return out;
  }
  return RedactFailureText(json_text);
}

}  // namespace cpamp::usage
