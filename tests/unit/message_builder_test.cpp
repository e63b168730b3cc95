// message_builder_test.cpp — MessageBuilder's CRLF → LF conversion against a
// byte-at-a-time reference, on random bodies of CR, LF and text split into
// random chunks (a CR at a chunk's end, bare CRs, CR CR LF, ...), in memory
// and past the memory limit on the spool.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "message_builder.h"

namespace rtm {
namespace {

// The plain definition: CR LF → LF, every other byte (bare CR too) kept.
std::string reference(const std::string& in) {
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '\r' && i + 1 < in.size() && in[i + 1] == '\n') continue;
        out += in[i];
    }
    return out;
}

std::string read_all(const Message& m) {
    std::string out(static_cast<std::size_t>(m.size()), '\0');
    std::size_t done = 0;
    while (done < out.size()) {
        long n = m.read_at(done, out.data() + done, out.size() - done);
        if (n <= 0) break;
        done += static_cast<std::size_t>(n);
    }
    out.resize(done);
    return out;
}

void check(const std::string& body, std::mt19937& rng, std::size_t memory_limit) {
    MessageBuilder b(SpoolOptions{.memory_limit = memory_limit, .dir = "/tmp"}, true);
    ASSERT_TRUE(b.end_of_headers());
    std::size_t at = 0;
    while (at < body.size()) {
        std::size_t len = std::uniform_int_distribution<std::size_t>(0, 40)(rng);
        len = std::min(len, body.size() - at);
        ASSERT_TRUE(b.body(std::string_view(body).substr(at, len)));
        at += len;
    }
    ASSERT_TRUE(b.finish());
    EXPECT_EQ(read_all(b.message()), "\n" + reference(body));
}

TEST(MessageBuilder, CrLfToLfMatchesTheReferenceOnRandomChunks) {
    std::mt19937 rng(12345);
    const char alphabet[] = {'\r', '\n', 'a', 'b', '\r', '.'};
    for (int round = 0; round < 2000; ++round) {
        std::string body(std::uniform_int_distribution<int>(0, 200)(rng), 'x');
        for (char& c : body) c = alphabet[std::uniform_int_distribution<int>(0, 5)(rng)];
        check(body, rng, 1 << 20);
    }
}

TEST(MessageBuilder, CrLfToLfMatchesTheReferenceOnTheSpool) {
    std::mt19937 rng(54321);
    std::string body;
    for (int i = 0; i < 20000; ++i)
        body += (i % 7 == 0) ? "line\r\r\n" : (i % 5 == 0 ? "bare\rcr\r\n" : "text\r\n");
    check(body, rng, 4096);  // past 4 KiB the message goes to an unlinked spool file
}

TEST(MessageBuilder, ChunkEndingInCrHoldsItBack) {
    MessageBuilder b(SpoolOptions{.memory_limit = 1 << 20, .dir = "/tmp"}, true);
    ASSERT_TRUE(b.body("a\r"));
    ASSERT_TRUE(b.body("\nb\r"));
    ASSERT_TRUE(b.body("c\r"));
    ASSERT_TRUE(b.finish());
    EXPECT_EQ(read_all(b.message()), "a\nb\rc\r");
}

}  // namespace
}  // namespace rtm
