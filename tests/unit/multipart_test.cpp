// multipart_test.cpp — the mail-gateway body byte for byte: part headers as
// rt-mailgate writes them, no filename on the message part, fields only when
// set, and streaming reads (any chunk size, any offset) equal to the whole.
#include <gtest/gtest.h>

#include <regex>

#include "multipart.h"

namespace rtm {
namespace {

TEST(Multipart, ExactBytesWithFieldsAndPrefix) {
    Message m;
    ASSERT_TRUE(m.append("From: alice@example.com\nSubject: hi\n\nBody line\n"));
    MultipartBody body({{"queue", "support"}, {"action", "correspond"}},
                       "X-RT-Mail-Extension: support\n", m, "B");
    const std::string expected =
        "--B\r\n"
        "Content-Disposition: form-data; name=\"queue\"\r\n"
        "\r\n"
        "support\r\n"
        "--B\r\n"
        "Content-Disposition: form-data; name=\"action\"\r\n"
        "\r\n"
        "correspond\r\n"
        "--B\r\n"
        "Content-Disposition: form-data; name=\"message\"\r\n"
        "Content-Type: application/octet-stream\r\n"
        "\r\n"
        "X-RT-Mail-Extension: support\n"
        "From: alice@example.com\nSubject: hi\n\nBody line\n"
        "\r\n"
        "--B--\r\n";
    EXPECT_EQ(body.to_string(), expected);
    EXPECT_EQ(body.size(), expected.size());
    EXPECT_EQ(body.content_type(), "multipart/form-data; boundary=B");
    EXPECT_EQ(body.to_string().find("filename"), std::string::npos);
}

TEST(Multipart, MessageOnly) {
    Message m;
    ASSERT_TRUE(m.append("x"));
    MultipartBody body({}, "", m, "B");
    EXPECT_EQ(body.to_string(),
              "--B\r\nContent-Disposition: form-data; name=\"message\"\r\n"
              "Content-Type: application/octet-stream\r\n\r\nx\r\n--B--\r\n");
}

TEST(Multipart, FieldsComeFromTheTargetOnlyWhenSet) {
    EXPECT_EQ(form_fields(Target{.url = "u"}), std::vector<FormField>{});
    EXPECT_EQ(form_fields(Target{.url = "u", .queue = "q", .action = std::nullopt, .ticket = ""}),
              (std::vector<FormField>{{"queue", "q"}, {"ticket", ""}}));
    EXPECT_EQ(form_fields(Target{.url = "u", .queue = "q", .action = "a", .ticket = "7"}),
              (std::vector<FormField>{{"queue", "q"}, {"action", "a"}, {"ticket", "7"}}));
}

TEST(Multipart, GatewayUrlIsPlainConcatenation) {
    EXPECT_EQ(Target{.url = "http://rt"}.gateway_url(), "http://rt/REST/1.0/NoAuth/mail-gateway");
    EXPECT_EQ(Target{.url = "http://rt/"}.gateway_url(), "http://rt//REST/1.0/NoAuth/mail-gateway");
}

TEST(Multipart, RandomBoundaryIsLongAndFresh) {
    std::string a = random_boundary(), b = random_boundary();
    EXPECT_NE(a, b);
    EXPECT_TRUE(std::regex_match(a, std::regex("rt-milter-[0-9a-f]{32}"))) << a;
}

TEST(Multipart, StreamingEqualsWholeForEveryChunkSizeAndSpool) {
    for (std::size_t limit : {std::size_t(1) << 20, std::size_t(16)}) {  // memory, then disk
        Message m({.memory_limit = limit, .dir = ""});
        std::string content;
        for (int i = 0; i < 200; ++i) content += "line " + std::to_string(i) + "\r\n\0\xff"[i % 4];
        ASSERT_TRUE(m.append(content));
        MultipartBody body({{"queue", "q"}}, "Return-Path: <a@b>\n", m, "bnd");
        const std::string whole = body.to_string();
        ASSERT_EQ(whole.size(), body.size());
        for (std::size_t chunk : {1u, 2u, 7u, 64u, 1000u, 100000u}) {
            std::string got;
            std::string buf(chunk, '\0');
            for (std::uint64_t off = 0;;) {
                long n = body.read_at(off, buf.data(), chunk);
                ASSERT_GE(n, 0);
                if (n == 0) break;
                got.append(buf.data(), static_cast<std::size_t>(n));
                off += static_cast<std::uint64_t>(n);
            }
            EXPECT_EQ(got, whole) << "chunk " << chunk << " limit " << limit;
        }
        // A rewind (curl seeks back on a retried connection) reads the same.
        char c[5];
        ASSERT_EQ(body.read_at(2, c, 5), 5);
        EXPECT_EQ(std::string(c, 5), whole.substr(2, 5));
    }
}

}  // namespace
}  // namespace rtm
