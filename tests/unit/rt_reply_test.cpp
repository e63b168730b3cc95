// rt_reply_test.cpp — reply classification as RT's Perl rt-mailgate does it
// (Debian 12's rt-mailgate-5, RT 5.0.3): each kind of answer RT's gateway
// gives (ok, not ok, temporary failure, other text, non-2xx, none), with
// the edge cases numbered C1–C9 (leading space, "okay", upper case, empty
// bodies, 3xx, no answer).
#include <gtest/gtest.h>

#include "rt_reply.h"

namespace rtm {
namespace {

using Kind = RtReply::Kind;

struct Row {
    const char* name;
    long status;
    const char* body;
    Kind expected;
};

void PrintTo(const Row& row, std::ostream* os) {
    *os << row.name;
}

class ClassifyHttp : public testing::TestWithParam<Row> {};

TEST_P(ClassifyHttp, MatchesRtMailgate) {
    const Row& row = GetParam();
    RtReply r = classify_http(row.status, "Reason", row.body);
    EXPECT_EQ(to_string(r.kind), to_string(row.expected)) << row.name;
    EXPECT_EQ(r.http_status, row.status);
    EXPECT_EQ(r.body, row.body);
}

INSTANTIATE_TEST_SUITE_P(
    Matrix, ClassifyHttp,
    testing::Values(
        Row{"C1_ok", 200, "ok\n", Kind::Delivered},
        Row{"ok_with_devel_lines", 200, "ok\nTicket: 42\nQueue: bugs\n", Kind::Delivered},
        Row{"C2_not_ok", 200, "not ok - operation unsuccessful\n", Kind::Refused},
        Row{"not_ok_devel_reason", 200, "not ok - Permission Denied: x\n", Kind::Refused},
        Row{"C3_temporary", 200, "temporary failure - operation unsuccessful\n", Kind::Temporary},
        Row{"C4_html", 200, "<html><body>Login</body></html>", Kind::Temporary},
        Row{"C4_empty", 200, "", Kind::Temporary},
        Row{"C5_leading_space", 200, " ok\n", Kind::Temporary},
        Row{"C6_okay_prefix", 200, "okay fine", Kind::Delivered},
        Row{"OK_upper_case", 200, "OK\n", Kind::Temporary},
        Row{"not_ok_without_dash", 200, "not ok", Kind::Refused},
        Row{"nok", 200, "nok\n", Kind::Temporary}, Row{"other_2xx", 204, "ok\n", Kind::Delivered},
        Row{"C7_500", 500, "ok\n", Kind::Temporary},
        Row{"C7_404", 404, "not ok\n", Kind::Temporary},
        Row{"redirect_not_followed", 302, "ok\n", Kind::Temporary},
        Row{"informational", 100, "ok\n", Kind::Temporary}),
    [](const testing::TestParamInfo<Row>& info) { return std::string(info.param.name); });

TEST(RtReply, NonSuccessStatusLineNamesCodeAndReason) {
    RtReply r = classify_http(500, "Internal Server Error", "boom");
    EXPECT_EQ(r.status_line, "500 Internal Server Error");
    EXPECT_EQ(r.summary(), "HTTP request failed: 500 Internal Server Error");
}

TEST(RtReply, SummaryQuotesRtsFirstLinePrintably) {
    RtReply r =
        classify_http(200, "OK", "temporary failure - RT couldn't find the queue: x\r\nmore");
    EXPECT_EQ(r.summary(), "RT said: temporary failure - RT couldn't find the queue: x ...");
    RtReply binary = classify_http(200, "OK", std::string("\x01\x02ok\xff", 5));
    EXPECT_EQ(binary.kind, Kind::Temporary);
    EXPECT_EQ(binary.summary(), "RT said: ??ok?");
}

TEST(RtReply, BodyIsBounded) {
    std::string huge = "ok" + std::string(RtReply::max_body * 2, 'x');
    RtReply r = classify_http(200, "OK", huge);
    EXPECT_EQ(r.kind, Kind::Delivered);
    EXPECT_EQ(r.body.size(), RtReply::max_body);
    EXPECT_LT(r.summary().size(), 300u);
}

// C8, C9: no answer at all is always temporary, and marks reachability.
TEST(RtReply, TransportFailureIsTemporary) {
    RtReply refused = classify_transport_failure("Failed to connect (Connection refused)");
    EXPECT_EQ(refused.kind, Kind::Temporary);
    EXPECT_TRUE(refused.unreachable);
    EXPECT_EQ(refused.http_status, 0);
    EXPECT_EQ(refused.summary(), "HTTP request failed: Failed to connect (Connection refused)");
    RtReply reset = classify_transport_failure("Recv failure: Connection reset by peer", false);
    EXPECT_EQ(reset.kind, Kind::Temporary);
    EXPECT_FALSE(reset.unreachable);
}

TEST(RtReply, PrintableLineCutsLongText) {
    std::string s = printable_line(std::string(500, 'a'), 10);
    EXPECT_EQ(s, "aaaaaaaaaa...");
    EXPECT_EQ(printable_line("a\tb"), "a b");
    EXPECT_EQ(printable_line("line\n"), "line");
}

}  // namespace
}  // namespace rtm
