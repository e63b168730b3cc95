"""test_delivery — what a sender and RT see, end to end: swaks -> a real MTA
-> rt-milter -> a real RT 5. The same cases (DeliveryCases) run through the
shared Postfix pair and the shared Sendmail pair (ctest fixtures, see
e2e_harness); each asserts the SMTP reply swaks got, the effect in RT (read
back over REST 1.0) and in the MTA (its log, queue and maildirs). Every
message carries a token unique to the run and test, and tests only touch
tickets they created, so they may run in parallel.
"""

import os
import re
import socket
import tempfile
import unittest

from e2e_harness import ALICE, LOCAL_DOMAIN, MAX_MESSAGE_SIZE, RT_DOMAIN, E2ECase, wait_for

RT = f"rt@{RT_DOMAIN}"
BOB = f"bob@{LOCAL_DOMAIN}"


class DeliveryCases:
    """The cases; mixed into one E2ECase subclass per MTA below."""
    ALL_RT_VERDICT = ""   # rt-milter's summary verdict when RT took every recipient

    def assertConsumed(self, qid: str) -> None:
        """RT took the message whole: the MTA disposed of it without any
        delivery, bounce or queue file."""
        done = self.mta.ALL_RT_DISPOSAL.format(qid=re.escape(qid))
        self.assertTrue(self.mta.wait_line(done), "\n".join(self.mta.lines(qid)))
        self.assertEqual(self.mta.deliveries(qid), [], "\n".join(self.mta.lines(qid)))
        # not a milter discard on Postfix: it would count as undelivered
        # and throttle new mail (in_flow_delay)
        self.assertNotIn("milter-discard", "\n".join(self.mta.lines(qid)))
        self.assertEqual(self.mta.queue_files(qid), [])
        self.assertNothingElsewhere()

    # ----- 1 ------------------------------------------------------------
    def test_new_ticket(self):
        tok = self.token()
        subject = f"{tok} printer on fire"
        sent, qid = self.send_ok(RT, subject, body=f"first line {tok}\nsecond")
        # delivered during the session: the ticket exists when the 250 came
        tid = self.the_ticket(tok)
        t = self.show(tid)
        self.assertEqual((t["Queue"], t["Subject"], t["Requestors"], t["Status"]),
                         ("General", subject, ALICE, "new"))
        hist = self.history(tid)
        self.assertEqual(hist[0][1], f"Ticket created by {ALICE}")
        self.assertIn(f"first line {tok}", self.content_of(tid, hist[0][0]))
        self.assertConsumed(qid)
        line = self.summary(qid)
        self.assertIn(f"rt=<{RT}> -> rt queue=General action=correspond (delivered, RT said: ok", line)
        self.assertIn(f'verdict="{self.ALL_RT_VERDICT}"', line)

    # ----- 2 ------------------------------------------------------------
    def test_reply_by_subject_tag(self):
        tid, subject = self.new_ticket()
        last = self.history(tid)[-1][0]
        tok = self.token()
        sent, qid = self.send_ok(RT, f"Re: [rt.test #{tid}] {subject}",
                                 body=f"reply body {tok}")
        added = self.added(tid, f"Correspondence added by {ALICE}", last)
        self.assertEqual(len(added), 1, self.history(tid))
        self.assertIn(f"reply body {tok}", self.content_of(tid, added[0]))
        self.assertEqual(self.search(subject.split()[0]), {tid: subject}, "a second ticket")
        self.assertConsumed(qid)

    # ----- 3 ------------------------------------------------------------
    def test_comment_by_exact_address(self):
        tid, subject = self.new_ticket()
        last = self.history(tid)[-1][0]
        tok = self.token()
        sent, qid = self.send_ok(f"rt+comment@{RT_DOMAIN}", f"[rt.test #{tid}] {subject}",
                                 body=f"comment body {tok}")
        added = self.added(tid, f"Comments added by {ALICE}", last)
        self.assertEqual(len(added), 1, self.history(tid))
        self.assertIn(f"comment body {tok}", self.content_of(tid, added[0]))
        self.assertEqual(self.added(tid, f"Correspondence added by {ALICE}", last), [])
        self.assertEqual(self.show(tid)["Status"], "new")  # a comment does not open it
        # the exact route, not rt@ with extension "comment": no extension header
        top = self.attachment(tid, self.transaction(tid, added[0])["attachment_ids"][0])
        self.assertNotIn("X-RT-Mail-Extension", top["Headers"])
        self.assertIn("action=comment (delivered", self.summary(qid))
        self.assertConsumed(qid)

    def test_reply_by_ticket_extension(self):
        tid, subject = self.new_ticket()
        last = self.history(tid)[-1][0]
        tok = self.token()
        other = f"{tok} no tag in this subject"
        sent, qid = self.send_ok(f"rt+{tid}@{RT_DOMAIN}", other, body=f"via extension {tok}")
        added = self.added(tid, f"Correspondence added by {ALICE}", last)
        self.assertEqual(len(added), 1, self.history(tid))
        self.assertIn(f"via extension {tok}", self.content_of(tid, added[0]))
        self.assertNoTicket(tok)
        # rt-milter prepends what rt-mailgate and local delivery would
        top = self.attachment(tid, self.transaction(tid, added[0])["attachment_ids"][0])
        self.assertRegex(top["Headers"], rf"(?m)^X-RT-Mail-Extension: {tid}$")
        self.assertRegex(top["Headers"], rf"(?m)^Return-Path: <{re.escape(ALICE)}>$")
        self.assertEqual(self.show(tid)["Subject"], subject)
        self.assertIn(f"rt=<rt+{tid}@{RT_DOMAIN}> -> rt queue=General action=correspond ticket={tid} (delivered",
                      self.summary(qid))
        self.assertConsumed(qid)

    # ----- 4 ------------------------------------------------------------
    def test_unknown_queue_tempfails(self):
        tok = self.token()
        sent = self.send(f"nosuchqueue@{RT_DOMAIN}", f"{tok} lost mail")
        self.assertEqual(sent.rcpt_reply(f"nosuchqueue@{RT_DOMAIN}")[:3], "250", sent.describe())
        self.assertReply(sent.data_reply(),
                         r"^451 4\.3\.0 message for "
                         rf"<nosuchqueue@{re.escape(RT_DOMAIN)}> not delivered: RT did not "
                         r"take it; try again later$", sent)
        self.assertNotEqual(sent.rc, 0)
        self.assertNoTicket(tok)
        qid = self.assertNotQueued(sent.msgid)
        self.assertIn("(temporary, RT said: temporary failure", self.summary(qid))
        self.assertNothingElsewhere()

    # ----- 5 ------------------------------------------------------------
    def test_take_refused(self):
        tid, subject = self.new_ticket(to=f"bugs@{RT_DOMAIN}", queue="bugs")
        before = self.history(tid)
        tok = self.token()
        sent = self.send(f"take@{RT_DOMAIN}", f"[rt.test #{tid}] {subject}",
                         body=f"take attempt {tok}")
        self.assertReply(sent.data_reply(),
                         rf"^550 5\.7\.1 RT refused the message for <take@{re.escape(RT_DOMAIN)}>$",
                         sent)
        self.assertNotEqual(sent.rc, 0)
        self.assertEqual(self.show(tid)["Owner"], "Nobody")
        self.assertEqual(self.history(tid), before, "nothing recorded, not even the comment")
        # RT itself refused it (and told alice), not rt-milter
        bounces = [m for m in self.mails_with(f"take attempt {tok}")
                   if re.search(r"(?m)^Subject: Permission Denied$", m)]
        self.assertEqual(len(bounces), 1, "Permission Denied mail in RT's outgoing.mbox")
        qid = self.assertNotQueued(sent.msgid)
        # loopback is a trusted network in the shared pairs: the take is
        # proven, and it is RT that refuses it (alice may not own tickets)
        self.assertIn(", proof=network:127.0.0.1/32, ", self.summary(qid))
        self.assertIn("action=take-comment (refused, RT said: not ok", self.summary(qid))
        self.assertNothingElsewhere()

    # ----- 6 ------------------------------------------------------------
    def test_rt_down_tempfails(self):
        with socket.socket() as s:  # the [servers.down] port is closed
            self.assertNotEqual(s.connect_ex(("127.0.0.1", 1)), 0)
        tok = self.token()
        sent = self.send(f"down@{RT_DOMAIN}", f"{tok} nobody home")
        self.assertReply(sent.data_reply(),
                         rf"^451 4\.4\.1 message for <down@{re.escape(RT_DOMAIN)}> not delivered: "
                         r"RT could not be reached; try again later$", sent)
        self.assertNotEqual(sent.rc, 0)
        self.assertNoTicket(tok)
        qid = self.assertNotQueued(sent.msgid)
        # how it failed (curl's words, the host) is for the log only
        self.assertRegex(self.summary(qid),
                         rf"rt=<down@{re.escape(RT_DOMAIN)}> -> down \(temporary, .*Connection refused")
        self.assertNothingElsewhere()

    # ----- 7 ------------------------------------------------------------
    def test_rt_and_local_recipient(self):
        tok = self.token()
        subject = f"{tok} for RT and bob"
        sent, qid = self.send_ok([RT, BOB], subject)
        for rcpt in (RT, BOB):
            self.assertRegex(sent.rcpt_reply(rcpt), r"^250 2\.1\.5 ", sent.describe())
        tid = self.the_ticket(tok)
        self.assertEqual(self.show(tid)["Requestors"], ALICE)
        # bob's copy, once; the RT recipient was removed, not delivered
        self.assertTrue(self.mta.wait_line(self.mta.TO_LINE.format(qid=re.escape(qid))),
                        "\n".join(self.mta.lines(qid)))
        self.assertTrue(wait_for(lambda: not self.mta.queue_files(qid), 15),
                        self.mta.queue_files(qid))
        self.assertEqual([to for to, _ in self.mta.deliveries(qid)], [BOB],
                         "\n".join(self.mta.lines(qid)))
        got = self.maildir_with("bob", tok)
        self.assertEqual(len(got), 1, got)
        with open(got[0], errors="replace") as f:
            text = f.read()
        self.assertRegex(text, rf"(?m)^Subject: {re.escape(subject)}$")
        self.assertRegex(text, rf"(?m)^Message-Id: <{re.escape(sent.msgid)}>$")
        self.assertEqual(self.the_ticket(tok), tid, "ticket created exactly once")
        line = self.summary(qid)
        self.assertIn('verdict="accepted, 1 RT recipient(s) removed, 1 other(s) kept"', line)
        self.assertNothingElsewhere()

    # ----- 8 ------------------------------------------------------------
    def test_bad_extension_refused_at_rcpt(self):
        tok = self.token()
        bad = f"rt+abc@{RT_DOMAIN}"
        sent, qid = self.send_ok([bad, BOB], f"{tok} half refused")
        self.assertReply(sent.rcpt_reply(bad),
                         r'^550 5\.1\.1 .*<rt\+abc@rt\.example\.com>: "abc" is not a ticket number$',
                         sent)
        self.assertRegex(sent.rcpt_reply(BOB), r"^250 2\.1\.5 ", sent.describe())
        self.assertTrue(wait_for(lambda: self.maildir_with("bob", tok), 15),
                        "\n".join(self.mta.lines(qid)))
        self.assertTrue(wait_for(lambda: not self.mta.queue_files(qid), 15))
        self.assertEqual(len(self.maildir_with("bob", tok)), 1)
        self.assertEqual([to for to, _ in self.mta.deliveries(qid)], [BOB])
        self.assertNoTicket(tok)
        self.assertEqual(self.pair.summary_lines(qid), [], "no RT recipient, no summary")
        self.assertIn(f"refused recipient <{bad}> from=<{ALICE}>: 5.1.1", self.pair.milter_log())
        self.assertNothingElsewhere()

    # ----- 9 ------------------------------------------------------------
    def test_body_over_the_size_limit_refused_at_end_of_data(self):
        """No SIZE= from the client, so the limit is found in the body.
        Headers and body are "no reply" milter stages (the MTA does not
        wait for an answer to each), so rt-milter gives its 552 at the end
        of DATA; nothing reaches RT or the queue."""
        tok = self.token()
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            line = f"{tok} " + "x" * 70 + "\n"
            f.write(line * (MAX_MESSAGE_SIZE // len(line) + 1000))
        self.addCleanup(os.unlink, f.name)
        sent = self.send(RT, f"{tok} too big", body_file=f.name)
        self.assertReply(sent.data_reply(),
                         rf"^552 5\.3\.4 message too big for RT \(over {MAX_MESSAGE_SIZE} bytes\)$", sent)
        self.assertNotEqual(sent.rc, 0)
        self.assertNoTicket(tok)
        qid = self.assertNotQueued(sent.msgid)
        self.assertIn(f"{qid}: from=<{ALICE}>: not posted to RT: 552 5.3.4 message too big",
                      self.pair.milter_log())
        self.assertNothingElsewhere()


class Postfix(DeliveryCases, E2ECase):
    PAIR = "postfix"
    FIXTURES = ("rt", "postfix")
    ALL_RT_VERDICT = "accepted, 1 RT recipient(s) removed"


class Sendmail(DeliveryCases, E2ECase):
    PAIR = "sendmail"
    FIXTURES = ("rt", "sendmail")
    ALL_RT_VERDICT = "accepted, discarded (every recipient delivered to RT)"


if __name__ == "__main__":
    unittest.main()
