// mailgate_args_test.cpp — rt-mailgate's option parsing follows Getopt::Long
// as RT's Perl script configures it (cases observed with perl 5.36).
#include <gtest/gtest.h>

#include "mailgate.h"

namespace rtm {
namespace {

MailgateOptions parse(std::vector<std::string> args) {
    return parse_mailgate_args(args);
}

TEST(MailgateArgs, LongOptionsTakeNextWordOrEquals) {
    MailgateOptions o = parse({"--url", "http://rt", "--queue=General", "-action", "comment"});
    EXPECT_EQ(o.url, "http://rt");
    EXPECT_EQ(o.queue, "General");
    EXPECT_EQ(o.action, "comment");
    EXPECT_TRUE(o.warnings.empty());
}

TEST(MailgateArgs, CaseInsensitiveAndAbbreviated) {
    MailgateOptions o = parse({"--URL", "x", "-u", "y", "--q", "A", "--act", "B", "--e", "ticket",
                               "--t", "5", "--c", "f"});
    EXPECT_EQ(o.url, "y");  // the last one wins
    EXPECT_EQ(o.queue, "A");
    EXPECT_EQ(o.action, "B");
    EXPECT_EQ(o.extension, "ticket");
    EXPECT_EQ(o.timeout, 5);
    EXPECT_EQ(o.ca_file, "f");
}

TEST(MailgateArgs, AllowRedirectHostRepeatsAndShadowsNoOriginalAbbreviation) {
    MailgateOptions o =
        parse({"--allow-redirect-host", "rt2.example.com", "--allow-redirect-host=RT3", "--allow-r",
               "a", "--allow-redirect-host="});
    EXPECT_EQ(o.redirect_hosts, (std::vector<std::string>{"rt2.example.com", "RT3", "a"}));
    EXPECT_EQ(o.warnings,
              std::vector<std::string>{"Option allow-redirect-host requires an argument"});
    // Spellings the original takes mean what they meant there.
    MailgateOptions a = parse({"-a", "comment", "--A", "take"});
    EXPECT_EQ(a.action, "take");
    EXPECT_TRUE(a.redirect_hosts.empty());
    EXPECT_TRUE(a.warnings.empty());
}

TEST(MailgateArgs, StringOptionTakesNextWordEvenIfItLooksLikeAnOption) {
    MailgateOptions o = parse({"--queue", "--action"});
    EXPECT_EQ(o.queue, "--action");
    EXPECT_FALSE(o.action);
}

TEST(MailgateArgs, MissingArgumentWarns) {
    EXPECT_EQ(parse({"--queue"}).warnings,
              std::vector<std::string>{"Option queue requires an argument"});
    MailgateOptions o = parse({"--url="});
    EXPECT_FALSE(o.url);
    EXPECT_EQ(o.warnings, std::vector<std::string>{"Option url requires an argument"});
}

TEST(MailgateArgs, TimeoutMustBeAnInteger) {
    MailgateOptions bad = parse({"--timeout", "abc"});
    EXPECT_FALSE(bad.timeout);
    EXPECT_EQ(bad.warnings, std::vector<std::string>{
                                "Value \"abc\" invalid for option timeout (number expected)"});
    EXPECT_TRUE(bad.arguments.empty());  // the bad value is consumed
    EXPECT_FALSE(parse({"--timeout", "5x"}).timeout);
    EXPECT_FALSE(parse({"--timeout", "0x1"}).timeout);
    EXPECT_EQ(parse({"--timeout=+5"}).timeout, 5);
    EXPECT_EQ(parse({"--timeout", "-3"}).timeout, -3);
    MailgateOptions keep = parse({"--timeout", "12", "--timeout", "x"});
    EXPECT_EQ(keep.timeout, 12);
}

TEST(MailgateArgs, VerifySslIsNegatable) {
    EXPECT_EQ(parse({"--no-verify-ssl"}).verify_ssl, false);
    EXPECT_EQ(parse({"--noverify-ssl"}).verify_ssl, false);
    EXPECT_EQ(parse({"--nO-Verify-ssl"}).verify_ssl, false);
    EXPECT_EQ(parse({"--no"}).verify_ssl, false);
    EXPECT_EQ(parse({"--verify-ssl"}).verify_ssl, true);
    EXPECT_EQ(parse({"--ve"}).verify_ssl, true);
    EXPECT_FALSE(parse({}).verify_ssl);
}

TEST(MailgateArgs, FlagsTakeNoValue) {
    MailgateOptions o = parse({"--help=1", "--verify-ssl=1", "-debug", "--h"});
    EXPECT_TRUE(o.help);
    EXPECT_TRUE(o.debug);
    EXPECT_FALSE(o.verify_ssl);
    EXPECT_EQ(o.warnings,
              (std::vector<std::string>{"Option help does not take an argument",
                                        "Option verify-ssl does not take an argument"}));
}

TEST(MailgateArgs, UnknownOptionsWarnAndAreSkipped) {
    MailgateOptions o =
        parse({"--BOGUS", "x", "--ca_file", "y", "---url", "z", "-?", "--url", "u"});
    EXPECT_EQ(o.url, "u");
    EXPECT_EQ(o.warnings,
              (std::vector<std::string>{"Unknown option: bogus", "Unknown option: ca_file",
                                        "Unknown option: -url", "Unknown option: ?"}));
    EXPECT_EQ(o.arguments, (std::vector<std::string>{"x", "y", "z"}));
}

TEST(MailgateArgs, DoubleDashEndsOptions) {
    MailgateOptions o = parse({"foo", "--", "--url", "y", "-"});
    EXPECT_FALSE(o.url);
    EXPECT_EQ(o.arguments, (std::vector<std::string>{"foo", "--url", "y", "-"}));
}

TEST(MailgateArgs, JarIsAccepted) {
    MailgateOptions o = parse({"--jar", "cookies"});
    EXPECT_EQ(o.jar, "cookies");
    EXPECT_TRUE(o.warnings.empty());
}

TEST(MailgateArgs, PerlTruth) {
    EXPECT_FALSE(perl_true(std::nullopt));
    EXPECT_FALSE(perl_true(std::string("")));
    EXPECT_FALSE(perl_true(std::string("0")));
    EXPECT_TRUE(perl_true(std::string("00")));
    EXPECT_TRUE(perl_true(std::string(" ")));
}

}  // namespace
}  // namespace rtm
