// text_test.cpp — relay/text.h, the string helpers every folder shares:
// ASCII-only case folding whatever the locale, trimming, angle brackets,
// joining, hex digits, printable bytes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "text.h"

namespace rtm {
namespace {

TEST(Text, AsciiCaseOnly) {
    EXPECT_EQ(ascii_lower("Message-ID: \xC3\x84X"),
              "message-id: \xC3\x84x");  // UTF-8 bytes untouched
    EXPECT_TRUE(iequals("X-RT-Mail-Extension", "x-rt-mail-extension"));
    EXPECT_FALSE(iequals("abc", "abcd"));
    EXPECT_FALSE(iequals("\xC3\x84", "\xC3\xA4"));  // no case folding beyond ASCII
    EXPECT_TRUE(istarts_with("HTTPS://rt", "https://"));
    EXPECT_FALSE(istarts_with("http", "https://"));
}

TEST(Text, TrimAndAngleBrackets) {
    EXPECT_EQ(trim(" \t a b \r\n"), "a b");
    EXPECT_EQ(trim(" \t\r\n"), "");
    EXPECT_EQ(trim("\r x \r", " \t"), "\r x \r");
    EXPECT_EQ(strip_angle_brackets("<id@host>"), "id@host");
    EXPECT_EQ(strip_angle_brackets("<>"), "");
    EXPECT_EQ(strip_angle_brackets("<id"), "<id");
    EXPECT_EQ(strip_angle_brackets(">"), ">");
}

TEST(Text, Join) {
    const std::vector<std::string> words = {"a", "b", "c"};
    EXPECT_EQ(join(words, ", "), "a, b, c");
    EXPECT_EQ(join(std::vector<std::string>{}, ", "), "");
    EXPECT_EQ(join(std::vector<int>{1, 2}, " or ", [](int n) { return std::to_string(n); }),
              "1 or 2");
}

TEST(Text, HexAndPrintable) {
    EXPECT_EQ(to_hex(std::string("\x00\x7f\xff", 3)), "007fff");
    std::string out;
    append_hex(out, 0xab, true);
    EXPECT_EQ(out, "AB");
    EXPECT_EQ(printable_char('a'), 'a');
    EXPECT_EQ(printable_char('\t'), ' ');
    EXPECT_EQ(printable_char('\n'), '?');
    EXPECT_EQ(printable_char('\x7f'), '?');
    EXPECT_EQ(printable_char('\xC3'), '?');
}

}  // namespace
}  // namespace rtm
