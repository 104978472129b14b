// Helpers for pricing_test: a temporary database, fixture paths and request builders.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "db/db.h"
#include "net/http.h"

namespace cpamp::pricing::testing {

// A fresh directory with an opened, migrated usage.sqlite; removed on destruction.
class TempDb {
 public:
  TempDb() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "cpamp_pricing_test_XXXXXX").string();
    char* made = ::mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    dir_ = tmpl;
    auto opened = db::Database::Open((dir_ / "usage.sqlite").string());
    EXPECT_TRUE(opened.ok()) << opened.status().message();
    db_ = std::move(opened).value();
  }
  ~TempDb() {
    db_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  db::Database& db() { return *db_; }

  // Inserts a minimal usage_events row.
  void AddEvent(int id, const std::string& model, const std::string& requested,
                const std::string& resolved) {
    Status s = db_->Write([&](db::Connection& conn) -> Status {
      auto st = conn.Prepare(
          "insert into usage_events (event_hash, timestamp_ms, timestamp, model, "
          "requested_model, resolved_model, created_at_ms) values (?1, ?2, 't', ?3, ?4, ?5, 1)");
      if (!st.ok()) return st.status();
      CPAMP_RETURN_IF_ERROR(st->Bind(1, "h" + std::to_string(id)));
      CPAMP_RETURN_IF_ERROR(st->Bind(2, id));
      CPAMP_RETURN_IF_ERROR(st->Bind(3, model));
      CPAMP_RETURN_IF_ERROR(
          st->Bind(4, requested.empty() ? std::optional<std::string>() : requested));
      CPAMP_RETURN_IF_ERROR(
          st->Bind(5, resolved.empty() ? std::optional<std::string>() : resolved));
      return st->Run();
    });
    ASSERT_TRUE(s.ok()) << s.message();
  }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<db::Database> db_;
};

inline std::string FixtureDir() { return CPAMP_PRICE_FIXTURES_DIR; }

inline net::Request MakeRequest(std::string method, std::string path, std::string body = "",
                                std::string query = "") {
  net::Request r;
  r.head.method = std::move(method);
  r.head.path = std::move(path);
  r.head.query = std::move(query);
  r.head.target = r.head.path + (r.head.query.empty() ? "" : "?" + r.head.query);
  r.body = std::move(body);
  return r;
}

}  // namespace cpamp::pricing::testing
