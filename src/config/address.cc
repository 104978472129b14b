// Address and URL helpers for the configuration.
//
// ParseListenAddress follows Go's net.SplitHostPort shape (the upstream reads HTTP_ADDR with it):
// an IPv6 host must be bracketed, an unbracketed host may not contain ':', and the port is
// mandatory. Unlike Go we accept only numeric ports (no service names) and check bracketed
// hosts are real IPv6 literals, so a typo fails at start-up rather than at bind time.
// NormalizeBaseUrl is the upstream cpa.NormalizeBaseURL rule, applied to every CPA URL the
// server accepts.

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cctype>
#include <string>

#include "base/strings.h"
#include "config/config.h"

namespace cpamp::config {
namespace {

Status BadAddress(std::string_view addr, std::string_view reason) {
  return Error(ErrorCode::kBadRequest,
               "invalid listen address \"" + std::string(addr) + "\": " + std::string(reason));
}

bool IsHostnameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

// Parses an IPv6 literal, tolerating a zone suffix ("fe80::1%eth0").
bool ParseIpv6(std::string_view host, in6_addr* out) {
  std::string text(host.substr(0, host.find('%')));
  if (host.find('%') != std::string_view::npos && host.size() == text.size() + 1) return false;
  return inet_pton(AF_INET6, text.c_str(), out) == 1;
}

}  // namespace

Result<ListenAddress> ParseListenAddress(std::string_view addr) {
  std::string_view host;
  std::string_view port;
  if (!addr.empty() && addr.front() == '[') {
    size_t close = addr.find(']');
    if (close == std::string_view::npos) return BadAddress(addr, "missing ']' in address");
    host = addr.substr(1, close - 1);
    std::string_view rest = addr.substr(close + 1);
    if (rest.empty()) return BadAddress(addr, "missing port");
    if (rest.front() != ':') return BadAddress(addr, "unexpected text after ']'");
    port = rest.substr(1);
    in6_addr ignored{};
    if (!ParseIpv6(host, &ignored)) return BadAddress(addr, "invalid IPv6 address");
  } else {
    size_t colon = addr.rfind(':');
    if (colon == std::string_view::npos) return BadAddress(addr, "missing port");
    host = addr.substr(0, colon);
    port = addr.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return BadAddress(addr, "too many colons (bracket IPv6 hosts: [::1]:18317)");
    }
    for (char c : host) {
      if (!IsHostnameChar(c)) return BadAddress(addr, "invalid host");
    }
  }
  if (port.empty()) return BadAddress(addr, "missing port");
  if (port.size() > 5) return BadAddress(addr, "port out of range 0-65535");
  unsigned value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return BadAddress(addr, "port is not a number");
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return BadAddress(addr, "port out of range 0-65535");
  return ListenAddress{std::string(host), static_cast<uint16_t>(value)};
}

bool IsLoopbackHost(std::string_view host) {
  if (EqualsIgnoreCase(host, "localhost")) return true;
  std::string text(host);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (ParseIpv6(host, &v6)) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

std::string NormalizeBaseUrl(std::string_view url) {
  std::string out = Trim(url);
  if (out.empty()) return out;
  if (out.find("://") == std::string::npos) out = "http://" + out;
  while (!out.empty() && out.back() == '/') out.pop_back();
  auto strip_suffix = [&out](std::string_view suffix) {
    if (out.size() >= suffix.size() &&
        std::string_view(out).substr(out.size() - suffix.size()) == suffix) {
      out.resize(out.size() - suffix.size());
    }
  };
  strip_suffix("/v0/management");
  strip_suffix("/v0");
  return out;
}

}  // namespace cpamp::config
