// journal.cpp — the SQLite side of the duplicate journal. The file holds
// senders and Message-IDs: it is created 0600 whatever the umask.
#include "journal.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "unique_fd.h"

namespace rtm {
namespace {

// The statements, each prepared once per journal (index into statements_).
enum : int { kLookup, kRecord, kForget, kExpire };
constexpr const char* kSql[] = {
    "SELECT state FROM delivered WHERE key = ?1 AND at >= ?2",
    "INSERT INTO delivered (key, state, at, note) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key) DO UPDATE SET state = ?2, at = ?3, note = ?4",
    "DELETE FROM delivered WHERE key = ?1",
    "DELETE FROM delivered WHERE at < ?1",
};

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
            return Status::failure("cannot make journal " + name + " private: " + std::strerror(errno));
        }
    }
    return Status::ok();
}

}  // namespace

std::unique_ptr<Journal> Journal::open(const std::string& path, long expiry_seconds, std::string& error) {
    if (Status s = make_private(path); !s) {
        error = s.error();
        return nullptr;
    }
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                             nullptr);
    if (rc != SQLITE_OK) {
        error = "cannot open journal " + path + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return nullptr;
    }
    std::unique_ptr<Journal> journal(new Journal(db, path, expiry_seconds));
    sqlite3_busy_timeout(db, 5000);  // another process (a restart) may hold the lock a moment
    for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                            // WITHOUT ROWID: the key is the table's only b-tree
                            "CREATE TABLE IF NOT EXISTS delivered ("
                            " key TEXT PRIMARY KEY, state INTEGER NOT NULL,"
                            " at INTEGER NOT NULL, note TEXT NOT NULL) WITHOUT ROWID",
                            "DROP INDEX IF EXISTS delivered_at"}) {
        if (Status s = journal->exec(sql); !s) {
            error = "cannot set up journal " + path + ": " + s.error();
            return nullptr;
        }
    }
    if (Status s = journal->expire(); !s) {
        error = "cannot use journal " + path + ": " + s.error();
        return nullptr;
    }
    return journal;
}

Journal::Journal(sqlite3* db, std::string path, long expiry_seconds)
    : db_(db), path_(std::move(path)), expiry_(expiry_seconds) {}

Journal::~Journal() {
    for (sqlite3_stmt* st : statements_) sqlite3_finalize(st);
    sqlite3_close(db_);
}

sqlite3_stmt* Journal::statement(int index) {
    if (!statements_[index] && sqlite3_prepare_v2(db_, kSql[index], -1, &statements_[index], nullptr) != SQLITE_OK) {
        statements_[index] = nullptr;
    }
    return statements_[index];
}

Status Journal::exec(const char* sql) {
    char* message = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
        std::string what = message ? message : "error";
        sqlite3_free(message);
        return Status::failure(what);
    }
    return Status::ok();
}

Status Journal::lookup(const std::string& key, State& state) {
    std::lock_guard lock(mutex_);
    state = State::Unknown;
    Use st{statement(kLookup)};
    if (!st.stmt) return failure(db_, "journal lookup");
    sqlite3_bind_text(st.stmt, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(st.stmt, 2, static_cast<sqlite3_int64>(std::time(nullptr) - expiry_));
    int rc = sqlite3_step(st.stmt);
    if (rc == SQLITE_ROW) {
        state = sqlite3_column_int(st.stmt, 0) == 1 ? State::Delivered : State::InDoubt;
    } else if (rc != SQLITE_DONE) {
        return failure(db_, "journal lookup");
    }
    return Status::ok();
}

Status Journal::record(const std::string& key, State state, const std::string& note) {
    std::lock_guard lock(mutex_);
    Use st{statement(kRecord)};
    if (!st.stmt) return failure(db_, "journal write");
    sqlite3_bind_text(st.stmt, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int(st.stmt, 2, state == State::Delivered ? 1 : 2);
    sqlite3_bind_int64(st.stmt, 3, static_cast<sqlite3_int64>(std::time(nullptr)));
    sqlite3_bind_text(st.stmt, 4, note.data(), static_cast<int>(note.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(st.stmt) != SQLITE_DONE) return failure(db_, "journal write");
    sqlite3_reset(st.stmt);  // done before the expiry below runs its own statement
    // Expiry scans the table (no index on `at`: one less b-tree to update
    // per write, ~30% of a delivery's journal cost); at most every 10 minutes.
    if (std::time(nullptr) >= next_expiry_) return expire_locked();
    return Status::ok();
}

Status Journal::forget(const std::string& key) {
    std::lock_guard lock(mutex_);
    Use st{statement(kForget)};
    if (!st.stmt) return failure(db_, "journal write");
    sqlite3_bind_text(st.stmt, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(st.stmt) != SQLITE_DONE) return failure(db_, "journal write");
    return Status::ok();
}

Status Journal::expire() {
    std::lock_guard lock(mutex_);
    return expire_locked();
}

Status Journal::expire_locked() {
    next_expiry_ = std::time(nullptr) + kExpiryInterval;
    Use st{statement(kExpire)};
    if (!st.stmt) return failure(db_, "journal expiry");
    sqlite3_bind_int64(st.stmt, 1, static_cast<sqlite3_int64>(std::time(nullptr) - expiry_));
    if (sqlite3_step(st.stmt) != SQLITE_DONE) return failure(db_, "journal expiry");
    return Status::ok();
}

}  // namespace rtm
