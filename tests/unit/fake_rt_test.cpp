// fake_rt_test.cpp — FakeRt itself: a test server must outlive the clients
// its tests make misbehave (issue 9, finding 11: a timeout test died of
// SIGPIPE when its fake RT answered a client that had already gone).
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "fake_rt.h"

namespace rtm::testing {
namespace {

using namespace std::chrono_literals;

// A connected socket to rt, or -1.
int connect_to(const FakeRt& rt) {
    const std::string url = rt.url();
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(url.substr(url.rfind(':') + 1))));
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

constexpr std::string_view kRequest = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";

// What killed unit.JournalSession.InDoubtIsNotPostedAgain under load: the
// test ends while its fake RT still owes an answer; the destructor shuts the
// connection down, and the answer is then written into it.
TEST(FakeRt, AnswerOwedAtTeardownDoesNotKillTheProcess) {
    auto rt = std::make_unique<FakeRt>([](const FakeRequest&) {
        std::this_thread::sleep_for(500ms);  // still answering when the test ends
        return FakeResponse{};
    });
    int fd = connect_to(*rt);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(send(fd, kRequest.data(), kRequest.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(kRequest.size()));
    std::this_thread::sleep_for(100ms);  // the handler has the request
    rt.reset();                          // shutdown(), then the answer is written
    close(fd);
    SUCCEED() << "alive";
}

TEST(FakeRt, SurvivesAClientThatHangsUpBeforeTheAnswer) {
    FakeRt rt([](const FakeRequest&) {
        return FakeResponse{200, std::string(1 << 20, 'x'), 300ms};
    });
    int gone = connect_to(rt);
    ASSERT_GE(gone, 0);
    ASSERT_EQ(send(gone, kRequest.data(), kRequest.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(kRequest.size()));
    for (int i = 0; i < 200 && rt.requests().empty(); ++i) std::this_thread::sleep_for(10ms);
    ASSERT_EQ(rt.requests().size(), 1u);
    // A reset, not a FIN: the fake's first write then fails with EPIPE,
    // which is SIGPIPE for a plain write().
    linger reset{1, 0};
    setsockopt(gone, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(gone);
    std::this_thread::sleep_for(600ms);  // past the delay: the fake has written

    int next = connect_to(rt);  // still alive, still answering
    ASSERT_GE(next, 0);
    ASSERT_EQ(send(next, kRequest.data(), kRequest.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(kRequest.size()));
    char head[16] = {};
    EXPECT_EQ(recv(next, head, 12, MSG_WAITALL), 12);
    EXPECT_EQ(std::string(head), "HTTP/1.1 200");
    close(next);
    EXPECT_EQ(rt.requests().size(), 2u);
}

}  // namespace
}  // namespace rtm::testing
