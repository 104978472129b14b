// HTTP handlers for /v0/management/model-prices* and /v0/management/api-key-aliases* (spec api
// §4.7). Each method decodes the request, calls one store or sync function and encodes the
// result; failures become the {"error","code"} envelope through net::Response::FromStatus.
//
// The two prefix dispatchers mirror the upstream root handler: everything under a prefix is
// handled here, and any method/path combination that is not a route answers 405
// method_not_allowed (so "/v0/management/model-pricesX" is a 405, not a proxy call). Trailing
// slashes are ignored. Status mapping follows §5.3: PUT errors are 400, sync failures 502,
// other sync errors 500 (400 for a malformed body).
#include <fmt/format.h>

#include "base/json.h"
#include "base/strings.h"
#include "pricing/pricing.h"

namespace cpamp::pricing {
namespace bj = boost::json;
namespace {

constexpr std::string_view kPricesPath = "/v0/management/model-prices";
constexpr std::string_view kAliasesPath = "/v0/management/api-key-aliases";

std::string_view TrimTrailingSlash(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  return path;
}

net::Response MethodNotAllowed() {
  return net::Response::FromStatus(Error(ErrorCode::kMethodNotAllowed, "method not allowed"));
}

net::Response Fail(const Status& status) { return net::Response::FromStatus(status); }

// Parses a JSON object body; an empty body is an empty object.
Result<bj::object> BodyObject(const net::Request& request) {
  if (TrimView(request.body).empty()) return bj::object();
  Result<bj::object> parsed = json::ParseObject(request.body);
  if (!parsed.ok()) {
    return Error(ErrorCode::kBadRequest, "invalid JSON body: " + parsed.status().message());
  }
  return parsed;
}

bj::object AliasesJson(const std::vector<ApiKeyAlias>& aliases) {
  bj::array items;
  for (const ApiKeyAlias& a : aliases) {
    bj::object o;
    o["apiKeyHash"] = a.api_key_hash;
    o["alias"] = a.alias;
    o["updatedAtMs"] = a.updated_at_ms;
    items.push_back(std::move(o));
  }
  bj::object out;
  out["items"] = std::move(items);
  return out;
}

bool Truthy(std::string_view v) {
  std::string s = ToLower(Trim(v));
  return s == "1" || s == "true" || s == "yes";
}

}  // namespace

Handlers::Handlers(db::Database& db, PriceSource& source, const Clock& clock,
                   HandlerOptions options)
    : db_(db), source_(source), clock_(clock), options_(std::move(options)) {}

void Handlers::NotifyPricesChanged() {
  if (options_.on_prices_changed) options_.on_prices_changed();
}

net::Response Handlers::ModelPrices(const net::Request& request) {
  const std::string_view path = TrimTrailingSlash(request.path());
  const std::string& method = request.method();
  if (path == kPricesPath) {
    if (method == "GET") return GetPrices(request);
    if (method == "PUT") return PutPrices(request);
  } else if (path == fmt::format("{}/sync", kPricesPath)) {
    if (method == "POST") return SyncPrices(request);
  } else if (path == fmt::format("{}/usage-summary", kPricesPath)) {
    if (method == "GET") return GetUsageSummary(request);
  }
  return MethodNotAllowed();
}

net::Response Handlers::ApiKeyAliases(const net::Request& request) {
  const std::string_view path = TrimTrailingSlash(request.path());
  const std::string& method = request.method();
  if (path == kAliasesPath) {
    if (method == "GET") return GetAliases(request);
    if (method == "PUT") return PutAliases(request);
  } else if (path.size() > kAliasesPath.size() + 1 && path.starts_with(kAliasesPath) &&
             path[kAliasesPath.size()] == '/' &&
             path.substr(kAliasesPath.size() + 1).find('/') == std::string_view::npos) {
    if (method == "DELETE") return DeleteAlias(request);
  }
  return MethodNotAllowed();
}

net::Response Handlers::GetPrices(const net::Request&) {
  Result<PriceTable> table = ListPrices(db_);
  if (!table.ok()) return Fail(table.status());
  bj::object out;
  out["prices"] = PriceTableToJson(*table);
  return net::Response::Json(200, out);
}

net::Response Handlers::PutPrices(const net::Request& request) {
  Result<bj::object> body = BodyObject(request);
  if (!body.ok()) return Fail(body.status());
  const bj::value* prices = body->if_contains("prices");
  if (prices == nullptr || prices->is_null()) {
    return Fail(Error(ErrorCode::kPricesRequired, "prices are required"));
  }
  if (!prices->is_object()) {
    return Fail(Error(ErrorCode::kBadRequest, "prices must be an object"));
  }
  PriceTable table;
  for (const auto& [key, value] : prices->get_object()) {
    std::string model = Trim(std::string_view(key));
    Result<PriceRecord> rec = PriceFromJson(model, value);
    if (!rec.ok()) return Fail(rec.status().WithHttpStatus(400));
    Status valid = ValidatePrice(model, *rec);
    if (!valid.ok()) return Fail(valid.WithHttpStatus(400));
    table.insert_or_assign(model, std::move(rec).value());
  }
  Result<PriceTable> saved = ReplacePrices(db_, table, clock_.NowMs());
  if (!saved.ok()) return Fail(saved.status().WithHttpStatus(400));
  NotifyPricesChanged();
  bj::object out;
  out["prices"] = PriceTableToJson(*saved);
  return net::Response::Json(200, out);
}

net::Response Handlers::GetUsageSummary(const net::Request& request) {
  int64_t limit =
      options_.usage_query_limit > 0 ? options_.usage_query_limit : kDefaultUsageQueryLimit;
  if (std::optional<std::string> q = request.head.QueryParam("limit"); q.has_value()) {
    long long parsed = 0;
    if (ParseInt64(Trim(*q), &parsed) && parsed > 0 && parsed < limit) limit = parsed;
  }
  Result<UsageSummary> summary = LoadUsageSummary(db_, limit);
  if (!summary.ok()) return Fail(summary.status());
  return net::Response::Json(200, UsageSummaryToJson(*summary));
}

net::Response Handlers::SyncPrices(const net::Request& request) {
  Result<bj::object> body = BodyObject(request);
  if (!body.ok()) return Fail(body.status());
  SyncOptions options;
  if (const bj::value* models = body->if_contains("models"); models != nullptr) {
    if (models->is_array()) {
      for (const bj::value& m : models->get_array()) {
        if (m.is_string()) options.models.emplace_back(m.get_string());
      }
    } else if (!models->is_null()) {
      return Fail(Error(ErrorCode::kBadRequest, "models must be an array of strings"));
    }
  }
  options.preview = json::GetBool(*body, "preview").value_or(false);
  if (std::optional<std::string> q = request.head.QueryParam("preview"); q.has_value()) {
    options.preview = options.preview || Truthy(*q);
  }
  Result<SyncReport> report = pricing::SyncPrices(db_, source_, options, clock_.NowMs());
  if (!report.ok()) return Fail(report.status());
  if (!options.preview && !report->matched.empty()) NotifyPricesChanged();
  return net::Response::Json(200, SyncReportToJson(*report));
}

net::Response Handlers::GetAliases(const net::Request&) {
  Result<std::vector<ApiKeyAlias>> aliases = ListAliases(db_);
  if (!aliases.ok()) return Fail(aliases.status());
  return net::Response::Json(200, AliasesJson(*aliases));
}

net::Response Handlers::PutAliases(const net::Request& request) {
  Result<bj::object> body = BodyObject(request);
  if (!body.ok()) return Fail(body.status());
  const bj::value* items = body->if_contains("items");
  if (items == nullptr || items->is_null()) {
    return Fail(Error(ErrorCode::kApiKeyAliasesRequired, "api key aliases are required"));
  }
  if (!items->is_array()) return Fail(Error(ErrorCode::kBadRequest, "items must be an array"));
  AliasUpdate update;
  for (const bj::value& item : items->get_array()) {
    if (!item.is_object()) return Fail(Error(ErrorCode::kBadRequest, "invalid api key alias"));
    const bj::object& o = item.get_object();
    update.items.push_back(ApiKeyAlias{json::GetString(o, "apiKeyHash").value_or(""),
                                       json::GetString(o, "alias").value_or(""), 0});
  }
  if (const bj::array* active = json::GetArray(*body, "activeApiKeyHashes"); active != nullptr) {
    for (const bj::value& h : *active) {
      if (h.is_string()) update.active_api_key_hashes.emplace_back(h.get_string());
    }
  }
  update.allow_orphan_alias_cleanup =
      json::GetBool(*body, "allowOrphanAliasCleanup").value_or(false);
  Status saved = UpsertAliases(db_, update, clock_.NowMs());
  if (!saved.ok()) return Fail(saved);
  return GetAliases(request);
}

net::Response Handlers::DeleteAlias(const net::Request& request) {
  std::string_view path = TrimTrailingSlash(request.path());
  std::string_view hash = path.substr(path.rfind('/') + 1);
  Status deleted = pricing::DeleteAlias(db_, hash);
  if (!deleted.ok()) return Fail(deleted);
  bj::object out;
  out["ok"] = true;
  return net::Response::Json(200, out);
}

}  // namespace cpamp::pricing
