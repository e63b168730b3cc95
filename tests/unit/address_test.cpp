// address_test.cpp — envelope address parsing as MTAs pass argv[0].
#include <gtest/gtest.h>

#include "address.h"

namespace rtm {
namespace {

TEST(Address, AngleBracketsAndCaseKept) {
    AddressParse p = parse_envelope_address("<RT+123@Example.COM>");
    ASSERT_TRUE(p.address) << p.error;
    EXPECT_EQ(p.address->local, "RT+123");
    EXPECT_EQ(p.address->domain, "Example.COM");
    EXPECT_EQ(p.address->raw, "<RT+123@Example.COM>");
    EXPECT_EQ(p.address->address(), "RT+123@Example.COM");
}

TEST(Address, WithoutBrackets) {
    AddressParse p = parse_envelope_address("rt@example.com");
    ASSERT_TRUE(p.address);
    EXPECT_EQ(p.address->local, "rt");
}

TEST(Address, NullSender) {
    AddressParse p = parse_envelope_address("<>");
    ASSERT_TRUE(p.address);
    EXPECT_TRUE(p.address->null_sender());
    EXPECT_EQ(p.address->address(), "");
}

TEST(Address, QuotedLocalPart) {
    AddressParse p = parse_envelope_address("<\"john \\\"jd\\\" doe\"@example.com>");
    ASSERT_TRUE(p.address) << p.error;
    EXPECT_EQ(p.address->local, "john \"jd\" doe");
    EXPECT_EQ(p.address->address(), "\"john \\\"jd\\\" doe\"@example.com");
    AddressParse q = parse_envelope_address("<\"rt\"@example.com>");
    ASSERT_TRUE(q.address);
    EXPECT_EQ(q.address->address(), "rt@example.com");  // quotes not needed
}

TEST(Address, SourceRouteIgnored) {
    AddressParse p = parse_envelope_address("<@relay1,@relay2:rt@example.com>");
    ASSERT_TRUE(p.address) << p.error;
    EXPECT_EQ(p.address->local, "rt");
    EXPECT_EQ(p.address->domain, "example.com");
}

TEST(Address, NoDomain) {
    AddressParse p = parse_envelope_address("<postmaster>");
    ASSERT_TRUE(p.address);
    EXPECT_EQ(p.address->local, "postmaster");
    EXPECT_EQ(p.address->domain, "");
}

TEST(Address, Malformed) {
    for (const char* bad : {"<rt@example.com", "<@relay:>", "<\"open@example.com>", "<\"q\"x@example.com>",
                            "<@example.com>", "<rt@>", "<r t@example.com>", "<rt@exa mple.com>", "<rt\x01@example.com>"}) {
        AddressParse p = parse_envelope_address(bad);
        EXPECT_FALSE(p.address) << bad;
        EXPECT_FALSE(p.error.empty()) << bad;
    }
}

TEST(Address, AsciiLower) { EXPECT_EQ(ascii_lower("RT+Ab@EXAMPLE.com\xc3\x84"), "rt+ab@example.com\xc3\x84"); }

}  // namespace
}  // namespace rtm
