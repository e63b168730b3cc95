"""test_log — rt-milter's log, end to end: one summary line per message with
an RT recipient, under the queue id the MTA itself gives that message (in
its 250 reply and in its own log), so a postmaster can follow a message
from the MTA's log into rt-milter's. Through the shared Postfix pair and,
for the same price, the shared Sendmail pair.
"""

import re
import unittest

from e2e_harness import ALICE, LOCAL_DOMAIN, RT_DOMAIN, E2ECase


class LogCases:
    def test_summary_line_has_mta_queue_id(self):
        tok = self.token()
        sent, qid = self.send_ok(f"rt@{RT_DOMAIN}", f"{tok} where is my line")
        self.assertEqual(self.mta.queue_id(sent.msgid), qid,
                         "the queue id in the 250 reply is the one in the MTA's log")
        line = self.summary(qid)
        self.assertRegex(line, rf"^rt-milter: {qid}: from=<{re.escape(ALICE)}>, client=\S+, "
                               rf"size=\d+, rt=<rt@{re.escape(RT_DOMAIN)}> -> rt queue=General "
                               r"action=correspond \(delivered, RT said: ok, [0-9.]+s\), "
                               r'verdict="accepted, [^"]+", delay=[0-9.]+$')
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
