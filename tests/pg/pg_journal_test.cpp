// pg_journal_test.cpp — the PostgreSQL journal against the real server of
// this ctest run (tests/pg/pg_server.py; $RTM_PG_STATE names its state
// directory, its file "command" the command that pauses and resumes it): the
// table made on first use, expiry by one host at a time, the backend contract (journal_contract.h)
// with two journals as two hosts, the server stopped (an error, bounded) and started again (the
// same journal works, no reopen), the password never in an error.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "journal.h"
#include "journal_contract.h"

namespace rtm {
namespace {

using Clock = std::chrono::steady_clock;

std::string state_dir() {
    const char* dir = std::getenv("RTM_PG_STATE");
    return dir ? dir : "";
}

std::string conninfo() {
    std::ifstream in(state_dir() + "/conninfo");
    std::string line;
    std::getline(in, line);
    return line;
}

// pause / resume the server (pg_server.py, by its recorded pid).
void server(const std::string& what) {
    std::ifstream in(state_dir() + "/command");
    std::string command;
    ASSERT_TRUE(std::getline(in, command)) << "no " << state_dir() << "/command";
    ASSERT_EQ(std::system((command + " " + what + " " + state_dir()).c_str()), 0) << what;
}

// The rt_milter role's own connection, to look at the tables.
struct Admin {
    Admin() : conn(PQconnectdb(conninfo().c_str()), &PQfinish) {}
    std::string value(const char* sql) {
        std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(conn.get(), sql), &PQclear);
        if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
            return "error: " + std::string(PQerrorMessage(conn.get()));
        return PQntuples(r.get()) ? PQgetvalue(r.get(), 0, 0) : "";
    }
    bool exec(const char* sql) {
        std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(conn.get(), sql), &PQclear);
        return PQresultStatus(r.get()) == PGRES_COMMAND_OK;
    }
    std::unique_ptr<PGconn, decltype(&PQfinish)> conn;
};

class PgJournal : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_FALSE(conninfo().empty()) << "no server: RTM_PG_STATE=" << state_dir();
    }
    rtm::testing::OpenJournal open = [](long expiry) {
        std::string error;
        auto j = Journal::open(conninfo(), expiry, error);
        EXPECT_TRUE(j) << error;
        return j;
    };
};

TEST_F(PgJournal, CreatesItsTableAndVersionOnFirstUse) {
    Admin admin;
    ASSERT_TRUE(admin.exec("DROP TABLE IF EXISTS rt_milter_journal, rt_milter_schema"));
    auto j = open(3600);
    ASSERT_TRUE(j);
    EXPECT_EQ(admin.value("SELECT version FROM rt_milter_schema"), "1");
    ASSERT_TRUE(j->record("first", Journal::State::Delivered, "ok"));
    EXPECT_EQ(admin.value("SELECT state FROM rt_milter_journal WHERE key = 'first'"), "1");
    EXPECT_EQ(j->where().find("postgresql host=127.0.0.1 port="), 0u) << j->where();
    auto again = open(3600);  // a second host: the table is there, left alone
    ASSERT_TRUE(again);
    EXPECT_EQ(admin.value("SELECT count(*) FROM rt_milter_schema"), "1");
    Journal::State st;
    ASSERT_TRUE(again->lookup("first", st));
    EXPECT_EQ(st, Journal::State::Delivered);
}

TEST_F(PgJournal, RecordLookupForgetExpire) {
    rtm::testing::check_record_lookup_forget_expire(open);
}
TEST_F(PgJournal, OneClaimWinsBetweenTwoHosts) {
    rtm::testing::check_claim_contention(open);
}
TEST_F(PgJournal, DeadClaims) {
    rtm::testing::check_dead_claims(open);
}
TEST_F(PgJournal, ClaimsOfADeadProcessEndAtOpen) {
    rtm::testing::check_claims_of_a_dead_process_end_at_open(open);
}

// Expiry runs on one host at a time: while another holds the expiry lock,
// expire() returns at once and deletes nothing; afterwards it deletes.
TEST_F(PgJournal, ExpirySkipsWhileAnotherHostExpires) {
    auto writer = open(3600);
    ASSERT_TRUE(writer);
    const std::string key = rtm::testing::unique_key("old");
    ASSERT_TRUE(writer->record(key, Journal::State::Delivered, "ok"));
    Admin other_host;
    ASSERT_TRUE(other_host.exec("BEGIN"));
    ASSERT_EQ(other_host.value("SELECT pg_try_advisory_xact_lock(1920233730)"), "t");
    auto expirer = open(-10);  // everything has expired for this one
    ASSERT_TRUE(expirer);
    const auto started = Clock::now();
    ASSERT_TRUE(expirer->expire());
    EXPECT_LT(Clock::now() - started, std::chrono::seconds(2)) << "waited for the other host";
    Admin look;
    const std::string count = "SELECT count(*) FROM rt_milter_journal WHERE key = '" + key + "'";
    EXPECT_EQ(look.value(count.c_str()), "1") << "expired while another host held the lock";
    ASSERT_TRUE(other_host.exec("COMMIT"));
    ASSERT_TRUE(expirer->expire());
    EXPECT_EQ(look.value(count.c_str()), "0");
}

// A newer rt-milter's table is not written by an older one.
TEST_F(PgJournal, RefusesANewerSchema) {
    Admin admin;
    ASSERT_TRUE(open(3600));
    ASSERT_TRUE(admin.exec("UPDATE rt_milter_schema SET version = 99"));
    std::string error;
    EXPECT_FALSE(Journal::open(conninfo(), 3600, error));
    EXPECT_NE(error.find("schema version 99 is newer"), std::string::npos) << error;
    ASSERT_TRUE(admin.exec("UPDATE rt_milter_schema SET version = 1"));
}

// Down: every call fails within the connect/statement bounds, and says so
// without the password; back: the same journal works again, not reopened.
TEST_F(PgJournal, ServerStoppedThenStartedAgain) {
    auto j = open(3600);
    ASSERT_TRUE(j);
    const std::string key = rtm::testing::unique_key("outage");
    ASSERT_TRUE(j->record(key, Journal::State::Delivered, "ok"));
    server("pause");
    Journal::State st;
    for (int i = 0; i < 3; ++i) {
        const auto started = Clock::now();
        Status s = j->lookup(key, st);
        EXPECT_FALSE(s);
        EXPECT_LT(Clock::now() - started, std::chrono::seconds(12)) << "call " << i;
        EXPECT_EQ(s.error().find("password"), std::string::npos) << s.error();
    }
    Journal::Claim claim;
    EXPECT_FALSE(j->claim(rtm::testing::unique_key("during"), Journal::State::Unknown, 60, claim));
    std::string error;
    EXPECT_FALSE(Journal::open(conninfo(), 3600, error));
    EXPECT_NE(error.find("postgresql host=127.0.0.1"), std::string::npos) << error;
    auto kept = Journal::open(conninfo(), 3600, error, /*keep_unreachable=*/true);
    EXPECT_TRUE(kept) << "a daemon keeps a journal whose server is down";
    server("resume");
    // A failed connect makes calls fail at once for 1 s (no pile-up of
    // connect timeouts): poll, bounded.
    Status s = Status::failure("not tried");
    for (auto until = Clock::now() + std::chrono::seconds(5); Clock::now() < until;) {
        if ((s = j->lookup(key, st))) break;
    }
    ASSERT_TRUE(s) << s.error();
    EXPECT_EQ(st, Journal::State::Delivered);
    ASSERT_TRUE(kept);
    s = Status::failure("not tried");
    for (auto until = Clock::now() + std::chrono::seconds(5); Clock::now() < until;) {
        if ((s = kept->lookup(key, st))) break;
    }
    ASSERT_TRUE(s) << s.error();
    EXPECT_EQ(st, Journal::State::Delivered);
}

}  // namespace
}  // namespace rtm
