"""test_fallback — the after-queue fallback, end to end (Postfix only): with
rt-milter not running and Postfix's milter_default_action = accept, mail for
an RT address is accepted, queued, and delivered to the real RT by our
rt-mailgate through the pipe(8) transport that packaging/postfix-sandbox
sets up (--rt-fallback), exactly once and without a bounce. The test starts
its own Postfix (no rt-milter) and stops it.
"""

import re
import time
import unittest

from e2e_harness import ALICE, RT_DOMAIN, E2ECase

DELIVERY_BOUND = 60      # s for the queued copy to become a ticket
FLUSH_AFTER = 5          # s: then ask Postfix to retry deferred mail now


class Postfix(E2ECase):
    TIMEOUT = 150

    def test_mailgate_delivers_when_milter_down(self):
        mta = self.own_pair("fallback", "postfix", milter=False,
                            mta_args=("--milter-default-action", "accept"))
        tok = self.token()
        subject = f"{tok} milter on holiday"
        sent, qid = self.send_ok(f"rt@{RT_DOMAIN}", subject)
        # Postfix noticed the milter was missing and went on without it
        self.assertTrue(mta.wait_line(
            rf"warning: connect to Milter service unix:{re.escape(self.pair.absent_socket)}: "),
            mta.maillog()[-2000:])
        t0, flushed = time.monotonic(), False
        while not self.search(tok) and time.monotonic() - t0 < DELIVERY_BOUND:
            if not flushed and time.monotonic() - t0 > FLUSH_AFTER:
                mta.flush()
                flushed = True
            time.sleep(0.5)
        tid = self.the_ticket(tok)
        t = self.show(tid)
        self.assertEqual((t["Queue"], t["Subject"], t["Requestors"]), ("General", subject, ALICE))
        self.assertTrue(mta.wait_line(rf" {qid}: removed$"), "\n".join(mta.lines(qid)))
        self.assertEqual(mta.deliveries(qid), [(f"rt@{RT_DOMAIN}", "rt-correspond")],
                         "\n".join(mta.lines(qid)))
        self.assertEqual(self.the_ticket(tok), tid, "delivered once")
        self.assertNothingElsewhere()


if __name__ == "__main__":
    unittest.main()
