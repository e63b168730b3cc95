// auth_results_test.cpp — parse_authentication_results (RFC 8601) on the
// headers real verifiers write (OpenDKIM, OpenDMARC, Gmail, rspamd,
// Microsoft), the grammar's corners (comments with ';' and nested
// parentheses, quoted strings, versions, "none", folding), and what must
// fail the whole header (unterminated comment or quote, control bytes, a
// result without '=', too long).
#include <gtest/gtest.h>

#include "auth_results.h"

namespace rtm {
namespace {

AuthResults parsed(std::string_view value) {
    AuthResultsParse p = parse_authentication_results(value);
    EXPECT_TRUE(p.parsed) << value << "\n" << p.error;
    return p.parsed.value_or(AuthResults{});
}

std::string error_of(std::string_view value) {
    AuthResultsParse p = parse_authentication_results(value);
    EXPECT_FALSE(p.parsed) << value;
    return p.error;
}

TEST(AuthResults, OpenDkim) {
    // opendkim.c dkimf_ar_all_sigs: the DNSSEC state inside the comment, after a ';'
    const AuthResults ar = parsed(
        " mx.example.com/4ABC12;\n\tdkim=pass (2048-bit key; secure) header.d=example.org "
        "header.i=@example.org "
        "header.b=Ab+/cd9=");
    EXPECT_EQ(ar.authserv_id, "mx.example.com/4ABC12");
    EXPECT_EQ(ar.version, "");
    ASSERT_EQ(ar.results.size(), 1u);
    const AuthResult& r = ar.results[0];
    EXPECT_EQ(r.method, "dkim");
    EXPECT_EQ(r.result, "pass");
    ASSERT_EQ(r.properties.size(), 3u);
    EXPECT_EQ(*r.property("header", "d"), "example.org");
    EXPECT_EQ(*r.property("header", "i"), "@example.org");
    EXPECT_EQ(*r.property("header", "b"), "Ab+/cd9=");
    EXPECT_EQ(r.property("header", "from"), nullptr);
}

TEST(AuthResults, OpenDmarc) {
    const AuthResults ar =
        parsed("mx.example.com; dmarc=pass (p=reject dis=none) header.from=example.org");
    EXPECT_EQ(ar.authserv_id, "mx.example.com");
    ASSERT_EQ(ar.results.size(), 1u);
    EXPECT_EQ(ar.results[0].method, "dmarc");
    EXPECT_EQ(ar.results[0].result, "pass");
    EXPECT_EQ(*ar.results[0].property("header", "from"), "example.org");
}

TEST(AuthResults, GmailSeveralResults) {
    const AuthResults ar = parsed(
        "mx.google.com;\r\n       dkim=pass header.i=@gmail.com header.s=20230601 "
        "header.b=KsWm2mLM;\r\n"
        "       spf=pass (google.com: domain of alice@gmail.com designates 209.85.220.41 as "
        "permitted sender) "
        "smtp.mailfrom=alice@gmail.com;\r\n       dmarc=pass (p=NONE sp=QUARANTINE dis=NONE) "
        "header.from=gmail.com");
    ASSERT_EQ(ar.results.size(), 3u);
    EXPECT_EQ(ar.results[0].method, "dkim");
    EXPECT_EQ(*ar.results[0].property("header", "i"), "@gmail.com");
    EXPECT_EQ(ar.results[1].method, "spf");
    EXPECT_EQ(*ar.results[1].property("smtp", "mailfrom"), "alice@gmail.com");
    EXPECT_EQ(ar.results[2].method, "dmarc");
    EXPECT_EQ(*ar.results[2].property("header", "from"), "gmail.com");
}

TEST(AuthResults, MicrosoftExtensionsAreSkipped) {
    // no authserv-id as the RFC wants one, "action=none", "reason=100"
    const AuthResults ar = parsed(
        "mx.example.com; dkim=pass (signature was verified) header.d=example.org;dmarc=pass "
        "action=none "
        "header.from=example.org;compauth=pass reason=100");
    ASSERT_EQ(ar.results.size(), 3u);
    EXPECT_EQ(*ar.results[1].property("header", "from"), "example.org");
    EXPECT_EQ(ar.results[1].properties.size(), 1u);
    EXPECT_EQ(ar.results[2].reason, "100");
}

TEST(AuthResults, VersionsReasonQuotesAndCase) {
    const AuthResults ar = parsed(
        "\"mx.example.com\" 1; DKIM / 1 = PASS reason=\"good; really\" Header . D = Example.ORG "
        "smtp.mailfrom=\"a b\"@example.org");
    EXPECT_EQ(ar.authserv_id, "mx.example.com");
    EXPECT_EQ(ar.version, "1");
    ASSERT_EQ(ar.results.size(), 1u);
    const AuthResult& r = ar.results[0];
    EXPECT_EQ(r.method, "dkim");
    EXPECT_EQ(r.method_version, "1");
    EXPECT_EQ(r.result, "pass");
    EXPECT_EQ(r.reason, "good; really");
    EXPECT_EQ(*r.property("header", "d"), "Example.ORG");
    EXPECT_EQ(*r.property("smtp", "mailfrom"), "a b@example.org");
}

TEST(AuthResults, NoneAndTrailingSemicolon) {
    EXPECT_TRUE(parsed("mx.example.com; none").results.empty());
    EXPECT_TRUE(parsed("mx.example.com 1; none (nothing checked)").results.empty());
    EXPECT_EQ(parsed("mx.example.com; dkim=none;").results.size(), 1u);
}

// What hides in comments and quoted strings is not a result.
TEST(AuthResults, CommentsAndQuotesHideNothing) {
    const AuthResults ar = parsed(
        "(a (nested; dmarc=pass) comment) mx.example.com (x); dkim=fail (dkim=pass "
        "header.d=example.org) "
        "header.d=example.net reason=\"; dmarc=pass header.from=example.org\"");
    ASSERT_EQ(ar.results.size(), 1u);
    EXPECT_EQ(ar.results[0].result, "fail");
    EXPECT_EQ(*ar.results[0].property("header", "d"), "example.net");
    EXPECT_EQ(parsed("mx (\\) still a comment; dmarc=pass); spf=pass").results.size(), 1u);
}

TEST(AuthResults, MalformedFailsWhole) {
    EXPECT_EQ(error_of("mx.example.com; dkim=pass (unterminated"),
              "at byte 39: unterminated comment");
    EXPECT_EQ(error_of("mx.example.com; dkim=pass reason=\"open"),
              "at byte 38: unterminated quoted string");
    EXPECT_EQ(error_of("mx.example.com; dkim pass"),
              "at byte 21: expected '=' after the method \"dkim\"");
    EXPECT_EQ(error_of("mx.example.com; dkim="), "at byte 21: expected a result after \"dkim=\"");
    EXPECT_EQ(error_of("mx.example.com; dkim=pass header.d"),
              "at byte 34: expected '=' after \"header.d\"");
    EXPECT_EQ(error_of("mx.example.com; dkim=pass header.d="), "at byte 35: expected a value");
    EXPECT_EQ(error_of("mx.example.com; dkim=pass header"),
              "at byte 32: expected '.' or '=' after \"header\"");
    EXPECT_EQ(error_of("mx.example.com dkim=pass"), "at byte 15: expected ';'");
    EXPECT_EQ(error_of("mx.example.com"),
              "at byte 14: no results (not even \"none\") after the authserv-id");
    EXPECT_EQ(error_of("; dkim=pass"), "at byte 0: expected a value");
    EXPECT_EQ(error_of(""), "at byte 0: expected a value");
    EXPECT_EQ(error_of("mx.example.com; dkim=pass\x01 header.d=x"),
              "at byte 25: control character");
    EXPECT_EQ(error_of("mx.example.com; dkim=pass )"), "at byte 26: expected ptype.property=value");
    EXPECT_EQ(error_of("mx.example.com; dkim/=pass"),
              "at byte 21: expected a method version after '/'");
    EXPECT_EQ(error_of(std::string(max_auth_results_bytes + 1, 'a')), "longer than 16384 bytes");
    std::string deep = "mx.example.com " + std::string(65, '(') + std::string(65, ')') + "; none";
    EXPECT_EQ(error_of(deep), "at byte 80: comments nested too deep");
}

}  // namespace
}  // namespace rtm
