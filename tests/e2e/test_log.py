"""test_log — rt-milter's log, end to end: one summary line per message with
an RT recipient, under the queue id the MTA itself gives that message (in
its 250 reply and in its own log), so a postmaster can follow a message
from the MTA's log into rt-milter's, and the client's address as the MTA
sends it (macros with MAIL, the connect stage negotiated away). Through the
shared Postfix pair and, for the same price, the shared Sendmail pair.
"""

import re
import smtplib
import unittest

from e2e_harness import ALICE, LOCAL_DOMAIN, RT_DOMAIN, E2ECase


class LogCases:
    def test_summary_line_has_mta_queue_id(self):
        tok = self.token()
        sent, qid = self.send_ok(f"rt@{RT_DOMAIN}", f"{tok} where is my line")
        self.assertEqual(self.mta.queue_id(sent.msgid), qid,
                         "the queue id in the 250 reply is the one in the MTA's log")
        line = self.summary(qid)
        self.assertRegex(line, rf"^rt-milter: {qid}: from=<{re.escape(ALICE)}>, client=\S*\[?127\.0\.0\.1\]?, "
                               rf"size=\d+, rt=<rt@{re.escape(RT_DOMAIN)}> -> rt queue=General "
                               r"action=correspond \(delivered, RT said: ok, [0-9.]+s\), "
                               r'verdict="accepted, [^"]+", delay=[0-9.]+$')
        self.the_ticket(tok)

    def test_each_message_of_one_session_names_the_client(self):
        # Two messages over one SMTP connection: the client's address and
        # the MTA's name come with each MAIL, not once at connect, so the
        # second message's line names the client as the first's does, and
        # both become tickets.
        toks = [self.token(), self.token()]
        qids = []
        with smtplib.SMTP("127.0.0.1", self.mta.port, timeout=60) as smtp:
            for tok in toks:
                msg = (f"From: {ALICE}\r\nTo: rt@{RT_DOMAIN}\r\nSubject: {tok} one session\r\n"
                       f"Message-ID: <{tok}@example.org>\r\n\r\nbody\r\n")
                smtp.ehlo_or_helo_if_needed()
                self.assertEqual(smtp.mail(ALICE)[0], 250)
                self.assertEqual(smtp.rcpt(f"rt@{RT_DOMAIN}")[0], 250)
                code, text = smtp.data(msg.encode())
                line = f"{code} {text.decode()}"
                m = re.match(self.mta.QUEUE_ID_IN_REPLY, line)
                self.assertIsNotNone(m, line)
                qids.append(m.group(1))
        lines = [self.summary(qid) for qid in qids]
        for line in lines:
            self.assertRegex(line, r", client=\S*\[?127\.0\.0\.1\]?, ")
        self.assertEqual(re.search(r'verdict="([^"]*)"', lines[0]).group(1),
                         re.search(r'verdict="([^"]*)"', lines[1]).group(1))
        for tok in toks:
            self.the_ticket(tok)

    def test_no_summary_line_without_rt_recipient(self):
        tok = self.token()
        sent, qid = self.send_ok(f"bob@{LOCAL_DOMAIN}", f"{tok} not for RT")
        self.assertEqual(self.mta.queue_id(sent.msgid), qid)
        self.assertTrue(self.mta.wait_line(self.mta.TO_LINE.format(qid=re.escape(qid))),
                        "\n".join(self.mta.lines(qid)))
        self.assertNotIn(f" {qid}: ", self.pair.milter_log())


class Postfix(LogCases, E2ECase):
    PAIR = "postfix"
    FIXTURES = ("rt", "postfix")


class Sendmail(LogCases, E2ECase):
    PAIR = "sendmail"
    FIXTURES = ("rt", "sendmail")


if __name__ == "__main__":
    unittest.main()
