// journal.h — Journal: the duplicate journal, shared by every session of the
// process and safe across restarts, processes and (on PostgreSQL) MX hosts.
// It maps a key (RT target + envelope sender + Message-ID or digest) to
// what happened to that copy: delivered (RT answered), in doubt (RT got the
// whole request and never answered), or claimed (a session is posting it
// now). Entries expire after a set time. Two backends behind one interface:
// SQLite (a file, one host) and PostgreSQL (one database, every MX host).
// Errors come back as Status; the caller applies on_journal_error.
#pragma once

#include <memory>
#include <string>

#include "status.h"

namespace rtm {

class Journal {
  public:
    // Claimed: a live claim of another session (or host) holds the key.
    enum class State { Unknown, Delivered, InDoubt, Claimed };

    // What claim() found, and whether the key is now this journal's.
    struct Claim {
        bool taken = false;
        State found = State::Unknown;
        std::string holder;  // owner of the live claim that held it, if known
    };

    // Opens the journal SPEC names: an absolute path (SQLite, created when
    // missing) or a PostgreSQL connection string (URI or keyword form; the
    // table is created when missing). nullptr with error set when it cannot;
    // with keep_unreachable, a PostgreSQL journal whose server cannot be
    // reached now comes back all the same (error says why): it connects
    // when the server is back, without a restart.
    static std::unique_ptr<Journal> open(const std::string& spec, long expiry_seconds,
                                         std::string& error, bool keep_unreachable = false);
    static bool is_postgresql(const std::string& spec);

    virtual ~Journal() = default;
    Journal(const Journal&) = delete;
    Journal& operator=(const Journal&) = delete;

    virtual Status lookup(const std::string& key, State& state) = 0;
    // Atomically makes KEY this journal's claim for SECONDS when its state is
    // EXPECTED (Unknown or InDoubt) or Unknown; otherwise leaves it and says
    // what it found. Two journals on one store never both take a key.
    virtual Status claim(const std::string& key, State expected, long seconds, Claim& result) = 0;
    // RT has the whole request: this journal's claim, if it expires now,
    // counts as in doubt (before, it counts as never posted).
    virtual Status uploaded(const std::string& key) = 0;
    // An outcome: replaces whatever the key held, a claim included.
    virtual Status record(const std::string& key, State state, const std::string& note) = 0;
    virtual Status forget(const std::string& key) = 0;
    // Deletes entries past their expiry; called at open and by record() at
    // most every kExpiryInterval seconds (on PostgreSQL by one host at a time).
    virtual Status expire() = 0;
    static constexpr long kExpiryInterval = 600;
    // Whether the journal takes writes now, for /healthz: SQLite opens the
    // file afresh (what a restart would meet: permissions, a lock another
    // process holds) and begins a write transaction; PostgreSQL runs a query
    // on one of its connections. Bounded to about a second.
    virtual Status check_writable() = 0;

    // Where it is, for log lines: the path, or the connection string
    // without any password.
    const std::string& where() const { return where_; }
    // Who claims: host name, pid and journal instance.
    const std::string& owner() const { return owner_; }

  protected:
    Journal(std::string where, long expiry_seconds);
    // The state a stored row stands for at NOW (shared by both backends).
    State state_of(int code, long long at, long long claim_until, long long now) const;
    long long cutoff(long long now) const { return now - expiry_; }
    // Whether OWNER names a process of this host that no longer runs: its
    // claims died with it (a crash, a restart) and need not be waited out.
    bool owner_died_here(const std::string& owner) const;
    // "host:%", for finding this host's claims.
    std::string owners_here_pattern() const;

    std::string where_;
    std::string owner_;
    long expiry_;
};

// Stored state codes, and the SQL both backends run ("?N" parameters;
// the PostgreSQL backend spells them "$N"). The table is named TABLE.
namespace journal_sql {
enum Code : int { kDelivered = 1, kInDoubt = 2, kClaimed = 3, kClaimedUploaded = 4 };
std::string lookup(const std::string& table);
std::string record(const std::string& table);
std::string forget(const std::string& table);
std::string claim(const std::string& table);
std::string uploaded(const std::string& table);
std::string expire(const std::string& table);
std::string claim_owners(const std::string& table);
std::string end_claims(const std::string& table);
}  // namespace journal_sql

std::unique_ptr<Journal> open_sqlite_journal(const std::string& path, long expiry_seconds,
                                             std::string& error);
std::unique_ptr<Journal> open_postgresql_journal(const std::string& conninfo, long expiry_seconds,
                                                 bool keep_unreachable, std::string& error);

}  // namespace rtm
