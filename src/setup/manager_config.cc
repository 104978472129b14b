// Manager configuration (settings.manager_config_v1) encoding and normalisation.
//
// The JSON shape follows upstream's Go struct tags: camelCase keys, scalar zero values omitted
// ("omitempty"), `collector.enabled` kept even when false (a pointer upstream), and
// `externalUsageService` always `{"enabled":false}`. Decoding is tolerant: a field of the
// wrong type is ignored rather than failing the whole object, because stored values written
// by older upstream versions must keep loading.

#include <date/tz.h>

#include <algorithm>
#include <boost/json.hpp>
#include <set>

#include "base/json.h"
#include "base/strings.h"
#include "setup/setup.h"

namespace cpamp::setup {
namespace bj = boost::json;

namespace {

std::string NormalizeMode(std::string_view mode) {
  std::string m = ToLower(Trim(mode));
  if (m == "subscribe" || m == "http" || m == "resp" || m == "auto") return m;
  return "auto";
}

std::string NormalizePopSide(std::string_view side, std::string_view fallback) {
  std::string s = ToLower(Trim(side));
  if (s == "left" || s == "right") return s;
  return std::string(fallback);
}

bj::object DefaultCodexInspection() {
  bj::object o;
  o["enabled"] = false;
  o["schedule"] = bj::object{{"mode", "interval"}, {"intervalMinutes", 60}};
  o["targetType"] = "codex";
  o["targetTypes"] = bj::array{"codex"};
  o["workers"] = 4;
  o["deleteWorkers"] = 4;
  o["timeout"] = 15000;
  o["userAgent"] = "codex_cli_rs/0.76.0 (Debian 13.0.0; x86_64) WindowsTerminal";
  o["usedPercentThreshold"] = 100;
  o["autoActionMode"] = "none";
  o["xaiInferenceUserAgent"] = "xai-grok-workspace/0.2.101";
  o["xaiInferenceModel"] = "grok-4.5";
  o["xaiInferencePrompt"] = "Reply with exactly OK.";
  return o;
}

bool ValidTimePoint(std::string_view t, std::string* normalized) {
  auto colon = t.find(':');
  if (colon == std::string_view::npos) return false;
  long long h = 0;
  long long m = 0;
  if (!ParseInt64(Trim(t.substr(0, colon)), &h) || !ParseInt64(Trim(t.substr(colon + 1)), &m))
    return false;
  if (h < 0 || h > 23 || m < 0 || m > 59) return false;
  char buf[6];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld", h, m);
  *normalized = buf;
  return true;
}

}  // namespace

Result<bj::object> NormalizeCodexInspection(const bj::object* submitted,
                                            const bj::object& current_in) {
  bj::object out = current_in.empty() ? DefaultCodexInspection() : current_in;
  if (submitted == nullptr) return out;
  const bj::object& in = *submitted;
  for (const char* key : {"enabled", "xaiInferenceEnabled", "autoRecoverEnabled"}) {
    if (auto b = json::GetBool(in, key)) out[key] = *b;
  }
  for (const char* key : {"workers", "deleteWorkers", "timeout"}) {
    if (auto n = json::GetInt(in, key); n && *n > 0) out[key] = *n;
  }
  for (const char* key : {"retries", "sampleSize"}) {
    if (auto n = json::GetInt(in, key); n && *n >= 0) out[key] = *n;
  }
  for (const char* key :
       {"userAgent", "xaiInferenceUserAgent", "xaiInferenceModel", "xaiInferencePrompt"}) {
    if (auto s = json::GetString(in, key); s && !Trim(*s).empty()) out[key] = Trim(*s);
  }
  if (auto d = json::GetDouble(in, "usedPercentThreshold")) {
    double v = *d;
    if (v > 0 && v <= 1) v *= 100;
    if (v >= 0 && v <= 100) out["usedPercentThreshold"] = v;
  }
  if (auto mode = json::GetString(in, "autoActionMode")) {
    std::string m = ToLower(Trim(*mode));
    if (m == "none" || m == "enable" || m == "disable" || m == "delete") out["autoActionMode"] = m;
  }
  // Target types: only codex and xai, canonical order, at least one when given explicitly.
  std::vector<std::string> targets;
  bool explicit_targets = false;
  if (const auto* arr = json::GetArray(in, "targetTypes")) {
    explicit_targets = true;
    for (const auto& v : *arr) {
      if (!v.is_string()) continue;
      targets.push_back(ToLower(Trim(v.as_string())));
    }
    if (targets.empty()) {
      return Error(ErrorCode::kRequestFailed, "at least one inspection target type is required");
    }
  } else if (auto t = json::GetString(in, "targetType"); t && !Trim(*t).empty()) {
    explicit_targets = true;
    targets.push_back(ToLower(Trim(*t)));
  }
  if (explicit_targets) {
    std::set<std::string> seen;
    for (const auto& t : targets) {
      if (t != "codex" && t != "xai") {
        return Error(ErrorCode::kRequestFailed, "unsupported inspection target type \"" + t + "\"");
      }
      seen.insert(t);
    }
    bj::array canonical;
    for (const char* t : {"codex", "xai"}) {
      if (seen.count(t)) canonical.emplace_back(t);
    }
    out["targetType"] = canonical.front();
    out["targetTypes"] = std::move(canonical);
  }
  if (const auto* sched = json::GetObject(in, "schedule")) {
    bj::object s = out.contains("schedule") && out["schedule"].is_object()
                       ? out["schedule"].as_object()
                       : bj::object{{"mode", "interval"}, {"intervalMinutes", 60}};
    if (auto mode = json::GetString(*sched, "mode")) {
      std::string m = ToLower(Trim(*mode));
      if (m == "interval" || m == "time_points") s["mode"] = m;
    }
    if (auto n = json::GetInt(*sched, "intervalMinutes"); n && *n > 0) s["intervalMinutes"] = *n;
    if (const auto* points = json::GetArray(*sched, "timePoints")) {
      std::set<std::string> uniq;
      for (const auto& p : *points) {
        std::string norm;
        if (p.is_string() && ValidTimePoint(p.as_string(), &norm)) uniq.insert(norm);
      }
      bj::array arr;
      for (const auto& p : uniq) arr.emplace_back(p);
      s["timePoints"] = std::move(arr);
    }
    if (auto tz = json::GetString(*sched, "timeZone")) {
      std::string name = Trim(*tz);
      if (!name.empty()) {
        try {
          (void)date::locate_zone(name);
        } catch (const std::exception&) {
          return Error(ErrorCode::kInvalidTimeZone, "invalid time zone \"" + name + "\"");
        }
        s["timeZone"] = name;
      } else {
        s.erase("timeZone");
      }
    }
    out["schedule"] = std::move(s);
  }
  return out;
}

ManagerConfig DefaultManagerConfig(const config::Config& cfg) {
  ManagerConfig mc;
  mc.collector.collector_mode = NormalizeMode(cfg.collector_mode);
  mc.collector.queue = cfg.queue.empty() ? "usage" : cfg.queue;
  mc.collector.pop_side = NormalizePopSide(cfg.pop_side, "right");
  mc.collector.batch_size = cfg.batch_size;
  mc.collector.poll_interval_ms = cfg.poll_interval_ms;
  mc.collector.query_limit = cfg.query_limit;
  mc.collector.tls_skip_verify = cfg.tls_skip_verify;
  mc.codex_inspection = DefaultCodexInspection();
  return mc;
}

bj::object ManagerConfigToJson(const ManagerConfig& mc) {
  bj::object conn;
  if (!mc.cpa_base_url.empty()) conn["cpaBaseUrl"] = mc.cpa_base_url;
  if (!mc.management_key.empty()) conn["managementKey"] = mc.management_key;
  bj::object col;
  col["enabled"] = mc.collector.Enabled();
  if (!mc.collector.collector_mode.empty()) col["collectorMode"] = mc.collector.collector_mode;
  if (!mc.collector.queue.empty()) col["queue"] = mc.collector.queue;
  if (!mc.collector.pop_side.empty()) col["popSide"] = mc.collector.pop_side;
  if (mc.collector.batch_size > 0) col["batchSize"] = mc.collector.batch_size;
  if (mc.collector.poll_interval_ms > 0) col["pollIntervalMs"] = mc.collector.poll_interval_ms;
  if (mc.collector.query_limit > 0) col["queryLimit"] = mc.collector.query_limit;
  if (mc.collector.tls_skip_verify) col["tlsSkipVerify"] = true;
  bj::object o;
  o["cpaConnection"] = std::move(conn);
  o["collector"] = std::move(col);
  o["codexInspection"] = mc.codex_inspection;
  o["externalUsageService"] = bj::object{{"enabled", false}};
  if (mc.updated_at_ms > 0) o["updatedAtMs"] = mc.updated_at_ms;
  return o;
}

void MergeCollectorJson(const bj::object& col, CollectorConfig& c) {
  if (auto b = json::GetBool(col, "enabled")) c.enabled = *b;
  if (auto s = json::GetString(col, "collectorMode"); s && !Trim(*s).empty())
    c.collector_mode = NormalizeMode(*s);
  if (auto s = json::GetString(col, "queue"); s && !Trim(*s).empty()) c.queue = Trim(*s);
  if (auto s = json::GetString(col, "popSide"); s && !Trim(*s).empty())
    c.pop_side = NormalizePopSide(*s, c.pop_side);
  if (auto n = json::GetInt(col, "batchSize"); n && *n > 0 && *n <= 1'000'000)
    c.batch_size = static_cast<int>(*n);
  if (auto n = json::GetInt(col, "pollIntervalMs"); n && *n > 0 && *n <= 86'400'000)
    c.poll_interval_ms = static_cast<int>(*n);
  if (auto n = json::GetInt(col, "queryLimit"); n && *n > 0 && *n <= 100'000'000)
    c.query_limit = static_cast<int>(*n);
  if (auto b = json::GetBool(col, "tlsSkipVerify")) c.tls_skip_verify = *b;
}

Result<ManagerConfig> ManagerConfigFromJson(const bj::object& o, ManagerConfig base) {
  ManagerConfig mc = std::move(base);
  if (const auto* conn = json::GetObject(o, "cpaConnection")) {
    if (auto s = json::GetString(*conn, "cpaBaseUrl")) mc.cpa_base_url = *s;
    if (auto s = json::GetString(*conn, "managementKey")) mc.management_key = *s;
  }
  if (const auto* col = json::GetObject(o, "collector")) MergeCollectorJson(*col, mc.collector);
  auto codex = NormalizeCodexInspection(json::GetObject(o, "codexInspection"), mc.codex_inspection);
  if (!codex.ok()) return codex.status();
  mc.codex_inspection = std::move(*codex);
  if (auto n = json::GetInt(o, "updatedAtMs")) mc.updated_at_ms = *n;
  return mc;
}

}  // namespace cpamp::setup
