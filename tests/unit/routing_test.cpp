// routing_test.cpp — recipient → Target: exact then base address, the
// delimiter set, case, extension modes and their allow-lists, and the
// prefix put before the posted message; the address forms an MTA rewrites
// into an RT address (refused), and what makes two recipients one target.
#include <gtest/gtest.h>

#include "milter_fixtures.h"
#include "routing.h"

namespace rtm {
namespace {

using Kind = RouteDecision::Kind;

class Routing : public ::testing::Test {
  protected:
    Config config = testing::make_config("http://rt.test");
    RouteDecision route(const std::string& raw, const std::string& mta_resolved = "") {
        table.emplace(config);
        AddressParse p = parse_envelope_address(raw);
        EXPECT_TRUE(p.address) << raw;
        return table->route(*p.address, mta_resolved);
    }
    std::optional<RouteTable> table;
};

TEST_F(Routing, ExactAddressIsCaseInsensitive) {
    RouteDecision d = route("<RT@Example.COM>");
    ASSERT_EQ(d.kind, Kind::Routed);
    EXPECT_EQ(d.target.url, "http://rt.test");
    EXPECT_EQ(d.target.queue, "General");
    EXPECT_EQ(d.target.action, "correspond");
    EXPECT_FALSE(d.target.ticket);
    EXPECT_EQ(d.extension, "");
}

TEST_F(Routing, OtherAddressesAreNotRt) {
    EXPECT_EQ(route("<bob@example.com>").kind, Kind::NotRt);
    EXPECT_EQ(route("<rt@example.org>").kind, Kind::NotRt);
    EXPECT_EQ(route("<+rt@example.com>").kind, Kind::NotRt);
}

// Finding 6 of the hostile review: Postfix's trivial-rewrite turns these into
// a@example.com forms after the milter has looked at them; as written they
// used to pass as "not RT" and reached RT through the fallback, past the
// allow-lists, the verdict and the journal.
TEST_F(Routing, FormsTheMtaRewritesIntoAnRtAddressAreRefused) {
    for (const char* raw :
         {"<example.com!a+take>",                  // bang path
          "<a+take%example.com@[127.0.0.1]>",      // percent hack at an address literal
          "<a+take%example.com@localhost>",        // percent hack at another local name
          "<\"a+take@example.com\"@[127.0.0.1]>",  // a quoted '@'
          "<other.example!example.com!rt>",        // a longer bang path
          "<rt>",                                  // no domain: the MTA appends its own
          "<rt+1@[192.0.2.1]>"}) {                 // an address literal
        RouteDecision d = route(raw);
        EXPECT_EQ(d.kind, Kind::Refused) << raw;
        EXPECT_EQ(d.rcode, "550") << raw;
        EXPECT_EQ(d.xcode, "5.1.3") << raw;
    }
    EXPECT_EQ(
        route("<a+take%example.com@[127.0.0.1]>").text,
        "<a+take%example.com@[127.0.0.1]>: this form of an RT address is not accepted; send to "
        "<a+take@example.com> itself");
}

TEST_F(Routing, WhatTheMtaResolvedItToCountsToo) {
    // Postfix's {rcpt_addr} is trivial-rewrite's result: a bare local part
    // with $myorigin appended, for one.
    EXPECT_EQ(route("<a+take@mx.example.net>", "a+take@example.com").kind, Kind::Refused);
    EXPECT_EQ(route("<bob@mx.example.net>", "bob@mx.example.net").kind, Kind::NotRt);
    // the same address, resolved to itself: routed as usual
    EXPECT_EQ(route("<rt@example.com>", "rt@example.com").kind, Kind::Routed);
}

TEST_F(Routing, ATrailingDotIsTheSameDomain) {
    RouteDecision d = route("<a+take@example.com.>");
    ASSERT_EQ(d.kind, Kind::Refused);  // the allow-list applies as for the plain form
    EXPECT_EQ(d.xcode, "5.7.1");
    EXPECT_EQ(route("<rt@example.com..>").kind, Kind::Routed);
}

TEST_F(Routing, OtherAddressesWithTheseFormsAreNotOurs) {
    EXPECT_EQ(route("<bob%example.org@localhost>").kind, Kind::NotRt);
    EXPECT_EQ(route("<example.org!rt>").kind, Kind::NotRt);
    EXPECT_EQ(route("<bob>").kind, Kind::NotRt);
    EXPECT_EQ(route("<bob@[192.0.2.1]>").kind, Kind::NotRt);
}

TEST(RewrittenByMta, FollowsPostfixOrder) {
    auto rewrite = [](const std::string& raw) {
        std::optional<EnvelopeAddress> a = rewritten_by_mta(*parse_envelope_address(raw).address);
        return a ? a->address() : std::string("(none)");
    };
    EXPECT_EQ(rewrite("<a%b%c@d>"), "a%b@c");
    EXPECT_EQ(rewrite("<b!a>"), "a@b");
    EXPECT_EQ(rewrite("<a@b>"), "(none)");
    EXPECT_EQ(rewrite("<!!!>"), "(none)");
}

// Finding 4: an extension the route does not use does not make a new target.
TEST_F(Routing, AnUnusedExtensionMakesNoNewTarget) {
    const RouteDecision one = route("<rt+1@example.com>");
    const RouteDecision two = route("<rt+2@example.com>");
    ASSERT_EQ(one.kind, Kind::Routed);
    ASSERT_EQ(two.kind, Kind::Routed);
    EXPECT_EQ(one.extension, "1");
    EXPECT_EQ(target_key(one), target_key(two));
    EXPECT_NE(target_key(route("<ticket+1@example.com>")),
              target_key(route("<ticket+2@example.com>")));
}

TEST_F(Routing, ExactMatchBeatsSplitting) {
    config.recipient_delimiter = "-+";
    RouteDecision d = route("<rt-comment@example.com>");
    ASSERT_EQ(d.kind, Kind::Routed);
    EXPECT_EQ(d.route->address, "rt-comment@example.com");
    EXPECT_EQ(d.target.action, "comment");
    EXPECT_EQ(d.extension, "");
}

TEST_F(Routing, ExtensionOnAPlainRouteOnlyAddsTheHeader) {
    RouteDecision d = route("<rt+Urgent@example.com>");
    ASSERT_EQ(d.kind, Kind::Routed);
    EXPECT_EQ(d.route->address, "rt@example.com");
    EXPECT_EQ(d.extension, "Urgent");  // case kept
    EXPECT_EQ(d.target.queue, "General");
}

TEST_F(Routing, DelimiterIsASetAndTheFirstMatchSplits) {
    config.recipient_delimiter = "-+";
    RouteDecision d = route("<rt-foo+bar@example.com>");
    ASSERT_EQ(d.kind, Kind::Routed);
    EXPECT_EQ(d.extension, "foo+bar");
    config.recipient_delimiter = "";
    EXPECT_EQ(route("<rt+foo@example.com>").kind, Kind::NotRt);
}

TEST_F(Routing, TicketExtension) {
    RouteDecision d = route("<ticket+123@example.com>");
    ASSERT_EQ(d.kind, Kind::Routed);
    EXPECT_EQ(d.target.ticket, "123");
    RouteDecision plain = route("<ticket@example.com>");
    ASSERT_EQ(plain.kind, Kind::Routed);
    EXPECT_FALSE(plain.target.ticket);
    RouteDecision bad = route("<ticket+12a@example.com>");
    ASSERT_EQ(bad.kind, Kind::Refused);
    EXPECT_EQ(bad.rcode, "550");
    EXPECT_EQ(bad.xcode, "5.1.1");
    EXPECT_EQ(bad.text, "<ticket+12a@example.com>: \"12a\" is not a ticket number");
}

TEST_F(Routing, QueueExtensionUsesTheAllowListsSpelling) {
    RouteDecision d = route("<q+support@example.com>");
    ASSERT_EQ(d.kind, Kind::Routed);
    EXPECT_EQ(d.target.queue, "Support");
    RouteDecision bad = route("<q+Billing@example.com>");
    ASSERT_EQ(bad.kind, Kind::Refused);
    EXPECT_EQ(bad.xcode, "5.1.1");
    EXPECT_NE(bad.text.find("no such queue \"Billing\""), std::string::npos);
    config.routes[3].queues.clear();  // no allow-list: any queue
    EXPECT_EQ(route("<q+Billing@example.com>").target.queue, "Billing");
}

TEST_F(Routing, ActionExtensionAllowList) {
    EXPECT_EQ(route("<a+Comment@example.com>").target.action, "comment");
    RouteDecision take = route("<a+take@example.com>");
    ASSERT_EQ(take.kind, Kind::Refused);
    EXPECT_EQ(take.xcode, "5.7.1");
    EXPECT_NE(take.text.find("action \"take\" is not allowed"), std::string::npos);
}

TEST_F(Routing, PostfixNeverSplitsOwnerAndRequest) {
    config.recipient_delimiter = "-";
    config.routes.push_back(testing::make_route("owner", "example.com"));
    config.routes.push_back(testing::make_route("list", "example.com"));
    EXPECT_EQ(route("<owner-list@example.com>").kind, Kind::NotRt);
    EXPECT_EQ(route("<list-request@example.com>").kind, Kind::NotRt);
    EXPECT_EQ(route("<list-x@example.com>").kind, Kind::Routed);
}

TEST(PostedPrefix, ExtensionThenReturnPath) {
    EXPECT_EQ(posted_prefix("alice@example.org", ""), "Return-Path: <alice@example.org>\n");
    EXPECT_EQ(posted_prefix("", "123"), "X-RT-Mail-Extension: 123\nReturn-Path: <>\n");
}

}  // namespace
}  // namespace rtm
