// The one definition of a `usage_events` row (spec cpamp-storage.md §3.4, HEAD v1.12.2 columns in
// declared order, `id` first). Everything that names these columns is generated from this table:
//   - db/schema.cc: CREATE TABLE and the ADD COLUMN upgrade of older files;
//   - usage/usage.h: the members of usage::UsageEvent (type and default);
//   - usage/event_store.cc: the INSERT statement, its binder and the named column indexes used by
//     readers that select every column (usage::UsageEventColumn).
// Adding a column is one row here plus a numbered migration that adds it to existing files.
//
// X(name, cpp_kind, sql_decl, default) — cpp_kind is one of:
//   Text (std::string), OptText (std::optional<std::string>), Int (int64_t),
//   OptInt (std::optional<int64_t>), OptReal (std::optional<double>), Bool (bool, stored 0/1).
// `id` is the rowid alias and is not part of UsageEvent: it is listed separately.
#pragma once

#define CPAMP_USAGE_EVENT_ID_COLUMN(X) X(id, Int, "integer primary key autoincrement", {})

// clang-format off
#define CPAMP_USAGE_EVENT_COLUMNS(X)                                                    \
  X(request_id, OptText, "text", {})                                                    \
  X(event_hash, Text, "text not null", {})  /* hex SHA-256, §4.10; dedup: schema.cc */    \
  X(timestamp_ms, Int, "integer not null", {})            /* epoch ms, UTC */           \
  X(timestamp, Text, "text not null", {})                 /* UTC RFC3339Nano */         \
  X(provider, OptText, "text", {})                                                      \
  X(executor_type, OptText, "text", {})                                                 \
  X(model, Text, "text not null", {"-"})     /* requested, else resolved, else "-" */   \
  X(endpoint, OptText, "text", {})                        /* "POST /v1/responses" */    \
  X(method, OptText, "text", {})                                                        \
  X(path, OptText, "text", {})                                                          \
  X(client_ip, OptText, "text", {})                       /* sanitised, <= 64 B */      \
  X(x_forwarded_for, OptText, "text", {})                 /* sanitised, <= 2048 B */    \
  X(user_agent, OptText, "text", {})                      /* sanitised, <= 1024 B */    \
  X(auth_type, OptText, "text", {})                                                     \
  X(auth_index, OptText, "text", {})                                                    \
  X(source, OptText, "text", {})                          /* masked, §4.9 */            \
  X(source_hash, OptText, "text", {})      /* SHA-256 hex of the unmasked source */     \
  X(api_key_hash, OptText, "text", {})     /* SHA-256 hex of the client API key */      \
  X(account_snapshot, OptText, "text", {})                                              \
  X(auth_label_snapshot, OptText, "text", {})                                           \
  X(auth_file_snapshot, OptText, "text", {})                                            \
  X(auth_provider_snapshot, OptText, "text", {})                                        \
  X(auth_project_id_snapshot, OptText, "text", {})                                      \
  X(auth_snapshot_at_ms, OptInt, "integer", {})                                         \
  X(requested_model, OptText, "text", {})                                               \
  X(resolved_model, OptText, "text", {})                                                \
  X(reasoning_effort, OptText, "text", {})                                              \
  X(service_tier, OptText, "text", {})                    /* effective tier, §4.7 */    \
  X(request_service_tier, OptText, "text", {})                                          \
  X(response_service_tier, OptText, "text", {})                                         \
  X(cache_input_mode, OptText, "text", {})  /* included_in_input|separate_from_input */ \
  X(input_tokens, Int, "integer not null default 0", {})                                \
  X(output_tokens, Int, "integer not null default 0", {})                               \
  X(reasoning_tokens, Int, "integer not null default 0", {})                            \
  X(cached_tokens, Int, "integer not null default 0", {})                               \
  X(cache_tokens, Int, "integer not null default 0", {})                                \
  X(cache_read_tokens, Int, "integer not null default 0", {})                           \
  X(cache_creation_tokens, Int, "integer not null default 0", {})                       \
  X(normalized_uncached_input_tokens, OptInt, "integer", {})                            \
  X(normalized_total_input_tokens, OptInt, "integer", {})                               \
  X(normalized_cache_read_tokens, OptInt, "integer", {})                                \
  X(normalized_cache_creation_tokens, OptInt, "integer", {})                            \
  X(total_tokens, Int, "integer not null default 0", {})                                \
  X(latency_ms, OptInt, "integer", {})                                                  \
  X(ttft_ms, OptInt, "integer", {})                                                     \
  X(failed, Bool, "integer not null default 0", {})                                     \
  X(fail_status_code, OptInt, "integer", {})                                            \
  X(fail_summary, OptText, "text", {})       /* redacted failure evidence */            \
  X(response_metadata_json, OptText, "text", {})                                        \
  X(header_quota_recover_at_ms, OptInt, "integer", {})                                  \
  X(header_quota_used_percent, OptReal, "real", {})                                     \
  X(header_quota_plan_type, OptText, "text", {})                                        \
  X(header_error_kind, OptText, "text", {})                                             \
  X(header_error_code, OptText, "text", {})                                             \
  X(header_trace_id, OptText, "text", {})                                               \
  X(fail_body, OptText, "text", {})          /* raw, unredacted; never exposed */       \
  X(raw_json, OptText, "text", {})           /* key-redacted copy of the record */      \
  X(created_at_ms, Int, "integer not null", {})
// clang-format on
