// journal_postgresql.cpp — PostgresJournal: the duplicate journal in one
// PostgreSQL table shared by every MX host (libpq). Owns a small pool of
// connections, each with bounded timeouts, made again when the server comes
// back; the table and its schema version row, created when missing; expiry
// by one host at a time (an advisory lock, skipped when taken). Never holds
// a password: libpq finds it (passfile, PGPASSFILE, ~/.pgpass).
#include <libpq-fe.h>

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <functional>
#include <mutex>
#include <vector>

#include "journal.h"
#include "postgresql_conninfo.h"

namespace rtm {
namespace {

using Clock = std::chrono::steady_clock;
using Connection = std::unique_ptr<PGconn, decltype(&PQfinish)>;
using Result = std::unique_ptr<PGresult, decltype(&PQclear)>;

const std::string kTable = "rt_milter_journal";
constexpr int kSchemaVersion = 1;
// Connections per process: sessions hold one for one statement (~0.2 ms on
// a LAN), so a few serve hundreds of sessions; more only load the server.
constexpr std::size_t kPoolSize = 4;
// Bounds on any wait for the server: a session never waits longer for the
// journal than connect + statement, or for a free connection than this.
constexpr const char* kConnectTimeout = "5";
constexpr const char* kSetTimeouts =
    "SET statement_timeout = '5s'; SET lock_timeout = '5s'; SET client_min_messages = warning";
constexpr auto kPoolWait = std::chrono::seconds(10);
// After a failed connect, sessions fail at once for this long rather than
// each waiting connect_timeout for a server that is down.
constexpr auto kRetryConnectAfter = std::chrono::seconds(1);
// pg_advisory locks: 'rtm' << 8 | what.
constexpr const char* kSchemaLock = "SELECT pg_advisory_xact_lock(1920233729)";
constexpr const char* kExpiryLock = "SELECT pg_try_advisory_xact_lock(1920233730)";

// SQLite's "?N" as libpq's "$N".
std::string dollar_params(std::string sql) {
    for (char& c : sql)
        if (c == '?') c = '$';
    return sql;
}

std::string server_error(PGconn* conn) {
    std::string what = PQerrorMessage(conn);
    while (!what.empty() && (what.back() == '\n' || what.back() == ' ')) what.pop_back();
    for (char& c : what)
        if (c == '\n') c = ' ';
    return what.empty() ? "error" : what;
}

class PostgresJournal final : public Journal {
  public:
    PostgresJournal(std::string conninfo, long expiry_seconds)
        : Journal(describe_conninfo(conninfo), expiry_seconds), conninfo_(std::move(conninfo)) {}

    // Connects once and makes the table when missing.
    Status connect_now() {
        return with_connection([](PGconn*) { return Status::ok(); });
    }
    Status lookup(const std::string& key, State& state) override {
        std::string holder;
        return with_connection([&](PGconn* c) { return lookup_on(c, key, state, holder); });
    }
    Status claim(const std::string& key, State expected, long seconds, Claim& result) override;
    Status uploaded(const std::string& key) override {
        return with_connection([&](PGconn* c) {
            Result r = run(c, kUploadedSql, {key, owner_});
            return r ? Status::ok() : failure(c, "journal write");
        });
    }
    Status record(const std::string& key, State state, const std::string& note) override;
    Status forget(const std::string& key) override {
        return with_connection([&](PGconn* c) {
            return run(c, kForgetSql, {key}) ? Status::ok() : failure(c, "journal write");
        });
    }
    Status expire() override;
    Status check_writable() override {
        return with_connection([](PGconn* c) { return exec(c, "SELECT 1"); });
    }

  private:
    static inline const std::string kLookupSql = dollar_params(journal_sql::lookup(kTable));
    static inline const std::string kRecordSql = dollar_params(journal_sql::record(kTable));
    static inline const std::string kForgetSql = dollar_params(journal_sql::forget(kTable));
    static inline const std::string kClaimSql = dollar_params(journal_sql::claim(kTable));
    static inline const std::string kUploadedSql = dollar_params(journal_sql::uploaded(kTable));
    static inline const std::string kExpireSql = dollar_params(journal_sql::expire(kTable));
    static inline const std::string kClaimOwnersSql =
        dollar_params(journal_sql::claim_owners(kTable));
    static inline const std::string kEndClaimsSql = dollar_params(journal_sql::end_claims(kTable));

    static Status failure(PGconn* conn, const std::string& what) {
        return Status::failure(what + ": " + server_error(conn));
    }
    // One statement with text parameters; null when it failed.
    static Result run(PGconn* conn, const std::string& sql,
                      const std::vector<std::string>& params) {
        std::vector<const char*> values;
        for (const std::string& p : params) values.push_back(p.c_str());
        Result r(PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr,
                              values.data(), nullptr, nullptr, 0),
                 &PQclear);
        const ExecStatusType status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
            return Result(nullptr, &PQclear);
        return r;
    }
    static Status exec(PGconn* conn, const char* sql) {
        Result r(PQexec(conn, sql), &PQclear);
        const ExecStatusType status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
            return failure(conn, "journal");
        return Status::ok();
    }
    Status lookup_on(PGconn* conn, const std::string& key, State& state, std::string& holder) const;
    Status set_up(PGconn* conn);
    Status end_dead_claims(PGconn* conn);
    Status make_ready(PGconn* conn);
    Status with_connection(const std::function<Status(PGconn*)>& use);

    const std::string conninfo_;
    std::mutex mutex_;
    std::condition_variable freed_;
    std::vector<Connection> idle_;
    std::size_t made_ = 0;  // connections in idle_ or in use
    Clock::time_point retry_connect_at_{};
    std::string last_connect_error_;
    bool schema_ready_ = false;
    long long next_expiry_ = 0;  // time() of the next expiry run, under mutex_
};

Status PostgresJournal::make_ready(PGconn* conn) {
    if (PQstatus(conn) != CONNECTION_OK)
        return Status::failure("cannot connect: " + server_error(conn));
    if (Status s = exec(conn, kSetTimeouts); !s) return s;
    {
        std::lock_guard lock(mutex_);
        if (schema_ready_) return Status::ok();
    }
    if (Status s = set_up(conn); !s) return s;
    std::lock_guard lock(mutex_);
    schema_ready_ = true;
    return Status::ok();
}

// The table and its version row, made once under a lock so two hosts
// starting together do not race on CREATE.
Status PostgresJournal::set_up(PGconn* conn) {
    const std::string create =
        "CREATE TABLE IF NOT EXISTS rt_milter_schema (version integer NOT NULL);"
        "INSERT INTO rt_milter_schema (version) SELECT " +
        std::to_string(kSchemaVersion) +
        " WHERE NOT EXISTS (SELECT 1 FROM rt_milter_schema);"
        "CREATE TABLE IF NOT EXISTS " +
        kTable +
        " (key text PRIMARY KEY, state smallint NOT NULL, at bigint NOT NULL, note text NOT NULL,"
        " owner text NOT NULL DEFAULT '', claim_until bigint NOT NULL DEFAULT 0)";
    Status s = exec(conn, "BEGIN");
    if (s) s = exec(conn, kSchemaLock);
    if (s) s = exec(conn, create.c_str());
    Result version(nullptr, &PQclear);
    if (s) {
        version = run(conn, "SELECT max(version) FROM rt_milter_schema", {});
        if (!version) s = failure(conn, "schema version");
    }
    if (!s) {
        exec(conn, "ROLLBACK");
        return Status::failure("cannot create the journal table (" + s.error() + ")");
    }
    if (Status c = exec(conn, "COMMIT"); !c) return c;
    const int found = std::atoi(PQgetvalue(version.get(), 0, 0));
    if (found > kSchemaVersion)
        return Status::failure("journal schema version " + std::to_string(found) +
                               " is newer than this rt-milter's (" +
                               std::to_string(kSchemaVersion) + ")");
    return end_dead_claims(conn);
}

// Claims of this host's processes that are gone (rt-milter crashed or was
// killed mid-POST, and this is its restart) end now, rather than hold their
// targets until they expire. Other hosts' claims are theirs to keep.
Status PostgresJournal::end_dead_claims(PGconn* conn) {
    Result owners =
        run(conn, kClaimOwnersSql, {std::to_string(std::time(nullptr)), owners_here_pattern()});
    if (!owners) return failure(conn, "claim check");
    for (int i = 0; i < PQntuples(owners.get()); ++i) {
        const std::string owner = PQgetvalue(owners.get(), i, 0);
        if (owner_died_here(owner) && !run(conn, kEndClaimsSql, {owner}))
            return failure(conn, "claim end");
    }
    return Status::ok();
}

// Runs USE on a pooled connection: made when missing, made again when the
// server dropped it (and USE run once more, as every statement here may be
// repeated), never waited for beyond the bounds above.
Status PostgresJournal::with_connection(const std::function<Status(PGconn*)>& use) {
    Connection conn(nullptr, &PQfinish);
    {
        std::unique_lock lock(mutex_);
        if (!freed_.wait_for(lock, kPoolWait,
                             [this] { return !idle_.empty() || made_ < kPoolSize; }))
            return Status::failure("all " + std::to_string(kPoolSize) +
                                   " journal connections busy for " +
                                   std::to_string(kPoolWait.count()) + " s");
        if (!idle_.empty()) {
            conn = std::move(idle_.back());
            idle_.pop_back();
        } else {
            if (Clock::now() < retry_connect_at_) return Status::failure(last_connect_error_);
            ++made_;
        }
    }
    Status s = Status::ok();
    if (!conn) {
        const char* keywords[] = {"connect_timeout", "fallback_application_name", "dbname",
                                  nullptr};
        const char* values[] = {kConnectTimeout, "rt-milter", conninfo_.c_str(), nullptr};
        conn.reset(PQconnectdbParams(keywords, values, 1));
        s = conn ? make_ready(conn.get()) : Status::failure("cannot connect: out of memory");
    } else if (PQstatus(conn.get()) != CONNECTION_OK) {
        PQreset(conn.get());
        s = make_ready(conn.get());
    }
    if (s) {
        s = use(conn.get());
        if (!s &&
            PQstatus(conn.get()) == CONNECTION_BAD) {  // dropped (a server restart): once more
            PQreset(conn.get());
            s = make_ready(conn.get());
            if (s) s = use(conn.get());
        }
    }
    std::lock_guard lock(mutex_);
    if (conn && PQstatus(conn.get()) == CONNECTION_OK) {
        idle_.push_back(std::move(conn));
    } else {
        --made_;  // made again by the next use
        if (!s) {
            last_connect_error_ = s.error();
            retry_connect_at_ = Clock::now() + kRetryConnectAfter;
        }
    }
    freed_.notify_one();
    return s;
}

Status PostgresJournal::lookup_on(PGconn* conn, const std::string& key, State& state,
                                  std::string& holder) const {
    state = State::Unknown;
    Result r = run(conn, kLookupSql, {key});
    if (!r) return failure(conn, "journal lookup");
    if (PQntuples(r.get()) == 1) {
        state =
            state_of(std::atoi(PQgetvalue(r.get(), 0, 0)), std::atoll(PQgetvalue(r.get(), 0, 1)),
                     std::atoll(PQgetvalue(r.get(), 0, 2)), std::time(nullptr));
        holder = PQgetvalue(r.get(), 0, 3);
    }
    return Status::ok();
}

Status PostgresJournal::claim(const std::string& key, State expected, long seconds, Claim& result) {
    return with_connection([&](PGconn* c) {
        result = Claim{};
        const long long now = std::time(nullptr);
        Result r = run(c, kClaimSql,
                       {key, std::to_string(now), owner_, std::to_string(now + seconds),
                        std::to_string(cutoff(now)), expected == State::InDoubt ? "1" : "0"});
        if (!r) return failure(c, "journal claim");
        if (PQntuples(r.get()) == 1) {
            result.taken = true;
            result.found = expected;
            return Status::ok();
        }
        if (Status s = lookup_on(c, key, result.found, result.holder); !s) return s;
        if (result.found == State::Unknown) result.found = State::Claimed;  // taken meanwhile
        return Status::ok();
    });
}

Status PostgresJournal::record(const std::string& key, State state, const std::string& note) {
    Status s = with_connection([&](PGconn* c) {
        const int code =
            state == State::Delivered ? journal_sql::kDelivered : journal_sql::kInDoubt;
        return run(c, kRecordSql,
                   {key, std::to_string(code), std::to_string(std::time(nullptr)), note})
                   ? Status::ok()
                   : failure(c, "journal write");
    });
    if (!s) return s;
    bool due = false;
    {
        std::lock_guard lock(mutex_);
        if (std::time(nullptr) >= next_expiry_) {
            next_expiry_ = std::time(nullptr) + kExpiryInterval;
            due = true;
        }
    }
    return due ? expire() : Status::ok();
}

// One host at a time: the one that gets the lock deletes, the others skip.
Status PostgresJournal::expire() {
    return with_connection([&](PGconn* c) {
        const long long now = std::time(nullptr);
        Status s = exec(c, "BEGIN");
        Result locked(nullptr, &PQclear);
        if (s) {
            locked = run(c, kExpiryLock, {});
            if (!locked) s = failure(c, "journal expiry");
        }
        if (s && std::string(PQgetvalue(locked.get(), 0, 0)) == "t" &&
            !run(c, kExpireSql, {std::to_string(cutoff(now)), std::to_string(now)}))
            s = failure(c, "journal expiry");
        exec(c, s ? "COMMIT" : "ROLLBACK");
        return s;
    });
}

}  // namespace

std::unique_ptr<Journal> open_postgresql_journal(const std::string& conninfo, long expiry_seconds,
                                                 bool keep_unreachable, std::string& error) {
    auto journal = std::make_unique<PostgresJournal>(conninfo, expiry_seconds);
    Status s = journal->connect_now();
    if (s) s = journal->expire();
    if (!s) {
        error = "journal " + journal->where() + ": " + s.error();
        if (!keep_unreachable) return nullptr;
    }
    return journal;
}

}  // namespace rtm
