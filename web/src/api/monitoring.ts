// POST /v0/management/monitoring/analytics (cpamp-api.md §4.12, cpamp-storage.md §6.3).
import { request, type Connection } from './client';
import type { Identity, RecentFailure } from './dashboard';

export interface AnalyticsFilters {
  models?: string[];
  providers?: string[];
  accounts?: string[];
  credential_ids?: string[];
  auth_files?: string[];
  auth_indices?: string[];
  api_key_hashes?: string[];
  source_hashes?: string[];
  include_failed?: boolean;
  failed_only?: boolean;
  min_latency_ms?: number;
  cache_status?: 'hit' | 'miss' | 'read' | 'creation';
}

export interface AnalyticsInclude {
  summary?: boolean;
  summary_profile?: 'compact' | 'full';
  summary_percentiles?: boolean;
  summary_comparison?: boolean;
  timeline?: boolean;
  hourly_distribution?: boolean;
  model_share?: boolean;
  channel_share?: boolean;
  model_stats?: boolean;
  failure_sources?: boolean;
  account_stats?: boolean;
  credential_stats?: boolean;
  api_key_stats?: boolean;
  filter_options?: boolean;
  heatmap?: boolean;
  anomaly_points?: boolean;
  task_buckets?: boolean;
  recent_failures?: number;
  events_page?: { limit: number; before_ms?: number | null; before_id?: number | null };
  granularity?: 'hour' | 'day' | 'auto';
}

export interface AnalyticsRequest {
  from_ms: number;
  to_ms: number;
  now_ms?: number;
  time_zone?: string;
  search_query?: string;
  search_api_key_hash?: string;
  filters?: AnalyticsFilters;
  include: AnalyticsInclude;
}

export interface Summary {
  total_calls: number;
  success_calls: number;
  failure_calls: number;
  success_rate: number;
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
  cache_read_tokens: number;
  cache_creation_tokens: number;
  cache_hit_rate?: number;
  reasoning_tokens: number;
  total_tokens: number;
  total_cost: number;
  average_cost_per_call?: number;
  average_latency_ms: number | null;
  p95_latency_ms?: number | null;
  p95_ttft_ms?: number | null;
  zero_token_calls: number;
  rpm_30m: number;
  tpm_30m: number;
  avg_daily_requests: number;
  avg_daily_tokens: number;
  approx_tasks: number;
  approx_task_failures: number;
  approx_task_success_rate: number;
}

export interface SummaryComparison {
  from_ms: number;
  to_ms: number;
  total_calls: number;
  success_calls: number;
  failure_calls: number;
  success_rate: number;
  total_tokens: number;
  total_cost: number;
}

export interface AnalyticsTimelinePoint {
  bucket_ms: number;
  label: string;
  calls: number;
  tokens: number;
  success: number;
  failure: number;
  cost?: number;
  average_latency_ms?: number | null;
  p95_latency_ms?: number | null;
}

export interface StatRow extends Partial<Identity> {
  api_key_hash?: string;
  credential_id?: string;
  auth_file_snapshot?: string;
  calls: number;
  success_calls: number;
  failure_calls: number;
  success_rate: number;
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
  cache_read_tokens: number;
  cache_creation_tokens: number;
  total_tokens: number;
  cost: number;
  average_latency_ms: number | null;
  last_seen_ms: number;
  models?: (string | { model: string; calls?: number })[];
}

export interface ModelStat {
  model: string;
  calls: number;
  success_calls: number;
  failure_calls: number;
  success_rate: number;
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
  cache_read_tokens: number;
  cache_creation_tokens: number;
  total_tokens: number;
  cost: number;
  cache_hit_rate?: number;
}

export interface HeatmapCell {
  weekday: number;
  hour: number;
  calls: number;
  success: number;
  failure: number;
  tokens: number;
  cost: number;
  failure_rate: number;
}

export interface AnomalyPoint {
  bucket_ms: number;
  bucket_end_ms: number;
  label: string;
  severity: string;
  metric_keys: string[];
  calls: number;
  total_tokens: number;
  cost: number;
  failure_rate: number;
}

export interface EventRow {
  request_id?: string;
  id?: number;
  event_hash: string;
  timestamp_ms: number;
  model: string;
  analytics_model?: string;
  requested_model?: string;
  resolved_model?: string;
  client_ip?: string;
  x_forwarded_for?: string;
  user_agent?: string;
  auth_file_snapshot?: string;
  auth_project_id_snapshot?: string;
  executor_type?: string;
  response_metadata?: Record<string, unknown>;
  header_quota_recover_at_ms?: number;
  header_quota_used_percent?: number;
  header_quota_plan_type?: string;
  header_error_kind?: string;
  header_error_code?: string;
  header_trace_id?: string;
  endpoint: string;
  method: string;
  path: string;
  auth_index: string;
  source: string;
  source_hash: string;
  api_key_hash: string;
  account_snapshot: string;
  auth_label_snapshot: string;
  auth_provider_snapshot: string;
  reasoning_effort?: string;
  service_tier?: string;
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
  cache_read_tokens: number;
  cache_creation_tokens: number;
  reasoning_tokens: number;
  total_tokens: number;
  latency_ms: number;
  ttft_ms: number;
  failed: boolean;
  fail_status_code?: number;
  fail_summary?: string;
}

export interface EventsPage {
  items: EventRow[];
  next_before_ms: number;
  next_before_id: number;
  has_more: boolean;
  total_count: number;
}

export interface FilterOptions {
  models?: string[];
  providers?: string[];
  accounts?: string[];
  api_key_hashes?: string[];
  auth_files?: string[];
  model_stats?: ModelStat[];
  account_stats?: StatRow[];
  api_key_stats?: StatRow[];
}

export interface AnalyticsResponse {
  generated_at_ms: number;
  granularity: 'hour' | 'day';
  summary?: Summary;
  summary_comparison?: SummaryComparison;
  timeline?: AnalyticsTimelinePoint[];
  hourly_distribution?: { hour: number; calls: number; tokens: number }[];
  heatmap?: HeatmapCell[];
  anomaly_points?: AnomalyPoint[];
  model_share?: { model: string; calls: number; tokens: number; cost: number }[];
  model_stats?: ModelStat[];
  channel_share?: (Identity & {
    calls: number;
    success: number;
    failure: number;
    tokens: number;
    cost: number;
    average_latency_ms?: number | null;
  })[];
  failure_sources?: (Identity & { calls: number; failure: number; last_seen_ms: number })[];
  account_stats?: StatRow[];
  credential_stats?: StatRow[];
  api_key_stats?: StatRow[];
  filter_options?: FilterOptions;
  recent_failures?: RecentFailure[];
  events?: EventsPage;
}

export const postAnalytics = (conn: Connection, body: AnalyticsRequest) =>
  request<AnalyticsResponse>(conn, '/v0/management/monitoring/analytics', {
    method: 'POST',
    json: body,
    timeoutMs: 60_000,
  });

/** Unique values for a select: explicit option list, else names derived from stat rows. */
export function optionValues(list: string[] | undefined, rows?: { model?: string }[]): string[] {
  if (list && list.length) return [...new Set(list)].sort();
  return [...new Set((rows ?? []).map((r) => r.model ?? '').filter(Boolean))].sort();
}

type ChannelShareRow = NonNullable<AnalyticsResponse['channel_share']>[number];

/**
 * Account rows for the monitoring "accounts" tab: `account_stats` when the server provides
 * it, else derived from `channel_share` (same identity fields, fewer token columns).
 */
export function accountRows(r: AnalyticsResponse): StatRow[] {
  if (r.account_stats?.length) return r.account_stats;
  return (r.channel_share ?? []).map((c: ChannelShareRow) => ({
    ...c,
    success_calls: c.success,
    failure_calls: c.failure,
    success_rate: c.calls > 0 ? c.success / c.calls : 0,
    input_tokens: 0,
    output_tokens: 0,
    cached_tokens: 0,
    cache_read_tokens: 0,
    cache_creation_tokens: 0,
    total_tokens: c.tokens,
    average_latency_ms: c.average_latency_ms ?? null,
    last_seen_ms: 0,
  }));
}
