-- Upstream CPA Manager Plus v1.1.0 (commit 7e3164de) schema, written from the storage spec
-- section 3.3 (declared column order), plus a few representative rows. Used by src/db tests to
-- check that our migrations open such a file without losing or changing data.
pragma journal_mode = wal;

create table if not exists usage_events (
  id integer primary key autoincrement,
  request_id text,
  event_hash text not null unique,
  timestamp_ms integer not null,
  timestamp text not null,
  provider text,
  executor_type text,
  model text not null,
  endpoint text,
  method text,
  path text,
  auth_type text,
  auth_index text,
  source text,
  source_hash text,
  api_key_hash text,
  account_snapshot text,
  auth_label_snapshot text,
  auth_file_snapshot text,
  auth_provider_snapshot text,
  auth_project_id_snapshot text,
  auth_snapshot_at_ms integer,
  requested_model text,
  resolved_model text,
  reasoning_effort text,
  service_tier text,
  input_tokens integer not null default 0,
  output_tokens integer not null default 0,
  reasoning_tokens integer not null default 0,
  cached_tokens integer not null default 0,
  cache_tokens integer not null default 0,
  cache_read_tokens integer not null default 0,
  cache_creation_tokens integer not null default 0,
  total_tokens integer not null default 0,
  latency_ms integer,
  ttft_ms integer,
  failed integer not null default 0,
  fail_status_code integer,
  fail_summary text,
  fail_body text,
  raw_json text,
  created_at_ms integer not null
);

create index if not exists idx_usage_events_timestamp on usage_events(timestamp_ms);
create index if not exists idx_usage_events_request_id on usage_events(request_id);
create index if not exists idx_usage_events_model on usage_events(model);
create index if not exists idx_usage_events_auth_index on usage_events(auth_index);
create index if not exists idx_usage_events_endpoint on usage_events(endpoint);

create table if not exists dead_letter_events (
  id integer primary key autoincrement,
  payload text not null,
  error text not null,
  created_at_ms integer not null
);

create table if not exists settings (
  key text primary key,
  value text not null,
  updated_at_ms integer not null
);

create table if not exists model_prices (
  model text primary key,
  prompt_per_1m real not null,
  completion_per_1m real not null,
  cache_per_1m real not null,
  cache_read_per_1m real not null default 0,
  cache_creation_per_1m real not null default 0,
  source text,
  source_model_id text,
  raw_json text,
  updated_at_ms integer not null,
  synced_at_ms integer
);

create table if not exists api_key_aliases (
  api_key_hash text primary key,
  alias text not null,
  updated_at_ms integer not null
);

create table if not exists codex_inspection_runs (
  id integer primary key autoincrement,
  trigger_type text not null,
  trigger_key text,
  status text not null,
  started_at_ms integer not null,
  finished_at_ms integer,
  total_files integer not null default 0,
  probe_set_count integer not null default 0,
  sampled_count integer not null default 0,
  disabled_count integer not null default 0,
  enabled_count integer not null default 0,
  delete_count integer not null default 0,
  disable_count integer not null default 0,
  enable_count integer not null default 0,
  reauth_count integer not null default 0,
  keep_count integer not null default 0,
  error text,
  settings_json text not null,
  created_at_ms integer not null,
  updated_at_ms integer not null
);

create table if not exists codex_inspection_results (
  id integer primary key autoincrement,
  run_id integer not null,
  account_key text not null,
  file_name text not null,
  display_account text not null,
  auth_index text,
  account_id text,
  provider text,
  disabled integer not null default 0,
  status text,
  state text,
  action text not null,
  action_reason text,
  action_status text,
  executed_action text,
  action_error text,
  status_code integer,
  used_percent real,
  is_quota integer not null default 0,
  error text,
  created_at_ms integer not null,
  foreign key(run_id) references codex_inspection_runs(id) on delete cascade,
  unique(run_id, account_key)
);

create table if not exists codex_inspection_logs (
  id integer primary key autoincrement,
  run_id integer not null,
  level text not null,
  message text not null,
  detail_json text,
  created_at_ms integer not null,
  foreign key(run_id) references codex_inspection_runs(id) on delete cascade
);

create index if not exists idx_codex_inspection_runs_started_at on codex_inspection_runs(started_at_ms);
create index if not exists idx_codex_inspection_runs_status on codex_inspection_runs(status);
create index if not exists idx_codex_inspection_runs_trigger on codex_inspection_runs(trigger_type, trigger_key);
create index if not exists idx_codex_inspection_results_run on codex_inspection_results(run_id);
create index if not exists idx_codex_inspection_logs_run on codex_inspection_logs(run_id, created_at_ms);

-- Rows ------------------------------------------------------------------------------------------

insert into settings (key, value, updated_at_ms) values
  ('setup',
   '{"cpaBaseUrl":"http://127.0.0.1:8317","managementKey":"plain-management-key-123","queue":"usage","popSide":"right"}',
   1748000000000),
  ('manager_config_v1',
   '{"cpaConnection":{"cpaBaseUrl":"http://127.0.0.1:8317","managementKey":"plain-management-key-123"},"collector":{"enabled":true,"collectorMode":"auto","queue":"usage","popSide":"right","batchSize":100,"pollIntervalMs":500,"queryLimit":50000,"tlsSkipVerify":false},"externalUsageService":{"enabled":false,"serviceBase":""},"updatedAtMs":1748000000000}',
   1748000000001);

insert into usage_events (
  request_id, event_hash, timestamp_ms, timestamp, provider, executor_type, model, endpoint,
  method, path, auth_type, auth_index, source, source_hash, api_key_hash, account_snapshot,
  requested_model, resolved_model, reasoning_effort, service_tier, input_tokens, output_tokens,
  reasoning_tokens, cached_tokens, cache_tokens, cache_read_tokens, cache_creation_tokens,
  total_tokens, latency_ms, ttft_ms, failed, fail_status_code, fail_summary, fail_body, raw_json,
  created_at_ms)
values
  ('req-1', '3f7a0c1e9b2d4a6f8e1c3b5d7f9a0c2e4b6d8f0a1c3e5b7d9f1a3c5e7b9d1f3a', 1748000100000,
   '2025-05-23T11:35:00Z', 'codex', 'codex', 'gpt-5.4', 'POST /v1/responses', 'POST',
   '/v1/responses', 'oauth', '2', 'us***@example.com', 'aa11', 'bb22', 'user@example.com',
   'gpt-5.4', 'gpt-5.4', 'high', 'priority', 1200, 300, 50, 1000, 0, 0, 0, 1500, 2345, 410, 0,
   null, null, null, '{"model":"gpt-5.4"}', 1748000100500),
  ('req-2', '9d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f', 1748000200000,
   '2025-05-23T11:36:40Z', 'claude', 'claude', 'claude-sonnet-4', 'POST /v1/messages', 'POST',
   '/v1/messages', 'apikey', '5', 'sk-***abcd', 'cc33', 'dd44', null,
   null, null, null, null, 10, 0, 0, 0, 0, 0, 0, 10, 120, null, 1,
   429, 'rate limited', 'rate limited body', '{"failed":true}', 1748000200500);

insert into model_prices (model, prompt_per_1m, completion_per_1m, cache_per_1m, cache_read_per_1m,
                          cache_creation_per_1m, source, source_model_id, raw_json, updated_at_ms,
                          synced_at_ms)
values
  ('gpt-5.4', 1.25, 10.0, 0.125, 0.125, 0, 'models.dev', 'openai/gpt-5.4', '{"id":"gpt-5.4"}',
   1748000000000, 1748000000000),
  ('claude-sonnet-4', 3.0, 15.0, 0.3, 0.3, 3.75, 'manual', null, null, 1748000000000, null),
  ('free-model', 0, 0, 0, 0, 0, 'manual', null, null, 1748000000000, null);

insert into api_key_aliases (api_key_hash, alias, updated_at_ms) values
  ('bb22', 'laptop', 1748000000000);

insert into dead_letter_events (payload, error, created_at_ms) values
  ('not json at all', 'invalid character ''o'' in literal null (expecting ''u'')', 1748000300000);

insert into codex_inspection_runs (trigger_type, trigger_key, status, started_at_ms,
                                   finished_at_ms, total_files, settings_json, created_at_ms,
                                   updated_at_ms)
values ('manual', null, 'completed', 1748000400000, 1748000401000, 1, '{}', 1748000400000,
        1748000401000);

insert into codex_inspection_results (run_id, account_key, file_name, display_account, auth_index,
                                      provider, action, status_code, used_percent, created_at_ms)
values (1, 'acct-1', 'codex-user.json', 'user@example.com', '2', 'codex', 'keep', 200, 42.5,
        1748000400500);

insert into codex_inspection_logs (run_id, level, message, detail_json, created_at_ms) values
  (1, 'info', 'inspection finished', '{"files":1}', 1748000401000);
