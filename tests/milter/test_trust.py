"""test_trust — the trust policy of the real rt-milter over the milter
protocol (miltertest), with the RT stub: what RT receives in its action
field for a proven sender (SMTP AUTH as macro {auth_authen}, a client
address in trusted_networks over IPv4, IPv6 and IPv4-mapped IPv6, an
Authentication-Results header of a trusted authserv-id with this message's
queue id: dmarc=pass, aligned dkim=pass) and for an unproven one (the
safe part posted; a forged or replayed header ignored; untrusted_action =
"reject" answered 550 5.7.1 at RCPT or at end of message, per route), and
the proof= of the summary line; --check-config's trust line and
--test's --client and --auth.
"""

import os
import subprocess
import unittest

from milter_harness import (GENERAL, MESSAGE, RT_MILTER, MilterTestCase,
                            SENDER_ADDRESS, write_config)

TAKE = "<take+42@example.com>"       # ticket 42, action take-comment
RT = "<rt@example.com>"
BOB = "<bob@example.org>"

ROUTES = (
    {"address": "rt@example.com", "queue": "General", "action": "correspond"},
    {"address": "take@example.com", "extension": "ticket",
     "action": "take-comment"},
    {"address": "staff@example.com", "queue": "Internal",
     "extension": "action",
     "actions": ["comment", "take", "resolve-correspond"]},
)
PROVEN = {"ticket": b"42", "action": b"take-comment"}
DOWNGRADED = {"ticket": b"42", "action": b"comment"}
REFUSAL = "this action needs an authenticated sender"

DMARC_PASS = ("Authentication-Results: mx.example.com/{qid}; dmarc=pass "
              "(p=reject dis=none) header.from=example.org")
# as OpenDKIM writes it (dkimf_ar_all_sigs), folded
DKIM_PASS = ("Authentication-Results: mx.example.com/{qid};\n\tdkim=pass "
             "(2048-bit key; unprotected) header.d=example.org "
             "header.i=@example.org header.b=AbCd+/12")


def top(*lines: str) -> bytes:
    """What RT gets of TOP_HEADERS: each line, then message.eml."""
    return b"".join(line.encode() + b"\n" for line in lines) + MESSAGE


class Trust(MilterTestCase):

    def run_take(self, qid, script="accept.lua", config=None, **defines):
        cfg = {"routes": ROUTES}
        cfg.update(config or {})
        defines.setdefault("RT_RCPTS", [TAKE])
        return self.exchange(script, config=cfg, QID=qid, **defines)

    # -- unproven: the safe part -----------------------------------------

    def test_unproven_take_is_downgraded(self):
        ex = self.run_take("4TRU01")
        self.assertPosted(self.assertPosts(ex, 1)[0], DOWNGRADED,
                          extension="42")
        self.assertSummary(
            ex, "4TRU01", "accepted", ", proof=none, ",
            f"rt={TAKE} -> rt action=comment ticket=42 (downgraded from "
            "take-comment) (delivered")

    def test_extension_action_is_narrowed(self):
        rcpt = "<staff+resolve-correspond@example.com>"
        ex = self.run_take("4TRU02", RT_RCPTS=[rcpt])
        self.assertPosted(self.assertPosts(ex, 1)[0],
                          {"queue": b"Internal", "action": b"correspond"},
                          extension="resolve-correspond")
        self.assertSummary(ex, "4TRU02", "accepted", "proof=none",
                           "(downgraded from resolve-correspond)")

    def test_correspond_needs_no_proof(self):
        ex = self.run_take("4TRU03", RT_RCPTS=[RT])
        self.assertPosted(self.assertPosts(ex, 1)[0], GENERAL)
        line = self.assertSummary(ex, "4TRU03", "accepted")
        self.assertNotIn("proof=", line)

    # -- proven by the envelope ------------------------------------------

    def test_smtp_auth_proves(self):
        ex = self.run_take("4TRU04", AUTH="alice")
        self.assertPosted(self.assertPosts(ex, 1)[0], PROVEN, extension="42")
        self.assertSummary(
            ex, "4TRU04", "accepted", ", proof=auth:alice, ",
            f"rt={TAKE} -> rt action=take-comment ticket=42 (delivered")

    def test_trusted_ipv4_network_proves(self):
        ex = self.run_take("4TRU05",
                           config={"trusted_networks": ["192.0.2.0/24"]})
        self.assertPosted(self.assertPosts(ex, 1)[0], PROVEN, extension="42")
        self.assertSummary(ex, "4TRU05", "accepted",
                           "proof=network:192.0.2.0/24")

    def test_trusted_ipv6_network_proves(self):
        ex = self.run_take("4TRU06", CLIENT_IP="2001:db8::25",
                           config={"trusted_networks": ["2001:db8::/32"]})
        self.assertPosted(self.assertPosts(ex, 1)[0], PROVEN, extension="42")
        self.assertSummary(ex, "4TRU06", "accepted",
                           "proof=network:2001:db8::/32",
                           client="client.example.net[2001:db8::25]")

    def test_ipv4_mapped_client_matches_the_ipv4_network(self):
        ex = self.run_take("4TRU07", CLIENT_IP="::ffff:192.0.2.10",
                           config={"trusted_networks": ["192.0.2.0/24"]})
        self.assertPosted(self.assertPosts(ex, 1)[0], PROVEN, extension="42")
        self.assertSummary(ex, "4TRU07", "accepted",
                           "proof=network:192.0.2.0/24",
                           client="client.example.net[::ffff:192.0.2.10]")

    def test_sendmail_ipv6_client_macro_matches_the_ipv6_network(self):
        # Sendmail's {client_addr} of an IPv6 client is "IPv6:2001:db8::25",
        # and its {client_name} of a client without a name the bracketed
        # address: the log names the address once.
        ex = self.run_take("4TRU20", CLIENT_IP="IPv6:2001:db8::25",
                           CLIENT_NAME="[IPv6:2001:db8::25]",
                           config={"trusted_networks": ["2001:db8::/32"]})
        self.assertPosted(self.assertPosts(ex, 1)[0], PROVEN, extension="42")
        self.assertSummary(ex, "4TRU20", "accepted",
                           "proof=network:2001:db8::/32",
                           client="2001:db8::25, ")

    def test_client_macros_reach_the_log_as_one_printable_line(self):
        # The MTA's macro text goes into the summary line: a line break in
        # it cannot start a line of its own (a forged summary for 4FAKE).
        ex = self.run_take("4TRU22", CLIENT_NAME="host.example\nrt-milter: 4FAKE: forged")
        self.assertSummary(ex, "4TRU22", "accepted",
                           client="host.example ...[192.0.2.10], ")
        self.assertEqual(ex.milter.summary_lines("4FAKE"), [], ex.milter.log())

    def test_without_setsymlist_the_client_comes_with_connect(self):
        # An MTA that cannot be asked for macros: rt-milter keeps the
        # connect stage (lib.lua checks the negotiation) and takes the
        # client's address from it, and v (Postfix) from connect's macros.
        ex = self.run_take("4TRU21", NO_SYMLIST="1",
                           config={"trusted_networks": ["192.0.2.0/24"]})
        self.assertPosted(self.assertPosts(ex, 1)[0], PROVEN, extension="42")
        self.assertSummary(ex, "4TRU21", "accepted, 1 RT recipient(s) removed",
                           "proof=network:192.0.2.0/24")

    def test_client_outside_the_networks_is_not_proven(self):
        ex = self.run_take("4TRU08", CLIENT_IP="198.51.100.7",
                           config={"trusted_networks": ["192.0.2.0/24",
                                                        "2001:db8::/32"]})
        self.assertPosted(self.assertPosts(ex, 1)[0], DOWNGRADED,
                          extension="42")
        self.assertSummary(ex, "4TRU08", "accepted", "proof=none",
                           client="client.example.net[198.51.100.7]")

    def test_client_without_an_address_is_not_proven(self):
        ex = self.run_take("4TRU09", CLIENT_IP="unspec",
                           config={"trusted_networks": ["0.0.0.0/0", "::/0"]})
        self.assertPosted(self.assertPosts(ex, 1)[0], DOWNGRADED,
                          extension="42")
        self.assertSummary(ex, "4TRU09", "accepted", "proof=none",
                           client="client.example.net[unknown]")

    # -- proven by this host's verifiers ---------------------------------

    def test_trusted_dmarc_pass_proves(self):
        header = DMARC_PASS.format(qid="4TRU10")
        ex = self.run_take("4TRU10", TOP_HEADERS=header,
                           config={"trusted_authserv_ids": ["mx.example.com"]})
        self.assertPosted(self.assertPosts(ex, 1)[0], PROVEN, extension="42",
                          message=top(header))
        self.assertSummary(ex, "4TRU10", "accepted",
                           ", proof=dmarc:mx.example.com, ")

    def test_trusted_aligned_dkim_pass_proves(self):
        header = DKIM_PASS.format(qid="4TRU11")
        ex = self.run_take("4TRU11", TOP_HEADERS=header,
                           config={"trusted_authserv_ids": ["MX.example.com"]})
        self.assertPosted(self.assertPosts(ex, 1)[0], PROVEN, extension="42",
                          message=top(header))
        self.assertSummary(ex, "4TRU11", "accepted",
                           ", proof=dkim:mx.example.com:d=example.org, ")

    def test_header_of_another_queue_id_is_ignored(self):
        # a sender's own header claiming this host, or one copied from an
        # earlier message: not this message's queue id
        header = DMARC_PASS.format(qid="4OLD99")
        ex = self.run_take("4TRU12", TOP_HEADERS=header,
                           config={"trusted_authserv_ids": ["mx.example.com"]})
        self.assertPosted(self.assertPosts(ex, 1)[0], DOWNGRADED,
                          extension="42", message=top(header))
        self.assertSummary(ex, "4TRU12", "accepted", "proof=none")
        self.assertIn("rt-milter: warning: 4TRU12: trust: Authentication-Results from "
                      "mx.example.com/4OLD99 ignored: not this message's "
                      "queue id 4TRU12", ex.milter.log())

    def test_header_without_queue_id_needs_the_setting(self):
        header = ("Authentication-Results: mx.example.com; dmarc=pass "
                  "header.from=example.org")
        trusted = {"trusted_authserv_ids": ["mx.example.com"]}
        ex = self.run_take("4TRU13", TOP_HEADERS=header, config=trusted)
        self.assertPosted(self.assertPosts(ex, 1)[0], DOWNGRADED,
                          extension="42", message=top(header))
        self.assertSummary(ex, "4TRU13", "accepted", "proof=none")
        ex = self.run_take("4TRU14", TOP_HEADERS=header,
                           config=dict(trusted,
                                       authserv_id_with_job_id=False))
        self.assertPosted(self.assertPosts(ex, 1)[0], PROVEN, extension="42",
                          message=top(header))
        self.assertSummary(ex, "4TRU14", "accepted", "proof=dmarc:")

    def test_untrusted_authserv_id_proves_nothing(self):
        header = DMARC_PASS.format(qid="4TRU15").replace(
            "mx.example.com", "mx.attacker.example")
        ex = self.run_take("4TRU15", TOP_HEADERS=header,
                           config={"trusted_authserv_ids": ["mx.example.com"]})
        self.assertPosted(self.assertPosts(ex, 1)[0], DOWNGRADED,
                          extension="42", message=top(header))

    def test_reply_to_another_domain_voids_the_dmarc_pass(self):
        # RT acts for Reply-To: first; example.org's pass says nothing of it
        header = DMARC_PASS.format(qid="4TRU16")
        reply_to = "Reply-To: Boss <boss@victim.example>"
        ex = self.run_take("4TRU16", TOP_HEADERS=header + "|" + reply_to,
                           config={"trusted_authserv_ids": ["mx.example.com"]})
        self.assertPosted(self.assertPosts(ex, 1)[0], DOWNGRADED,
                          extension="42", message=top(header, reply_to))
        self.assertIn("4TRU16: trust: Authentication-Results not used: "
                      "Reply-To: names another domain than From:",
                      ex.milter.log())

    # -- untrusted_action = "reject" -------------------------------------

    def test_reject_at_rcpt_when_nothing_later_could_prove(self):
        ex = self.run_take("4TRU17", script="rcpt_refused.lua",
                           REFUSED=[TAKE], RT_RCPTS=[RT], OTHER_RCPTS=[BOB],
                           config={"untrusted_action": "reject"})
        self.assertPosted(self.assertPosts(ex, 1)[0], GENERAL)
        self.assertIn(f"rt-milter: 4TRU17: refused RT recipient {TAKE} "
                      f"from=<{SENDER_ADDRESS}>: 5.7.1 action take-comment "
                      "from an unproven sender, proof=none", ex.milter.log())

    def test_reject_at_end_of_message_refuses_the_whole_message(self):
        header = ("Authentication-Results: mx.example.com/4TRU18; "
                  "dmarc=fail (p=none dis=none) header.from=example.org")
        ex = self.run_take("4TRU18", script="smtp_error.lua",
                           RT_RCPTS=[TAKE, RT], OTHER_RCPTS=[BOB],
                           TOP_HEADERS=header, CODE="550", XCODE="5.7.1",
                           TEXT=f"{TAKE}: {REFUSAL}",
                           config={"untrusted_action": "reject",
                                   "trusted_authserv_ids": ["mx.example.com"]})
        self.assertPosts(ex, 0)
        self.assertSummary(ex, "4TRU18", f"550 5.7.1 {TAKE}: action "
                           "take-comment from an unproven sender",
                           "proof=none")

    def test_reject_policy_delivers_a_proven_take(self):
        header = DMARC_PASS.format(qid="4TRU19")
        ex = self.run_take("4TRU19", TOP_HEADERS=header,
                           config={"untrusted_action": "reject",
                                   "trusted_authserv_ids": ["mx.example.com"]})
        self.assertPosted(self.assertPosts(ex, 1)[0], PROVEN, extension="42",
                          message=top(header))

    def test_route_override(self):
        routes = [dict(r) for r in ROUTES]
        routes[1]["untrusted_action"] = "reject"   # take@ refuses
        ex = self.exchange("rcpt_refused.lua", QID="4TRU20",
                           config={"routes": routes},
                           REFUSED=[TAKE],
                           RT_RCPTS=["<staff+take@example.com>"])
        self.assertPosted(self.assertPosts(ex, 1)[0],
                          {"queue": b"Internal", "action": b"comment"},
                          extension="take")
        self.assertSummary(ex, "4TRU20", "accepted", "proof=none",
                           "(downgraded from take)")


    # -- --check-config ----------------------------------------------------

    def test_check_config_prints_the_policy(self):
        routes = [dict(r) for r in ROUTES]
        routes[1]["untrusted_action"] = "reject"
        path = os.path.join(self.workdir, "rt-milter.toml")
        write_config(path, "unix:" + os.path.join(self.workdir, "s.sock"),
                     "http://127.0.0.1:1", os.path.join(self.workdir, "spool"),
                     routes=routes, trusted_networks=["192.0.2.0/24", "::1"],
                     trusted_authserv_ids=["MX.example.com"])
        r = subprocess.run([RT_MILTER, "--check-config", "-c", path],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        self.assertIn("trust: take and resolve need SMTP AUTH, a client in "
                      "[192.0.2.0/24, ::1/128] or Authentication-Results of "
                      "[mx.example.com] with the queue id; unproven: "
                      "downgrade\n", out)
        self.assertIn("take@example.com -> rt queue=(RT's default) "
                      "action=take-comment extension=ticket "
                      "untrusted_action=reject  (", out)


    # -- the operator's test mode --------------------------------------------

    def test_test_mode_takes_client_and_auth(self):
        path = os.path.join(self.workdir, "rt-milter.toml")
        write_config(path, "unix:" + os.path.join(self.workdir, "s.sock"),
                     "http://127.0.0.1:1", os.path.join(self.workdir, "spool"),
                     routes=ROUTES, trusted_networks=["192.0.2.0/24"])

        def dry_run(*extra):
            r = subprocess.run(
                [RT_MILTER, "--test", "--dry-run", "-c", path, "--from",
                 SENDER_ADDRESS, "--rcpt", TAKE[1:-1], *extra],
                input=MESSAGE, capture_output=True, timeout=30)
            return r.returncode, r.stdout.decode() + r.stderr.decode()

        rc, out = dry_run()
        self.assertEqual(rc, 0, out)
        self.assertIn("field action=comment\n", out)
        self.assertIn("proof=none", out)
        rc, out = dry_run("--auth", "alice")
        self.assertEqual(rc, 0, out)
        self.assertIn("field action=take-comment\n", out)
        self.assertIn("proof=auth:alice", out)
        rc, out = dry_run("--client", "192.0.2.10")
        self.assertEqual(rc, 0, out)
        self.assertIn("field action=take-comment\n", out)
        self.assertIn("proof=network:192.0.2.0/24", out)
        rc, out = dry_run("--client", "rt.example.com")
        self.assertEqual(rc, 64, out)
        self.assertIn("--client rt.example.com: not an IP address", out)


if __name__ == "__main__":
    unittest.main()
