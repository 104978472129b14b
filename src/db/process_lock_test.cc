#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "db/db.h"
#include "db/db_test_util.h"

namespace cpamp::db {
namespace {

using testing::CreateDatabaseFromSql;
using testing::TempDir;

void WriteFile(const std::string& path, const std::string& content) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fwrite(content.data(), 1, content.size(), f);
  std::fclose(f);
}

TEST(ProcessLock, SecondAcquireFailsWhileHeldAndSucceedsAfterRelease) {
  TempDir dir;
  std::string db_path = dir.File("usage.sqlite");
  auto canonical = CanonicalDbPath(db_path);
  ASSERT_TRUE(canonical.ok());

  auto first = ProcessLock::Acquire(db_path);
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_TRUE(first->held());
  EXPECT_EQ(first->db_path(), *canonical);
  EXPECT_EQ(first->lock_path(), *canonical + ".manager.lock");

  struct stat st {};
  ASSERT_EQ(::stat(first->lock_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto second = ProcessLock::Acquire(db_path);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().message(),
            "manager database process lock is already held for " + *canonical);

  // Moving keeps it held; the moved-from object holds nothing.
  ProcessLock moved = std::move(first).value();
  EXPECT_TRUE(moved.held());
  EXPECT_FALSE(ProcessLock::Acquire(db_path).ok());
  { ProcessLock released = std::move(moved); }
  EXPECT_FALSE(moved.held());  // NOLINT(bugprone-use-after-move): checking the moved-from state

  auto third = ProcessLock::Acquire(db_path);
  ASSERT_TRUE(third.ok()) << third.status().message();
  EXPECT_TRUE(std::filesystem::exists(third->lock_path()));
}

TEST(ProcessLock, LockFileSurvivesRelease) {
  TempDir dir;
  std::string lock_path;
  {
    auto lock = ProcessLock::Acquire(dir.File("usage.sqlite"));
    ASSERT_TRUE(lock.ok());
    lock_path = lock->lock_path();
  }
  EXPECT_TRUE(std::filesystem::exists(lock_path));
}

TEST(ProcessLock, SymlinkedAndRelativePathsShareOneLock) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "real");
  std::string db_path = dir.File("real/usage.sqlite");
  CreateDatabaseFromSql(db_path, "create table x (a);");
  std::filesystem::create_symlink(db_path, dir.path() / "link.sqlite");
  std::filesystem::create_directory_symlink(dir.path() / "real", dir.path() / "dirlink");

  auto held = ProcessLock::Acquire(dir.File("link.sqlite"));
  ASSERT_TRUE(held.ok()) << held.status().message();
  auto canonical = CanonicalDbPath(db_path);
  ASSERT_TRUE(canonical.ok());
  EXPECT_EQ(held->db_path(), *canonical);

  auto direct = ProcessLock::Acquire(db_path);
  ASSERT_FALSE(direct.ok());
  EXPECT_EQ(direct.status().message(),
            "manager database process lock is already held for " + *canonical);
  // Not-yet-existing file under a symlinked directory resolves through the directory.
  EXPECT_EQ(CanonicalDbPath(dir.File("dirlink/usage.sqlite")).value_or(""), *canonical);
  EXPECT_EQ(CanonicalDbPath(dir.File("dirlink/../real/./usage.sqlite")).value_or(""), *canonical);
  EXPECT_FALSE(ProcessLock::Acquire(dir.File("dirlink/usage.sqlite")).ok());
}

TEST(ProcessLock, RejectsHardLinkedDatabase) {
  TempDir dir;
  std::string db_path = dir.File("usage.sqlite");
  CreateDatabaseFromSql(db_path, "create table x (a);");
  ASSERT_EQ(::link(db_path.c_str(), dir.File("other.sqlite").c_str()), 0);
  auto lock = ProcessLock::Acquire(db_path);
  ASSERT_FALSE(lock.ok());
  EXPECT_NE(lock.status().message().find("hard links"), std::string::npos)
      << lock.status().message();
  EXPECT_FALSE(std::filesystem::exists(db_path + ".manager.lock"));
}

TEST(ProcessLock, CreatesMissingParentDirectory) {
  TempDir dir;
  auto lock = ProcessLock::Acquire(dir.File("a/b/usage.sqlite"));
  ASSERT_TRUE(lock.ok()) << lock.status().message();
  EXPECT_TRUE(std::filesystem::exists(dir.File("a/b/usage.sqlite.manager.lock")));
  EXPECT_FALSE(std::filesystem::exists(dir.File("a/b/usage.sqlite")));
}

TEST(LooksLikeManagerDatabase, ReportsEachFailureWithItsMessage) {
  TempDir dir;
  std::string missing = dir.File("missing.sqlite");
  auto r = LooksLikeManagerDatabase(missing);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "SQLite database not found at " + missing);
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(missing));

  r = LooksLikeManagerDatabase(dir.path().string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "SQLite database path " + dir.path().string() + " is a directory");

  std::string empty = dir.File("empty.sqlite");
  WriteFile(empty, "");
  r = LooksLikeManagerDatabase(empty);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "SQLite database " + empty + " is empty");

  std::string garbage = dir.File("garbage.sqlite");
  WriteFile(garbage, std::string(4096, 'z'));
  r = LooksLikeManagerDatabase(garbage);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            garbage + " does not look like a CPA Manager Plus Manager Server database");

  std::string other = dir.File("other.sqlite");
  CreateDatabaseFromSql(other, "create table settings (key text primary key, value text);");
  r = LooksLikeManagerDatabase(other);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            other + " does not look like a CPA Manager Plus Manager Server database");
}

TEST(LooksLikeManagerDatabase, AcceptsUpstreamAndOurOwnDatabases) {
  TempDir dir;
  std::string upstream = dir.File("upstream.sqlite");
  CreateDatabaseFromSql(upstream,
                        testing::ReadFileOrDie(testing::CompatFile("upstream-v1.1.0-schema.sql")));
  auto r = LooksLikeManagerDatabase(upstream);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(*r);

  std::string ours = dir.File("ours.sqlite");
  {
    auto db = Database::Open(ours);
    ASSERT_TRUE(db.ok());
  }
  r = LooksLikeManagerDatabase(ours);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(*r);
}

}  // namespace
}  // namespace cpamp::db
