// message_test.cpp — the Message spool: memory below the threshold, an
// anonymous file above it, byte-exact reads at any offset, and no file left
// in the spool directory at any time.
#include <dirent.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <random>
#include <string>

#include "message.h"

namespace rtm {
namespace {

class MessageSpool : public testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/rtm-spool-test.XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::size_t files_in_dir() const {
        return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(dir_),
                                                      std::filesystem::directory_iterator()));
    }
    std::string read_all(const Message& m, std::size_t chunk) const {
        std::string out;
        std::string buf(chunk, '\0');
        for (std::uint64_t off = 0;;) {
            long n = m.read_at(off, buf.data(), buf.size());
            EXPECT_GE(n, 0);
            if (n <= 0) break;
            out.append(buf.data(), static_cast<std::size_t>(n));
            off += static_cast<std::uint64_t>(n);
        }
        return out;
    }

    std::string dir_;
};

TEST_F(MessageSpool, SmallMessageStaysInMemory) {
    Message m({.memory_limit = 100, .dir = dir_});
    ASSERT_TRUE(m.append("From: a@b\n\nhello\n"));
    EXPECT_FALSE(m.on_disk());
    EXPECT_EQ(m.size(), 17u);
    EXPECT_EQ(read_all(m, 7), "From: a@b\n\nhello\n");
    EXPECT_EQ(files_in_dir(), 0u);
}

TEST_F(MessageSpool, LargeMessageSpillsToAnUnlinkedFile) {
    std::mt19937 rng(42);
    std::string expected;
    Message m({.memory_limit = 1000, .dir = dir_});
    for (int i = 0; i < 300; ++i) {
        std::string chunk(rng() % 97, '\0');
        for (char& c : chunk) c = static_cast<char>(rng());  // NULs, 8-bit, CR, LF
        expected += chunk;
        ASSERT_TRUE(m.append(chunk));
    }
    EXPECT_TRUE(m.on_disk());
    EXPECT_EQ(m.size(), expected.size());
    EXPECT_EQ(files_in_dir(), 0u) << "the spool file must never have a name";
    EXPECT_EQ(read_all(m, 1), expected);
    EXPECT_EQ(read_all(m, 4096), expected);
    char c;
    EXPECT_EQ(m.read_at(expected.size(), &c, 1), 0);
    EXPECT_EQ(m.read_at(expected.size() + 10, &c, 1), 0);
}

// In memory the message is kept in 64 KiB blocks: appends of every size
// across block edges, reads of every size from every kind of offset.
TEST_F(MessageSpool, MemoryBlocksReadBackByteExact) {
    std::mt19937 rng(7);
    std::string expected;
    Message m({.memory_limit = 1 << 20, .dir = dir_});
    while (expected.size() < 300000) {
        std::string chunk(rng() % 70000, '\0');
        for (char& c : chunk) c = static_cast<char>(rng());
        ASSERT_TRUE(m.append(chunk));
        expected += chunk;
    }
    EXPECT_FALSE(m.on_disk());
    EXPECT_EQ(m.size(), expected.size());
    for (std::size_t chunk : {1u, 4093u, 65536u, 65537u, 1u << 20})
        EXPECT_EQ(read_all(m, chunk), expected);
    for (int i = 0; i < 200; ++i) {
        const std::size_t off = rng() % expected.size();
        std::string buf(rng() % 140000 + 1, '\0');
        long n = m.read_at(off, buf.data(), buf.size());
        ASSERT_EQ(n, static_cast<long>(std::min(buf.size(), expected.size() - off)));
        EXPECT_EQ(buf.substr(0, static_cast<std::size_t>(n)),
                  expected.substr(off, static_cast<std::size_t>(n)));
    }
    // and after a spill, the same bytes from the file
    Message spilled({.memory_limit = 200000, .dir = dir_});
    ASSERT_TRUE(spilled.append(std::string_view(expected).substr(0, 150000)));
    ASSERT_TRUE(spilled.append(std::string_view(expected).substr(150000)));
    EXPECT_TRUE(spilled.on_disk());
    EXPECT_EQ(read_all(spilled, 65537), expected);
}

TEST_F(MessageSpool, ExactlyAtTheThresholdStaysInMemory) {
    Message m({.memory_limit = 10, .dir = dir_});
    ASSERT_TRUE(m.append("0123456789"));
    EXPECT_FALSE(m.on_disk());
    ASSERT_TRUE(m.append("x"));
    EXPECT_TRUE(m.on_disk());
    EXPECT_EQ(read_all(m, 3), "0123456789x");
}

TEST_F(MessageSpool, UnwritableSpoolDirIsAnErrorNotACrash) {
    Message m({.memory_limit = 4, .dir = dir_ + "/missing"});
    Status s = m.append("more than four bytes");
    EXPECT_FALSE(s);
    EXPECT_NE(s.error().find("cannot create spool file in " + dir_ + "/missing"), std::string::npos)
        << s.error();
}

}  // namespace
}  // namespace rtm
