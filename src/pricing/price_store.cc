// SQL for model_prices and its two tier tables, plus the model usage summary.
//
// A price row and its tiers are always written together: UpsertPrices deletes the model's row
// (the tier tables cascade, and we also delete them explicitly in case foreign keys are off on
// an old file) and inserts it again, so "replace the row and its tiers per model id" (§7.4) is
// literally what happens. ReplaceAllPrices empties all three tables first. Both run inside the
// caller's transaction; ReplacePrices is the one-transaction PUT service. Loading reads the
// three tables in three statements and stitches them in memory (the table holds hundreds of
// rows, not millions). Empty text fields are stored as NULL, syncedAtMs 0 as NULL.
#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

#include "base/strings.h"
#include "pricing/pricing.h"

namespace cpamp::pricing {
namespace {

constexpr std::string_view kTierColumns =
    "prompt_per_1m, completion_per_1m, cache_per_1m, cache_read_per_1m, cache_creation_per_1m, "
    "prompt_configured, completion_configured, cache_configured, cache_read_configured, "
    "cache_creation_configured";

PriceFields ReadTierFields(const db::Statement& s) {
  PriceFields p;
  p.prompt = s.ColumnDouble("prompt_per_1m");
  p.completion = s.ColumnDouble("completion_per_1m");
  p.cache = s.ColumnDouble("cache_per_1m");
  p.cache_read = s.ColumnDouble("cache_read_per_1m");
  p.cache_creation = s.ColumnDouble("cache_creation_per_1m");
  p.prompt_configured = s.ColumnInt64("prompt_configured") != 0;
  p.completion_configured = s.ColumnInt64("completion_configured") != 0;
  p.cache_configured = s.ColumnInt64("cache_configured") != 0;
  p.cache_read_configured = s.ColumnInt64("cache_read_configured") != 0;
  p.cache_creation_configured = s.ColumnInt64("cache_creation_configured") != 0;
  return p;
}

// Binds the ten tier price columns starting at parameter `first`.
Status BindTierFields(db::Statement& s, int first, const PriceFields& p) {
  CPAMP_RETURN_IF_ERROR(s.Bind(first, p.prompt));
  CPAMP_RETURN_IF_ERROR(s.Bind(first + 1, p.completion));
  CPAMP_RETURN_IF_ERROR(s.Bind(first + 2, p.cache));
  CPAMP_RETURN_IF_ERROR(s.Bind(first + 3, p.cache_read));
  CPAMP_RETURN_IF_ERROR(s.Bind(first + 4, p.cache_creation));
  CPAMP_RETURN_IF_ERROR(s.Bind(first + 5, p.prompt_configured));
  CPAMP_RETURN_IF_ERROR(s.Bind(first + 6, p.completion_configured));
  CPAMP_RETURN_IF_ERROR(s.Bind(first + 7, p.cache_configured));
  CPAMP_RETURN_IF_ERROR(s.Bind(first + 8, p.cache_read_configured));
  return s.Bind(first + 9, p.cache_creation_configured);
}

std::optional<std::string_view> NullIfEmpty(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return std::string_view(s);
}

Status InsertPrice(db::Connection& conn, const std::string& model, const PriceRecord& p) {
  CPAMP_ASSIGN_OR_RETURN(
      db::Statement row,
      conn.Prepare("insert into model_prices (model, prompt_per_1m, completion_per_1m, "
                   "cache_per_1m, cache_read_per_1m, cache_creation_per_1m, prompt_configured, "
                   "completion_configured, cache_read_configured, cache_creation_configured, "
                   "source, source_model_id, raw_json, updated_at_ms, synced_at_ms) "
                   "values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"));
  CPAMP_RETURN_IF_ERROR(row.Bind(1, model));
  CPAMP_RETURN_IF_ERROR(row.Bind(2, p.base.prompt));
  CPAMP_RETURN_IF_ERROR(row.Bind(3, p.base.completion));
  CPAMP_RETURN_IF_ERROR(row.Bind(4, p.base.cache));
  CPAMP_RETURN_IF_ERROR(row.Bind(5, p.base.cache_read));
  CPAMP_RETURN_IF_ERROR(row.Bind(6, p.base.cache_creation));
  CPAMP_RETURN_IF_ERROR(row.Bind(7, p.base.prompt_configured));
  CPAMP_RETURN_IF_ERROR(row.Bind(8, p.base.completion_configured));
  CPAMP_RETURN_IF_ERROR(row.Bind(9, p.base.cache_read_configured));
  CPAMP_RETURN_IF_ERROR(row.Bind(10, p.base.cache_creation_configured));
  CPAMP_RETURN_IF_ERROR(row.Bind(11, NullIfEmpty(p.source)));
  CPAMP_RETURN_IF_ERROR(row.Bind(12, NullIfEmpty(p.source_model_id)));
  CPAMP_RETURN_IF_ERROR(row.Bind(13, NullIfEmpty(p.raw_json)));
  CPAMP_RETURN_IF_ERROR(row.Bind(14, p.updated_at_ms));
  CPAMP_RETURN_IF_ERROR(
      row.Bind(15, p.synced_at_ms > 0 ? std::optional<int64_t>(p.synced_at_ms) : std::nullopt));
  CPAMP_RETURN_IF_ERROR(row.Run());

  if (!p.context_tiers.empty()) {
    CPAMP_ASSIGN_OR_RETURN(
        db::Statement tier,
        conn.Prepare(fmt::format("insert into model_price_context_tiers (model, threshold_tokens, "
                                 "{}) values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                                 kTierColumns)));
    for (const ContextTier& t : p.context_tiers) {
      CPAMP_RETURN_IF_ERROR(tier.Reset());
      CPAMP_RETURN_IF_ERROR(tier.Bind(1, model));
      CPAMP_RETURN_IF_ERROR(tier.Bind(2, t.threshold_tokens));
      CPAMP_RETURN_IF_ERROR(BindTierFields(tier, 3, t.price));
      CPAMP_RETURN_IF_ERROR(tier.Run());
    }
  }
  if (!p.service_tiers.empty()) {
    CPAMP_ASSIGN_OR_RETURN(
        db::Statement tier,
        conn.Prepare(fmt::format("insert into model_price_service_tiers (model, mode, "
                                 "service_tier, {}) values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                                 "?10, ?11, ?12, ?13)",
                                 kTierColumns)));
    for (const ServiceTierRule& r : p.service_tiers) {
      CPAMP_RETURN_IF_ERROR(tier.Reset());
      CPAMP_RETURN_IF_ERROR(tier.Bind(1, model));
      CPAMP_RETURN_IF_ERROR(tier.Bind(2, r.mode));
      CPAMP_RETURN_IF_ERROR(tier.Bind(3, r.service_tier));
      CPAMP_RETURN_IF_ERROR(BindTierFields(tier, 4, r.price));
      CPAMP_RETURN_IF_ERROR(tier.Run());
    }
  }
  return Status::Ok();
}

Status DeleteModel(db::Connection& conn, const std::string& model) {
  for (std::string_view table :
       {"model_price_context_tiers", "model_price_service_tiers", "model_prices"}) {
    CPAMP_ASSIGN_OR_RETURN(db::Statement del,
                           conn.Prepare(fmt::format("delete from {} where model = ?1", table)));
    CPAMP_RETURN_IF_ERROR(del.Bind(1, model));
    CPAMP_RETURN_IF_ERROR(del.Run());
  }
  return Status::Ok();
}

}  // namespace

Result<PriceTable> LoadPrices(db::Connection& conn) {
  PriceTable table;
  CPAMP_ASSIGN_OR_RETURN(
      db::Statement rows,
      conn.Prepare("select model, prompt_per_1m, completion_per_1m, cache_per_1m, "
                   "cache_read_per_1m, cache_creation_per_1m, prompt_configured, "
                   "completion_configured, cache_read_configured, cache_creation_configured, "
                   "source, source_model_id, raw_json, updated_at_ms, synced_at_ms "
                   "from model_prices order by model"));
  while (true) {
    CPAMP_ASSIGN_OR_RETURN(bool has_row, rows.Step());
    if (!has_row) break;
    PriceRecord p;
    p.base.prompt = rows.ColumnDouble("prompt_per_1m");
    p.base.completion = rows.ColumnDouble("completion_per_1m");
    p.base.cache = rows.ColumnDouble("cache_per_1m");
    p.base.cache_read = rows.ColumnDouble("cache_read_per_1m");
    p.base.cache_creation = rows.ColumnDouble("cache_creation_per_1m");
    p.base.prompt_configured = rows.ColumnInt64("prompt_configured") != 0;
    p.base.completion_configured = rows.ColumnInt64("completion_configured") != 0;
    p.base.cache_read_configured = rows.ColumnInt64("cache_read_configured") != 0;
    p.base.cache_creation_configured = rows.ColumnInt64("cache_creation_configured") != 0;
    p.source = rows.ColumnText("source");
    p.source_model_id = rows.ColumnText("source_model_id");
    p.raw_json = rows.ColumnText("raw_json");
    p.updated_at_ms = rows.ColumnInt64("updated_at_ms");
    p.synced_at_ms = rows.ColumnInt64("synced_at_ms");
    table.emplace(rows.ColumnText("model"), std::move(p));
  }

  CPAMP_ASSIGN_OR_RETURN(
      db::Statement ctx,
      conn.Prepare(fmt::format("select model, threshold_tokens, {} from model_price_context_tiers "
                               "order by model, threshold_tokens",
                               kTierColumns)));
  while (true) {
    CPAMP_ASSIGN_OR_RETURN(bool has_row, ctx.Step());
    if (!has_row) break;
    auto it = table.find(ctx.ColumnTextView("model"));
    if (it == table.end()) continue;  // orphan tier of an old file without foreign keys
    it->second.context_tiers.push_back(
        ContextTier{ctx.ColumnInt64("threshold_tokens"), ReadTierFields(ctx)});
  }

  CPAMP_ASSIGN_OR_RETURN(
      db::Statement svc,
      conn.Prepare(fmt::format("select model, mode, service_tier, {} from "
                               "model_price_service_tiers order by model, mode, service_tier",
                               kTierColumns)));
  while (true) {
    CPAMP_ASSIGN_OR_RETURN(bool has_row, svc.Step());
    if (!has_row) break;
    auto it = table.find(svc.ColumnTextView("model"));
    if (it == table.end()) continue;
    it->second.service_tiers.push_back(ServiceTierRule{
        svc.ColumnText("mode"), svc.ColumnText("service_tier"), ReadTierFields(svc)});
  }
  return table;
}

Status ReplaceAllPrices(db::Connection& conn, const PriceTable& table, int64_t now_ms) {
  CPAMP_RETURN_IF_ERROR(
      conn.Exec("delete from model_price_context_tiers; delete from model_price_service_tiers; "
                "delete from model_prices;"));
  for (const auto& [model, price] : table) {
    PriceRecord row = price;
    row.updated_at_ms = now_ms;
    CPAMP_RETURN_IF_ERROR(InsertPrice(conn, model, row));
  }
  return Status::Ok();
}

Status UpsertPrices(db::Connection& conn, const PriceTable& rows) {
  for (const auto& [model, price] : rows) {
    CPAMP_RETURN_IF_ERROR(DeleteModel(conn, model));
    CPAMP_RETURN_IF_ERROR(InsertPrice(conn, model, price));
  }
  return Status::Ok();
}

Result<PriceTable> ReplacePrices(db::Database& db, const PriceTable& table, int64_t now_ms) {
  for (const auto& [model, price] : table) CPAMP_RETURN_IF_ERROR(ValidatePrice(model, price));
  CPAMP_RETURN_IF_ERROR(db.WriteTransaction(
      [&](db::Connection& conn) { return ReplaceAllPrices(conn, table, now_ms); }));
  return ListPrices(db);
}

Result<PriceTable> ListPrices(db::Database& db) {
  return db.Read([](db::Connection& conn) { return LoadPrices(conn); });
}

Result<UsageSummary> LoadUsageSummary(db::Database& db, int64_t limit) {
  if (limit <= 0) limit = kDefaultUsageQueryLimit;
  return db.Read([&](db::Connection& conn) -> Result<UsageSummary> {
    auto tx = db::Transaction::Begin(conn, db::Transaction::Mode::kDeferred);
    if (!tx.ok()) return tx.status();
    UsageSummary summary;
    CPAMP_ASSIGN_OR_RETURN(db::Statement count, conn.Prepare("select count(*) from usage_events"));
    CPAMP_ASSIGN_OR_RETURN(bool counted, count.Step());
    summary.total_events = counted ? count.ColumnInt64(0) : 0;
    summary.sampled_events = std::min(summary.total_events, limit);
    summary.truncated = summary.total_events > limit;

    CPAMP_ASSIGN_OR_RETURN(
        db::Statement rows,
        conn.Prepare("select coalesce(model, '') as model, coalesce(requested_model, '') as req, "
                     "coalesce(resolved_model, '') as res, count(*) as n from "
                     "(select model, requested_model, resolved_model from usage_events "
                     "order by id desc limit ?1) group by 1, 2, 3"));
    CPAMP_RETURN_IF_ERROR(rows.Bind(1, limit));
    std::unordered_map<std::string, ModelUsage> by_model;
    auto entry = [&](const std::string& name) -> ModelUsage& {
      ModelUsage& u = by_model[name];
      u.model = name;
      return u;
    };
    while (true) {
      CPAMP_ASSIGN_OR_RETURN(bool has_row, rows.Step());
      if (!has_row) break;
      std::string model = Trim(rows.ColumnTextView("model"));
      std::string req = Trim(rows.ColumnTextView("req"));
      std::string res = Trim(rows.ColumnTextView("res"));
      int64_t n = rows.ColumnInt64("n");
      std::vector<std::string> names;
      for (const std::string& name : {model, req, res}) {
        if (name.empty() || name == "-") continue;
        if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
      }
      for (const std::string& name : names) entry(name).calls += n;
      if (!req.empty() && req != "-") entry(req).requested_calls += n;
      if (!res.empty() && res != "-") entry(res).resolved_calls += n;
    }
    for (auto& [name, usage] : by_model) summary.models.push_back(std::move(usage));
    std::sort(summary.models.begin(), summary.models.end(),
              [](const ModelUsage& a, const ModelUsage& b) {
                return a.calls != b.calls ? a.calls > b.calls : a.model < b.model;
              });
    return summary;
  });
}

boost::json::object UsageSummaryToJson(const UsageSummary& summary) {
  boost::json::object o;
  o["sampled_events"] = summary.sampled_events;
  o["total_events"] = summary.total_events;
  o["truncated"] = summary.truncated;
  boost::json::array models;
  for (const ModelUsage& m : summary.models) {
    boost::json::object mo;
    mo["model"] = m.model;
    mo["calls"] = m.calls;
    mo["requested_calls"] = m.requested_calls;
    mo["resolved_calls"] = m.resolved_calls;
    models.push_back(std::move(mo));
  }
  o["models"] = std::move(models);
  return o;
}

}  // namespace cpamp::pricing
