// journal_test.cpp — the duplicate journal, the circuit breaker, SHA-256,
// and Session's use of them: a retry after a partly delivered transaction
// posts only what is missing; an in-doubt POST is not posted again (or is,
// with in_doubt = "retry"); a journal that cannot be opened tempfails (or
// not, with on_journal_error = "continue"); the circuit opens after N
// transport failures, answers 451 4.4.1 at RCPT, and closes after a probe.
// RT is scripted behind the RT seam (fake_poster.h): no socket, no sleep.
#include <gtest/gtest.h>

#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <fstream>
#include <iterator>

#include <filesystem>
#include <thread>

#include "circuit.h"
#include "fake_poster.h"
#include "journal.h"
#include "journal_contract.h"
#include "milter_fixtures.h"
#include "session.h"
#include "sha256.h"

namespace rtm {
namespace {

using testing::FakeAnswer;
using testing::FakeMta;
using testing::FakeRequest;
using testing::FakeRtBackend;

class TempDir {
  public:
    TempDir() {
        char tmpl[] = "/tmp/rtm-journal-test.XXXXXX";
        path_ = mkdtemp(tmpl);
    }
    ~TempDir() { std::filesystem::remove_all(path_); }
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

TEST(Sha256, FipsExamples) {
    Sha256 empty;
    EXPECT_EQ(empty.hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    Sha256 abc;
    abc.update("abc");
    EXPECT_EQ(abc.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    Sha256 two_blocks;
    two_blocks.update("abcdbcdecdefdefgefghfghighijhi");
    two_blocks.update("jkijkljklmklmnlmnomnopnopq");
    EXPECT_EQ(two_blocks.hex(), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    Sha256 million;
    for (int i = 0; i < 1000; ++i) million.update(std::string(1000, 'a'));
    EXPECT_EQ(million.hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Journal, RemembersAcrossReopensAndExpires) {
    TempDir dir;
    const std::string path = dir.path() + "/journal.sqlite";
    std::string error;
    {
        auto j = Journal::open(path, 3600, error);
        ASSERT_TRUE(j) << error;
        Journal::State st;
        ASSERT_TRUE(j->lookup("k1", st));
        EXPECT_EQ(st, Journal::State::Unknown);
        ASSERT_TRUE(j->record("k1", Journal::State::Delivered, "ok"));
        ASSERT_TRUE(j->record("k2", Journal::State::InDoubt, "timeout"));
    }
    auto j = Journal::open(path, 3600, error);  // a restart
    ASSERT_TRUE(j) << error;
    Journal::State st;
    ASSERT_TRUE(j->lookup("k1", st));
    EXPECT_EQ(st, Journal::State::Delivered);
    ASSERT_TRUE(j->lookup("k2", st));
    EXPECT_EQ(st, Journal::State::InDoubt);
    auto expired =
        Journal::open(path, -10, error);  // everything is older than "10 s in the future"
    ASSERT_TRUE(expired) << error;
    ASSERT_TRUE(expired->lookup("k1", st));
    EXPECT_EQ(st, Journal::State::Unknown);
}

// Issue 9, finding 9: the journal (senders, Message-IDs) is rt-milter's
// alone, whatever the umask, and one an older version left 0644 is tightened.
TEST(Journal, FilesAreNotReadableByOthers) {
    TempDir dir;
    const std::string path = dir.path() + "/journal.sqlite";
    const mode_t old_umask = umask(022);
    std::string error;
    {
        auto j = Journal::open(path, 3600, error);
        ASSERT_TRUE(j) << error;
        ASSERT_TRUE(j->record("k1", Journal::State::Delivered, "ok"));
        for (const std::string& name : {path, path + "-wal", path + "-shm"}) {
            struct stat st {};
            ASSERT_EQ(stat(name.c_str(), &st), 0) << name;
            EXPECT_EQ(st.st_mode & 077, 0u) << name << std::oct << " mode " << (st.st_mode & 0777);
        }
    }
    ASSERT_EQ(chmod(path.c_str(), 0644), 0);
    auto j = Journal::open(path, 3600, error);
    umask(old_umask);
    ASSERT_TRUE(j) << error;
    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(Journal, InDoubtThenDeliveredUpdatesTheOneRow) {
    TempDir dir;
    std::string error;
    auto j = Journal::open(dir.path() + "/j.sqlite", 3600, error);
    ASSERT_TRUE(j) << error;
    Journal::State st;
    ASSERT_TRUE(j->record("k", Journal::State::InDoubt, "uploaded"));
    ASSERT_TRUE(j->lookup("k", st));
    EXPECT_EQ(st, Journal::State::InDoubt);
    ASSERT_TRUE(j->record("k", Journal::State::Delivered, "RT said: ok"));
    ASSERT_TRUE(j->lookup("k", st));
    EXPECT_EQ(st, Journal::State::Delivered);
    ASSERT_TRUE(j->forget("k"));
    ASSERT_TRUE(j->lookup("k", st));
    EXPECT_EQ(st, Journal::State::Unknown);
}

// A journal written by the first layout (rowid table, index on `at`) opens
// and keeps working; the index is dropped.
TEST(Journal, OpensTheFirstLayout) {
    TempDir dir;
    const std::string path = dir.path() + "/old.sqlite";
    {
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
        ASSERT_EQ(
            sqlite3_exec(db,
                         "PRAGMA journal_mode=WAL; CREATE TABLE delivered (key TEXT PRIMARY KEY,"
                         " state INTEGER NOT NULL, at INTEGER NOT NULL, note TEXT NOT NULL);"
                         " CREATE INDEX delivered_at ON delivered(at);"
                         " INSERT INTO delivered VALUES ('old', 1, strftime('%s','now'), 'ok');",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
        sqlite3_close(db);
    }
    std::string error;
    auto j = Journal::open(path, 3600, error);
    ASSERT_TRUE(j) << error;
    Journal::State st;
    ASSERT_TRUE(j->lookup("old", st));
    EXPECT_EQ(st, Journal::State::Delivered);
    ASSERT_TRUE(j->record("new", Journal::State::InDoubt, "uploaded"));
    ASSERT_TRUE(j->record("new", Journal::State::Delivered, "ok"));
    ASSERT_TRUE(j->lookup("new", st));
    EXPECT_EQ(st, Journal::State::Delivered);
}

TEST(Journal, ConcurrentWritersFromThreads) {
    TempDir dir;
    std::string error;
    auto j = Journal::open(dir.path() + "/j.sqlite", 3600, error);
    ASSERT_TRUE(j) << error;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 50; ++i) {
                EXPECT_TRUE(j->record("t" + std::to_string(t) + "-" + std::to_string(i),
                                      Journal::State::Delivered, ""));
            }
        });
    }
    for (auto& t : threads) t.join();
    Journal::State st;
    ASSERT_TRUE(j->lookup("t3-49", st));
    EXPECT_EQ(st, Journal::State::Delivered);
}

// The contract every backend keeps (journal_contract.h), on one SQLite file
// opened twice, as two processes would.
class SqliteJournalContract : public ::testing::Test {
  protected:
    rtm::testing::OpenJournal open = [this](long expiry) {
        std::string error;
        auto j = Journal::open(dir.path() + "/shared.sqlite", expiry, error);
        EXPECT_TRUE(j) << error;
        return j;
    };
    TempDir dir;
};

TEST_F(SqliteJournalContract, RecordLookupForgetExpire) {
    rtm::testing::check_record_lookup_forget_expire(open);
}
TEST_F(SqliteJournalContract, OneClaimWinsBetweenTwoJournals) {
    rtm::testing::check_claim_contention(open);
}
TEST_F(SqliteJournalContract, DeadClaims) {
    rtm::testing::check_dead_claims(open);
}
TEST_F(SqliteJournalContract, ClaimsOfADeadProcessEndAtOpen) {
    rtm::testing::check_claims_of_a_dead_process_end_at_open(open);
}

TEST(Journal, UnopenablePathIsAnError) {
    std::string error;
    EXPECT_FALSE(Journal::open("/nonexistent-dir/j.sqlite", 3600, error));
    EXPECT_NE(error.find("/nonexistent-dir/j.sqlite"), std::string::npos) << error;
}

TEST(Circuit, OpensAfterNFailuresProbesAfterCooldownAndCloses) {
    Circuit c("test");
    auto t0 = Circuit::Clock::now();
    const auto cooldown = std::chrono::seconds(30);
    for (int i = 0; i < 2; ++i) c.record(false, 3, t0);
    EXPECT_TRUE(c.allow(3, cooldown, t0));
    c.record(false, 3, t0);
    EXPECT_EQ(c.state(), Circuit::State::Open);
    EXPECT_FALSE(c.allow(3, cooldown, t0 + std::chrono::seconds(29)));
    EXPECT_TRUE(c.allow(3, cooldown, t0 + std::chrono::seconds(31)));   // the probe
    EXPECT_FALSE(c.allow(3, cooldown, t0 + std::chrono::seconds(32)));  // one at a time
    c.record(false, 3, t0 + std::chrono::seconds(33));                  // the probe failed
    EXPECT_EQ(c.state(), Circuit::State::Open);
    EXPECT_FALSE(c.allow(3, cooldown, t0 + std::chrono::seconds(40)));
    EXPECT_TRUE(c.allow(3, cooldown, t0 + std::chrono::seconds(64)));
    c.record(true, 3, t0 + std::chrono::seconds(65));
    EXPECT_EQ(c.state(), Circuit::State::Closed);
    EXPECT_TRUE(c.allow(3, cooldown, t0 + std::chrono::seconds(65)));
}

TEST(Circuit, AnHttpAnswerResetsTheCountAndZeroDisables) {
    Circuit c("test");
    c.record(false, 2, {});
    c.record(true, 2, {});
    c.record(false, 2, {});
    EXPECT_EQ(c.state(), Circuit::State::Closed);
    Circuit off("off");
    for (int i = 0; i < 10; ++i) off.record(false, 0, {});
    EXPECT_TRUE(off.allow(0, std::chrono::seconds(30)));
}

// RT's answer per queue field, with switches the test flips between tries:
// queue B not taken yet, RT silent after the whole request (in doubt), RT
// holding its answer until released; queue D unreachable.
struct ScriptedRt {
    std::atomic<bool> second_target_ok{false};
    std::atomic<bool> in_doubt{false};
    std::atomic<bool> hold{false};
    FakeAnswer operator()(const FakeRequest& r) {
        if (r.field("queue") == "D") return FakeAnswer::unreachable();
        if (r.field("queue") == "B" && !second_target_ok)
            return FakeAnswer::http(200, "temporary failure - busy\n");
        if (in_doubt) return FakeAnswer::in_doubt();
        return hold ? FakeAnswer::ok().held() : FakeAnswer::ok();
    }
};

class JournalSession : public ::testing::Test {
  protected:
    TempDir dir;
    ScriptedRt script;
    FakeRtBackend rt{[this](const FakeRequest& r) { return script(r); }};
    Config config = testing::make_config("http://rt.example.net");
    FakeMta mta;

    void SetUp() override {
        config.journal = dir.path() + "/journal.sqlite";
        for (const char* q : {"A", "B"}) {
            Route r = testing::make_route(std::string("q") + static_cast<char>(std::tolower(*q)),
                                          "example.com");
            r.queue = q;
            config.routes.push_back(r);
        }
    }
    Verdict attempt(const std::vector<std::string>& rcpts,
                    const std::string& message_id = " <m1@example.org>",
                    const std::string& body = "body\r\n") {
        auto runtime = rt.runtime(config);  // a fresh Runtime: as after a restart
        Session s([runtime] { return runtime; }, mta);
        s.set_lead_space_kept(true);
        EXPECT_EQ(s.mail({"<alice@example.org>"}), Verdict::Continue);
        for (const auto& r : rcpts) EXPECT_EQ(s.rcpt({r}), Verdict::Continue);
        s.header("Message-ID", message_id);
        s.header("Subject", " hi");
        s.end_of_headers();
        s.body(body);
        return s.end_of_message();
    }
    int posts_to(const std::string& queue) {
        int n = 0;
        for (const auto& r : rt.requests()) n += r.field("queue") == queue;
        return n;
    }
};

TEST_F(JournalSession, RetryPostsOnlyTheMissingTarget) {
    EXPECT_EQ(attempt({"<qA@example.com>", "<qB@example.com>"}), Verdict::Tempfail);
    EXPECT_EQ(mta.rcode + " " + mta.xcode, "451 4.3.0");
    EXPECT_EQ(posts_to("A"), 1);
    EXPECT_EQ(posts_to("B"), 1);
    script.second_target_ok = true;
    EXPECT_EQ(attempt({"<qA@example.com>", "<qB@example.com>"}), Verdict::Accept);
    EXPECT_EQ(posts_to("A"), 1) << "A was delivered on the first try: not again";
    EXPECT_EQ(posts_to("B"), 2);
    EXPECT_EQ(attempt({"<qA@example.com>", "<qB@example.com>"}),
              Verdict::Accept);  // a third copy: nothing posted
    EXPECT_EQ(rt.requests().size(), 3u);
}

TEST_F(JournalSession, OtherSendersAndMessagesAreNotDuplicates) {
    EXPECT_EQ(attempt({"<qA@example.com>"}), Verdict::Accept);
    EXPECT_EQ(attempt({"<qA@example.com>"}, " <m2@example.org>"), Verdict::Accept);
    EXPECT_EQ(posts_to("A"), 2);
}

// Finding 1 of the hostile review: the key was target + sender + Message-ID,
// so a second message reusing a Message-ID (a careless mailer, or a forger
// who saw it in a Cc) was answered 250 and never posted: lost.
TEST_F(JournalSession, AReusedMessageIdWithOtherContentIsAnotherMessage) {
    EXPECT_EQ(attempt({"<qA@example.com>"}, " <m1@example.org>", "the forged copy\r\n"),
              Verdict::Accept);
    EXPECT_EQ(attempt({"<qA@example.com>"}, " <m1@example.org>", "the real message\r\n"),
              Verdict::Accept);
    ASSERT_EQ(posts_to("A"), 2) << "the real message must reach RT";
    EXPECT_NE(rt.requests()[1].field("message").find("the real message"), std::string::npos);
    // the identical message again (a client's retry): never posted twice
    EXPECT_EQ(attempt({"<qA@example.com>"}, " <m1@example.org>", "the real message\r\n"),
              Verdict::Accept);
    EXPECT_EQ(posts_to("A"), 2);
}

// Finding 9: the journal (senders, Message-IDs, targets) held the RT URL's
// password in its keys.
TEST_F(JournalSession, NoUrlPasswordInTheJournal) {
    config.servers["rt"].url = "http://rtuser:s3cret-pw@rt.example.net";
    EXPECT_EQ(attempt({"<qA@example.com>"}), Verdict::Accept);
    EXPECT_EQ(posts_to("A"), 1);
    std::string bytes;
    for (const char* suffix : {"", "-wal"}) {
        std::ifstream in(config.journal + suffix, std::ios::binary);
        bytes += std::string(std::istreambuf_iterator<char>(in), {});
    }
    EXPECT_NE(bytes.find("rtuser:***@"), std::string::npos);
    EXPECT_EQ(bytes.find("s3cret-pw"), std::string::npos);
}

TEST_F(JournalSession, WithoutMessageIdTheDigestIdentifiesTheMessage) {
    auto send = [&](const std::string& body, const std::string& received) {
        auto runtime = rt.runtime(config);
        Session s([runtime] { return runtime; }, mta);
        s.mail({"<alice@example.org>"});
        s.rcpt({"<qA@example.com>"});
        s.header("Received", received);  // trace headers do not count
        s.header("Subject", " no id");
        s.end_of_headers();
        s.body(body);
        return s.end_of_message();
    };
    EXPECT_EQ(send("one\r\n", " from a by b"), Verdict::Accept);
    EXPECT_EQ(send("one\r\n", " from c by d"), Verdict::Accept);
    EXPECT_EQ(posts_to("A"), 1);
    EXPECT_EQ(send("two\r\n", " from a by b"), Verdict::Accept);
    EXPECT_EQ(posts_to("A"), 2);
}

TEST_F(JournalSession, InDoubtIsNotPostedAgain) {
    config.in_doubt = InDoubt::Delivered;  // no longer the default (in_doubt_test.cpp)
    script.in_doubt = true;                // RT has the whole request and says nothing in time
    EXPECT_EQ(attempt({"<qA@example.com>"}), Verdict::Tempfail);
    EXPECT_EQ(posts_to("A"), 1);
    script.in_doubt = false;
    EXPECT_EQ(attempt({"<qA@example.com>"}), Verdict::Accept);
    EXPECT_EQ(posts_to("A"), 1) << "RT had the whole request: counted as delivered";
}

TEST_F(JournalSession, InDoubtRetryPolicyPostsAgain) {
    config.in_doubt = InDoubt::Retry;
    script.in_doubt = true;
    EXPECT_EQ(attempt({"<qA@example.com>"}), Verdict::Tempfail);
    script.in_doubt = false;
    EXPECT_EQ(attempt({"<qA@example.com>"}), Verdict::Accept);
    EXPECT_EQ(posts_to("A"), 2);
}

// Two hosts (two Runtimes on one journal) with the same message at the same
// moment: the second finds the first's claim and answers 451 without
// posting; its retry, once the first is done, is a duplicate.
TEST_F(JournalSession, AClaimedTargetIsNotPostedBySecondSession) {
    script.hold = true;  // the first host's POST stays in RT's hands until released
    Verdict first = Verdict::Continue;
    std::thread host_a([&] { first = attempt({"<qA@example.com>"}); });
    EXPECT_TRUE(rt.wait_until_held(1)) << "the first POST never reached RT";
    script.hold = false;
    EXPECT_EQ(rt.requests().size(), 1u);
    FakeMta other_mta;
    auto runtime = rt.runtime(config);
    auto send_b = [&] {
        Session s([runtime] { return runtime; }, other_mta);
        s.set_lead_space_kept(true);
        s.mail({"<alice@example.org>"});
        s.rcpt({"<qA@example.com>"});
        s.header("Message-ID", " <m1@example.org>");
        s.header("Subject", " hi");
        s.end_of_headers();
        s.body("body\r\n");
        return s.end_of_message();
    };
    EXPECT_EQ(send_b(), Verdict::Tempfail);
    EXPECT_EQ(other_mta.rcode + " " + other_mta.xcode, "451 4.3.0");
    rt.release();
    host_a.join();
    EXPECT_EQ(first, Verdict::Accept);
    EXPECT_EQ(send_b(), Verdict::Accept);
    EXPECT_EQ(posts_to("A"), 1);
}

TEST_F(JournalSession, UnavailableJournalTempfailsUnlessTold) {
    config.journal = "/nonexistent-dir/journal.sqlite";
    EXPECT_EQ(attempt({"<qA@example.com>"}), Verdict::Tempfail);
    EXPECT_EQ(mta.rcode + " " + mta.xcode, "451 4.3.0");
    EXPECT_EQ(posts_to("A"), 0);
    config.on_journal_error = OnJournalError::Continue;
    EXPECT_EQ(attempt({"<qA@example.com>"}), Verdict::Accept);
    EXPECT_EQ(posts_to("A"), 1);
}

TEST_F(JournalSession, CircuitOpensAtRcptAfterTransportFailures) {
    RtServer down;
    down.name = "down";
    down.url = "http://down.example.net";  // its own circuit (per URL, in this test's family)
    down.timeout = 2;
    down.circuit_failures = 2;
    down.circuit_cooldown = 60;
    config.servers["down"] = down;
    Route r = testing::make_route("d", "example.com");
    r.server = "down";
    r.queue = "D";  // unreachable
    config.routes.push_back(r);
    config.journal = "";
    EXPECT_EQ(attempt({"<d@example.com>"}), Verdict::Tempfail);
    EXPECT_EQ(mta.rcode + " " + mta.xcode, "451 4.4.1");
    EXPECT_EQ(attempt({"<d@example.com>"}), Verdict::Tempfail);
    EXPECT_EQ(rt.family().circuits.for_url(down.url)->state(), Circuit::State::Open);
    mta.rcode.clear();
    auto runtime = rt.runtime(config);
    Session s([runtime] { return runtime; }, mta);
    ASSERT_EQ(s.mail({"<alice@example.org>"}), Verdict::Continue);
    EXPECT_EQ(s.rcpt({"<d@example.com>"}), Verdict::Tempfail);
    EXPECT_EQ(mta.rcode + " " + mta.xcode, "451 4.4.1");
    EXPECT_EQ(s.rcpt({"<qA@example.com>"}), Verdict::Continue);  // other servers unaffected
    EXPECT_EQ(rt.requests().size(), 2u) << "no POST while open";
    // After the cool-down (of the fake clock) one probe goes through; RT
    // answering closes the circuit.
    rt.advance(std::chrono::seconds(61));
    config.routes.back().queue = "General";
    EXPECT_EQ(attempt({"<d@example.com>"}), Verdict::Accept);
    EXPECT_EQ(rt.family().circuits.for_url(down.url)->state(), Circuit::State::Closed);
}

}  // namespace
}  // namespace rtm
