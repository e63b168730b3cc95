// rt_client_test.cpp — RtClient against FakeRt: the rules a hostile or
// broken RT meets (issue 9): where a redirect may lead (finding 8). What
// rt-mailgate makes of them is tested in tests/relay.
#include <gtest/gtest.h>

#include <string>

#include "fake_rt.h"
#include "rt_client.h"

namespace rtm {
namespace {

using testing::FakeRequest;
using testing::FakeResponse;
using testing::FakeRt;

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
    http_global_init();
    RtClient client(std::move(options));
    Message message;
    EXPECT_TRUE(message.append("Subject: x\n\nbody\n"));
    RtReply reply = client.post(Target{first.url()}, "", message);
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
    EXPECT_NE(p.reply.summary().find("redirect refused: 302 Status to 'http://localhost:"), std::string::npos)
        << p.reply.summary();
    EXPECT_NE(p.reply.summary().find("another host than 127.0.0.1"), std::string::npos) << p.reply.summary();
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

}  // namespace
}  // namespace rtm
