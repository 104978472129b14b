// Importer for every accepted usage-data format (§5.3-5.5), streaming and batch-committed.
//
// Input is read through a small buffered Reader (a file via ImportInput, or a request body in
// place), so memory is the read buffer plus one batch of events. Detection looks at the first
// non-blank byte: `[` is a JSON array whose elements are split by a byte scanner (string- and
// depth-aware) and parsed one at a time; `{` may be a legacy CPA envelope or bare {apis:...}
// (decoded whole: the legacy format is a single JSON value, as upstream handles it) or the
// first JSONL record; anything else is JSONL. The first line is tried alone first, so a one-line
// export is recognised without scanning; a pretty-printed object is scanned to its end.
//
// Every record is mapped independently (exported row -> §5.4 verbatim hash, raw queue record ->
// the normaliser, legacy detail -> §5.5), so a bad record costs one `failed` count and one entry
// in `rejected` with its line / index; it never stops the import. What does stop it (a line over
// 10 MiB, an unterminated array, a legacy file without details, a persistence error) is reported
// in ImportReport::status; batches committed before that stay committed, and re-running is safe
// because every path deduplicates on event_hash.
#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "usage/import_internal.h"
#include "usage/internal.h"
#include "usage/usage_data.h"

namespace cpamp::usage {

namespace bj = boost::json;

namespace {

constexpr size_t kReadBytes = 1 << 20;
constexpr std::string_view kLegacyWarnings[] = {"legacy_usage_metadata_is_partial",
                                                "legacy_usage_source_matching_may_be_approximate"};

bool IsWs(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view TrimWs(std::string_view s) {
  while (!s.empty() && IsWs(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsWs(s.back())) s.remove_suffix(1);
  return s;
}

// Buffered input over either a memory view or an ImportInput.
class Reader {
 public:
  explicit Reader(std::string_view memory) : data_(memory), eof_(true) {}
  explicit Reader(ImportInput& input) : input_(&input) {}

  std::string_view Avail() const { return data_.substr(pos_); }
  void Consume(size_t n) { pos_ += n; }
  bool eof() const { return eof_; }

  // Reads more input (invalidating views from Avail()). False at end of input.
  Result<bool> Fill() {
    if (eof_) return false;
    buf_.erase(0, pos_);
    pos_ = 0;
    const size_t old = buf_.size();
    buf_.resize(old + kReadBytes);
    Result<size_t> n = input_->Read(buf_.data() + old, kReadBytes);
    buf_.resize(old + (n.ok() ? *n : 0));
    data_ = buf_;
    if (!n.ok()) return n.status();
    if (*n == 0) {
      eof_ = true;
      return false;
    }
    return true;
  }

  // Skips whitespace and a UTF-8 BOM at the start; returns the next byte or -1 at end.
  Result<int> PeekNonSpace() {
    while (true) {
      std::string_view a = Avail();
      if (pos_ == 0 && a.substr(0, 3) == "\xEF\xBB\xBF") Consume(3);
      a = Avail();
      size_t i = 0;
      while (i < a.size() && IsWs(a[i])) ++i;
      if (i < a.size()) {
        return static_cast<unsigned char>(a[i]);
      }
      CPAMP_ASSIGN_OR_RETURN(bool more, Fill());
      if (!more) return -1;
    }
  }

  // Makes sure Avail() holds a '\n' or the rest of the input, or more than `limit` bytes.
  // Returns the offset of '\n' in Avail(), or npos.
  Result<size_t> FindNewline(size_t limit) {
    size_t scanned = 0;
    while (true) {
      std::string_view a = Avail();
      size_t k = a.find('\n', scanned);
      if (k != std::string_view::npos) return k;
      scanned = a.size();
      if (a.size() > limit) return std::string_view::npos;
      CPAMP_ASSIGN_OR_RETURN(bool more, Fill());
      if (!more) return std::string_view::npos;
    }
  }

 private:
  ImportInput* input_ = nullptr;
  std::string buf_;
  std::string_view data_;
  size_t pos_ = 0;
  bool eof_ = false;
};

// Length of the JSON value starting at s[0] (not whitespace), npos if `s` ends first. Only
// structure is checked here; the value is parsed properly afterwards.
size_t ScanValue(std::string_view s) {
  if (s.empty()) return std::string_view::npos;
  const char c0 = s[0];
  if (c0 == '{' || c0 == '[' || c0 == '"') {
    int depth = 0;
    bool in_string = false;
    bool escaped = false;
    for (size_t i = 0; i < s.size(); ++i) {
      const char c = s[i];
      if (in_string) {
        if (escaped) {
          escaped = false;
        } else if (c == '\\') {
          escaped = true;
        } else if (c == '"') {
          in_string = false;
          if (depth == 0) return i + 1;
        }
        continue;
      }
      if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth <= 0) return i + 1;
      }
    }
    return std::string_view::npos;
  }
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == ',' || c == ']' || c == '}' || IsWs(c)) return i;
  }
  return std::string_view::npos;
}

bj::parse_options ParseOptions() {
  bj::parse_options opts;
  opts.allow_invalid_utf8 = true;
  opts.max_depth = 1000;
  return opts;
}

enum class Shape { kRecord, kLegacyExport, kLegacyPayload, kAggregateOnly };

Shape ShapeOf(const bj::object& o) {
  if (internal::HasEventHash(o)) return Shape::kRecord;
  if (auto it = o.find("usage");
      it != o.end() && it->value().is_object() && it->value().get_object().contains("apis")) {
    return Shape::kLegacyExport;
  }
  if (o.contains("apis")) return Shape::kLegacyPayload;
  const bj::object* agg = &o;
  if (auto it = o.find("usage"); it != o.end() && it->value().is_object()) {
    agg = &it->value().get_object();
  }
  if (agg->contains("total_requests") || agg->contains("success_count") ||
      agg->contains("failure_count")) {
    return Shape::kAggregateOnly;
  }
  return Shape::kRecord;
}

class Importer {
 public:
  Importer(EventStore& store, int64_t now_ms, const ImportOptions& options)
      : store_(store), now_ms_(now_ms), options_(options) {
    batch_.reserve(std::min<size_t>(options_.batch_rows, kImportBatchRows));
  }

  ImportReport Run(Reader& in) {
    Status st = Detect(in);
    if (st.ok()) st = Flush();
    if (!st.ok() && report_.status.ok()) report_.status = st;
    return std::move(report_);
  }

 private:
  Status Detect(Reader& in) {
    CPAMP_ASSIGN_OR_RETURN(int first, in.PeekNonSpace());
    if (first < 0) return Status::Ok();
    if (first == '[') return ReadArray(in);
    if (first == '{') {
      // Try the first line on its own.
      CPAMP_ASSIGN_OR_RETURN(size_t nl, in.FindNewline(kImportMaxLineBytes));
      std::string_view a = in.Avail();
      std::string_view line = TrimWs(nl == std::string_view::npos ? a : a.substr(0, nl));
      if (line.size() <= kImportMaxLineBytes) {
        boost::system::error_code ec;
        bj::value v = bj::parse(line, ec, {}, ParseOptions());
        if (!ec && v.is_object()) {
          Shape shape = ShapeOf(v.get_object());
          if (shape == Shape::kRecord) return ReadJsonl(in);
          if (shape == Shape::kAggregateOnly) return AggregateOnly();
          in.Consume(static_cast<size_t>(line.data() + line.size() - a.data()));
          return ReadLegacy(in, v.get_object(), shape);
        }
      }
      // Not a one-line value: scan the whole first value (a pretty-printed legacy envelope).
      while (true) {
        std::string_view b = in.Avail();
        size_t start = b.find('{');
        size_t len = ScanValue(b.substr(start));
        if (len != std::string_view::npos) {
          boost::system::error_code ec;
          bj::value v = bj::parse(b.substr(start, len), ec, {}, ParseOptions());
          if (!ec && v.is_object()) {
            Shape shape = ShapeOf(v.get_object());
            if (shape == Shape::kAggregateOnly) return AggregateOnly();
            if (shape == Shape::kLegacyExport || shape == Shape::kLegacyPayload) {
              in.Consume(start + len);
              return ReadLegacy(in, v.get_object(), shape);
            }
          }
          break;
        }
        if (b.size() > kImportMaxLegacyBytes) break;
        CPAMP_ASSIGN_OR_RETURN(bool more, in.Fill());
        if (!more) break;
      }
    }
    return ReadJsonl(in);
  }

  Status AggregateOnly() {
    report_.format = "legacy_usage_export";
    report_.unsupported = 1;
    return Error(ErrorCode::kBadRequest, "legacy usage export does not contain request details");
  }

  void Reject(int64_t line, int64_t index, std::string where, std::string error) {
    ++report_.failed;
    if (report_.rejected.size() < kMaxReportedRejections) {
      report_.rejected.push_back({line, index, std::move(where), std::move(error)});
    }
  }

  // One record of a JSONL line or array element.
  Status Record(std::string_view text, int64_t line, int64_t index) {
    unsigned char arena[8192];
    bj::monotonic_resource mr(arena, sizeof(arena));
    boost::system::error_code ec;
    bj::value v = bj::parse(text, ec, &mr, ParseOptions());
    if (ec) {
      Reject(line, index, {}, "invalid JSON: " + ec.message());
      return Status::Ok();
    }
    if (v.is_object() && internal::HasEventHash(v.get_object())) {
      std::string problem = internal::ExportedTimestampProblem(v.get_object());
      if (!problem.empty()) {
        Reject(line, index, {}, std::move(problem));
        return Status::Ok();
      }
      return Add(internal::EventFromExportedObject(v.get_object(), now_ms_));
    }
    if (!v.is_object() && !v.is_string()) {
      Reject(line, index, {}, "record is not a JSON object");
      return Status::Ok();
    }
    NormalizeResult r = NormalizeQueuePayload(text, now_ms_);
    switch (r.kind) {
      case PayloadKind::kEvent:
        return Add(std::move(r.event));
      case PayloadKind::kDeadLetter:
        Reject(line, index, {}, std::move(r.dead_letter_error));
        return Status::Ok();
      default:
        ++report_.unsupported;
        return Status::Ok();
    }
  }

  Status ReadJsonl(Reader& in) {
    int64_t line_no = 0;
    while (true) {
      CPAMP_ASSIGN_OR_RETURN(size_t nl, in.FindNewline(kImportMaxLineBytes));
      std::string_view a = in.Avail();
      if (nl == std::string_view::npos && a.size() > kImportMaxLineBytes) {
        return Error(ErrorCode::kBadRequest,
                     "line " + std::to_string(line_no + 1) + " is longer than 10 MiB");
      }
      if (nl == std::string_view::npos && a.empty()) return Status::Ok();
      ++line_no;
      std::string_view line = nl == std::string_view::npos ? a : a.substr(0, nl);
      std::string_view trimmed = TrimWs(line);
      if (!trimmed.empty()) CPAMP_RETURN_IF_ERROR(Record(trimmed, line_no, 0));
      in.Consume(nl == std::string_view::npos ? a.size() : nl + 1);
    }
  }

  Status ReadArray(Reader& in) {
    std::string_view a = in.Avail();
    in.Consume(a.find('[') + 1);
    int64_t index = 0;
    bool expect_value = true;  // after '[' or ','
    while (true) {
      CPAMP_ASSIGN_OR_RETURN(int c, in.PeekNonSpace());
      if (c < 0) return Error(ErrorCode::kBadRequest, "JSON array is not terminated");
      std::string_view b = in.Avail();
      size_t at = 0;
      while (IsWs(b[at])) ++at;
      if (c == ']') {
        in.Consume(at + 1);
        break;
      }
      if (c == ',') {
        if (expect_value) return Error(ErrorCode::kBadRequest, "JSON array has an empty element");
        expect_value = true;
        in.Consume(at + 1);
        continue;
      }
      if (!expect_value) {
        return Error(ErrorCode::kBadRequest, "JSON array element " + std::to_string(index) +
                                                 " is not followed by ',' or ']'");
      }
      size_t len;
      while (true) {
        b = in.Avail();
        len = ScanValue(b.substr(at));
        if (len != std::string_view::npos) break;
        if (b.size() > kImportMaxLineBytes + at) {
          return Error(ErrorCode::kBadRequest, "JSON array element " + std::to_string(index + 1) +
                                                   " is longer than 10 MiB");
        }
        CPAMP_ASSIGN_OR_RETURN(bool more, in.Fill());
        if (!more) {
          b = in.Avail();
          len = ScanValue(b.substr(at));
          if (len == std::string_view::npos) {
            return Error(ErrorCode::kBadRequest, "JSON array is not terminated");
          }
          break;
        }
      }
      if (len == 0) {
        return Error(ErrorCode::kBadRequest,
                     "JSON array element " + std::to_string(index + 1) + " is malformed");
      }
      ++index;
      CPAMP_RETURN_IF_ERROR(Record(b.substr(at, len), 0, index));
      in.Consume(at + len);
      expect_value = false;
    }
    return TrailingWhitespaceOnly(in);
  }

  Status TrailingWhitespaceOnly(Reader& in) {
    CPAMP_ASSIGN_OR_RETURN(int c, in.PeekNonSpace());
    if (c >= 0) return Error(ErrorCode::kBadRequest, "unexpected data after the JSON value");
    return Status::Ok();
  }

  static std::vector<std::string_view> SortedKeys(const bj::object& o) {
    std::vector<std::string_view> keys;
    keys.reserve(o.size());
    for (const auto& kv : o) keys.push_back(kv.key());
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    return keys;
  }

  Status ReadLegacy(Reader& in, const bj::object& root, Shape shape) {
    report_.format = shape == Shape::kLegacyExport ? "legacy_usage_export" : "legacy_usage_payload";
    for (std::string_view w : kLegacyWarnings) report_.warnings.emplace_back(w);
    CPAMP_RETURN_IF_ERROR(TrailingWhitespaceOnly(in));
    const bj::value& apis_value =
        shape == Shape::kLegacyExport ? root.at("usage").get_object().at("apis") : root.at("apis");
    if (!apis_value.is_object()) {
      return Error(ErrorCode::kBadRequest, "legacy usage apis must be a JSON object");
    }
    const bj::object& apis = apis_value.get_object();
    std::vector<std::string_view> endpoints = SortedKeys(apis);
    for (size_t ei = 0; ei < endpoints.size(); ++ei) {
      std::string_view endpoint = endpoints[ei];
      const bj::value& ev = apis.at(endpoint);
      const bj::object* models = nullptr;
      if (ev.is_object()) {
        if (auto it = ev.get_object().find("models");
            it != ev.get_object().end() && it->value().is_object()) {
          models = &it->value().get_object();
        }
      }
      if (models == nullptr) {
        Reject(0, 0, std::string(endpoint), "legacy usage endpoint has no models object");
        continue;
      }
      std::vector<std::string_view> model_keys = SortedKeys(*models);
      for (size_t mi = 0; mi < model_keys.size(); ++mi) {
        std::string_view model = model_keys[mi];
        const bj::value& mv = models->at(model);
        const bj::array* details = nullptr;
        if (mv.is_object()) {
          if (auto it = mv.get_object().find("details");
              it != mv.get_object().end() && it->value().is_array()) {
            details = &it->value().get_array();
          }
        }
        if (details == nullptr) {
          ++report_.unsupported;
          continue;
        }
        std::string where = std::string(endpoint) + " / " + std::string(model);
        for (size_t di = 0; di < details->size(); ++di) {
          const bj::value& d = (*details)[di];
          const int64_t index = static_cast<int64_t>(di) + 1;
          if (!d.is_object()) {
            Reject(0, index, where, "legacy usage detail is not a JSON object");
            continue;
          }
          UsageEvent e;
          std::string error;
          if (!internal::EventFromLegacyDetail(d.get_object(), endpoint, model, ei + 1, mi + 1, di,
                                               now_ms_, &e, &error)) {
            Reject(0, index, where, std::move(error));
            continue;
          }
          CPAMP_RETURN_IF_ERROR(Add(std::move(e)));
        }
      }
    }
    return Status::Ok();
  }

  Status Add(UsageEvent e) {
    batch_.push_back(std::move(e));
    if (batch_.size() >= options_.batch_rows) return Flush();
    return Status::Ok();
  }

  Status Flush() {
    if (batch_.empty()) return Status::Ok();
    if (options_.cancel != nullptr && options_.cancel->load()) {
      batch_.clear();
      return Error(ErrorCode::kRequestFailed, "usage import was cancelled");
    }
    Result<InsertCounts> counts = store_.InsertBatch(batch_);
    batch_.clear();
    if (!counts.ok()) {
      return Error(ErrorCode::kRequestFailed, "persist usage events: " + counts.status().message());
    }
    report_.added += counts->inserted;
    report_.skipped += counts->skipped;
    report_.persisted_any = true;
    return Status::Ok();
  }

  EventStore& store_;
  const int64_t now_ms_;
  const ImportOptions options_;
  std::vector<UsageEvent> batch_;
  ImportReport report_;
};

class FileInput final : public ImportInput {
 public:
  explicit FileInput(std::FILE* f) : f_(f) {}
  ~FileInput() override { std::fclose(f_); }
  FileInput(const FileInput&) = delete;
  FileInput& operator=(const FileInput&) = delete;
  Result<size_t> Read(char* buf, size_t n) override {
    size_t got = std::fread(buf, 1, n, f_);
    if (got == 0 && std::ferror(f_)) {
      return Error(ErrorCode::kRequestFailed, std::string("read: ") + std::strerror(errno));
    }
    return got;
  }

 private:
  std::FILE* f_;
};

}  // namespace

boost::json::object ImportReport::ToJson() const {
  bj::object o;
  o["format"] = format;
  o["added"] = added;
  o["skipped"] = skipped;
  o["total"] = total();
  o["failed"] = failed;
  o["unsupported"] = unsupported;
  bj::array w;
  for (const std::string& s : warnings) w.emplace_back(s);
  o["warnings"] = std::move(w);
  bj::array rej;
  for (const ImportRejection& r : rejected) {
    bj::object x;
    if (r.line > 0) x["line"] = r.line;
    if (r.index > 0) x["index"] = r.index;
    if (!r.where.empty()) x["where"] = r.where;
    x["error"] = r.error;
    rej.emplace_back(std::move(x));
  }
  o["rejected"] = std::move(rej);
  return o;
}

ImportReport ImportBytes(EventStore& store, std::string_view body, int64_t now_ms,
                         const ImportOptions& options) {
  Reader reader(body);
  return Importer(store, now_ms, options).Run(reader);
}

ImportReport ImportStream(EventStore& store, ImportInput& input, int64_t now_ms,
                          const ImportOptions& options) {
  Reader reader(input);
  return Importer(store, now_ms, options).Run(reader);
}

Result<ImportReport> ImportFile(db::Database& db, const std::string& path, const Clock& clock) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return Error(ErrorCode::kNotFound, "open " + path + ": " + std::strerror(errno));
  }
  FileInput input(f);
  EventStore store(db);
  return ImportStream(store, input, clock.NowMs());
}

}  // namespace cpamp::usage
