// Maps server error codes (cpamp-api.md §5.3) and transport failures to i18n message keys.
import { ApiError } from './client';
import type { MessageKey } from '../i18n/en';

/** Every code the panel localises, with its message key. */
export const kErrorCodeMessages: Record<string, MessageKey> = {
  request_failed: 'error.request_failed',
  connection_env_managed: 'error.connection_env_managed',
  account_processing_policy_env_locked: 'error.account_processing_policy_env_locked',
  cpa_connection_already_bound: 'error.cpa_connection_already_bound',
  cpa_connection_required: 'error.cpa_connection_required',
  cpa_connection_required_for_monitoring: 'error.cpa_connection_required_for_monitoring',
  management_api_validation_failed: 'error.management_api_validation_failed',
  management_api_config_failed: 'error.management_api_config_failed',
  cpa_usage_retention_invalid: 'error.cpa_usage_retention_invalid',
  poll_interval_exceeds_retention: 'error.poll_interval_exceeds_retention',
  invalid_time_zone: 'error.invalid_time_zone',
  enable_cpa_usage_statistics_failed: 'error.enable_cpa_usage_statistics_failed',
  setup_env_managed: 'error.setup_env_managed',
  invalid_existing_management_key: 'error.invalid_existing_management_key',
  invalid_admin_key: 'error.invalid_admin_key',
  invalid_management_key: 'error.invalid_management_key',
  usage_service_not_configured: 'error.usage_service_not_configured',
  prices_required: 'error.prices_required',
  api_key_aliases_required: 'error.api_key_aliases_required',
  api_key_alias_duplicate: 'error.api_key_alias_duplicate',
  model_price_sync_failed: 'error.model_price_sync_failed',
  method_not_allowed: 'error.method_not_allowed',
  usage_import_session_invalid_request: 'error.usage_import_session_invalid_request',
  usage_import_session_not_found: 'error.usage_import_session_not_found',
  usage_import_session_conflict: 'error.usage_import_session_conflict',
  usage_import_session_too_large: 'error.usage_import_session_too_large',
  usage_import_session_quota_exceeded: 'error.usage_import_session_quota_exceeded',
  usage_import_session_limit_exceeded: 'error.usage_import_session_limit_exceeded',
  usage_import_session_unavailable: 'error.usage_import_session_unavailable',
  network_error: 'error.network_error',
  timeout: 'error.timeout',
  invalid_response: 'error.invalid_response',
};

export interface LocalisedError {
  key: MessageKey;
  params: Record<string, string | number>;
  /** The server's own message, shown as detail. */
  detail: string;
}

/** Pulls "(60 seconds)" out of the poll-interval message so the text can name the limit. */
function retentionSeconds(message: string): string {
  const m = /\((\d+) seconds?\)/.exec(message) ?? /(\d+)\s*s/.exec(message);
  return m?.[1] ?? '60';
}

/** Turns any thrown value into a message key + params + raw detail. */
export function describeError(e: unknown): LocalisedError {
  if (e instanceof ApiError) {
    let key = kErrorCodeMessages[e.code];
    if (!key) {
      if (e.status === 501 || e.status === 404) key = 'error.not_available';
      else if (e.status === 413) key = 'error.too_large';
      else if (e.status >= 500) key = 'error.server_error';
      else key = 'error.request_failed';
    }
    const params: Record<string, string | number> = { status: e.status };
    if (e.code === 'poll_interval_exceeds_retention')
      params['seconds'] = retentionSeconds(e.message);
    return { key, params, detail: e.message };
  }
  return {
    key: 'error.unexpected',
    params: {},
    detail: e instanceof Error ? e.message : String(e),
  };
}
