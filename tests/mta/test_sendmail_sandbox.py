"""test_sendmail_sandbox — tests of packaging/sendmail-sandbox itself, without
a milter (tests/mta).  One private Sendmail per test; see mta_common.  The
first test on a machine fills the shared .deb cache (apt-get download)."""

import os
import re
import subprocess
import time
import unittest

from mta_common import RT_MAILGATE, SENDMAIL_SANDBOX, Hang, SandboxCase, wait_for


class SendmailSandbox(SandboxCase):
    SANDBOX = SENDMAIL_SANDBOX

    def leftovers(self):
        d = os.path.realpath(self.dir)
        exe = os.path.join(d, "bin", "sendmail")
        mark = "SENDMAIL_SANDBOX=" + d
        return [p for p in self.live_pids()
                if self.exe_of(p) == exe or self.environ_has(p, mark)]

    def test_local_delivery_exactly_once(self):
        self.start()
        self.check_local_delivery_once()
        self.assertRegex(self.maillog(), r"to=<bob@example\.net>.*mailer=sbmaildir.*stat=Sent")

    def test_rt_fallback_fields(self):
        self.check_rt_fallback()
        self.assertRegex(self.maillog(), r"mailer=rtgate.*stat=Sent")

    def test_refusals_at_rcpt(self):
        self.start()
        self.check_refusals()

    def test_milter_down(self):
        self.check_milter_down("451 4.3.2")
        with open(os.path.join(self.dir, "etc", "sendmail.cf")) as f:
            cf = f.read()
        self.assertRegex(cf, r"(?m)^Xrtmilter, S=local:\S+no-such-milter\.sock, "
                             r"T=C:10s;S:30s;R:60s;E:5m$")  # accept: no F= flag

    def test_discard_all(self):
        self.start("--discard-all")
        self.send_ok(f"bob@{self.env['LOCAL_DOMAIN']}")
        self.send_ok(f"rt@{self.env['RT_DOMAIN']}")
        self.assertTrue(wait_for(lambda: len(re.findall(r"mailer=sbdiscard.*stat=Sent",
                                                        self.maillog())) == 2, 20),
                        self.maillog()[-2000:])
        self.assertEqual(os.listdir(self.env["MAILDIR"]), [])
        self.assertEqual(os.listdir(os.path.join(self.env["RT_FALLBACK_MAILDIR"])), [])

    def test_stop_and_restart(self):
        self.check_stop_and_restart()

    def test_stop_ends_orphaned_deliveries(self):
        """A background delivery stuck in rt-mailgate (its parent is init)
        does not outlive stop; the message stays queued."""
        stub = self.stub(Hang(), hang_limit=60)
        self.start("--rt-fallback", stub.url, "--mailgate", RT_MAILGATE)
        self.send_ok(f"rt@{self.env['RT_DOMAIN']}")
        self.assertTrue(wait_for(lambda: stub.connections >= 1, 30))
        busy = [p for p in self.leftovers() if p != int(self.env["MTA_PID"])]
        self.assertTrue(busy)
        self.sandbox("stop", self.dir)
        self.assertEqual(self.leftovers(), [])
        self.assertTrue([f for f in os.listdir(self.env["QUEUE_DIR"]) if f.startswith("qf")])

    def test_logs_to_file(self):
        self.start()
        self.send_ok(f"bob@{self.env['LOCAL_DOMAIN']}")
        self.assertTrue(wait_for(lambda: re.search(r"stat=Sent", self.maillog()), 20))
        self.assertIn("starting daemon (8.", self.maillog())

    def test_sendmail_cmd_lists_queue(self):
        self.start()
        t0 = time.monotonic()
        r = subprocess.run([self.env["SENDMAIL_CMD"], "-bp"], capture_output=True,
                           text=True, timeout=30)
        self.assertLess(time.monotonic() - t0, 10, "namespace missing: DNS sleep?")
        self.assertIn("queue is empty", r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
