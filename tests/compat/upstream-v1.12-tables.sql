-- A subset of the upstream CPA Manager Plus HEAD (v1.12.2) schema, written from the storage spec
-- section 3.7 (declared column order), plus representative rows: the full HEAD usage_events, the
-- HEAD pricing tables, HEAD codex inspection tables and some derived tables we do not manage
-- (they must be left untouched). Used by src/db tests.
pragma journal_mode = wal;

create table if not exists usage_events (
  id integer primary key autoincrement, request_id text, event_hash text not null unique,
  timestamp_ms integer not null, timestamp text not null, provider text, executor_type text,
  model text not null, endpoint text, method text, path text, client_ip text,
  x_forwarded_for text, user_agent text, auth_type text, auth_index text, source text,
  source_hash text, api_key_hash text, account_snapshot text, auth_label_snapshot text,
  auth_file_snapshot text, auth_provider_snapshot text, auth_project_id_snapshot text,
  auth_snapshot_at_ms integer, requested_model text, resolved_model text, reasoning_effort text,
  service_tier text, request_service_tier text, response_service_tier text,
  cache_input_mode text, input_tokens integer not null default 0,
  output_tokens integer not null default 0, reasoning_tokens integer not null default 0,
  cached_tokens integer not null default 0, cache_tokens integer not null default 0,
  cache_read_tokens integer not null default 0, cache_creation_tokens integer not null default 0,
  normalized_uncached_input_tokens integer, normalized_total_input_tokens integer,
  normalized_cache_read_tokens integer, normalized_cache_creation_tokens integer,
  total_tokens integer not null default 0, latency_ms integer, ttft_ms integer,
  failed integer not null default 0, fail_status_code integer, fail_summary text,
  response_metadata_json text, header_quota_recover_at_ms integer,
  header_quota_used_percent real, header_quota_plan_type text, header_error_kind text,
  header_error_code text, header_trace_id text, fail_body text, raw_json text,
  created_at_ms integer not null
);
create index if not exists idx_usage_events_timestamp on usage_events(timestamp_ms);
create index if not exists idx_usage_events_header_error_kind on usage_events(header_error_kind);
create index if not exists idx_usage_events_latest_request_auth_file on usage_events(
  auth_file_snapshot collate nocase, auth_index collate nocase, timestamp_ms desc, id desc);

create table if not exists dead_letter_events (
  id integer primary key autoincrement, payload text not null, error text not null,
  created_at_ms integer not null
);

create table if not exists settings (
  key text primary key, value text not null, updated_at_ms integer not null
);

create table if not exists model_prices (
  model text primary key, prompt_per_1m real not null, completion_per_1m real not null,
  cache_per_1m real not null, cache_read_per_1m real not null default 0,
  cache_creation_per_1m real not null default 0, prompt_configured integer not null default 0,
  completion_configured integer not null default 0,
  cache_read_configured integer not null default 0,
  cache_creation_configured integer not null default 0, source text, source_model_id text,
  raw_json text, updated_at_ms integer not null, synced_at_ms integer
);

create table if not exists model_price_context_tiers (
  model text not null, threshold_tokens integer not null, prompt_per_1m real not null default 0,
  completion_per_1m real not null default 0, cache_per_1m real not null default 0,
  cache_read_per_1m real not null default 0, cache_creation_per_1m real not null default 0,
  prompt_configured integer not null default 0, completion_configured integer not null default 0,
  cache_configured integer not null default 0, cache_read_configured integer not null default 0,
  cache_creation_configured integer not null default 0,
  primary key (model, threshold_tokens),
  foreign key (model) references model_prices(model) on delete cascade
);

create table if not exists api_key_aliases (
  api_key_hash text primary key, alias text not null, updated_at_ms integer not null
);

create table if not exists codex_inspection_runs (
  id integer primary key autoincrement, trigger_type text not null, trigger_key text,
  status text not null, started_at_ms integer not null, finished_at_ms integer,
  total_files integer not null default 0, probe_set_count integer not null default 0,
  sampled_count integer not null default 0, disabled_count integer not null default 0,
  enabled_count integer not null default 0, delete_count integer not null default 0,
  disable_count integer not null default 0, enable_count integer not null default 0,
  reauth_count integer not null default 0, keep_count integer not null default 0, error text,
  settings_json text not null, created_at_ms integer not null, updated_at_ms integer not null
);

create table if not exists codex_inspection_results (
  id integer primary key autoincrement, run_id integer not null, account_key text not null,
  file_name text not null, display_account text not null, account_snapshot text,
  auth_index text, account_id text, provider text, disabled integer not null default 0,
  status text, state text, action text not null, action_reason text, action_status text,
  executed_action text, action_error text, status_code integer, used_percent real,
  is_quota integer not null default 0, auto_recover_eligible integer not null default 0,
  error text, plan_type text, quota_windows_json text, error_kind text, error_detail text,
  created_at_ms integer not null,
  foreign key(run_id) references codex_inspection_runs(id) on delete cascade,
  unique(run_id, account_key)
);

create table if not exists codex_inspection_leases (
  id integer primary key check (id = 1), run_id integer, owner_id text not null,
  heartbeat_at_ms integer not null, lease_expires_at_ms integer not null,
  foreign key(run_id) references codex_inspection_runs(id) on delete set null
);

-- Derived tables we do not manage.
create table if not exists usage_hourly_aggregate_v1 (
  bucket_ms integer not null, model text not null, billing_model text not null,
  service_tier text not null, failed integer not null, calls integer not null default 0,
  input_tokens integer not null default 0, output_tokens integer not null default 0,
  reasoning_tokens integer not null default 0, cached_tokens integer not null default 0,
  cache_read_tokens integer not null default 0, cache_creation_tokens integer not null default 0,
  long_input_tokens integer not null default 0, long_output_tokens integer not null default 0,
  long_cached_tokens integer not null default 0, long_cache_read_tokens integer not null default 0,
  long_cache_creation_tokens integer not null default 0, total_tokens integer not null default 0,
  latency_sum_ms integer not null default 0, latency_samples integer not null default 0,
  zero_token_calls integer not null default 0, updated_at_ms integer not null,
  primary key (bucket_ms, model, billing_model, service_tier, failed)
);

create table if not exists usage_event_identity_ledger (
  event_hash text primary key, raw_event_id integer, timestamp_ms integer not null,
  bucket_ms integer not null, aggregate_schema_version integer not null default 0,
  aggregate_structure_revision text not null default '', first_seen_at_ms integer not null,
  updated_at_ms integer not null
);

create virtual table if not exists usage_monitoring_event_search_v1 using fts5(
  search_text, content='', columnsize=0, detail=none, tokenize='trigram');

-- Rows ------------------------------------------------------------------------------------------

insert into settings (key, value, updated_at_ms) values
  ('manager_config_v1', '{"cpaConnection":{"cpaBaseUrl":"http://cpa:8317","managementKey":"enc:v1:AAAAAAAAAAAAAAAA:BBBBBBBBBBBBBBBBBBBBBBBB"}}', 1755000000000),
  ('usage_dashboard_hourly_format_version', '3', 1755000000000);

insert into usage_events (
  request_id, event_hash, timestamp_ms, timestamp, provider, executor_type, model, endpoint,
  method, path, client_ip, x_forwarded_for, user_agent, auth_type, auth_index, source,
  source_hash, api_key_hash, auth_file_snapshot, service_tier, request_service_tier,
  response_service_tier, cache_input_mode, input_tokens, output_tokens, cached_tokens,
  normalized_uncached_input_tokens, normalized_total_input_tokens, normalized_cache_read_tokens,
  normalized_cache_creation_tokens, total_tokens, latency_ms, failed, response_metadata_json,
  header_quota_used_percent, header_quota_plan_type, header_error_kind, header_trace_id,
  raw_json, created_at_ms)
values
  ('req-h1', 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90', 1755000100000,
   '2025-08-12T12:01:40.123456789Z', 'codex', 'codex', 'gpt-5.5(high)', 'POST /v1/responses',
   'POST', '/v1/responses', '10.0.0.7', '203.0.113.9', 'curl/8.5', 'oauth', '3',
   'us***@example.com', 'ee55', 'ff66', 'codex-user.json', 'priority', 'priority', 'default',
   'included_in_input', 300000, 800, 120000, 180000, 300000, 120000, 0, 300800, 5123, 0,
   '{"x-codex-plan-type":"plus"}', 37.5, 'plus', null, 'trace-123', '{"model":"gpt-5.5"}',
   1755000100400);

insert into model_prices (model, prompt_per_1m, completion_per_1m, cache_per_1m,
                          cache_read_per_1m, cache_creation_per_1m, prompt_configured,
                          completion_configured, cache_read_configured,
                          cache_creation_configured, source, updated_at_ms)
values ('gpt-5.5', 5.0, 40.0, 0.5, 0.5, 0, 1, 0, 0, 0, 'manual', 1755000000000);

insert into model_price_context_tiers (model, threshold_tokens, prompt_per_1m, completion_per_1m,
                                       prompt_configured, completion_configured)
values ('gpt-5.5', 272000, 10.0, 60.0, 1, 1);

insert into codex_inspection_runs (trigger_type, status, started_at_ms, settings_json,
                                   created_at_ms, updated_at_ms)
values ('schedule', 'running', 1755000200000, '{}', 1755000200000, 1755000200000);

insert into codex_inspection_results (run_id, account_key, file_name, display_account,
                                      account_snapshot, action, auto_recover_eligible, plan_type,
                                      error_kind, created_at_ms)
values (1, 'acct-9', 'codex-9.json', 'nine@example.com', 'nine@example.com', 'disable', 1,
        'pro', 'quota', 1755000200100);

insert into codex_inspection_leases (id, run_id, owner_id, heartbeat_at_ms, lease_expires_at_ms)
values (1, 1, 'owner-abc', 1755000200000, 1755000260000);

insert into usage_hourly_aggregate_v1 (bucket_ms, model, billing_model, service_tier, failed,
                                       calls, input_tokens, total_tokens, updated_at_ms)
values (1754999999999, 'gpt-5.5', 'gpt-5.5', 'priority', 0, 1, 300000, 300800, 1755000101000);

insert into usage_event_identity_ledger (event_hash, raw_event_id, timestamp_ms, bucket_ms,
                                         first_seen_at_ms, updated_at_ms)
values ('a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90', 1, 1755000100000,
        1754998800000, 1755000100400, 1755000100400);

insert into usage_monitoring_event_search_v1 (rowid, search_text) values (1, 'gpt-5.5 codex');
