// journal.cpp — what both journal backends share: which backend a `journal`
// value names, the owner id of a claim, the meaning of a stored row, and the
// SQL (one text for SQLite and PostgreSQL). No connection lives here.
#include "journal.h"
#include "postgresql_conninfo.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <atomic>
#include <climits>

namespace rtm {

bool Journal::is_postgresql(const std::string& spec) {
    return is_postgresql_conninfo(spec);
}

std::unique_ptr<Journal> Journal::open(const std::string& spec, long expiry_seconds,
                                       std::string& error, bool keep_unreachable) {
    return is_postgresql(spec)
               ? open_postgresql_journal(spec, expiry_seconds, keep_unreachable, error)
               : open_sqlite_journal(spec, expiry_seconds, error);
}

Journal::Journal(std::string where, long expiry_seconds)
    : where_(std::move(where)), expiry_(expiry_seconds) {
    static std::atomic<unsigned> instances{0};
    char host[HOST_NAME_MAX + 1] = {};
    if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    owner_ = std::string(host) + ":" + std::to_string(getpid()) + ":" + std::to_string(++instances);
}

Journal::State Journal::state_of(int code, long long at, long long claim_until,
                                 long long now) const {
    const bool claim_live = claim_until > now;
    if (at < cutoff(now) && !claim_live) return State::Unknown;  // expired
    switch (code) {
        case journal_sql::kDelivered:
            return State::Delivered;
        case journal_sql::kInDoubt:
            return State::InDoubt;
        // A claim whose holder died: before the upload RT had nothing; after
        // it, RT may have the message.
        case journal_sql::kClaimed:
            return claim_live ? State::Claimed : State::Unknown;
        case journal_sql::kClaimedUploaded:
            return claim_live ? State::Claimed : State::InDoubt;
        default:
            return State::Unknown;
    }
}

std::string Journal::owners_here_pattern() const {
    return owner_.substr(0, owner_.find(':') + 1) + "%";
}

bool Journal::owner_died_here(const std::string& owner) const {
    const std::string host = owner_.substr(0, owner_.find(':') + 1);
    if (owner.compare(0, host.size(), host) != 0) return false;
    const long pid = std::strtol(owner.c_str() + host.size(), nullptr, 10);
    return pid > 0 && pid != getpid() && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

namespace journal_sql {
namespace {
constexpr const char* kColumns = " (key, state, at, note, owner, claim_until) ";
}

std::string lookup(const std::string& table) {
    return "SELECT state, at, claim_until, owner FROM " + table + " WHERE key = ?1";
}

std::string record(const std::string& table) {
    return "INSERT INTO " + table + kColumns +
           "VALUES (?1, ?2, ?3, ?4, '', 0) ON CONFLICT (key) DO UPDATE SET state = excluded.state,"
           " at = excluded.at, note = excluded.note, owner = '', claim_until = 0";
}

std::string forget(const std::string& table) {
    return "DELETE FROM " + table + " WHERE key = ?1";
}

// ?1 key, ?2 now, ?3 owner, ?4 claim until, ?5 expiry cutoff, ?6 1 to take
// a key in doubt. The row is taken when it is expired, a dead claim from
// before an upload, or (?6) in doubt; the statement returns a row only then.
std::string claim(const std::string& table) {
    const std::string t = table + ".";
    return "INSERT INTO " + table + kColumns + "VALUES (?1, " + std::to_string(kClaimed) +
           ", ?2, 'claimed', ?3, ?4) ON CONFLICT (key) DO UPDATE SET state = excluded.state,"
           " at = excluded.at, note = excluded.note, owner = excluded.owner, claim_until = "
           "excluded.claim_until"
           " WHERE (" +
           t + "at < ?5 AND " + t +
           "claim_until <= ?2)"
           " OR (" +
           t + "state = " + std::to_string(kClaimed) + " AND " + t +
           "claim_until <= ?2)"
           " OR (?6 = 1 AND (" +
           t + "state = " + std::to_string(kInDoubt) + " OR (" + t +
           "state = " + std::to_string(kClaimedUploaded) + " AND " + t +
           "claim_until <= ?2)))"
           " RETURNING state";
}

std::string uploaded(const std::string& table) {
    return "UPDATE " + table + " SET state = " + std::to_string(kClaimedUploaded) +
           ", note = 'uploaded, awaiting RT''s answer' WHERE key = ?1 AND owner = ?2 AND state = " +
           std::to_string(kClaimed);
}

// ?1 cutoff, ?2 now: old rows, never a live claim.
std::string expire(const std::string& table) {
    return "DELETE FROM " + table + " WHERE at < ?1 AND claim_until <= ?2";
}

// ?1 now, ?2 owner pattern: the owners of live claims.
std::string claim_owners(const std::string& table) {
    return "SELECT DISTINCT owner FROM " + table + " WHERE state IN (" + std::to_string(kClaimed) +
           ", " + std::to_string(kClaimedUploaded) + ") AND claim_until > ?1 AND owner LIKE ?2";
}

// ?1 owner: its claims end now (the row stays: in doubt after an upload).
std::string end_claims(const std::string& table) {
    return "UPDATE " + table + " SET claim_until = 0 WHERE owner = ?1 AND state IN (" +
           std::to_string(kClaimed) + ", " + std::to_string(kClaimedUploaded) + ")";
}

}  // namespace journal_sql
}  // namespace rtm
