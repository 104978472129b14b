// Route table and handlers of the foundation surface (cpamp-api.md §2–§4).
//
// Dispatch order mirrors upstream's router: exact system routes, then OPTIONS → 204 for any
// path, then local /v0/management families, then the CPA proxy families, then `/` → 307,
// else a plain-text 404. A path that matches a row but not its method answers 405 before any
// auth check (upstream checks the method first on /setup). Handlers are plain functions.

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "api/api.h"
#include "base/json.h"
#include "base/strings.h"
#include "clients/http/http_client.h"
#include "panel/panel.h"

namespace cpamp::api {
namespace bj = boost::json;
using net::Request;
using net::Response;

namespace {

constexpr size_t kPanelFileLimit = 64 * 1024 * 1024;

Response MethodNotAllowed() {
  return Response::ErrorJson(405, "method not allowed", "method_not_allowed");
}

Response JsonOrError(const Result<bj::object>& r) {
  if (!r.ok()) return Response::FromStatus(r.status());
  return Response::Json(200, *r);
}

Response Health(const Request&, Services&) {
  return Response::Json(200, bj::object{{"ok", true}, {"service", setup::kServiceName}});
}

Response StatusHandler(const Request&, Services& s) {
  // Polled by the panel: no table scan per call (the retention worker reports its deletes).
  auto events = s.db.CountRowsIncremental("usage_events");
  if (!events.ok()) return Response::FromStatus(events.status().WithHttpStatus(500));
  auto dead = s.db.CountRows("dead_letter_events");
  if (!dead.ok()) return Response::FromStatus(dead.status().WithHttpStatus(500));
  bj::object collector = s.collector.StatusJson();
  collector["deadLetters"] = *dead;
  bj::object o;
  o["service"] = setup::kServiceName;
  o["dbPath"] = s.db.Path();
  o["events"] = *events;
  o["deadLetters"] = *dead;
  o["collector"] = std::move(collector);
  std::error_code ec;
  bj::object database;
  for (auto [name, suffix] : {std::pair{"databaseBytes", ""}, std::pair{"walBytes", "-wal"},
                              std::pair{"shmBytes", "-shm"}}) {
    auto size = std::filesystem::file_size(s.db.Path() + suffix, ec);
    database[name] = ec ? 0 : static_cast<int64_t>(size);
  }
  database["totalBytes"] = database["databaseBytes"].as_int64() + database["walBytes"].as_int64() +
                           database["shmBytes"].as_int64();
  o["database"] = std::move(database);
  return Response::Json(200, o);
}

Response InfoHandler(const Request&, Services& s) { return JsonOrError(s.setup.Info()); }

Response GetConfigHandler(const Request&, Services& s) { return JsonOrError(s.setup.GetConfig()); }

Response PutConfigHandler(const Request& req, Services& s) {
  auto body = json::ParseObject(req.body);
  if (!body.ok()) return Response::FromStatus(body.status());
  return JsonOrError(s.setup.PutConfig(*body));
}

Response SetupHandler(const Request& req, Services& s) {
  auto body = json::ParseObject(req.body);
  if (!body.ok()) return Response::FromStatus(body.status());
  return JsonOrError(s.setup.Setup(*body));
}

Response PanelHandler(const Request&, Services& s) {
  if (!s.config.panel_path.empty()) {
    std::ifstream in(s.config.panel_path, std::ios::binary);
    std::error_code ec;
    auto size = std::filesystem::file_size(s.config.panel_path, ec);
    if (in && !ec && size <= kPanelFileLimit) {
      std::stringstream ss;
      ss << in.rdbuf();
      return Response::Text(200, ss.str(), "text/html; charset=utf-8");
    }
    spdlog::warn("PANEL_PATH {} is not readable; serving the embedded panel", s.config.panel_path);
  }
  auto r = Response::Text(200, std::string(panel::EmbeddedHtml()), "text/html; charset=utf-8");
  r.headers.emplace_back("Cache-Control", "no-cache");
  return r;
}

Response ModelPrices(const Request& req, Services& s) { return s.pricing.ModelPrices(req); }
Response ApiKeyAliases(const Request& req, Services& s) { return s.pricing.ApiKeyAliases(req); }

Response DashboardSummary(const Request& req, Services& s) {
  return s.analytics.DashboardSummary(req);
}
Response MonitoringAnalytics(const Request& req, Services& s) {
  return s.analytics.MonitoringAnalytics(req);
}
Response HeaderSnapshots(const Request& req, Services& s) {
  return s.analytics.HeaderSnapshots(req);
}
Response AccountHistory(const Request& req, Services& s) { return s.analytics.AccountHistory(req); }
Response AnalyticsMethodNotAllowed(const Request& req, Services& s) {
  return s.analytics.MethodNotAllowed(req);
}

Response CompatibleUsage(const Request& req, Services& s) {
  return s.usage_data.CompatibleUsage(req);
}
Response ExportUsage(const Request& req, Services& s) { return s.usage_data.Export(req); }
Response ImportUsage(const Request& req, Services& s) { return s.usage_data.Import(req); }
Response CreateImportSession(const Request& req, Services& s) {
  return s.usage_data.CreateSession(req);
}
Response ImportSessionRoute(const Request& req, Services& s) {
  return s.usage_data.SessionRoute(req);
}
Response UsageFamily(const Request& req, Services& s) { return s.usage_data.Route(req); }
size_t UsageBodyLimit(const net::RequestHead& head, Services& s) {
  return s.usage_data.BodyLimit(head.method, head.path);
}

Response NotYetImplemented(const Request& req, Services&) {
  return Response::ErrorJson(501, "endpoint " + req.path() + " is not implemented in this version",
                             "request_failed");
}

}  // namespace

const std::vector<Route>& Routes() {
  static const std::vector<Route> kRoutes = {
      {"GET", "/health", Match::kExact, AuthClass::kPublic, Health},
      {"GET", "/status", Match::kExact, AuthClass::kAdmin, StatusHandler},
      {"GET", "/usage-service/info", Match::kExact, AuthClass::kPublic, InfoHandler},
      {"GET", "/usage-service/config", Match::kExact, AuthClass::kAdminOrUnconfigured,
       GetConfigHandler},
      {"PUT", "/usage-service/config", Match::kExact, AuthClass::kAdmin, PutConfigHandler,
       1024 * 1024},
      {"POST", "/setup", Match::kExact, AuthClass::kAdmin, SetupHandler, 1024 * 1024},
      {"", "/management.html", Match::kExact, AuthClass::kPublic, PanelHandler},
      // Local /v0/management families (served by later issues; never proxied).
      {"", "/v0/management/model-prices", Match::kPrefix, AuthClass::kAdmin, ModelPrices,
       8 * 1024 * 1024},
      {"", "/v0/management/api-key-aliases", Match::kPrefix, AuthClass::kAdmin, ApiKeyAliases,
       1024 * 1024},
      {"", "/v0/management/codex-inspection", Match::kPrefix, AuthClass::kAdmin, NotYetImplemented},
      {"GET", "/v0/management/dashboard/summary", Match::kExact, AuthClass::kAdmin,
       DashboardSummary},
      {"", "/v0/management/dashboard/", Match::kPrefix, AuthClass::kAdmin,
       AnalyticsMethodNotAllowed},
      {"POST", "/v0/management/monitoring/analytics", Match::kExact, AuthClass::kAdmin,
       MonitoringAnalytics, 1024 * 1024},
      {"GET", "/v0/management/monitoring/header-snapshots", Match::kExact, AuthClass::kAdmin,
       HeaderSnapshots},
      {"POST", "/v0/management/monitoring/account-history", Match::kExact, AuthClass::kAdmin,
       AccountHistory, 1024 * 1024},
      {"", "/v0/management/monitoring/", Match::kPrefix, AuthClass::kAdmin,
       AnalyticsMethodNotAllowed},
      {"GET", "/v0/management/usage", Match::kExact, AuthClass::kAdmin, CompatibleUsage},
      {"GET", "/v0/management/usage/export", Match::kExact, AuthClass::kAdmin, ExportUsage},
      {"POST", "/v0/management/usage/import", Match::kExact, AuthClass::kAdmin, ImportUsage,
       usage::kImportBodyLimit},
      {"POST", "/v0/management/usage/import-sessions", Match::kExact, AuthClass::kAdmin,
       CreateImportSession, 64 * 1024},
      {"", "/v0/management/usage/import-sessions/", Match::kPrefix, AuthClass::kAdmin,
       ImportSessionRoute, net::kDefaultBodyLimit, UsageBodyLimit},
      {"", "/v0/management/usage/", Match::kPrefix, AuthClass::kAdmin, UsageFamily,
       net::kDefaultBodyLimit, UsageBodyLimit},
  };
  return kRoutes;
}

// ---- CORS ---------------------------------------------------------------------------------

net::Headers CorsHeaders(const std::vector<std::string>& origins, std::string_view origin) {
  net::Headers h;
  if (origins.empty()) return h;
  for (const auto& o : origins) {
    if (o == "*") {
      h.emplace_back("Access-Control-Allow-Origin", "*");
      break;
    }
    if (!origin.empty() && o == origin) {
      h.emplace_back("Access-Control-Allow-Origin", std::string(origin));
      h.emplace_back("Vary", "Origin");
      break;
    }
  }
  h.emplace_back("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS");
  h.emplace_back("Access-Control-Allow-Headers", "Authorization, Content-Type");
  return h;
}

// ---- ManagerApplication -------------------------------------------------------------------

namespace {

bool PathMatches(const Route& r, std::string_view path) {
  if (r.match == Match::kExact) {
    // Upstream trims one trailing slash inside local families.
    if (path == r.path) return true;
    return path.size() == r.path.size() + 1 && path.back() == '/' &&
           path.substr(0, r.path.size()) == r.path && r.path != "/management.html" &&
           r.path.rfind("/v0/", 0) == 0;
  }
  return path.substr(0, r.path.size()) == r.path;
}

// First path segments that are CPA's built-in management API (spec §4.9.2).
bool IsReservedHead(std::string_view head) {
  static constexpr std::string_view kReserved[] = {"account-action-candidates",
                                                   "accounts",
                                                   "api-call",
                                                   "api-key-aliases",
                                                   "api-key-usage",
                                                   "auth-files",
                                                   "codex-inspection",
                                                   "config",
                                                   "dashboard",
                                                   "model-prices",
                                                   "monitoring",
                                                   "plugin-store",
                                                   "plugins",
                                                   "reload",
                                                   "usage",
                                                   "usage-statistics-enabled"};
  for (auto r : kReserved) {
    if (head == r) return true;
  }
  return false;
}

Response AuthFailure(const setup::AuthOutcome& a) {
  Response r = Response::ErrorJson(a.status, a.error, a.code);
  r.delay_ms = a.delay_ms;
  if (a.retry_after_s > 0) r.headers.emplace_back("Retry-After", std::to_string(a.retry_after_s));
  return r;
}

net::Dispatch Respond(Response r) {
  net::Dispatch d;
  d.kind = net::Dispatch::Kind::kRespond;
  d.response = std::move(r);
  return d;
}

}  // namespace

ManagerApplication::ManagerApplication(Services services) : services_(std::move(services)) {}

void ManagerApplication::AddCors(const net::RequestHead& head, net::Headers& headers) const {
  for (auto& h : CorsHeaders(services_.config.cors_origins, head.Header("Origin"))) {
    headers.push_back(std::move(h));
  }
}

net::Dispatch ManagerApplication::Classify(const net::RequestHead& head) {
  const std::string& path = head.path;
  if (path == "/management.html") {
    net::Dispatch d;  // any method, no auth, no CORS
    return d;
  }
  if (head.method == "OPTIONS") {
    Response r = Response::Empty(204);
    AddCors(head, r.headers);
    return Respond(std::move(r));
  }
  // Local routes: collect rows matching the path; then the method.
  const Route* found = nullptr;
  bool path_known = false;
  for (const auto& route : Routes()) {
    if (!PathMatches(route, path)) continue;
    path_known = true;
    if (route.method.empty() || route.method == head.method) {
      found = &route;
      break;
    }
  }
  if (path_known && found == nullptr) {
    Response r = MethodNotAllowed();
    AddCors(head, r.headers);
    return Respond(std::move(r));
  }
  if (found != nullptr) {
    bool need_auth = found->auth == AuthClass::kAdmin;
    if (found->auth == AuthClass::kAdminOrUnconfigured) {
      auto resolved = services_.setup.Resolve();
      need_auth = !resolved.ok() || resolved->Configured();
    }
    if (need_auth) {
      auto outcome = services_.auth.Check(head.Header("Authorization"), head.remote_address);
      if (!outcome.ok) {
        Response r = AuthFailure(outcome);
        AddCors(head, r.headers);
        return Respond(std::move(r));
      }
    }
    net::Dispatch d;
    d.kind = net::Dispatch::Kind::kLocal;
    d.body_limit = found->body_limit_fn ? found->body_limit_fn(head, services_) : found->body_limit;
    return d;
  }
  if (path.rfind("/v0/management/", 0) == 0 || path == "/v1/models" || path == "/v1/models/" ||
      path == "/models" || path == "/models/" || path == "/v0/resource/plugins" ||
      path.rfind("/v0/resource/plugins/", 0) == 0) {
    return ClassifyProxy(head);
  }
  if (path == "/") {
    Response r = Response::Empty(307);
    r.headers.emplace_back("Location", "/management.html");
    return Respond(std::move(r));
  }
  return Respond(Response::Text(404, "404 page not found\n"));
}

net::Dispatch ManagerApplication::ClassifyProxy(const net::RequestHead& head) {
  const std::string& path = head.path;
  const bool models =
      path == "/v1/models" || path == "/v1/models/" || path == "/models" || path == "/models/";
  const bool plugins = path.rfind("/v0/resource/plugins", 0) == 0;
  auto fail = [&](Response r) {
    AddCors(head, r.headers);
    return Respond(std::move(r));
  };
  if (models && head.method != "GET") return fail(MethodNotAllowed());
  if (plugins) {
    static constexpr std::string_view kAllowed[] = {"GET", "HEAD",  "POST",
                                                    "PUT", "PATCH", "DELETE"};
    bool ok = false;
    for (auto m : kAllowed) ok = ok || head.method == m;
    if (!ok) return fail(MethodNotAllowed());
  }
  // Auth: reserved management heads need the admin key; other heads and plugin resources fall
  // back to the caller's own credentials; the model list never uses the saved key.
  bool use_saved_key = false;
  bool rewrite_origin = false;
  if (!models) {
    std::string_view rest = std::string_view(path).substr(plugins ? 0 : 15);
    std::string_view first = rest.substr(0, rest.find('/'));
    const bool reserved = !plugins && IsReservedHead(first);
    const bool has_token = !setup::BearerToken(head.Header("Authorization")).empty();
    if (reserved) {
      auto outcome = services_.auth.Check(head.Header("Authorization"), head.remote_address);
      if (!outcome.ok) return fail(AuthFailure(outcome));
      use_saved_key = true;
    } else {
      // Only an admin key upgrades the request; anything else passes through untouched and
      // never counts as a failed admin login (it may be a valid CPA key).
      auto outcome =
          has_token ? services_.auth.Check(head.Header("Authorization"), head.remote_address, false)
                    : setup::AuthOutcome{};
      if (outcome.status == 429) return fail(AuthFailure(outcome));
      use_saved_key = outcome.ok;
      rewrite_origin = true;
    }
  }
  auto resolved = services_.setup.Resolve();
  if (!resolved.ok()) return fail(Response::FromStatus(resolved.status().WithHttpStatus(500)));
  if (!resolved->Configured()) {
    return fail(Response::ErrorJson(428, "usage service is not configured",
                                    "usage_service_not_configured"));
  }
  const auto& mc = resolved->config;
  auto url = http_client::ParseUrl(mc.cpa_base_url);
  if (!url.ok()) return fail(Response::FromStatus(url.status().WithHttpStatus(500)));
  net::Dispatch d;
  d.kind = net::Dispatch::Kind::kProxy;
  auto& plan = d.proxy;
  plan.scheme = url->scheme;
  plan.host = url->host;
  plan.port = url->port;
  std::string base_path = url->target == "/" ? "" : url->target;
  while (!base_path.empty() && base_path.back() == '/') base_path.pop_back();
  plan.target = base_path + head.target;
  plan.tls_skip_verify = mc.collector.tls_skip_verify;
  if (use_saved_key) {
    plan.set_headers.emplace_back("Authorization", "Bearer " + mc.management_key);
    plan.remove_headers.emplace_back("X-Management-Key");
  }
  if (rewrite_origin && !head.Header("X-Codex-Invite-Origin").empty()) {
    plan.set_headers.emplace_back(
        "X-Codex-Invite-Origin",
        url->scheme + "://" + url->host +
            (url->port == "80" || url->port == "443" ? "" : ":" + url->port));
  }
  // CPAMP-only inputs never reach CPA (spec §4.9.3).
  for (const auto& [name, value] : head.headers) {
    if (StartsWithIgnoreCase(name, "X-CPAMP-")) plan.remove_headers.push_back(name);
  }
  AddCors(head, plan.response_headers);
  return d;
}

net::Response ManagerApplication::Handle(const net::Request& request) {
  for (const auto& route : Routes()) {
    if (!PathMatches(route, request.path())) continue;
    if (!route.method.empty() && route.method != request.method()) continue;
    Response r;
    try {
      r = route.handler(request, services_);
    } catch (const std::exception& e) {
      spdlog::error("handler {} {} failed: {}", request.method(), request.path(), e.what());
      r = Response::Text(500, "Internal Server Error");
    }
    if (request.path() != "/management.html") AddCors(request.head, r.headers);
    return r;
  }
  return Response::Text(404, "404 page not found\n");
}

void ManagerApplication::OnCompleted(const net::RequestHead& head, int status,
                                     int64_t duration_ms) {
  spdlog::info("http {} {} status={} duration={}ms remote={}", head.method, head.path, status,
               duration_ms, head.remote_address);
}

}  // namespace cpamp::api
