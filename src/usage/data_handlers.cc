// HTTP handlers for the usage data routes (cpamp-api §4.6): decode, call one function, encode.
//
// The two large GET bodies are streamed: the handler opens the cursor (so an error before any
// byte is written is still a 500 JSON answer) and hands the server a BodyStream that pulls
// ~64 KiB pieces on the worker pool. The std::function needs a copyable callable, hence the
// shared_ptr around the cursor; the last copy closes the snapshot. Import-session errors use
// the session wire codes chosen by HTTP status (SessionWireCode), since the base catalogue does
// not carry them yet.
#include <memory>

#include "base/strings.h"
#include "usage/usage_data.h"

namespace cpamp::usage {

namespace {

constexpr std::string_view kUsagePath = "/v0/management/usage";
constexpr std::string_view kSessionsPath = "/v0/management/usage/import-sessions";

std::string_view TrimSlash(std::string_view p) {
  while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
  return p;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

net::Response SessionErrorResponse(const Status& st) {
  return net::Response::ErrorJson(st.http_status(), st.message(),
                                  SessionWireCode(st.http_status()));
}

net::Response SessionJson(int status, const ImportSession& s) {
  return net::Response::Json(status, s.ToJson());
}

net::Response PlainNotFound() { return net::Response::Text(404, "404 page not found"); }

net::Response MethodNotAllowed() {
  return net::Response::ErrorJson(405, "method not allowed",
                                  WireCode(ErrorCode::kMethodNotAllowed));
}

Result<std::optional<int64_t>> OptionalMsParam(const net::Request& r, std::string_view name) {
  std::optional<std::string> v = r.head.QueryParam(name);
  if (!v || v->empty()) return std::optional<int64_t>();
  long long out = 0;
  if (!ParseInt64(*v, &out)) {
    return Error(ErrorCode::kBadRequest, std::string(name) + " must be epoch milliseconds");
  }
  return std::optional<int64_t>(out);
}

}  // namespace

DataHandlers::DataHandlers(db::Database& db, const config::Config& config,
                           ImportSessionManager& sessions, const Clock& clock)
    : db_(db), store_(db), config_(config), sessions_(sessions), clock_(clock) {}

net::Response DataHandlers::CompatibleUsage(const net::Request&) {
  Result<std::unique_ptr<CompatibleUsageCursor>> cursor =
      CompatibleUsageCursor::Open(db_.Path(), config_.query_limit);
  if (!cursor.ok()) return net::Response::FromStatus(cursor.status());
  std::shared_ptr<CompatibleUsageCursor> c = std::move(cursor).value();
  net::Response resp;
  resp.status = 200;
  resp.SetHeader("Content-Type", "application/json");
  resp.stream = [c](std::string& chunk) { return c->Next(chunk); };
  return resp;
}

net::Response DataHandlers::Export(const net::Request& request) {
  ExportRange range;
  range.limit = config_.query_limit;
  Result<std::optional<int64_t>> from = OptionalMsParam(request, "from_ms");
  if (!from.ok()) return net::Response::FromStatus(from.status());
  Result<std::optional<int64_t>> to = OptionalMsParam(request, "to_ms");
  if (!to.ok()) return net::Response::FromStatus(to.status());
  range.from_ms = *from;
  range.to_ms = *to;
  Result<std::unique_ptr<ExportCursor>> cursor = ExportCursor::Open(db_.Path(), range);
  if (!cursor.ok()) return net::Response::FromStatus(cursor.status());
  std::shared_ptr<ExportCursor> c = std::move(cursor).value();
  net::Response resp;
  resp.status = 200;
  resp.SetHeader("Content-Type", "application/x-ndjson");
  resp.SetHeader("Content-Disposition", "attachment; filename=\"cpa-usage-" +
                                            FormatTimestampMs(clock_.NowMs()).substr(0, 10) +
                                            ".jsonl\"");
  resp.stream = [c](std::string& chunk) { return c->Next(chunk); };
  return resp;
}

net::Response DataHandlers::Import(const net::Request& request) {
  if (request.body.size() > kImportBodyLimit) {
    return net::Response::FromStatus(
        Error(ErrorCode::kPayloadTooLarge, "usage import body is larger than 64 MiB"));
  }
  ImportReport report = ImportBytes(store_, request.body, clock_.NowMs());
  if (report.status.ok()) return net::Response::Json(200, report.ToJson());
  if (report.status.code() == ErrorCode::kBadRequest && !report.persisted_any) {
    boost::json::object o = report.ToJson();
    boost::json::object body;
    body["error"] = report.status.message();
    body["format"] = o["format"];
    body["failed"] = o["failed"];
    body["unsupported"] = o["unsupported"];
    body["warnings"] = o["warnings"];
    body["rejected"] = o["rejected"];
    return net::Response::Json(400, body);
  }
  return net::Response::ErrorJson(500, report.status.message(),
                                  WireCode(ErrorCode::kRequestFailed));
}

net::Response DataHandlers::CreateSession(const net::Request& request) {
  if (request.body.size() > kImportSessionCreateBodyLimit) {
    return SessionErrorResponse(
        Status(ErrorCode::kPayloadTooLarge, "usage import session request is too large", 413));
  }
  Result<ImportSession> s = sessions_.Create(request.body);
  if (!s.ok()) return SessionErrorResponse(s.status());
  return SessionJson(201, *s);
}

net::Response DataHandlers::SessionRoute(const net::Request& request) {
  std::string_view path = TrimSlash(request.path());
  if (path.substr(0, kSessionsPath.size()) != kSessionsPath) return PlainNotFound();
  std::string_view rest = path.substr(kSessionsPath.size());
  if (rest.empty()) {
    return request.method() == "POST" ? CreateSession(request) : MethodNotAllowed();
  }
  if (rest.front() != '/') return PlainNotFound();
  rest.remove_prefix(1);
  size_t slash = rest.find('/');
  std::string_view id = rest.substr(0, slash);
  std::string_view action = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  if (id.empty() || action.find('/') != std::string_view::npos) return PlainNotFound();
  const std::string& m = request.method();
  if (action.empty()) {
    if (m == "GET") {
      Result<ImportSession> s = sessions_.Get(id);
      return s.ok() ? SessionJson(200, *s) : SessionErrorResponse(s.status());
    }
    if (m == "DELETE") {
      bool was_processing = false;
      Result<ImportSession> s = sessions_.Cancel(id, &was_processing);
      if (!s.ok()) return SessionErrorResponse(s.status());
      return SessionJson(was_processing ? 202 : 200, *s);
    }
    return MethodNotAllowed();
  }
  if (action == "chunk") {
    if (m != "PUT") return MethodNotAllowed();
    std::optional<int64_t> content_length;
    if (std::string_view cl = request.Header("Content-Length"); !cl.empty()) {
      long long n = 0;
      if (ParseInt64(cl, &n)) content_length = n;
    }
    Result<ImportSession> s =
        sessions_.PutChunk(id, request.head.QueryParam("offset"), request.body, content_length);
    return s.ok() ? SessionJson(200, *s) : SessionErrorResponse(s.status());
  }
  if (action == "complete") {
    if (m != "POST") return MethodNotAllowed();
    Result<ImportSession> s = sessions_.Complete(id);
    if (!s.ok()) return SessionErrorResponse(s.status());
    return SessionJson(s->status == "processing" ? 202 : 200, *s);
  }
  return PlainNotFound();
}

net::Response DataHandlers::Route(const net::Request& request) {
  std::string_view path = TrimSlash(request.path());
  const std::string& m = request.method();
  if (path.substr(0, kSessionsPath.size()) == kSessionsPath &&
      (path.size() == kSessionsPath.size() || path[kSessionsPath.size()] == '/')) {
    return SessionRoute(request);
  }
  if (path != kUsagePath &&
      path.substr(0, kUsagePath.size() + 1) != std::string(kUsagePath) + "/") {
    return PlainNotFound();
  }
  if (m == "GET") return EndsWith(path, "/export") ? Export(request) : CompatibleUsage(request);
  if (m == "POST" && EndsWith(path, "/import")) return Import(request);
  return MethodNotAllowed();
}

size_t DataHandlers::BodyLimit(std::string_view method, std::string_view path) const {
  path = TrimSlash(path);
  if (method == "POST" && path == kSessionsPath) return kImportSessionCreateBodyLimit;
  if (method == "PUT" && EndsWith(path, "/chunk")) {
    return static_cast<size_t>(config_.usage_import_chunk_bytes);
  }
  if (method == "POST" && EndsWith(path, "/import")) return kImportBodyLimit;
  return net::kDefaultBodyLimit;
}

}  // namespace cpamp::usage
