// address_test.cpp — envelope address parsing as MTAs pass argv[0], and
// split_address, the core it shares with a route's address in the
// configuration (parse_address).
#include <gtest/gtest.h>

#include <utility>

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
    for (const char* bad : {"<rt@example.com", "<@relay:>", "<\"open@example.com>",
                            "<\"q\"x@example.com>", "<@example.com>", "<rt@>", "<r t@example.com>",
                            "<rt@exa mple.com>", "<rt\x01@example.com>"}) {
        AddressParse p = parse_envelope_address(bad);
        EXPECT_FALSE(p.address) << bad;
        EXPECT_FALSE(p.error.empty()) << bad;
    }
}

TEST(Address, MalformedSaysWhy) {
    // The 501 reply's words, one per kind of fault.
    const std::pair<const char*, const char*> cases[] = {
        {"<rt@example.com", "unbalanced angle brackets"},
        {"<@relay>", "source route without ':'"},
        {"<\"open@example.com>", "unterminated quoted local part"},
        {"<\"q\"x@example.com>", "text after the quoted local part"},
        {"<@relay:@example.com>", "empty local part"},
        {"<a@b@example.com>", "invalid character in local part (quote it)"},
        {"<rt@>", "empty domain"},
        {"<rt@exa mple.com>", "invalid character in domain"},
        {"<\"r\x01t\"@example.com>", "control character in address"},
    };
    for (const auto& [raw, error] : cases)
        EXPECT_EQ(parse_envelope_address(raw).error, error) << raw;
}

TEST(SplitAddress, QuotedLocalPartUnquoted) {
    AddressSplit s = split_address("\"a \\\"b\\\\\"@example.com", UnquotedEnd::FirstAt);
    EXPECT_TRUE(s.quoted);
    EXPECT_TRUE(s.closed);
    EXPECT_EQ(s.local, "a \"b\\");
    EXPECT_EQ(s.rest, "@example.com");
    AddressSplit open = split_address("\"a@example.com", UnquotedEnd::FirstAt);
    EXPECT_FALSE(open.closed);
    EXPECT_EQ(open.rest, "");
}

TEST(SplitAddress, UnquotedEndsAtFirstOrLastAt) {
    AddressSplit first = split_address("a@b@example.com", UnquotedEnd::FirstAt);
    EXPECT_FALSE(first.quoted);
    EXPECT_EQ(first.local, "a");
    EXPECT_EQ(first.rest, "@b@example.com");
    AddressSplit last = split_address("a@b@example.com", UnquotedEnd::LastAt);
    EXPECT_EQ(last.local, "a@b");
    EXPECT_EQ(last.rest, "@example.com");
    AddressSplit bare = split_address("postmaster", UnquotedEnd::LastAt);
    EXPECT_EQ(bare.local, "postmaster");
    EXPECT_EQ(bare.rest, "");
}

TEST(SplitAddress, RouteAddressLowerCasedAndBare) {
    std::string local, domain;
    EXPECT_FALSE(parse_address("\"A B\"@Example.COM", local, domain));
    EXPECT_EQ(local, "a b");
    EXPECT_EQ(domain, "example.com");
    EXPECT_TRUE(
        parse_address("<rt@example.com>", local, domain));    // brackets: envelope syntax only
    EXPECT_TRUE(parse_address("postmaster", local, domain));  // a route needs its domain
    EXPECT_TRUE(parse_address("\"open@example.com", local, domain));
}

TEST(Address, AsciiLower) {
    EXPECT_EQ(ascii_lower("RT+Ab@EXAMPLE.com\xc3\x84"), "rt+ab@example.com\xc3\x84");
}

}  // namespace
}  // namespace rtm
