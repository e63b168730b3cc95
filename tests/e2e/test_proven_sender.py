"""test_proven_sender — the trust policy end to end (issue 11, part 1):
swaks -> Postfix -> OpenDKIM -> OpenDMARC -> rt-milter -> the suite's real
RT 5, whose @MailPlugins has Action::Take and Action::Resolve and whose
user staff (staff@example.com) may own and resolve tickets (rt-sandbox).

The shared "trust" pair (e2e_harness.TRUST_CONFIG, verifiers.py): Postfix
drops inbound Authentication-Results (header_checks IGNORE) and offers SMTP
AUTH to staff; the verifiers write "mx.rt.example.com/<queue id>" results;
rt-milter trusts that authserv-id and the network 127.0.0.2/32 only. take@
and resolve@ downgrade an unproven sender, strict@ refuses one, act+ACTION@
takes the action from the address extension.

Each test makes its own ticket (from alice, through rt@), then writes to it
as staff@example.com: DKIM-signed by example.com (aligned: OpenDKIM says
dkim=pass header.d=example.com and OpenDMARC dmarc=pass), unsigned, with a
forged Authentication-Results, or signed by another domain. What counts is
RT's record (owner, status, the transaction added) and rt-milter's summary
line (the action carried out, proof=...).
"""

import email.utils
import re
import unittest
import uuid

from e2e_harness import (RT_DOMAIN, SASL_PASSWORD, SASL_USER, TRUST_CONFIG, TRUSTED_CLIENT,
                         E2ECase, swaks)
from verifiers import AUTHSERV_ID, OTHER_DOMAIN, STAFF_DOMAIN

STAFF = f"staff@{STAFF_DOMAIN}"
TAKE = f"take@{RT_DOMAIN}"
RESOLVE = f"resolve@{RT_DOMAIN}"
STRICT = f"strict@{RT_DOMAIN}"
FORGED = (f"Authentication-Results: {AUTHSERV_ID}; dkim=pass header.d={STAFF_DOMAIN}; "
          f"dmarc=pass header.from={STAFF_DOMAIN}")
# with a made-up queue id of the same form as Postfix's long ones
GUESSED = (f"Authentication-Results: {AUTHSERV_ID}/4Xq9Lm2Bz7nKp; dkim=pass "
           f"header.d={STAFF_DOMAIN}; dmarc=pass header.from={STAFF_DOMAIN}")
# another host's results: neither trusted nor OpenDKIM's to remove
FOREIGN = f"Authentication-Results: mx.elsewhere.example; dkim=pass header.d={STAFF_DOMAIN}"
DMARC_PROOF = f"proof=dmarc:{AUTHSERV_ID},"


class StaffMail(E2ECase):
    """Mail from staff@example.com to a pair with the verifiers, and what
    RT made of it."""

    # ----- sending as staff ----------------------------------------------
    def staff_message(self, to: str, subject: str, body: str, headers=()) -> tuple:
        msgid = f"{uuid.uuid4().hex}@{STAFF_DOMAIN}"
        lines = [f"From: Staff Member <{STAFF}>", f"To: {to}", f"Subject: {subject}",
                 f"Date: {email.utils.formatdate()}", f"Message-ID: <{msgid}>", *headers,
                 "", body, ""]
        return "\r\n".join(lines).encode(), msgid

    def send_staff(self, to: str, subject: str, body: str, sign=None, headers=(), args=()):
        """As staff, from 127.0.0.1 unless args say otherwise; sign: the
        domain whose DKIM signature the message carries, or None."""
        data, msgid = self.staff_message(to, subject, body, headers)
        if sign:
            data = self.pair.verifiers.sign(data, sign)
        return swaks(self.mta.port, to, subject, sender=STAFF, msgid=msgid, data=data,
                     args=args)

    def send_staff_ok(self, to, subject, body, **kw):
        sent = self.send_staff(to, subject, body, **kw)
        line = sent.data_reply()
        self.assertReply(line, self.mta.QUEUE_ID_IN_REPLY, sent)
        return sent, re.match(self.mta.QUEUE_ID_IN_REPLY, line).group(1)

    # ----- what RT recorded ------------------------------------------------
    def assertTaken(self, tid, last, body):
        """staff owns the ticket now, and the message is a comment of staff's."""
        self.assertEqual(self.show(tid)["Owner"], "staff")
        added = self.added(tid, "Comments added by staff", last)
        self.assertEqual(len(added), 1, self.history(tid))
        self.assertIn(body, self.content_of(tid, added[0]))

    def assertDowngraded(self, tid, last, body, kind="Comments", status="new"):
        """Owner and status as they were; the message recorded as kind."""
        t = self.show(tid)
        self.assertEqual((t["Owner"], t["Status"]), ("Nobody", status))
        added = self.added(tid, f"{kind} added by staff", last)
        self.assertEqual(len(added), 1, self.history(tid))
        self.assertIn(body, self.content_of(tid, added[0]))
        return added[0]

    def headers_in_rt(self, tid, txn) -> str:
        return self.attachment(tid, self.transaction(tid, txn)["attachment_ids"][0])["Headers"]


class Postfix(StaffMail):
    """The shared "trust" pair, set up as packaging/postfix/README says."""
    PAIR = "trust"
    FIXTURES = ("rt", "trust")
    TIMEOUT = 150

    # ----- proven ------------------------------------------------------------
    def test_dkim_signed_aligned_take(self):
        tid, subject = self.new_ticket()
        last = self.history(tid)[-1][0]
        body = f"taking it {self.token()}"
        sent, qid = self.send_staff_ok(TAKE, f"[rt.test #{tid}] {subject}", body,
                                       sign=STAFF_DOMAIN)
        self.assertTaken(tid, last, body)
        line = self.summary(qid)
        self.assertIn(f", {DMARC_PROOF} ", line)
        self.assertIn(f"rt=<{TAKE}> -> rt queue=General action=take-comment (delivered", line)
        # the verifiers' results for this queue id are what RT got, and only they
        txn = self.added(tid, "Comments added by staff", last)[0]
        results = re.findall(r"(?m)^Authentication-Results: (.*(?:\n\s.*)*)",
                             self.headers_in_rt(tid, txn))
        self.assertEqual(len(results), 2, results)
        self.assertTrue(all(r.startswith(f"{AUTHSERV_ID}/{qid};") for r in results), results)
        self.assertTrue(any(f"dkim=pass" in r and f"header.d={STAFF_DOMAIN}" in r
                            for r in results), results)
        self.assertTrue(any(f"dmarc=pass" in r for r in results), results)

    def test_dkim_signed_aligned_resolve(self):
        tid, subject = self.new_ticket()
        last = self.history(tid)[-1][0]
        body = f"fixed {self.token()}"
        sent, qid = self.send_staff_ok(RESOLVE, f"[rt.test #{tid}] {subject}", body,
                                       sign=STAFF_DOMAIN)
        self.assertEqual(self.show(tid)["Status"], "resolved")
        added = self.added(tid, "Correspondence added by staff", last)
        self.assertEqual(len(added), 1, self.history(tid))
        self.assertIn(body, self.content_of(tid, added[0]))
        line = self.summary(qid)
        self.assertIn(f", {DMARC_PROOF} ", line)
        self.assertIn("action=correspond-resolve (delivered", line)

    def test_trusted_network_take(self):
        tid, subject = self.new_ticket()
        last = self.history(tid)[-1][0]
        body = f"from the office {self.token()}"
        sent, qid = self.send_staff_ok(TAKE, f"[rt.test #{tid}] {subject}", body,
                                       args=("--local-interface", TRUSTED_CLIENT))
        self.assertTaken(tid, last, body)
        self.assertIn(f", proof=network:{TRUSTED_CLIENT}/32, ", self.summary(qid))

    def test_smtp_auth_take(self):
        tid, subject = self.new_ticket()
        last = self.history(tid)[-1][0]
        body = f"submitted {self.token()}"
        sent, qid = self.send_staff_ok(TAKE, f"[rt.test #{tid}] {subject}", body,
                                       args=("--auth", "PLAIN", "--auth-user", SASL_USER,
                                             "--auth-password", SASL_PASSWORD))
        self.assertIn("235 2.7.0 Authentication successful", sent.transcript)
        self.assertTaken(tid, last, body)
        self.assertIn(f", proof=auth:{SASL_USER}, ", self.summary(qid))

    # ----- unproven: downgraded ------------------------------------------------
    def test_unsigned_take_is_downgraded(self):
        tid, subject = self.new_ticket()
        last = self.history(tid)[-1][0]
        body = f"unsigned {self.token()}"
        sent, qid = self.send_staff_ok(TAKE, f"[rt.test #{tid}] {subject}", body)
        self.assertDowngraded(tid, last, body)
        line = self.summary(qid)
        self.assertIn(", proof=none, ", line)
        self.assertIn(f"rt=<{TAKE}> -> rt queue=General action=comment (downgraded from "
                      "take-comment)", line)

    def test_forged_results_are_dropped_and_downgraded(self):
        tid, subject = self.new_ticket()
        last = self.history(tid)[-1][0]
        body = f"forged {self.token()}"
        sent, qid = self.send_staff_ok(TAKE, f"[rt.test #{tid}] {subject}", body,
                                       headers=(FORGED, GUESSED, FOREIGN))
        txn = self.assertDowngraded(tid, last, body)
        self.assertIn(", proof=none, ", self.summary(qid))
        # Postfix dropped all three before the milters (FOREIGN, which
        # OpenDKIM leaves alone, shows it was header_checks); OpenDMARC's own
        # verdict (no signature, p=reject: fail) is the only one RT got
        results = re.findall(r"(?m)^Authentication-Results: (.*)", self.headers_in_rt(tid, txn))
        self.assertEqual(results, [f"{AUTHSERV_ID}/{qid}; dmarc=fail (p=reject dis=none) "
                                   f"header.from={STAFF_DOMAIN}"])

    def test_signature_of_another_domain_is_downgraded(self):
        tid, subject = self.new_ticket()
        last = self.history(tid)[-1][0]
        body = f"other domain {self.token()}"
        sent, qid = self.send_staff_ok(TAKE, f"[rt.test #{tid}] {subject}", body,
                                       sign=OTHER_DOMAIN)
        txn = self.assertDowngraded(tid, last, body)
        self.assertIn(", proof=none, ", self.summary(qid))
        # the signature is good, only not the From: domain's
        headers = self.headers_in_rt(tid, txn)
        self.assertRegex(headers, rf"dkim=pass [^;]*header\.d={re.escape(OTHER_DOMAIN)}")
        self.assertRegex(headers, r"dmarc=fail")

    def test_unsigned_resolve_is_downgraded(self):
        tid, subject = self.new_ticket()
        last = self.history(tid)[-1][0]
        body = f"unsigned resolve {self.token()}"
        sent, qid = self.send_staff_ok(RESOLVE, f"[rt.test #{tid}] {subject}", body)
        self.assertNotEqual(self.show(tid)["Status"], "resolved")
        self.assertEqual(self.show(tid)["Owner"], "Nobody")
        self.assertEqual(len(self.added(tid, "Correspondence added by staff", last)), 1,
                         self.history(tid))
        self.assertIn("action=correspond (downgraded from correspond-resolve)",
                      self.summary(qid))

    def test_action_from_the_extension(self):
        tid, subject = self.new_ticket()
        last = self.history(tid)[-1][0]
        act = f"act+take-comment@{RT_DOMAIN}"
        body = f"by extension {self.token()}"
        sent, qid = self.send_staff_ok(act, f"[rt.test #{tid}] {subject}", body)
        self.assertDowngraded(tid, last, body)
        self.assertIn("action=comment (downgraded from take-comment)", self.summary(qid))
        last = self.history(tid)[-1][0]
        body = f"signed by extension {self.token()}"
        sent, qid = self.send_staff_ok(act, f"[rt.test #{tid}] {subject}", body,
                                       sign=STAFF_DOMAIN)
        self.assertTaken(tid, last, body)
        self.assertIn("action=take-comment (delivered", self.summary(qid))

    # ----- unproven: refused -----------------------------------------------------
    def test_reject_route_refuses_unproven(self):
        tid, subject = self.new_ticket()
        before = self.history(tid)
        sent = self.send_staff(STRICT, f"[rt.test #{tid}] {subject}", f"strict {self.token()}")
        self.assertReply(sent.data_reply(),
                         rf"^550 5\.7\.1 <{re.escape(STRICT)}>: this action needs an "
                         r"authenticated sender$", sent)
        self.assertNotEqual(sent.rc, 0)
        self.assertEqual(self.history(tid), before)
        qid = self.assertNotQueued(sent.msgid)
        self.assertIn(", proof=none, ", self.summary(qid))
        # the same, signed: carried out
        body = f"strict signed {self.token()}"
        sent, qid = self.send_staff_ok(STRICT, f"[rt.test #{tid}] {subject}", body,
                                       sign=STAFF_DOMAIN)
        self.assertTaken(tid, before[-1][0], body)


class PostfixWithoutHeaderChecks(StaffMail):
    """The same, less step 2 of the README (header_checks IGNORE): OpenDKIM's
    RemoveARAll is then what drops the forged results, of every form tried
    (the bare id, a made-up queue id, a comment before the id, upper case,
    an spf= result), before OpenDMARC and rt-milter see them. (That results
    which get through without this message's queue id prove nothing is
    tests/milter/test_trust.py's.)"""
    TIMEOUT = 180

    def test_opendkim_drops_forged_results(self):
        self.own_pair("trnohc", "postfix", config=TRUST_CONFIG, verifiers=True,
                      drop_inbound_results=False)
        tid, subject = self.new_ticket()
        last = self.history(tid)[-1][0]
        body = f"forged, no header_checks {self.token()}"
        dodges = (f"Authentication-Results: (ours) {AUTHSERV_ID}; dkim=pass header.d={STAFF_DOMAIN}",
                  f"Authentication-Results: {AUTHSERV_ID.upper()}; dkim=pass header.d={STAFF_DOMAIN}",
                  f"Authentication-Results: {AUTHSERV_ID}; spf=pass smtp.mailfrom={STAFF_DOMAIN}")
        sent, qid = self.send_staff_ok(TAKE, f"[rt.test #{tid}] {subject}", body,
                                       headers=(FORGED, GUESSED, *dodges, FOREIGN))
        txn = self.assertDowngraded(tid, last, body)
        self.assertIn(", proof=none, ", self.summary(qid))
        results = re.findall(r"(?m)^Authentication-Results: (.*)", self.headers_in_rt(tid, txn))
        # another host's results pass (no header_checks); ours are OpenDMARC's only
        self.assertEqual(sorted(results), sorted([
            f"{AUTHSERV_ID}/{qid}; dmarc=fail (p=reject dis=none) header.from={STAFF_DOMAIN}",
            FOREIGN.split(": ", 1)[1]]))

if __name__ == "__main__":
    unittest.main()
