// rest2_test.cpp — the REST2 side of "in doubt, checked with RT" (issue 12,
// item 2): reading REST2's JSON (nlohmann-json), message_id_of(), Rest2Client::find_message
// against a scripted REST2 (FakeRt: found in the target's queue, found in
// another queue, on the target ticket, not found, 401 for a bad token, 500,
// timeout), and Session settling an in-doubt copy with it: RT has it → not
// posted again and recorded delivered; RT has not → posted again; RT
// failing → 451 and still in doubt; no token or no Message-ID → in_doubt
// (whose default is now "retry"). There the mail gateway is scripted behind
// the RT seam (fake_poster.h: in doubt at once, no waiting out a timeout)
// while REST2 is asked through libcurl on loopback.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>

#include "fake_poster.h"
#include "fake_rt.h"
#include "journal.h"
#include "milter_fixtures.h"
#include "rest2_client.h"
#include "session.h"

namespace rtm {
namespace {

using testing::FakeAnswer;
using testing::FakeMta;
using testing::FakeRequest;
using testing::FakeResponse;
using testing::FakeRt;
using testing::FakeRtBackend;
using namespace std::chrono_literals;

constexpr char kToken[] = "1-23-abcdefabcdefabcdefabcdefabcdefab";

// RT as REST2 shows it: one message (attachment 123, transaction 77) on
// ticket 45 in queue `queue` (id 3), and RT's mail gateway.
struct ScriptedRest2 {
    std::string stored_id = "m1@example.org";  // "" = RT has nothing
    std::string queue = "General";
    int rest2_status = 200;  // != 200: every REST2 request answers this
    std::chrono::milliseconds rest2_delay{0};
    bool gateway_in_doubt = false;  // the mail gateway says nothing in time after the whole request
    std::atomic<int> rest2_requests{0}, gateway_posts{0};
    std::mutex mutex;
    std::vector<std::string> search_bodies;

    FakeResponse operator()(const FakeRequest& r) {
        const std::string line = r.head.substr(0, r.head.find("\r\n"));
        const std::string target =
            line.substr(line.find(' ') + 1, line.rfind(' ') - line.find(' ') - 1);
        if (target.find("/REST/1.0/NoAuth/mail-gateway") != std::string::npos) {
            ++gateway_posts;
            return {200, "ok\n"};
        }
        ++rest2_requests;
        if (r.head.find("Authorization: token " + std::string(kToken) + "\r\n") ==
            std::string::npos)
            return {401, "{\"message\":\"Unauthorized\"}"};
        if (rest2_status != 200) return {rest2_status, "{\"message\":\"oops\"}", rest2_delay};
        std::string json = "{}";
        if (target.starts_with("/REST/2.0/attachments")) {
            std::lock_guard lock(mutex);
            search_bodies.push_back(r.body);
            const bool hit =
                !stored_id.empty() && r.body.find("\"" + stored_id + "\"") != std::string::npos;
            json =
                hit ? R"({"count":1,"total":1,"page":1,"per_page":20,"items":[{"type":"attachment","id":"123","_url":"x"}]})"
                    : R"({"count":0,"total":0,"page":1,"per_page":20,"items":[]})";
        } else if (target == "/REST/2.0/attachment/123") {
            json =
                R"({"id":123,"MessageId":"m1@example.org","TransactionId":{"type":"transaction","id":"77","_url":"x"}})";
        } else if (target == "/REST/2.0/transaction/77") {
            json =
                R"({"id":77,"ObjectType":"RT::Ticket","ObjectId":"45","Object":{"type":"ticket","id":"45","_url":"x"}})";
        } else if (target == "/REST/2.0/ticket/45") {
            json =
                R"({"id":45,"EffectiveId":{"type":"ticket","id":"45"},"Queue":{"type":"queue","id":"3","_url":"x"}})";
        } else if (target == "/REST/2.0/queue/3") {
            json = nlohmann::json{{"id", 3}, {"Name", queue}}.dump();
        } else {
            return {404, "{\"message\":\"Not found\"}"};
        }
        return {200, json, rest2_delay, {"Content-Type: application/json"}};
    }
};

Rest2Finding find(FakeRt& rt, Target target, const std::string& token = kToken, long timeout = 5) {
    http_global_init();
    ClientOptions options;
    options.timeout_seconds = timeout;
    Rest2Client client(options, token);
    target.url = rt.url();
    return client.find_message(target, "m1@example.org");
}

TEST(Rest2Json, IdsAndScalarsOfWhatRest2Answers) {
    const nlohmann::json v =
        nlohmann::json::parse(R"( {"a":[1,"x",true,null,{"id":"7"},{"id":45}],"b":-2.5e3} )");
    const nlohmann::json* a = json_member(v, "a");
    ASSERT_TRUE(a && a->size() == 6);
    EXPECT_EQ(json_scalar(&(*a)[0]), "1");
    EXPECT_EQ(json_scalar(&(*a)[1]), "x");
    EXPECT_EQ(json_scalar(&(*a)[2]), "");  // not a string or a number
    EXPECT_EQ(rest2_id(&(*a)[4]), "7");
    EXPECT_EQ(rest2_id(&(*a)[5]), "45");
    EXPECT_EQ(rest2_id(nullptr), "");
    EXPECT_EQ(json_member(v, "missing"), nullptr);
    EXPECT_EQ(json_member(*a, "a"), nullptr);  // not an object
}

TEST(Rest2Find, AMessageIdThatIsNotUtf8IsAskedForNotThrownOn) {
    ScriptedRest2 script;
    FakeRt rt([&](const FakeRequest& r) { return script(r); });
    http_global_init();
    Rest2Client client(ClientOptions{}, kToken);
    Target t;
    t.url = rt.url();
    t.queue = "General";
    Rest2Finding f = client.find_message(t, "bad\xff@example.org");
    EXPECT_NE(f.kind, Rest2Finding::Kind::Failed) << f.detail;
    ASSERT_EQ(script.search_bodies.size(), 1u);
    EXPECT_NE(script.search_bodies[0].find("bad\xef\xbf\xbd@example.org"),
              std::string::npos)  // U+FFFD
        << script.search_bodies[0];
}

TEST(MessageIdOf, AsRtStoresIt) {
    auto id = [](const std::string& text) {
        Message m;
        EXPECT_TRUE(m.append(text));
        return message_id_of(m);
    };
    EXPECT_EQ(id("Subject: x\nMessage-ID: <a.b@c.example>\n\nbody\n"), "a.b@c.example");
    EXPECT_EQ(id("message-id:\n  <folded@x>  \nTo: y\n\n"), "folded@x");
    EXPECT_EQ(id("Message-Id: bare@x\n\n"), "bare@x");
    EXPECT_EQ(id("Subject: x\n\nMessage-ID: <in-body@x>\n"), std::nullopt);
    EXPECT_EQ(id("Message-ID:   \n\n"), std::nullopt);
}

TEST(Rest2Find, FoundInTheTargetsQueue) {
    ScriptedRest2 script;
    FakeRt rt([&](const FakeRequest& r) { return script(r); });
    Target t;
    t.queue = "general";  // RT's queue names ignore case
    Rest2Finding f = find(rt, t);
    EXPECT_EQ(f.kind, Rest2Finding::Kind::Found) << f.detail;
    EXPECT_EQ(f.detail, "attachment 123 on ticket 45");
    ASSERT_EQ(script.search_bodies.size(), 1u);
    EXPECT_EQ(script.search_bodies[0],
              R"([{"field":"MessageId","operator":"=","value":"m1@example.org"}])");
    const std::string head = rt.requests().front().head;
    EXPECT_EQ(head.substr(0, head.find("\r\n")), "POST /REST/2.0/attachments?per_page=20 HTTP/1.1");
    EXPECT_NE(head.find("Content-Type: application/json"), std::string::npos);
}

TEST(Rest2Find, QueueByIdAndTicketTargets) {
    ScriptedRest2 script;
    FakeRt rt([&](const FakeRequest& r) { return script(r); });
    Target by_id;
    by_id.queue = "3";
    EXPECT_EQ(find(rt, by_id).kind, Rest2Finding::Kind::Found);
    Target ticket;
    ticket.ticket = "45";
    EXPECT_EQ(find(rt, ticket).kind, Rest2Finding::Kind::Found);
    ticket.ticket = "46";
    Rest2Finding other = find(rt, ticket);
    EXPECT_EQ(other.kind, Rest2Finding::Kind::NotFound);
    EXPECT_EQ(other.detail, "only attachment 123 on ticket 45, not on ticket 46");
}

TEST(Rest2Find, FoundInAnotherQueueIsNotFound) {
    ScriptedRest2 script;
    script.queue = "Sales";
    FakeRt rt([&](const FakeRequest& r) { return script(r); });
    Target t;
    t.queue = "General";
    Rest2Finding f = find(rt, t);
    EXPECT_EQ(f.kind, Rest2Finding::Kind::NotFound);
    EXPECT_EQ(f.detail, "only attachment 123 on ticket 45 in queue Sales, not General");
    Target default_queue;  // the gateway's default is queue 1; the hit is in 3
    EXPECT_EQ(find(rt, default_queue).kind, Rest2Finding::Kind::NotFound);
}

TEST(Rest2Find, NotFound) {
    ScriptedRest2 script;
    script.stored_id = "";
    FakeRt rt([&](const FakeRequest& r) { return script(r); });
    Rest2Finding f = find(rt, Target{});
    EXPECT_EQ(f.kind, Rest2Finding::Kind::NotFound);
    EXPECT_EQ(f.detail, "no attachment with this Message-ID");
    EXPECT_EQ(script.rest2_requests, 1);
}

TEST(Rest2Find, BadTokenFailsWithoutShowingIt) {
    ScriptedRest2 script;
    FakeRt rt([&](const FakeRequest& r) { return script(r); });
    Rest2Finding f = find(rt, Target{}, "wrong-token-value");
    EXPECT_EQ(f.kind, Rest2Finding::Kind::Failed);
    EXPECT_NE(f.detail.find("HTTP 401: RT refused the token"), std::string::npos) << f.detail;
    EXPECT_EQ(f.detail.find("wrong-token-value"), std::string::npos);
}

TEST(Rest2Find, ServerErrorFails) {
    ScriptedRest2 script;
    script.rest2_status = 500;
    FakeRt rt([&](const FakeRequest& r) { return script(r); });
    Rest2Finding f = find(rt, Target{});
    EXPECT_EQ(f.kind, Rest2Finding::Kind::Failed);
    EXPECT_NE(f.detail.find("/REST/2.0/attachments: HTTP 500"), std::string::npos) << f.detail;
}

TEST(Rest2Find, TimeoutFails) {
    ScriptedRest2 script;
    script.rest2_delay = 3000ms;
    FakeRt rt([&](const FakeRequest& r) { return script(r); });
    const auto start = std::chrono::steady_clock::now();
    Rest2Finding f = find(rt, Target{}, kToken, 1);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2500ms);
    EXPECT_EQ(f.kind, Rest2Finding::Kind::Failed);
    EXPECT_NE(f.detail.find("timeout"), std::string::npos) << f.detail;
}

TEST(Rest2Find, UnreachableFails) {
    Rest2Client client(ClientOptions{}, kToken);
    Target t;
    t.url = "http://127.0.0.1:2";
    EXPECT_EQ(client.find_message(t, "m1@example.org").kind, Rest2Finding::Kind::Failed);
}

// Session: the first try leaves queue A's copy in doubt (RT answers after
// the timeout); the client's retry settles it.
class InDoubtSession : public ::testing::Test {
  protected:
    std::string dir = [] {
        char tmpl[] = "/tmp/rtm-rest2-test.XXXXXX";
        return std::string(mkdtemp(tmpl));
    }();
    ScriptedRest2 script;
    FakeRt rt{[this](const FakeRequest& r) { return script(r); }};  // REST2
    FakeRtBackend gateway{[this](const FakeRequest&) {
        ++script.gateway_posts;
        return script.gateway_in_doubt ? FakeAnswer::in_doubt() : FakeAnswer::ok();
    }};
    Config config = testing::make_config(rt.url());
    FakeMta mta;

    void SetUp() override {
        config.journal = dir + "/journal.sqlite";
        config.servers["rt"].timeout = 1;
        config.servers["rt"].rest2_token = kToken;
        Route r = testing::make_route("qa", "example.com");
        r.queue = "General";
        config.routes.push_back(r);
    }
    void TearDown() override { std::filesystem::remove_all(dir); }

    Verdict attempt(const std::string& message_id = " <m1@example.org>") {
        RtBackend backend = gateway.backend();
        backend.find_message = curl_backend().find_message;  // REST2 on the wire
        auto runtime =
            std::make_shared<const Runtime>(config, std::move(backend), gateway.family_ptr());
        Session s([runtime] { return runtime; }, mta);
        s.set_lead_space_kept(true);
        EXPECT_EQ(s.mail({"<alice@example.org>"}), Verdict::Continue);
        EXPECT_EQ(s.rcpt({"<qA@example.com>"}), Verdict::Continue);
        if (!message_id.empty()) s.header("Message-ID", message_id);
        s.header("Subject", " hi");
        s.end_of_headers();
        s.body("body\r\n");
        return s.end_of_message();
    }
    void leave_in_doubt(const std::string& message_id = " <m1@example.org>") {
        script.gateway_in_doubt = true;
        EXPECT_EQ(attempt(message_id), Verdict::Tempfail);
        EXPECT_EQ(script.gateway_posts, 1);
        EXPECT_EQ(script.rest2_requests, 0) << "RT is asked only for a copy in doubt";
        script.gateway_in_doubt = false;
    }
};

TEST_F(InDoubtSession, RtHasItNothingPosted) {
    leave_in_doubt();
    EXPECT_EQ(attempt(), Verdict::Accept);
    EXPECT_EQ(script.gateway_posts, 1) << "RT has the message: not posted again";
    EXPECT_GT(script.rest2_requests, 0);
    const int asked = script.rest2_requests;
    EXPECT_EQ(attempt(), Verdict::Accept);  // recorded as delivered: RT is not asked again
    EXPECT_EQ(script.gateway_posts, 1);
    EXPECT_EQ(script.rest2_requests, asked);
}

TEST_F(InDoubtSession, NotInRtPostedAgain) {
    leave_in_doubt();
    script.stored_id = "";
    EXPECT_EQ(attempt(), Verdict::Accept);
    EXPECT_EQ(script.gateway_posts, 2);
}

TEST_F(InDoubtSession, InAnotherQueuePostedAgain) {
    leave_in_doubt();
    script.queue = "Sales";
    EXPECT_EQ(attempt(), Verdict::Accept);
    EXPECT_EQ(script.gateway_posts, 2);
}

TEST_F(InDoubtSession, Rest2FailingIs451AndStillInDoubt) {
    leave_in_doubt();
    script.rest2_status = 500;
    EXPECT_EQ(attempt(), Verdict::Tempfail);
    EXPECT_EQ(mta.rcode, "451");
    EXPECT_EQ(script.gateway_posts, 1) << "nothing posted while RT cannot say";
    script.rest2_status = 200;
    EXPECT_EQ(attempt(), Verdict::Accept);  // still in doubt: asked again, and RT has it
    EXPECT_EQ(script.gateway_posts, 1);
}

TEST_F(InDoubtSession, WithoutTokenTheDefaultPolicyPostsAgain) {
    config.servers["rt"].rest2_token.clear();
    EXPECT_EQ(config.in_doubt, InDoubt::Retry);
    leave_in_doubt();
    EXPECT_EQ(attempt(), Verdict::Accept);
    EXPECT_EQ(script.gateway_posts, 2);
    EXPECT_EQ(script.rest2_requests, 0);
}

TEST_F(InDoubtSession, WithoutMessageIdThePolicyDecides) {
    config.in_doubt = InDoubt::Delivered;
    leave_in_doubt("");
    EXPECT_EQ(attempt(""), Verdict::Accept);
    EXPECT_EQ(script.gateway_posts, 1) << "in_doubt = delivered";
    EXPECT_EQ(script.rest2_requests, 0) << "nothing to ask RT by";
}

}  // namespace
}  // namespace rtm
