// journal.cpp — the SQLite side of the duplicate journal.
#include "journal.h"

#include <sqlite3.h>

#include <ctime>

namespace rtm {
namespace {

// RAII for one prepared statement.
struct Statement {
    sqlite3_stmt* stmt = nullptr;
    ~Statement() { sqlite3_finalize(stmt); }
};

Status failure(sqlite3* db, const std::string& what) {
    return Status::failure(what + ": " + sqlite3_errmsg(db));
}

}  // namespace

std::unique_ptr<Journal> Journal::open(const std::string& path, long expiry_seconds, std::string& error) {
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
                            "CREATE TABLE IF NOT EXISTS delivered ("
                            " key TEXT PRIMARY KEY, state INTEGER NOT NULL,"
                            " at INTEGER NOT NULL, note TEXT NOT NULL)",
                            "CREATE INDEX IF NOT EXISTS delivered_at ON delivered(at)"}) {
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

Journal::~Journal() { sqlite3_close(db_); }

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
    Statement st;
    if (sqlite3_prepare_v2(db_, "SELECT state FROM delivered WHERE key = ?1 AND at >= ?2", -1, &st.stmt, nullptr) !=
        SQLITE_OK) {
        return failure(db_, "journal lookup");
    }
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
    Statement st;
    if (sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO delivered (key, state, at, note) VALUES (?1, ?2, ?3, ?4)", -1,
                           &st.stmt, nullptr) != SQLITE_OK) {
        return failure(db_, "journal write");
    }
    sqlite3_bind_text(st.stmt, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int(st.stmt, 2, state == State::Delivered ? 1 : 2);
    sqlite3_bind_int64(st.stmt, 3, static_cast<sqlite3_int64>(std::time(nullptr)));
    sqlite3_bind_text(st.stmt, 4, note.data(), static_cast<int>(note.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(st.stmt) != SQLITE_DONE) return failure(db_, "journal write");
    if (++writes_ % 1000 == 0) return expire_locked();
    return Status::ok();
}

Status Journal::forget(const std::string& key) {
    std::lock_guard lock(mutex_);
    Statement st;
    if (sqlite3_prepare_v2(db_, "DELETE FROM delivered WHERE key = ?1", -1, &st.stmt, nullptr) != SQLITE_OK) {
        return failure(db_, "journal write");
    }
    sqlite3_bind_text(st.stmt, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(st.stmt) != SQLITE_DONE) return failure(db_, "journal write");
    return Status::ok();
}

Status Journal::expire() {
    std::lock_guard lock(mutex_);
    return expire_locked();
}

Status Journal::expire_locked() {
    Statement st;
    if (sqlite3_prepare_v2(db_, "DELETE FROM delivered WHERE at < ?1", -1, &st.stmt, nullptr) != SQLITE_OK) {
        return failure(db_, "journal expiry");
    }
    sqlite3_bind_int64(st.stmt, 1, static_cast<sqlite3_int64>(std::time(nullptr) - expiry_));
    if (sqlite3_step(st.stmt) != SQLITE_DONE) return failure(db_, "journal expiry");
    return Status::ok();
}

}  // namespace rtm
