"""test_hostile_smtp — the hostile review's findings that come through Postfix
(issue 9), end to end: raw SMTP (smtplib, and bytes no polite client
sends) -> the shared private Postfix -> rt-milter -> the shared real RT 5.

- finding 6: address forms Postfix rewrites into an RT address after the
  milter has looked at them (a bang path, the percent hack at an address
  literal of this host, a trailing dot) get rt-milter's own answer at RCPT;
  nothing reaches RT or the after-queue fallback by that detour;
- finding 4: one message to forty extensions of a route that uses none is
  one POST, one ticket; past max_rt_targets distinct targets each further
  RT recipient gets 452 4.5.3 at RCPT;
- finding 7: a CR in the sender's quoted local part (Postfix takes it)
  never reaches a header RT reads: RT recipients get 550 5.1.7, the other
  recipient its copy.
"""

import re
import smtplib
import unittest

from e2e_harness import ALICE, LOCAL_DOMAIN, RT_DOMAIN, SEND_TIMEOUT, E2ECase, wait_for

BOB = f"bob@{LOCAL_DOMAIN}"


def message(subject: str, body: str) -> bytes:
    return (f"From: {ALICE}\r\nTo: undisclosed-recipients:;\r\nSubject: {subject}\r\n"
            f"Message-Id: <{subject.split()[0]}@e2e.test>\r\n\r\n{body}\r\n").encode()


class Postfix(E2ECase):
    PAIR = "postfix"
    FIXTURES = ("rt", "postfix")

    def smtp(self) -> smtplib.SMTP:
        s = smtplib.SMTP("127.0.0.1", self.mta.port, timeout=SEND_TIMEOUT)
        self.addCleanup(s.close)
        s.ehlo("client.e2e.test")
        return s

    def raw(self, s: smtplib.SMTP, line: bytes) -> tuple:
        """A command sent byte for byte (smtplib refuses a CR inside one)."""
        s.sock.sendall(line + b"\r\n")
        return s.getreply()

    def assertBobsCopyOnly(self, tok: str) -> None:
        self.assertTrue(wait_for(lambda: self.maildir_with("bob", tok), 15), "bob's copy")
        self.assertEqual(len(self.maildir_with("bob", tok)), 1)
        self.assertNoTicket(tok)
        self.assertNothingElsewhere()  # in particular nothing parked for the fallback

    def test_forms_postfix_rewrites_into_an_rt_address_are_refused(self):
        tok = self.token()
        # rt@ takes a ticket number as extension: "abc" is refused at RCPT
        # when written plainly; these forms used to slip past that check.
        forms = {f"{RT_DOMAIN}!rt+abc": r"^550 5\.1\.3 .*not accepted; send to <rt\+abc@rt\.example\.com>",
                 f"rt+abc%{RT_DOMAIN}@[127.0.0.1]": r"^550 5\.1\.3 .*not accepted; send to <rt\+abc@rt\.example\.com>",
                 f"rt+abc@{RT_DOMAIN}.": r'^550 5\.1\.1 .*"abc" is not a ticket number'}
        s = self.smtp()
        self.assertEqual(s.mail(ALICE)[0], 250)
        for rcpt, want in forms.items():
            code, text = s.rcpt(rcpt)
            self.assertRegex(f"{code} {text.decode()}", want, rcpt)
        self.assertEqual(s.rcpt(BOB)[0], 250)
        self.assertEqual(s.data(message(f"{tok} detours", "for bob only"))[0], 250)
        s.quit()
        self.assertBobsCopyOnly(tok)
        log = self.pair.milter_log()
        self.assertIn(f"refused recipient <{RT_DOMAIN}!rt+abc> from=<{ALICE}>: 5.1.3", log)

    def test_many_unused_extensions_make_one_ticket(self):
        tok = self.token()
        rcpts = [f"bugs+{i}@{RT_DOMAIN}" for i in range(1, 41)]
        s = self.smtp()
        refused = s.sendmail(ALICE, rcpts, message(f"{tok} fan-out", "forty RT recipients"))
        self.assertEqual(refused, {})
        s.quit()
        tid = self.the_ticket(tok)  # exactly one
        self.assertEqual(self.show(tid)["Queue"], "bugs")
        qid = self.mta.queue_id(f"{tok}@e2e.test")
        line = self.summary(qid)
        self.assertEqual(line.count(" -> rt queue=bugs"), 1, line)
        self.assertIn("accepted, 40 RT recipient(s) removed", line)

    def test_distinct_targets_past_the_cap_are_deferred(self):
        # ticket numbers no test creates; the transaction ends before DATA
        rcpts = [f"rt+{990000 + i}@{RT_DOMAIN}" for i in range(12)]
        s = self.smtp()
        self.assertEqual(s.mail(ALICE)[0], 250)
        got = [s.rcpt(r) for r in rcpts]
        s.rset()
        s.quit()
        self.assertEqual([c for c, _ in got], [250] * 10 + [452] * 2, got)
        self.assertRegex(got[10][1].decode(), r"^4\.5\.3 too many RT recipients in one message")

    def test_a_cr_in_the_sender_never_reaches_rt(self):
        tok = self.token()
        s = self.smtp()
        code, text = self.raw(s, b'MAIL FROM:<"x\rRT-Send-Cc: victim@example.org"@example.org>')
        self.assertEqual(code, 250, text)  # Postfix takes it: the milter must not
        code, text = s.rcpt(f"bugs@{RT_DOMAIN}")
        self.assertEqual(code, 550, text)
        self.assertRegex(text.decode(), r"^5\.1\.7 the envelope sender address is not valid")
        self.assertEqual(s.rcpt(BOB)[0], 250)
        self.assertEqual(s.data(message(f"{tok} crafted sender", "for bob only"))[0], 250)
        s.quit()
        self.assertBobsCopyOnly(tok)
        self.assertFalse(re.search(r"(?m)^RT-Send-Cc", self.pair.milter_log()))


if __name__ == "__main__":
    unittest.main()
