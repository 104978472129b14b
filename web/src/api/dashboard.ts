// GET /v0/management/dashboard/summary (cpamp-api.md §4.11).
import { request, type Connection } from './client';

export interface TodayMetrics {
  total_calls: number;
  success_calls: number;
  failure_calls: number;
  success_rate: number;
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
  cache_read_tokens: number;
  cache_creation_tokens: number;
  reasoning_tokens: number;
  total_tokens: number;
  total_cost: number;
  average_latency_ms: number | null;
  zero_token_calls: number;
}

export interface ModelRow {
  model: string;
  calls: number;
  tokens: number;
  cost: number;
  success_rate: number;
  cost_share?: number;
}

export interface TimelinePoint {
  bucket_ms: number;
  calls: number;
  tokens: number;
  success: number;
  failure: number;
  calls_share?: number;
  tokens_share?: number;
  failure_rate?: number;
}

export type Tone = 'good' | 'warn' | 'bad' | 'empty' | 'future';

export interface HealthPoint {
  bucket_ms: number;
  calls: number;
  tokens: number;
  success: number;
  failure: number;
  success_rate: number;
  failure_rate: number;
  tone: Tone;
  intensity: number;
  future: boolean;
}

export interface Identity {
  auth_index: string;
  source?: string;
  source_hash?: string;
  account_snapshot?: string;
  auth_label_snapshot?: string;
  auth_provider_snapshot?: string;
}

export interface ChannelHealth extends Identity {
  calls: number;
  failures: number;
  failure_rate: number;
  success_rate: number;
  tokens: number;
  cost: number;
  average_latency_ms: number | null;
  tone: Tone;
}

export interface FailureSource extends Identity {
  calls: number;
  failures?: number;
  failure?: number;
  failure_rate?: number;
  last_seen_ms: number;
  average_latency_ms: number | null;
  tone?: Tone;
}

export interface RecentFailure extends Identity {
  timestamp_ms: number;
  model: string;
  api_key_hash: string;
  endpoint: string;
  duration_ms: number;
  fail_status_code?: number;
  fail_summary?: string;
}

export interface DashboardSummary {
  generated_at_ms: number;
  window: { today_start_ms: number; now_ms: number; rolling_30m_start_ms: number };
  today: TodayMetrics;
  rolling_30m: { rpm: number; tpm: number; total_calls: number; total_tokens: number };
  top_models_today: ModelRow[];
  model_cost_rank: ModelRow[];
  traffic_timeline: TimelinePoint[];
  hourly_activity: {
    hour_index: number;
    bucket_ms: number;
    calls: number;
    tokens: number;
    intensity: number;
  }[];
  today_request_health_timeline: {
    from_ms: number;
    to_ms: number;
    bucket_ms: number;
    success_calls: number;
    failure_calls: number;
    total_calls: number;
    success_rate: number;
    points: HealthPoint[];
  };
  token_mix: { key: string; tokens: number; share: number }[];
  channel_health: ChannelHealth[];
  failure_sources: FailureSource[];
  recent_failures: RecentFailure[];
}

export function getDashboardSummary(
  conn: Connection,
  q: { todayStartMs: number; nowMs: number; topModels?: number; recentFailures?: number },
) {
  return request<DashboardSummary>(conn, '/v0/management/dashboard/summary', {
    query: {
      today_start_ms: q.todayStartMs,
      now_ms: q.nowMs,
      top_models: q.topModels ?? 5,
      recent_failures: q.recentFailures ?? 10,
    },
  });
}

/** Display label of a credential row: label, account, source, or `#auth_index`. */
export function identityLabel(r: Partial<Identity>): string {
  return (
    r.auth_label_snapshot ||
    r.account_snapshot ||
    r.source ||
    (r.auth_index ? `#${r.auth_index}` : '—')
  );
}
