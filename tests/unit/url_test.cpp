// url_test.cpp — redact_url(): passwords masked, everything else untouched.
#include <gtest/gtest.h>

#include "url.h"

namespace rtm {
namespace {

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
    for (const char* url : {"", "https://rt.example.com", "https://rt.example.com:443/a:b@c",
                            "http://user@host/", "http://user:@host/", "http://host/?u=a:b@c",
                            "http://host#a:b@c", "not a url: x:y@z", "u:p@host", "://u:p@h",
                            "1http://u:p@h", "http://[::1]:80/", "mailto:a:b@c"}) {
        EXPECT_EQ(redact_url(url), url);
    }
}

}  // namespace
}  // namespace rtm
