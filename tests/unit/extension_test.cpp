// extension_test.cpp — the $EXTENSION / --extension matrix of RT's Perl
// rt-mailgate (setup_session in Debian 12's rt-mailgate-5, RT 5.0.3), row by
// row: the form fields sent and the header prepended.
#include <gtest/gtest.h>

#include "mailgate.h"

namespace rtm {
namespace {

using Fields = std::vector<FormField>;
constexpr std::nullopt_t unset = std::nullopt;

ExtensionPlan plan(const std::vector<std::string>& args, std::optional<std::string> env) {
    return plan_extension(parse_mailgate_args(args), env);
}

TEST(Extension, NoEnvQueueAndAction) {
    ExtensionPlan p = plan({"--queue", "General", "--action", "correspond"}, unset);
    EXPECT_EQ(p.fields, (Fields{{"queue", "General"}, {"action", "correspond"}}));
    EXPECT_EQ(p.header, "");
    EXPECT_FALSE(p.warning);
}

TEST(Extension, EnvWithoutExtensionOptionStillAddsHeader) {
    ExtensionPlan p = plan({"--queue", "General"}, "foo");
    EXPECT_EQ(p.fields, (Fields{{"queue", "General"}}));
    EXPECT_EQ(p.header, "X-RT-Mail-Extension: foo\n");
}

TEST(Extension, QueueFromEnv) {
    ExtensionPlan p = plan({"--extension", "queue", "--queue", "General"}, "Support");
    EXPECT_EQ(p.fields, (Fields{{"queue", "Support"}}));
    EXPECT_EQ(p.header, "X-RT-Mail-Extension: Support\n");
}

TEST(Extension, QueueFallsBackToOptionAndHeaderIsTheModeName) {
    for (std::optional<std::string> env :
         {std::optional<std::string>(), std::optional<std::string>("")}) {
        ExtensionPlan p = plan({"--extension", "queue", "--queue", "General"}, env);
        EXPECT_EQ(p.fields, (Fields{{"queue", "General"}}));
        EXPECT_EQ(p.header, "X-RT-Mail-Extension: queue\n");
    }
}

TEST(Extension, TicketFromEnv) {
    ExtensionPlan p = plan({"--extension", "ticket"}, "123");
    EXPECT_EQ(p.fields, (Fields{{"ticket", "123"}}));
    EXPECT_EQ(p.header, "X-RT-Mail-Extension: 123\n");
}

TEST(Extension, TicketWithoutEnvOrZeroSendsEmptyField) {
    for (std::optional<std::string> env :
         {std::optional<std::string>(), std::optional<std::string>("0")}) {
        ExtensionPlan p = plan({"--extension", "ticket"}, env);
        EXPECT_EQ(p.fields, (Fields{{"ticket", ""}}));
        EXPECT_EQ(p.header, "X-RT-Mail-Extension: ticket\n");
    }
}

TEST(Extension, ActionFromEnvOverridesOption) {
    ExtensionPlan p = plan({"--extension", "action", "--action", "correspond"}, "comment");
    EXPECT_EQ(p.fields, (Fields{{"action", "comment"}}));
    EXPECT_EQ(p.header, "X-RT-Mail-Extension: comment\n");
}

TEST(Extension, MixedCaseModeWithEnv) {
    ExtensionPlan p = plan({"--extension", "Queue"}, "Support");
    EXPECT_EQ(p.fields, (Fields{{"queue", "Support"}}));
    EXPECT_EQ(p.header, "X-RT-Mail-Extension: Support\n");
}

TEST(Extension, MixedCaseModeWithoutEnvSendsEmptyQueue) {
    ExtensionPlan p = plan({"--extension", "Queue", "--queue", "General"}, unset);
    EXPECT_EQ(p.fields, (Fields{{"queue", ""}}));
    EXPECT_EQ(p.header, "X-RT-Mail-Extension: Queue\n");
}

TEST(Extension, OtherModeWithEnvWarnsAndAddsNoField) {
    ExtensionPlan p = plan({"--extension", "bar"}, "foo");
    EXPECT_EQ(p.fields, Fields{});
    EXPECT_EQ(p.header, "X-RT-Mail-Extension: foo\n");
    ASSERT_TRUE(p.warning);
    EXPECT_NE(p.warning->find("The former is ignored."), std::string::npos);
}

TEST(Extension, OtherModeWithoutEnvUsesModeAsHeader) {
    ExtensionPlan p = plan({"--extension", "some-extension-arg"}, unset);
    EXPECT_EQ(p.fields, Fields{});
    EXPECT_EQ(p.header, "X-RT-Mail-Extension: some-extension-arg\n");
    EXPECT_FALSE(p.warning);
}

TEST(Extension, NewlinesAreStrippedAtTheEndAndFoldedInside) {
    EXPECT_EQ(plan({}, "bad value with\nnewlines\n").header,
              "X-RT-Mail-Extension: bad value with\n\tnewlines\n");
    EXPECT_EQ(plan({}, "a\r\nb").header, "X-RT-Mail-Extension: a\r\n\tb\n");
    EXPECT_EQ(plan({}, "a\r\n\r\n").header, "X-RT-Mail-Extension: a\n");
    EXPECT_EQ(plan({}, "a\r").header, "X-RT-Mail-Extension: a\r\n");  // no LF at the end: kept
    EXPECT_EQ(plan({}, "\n").header, "X-RT-Mail-Extension: \n");      // true before stripping
}

TEST(Extension, ZeroIsFalseAsInPerl) {
    EXPECT_EQ(plan({}, "0").header, "");
    EXPECT_EQ(plan({}, "").header, "");
    EXPECT_EQ(plan({"--extension", "0"}, unset).header, "");
}

}  // namespace
}  // namespace rtm
