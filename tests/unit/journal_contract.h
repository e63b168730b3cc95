// journal_contract.h — what every journal backend must do, written once and
// run against SQLite (journal_test.cpp) and PostgreSQL (pg_journal_test.cpp):
// record/lookup/forget/expire, atomic claims between two journals ("two
// hosts") on one store under threads, outcomes replacing claims, a dead
// claim counting as never posted (before the upload) or in doubt (after),
// and the claims of a dead process of this host ended when a journal opens.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "journal.h"

namespace rtm::testing {

// Opens a journal on the store under test with the given expiry.
using OpenJournal = std::function<std::unique_ptr<Journal>(long expiry_seconds)>;

// A key no other test (or earlier run on a kept store) uses.
inline std::string unique_key(const std::string& what) {
    static std::atomic<int> n{0};
    return what + "-" + std::to_string(getpid()) + "-" + std::to_string(time(nullptr)) + "-" +
           std::to_string(++n);
}

inline void check_record_lookup_forget_expire(const OpenJournal& open) {
    auto j = open(3600);
    ASSERT_TRUE(j);
    const std::string k1 = unique_key("delivered"), k2 = unique_key("in-doubt");
    Journal::State st;
    ASSERT_TRUE(j->lookup(k1, st));
    EXPECT_EQ(st, Journal::State::Unknown);
    ASSERT_TRUE(j->record(k1, Journal::State::Delivered, "ok"));
    ASSERT_TRUE(j->record(k2, Journal::State::InDoubt, "timeout"));
    ASSERT_TRUE(j->lookup(k1, st));
    EXPECT_EQ(st, Journal::State::Delivered);
    ASSERT_TRUE(j->lookup(k2, st));
    EXPECT_EQ(st, Journal::State::InDoubt);
    ASSERT_TRUE(j->forget(k2));
    ASSERT_TRUE(j->lookup(k2, st));
    EXPECT_EQ(st, Journal::State::Unknown);
    auto expired = open(-10);  // everything is older than "10 s in the future"
    ASSERT_TRUE(expired);
    ASSERT_TRUE(expired->lookup(k1, st));
    EXPECT_EQ(st, Journal::State::Unknown);
    ASSERT_TRUE(expired->expire());
    ASSERT_TRUE(j->lookup(k1, st));  // gone for the other journal too
    EXPECT_EQ(st, Journal::State::Unknown);
}

// Two journals ("two hosts"), four threads each, one key: exactly one claim
// is taken; the rest see the winner's live claim; the winner's outcome then
// replaces it for everyone.
inline void check_claim_contention(const OpenJournal& open) {
    auto host_a = open(3600), host_b = open(3600);
    ASSERT_TRUE(host_a && host_b);
    const std::string key = unique_key("contended");
    std::atomic<int> taken{0}, held{0}, failed{0};
    std::string winner;
    std::mutex winner_mutex;
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        Journal& j = t % 2 ? *host_b : *host_a;
        threads.emplace_back([&] {
            Journal::Claim claim;
            if (!j.claim(key, Journal::State::Unknown, 300, claim)) {
                ++failed;
            } else if (claim.taken) {
                ++taken;
                std::lock_guard lock(winner_mutex);
                winner = j.owner();
            } else if (claim.found == Journal::State::Claimed) {
                ++held;
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(failed, 0);
    EXPECT_EQ(taken, 1);
    EXPECT_EQ(held, 7);
    Journal& loser = winner == host_a->owner() ? *host_b : *host_a;
    Journal& holder = winner == host_a->owner() ? *host_a : *host_b;
    Journal::Claim claim;
    ASSERT_TRUE(loser.claim(key, Journal::State::Unknown, 300, claim));
    EXPECT_FALSE(claim.taken);
    EXPECT_EQ(claim.found, Journal::State::Claimed);
    EXPECT_EQ(claim.holder, winner);
    Journal::State st;
    ASSERT_TRUE(loser.lookup(key, st));
    EXPECT_EQ(st, Journal::State::Claimed);
    ASSERT_TRUE(holder.record(key, Journal::State::Delivered, "ok"));
    ASSERT_TRUE(loser.claim(key, Journal::State::Unknown, 300, claim));
    EXPECT_FALSE(claim.taken);
    EXPECT_EQ(claim.found, Journal::State::Delivered);
}

// A claim whose holder died (it expired): never posted before the upload,
// in doubt after it; a key in doubt is taken only by one who expects it.
inline void check_dead_claims(const OpenJournal& open) {
    auto dead_host = open(3600), live_host = open(3600);
    ASSERT_TRUE(dead_host && live_host);
    const std::string before = unique_key("died-before-upload"),
                      after = unique_key("died-after-upload");
    Journal::Claim claim;
    ASSERT_TRUE(dead_host->claim(before, Journal::State::Unknown, -1, claim));
    ASSERT_TRUE(claim.taken);
    ASSERT_TRUE(dead_host->claim(after, Journal::State::Unknown, -1, claim));
    ASSERT_TRUE(claim.taken);
    ASSERT_TRUE(dead_host->uploaded(after));
    Journal::State st;
    ASSERT_TRUE(live_host->lookup(before, st));
    EXPECT_EQ(st, Journal::State::Unknown);
    ASSERT_TRUE(live_host->lookup(after, st));
    EXPECT_EQ(st, Journal::State::InDoubt);
    ASSERT_TRUE(live_host->claim(before, Journal::State::Unknown, 300, claim));
    EXPECT_TRUE(claim.taken);
    ASSERT_TRUE(live_host->claim(after, Journal::State::Unknown, 300, claim));
    EXPECT_FALSE(claim.taken);  // in doubt, and this session did not decide to post it again
    EXPECT_EQ(claim.found, Journal::State::InDoubt);
    ASSERT_TRUE(live_host->claim(after, Journal::State::InDoubt, 300, claim));
    EXPECT_TRUE(claim.taken);
    // A live claim's upload mark is its holder's alone.
    ASSERT_TRUE(dead_host->uploaded(before));
    ASSERT_TRUE(dead_host->lookup(before, st));
    EXPECT_EQ(st, Journal::State::Claimed);
}

// A process of this host that claimed and died (rt-milter killed mid-POST):
// the next journal opened on this host ends its claims at once, so the
// restarted daemon need not wait them out. Before the upload: never posted;
// after: in doubt.
inline void check_claims_of_a_dead_process_end_at_open(const OpenJournal& open) {
    const std::string before = unique_key("killed-before-upload"),
                      after = unique_key("killed-after-upload");
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        auto j = open(3600);
        Journal::Claim a, b;
        const bool ok = j && j->claim(before, Journal::State::Unknown, 3600, a) && a.taken &&
                        j->claim(after, Journal::State::Unknown, 3600, b) && b.taken &&
                        j->uploaded(after);
        _exit(ok ? 0 : 1);  // no release: as if killed
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child could not claim";
    auto restarted = open(3600);
    ASSERT_TRUE(restarted);
    Journal::State st;
    ASSERT_TRUE(restarted->lookup(before, st));
    EXPECT_EQ(st, Journal::State::Unknown);
    ASSERT_TRUE(restarted->lookup(after, st));
    EXPECT_EQ(st, Journal::State::InDoubt);
}

}  // namespace rtm::testing
