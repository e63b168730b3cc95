// url_test.cpp — parse_http_url(), the redirect rule (issue 9, finding 8)
// and redact_url(): passwords masked, everything else untouched.
#include <gtest/gtest.h>

#include "url.h"

namespace rtm {
namespace {

TEST(ParseHttpUrl, AbsoluteHttpAndHttpsOnly) {
    HttpUrl u = parse_http_url("HTTPS://RT.Example.com:8443/rt?x#y");
    ASSERT_TRUE(u) << u.error;
    EXPECT_EQ(u.scheme, "https");
    EXPECT_EQ(u.host, "RT.Example.com");
    EXPECT_EQ(parse_http_url("http://u:p@[::1]:80/").host, "[::1]");
    for (const char* bad : {"/REST/1.0/NoAuth/mail-gateway", "rt.example.com", "//rt.example.com/x",
                            "ftp://rt.example.com/", "http:/rt.example.com", "http:rt", ""}) {
        EXPECT_EQ(parse_http_url(bad).error, "URL must be absolute (http:// or https://)") << bad;
    }
    EXPECT_EQ(parse_http_url("http://exa mple.com/").error, "not a valid URL: Bad hostname");
    EXPECT_EQ(parse_http_url("http://").error, "not a valid URL: No host part in the URL");
}

std::string refusal(const char* origin, const char* from, const char* to,
                    std::vector<std::string> allowed = {}) {
    return redirect_refusal(parse_http_url(origin), parse_http_url(from), parse_http_url(to),
                            allowed);
}

TEST(RedirectRule, SameHostAnyPortWithoutDowngradeIsFollowed) {
    EXPECT_EQ(refusal("https://rt.example.com", "https://rt.example.com",
                      "https://RT.example.COM:8443/x"),
              "");
    EXPECT_EQ(refusal("http://rt.example.com", "http://rt.example.com", "https://rt.example.com/x"),
              "");
    EXPECT_EQ(refusal("http://127.0.0.1:1", "http://127.0.0.1:1", "http://127.0.0.1:2/x"), "");
}

TEST(RedirectRule, HttpsToHttpIsRefusedEvenToAnAllowedHost) {
    EXPECT_EQ(
        refusal("https://rt.example.com", "https://rt.example.com", "http://rt.example.com/x"),
        "from https to http, the message would travel unencrypted");
    // An upgrade on the way does not make a later downgrade fine.
    EXPECT_NE(refusal("http://rt.example.com", "https://rt.example.com", "http://rt.example.com/x"),
              "");
    EXPECT_NE(refusal("https://a", "https://a", "http://b/", {"b"}), "");
}

TEST(RedirectRule, AnotherHostOnlyWhenAllowed) {
    EXPECT_EQ(
        refusal("https://rt.example.com", "https://rt.example.com", "https://rt2.example.com/x"),
        "to another host than rt.example.com, not one allowed for redirects");
    EXPECT_EQ(refusal("https://rt.example.com", "https://rt.example.com",
                      "https://Rt2.Example.com/x", {"other", "rt2.EXAMPLE.com"}),
              "");
    EXPECT_NE(
        refusal("https://rt.example.com", "https://rt.example.com", "https://rt.example.com./x"),
        "")
        << "exact names only";
    EXPECT_NE(refusal("https://rt.example.com", "https://rt.example.com", "https://example.com/x",
                      {"rt.example.com"}),
              "");
    EXPECT_EQ(refusal("http://[::1]:1", "http://[::1]:1", "http://[::1]:2/"), "");
    EXPECT_EQ(refusal("http://a", "http://a", "http://[::1]:2/", {"::1"}), "");
    // Hosts count against the first URL: a chain cannot walk away from it.
    EXPECT_NE(refusal("http://a", "http://b", "http://c/", {"b"}), "");
    EXPECT_EQ(refusal("http://a", "http://b", "http://a/", {"b"}), "");
}

TEST(RedactUrl, MasksThePasswordAndKeepsTheUser) {
    EXPECT_EQ(redact_url("https://rt:s3cret@rt.example.com/REST/1.0/NoAuth/mail-gateway"),
              "https://rt:***@rt.example.com/REST/1.0/NoAuth/mail-gateway");
    EXPECT_EQ(redact_url("http://u:p@127.0.0.1:8080"), "http://u:***@127.0.0.1:8080");
    EXPECT_EQ(redact_url("HTTP://u:p@h?q=1#f"), "HTTP://u:***@h?q=1#f");
    EXPECT_EQ(redact_url("http://:p@h/"), "http://:***@h/");
}

TEST(RedactUrl, PasswordsWithDelimitersAreMaskedWhole) {
    EXPECT_EQ(redact_url("http://u:a:b@c@host/x@y"), "http://u:***@host/x@y");
    EXPECT_EQ(redact_url("http://u:%40%3A@h/"), "http://u:***@h/");
}

TEST(RedactUrl, AnythingElseIsUnchanged) {
    for (const char* url :
         {"", "https://rt.example.com", "https://rt.example.com:443/a:b@c", "http://user@host/",
          "http://user:@host/", "http://host/?u=a:b@c", "http://host#a:b@c", "not a url: x:y@z",
          "u:p@host", "://u:p@h", "1http://u:p@h", "http://[::1]:80/", "mailto:a:b@c"}) {
        EXPECT_EQ(redact_url(url), url);
    }
}

// Where a locked gateway's credentials may go: the same scheme, host (any
// case, brackets or not) and port (an explicit default port is the same).
TEST(SameOrigin, SchemeHostAndPort) {
    auto same = [](const char* a, const char* b) {
        return same_origin(parse_http_url(a), parse_http_url(b));
    };
    EXPECT_TRUE(same("https://rt.example.com/a", "https://RT.example.com:443/b?c"));
    EXPECT_TRUE(same("http://rt.example.com", "http://rt.example.com:80/x"));
    EXPECT_TRUE(same("https://[::1]:8443/", "https://[::1]:8443/REST"));
    EXPECT_FALSE(same("https://rt.example.com", "http://rt.example.com"));
    EXPECT_FALSE(same("https://rt.example.com", "https://rt.example.com:8443"));
    EXPECT_FALSE(same("https://rt.example.com", "https://rt2.example.com"));
    EXPECT_FALSE(same("https://127.0.0.1", "https://localhost"));
}

TEST(BareHost, IPv6WithoutBrackets) {
    EXPECT_EQ(bare_host(parse_http_url("http://[::1]:8080/").host), "::1");
    EXPECT_EQ(bare_host("rt.example.com"), "rt.example.com");
    EXPECT_EQ(bare_host("127.0.0.1"), "127.0.0.1");
}

}  // namespace
}  // namespace rtm
