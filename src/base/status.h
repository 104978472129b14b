// Status and Result<T>: expected failures as values (STYLE habit 4).
//
// A Status is either OK or an ErrorCode from the catalogue plus a human message. The message is
// what the `error` field of the wire envelope carries; the code decides the `code` field and the
// default HTTP status. Nothing in the code base matches on message text.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "base/check.h"
#include "base/error_code.h"

namespace cpamp {

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message, int http_status = 0)
      : code_(code), message_(std::move(message)), http_status_(http_status) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // The HTTP status to answer with: an explicit override, else the catalogue default.
  int http_status() const { return http_status_ != 0 ? http_status_ : DefaultHttpStatus(code_); }
  // Same error, different status (the upstream maps some codes differently per route).
  Status WithHttpStatus(int status) const { return Status(code_, message_, status); }
  // Same code and status, message prefixed with context ("load config: ...").
  Status Prefixed(std::string_view prefix) const {
    return Status(code_, std::string(prefix) + ": " + message_, http_status_);
  }

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
  int http_status_ = 0;
};

inline Status Error(ErrorCode code, std::string message) {
  return Status(code, std::move(message));
}

// Result<T>: a T or a non-OK Status. Same surface as std::expected where it matters.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    CHECK(!std::get<Status>(v_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & {
    CHECK(ok());
    return std::get<T>(v_);
  }
  const T& value() const& {
    CHECK(ok());
    return std::get<T>(v_);
  }
  T&& value() && {
    CHECK(ok());
    return std::get<T>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T value_or(T fallback) const { return ok() ? std::get<T>(v_) : std::move(fallback); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace cpamp

namespace cpamp::internal {
inline const Status& AsStatus(const Status& s) { return s; }
template <typename T>
const Status& AsStatus(const Result<T>& r) {
  return r.status();
}
}  // namespace cpamp::internal

#define CPAMP_CONCAT_INNER(a, b) a##b
#define CPAMP_CONCAT(a, b) CPAMP_CONCAT_INNER(a, b)

// Propagates a non-OK Status from an expression returning Status or Result<T>.
#define CPAMP_RETURN_IF_ERROR(expr)                                             \
  do {                                                                          \
    auto&& cpamp_status_ = (expr);                                              \
    if (!cpamp_status_.ok()) return ::cpamp::internal::AsStatus(cpamp_status_); \
  } while (0)

// `CPAMP_ASSIGN_OR_RETURN(auto x, F());` declares x from a Result or returns its Status.
#define CPAMP_ASSIGN_OR_RETURN(lhs, expr)                  \
  auto CPAMP_CONCAT(cpamp_result_, __LINE__) = (expr);     \
  if (!CPAMP_CONCAT(cpamp_result_, __LINE__).ok())         \
    return CPAMP_CONCAT(cpamp_result_, __LINE__).status(); \
  lhs = std::move(CPAMP_CONCAT(cpamp_result_, __LINE__)).value()
