// Admin authentication and the offline admin-key reset.
//
// The credential is re-read from SQLite on every check (a PK lookup plus one HMAC), so a reset
// takes effect without restarting anything. Beyond upstream, failed attempts are throttled per
// client address (security::LoginThrottle): delays first, then a lockout answered with 429 and
// Retry-After. Requests without any credential are rejected but not counted, so a browser that
// probes before login cannot lock its own user out; a success clears only its own address.

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "base/strings.h"
#include "setup/setup.h"

namespace cpamp::setup {

std::string BearerToken(std::string_view header) {
  std::string_view h = TrimView(header);
  if (!StartsWithIgnoreCase(h, "bearer ")) return "";
  return Trim(h.substr(7));
}

AdminAuth::AdminAuth(db::Database& db, const Clock& clock, security::ThrottlePolicy policy)
    : db_(db), throttle_(clock, policy) {}

Result<bool> AdminAuth::AdminReady() {
  return db_.Read([](db::Connection& conn) -> Result<bool> {
    auto v = db::GetSetting(conn, kSettingAdminCredential);
    if (!v.ok()) return v.status();
    return v->has_value();
  });
}

AuthOutcome AdminAuth::Check(std::string_view authorization_header, const std::string& address,
                             bool count_failure) {
  AuthOutcome out;
  auto decision = throttle_.Check(address);
  if (decision.locked_out) {
    out.status = 429;
    out.code = "too_many_requests";
    out.error = "too many invalid admin key attempts; retry in " +
                std::to_string(decision.retry_after_s) + " seconds";
    out.retry_after_s = decision.retry_after_s;
    return out;
  }
  std::string token = BearerToken(authorization_header);
  auto cred_json =
      db_.Read([](db::Connection& conn) { return db::GetSetting(conn, kSettingAdminCredential); });
  if (!cred_json.ok()) {
    out.status = 500;
    out.code = "request_failed";
    out.error = cred_json.status().message();
    return out;
  }
  if (!cred_json->has_value()) {
    out.status = 500;
    out.code = "request_failed";
    out.error = "admin credential is not initialized";
    return out;
  }
  auto cred = security::AdminCredentialFromJson(**cred_json);
  if (!cred.ok()) {
    out.status = 500;
    out.code = "request_failed";
    out.error = cred.status().message();
    return out;
  }
  if (!token.empty() && security::VerifyAdminKey(*cred, token)) {
    throttle_.RecordSuccess(address);
    out.ok = true;
    out.status = 200;
    return out;
  }
  out.status = 401;
  out.code = "invalid_admin_key";
  out.error = "invalid admin key";
  if (!token.empty() && count_failure) {
    auto failure = throttle_.RecordFailure(address);
    out.delay_ms = failure.delay_ms;
    if (failure.locked_out) {
      spdlog::warn("admin key: too many invalid attempts from {}; locked out for {} s", address,
                   failure.retry_after_s);
    }
  }
  return out;
}

Result<ResetResult> ResetAdminKey(const std::string& db_path, const std::string& supplied_key,
                                  const Clock& clock) {
  auto looks = db::LooksLikeManagerDatabase(db_path);
  if (!looks.ok()) return looks.status();
  auto conn = db::Connection::Open(db_path, /*read_only=*/false);
  if (!conn.ok()) return conn.status();
  ResetResult result;
  std::string key = Trim(supplied_key);
  std::string source = "cli";
  if (key.empty()) {
    key = security::GenerateAdminKey();
    source = "cli-generated";
    result.generated_key = key;
  }
  const int64_t now = clock.NowMs();
  auto tx = db::Transaction::Begin(**conn);
  if (!tx.ok()) return tx.status();
  auto old = db::GetSetting(**conn, kSettingAdminCredential);
  if (!old.ok()) return old.status();
  auto credential = security::MakeAdminCredential(key, source, now);
  if (old->has_value()) {
    auto prev = security::AdminCredentialFromJson(**old);
    if (prev.ok() && prev->created_at_ms > 0) credential.created_at_ms = prev->created_at_ms;
  }
  credential.rotated_at_ms = now;
  CPAMP_RETURN_IF_ERROR(db::PutSetting(**conn, kSettingAdminCredential,
                                       security::AdminCredentialToJson(credential), now));
  CPAMP_RETURN_IF_ERROR(tx->Commit());
  return result;
}

}  // namespace cpamp::setup
