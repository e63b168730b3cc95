// rt_client_test.cpp — RtClient against FakeRt: the rules a hostile or
// broken RT meets (issue 9): where a redirect may lead (finding 8) and how
// long one POST may take, whatever RT drips (finding 9). What rt-mailgate
// makes of them is tested in tests/relay.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "fake_rt.h"
#include "rt_client.h"

namespace rtm {
namespace {

using testing::FakeRequest;
using testing::FakeResponse;
using testing::FakeRt;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Timed {
    RtReply reply;
    Clock::duration took;
};

Timed post_to(const FakeRt& rt, ClientOptions options) {
    http_global_init();
    RtClient client(std::move(options));
    Message message;
    EXPECT_TRUE(message.append("Subject: x\n\nbody\n"));
    const auto start = Clock::now();
    RtReply reply = client.post(Target{rt.url()}, "", message);
    return {reply, Clock::now() - start};
}

ClientOptions limits(long timeout_seconds, long deadline_seconds = 0) {
    ClientOptions options;
    options.timeout_seconds = timeout_seconds;
    options.deadline_seconds = deadline_seconds;
    return options;
}

struct Posted {
    RtReply reply;
    std::size_t first_requests, second_requests;
};

// A message posted to `first`, which redirects to `second` under the name
// `host` (FakeRt listens on 127.0.0.1; "localhost" plays another host).
Posted post_redirected(const std::string& host, ClientOptions options = {}) {
    FakeRt second([](const FakeRequest&) { return FakeResponse{}; });
    const std::string port = second.url().substr(second.url().rfind(':'));
    FakeRt first([&](const FakeRequest&) {
        return FakeResponse{302, "", {}, {"Location: http://" + host + port + "/gw"}};
    });
    RtReply reply = post_to(first, std::move(options)).reply;
    return {reply, first.requests().size(), second.requests().size()};
}

TEST(RtClientRedirect, SameHostOtherPortIsFollowed) {
    Posted p = post_redirected("127.0.0.1");
    EXPECT_EQ(p.reply.kind, RtReply::Kind::Delivered) << p.reply.summary();
    EXPECT_EQ(p.second_requests, 1u);
}

TEST(RtClientRedirect, AnotherHostIsATemporaryFailureAndGetsNothing) {
    Posted p = post_redirected("localhost");
    EXPECT_EQ(p.reply.kind, RtReply::Kind::Temporary);
    EXPECT_FALSE(p.reply.unreachable);  // RT answered: no reason to open the circuit
    EXPECT_NE(p.reply.summary().find("redirect refused: 302 Status to 'http://localhost:"),
              std::string::npos)
        << p.reply.summary();
    EXPECT_NE(p.reply.summary().find("another host than 127.0.0.1"), std::string::npos)
        << p.reply.summary();
    EXPECT_EQ(p.first_requests, 1u);
    EXPECT_EQ(p.second_requests, 0u);
}

TEST(RtClientRedirect, AnAllowedHostIsFollowed) {
    ClientOptions options;
    options.redirect_hosts = {"rt.invalid", "LOCALHOST"};
    Posted p = post_redirected("localhost", options);
    EXPECT_EQ(p.reply.kind, RtReply::Kind::Delivered) << p.reply.summary();
    EXPECT_EQ(p.second_requests, 1u);
}

// What a POST cut by a 2 s deadline comes back as (in_doubt aside).
void expect_cut_at_2s(const Timed& t) {
    EXPECT_GE(t.took, 1900ms);
    EXPECT_LT(t.took, 3500ms);
    EXPECT_EQ(t.reply.kind, RtReply::Kind::Temporary);
    EXPECT_EQ(t.reply.transport_error, "deadline reached: no complete answer from RT within 2 s");
    EXPECT_FALSE(t.reply.unreachable) << "RT was reached";
}

FakeResponse dripping_body(std::size_t padding, std::chrono::milliseconds every) {
    FakeResponse r{200, "ok\n" + std::string(padding, 'x'), {}, {}, every};
    r.drip_head = false;
    return r;
}

TEST(RtClientDeadline, WithoutItADrippingBodyOutlastsTheTimeout) {
    // Why the deadline exists: every byte resets the inactivity timeout.
    FakeRt rt([](const FakeRequest&) { return dripping_body(30, 50ms); });
    Timed t = post_to(rt, limits(1));
    EXPECT_EQ(t.reply.kind, RtReply::Kind::Delivered) << t.reply.summary();
    EXPECT_GE(t.took, 1500ms);
}

TEST(RtClientDeadline, DrippingBodyIsCutAtTheDeadline) {
    // "ok" came before the cut: RT has the message, and a retry must not
    // post it again.
    FakeRt rt([](const FakeRequest&) { return dripping_body(100, 100ms); });  // 10 s
    Timed t = post_to(rt, limits(1, 2));
    EXPECT_GE(t.took, 1900ms);
    EXPECT_LT(t.took, 3500ms);
    EXPECT_EQ(t.reply.kind, RtReply::Kind::Delivered) << t.reply.summary();
}

TEST(RtClientDeadline, A2xxCutBeforeItSaysAnythingIsInDoubt) {
    FakeResponse slow{200, std::string(100, 'x'), {}, {}, 100ms};
    slow.drip_head = false;
    FakeRt rt([&](const FakeRequest&) { return slow; });
    Timed t = post_to(rt, limits(1, 2));
    EXPECT_GE(t.took, 1900ms);
    EXPECT_EQ(t.reply.kind, RtReply::Kind::Temporary);
    EXPECT_TRUE(t.reply.in_doubt) << "RT had the request and was answering 200";
}

TEST(RtClientDeadline, DrippingStatusLineIsCutAtTheDeadlineInDoubt) {
    // The status line alone takes 4 s.
    FakeRt rt([](const FakeRequest&) { return FakeResponse{200, "ok\n", {}, {}, 200ms}; });
    Timed t = post_to(rt, limits(10, 2));
    expect_cut_at_2s(t);
    EXPECT_TRUE(t.reply.in_doubt) << "RT had the whole request and gave no status yet";
    EXPECT_EQ(rt.requests().size(), 1u);
}

TEST(RtClientDeadline, OneDeadlineForAllRedirects) {
    // Each hop answers a redirect to itself after 1.5 s: 6 s in all without
    // a deadline; the second hop is cut at 2 s.
    std::string self;
    FakeRt rt([&](const FakeRequest&) {
        return FakeResponse{302, "", 1500ms, {"Location: " + self + "/again"}};
    });
    self = rt.url();
    Timed t = post_to(rt, limits(10, 2));
    expect_cut_at_2s(t);
    EXPECT_TRUE(t.reply.in_doubt);  // the second POST was whole and unanswered
    EXPECT_EQ(rt.requests().size(), 2u);
}

}  // namespace
}  // namespace rtm
