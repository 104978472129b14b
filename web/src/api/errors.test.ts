import { describe, expect, it } from 'vitest';
import { ApiError, parseErrorBody } from './client';
import { describeError, kErrorCodeMessages } from './errors';
import { translate } from '../i18n';
import { stepForError } from '../pages/Login';

describe('error codes → localised messages', () => {
  it('maps every server code in cpamp-api §5.3 to a message', () => {
    const codes = [
      'request_failed',
      'connection_env_managed',
      'account_processing_policy_env_locked',
      'cpa_connection_already_bound',
      'cpa_connection_required',
      'cpa_connection_required_for_monitoring',
      'management_api_validation_failed',
      'management_api_config_failed',
      'cpa_usage_retention_invalid',
      'poll_interval_exceeds_retention',
      'invalid_time_zone',
      'enable_cpa_usage_statistics_failed',
      'setup_env_managed',
      'invalid_existing_management_key',
      'invalid_admin_key',
      'invalid_management_key',
      'usage_service_not_configured',
      'prices_required',
      'api_key_aliases_required',
      'api_key_alias_duplicate',
      'model_price_sync_failed',
      'method_not_allowed',
      'usage_import_session_invalid_request',
      'usage_import_session_not_found',
      'usage_import_session_conflict',
      'usage_import_session_too_large',
      'usage_import_session_quota_exceeded',
      'usage_import_session_limit_exceeded',
      'usage_import_session_unavailable',
    ];
    for (const code of codes) {
      const d = describeError(new ApiError(400, code, 'x'));
      expect(d.key, code).toBe(kErrorCodeMessages[code]);
      expect(translate('en', d.key, d.params)).not.toContain('{');
      expect(translate('zh-CN', d.key, d.params)).not.toContain('{');
    }
  });

  it('names the CPA retention in the poll-interval message', () => {
    const err = parseErrorBody(
      400,
      JSON.stringify({
        error:
          'pollIntervalMs must be less than or equal to CPA redis-usage-queue-retention-seconds (60 seconds)',
        code: 'poll_interval_exceeds_retention',
      }),
    );
    const d = describeError(err);
    expect(translate('en', d.key, d.params)).toBe(
      'The poll interval exceeds the CPA queue retention of 60 s. Choose a shorter interval.',
    );
    expect(translate('zh-CN', d.key, d.params)).toContain('60 秒');
  });

  it('falls back on the HTTP status when the body has no code', () => {
    expect(parseErrorBody(401, '').code).toBe('invalid_admin_key');
    expect(parseErrorBody(405, '').code).toBe('method_not_allowed');
    expect(parseErrorBody(412, '').code).toBe('usage_service_not_configured');
    expect(parseErrorBody(428, '{"error":"usage service is not configured"}').message).toBe(
      'usage service is not configured',
    );
  });

  it('treats 501 and 404 as "not available yet"', () => {
    const e = parseErrorBody(
      501,
      '{"error":"endpoint /v0/management/dashboard/summary is not implemented in this version","code":"request_failed"}',
    );
    expect(e.notAvailable).toBe(true);
    expect(parseErrorBody(404, '404 page not found\n').notAvailable).toBe(true);
    expect(describeError(parseErrorBody(404, '404 page not found')).key).toBe(
      'error.not_available',
    );
  });

  it('reads nested error messages and transport failures', () => {
    expect(parseErrorBody(500, '{"error":{"message":"boom"}}').message).toBe('boom');
    expect(describeError(new ApiError(0, 'network_error', 'Failed to fetch')).key).toBe(
      'error.network_error',
    );
    expect(describeError(new Error('x')).key).toBe('error.unexpected');
  });

  it('sends the wizard back to the step that caused the error', () => {
    expect(stepForError('invalid_admin_key')).toBe('admin');
    expect(stepForError('management_api_validation_failed')).toBe('cpaKey');
    expect(stepForError('poll_interval_exceeds_retention')).toBe('polling');
    expect(stepForError('network_error')).toBe('connection');
  });
});
