// journal_sqlite.cpp — SqliteJournal: the duplicate journal in one SQLite
// file (WAL), the default for a single host. The file holds senders and
// Message-IDs: it is created 0600 whatever the umask. Claims are atomic
// across processes by SQLite's own write lock (one upsert statement).
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <vector>

#include "journal.h"
#include "unique_fd.h"

namespace rtm {
namespace {

// The statements, each prepared once per journal (index into statements_).
enum : int { kLookup, kRecord, kForget, kExpire, kClaim, kUploaded, kStatements };
const std::string kTable = "delivered";
const std::string kSql[] = {
    journal_sql::lookup(kTable), journal_sql::record(kTable), journal_sql::forget(kTable),
    journal_sql::expire(kTable), journal_sql::claim(kTable),  journal_sql::uploaded(kTable),
};
// user_version 2: the claim columns (owner, claim_until) are there.
constexpr int kSchemaVersion = 2;

// Resets a kept statement (and drops its bindings) when the use ends.
struct Use {
    sqlite3_stmt* stmt;
    ~Use() {
        if (stmt) {
            sqlite3_reset(stmt);
            sqlite3_clear_bindings(stmt);
        }
    }
};

Status failure(sqlite3* db, const std::string& what) {
    return Status::failure(what + ": " + sqlite3_errmsg(db));
}

// Creates the journal 0600 before SQLite does (SQLite would use 0644 less the
// umask), and takes group and other access from one an older rt-milter made
// readable. SQLite gives -wal and -shm the mode of the main file when it
// creates them; ones left from before are tightened too.
Status make_private(const std::string& path) {
    for (const std::string& name : {path, path + "-wal", path + "-shm"}) {
        const int create = name == path ? O_CREAT : 0;
        UniqueFd fd(::open(name.c_str(), O_RDWR | O_CLOEXEC | create, 0600));
        if (!fd.valid()) {
            if (!create && errno == ENOENT) continue;
            return Status::failure("cannot open journal " + name + ": " + std::strerror(errno));
        }
        struct stat st {};
        if (fstat(fd.get(), &st) == 0 && (st.st_mode & 077) && st.st_uid == geteuid() &&
            fchmod(fd.get(), st.st_mode & 0700) != 0) {
            return Status::failure("cannot make journal " + name +
                                   " private: " + std::strerror(errno));
        }
    }
    return Status::ok();
}

class SqliteJournal final : public Journal {
  public:
    SqliteJournal(sqlite3* db, const std::string& path, long expiry_seconds)
        : Journal(path, expiry_seconds), db_(db) {}
    ~SqliteJournal() override {
        for (sqlite3_stmt* st : statements_) sqlite3_finalize(st);
        sqlite3_close(db_);
    }

    Status set_up();
    Status lookup(const std::string& key, State& state) override;
    Status claim(const std::string& key, State expected, long seconds, Claim& result) override;
    Status uploaded(const std::string& key) override;
    Status record(const std::string& key, State state, const std::string& note) override;
    Status forget(const std::string& key) override;
    Status expire() override {
        std::lock_guard lock(mutex_);
        return expire_locked();
    }
    Status check_writable() override;

  private:
    Status exec(const char* sql);
    Status end_dead_claims();
    Status expire_locked();
    Status lookup_locked(const std::string& key, State& state, std::string& holder);
    // Statement INDEX of kSql, prepared once and kept (nullptr on error);
    // callers hold mutex_ and reset it after use.
    sqlite3_stmt* statement(int index);
    void bind(sqlite3_stmt* st, int index, const std::string& text) {
        sqlite3_bind_text(st, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    }

    sqlite3* db_;
    sqlite3_stmt* statements_[kStatements] = {};
    std::mutex mutex_;
    long next_expiry_ = 0;  // time() of the next expiry run
};

}  // namespace

std::unique_ptr<Journal> open_sqlite_journal(const std::string& path, long expiry_seconds,
                                             std::string& error) {
    if (Status s = make_private(path); !s) {
        error = s.error();
        return nullptr;
    }
    // No memory statistics: they take a global mutex on every allocation
    // SQLite makes, and nothing here reads them. Only possible before SQLite
    // is first used in the process (later it is refused, harmlessly).
    static std::once_flag quiet;
    std::call_once(quiet, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
    sqlite3* db = nullptr;
    // NOMUTEX: every use of the connection holds the journal's own mutex_.
    int rc =
        sqlite3_open_v2(path.c_str(), &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        error =
            "cannot open journal " + path + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return nullptr;
    }
    auto journal = std::make_unique<SqliteJournal>(db, path, expiry_seconds);
    sqlite3_busy_timeout(db, 5000);  // another process (a restart) may hold the lock a moment
    if (Status s = journal->set_up(); !s) {
        error = "cannot set up journal " + path + ": " + s.error();
        return nullptr;
    }
    if (Status s = journal->expire(); !s) {
        error = "cannot use journal " + path + ": " + s.error();
        return nullptr;
    }
    return journal;
}

namespace {

Status SqliteJournal::check_writable() {
    sqlite3* db = nullptr;
    const int rc =
        sqlite3_open_v2(where_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
    std::unique_ptr<sqlite3, int (*)(sqlite3*)> closing(db, sqlite3_close);
    if (rc != SQLITE_OK)
        return Status::failure("cannot open " + where_ + ": " +
                               (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    if (sqlite3_db_readonly(db, "main") == 1)
        return Status::failure(where_ + " is read-only for this process");
    sqlite3_busy_timeout(db, 1000);
    char* message = nullptr;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE; ROLLBACK", nullptr, nullptr, &message) != SQLITE_OK) {
        const std::string why = message ? message : sqlite3_errmsg(db);
        sqlite3_free(message);
        return Status::failure(where_ + " takes no writes: " + why);
    }
    return Status::ok();
}

Status SqliteJournal::set_up() {
    for (const char* sql :
         {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
          // WITHOUT ROWID: the key is the table's only b-tree
          "CREATE TABLE IF NOT EXISTS delivered ("
          " key TEXT PRIMARY KEY, state INTEGER NOT NULL,"
          " at INTEGER NOT NULL, note TEXT NOT NULL,"
          " owner TEXT NOT NULL DEFAULT '', claim_until INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID",
          "DROP INDEX IF EXISTS delivered_at"}) {
        if (Status s = exec(sql); !s) return s;
    }
    // A journal of an rt-milter before claims: add their columns, once.
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(
            db_, "SELECT count(*) FROM pragma_table_info('delivered') WHERE name = 'claim_until'",
            -1, &st, nullptr) != SQLITE_OK)
        return failure(db_, "schema check");
    const bool has_claims = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
    sqlite3_finalize(st);
    if (!has_claims) {
        for (const char* sql :
             {"ALTER TABLE delivered ADD COLUMN owner TEXT NOT NULL DEFAULT ''",
              "ALTER TABLE delivered ADD COLUMN claim_until INTEGER NOT NULL DEFAULT 0"}) {
            if (Status s = exec(sql); !s) return s;
        }
    }
    if (Status s = exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str()); !s)
        return s;
    return end_dead_claims();
}

// Claims of this host's processes that are gone (rt-milter crashed or was
// killed mid-POST, and this is its restart) end now, rather than hold their
// targets until they expire.
Status SqliteJournal::end_dead_claims() {
    using Statement = std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)>;
    auto prepare = [this](const std::string& sql) {
        sqlite3_stmt* st = nullptr;
        sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr);
        return Statement(st, &sqlite3_finalize);
    };
    std::vector<std::string> dead;
    Statement owners = prepare(journal_sql::claim_owners(kTable));
    if (!owners) return failure(db_, "claim check");
    sqlite3_bind_int64(owners.get(), 1, std::time(nullptr));
    bind(owners.get(), 2, owners_here_pattern());
    while (sqlite3_step(owners.get()) == SQLITE_ROW) {
        const std::string owner =
            reinterpret_cast<const char*>(sqlite3_column_text(owners.get(), 0));
        if (owner_died_here(owner)) dead.push_back(owner);
    }
    for (const std::string& owner : dead) {
        Statement end = prepare(journal_sql::end_claims(kTable));
        if (!end) return failure(db_, "claim end");
        bind(end.get(), 1, owner);
        if (sqlite3_step(end.get()) != SQLITE_DONE) return failure(db_, "claim end");
    }
    return Status::ok();
}

sqlite3_stmt* SqliteJournal::statement(int index) {
    if (!statements_[index] && sqlite3_prepare_v2(db_, kSql[index].c_str(), -1, &statements_[index],
                                                  nullptr) != SQLITE_OK) {
        statements_[index] = nullptr;
    }
    return statements_[index];
}

Status SqliteJournal::exec(const char* sql) {
    char* message = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
        std::string what = message ? message : "error";
        sqlite3_free(message);
        return Status::failure(what);
    }
    return Status::ok();
}

Status SqliteJournal::lookup(const std::string& key, State& state) {
    std::lock_guard lock(mutex_);
    std::string holder;
    return lookup_locked(key, state, holder);
}

Status SqliteJournal::lookup_locked(const std::string& key, State& state, std::string& holder) {
    state = State::Unknown;
    Use st{statement(kLookup)};
    if (!st.stmt) return failure(db_, "journal lookup");
    bind(st.stmt, 1, key);
    int rc = sqlite3_step(st.stmt);
    if (rc == SQLITE_ROW) {
        state = state_of(sqlite3_column_int(st.stmt, 0), sqlite3_column_int64(st.stmt, 1),
                         sqlite3_column_int64(st.stmt, 2), std::time(nullptr));
        if (const unsigned char* owner = sqlite3_column_text(st.stmt, 3))
            holder = reinterpret_cast<const char*>(owner);
    } else if (rc != SQLITE_DONE) {
        return failure(db_, "journal lookup");
    }
    return Status::ok();
}

Status SqliteJournal::claim(const std::string& key, State expected, long seconds, Claim& result) {
    std::lock_guard lock(mutex_);
    result = Claim{};
    const long long now = std::time(nullptr);
    {
        Use st{statement(kClaim)};
        if (!st.stmt) return failure(db_, "journal claim");
        bind(st.stmt, 1, key);
        sqlite3_bind_int64(st.stmt, 2, now);
        bind(st.stmt, 3, owner_);
        sqlite3_bind_int64(st.stmt, 4, now + seconds);
        sqlite3_bind_int64(st.stmt, 5, cutoff(now));
        sqlite3_bind_int(st.stmt, 6, expected == State::InDoubt ? 1 : 0);
        const int rc = sqlite3_step(st.stmt);
        if (rc == SQLITE_ROW) {
            result.taken = true;
            result.found = expected;
            return Status::ok();
        }
        if (rc != SQLITE_DONE) return failure(db_, "journal claim");
    }
    // Not taken: say what holds it (a row taken meanwhile reads as a claim).
    if (Status s = lookup_locked(key, result.found, result.holder); !s) return s;
    if (result.found == State::Unknown) result.found = State::Claimed;
    return Status::ok();
}

Status SqliteJournal::uploaded(const std::string& key) {
    std::lock_guard lock(mutex_);
    Use st{statement(kUploaded)};
    if (!st.stmt) return failure(db_, "journal write");
    bind(st.stmt, 1, key);
    bind(st.stmt, 2, owner_);
    if (sqlite3_step(st.stmt) != SQLITE_DONE) return failure(db_, "journal write");
    return Status::ok();
}

Status SqliteJournal::record(const std::string& key, State state, const std::string& note) {
    std::lock_guard lock(mutex_);
    Use st{statement(kRecord)};
    if (!st.stmt) return failure(db_, "journal write");
    bind(st.stmt, 1, key);
    sqlite3_bind_int(st.stmt, 2,
                     state == State::Delivered ? journal_sql::kDelivered : journal_sql::kInDoubt);
    sqlite3_bind_int64(st.stmt, 3, static_cast<sqlite3_int64>(std::time(nullptr)));
    bind(st.stmt, 4, note);
    if (sqlite3_step(st.stmt) != SQLITE_DONE) return failure(db_, "journal write");
    sqlite3_reset(st.stmt);  // done before the expiry below runs its own statement
    // Expiry scans the table (no index on `at`: one less b-tree to update
    // per write, ~30% of a delivery's journal cost); at most every 10 minutes.
    if (std::time(nullptr) >= next_expiry_) return expire_locked();
    return Status::ok();
}

Status SqliteJournal::forget(const std::string& key) {
    std::lock_guard lock(mutex_);
    Use st{statement(kForget)};
    if (!st.stmt) return failure(db_, "journal write");
    bind(st.stmt, 1, key);
    if (sqlite3_step(st.stmt) != SQLITE_DONE) return failure(db_, "journal write");
    return Status::ok();
}

Status SqliteJournal::expire_locked() {
    const long long now = std::time(nullptr);
    next_expiry_ = now + kExpiryInterval;
    Use st{statement(kExpire)};
    if (!st.stmt) return failure(db_, "journal expiry");
    sqlite3_bind_int64(st.stmt, 1, cutoff(now));
    sqlite3_bind_int64(st.stmt, 2, now);
    if (sqlite3_step(st.stmt) != SQLITE_DONE) return failure(db_, "journal expiry");
    return Status::ok();
}

}  // namespace
}  // namespace rtm
