// The HTTP surface of the Manager Server: one route table, auth classes, CORS, the CPA proxy
// decision and the access log (STYLE habit 13: adding an endpoint is one row in routes.cc).
//
// ManagerApplication implements net::Application. Classify() runs on the worker pool with the
// request head only: it resolves the route, checks the admin key (so unauthenticated bodies
// are never read), and turns proxied paths into a ProxyPlan with the saved CPA key swapped in.
// Handle() runs the route's handler with the bounded body.
//
// Threading: all methods are called concurrently from worker threads; the class holds only
// references to thread-safe services.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "analytics/analytics.h"
#include "config/config.h"
#include "db/db.h"
#include "net/http.h"
#include "pricing/pricing.h"
#include "setup/setup.h"
#include "usage/usage_data.h"

namespace cpamp::api {

// Everything a handler may use. Owned by app/, outlives the server.
struct Services {
  const config::Config& config;
  db::Database& db;
  setup::SetupService& setup;
  setup::AdminAuth& auth;
  setup::CollectorControl& collector;
  pricing::Handlers& pricing;
  analytics::Handlers& analytics;
  usage::DataHandlers& usage_data;
  int64_t started_at_ms = 0;
};

enum class AuthClass {
  kPublic,
  kAdmin,
  kAdminOrUnconfigured,  // GET /usage-service/config: public until a connection is resolved
};

enum class Match { kExact, kPrefix };

using Handler = net::Response (*)(const net::Request&, Services&);
// A body limit that depends on the request or configuration (overrides Route::body_limit).
using BodyLimitFn = size_t (*)(const net::RequestHead&, Services&);

struct Route {
  std::string_view method;  // "" = any method
  std::string_view path;
  Match match;
  AuthClass auth;
  Handler handler;
  size_t body_limit = net::kDefaultBodyLimit;
  BodyLimitFn body_limit_fn = nullptr;
};

// The route table (routes.cc).
const std::vector<Route>& Routes();

class ManagerApplication final : public net::Application {
 public:
  explicit ManagerApplication(Services services);
  net::Dispatch Classify(const net::RequestHead& head) override;
  net::Response Handle(const net::Request& request) override;
  void OnCompleted(const net::RequestHead& head, int status, int64_t duration_ms) override;

 private:
  net::Dispatch ClassifyProxy(const net::RequestHead& head);
  void AddCors(const net::RequestHead& head, net::Headers& headers) const;

  Services services_;
};

// CORS headers for a request (spec §2.4): empty when the origin list is empty.
net::Headers CorsHeaders(const std::vector<std::string>& origins, std::string_view origin);

}  // namespace cpamp::api
