// Price sync (spec storage §7.4/§7.5, api §4.7): fetch sources in priority order, match each
// requested local model name to a unique source entry, store the price under the local name.
//
// Sources are fetched lazily, models.dev → LiteLLM → OpenRouter, and later ones are skipped
// once every explicitly requested model is matched. A source only "answers" with a unique match:
// models.dev (with catalog metadata) by its canonical first-party ids and then by full provider
// keys; the other sources by the first non-empty tier of exact → case-insensitive → alias →
// case-insensitive alias → provider-prefix tail → normalized id, which must hold exactly one
// entry. Ambiguity falls through to the next source. When a preferred source failed, a stored
// price that came from it is kept ("preserved") instead of being downgraded to a lower source.
// Models without a unique match get scored candidates for the panel to confirm. RunSync is pure
// (it only reads the PriceSource); SyncPrices adds loading and the single upsert transaction,
// and skips the write in preview mode.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <set>

#include "base/strings.h"
#include "pricing/internal.h"
#include "pricing/pricing.h"

namespace cpamp::pricing {
namespace bj = boost::json;
namespace {

constexpr size_t kMaxCandidatesPerSource = 8;
constexpr double kMinCandidateScore = 0.55;
constexpr double kMinFamilyCandidateScore = 0.34;

std::string AlnumLower(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0) {
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
  }
  return out;
}

// The last path segment ignoring "models", letters and digits only, lower-cased.
std::string ProviderTail(std::string_view id) {
  std::vector<std::string> parts = SplitAndTrim(id, '/');
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    if (EqualsIgnoreCase(*it, "models")) continue;
    return AlnumLower(*it);
  }
  return "";
}

std::vector<std::string> Tokens(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0) {
      cur.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string Tail(std::string_view id) {
  size_t slash = id.rfind('/');
  return std::string(slash == std::string_view::npos ? id : id.substr(slash + 1));
}

// One unique entry of the first non-empty tier; null when the tier is ambiguous or all are
// empty.
const SourceEntry* FirstUniqueTier(
    const SourceCatalog& cat,
    std::initializer_list<std::function<bool(const SourceEntry&)>> tiers) {
  for (const auto& pred : tiers) {
    const SourceEntry* hit = nullptr;
    size_t count = 0;
    for (const SourceEntry& e : cat.entries) {
      if (pred(e)) {
        hit = &e;
        ++count;
      }
    }
    if (count == 1) return hit;
    if (count > 1) return nullptr;
  }
  return nullptr;
}

const SourceEntry* MatchModelsDevOfficial(const SourceCatalog& cat, const std::string& req) {
  std::vector<const std::string*> hits;
  for (const std::string& id : cat.canonical_ids) {
    if (EqualsIgnoreCase(id, req)) hits.push_back(&id);
  }
  if (hits.empty()) {
    for (const std::string& id : cat.canonical_ids) {
      if (EqualsIgnoreCase(Tail(id), req)) hits.push_back(&id);
    }
  }
  if (hits.size() == 1) {
    const std::string& canonical = *hits.front();
    const SourceEntry* ci = nullptr;
    for (const SourceEntry& e : cat.entries) {
      if (e.key == canonical) return &e;
      if (ci == nullptr && EqualsIgnoreCase(e.key, canonical)) ci = &e;
    }
    if (ci != nullptr) return ci;
  }
  if (req.find('/') == std::string::npos) return nullptr;
  return FirstUniqueTier(cat, {[&](const SourceEntry& e) { return e.key == req; },
                               [&](const SourceEntry& e) { return EqualsIgnoreCase(e.key, req); }});
}

const SourceEntry* MatchGeneric(const SourceCatalog& cat, const std::string& req) {
  const std::string tail = ProviderTail(req);
  const std::string norm = AlnumLower(req);
  return FirstUniqueTier(
      cat,
      {[&](const SourceEntry& e) { return e.key == req || e.price.source_model_id == req; },
       [&](const SourceEntry& e) {
         return EqualsIgnoreCase(e.key, req) || EqualsIgnoreCase(e.price.source_model_id, req);
       },
       [&](const SourceEntry& e) { return !e.alias.empty() && e.alias == req; },
       [&](const SourceEntry& e) { return !e.alias.empty() && EqualsIgnoreCase(e.alias, req); },
       [&](const SourceEntry& e) { return !tail.empty() && ProviderTail(e.key) == tail; },
       [&](const SourceEntry& e) { return !norm.empty() && AlnumLower(e.key) == norm; }});
}

const SourceEntry* Match(const SourceCatalog& cat, const std::string& req) {
  if (cat.source == SourceId::kModelsDev && cat.has_catalog_metadata) {
    return MatchModelsDevOfficial(cat, req);
  }
  return MatchGeneric(cat, req);
}

double Scored(std::string* reason, std::string_view why, double score) {
  *reason = std::string(why);
  return score;
}

double Score(const std::string& req, const std::string& key, std::string* reason) {
  if (key == req) return Scored(reason, "exact", 1.0);
  if (EqualsIgnoreCase(key, req)) return Scored(reason, "case_insensitive", 0.98);
  const std::string rt = ProviderTail(req), kt = ProviderTail(key);
  if (!rt.empty() && rt == kt) return Scored(reason, "same_tail", 0.94);
  const std::string rn = AlnumLower(req), kn = AlnumLower(key);
  if (!rn.empty() && rn == kn) return Scored(reason, "normalized", 0.90);
  if (!rt.empty() && !kt.empty() &&
      (kt.find(rt) != std::string::npos || rt.find(kt) != std::string::npos)) {
    return Scored(reason, "tail_contains", 0.78);
  }
  if (!rn.empty() && !kn.empty() &&
      (kn.find(rn) != std::string::npos || rn.find(kn) != std::string::npos)) {
    return Scored(reason, "normalized_contains", 0.74);
  }
  std::vector<std::string> a = Tokens(Tail(req)), b = Tokens(Tail(key));
  std::set<std::string> sa(a.begin(), a.end()), sb(b.begin(), b.end());
  size_t common = 0;
  for (const std::string& t : sa) common += sb.count(t);
  const size_t uni = sa.size() + sb.size() - common;
  const double jaccard = uni == 0 ? 0 : static_cast<double>(common) / static_cast<double>(uni);
  const size_t longest = std::max(rt.size(), kt.size());
  const double edit =
      longest == 0 ? 0
                   : 1.0 - static_cast<double>(EditDistance(rt, kt)) / static_cast<double>(longest);
  *reason = "similar";
  return std::min(0.6 * jaccard + 0.4 * edit, 0.73);
}

double MinScoreFor(const std::string& req, const std::string& key) {
  const std::string rn = AlnumLower(req), kn = AlnumLower(key);
  for (std::string_view family : {"qwen", "gemini", "minimax", "mimo"}) {
    if (rn.find(family) != std::string::npos && kn.find(family) != std::string::npos) {
      return kMinFamilyCandidateScore;
    }
  }
  return kMinCandidateScore;
}

std::vector<SyncCandidate> CandidatesFor(const std::string& req,
                                         const std::deque<SourceCatalog>& catalogs) {
  std::vector<SyncCandidate> all;
  for (const SourceCatalog& cat : catalogs) {
    std::set<std::string, std::less<>> official(cat.canonical_ids.begin(), cat.canonical_ids.end());
    std::vector<SyncCandidate> mine;
    for (const SourceEntry& e : cat.entries) {
      SyncCandidate c;
      c.score = Score(req, e.key, &c.reason);
      if (c.score < MinScoreFor(req, e.key)) continue;
      c.source = std::string(SourceName(cat.source));
      c.source_model_id = e.key;
      c.official = official.count(e.key) != 0;
      c.price = e.price;
      mine.push_back(std::move(c));
    }
    std::stable_sort(mine.begin(), mine.end(), [](const SyncCandidate& a, const SyncCandidate& b) {
      if (a.official != b.official) return a.official;
      return a.score > b.score;
    });
    if (mine.size() > kMaxCandidatesPerSource) mine.resize(kMaxCandidatesPerSource);
    for (SyncCandidate& c : mine) all.push_back(std::move(c));
  }
  return all;
}

}  // namespace

Result<SyncReport> RunSync(const SyncOptions& options, const PriceTable& current,
                           PriceSource& source, int64_t now_ms) {
  SyncReport report;
  report.preview = options.preview;
  report.proxy_used = source.ProxyUsed();

  std::vector<std::string> requested;
  for (const std::string& raw : options.models) {
    std::string m = Trim(raw);
    if (!m.empty() && std::find(requested.begin(), requested.end(), m) == requested.end()) {
      requested.push_back(std::move(m));
    }
  }
  std::set<std::string, std::less<>> pending(requested.begin(), requested.end());
  std::set<std::string, std::less<>> failed_sources;
  std::set<std::string, std::less<>> contributing;
  std::vector<std::string> errors;
  std::deque<SourceCatalog> catalogs;  // stable addresses for the matched entries
  std::map<std::string, std::pair<SourceId, const SourceEntry*>, std::less<>> matches;

  for (SourceId id : kSourceOrder) {
    if (options.explicit_models && !requested.empty() && pending.empty()) break;
    SourceResult result;
    result.source = std::string(SourceName(id));
    Result<std::string> body = source.Fetch(id);
    Result<SourceCatalog> parsed =
        body.ok() ? ParseSource(id, *body) : Result<SourceCatalog>(body.status());
    if (!parsed.ok()) {
      result.error = parsed.status().message();
      errors.push_back(fmt::format("{}: {}", result.source, result.error));
      failed_sources.insert(result.source);
      report.source_results.push_back(std::move(result));
      continue;
    }
    result.fetched = true;
    result.models = static_cast<int64_t>(parsed->entries.size());
    result.skipped = parsed->skipped;
    report.skipped += parsed->skipped;
    report.sources.push_back(result.source);
    report.source_results.push_back(result);
    catalogs.push_back(std::move(parsed).value());
    const SourceCatalog& cat = catalogs.back();
    for (const std::string& req : requested) {
      if (pending.count(req) == 0) continue;
      const SourceEntry* entry = Match(cat, req);
      if (entry == nullptr) continue;
      pending.erase(req);
      auto stored = current.find(req);
      if (stored != current.end() && failed_sources.count(stored->second.source) != 0) {
        report.preserved.push_back(req);
        continue;
      }
      matches[req] = {id, entry};
    }
  }
  if (catalogs.empty()) {
    std::string joined;
    for (const std::string& e : errors) joined += (joined.empty() ? "" : "; ") + e;
    return Error(ErrorCode::kModelPriceSyncFailed,
                 "model price sync failed; existing prices were not changed: " + joined);
  }

  report.prices = current;
  for (const auto& [model, match] : matches) {
    PriceRecord rec = match.second->price;
    rec.updated_at_ms = now_ms;
    rec.synced_at_ms = now_ms;
    auto stored = current.find(model);
    if (stored == current.end()) {
      report.added.push_back(model);
    } else if (stored->second.SamePricing(rec)) {
      report.unchanged.push_back(model);
    } else {
      report.updated.push_back(model);
    }
    contributing.insert(std::string(SourceName(match.first)));
    report.prices.insert_or_assign(model, rec);
    report.matched.emplace(model, std::move(rec));
  }
  report.imported = static_cast<int64_t>(report.matched.size());
  for (const std::string& req : requested) {
    if (pending.count(req) == 0) continue;
    report.unmatched.push_back(req);
    if (!options.explicit_models) continue;
    std::vector<SyncCandidate> candidates = CandidatesFor(req, catalogs);
    if (!candidates.empty()) report.candidates.emplace_back(req, std::move(candidates));
  }
  if (contributing.size() == 1) {
    report.source = *contributing.begin();
  } else if (contributing.empty() && report.sources.size() == 1) {
    report.source = report.sources.front();
  } else {
    report.source = "multi";
  }
  return report;
}

Result<SyncReport> SyncPrices(db::Database& db, PriceSource& source, SyncOptions options,
                              int64_t now_ms) {
  CPAMP_ASSIGN_OR_RETURN(PriceTable current, ListPrices(db));
  options.explicit_models = false;
  for (const std::string& m : options.models) {
    if (!Trim(m).empty()) options.explicit_models = true;
  }
  if (!options.explicit_models) {
    CPAMP_ASSIGN_OR_RETURN(UsageSummary usage, LoadUsageSummary(db, kDefaultUsageQueryLimit));
    options.models.clear();
    for (const ModelUsage& m : usage.models) options.models.push_back(m.model);
  }
  CPAMP_ASSIGN_OR_RETURN(SyncReport report, RunSync(options, current, source, now_ms));
  if (!options.preview && !report.matched.empty()) {
    CPAMP_RETURN_IF_ERROR(db.WriteTransaction(
        [&](db::Connection& conn) { return UpsertPrices(conn, report.matched); }));
    CPAMP_ASSIGN_OR_RETURN(report.prices, ListPrices(db));
  }
  return report;
}

bj::object SyncReportToJson(const SyncReport& report) {
  auto strings = [](const std::vector<std::string>& v) {
    bj::array a;
    for (const std::string& s : v) a.emplace_back(s);
    return a;
  };
  bj::object o;
  o["source"] = report.source;
  o["sources"] = strings(report.sources);
  o["imported"] = report.imported;
  o["skipped"] = report.skipped;
  o["matched"] = PriceTableToJson(report.matched);
  bj::array candidates;
  for (const auto& [model, list] : report.candidates) {
    bj::array items;
    for (const SyncCandidate& c : list) {
      bj::object co;
      co["source"] = c.source;
      co["sourceModelId"] = c.source_model_id;
      co["score"] = c.score;
      co["reason"] = c.reason;
      co["official"] = c.official;
      co["price"] = PriceToJson(c.price);
      items.push_back(std::move(co));
    }
    bj::object entry;
    entry["model"] = model;
    entry["candidates"] = std::move(items);
    candidates.push_back(std::move(entry));
  }
  o["candidates"] = std::move(candidates);
  o["unmatched"] = strings(report.unmatched);
  o["preserved"] = strings(report.preserved);
  o["proxyUsed"] = report.proxy_used;
  bj::array results;
  for (const SourceResult& r : report.source_results) {
    bj::object ro;
    ro["source"] = r.source;
    ro["models"] = r.models;
    ro["skipped"] = r.skipped;
    if (!r.error.empty()) ro["error"] = r.error;
    results.push_back(std::move(ro));
  }
  o["sourceResults"] = std::move(results);
  o["preview"] = report.preview;
  o["added"] = strings(report.added);
  o["updated"] = strings(report.updated);
  o["unchanged"] = strings(report.unchanged);
  o["prices"] = PriceTableToJson(report.prices);
  return o;
}

}  // namespace cpamp::pricing
