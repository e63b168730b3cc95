// journal.h — Journal: the duplicate journal, one SQLite file (WAL), shared
// by every session of the process and safe across restarts and processes.
// It maps a key (RT target + envelope sender + Message-ID or digest) to
// what happened to that copy: delivered (RT answered), or in doubt (RT got
// the whole request and never answered). Entries expire after a set time.
// Errors come back as Status; the caller applies on_journal_error.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace rtm {

class Journal {
public:
    enum class State { Unknown, Delivered, InDoubt };

    // Opens (creating) the file; nullptr with error set when it cannot.
    static std::unique_ptr<Journal> open(const std::string& path, long expiry_seconds, std::string& error);
    ~Journal();
    Journal(const Journal&) = delete;
    Journal& operator=(const Journal&) = delete;

    Status lookup(const std::string& key, State& state);
    Status record(const std::string& key, State state, const std::string& note);
    Status forget(const std::string& key);
    // Deletes entries past their expiry; called at open and by record() at
    // most every kExpiryInterval seconds.
    Status expire();
    static constexpr long kExpiryInterval = 600;

    const std::string& path() const { return path_; }

private:
    Journal(sqlite3* db, std::string path, long expiry_seconds);
    Status exec(const char* sql);
    Status expire_locked();
    // Statement INDEX of journal.cpp's list, prepared once and kept (nullptr
    // on error); callers hold mutex_ and reset it after use.
    sqlite3_stmt* statement(int index);

    sqlite3* db_;
    sqlite3_stmt* statements_[4] = {};
    std::string path_;
    long expiry_;
    std::mutex mutex_;
    long next_expiry_ = 0;  // time() of the next expiry run
};

}  // namespace rtm
