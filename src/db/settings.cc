// The settings repository: JSON blobs keyed by name (spec storage 1.3). Values are opaque here;
// encryption of secrets inside them belongs to security/ and setup/.
#include "db/db.h"

namespace cpamp::db {

Result<std::optional<std::string>> GetSetting(Connection& conn, std::string_view key) {
  CPAMP_ASSIGN_OR_RETURN(Statement stmt, conn.Prepare("select value from settings where key = ?1"));
  CPAMP_RETURN_IF_ERROR(stmt.Bind(1, key));
  CPAMP_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(stmt.ColumnText("value"));
}

Status PutSetting(Connection& conn, std::string_view key, std::string_view value, int64_t now_ms) {
  CPAMP_ASSIGN_OR_RETURN(
      Statement stmt,
      conn.Prepare("insert into settings (key, value, updated_at_ms) values (:key, :value, :now) "
                   "on conflict(key) do update set value = excluded.value, "
                   "updated_at_ms = excluded.updated_at_ms"));
  CPAMP_RETURN_IF_ERROR(stmt.Bind(":key", key));
  CPAMP_RETURN_IF_ERROR(stmt.Bind(":value", value));
  CPAMP_RETURN_IF_ERROR(stmt.Bind(":now", now_ms));
  return stmt.Run();
}

Status DeleteSetting(Connection& conn, std::string_view key) {
  CPAMP_ASSIGN_OR_RETURN(Statement stmt, conn.Prepare("delete from settings where key = ?1"));
  CPAMP_RETURN_IF_ERROR(stmt.Bind(1, key));
  return stmt.Run();
}

}  // namespace cpamp::db
