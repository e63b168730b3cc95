// session_trust_test.cpp — the trust policy through Session, a fake MTA and
// a scripted RT behind the RT seam (fake_poster.h, no socket): what RT receives (the action field)
// for a proven sender (SMTP AUTH, a trusted network, an IPv4-mapped client, trusted DMARC/DKIM
// results with this message's queue id) and for an unproven one
// (downgraded; refused at RCPT when nothing later could prove it, else at
// end of message, per route), the proof= of the log line, and the journal
// telling a downgraded take from a proven one.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "fake_poster.h"
#include "milter_fixtures.h"
#include "session.h"

namespace rtm {
namespace {

using testing::FakeMta;
using testing::FakeRequest;
using testing::FakeRtBackend;

const std::string kDmarcPass =
    " mx.example.com/4ABC123; dmarc=pass (p=reject dis=none) header.from=example.org";

class SessionTrust : public ::testing::Test {
  protected:
    FakeRtBackend rt;  // every POST delivered
    Config config = testing::make_config("http://rt.example.net");
    FakeMta mta;  // queue id (macro i) 4ABC123
    std::shared_ptr<const Runtime> runtime;
    std::optional<Session> session;
    std::string client = "203.0.113.9";
    std::string log;

    void SetUp() override {
        Route take = testing::make_route("take", "example.com", ExtensionMode::Ticket);
        take.action = "take-comment";
        Route resolve = testing::make_route("resolve", "example.com", ExtensionMode::Ticket);
        resolve.action = "resolve";
        Route staff = testing::make_route("staff", "example.com", ExtensionMode::Action);
        staff.queue = "Internal";
        staff.actions = {"correspond", "comment", "take", "resolve-correspond"};
        config.routes.insert(config.routes.end(), {take, resolve, staff});
        Network n;
        EXPECT_FALSE(parse_network("192.0.2.0/24", n));
        config.trusted_networks = {n};
    }
    Route& route(const std::string& local) {
        for (Route& r : config.routes)
            if (r.local_part == local) return r;
        throw std::logic_error("no route " + local);
    }
    Session& start() {
        runtime = rt.runtime(config);
        session.emplace([this] { return runtime; }, mta);
        session->set_lead_space_kept(true);
        session->connect("client.example.net", client, parse_ip_address(client));
        return *session;
    }
    // A whole transaction from alice@example.org with these extra headers
    // on top; the verdict at RCPT (when refused there) or end of message.
    Verdict send(const std::vector<std::string>& rcpts,
                 const std::vector<std::string>& auth_results = {},
                 const std::string& from = " Alice <alice@example.org>") {
        Session& s = session ? *session : start();
        ::testing::internal::CaptureStderr();
        Verdict v = [&] {
            EXPECT_EQ(s.mail({"<alice@example.org>"}), Verdict::Continue);
            for (const std::string& r : rcpts)
                if (Verdict rv = s.rcpt({r}); rv != Verdict::Continue) return rv;
            if (Verdict dv = s.data(); dv != Verdict::Continue) return dv;
            for (const std::string& ar : auth_results) s.header("Authentication-Results", ar);
            s.header("From", from);
            s.header("Subject", " [example.com #42] mine");
            s.end_of_headers();
            s.body("Taking it.\r\n");
            return s.end_of_message();
        }();
        log = ::testing::internal::GetCapturedStderr();
        return v;
    }
    std::vector<std::string> actions_posted() const {
        std::vector<std::string> out;
        for (const FakeRequest& r : rt.requests()) out.push_back(r.field("action"));
        return out;
    }
    bool logged(const std::string& text) const { return log.find(text) != std::string::npos; }
};

TEST_F(SessionTrust, UnprovenTakeIsDowngradedToItsSafePart) {
    EXPECT_EQ(send({"<take+42@example.com>"}), Verdict::Accept);
    EXPECT_EQ(actions_posted(), std::vector<std::string>{"comment"});
    EXPECT_EQ(rt.requests()[0].field("ticket"), "42");
    EXPECT_TRUE(logged(
        ", proof=none, rt=<take+42@example.com> -> rt action=comment ticket=42 (downgraded from "
        "take-comment) (delivered"))
        << log;
}

TEST_F(SessionTrust, BareResolveBecomesAComment) {
    EXPECT_EQ(send({"<resolve+42@example.com>"}), Verdict::Accept);
    EXPECT_EQ(actions_posted(), std::vector<std::string>{"comment"});
    EXPECT_TRUE(logged("action=comment ticket=42 (downgraded from resolve)")) << log;
}

TEST_F(SessionTrust, ExtensionActionsAreNarrowedToo) {
    EXPECT_EQ(send({"<staff+resolve-correspond@example.com>"}), Verdict::Accept);
    EXPECT_EQ(actions_posted(), std::vector<std::string>{"correspond"});
    // the address's extension still goes to RT as rt-mailgate passes it
    EXPECT_TRUE(
        rt.requests()[0].field("message").starts_with("X-RT-Mail-Extension: resolve-correspond\n"));
}

TEST_F(SessionTrust, CorrespondAndCommentNeedNoProof) {
    EXPECT_EQ(send({"<rt@example.com>", "<staff+comment@example.com>"}), Verdict::Accept);
    EXPECT_EQ(rt.requests().size(), 2u);
    EXPECT_FALSE(logged("proof=")) << log;
    EXPECT_FALSE(logged("downgraded")) << log;
}

TEST_F(SessionTrust, SmtpAuthProves) {
    mta.macros["{auth_authen}"] = "alice";
    EXPECT_EQ(send({"<take+42@example.com>"}), Verdict::Accept);
    EXPECT_EQ(actions_posted(), std::vector<std::string>{"take-comment"});
    EXPECT_TRUE(
        logged(", proof=auth:alice, rt=<take+42@example.com> -> rt action=take-comment ticket=42 "
               "(delivered"))
        << log;
}

TEST_F(SessionTrust, TrustedNetworkProves) {
    client = "192.0.2.10";
    EXPECT_EQ(send({"<take+42@example.com>"}), Verdict::Accept);
    EXPECT_EQ(actions_posted(), std::vector<std::string>{"take-comment"});
    EXPECT_TRUE(logged(", proof=network:192.0.2.0/24, ")) << log;
}

TEST_F(SessionTrust, Ipv4MappedClientIsInTheIpv4Network) {
    client = "::ffff:192.0.2.10";
    EXPECT_EQ(send({"<take+42@example.com>"}), Verdict::Accept);
    EXPECT_EQ(actions_posted(), std::vector<std::string>{"take-comment"});
}

TEST_F(SessionTrust, TrustedDmarcPassProves) {
    config.trusted_authserv_ids = {"mx.example.com"};
    EXPECT_EQ(send({"<take+42@example.com>"}, {kDmarcPass}), Verdict::Accept);
    EXPECT_EQ(actions_posted(), std::vector<std::string>{"take-comment"});
    EXPECT_TRUE(logged(", proof=dmarc:mx.example.com, ")) << log;
}

TEST_F(SessionTrust, TrustedAlignedDkimPassProves) {
    config.trusted_authserv_ids = {"mx.example.com"};
    EXPECT_EQ(send({"<take+42@example.com>"}, {" mx.example.com/4ABC123;\n\tdkim=pass (2048-bit "
                                               "key; unprotected) header.d=example.org "
                                               "header.i=@example.org header.b=\"AbCd1234\""}),
              Verdict::Accept);
    EXPECT_EQ(actions_posted(), std::vector<std::string>{"take-comment"});
    EXPECT_TRUE(logged(", proof=dkim:mx.example.com:d=example.org, ")) << log;
}

// An outsider's Authentication-Results header claiming this host: the
// queue id it names is not this message's, whatever it says.
TEST_F(SessionTrust, ForgedAuthenticationResultsAreIgnoredAndLogged) {
    config.trusted_authserv_ids = {"mx.example.com"};
    EXPECT_EQ(send({"<take+42@example.com>"},
                   {" mx.example.com/4GUESS; dmarc=pass header.from=example.org",
                    " mx.example.com; dmarc=pass header.from=example.org"}),
              Verdict::Accept);
    EXPECT_EQ(actions_posted(), std::vector<std::string>{"comment"});
    EXPECT_TRUE(logged(
        "4ABC123: trust: Authentication-Results from mx.example.com/4GUESS ignored: not this "
        "message's queue id 4ABC123"))
        << log;
    EXPECT_TRUE(logged(", proof=none, ")) << log;
}

TEST_F(SessionTrust, RejectAtRcptWhenNothingLaterCouldProve) {
    route("take").untrusted_action = UntrustedAction::Reject;
    Session& s = start();
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(s.mail({"<alice@example.org>"}), Verdict::Continue);
    EXPECT_EQ(s.rcpt({"<take+42@example.com>"}), Verdict::Reject);
    log = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(mta.rcode + " " + mta.xcode + " " + mta.text,
              "550 5.7.1 <take+42@example.com>: this action needs an authenticated sender");
    EXPECT_TRUE(
        logged("refused RT recipient <take+42@example.com> from=<alice@example.org>: 5.7.1 action "
               "take-comment from an unproven sender, proof=none"))
        << log;
    // the other routes keep the global answer (downgrade), others are untouched
    EXPECT_EQ(s.rcpt({"<resolve+42@example.com>"}), Verdict::Continue);
    EXPECT_EQ(s.rcpt({"<bob@example.org>"}), Verdict::Continue);
}

TEST_F(SessionTrust, RejectAtEndOfMessageWhenHeadersCouldHaveProved) {
    config.untrusted_action = UntrustedAction::Reject;
    config.trusted_authserv_ids = {"mx.example.com"};
    EXPECT_EQ(send({"<take+42@example.com>", "<rt@example.com>", "<bob@example.org>"},
                   {" mx.example.com/4ABC123; dmarc=fail header.from=example.org"}),
              Verdict::Reject);
    EXPECT_EQ(mta.rcode + " " + mta.xcode + " " + mta.text,
              "550 5.7.1 <take+42@example.com>: this action needs an authenticated sender");
    EXPECT_TRUE(rt.requests().empty());  // nothing half done
    EXPECT_TRUE(mta.deleted.empty());
    EXPECT_TRUE(logged(
        ", proof=none, verdict=\"550 5.7.1 <take+42@example.com>: action take-comment from an "
        "unproven sender\""))
        << log;
}

TEST_F(SessionTrust, RejectPolicyStillDeliversWhenProven) {
    config.untrusted_action = UntrustedAction::Reject;
    config.trusted_authserv_ids = {"mx.example.com"};
    EXPECT_EQ(send({"<take+42@example.com>"}, {kDmarcPass}), Verdict::Accept);
    EXPECT_EQ(actions_posted(), std::vector<std::string>{"take-comment"});
}

TEST_F(SessionTrust, PerRouteDowngradeUnderAGlobalReject) {
    config.untrusted_action = UntrustedAction::Reject;
    route("take").untrusted_action = UntrustedAction::Downgrade;
    EXPECT_EQ(send({"<take+42@example.com>"}), Verdict::Accept);
    EXPECT_EQ(actions_posted(), std::vector<std::string>{"comment"});
}

// A downgraded take-comment and a plain comment of the same ticket are one
// target: one POST.
TEST_F(SessionTrust, DowngradedTargetsMergeWithTheirSafeTwin) {
    Route comment = testing::make_route("note", "example.com", ExtensionMode::Ticket);
    comment.action = "comment";
    config.routes.push_back(comment);
    EXPECT_EQ(send({"<note+42@example.com>", "<take+42@example.com>"}), Verdict::Accept);
    EXPECT_EQ(actions_posted(), std::vector<std::string>{"comment"});
    EXPECT_TRUE(
        logged("rt=<note+42@example.com>,<take+42@example.com> -> rt action=comment ticket=42 "
               "(downgraded from take-comment)"))
        << log;
    EXPECT_EQ(mta.deleted,
              (std::vector<std::string>{"<note+42@example.com>", "<take+42@example.com>"}));
}

// The journal keys a target by its action: the same message, once
// downgraded and once proven, is two deliveries, and neither is posted
// twice.
TEST_F(SessionTrust, JournalTellsADowngradedTakeFromAProvenOne) {
    char tmpl[] = "/tmp/rtm-trust-test.XXXXXX";
    const std::string dir = mkdtemp(tmpl);
    config.journal = dir + "/journal.sqlite";
    EXPECT_EQ(send({"<take+42@example.com>"}), Verdict::Accept);
    session.reset();
    EXPECT_EQ(send({"<take+42@example.com>"}),
              Verdict::Accept);  // the client's retry: no second POST
    EXPECT_TRUE(logged("(delivered earlier: duplicate journal)")) << log;
    session.reset();
    mta.macros["{auth_authen}"] = "alice";
    EXPECT_EQ(send({"<take+42@example.com>"}), Verdict::Accept);
    session.reset();
    EXPECT_EQ(send({"<take+42@example.com>"}), Verdict::Accept);
    EXPECT_EQ(actions_posted(), (std::vector<std::string>{"comment", "take-comment"}));
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rtm
