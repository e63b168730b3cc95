// trust_test.cpp — the trust policy's decisions (milter/trust.h): which
// actions need proof and what they narrow to, DKIM alignment, the '@'
// domains of identity headers (encoded words decoded), the author's domain
// as RT will act for it (Reply-To, From, Sender), what the envelope proves
// (AUTH, trusted networks, IPv4-mapped clients), and what
// Authentication-Results prove: only trusted authserv-ids, only this
// message's queue id, only a pass for the author's own domain.
#include <gtest/gtest.h>

#include "trust.h"

namespace rtm {
namespace {

TEST(TrustActions, TakeAndResolveNeedProof) {
    for (const char* a : {"take", "resolve", "take-comment", "comment-take", "resolve-correspond",
                          "take-resolve", "correspond-comment-resolve"})
        EXPECT_TRUE(needs_proof(a)) << a;
    for (const char* a : {"correspond", "comment", "comment-correspond", "", "mistake", "resolved"})
        EXPECT_FALSE(needs_proof(a)) << a;
}

TEST(TrustActions, SafePartKeepsCommentAndCorrespond) {
    EXPECT_EQ(safe_part("take-comment"), "comment");
    EXPECT_EQ(safe_part("comment-take"), "comment");
    EXPECT_EQ(safe_part("resolve-correspond"), "correspond");
    EXPECT_EQ(safe_part("take-correspond-resolve"), "correspond");
    EXPECT_EQ(safe_part("correspond-take-comment"), "correspond-comment");
    // Nothing safe left: RT would record nothing of the message; a comment
    // keeps it for the staff and mails no requestor.
    EXPECT_EQ(safe_part("take"), "comment");
    EXPECT_EQ(safe_part("resolve"), "comment");
    EXPECT_EQ(safe_part("take-resolve"), "comment");
}

TEST(TrustAlignment, SameDomainOrSignedByAParent) {
    EXPECT_TRUE(dkim_aligned("example.org", "example.org"));
    EXPECT_TRUE(dkim_aligned("Example.ORG.", "example.org"));
    EXPECT_TRUE(dkim_aligned("example.org", "news.example.org"));
    EXPECT_TRUE(dkim_aligned("example.co.uk", "mail.example.co.uk"));
    // A subdomain does not speak for its parent (dyndns-style hosting).
    EXPECT_FALSE(dkim_aligned("news.example.org", "example.org"));
    EXPECT_FALSE(dkim_aligned("evil.dyndns.example", "dyndns.example"));
    // Not on a label boundary, another domain, a bare TLD.
    EXPECT_FALSE(dkim_aligned("ample.org", "example.org"));
    EXPECT_FALSE(dkim_aligned("example.net", "example.org"));
    EXPECT_FALSE(dkim_aligned("org", "example.org"));
    EXPECT_FALSE(dkim_aligned("", "example.org"));
    EXPECT_FALSE(dkim_aligned("example.org", ""));
    EXPECT_FALSE(dkim_aligned("exa mple.org", "exa mple.org"));
    EXPECT_FALSE(dkim_aligned("example..org", "example..org"));
}

TEST(TrustIdentity, AtDomainsDecodeEncodedWords) {
    EXPECT_EQ(at_domains("Alice <Alice@Example.ORG.>"), (std::vector<std::string>{"example.org"}));
    EXPECT_EQ(at_domains("\"alice@example.org\" <alice@example.org>"),
              (std::vector<std::string>{"example.org", "example.org"}));
    EXPECT_EQ(at_domains("=?utf-8?q?boss=40victim=2Eexample?= <x@attacker.example>"),
              (std::vector<std::string>{"victim.example", "attacker.example"}));
    EXPECT_EQ(at_domains("=?UTF-8?B?Ym9zc0B2aWN0aW0uZXhhbXBsZQ==?= <x@attacker.example>"),
              (std::vector<std::string>{"victim.example", "attacker.example"}));
    EXPECT_EQ(at_domains("undisclosed-recipients:;"), std::vector<std::string>{});
    EXPECT_EQ(at_domains("bob @ home <b@x.example>"), (std::vector<std::string>{"", "x.example"}));
    EXPECT_EQ(at_domains("=?x?q?unterminated @a.example"), (std::vector<std::string>{"a.example"}));
}

Config trusting(std::vector<std::string> ids, bool job_id = true) {
    Config c;
    c.trusted_authserv_ids = std::move(ids);
    c.authserv_id_with_job_id = job_id;
    Network n;
    EXPECT_FALSE(parse_network("192.0.2.0/24", n));
    c.trusted_networks.push_back(n);
    EXPECT_FALSE(parse_network("2001:db8::/32", n));
    c.trusted_networks.push_back(n);
    return c;
}

TEST(TrustEnvelope, AuthThenNetwork) {
    const Config c = trusting({});
    EXPECT_EQ(prove_by_envelope(c, "alice", parse_ip_address("203.0.113.9")).text, "auth:alice");
    EXPECT_EQ(prove_by_envelope(c, "alice", std::nullopt).kind, Proof::Kind::Auth);
    EXPECT_EQ(prove_by_envelope(c, "", parse_ip_address("192.0.2.10")).text,
              "network:192.0.2.0/24");
    EXPECT_EQ(prove_by_envelope(c, "", parse_ip_address("::ffff:192.0.2.10")).text,
              "network:192.0.2.0/24");
    EXPECT_EQ(prove_by_envelope(c, "", parse_ip_address("2001:db8::25")).text,
              "network:2001:db8::/32");
    const Proof none = prove_by_envelope(c, "", parse_ip_address("203.0.113.9"));
    EXPECT_FALSE(none);
    EXPECT_EQ(none.text, "none");
    EXPECT_FALSE(prove_by_envelope(c, "", std::nullopt));
    // what goes into the log line is one printable line
    EXPECT_EQ(prove_by_envelope(c, "a\nb", std::nullopt).text, "auth:a ...");
}

struct Headers {
    explicit Headers(Config c = Config{}) : config(std::move(c)) {}
    Config config;
    HeaderEvidence evidence;
    std::vector<TrustNote> notes;
    Headers& add(std::string_view name, std::string_view value) {
        evidence.add(config, name, value);
        return *this;
    }
    Proof prove(std::string_view qid = "4ABC12") {
        notes.clear();
        return evidence.prove(config, qid, notes);
    }
    std::string author() const {
        std::string why;
        return evidence.author_domain(why).value_or("(none: " + why + ")");
    }
};

TEST(TrustHeaders, AuthorDomainIsWhatRtActsFor) {
    auto author = [](std::vector<std::pair<std::string, std::string>> headers) {
        Headers h;
        for (auto& [n, v] : headers) h.add(n, v);
        return h.author();
    };
    EXPECT_EQ(author({{"From", " Alice <alice@Example.org>"}}), "example.org");
    EXPECT_EQ(author({{"From", "alice@example.org"}, {"Reply-To", "team@example.org"}}),
              "example.org");
    EXPECT_EQ(author({{"From", "alice@example.org"}, {"Sender", "list@example.org"}}),
              "example.org");
    EXPECT_EQ(author({{"From ", "alice@example.org"}}), "example.org");
    EXPECT_EQ(author({}), "(none: no From:)");
    EXPECT_EQ(author({{"From", "a@example.org"}, {"from", "b@example.org"}}),
              "(none: From: appears 2 times)");
    EXPECT_EQ(author({{"From", "a@example.org, b@example.net"}}),
              "(none: From: names more than one domain)");
    EXPECT_EQ(author({{"From", "undisclosed-recipients:;"}}),
              "(none: From: names no address with a domain)");
    EXPECT_EQ(author({{"From", "a@[192.0.2.1]"}}), "(none: From: names no plain domain name)");
    // RT acts for Reply-To first: another domain there is another person.
    EXPECT_EQ(author({{"From", "alice@example.org"}, {"Reply-To", "boss@victim.example"}}),
              "(none: Reply-To: names another domain than From:)");
    EXPECT_EQ(author({{"From", "alice@example.org"}, {"Reply-To", "boss"}}),
              "(none: Reply-To: names no address with a domain)");
    EXPECT_EQ(author({{"From", "alice@example.org"},
                      {"Reply-To", "a@example.org"},
                      {"Reply-To", "b@example.org"}}),
              "(none: Reply-To: appears 2 times)");
    EXPECT_EQ(author({{"From", "=?utf-8?q?boss=40victim=2Eexample?= <alice@example.org>"}}),
              "(none: From: names more than one domain)");
    EXPECT_EQ(author({{"From", "a@example.org"}, {"Sender", "s@victim.example"}}),
              "(none: Sender: names another domain than From:)");
    EXPECT_EQ(author({{"From",
                       std::string(HeaderEvidence::max_identity_bytes + 1, 'a') + "@example.org"}}),
              "(none: From: longer than 8192 bytes)");
}

TEST(TrustHeaders, DmarcPassForTheAuthorDomain) {
    Headers h{trusting({"mx.example.com"})};
    h.add("Authentication-Results",
          " mx.example.com/4ABC12; dmarc=pass (p=reject dis=none) header.from=example.org")
        .add("From", " Alice <alice@example.org>");
    EXPECT_EQ(h.prove().text, "dmarc:mx.example.com");
    EXPECT_EQ(h.prove().kind, Proof::Kind::Dmarc);
    EXPECT_TRUE(h.notes.empty());
}

TEST(TrustHeaders, DkimPassAlignedWithTheAuthorDomain) {
    Headers h{trusting({"mx.example.com"})};
    h.add("Authentication-Results",
          "MX.Example.com/4ABC12; dkim=pass (2048-bit key; unprotected) header.d=Example.org "
          "header.i=@example.org "
          "header.b=AbCd1234")
        .add("From", "alice@news.example.org");
    EXPECT_EQ(h.prove().text, "dkim:mx.example.com:d=example.org");
}

TEST(TrustHeaders, DkimWithOnlyHeaderI) {
    Headers h{trusting({"mx.example.com"})};
    h.add("Authentication-Results",
          "mx.example.com/4ABC12; dkim=pass header.i=@example.org header.s=s1")
        .add("From", "alice@example.org");
    EXPECT_EQ(h.prove().text, "dkim:mx.example.com:d=example.org");
}

TEST(TrustHeaders, WhatProvesNothing) {
    auto proof = [](std::string_view ar, std::string_view from = "alice@example.org",
                    bool job_id = true) {
        Headers h{trusting({"mx.example.com"}, job_id)};
        h.add("Authentication-Results", ar).add("From", from);
        return h.prove().text;
    };
    EXPECT_EQ(proof("mx.example.com/4ABC12; dmarc=fail header.from=example.org"), "none");
    EXPECT_EQ(proof("mx.example.com/4ABC12; dmarc=pass header.from=example.net"), "none");
    EXPECT_EQ(proof("mx.example.com/4ABC12; dkim=pass header.d=example.net"), "none");
    EXPECT_EQ(proof("mx.example.com/4ABC12; dkim=pass header.d=news.example.org"), "none");
    EXPECT_EQ(proof("mx.example.com/4ABC12; dkim=pass"), "none");
    EXPECT_EQ(proof("mx.example.com/4ABC12; spf=pass smtp.mailfrom=alice@example.org"), "none");
    EXPECT_EQ(proof("mx.example.com/4ABC12; dkim=fail (dkim=pass header.d=example.org) "
                    "header.d=example.org"),
              "none");
    // another host's verdict, however well written
    EXPECT_EQ(proof("mx.attacker.example/4ABC12; dmarc=pass header.from=example.org"), "none");
    EXPECT_EQ(proof("mx.example.com.attacker.example/4ABC12; dmarc=pass header.from=example.org"),
              "none");
    // a header that does not parse
    EXPECT_EQ(proof("mx.example.com/4ABC12; dmarc=pass header.from=example.org (open"), "none");
    // two addresses of one domain are that domain; of two domains, neither
    EXPECT_EQ(proof("mx.example.com/4ABC12; dmarc=pass header.from=example.org",
                    "a@example.org, b@example.org"),
              "dmarc:mx.example.com");
    EXPECT_EQ(proof("mx.example.com/4ABC12; dmarc=pass header.from=example.org",
                    "a@example.org, b@victim.example"),
              "none");
}

// Only what this host's verifiers wrote for this message: the queue id
// after the authserv-id (AuthservIDWithJobID) is this message's.
TEST(TrustHeaders, ForgedOrCopiedAuthenticationResultsDoNotCount) {
    Headers h{trusting({"mx.example.com"})};
    h.add("Authentication-Results", "mx.example.com/4OLD99; dmarc=pass header.from=example.org")
        .add("From", "alice@example.org");
    EXPECT_EQ(h.prove("4ABC12").text, "none");
    ASSERT_EQ(h.notes.size(), 1u);
    EXPECT_TRUE(h.notes[0].warning);
    EXPECT_EQ(h.notes[0].text,
              "Authentication-Results from mx.example.com/4OLD99 ignored: not this message's queue "
              "id 4ABC12 "
              "(forged, or copied from another message)");
    EXPECT_EQ(h.prove("").text, "none");  // no queue id from the MTA: nothing matches
    EXPECT_EQ(h.prove("4OLD99").text, "dmarc:mx.example.com");
}

TEST(TrustHeaders, WithoutJobIdOnlyWhenConfigured) {
    Headers strict{trusting({"mx.example.com"}, true)};
    strict.add("Authentication-Results", "mx.example.com; dmarc=pass header.from=example.org")
        .add("From", "alice@example.org");
    EXPECT_EQ(strict.prove().text, "none");
    ASSERT_EQ(strict.notes.size(), 1u);
    EXPECT_FALSE(strict.notes[0].warning);
    EXPECT_EQ(
        strict.notes[0].text,
        "Authentication-Results from mx.example.com ignored: no queue id after the authserv-id "
        "(authserv_id_with_job_id needs the verifiers' AuthservIDWithJobID)");

    Headers lax{trusting({"mx.example.com"}, false)};
    lax.add("Authentication-Results", "mx.example.com; dmarc=pass header.from=example.org")
        .add("From", "alice@example.org");
    EXPECT_EQ(lax.prove().text, "dmarc:mx.example.com");
    // a job id, when there is one, must still be this message's
    Headers lax_wrong{trusting({"mx.example.com"}, false)};
    lax_wrong
        .add("Authentication-Results", "mx.example.com/4OLD99; dmarc=pass header.from=example.org")
        .add("From", "alice@example.org");
    EXPECT_EQ(lax_wrong.prove().text, "none");
}

TEST(TrustHeaders, NothingReadWithoutTrustedIds) {
    Headers h{trusting({})};
    h.add("Authentication-Results", "mx.example.com/4ABC12; dmarc=pass header.from=example.org")
        .add("From", "alice@example.org");
    EXPECT_EQ(h.prove().text, "none");
    EXPECT_TRUE(h.notes.empty());
}

TEST(TrustHeaders, AuthorCheckedBeforeResults) {
    Headers h{trusting({"mx.example.com"})};
    h.add("Authentication-Results", "mx.example.com/4ABC12; dmarc=pass header.from=example.org")
        .add("From", "alice@example.org")
        .add("Reply-To", "boss@victim.example");
    EXPECT_EQ(h.prove().text, "none");
    ASSERT_EQ(h.notes.size(), 1u);
    EXPECT_EQ(h.notes[0].text,
              "Authentication-Results not used: Reply-To: names another domain than From:");
}

TEST(TrustHeaders, KeepsABoundedNumber) {
    Headers h{trusting({"mx.example.com"})};
    for (std::size_t i = 0; i < HeaderEvidence::max_kept_results + 3; ++i)
        h.add("Authentication-Results",
              "mx.example.com/4ABC12; spf=pass smtp.mailfrom=example.org");
    h.add("Authentication-Results", "mx.example.com/4ABC12; dmarc=pass header.from=example.org");
    h.add("From", "alice@example.org");
    EXPECT_EQ(h.prove().text, "none");
    ASSERT_EQ(h.notes.size(), 1u);
    EXPECT_EQ(h.notes[0].text,
              "4 further Authentication-Results header(s) of trusted authserv-ids not read (more "
              "than 16)");
}

}  // namespace
}  // namespace rtm
