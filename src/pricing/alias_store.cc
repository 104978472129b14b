// API key aliases (spec storage §7.6, api §4.7): display names for client API key hashes.
//
// Uniqueness is case-insensitive on the trimmed alias (ASCII lower-casing, like the upstream's
// strings.ToLower for the names people actually type). The check runs inside the write
// transaction against the rows that this request does not itself rewrite, so swapping two
// aliases in one PUT works. A conflicting stored row is deleted only when its hash is not in
// activeApiKeyHashes and allowOrphanAliasCleanup is set; otherwise the whole PUT fails and
// nothing is written.
#include <algorithm>
#include <set>
#include <unordered_map>

#include "base/strings.h"
#include "pricing/internal.h"
#include "pricing/pricing.h"

namespace cpamp::pricing {
namespace {

Status Duplicate() {
  return Error(ErrorCode::kApiKeyAliasDuplicate, "api key alias already exists");
}

std::string AliasKey(std::string_view alias) { return ToLower(Trim(alias)); }

}  // namespace

Result<std::string> NormalizeApiKeyHash(std::string_view hash) {
  std::string h = ToLower(Trim(hash));
  bool ok = h.size() == 64 && std::all_of(h.begin(), h.end(), [](char c) {
              return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
            });
  if (!ok) return Error(ErrorCode::kBadRequest, "valid apiKeyHash is required");
  return h;
}

Result<std::vector<ApiKeyAlias>> ListAliases(db::Database& db) {
  return db.Read([](db::Connection& conn) -> Result<std::vector<ApiKeyAlias>> {
    CPAMP_ASSIGN_OR_RETURN(db::Statement rows,
                           conn.Prepare("select api_key_hash, alias, updated_at_ms from "
                                        "api_key_aliases order by alias collate nocase, "
                                        "api_key_hash"));
    std::vector<ApiKeyAlias> out;
    while (true) {
      CPAMP_ASSIGN_OR_RETURN(bool has_row, rows.Step());
      if (!has_row) break;
      out.push_back(ApiKeyAlias{rows.ColumnText("api_key_hash"), rows.ColumnText("alias"),
                                rows.ColumnInt64("updated_at_ms")});
    }
    return out;
  });
}

Status UpsertAliases(db::Database& db, const AliasUpdate& update, int64_t now_ms) {
  // Validate and normalise the request first; nothing is written on any error.
  std::vector<ApiKeyAlias> items;
  for (const ApiKeyAlias& raw : update.items) {
    CPAMP_ASSIGN_OR_RETURN(std::string hash, NormalizeApiKeyHash(raw.api_key_hash));
    std::string alias = Trim(raw.alias);
    if (alias.empty()) return Error(ErrorCode::kBadRequest, "alias is required");
    if (internal::RuneCount(alias) > kMaxAliasRunes) {
      return Error(ErrorCode::kBadRequest, "alias must be at most 120 characters");
    }
    // A later item for the same hash wins.
    auto same = std::find_if(items.begin(), items.end(),
                             [&](const ApiKeyAlias& a) { return a.api_key_hash == hash; });
    if (same != items.end()) {
      same->alias = alias;
    } else {
      items.push_back(ApiKeyAlias{hash, alias, now_ms});
    }
  }
  if (items.empty()) return Status::Ok();
  std::set<std::string, std::less<>> request_hashes;
  for (const ApiKeyAlias& a : items) request_hashes.insert(a.api_key_hash);
  // alias key → hash, over the final aliases of this request (a later item for a hash wins).
  std::unordered_map<std::string, std::string> key_owner;
  for (const ApiKeyAlias& a : items) {
    if (!key_owner.emplace(AliasKey(a.alias), a.api_key_hash).second) return Duplicate();
  }
  std::set<std::string, std::less<>> active;
  for (const std::string& h : update.active_api_key_hashes) active.insert(ToLower(Trim(h)));

  return db.WriteTransaction([&](db::Connection& conn) -> Status {
    CPAMP_ASSIGN_OR_RETURN(db::Statement existing,
                           conn.Prepare("select api_key_hash, alias from api_key_aliases"));
    std::vector<std::string> orphans;
    while (true) {
      CPAMP_ASSIGN_OR_RETURN(bool has_row, existing.Step());
      if (!has_row) break;
      std::string hash = existing.ColumnText("api_key_hash");
      if (request_hashes.count(hash) != 0) continue;  // rewritten by this request
      auto owner = key_owner.find(AliasKey(existing.ColumnTextView("alias")));
      if (owner == key_owner.end()) continue;
      if (update.allow_orphan_alias_cleanup && active.count(hash) == 0) {
        orphans.push_back(hash);
      } else {
        return Duplicate();
      }
    }
    CPAMP_ASSIGN_OR_RETURN(db::Statement del,
                           conn.Prepare("delete from api_key_aliases where api_key_hash = ?1"));
    for (const std::string& hash : orphans) {
      CPAMP_RETURN_IF_ERROR(del.Reset());
      CPAMP_RETURN_IF_ERROR(del.Bind(1, hash));
      CPAMP_RETURN_IF_ERROR(del.Run());
    }
    CPAMP_ASSIGN_OR_RETURN(
        db::Statement put,
        conn.Prepare("insert into api_key_aliases (api_key_hash, alias, updated_at_ms) "
                     "values (?1, ?2, ?3) on conflict(api_key_hash) do update set "
                     "alias = excluded.alias, updated_at_ms = excluded.updated_at_ms"));
    for (const ApiKeyAlias& a : items) {
      CPAMP_RETURN_IF_ERROR(put.Reset());
      CPAMP_RETURN_IF_ERROR(put.Bind(1, a.api_key_hash));
      CPAMP_RETURN_IF_ERROR(put.Bind(2, a.alias));
      CPAMP_RETURN_IF_ERROR(put.Bind(3, now_ms));
      CPAMP_RETURN_IF_ERROR(put.Run());
    }
    return Status::Ok();
  });
}

Status DeleteAlias(db::Database& db, std::string_view api_key_hash) {
  CPAMP_ASSIGN_OR_RETURN(std::string hash, NormalizeApiKeyHash(api_key_hash));
  return db.Write([&](db::Connection& conn) -> Status {
    CPAMP_ASSIGN_OR_RETURN(db::Statement del,
                           conn.Prepare("delete from api_key_aliases where api_key_hash = ?1"));
    CPAMP_RETURN_IF_ERROR(del.Bind(1, hash));
    return del.Run();
  });
}

}  // namespace cpamp::pricing
