// routing_test.cpp — recipient → Target: exact then base address, the
// delimiter set, case, extension modes and their allow-lists, and the
// prefix put before the posted message.
#include <gtest/gtest.h>

#include "milter_fixtures.h"
#include "routing.h"

namespace rtm {
namespace {

using Kind = RouteDecision::Kind;

class Routing : public ::testing::Test {
protected:
    Config config = testing::make_config("http://rt.test");
    RouteDecision route(const std::string& raw) {
        table.emplace(config);
        AddressParse p = parse_envelope_address(raw);
        EXPECT_TRUE(p.address) << raw;
        return table->route(*p.address);
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
    EXPECT_EQ(route("<rt>").kind, Kind::NotRt);
    EXPECT_EQ(route("<+rt@example.com>").kind, Kind::NotRt);
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
