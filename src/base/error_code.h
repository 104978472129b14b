// The one error catalogue: every wire `code` the server can answer with, its default HTTP
// status, and its byte-identical upstream spelling. Adding an error the panel sees is one row.
#pragma once

#include <string_view>

namespace cpamp {

// X(enumerator, wire code, default HTTP status)
#define CPAMP_ERROR_CODES(X)                                                            \
  X(kOk, "", 200)                                                                       \
  X(kRequestFailed, "request_failed", 500)                                              \
  X(kBadRequest, "request_failed", 400)                                                 \
  X(kNotFound, "not_found", 404)                                                        \
  X(kMethodNotAllowed, "method_not_allowed", 405)                                       \
  X(kPayloadTooLarge, "payload_too_large", 413)                                         \
  X(kTooManyRequests, "too_many_requests", 429)                                         \
  X(kInvalidAdminKey, "invalid_admin_key", 401)                                         \
  X(kInvalidManagementKey, "invalid_management_key", 401)                               \
  X(kInvalidExistingManagementKey, "invalid_existing_management_key", 401)              \
  X(kConnectionEnvManaged, "connection_env_managed", 409)                               \
  X(kSetupEnvManaged, "setup_env_managed", 409)                                         \
  X(kCpaConnectionAlreadyBound, "cpa_connection_already_bound", 409)                    \
  X(kAccountProcessingPolicyEnvLocked, "account_processing_policy_env_locked", 409)     \
  X(kCpaConnectionRequired, "cpa_connection_required", 400)                             \
  X(kCpaConnectionRequiredForMonitoring, "cpa_connection_required_for_monitoring", 400) \
  X(kUsageServiceNotConfigured, "usage_service_not_configured", 428)                    \
  X(kCpaUsageRetentionInvalid, "cpa_usage_retention_invalid", 400)                      \
  X(kPollIntervalExceedsRetention, "poll_interval_exceeds_retention", 400)              \
  X(kInvalidTimeZone, "invalid_time_zone", 400)                                         \
  X(kManagementApiValidationFailed, "management_api_validation_failed", 502)            \
  X(kManagementApiConfigFailed, "management_api_config_failed", 502)                    \
  X(kEnableCpaUsageStatisticsFailed, "enable_cpa_usage_statistics_failed", 502)         \
  X(kUpstreamUnavailable, "request_failed", 502)                                        \
  X(kPricesRequired, "prices_required", 400)                                            \
  X(kApiKeyAliasesRequired, "api_key_aliases_required", 400)                            \
  X(kApiKeyAliasDuplicate, "api_key_alias_duplicate", 400)                              \
  X(kModelPriceSyncFailed, "model_price_sync_failed", 502)                              \
  X(kGatewayTimeout, "request_failed", 504)                                             \
  X(kUnavailable, "request_failed", 503)

enum class ErrorCode {
#define CPAMP_X(name, wire, status) name,
  CPAMP_ERROR_CODES(CPAMP_X)
#undef CPAMP_X
};

// The `code` string sent on the wire ("" for kOk).
std::string_view WireCode(ErrorCode code);
// The HTTP status a handler answers with unless it has a reason to pick another.
int DefaultHttpStatus(ErrorCode code);
// The enumerator name, for logs and test failure messages.
std::string_view ErrorCodeName(ErrorCode code);

}  // namespace cpamp
