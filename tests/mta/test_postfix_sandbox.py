"""test_postfix_sandbox — tests of packaging/postfix-sandbox itself, without a
milter (tests/mta).  One private Postfix per test; see mta_common."""

import os
import re
import time
import unittest

from mta_common import (POSTFIX_SANDBOX, RT_MAILGATE, Hang, Reply, SandboxCase,
                        maildir_files, wait_for)


class PostfixSandbox(SandboxCase):
    SANDBOX = POSTFIX_SANDBOX

    def setUp(self):
        super().setUp()
        if not os.access("/usr/sbin/postfix", os.X_OK):
            self.skipTest("postfix is not installed")

    def leftovers(self):
        conf = "MAIL_CONFIG=" + os.path.join(os.path.realpath(self.dir), "conf")
        return [p for p in self.live_pids() if self.environ_has(p, conf)]

    def test_local_delivery_exactly_once(self):
        self.start()
        self.check_local_delivery_once()
        self.assertRegex(self.maillog(), r"to=<bob@example\.net>.*status=sent")

    def test_rt_fallback_fields(self):
        self.check_rt_fallback()
        self.assertRegex(self.maillog(), r"relay=rt-correspond-ticket,.*status=sent")

    def test_rt_fallback_retries_when_rt_is_down(self):
        """rt-mailgate exit 75 (RT answered 503) defers; a flush delivers it:
        the copy is neither lost nor bounced."""
        stub = self.stub(Reply(503, b"busy\n"))
        self.start("--rt-fallback", stub.url, "--mailgate", RT_MAILGATE)
        self.send_ok(f"rt@{self.env['RT_DOMAIN']}", subject="retry me")
        self.assertEqual(len(stub.wait_for_requests(1, timeout=30)), 1)
        self.assertTrue(wait_for(lambda: re.search(r"status=deferred", self.maillog()), 20),
                        self.maillog()[-2000:])
        self.sandbox("flush", self.dir)
        reqs = stub.wait_for_requests(2, timeout=30)
        self.assertEqual(len(reqs), 2, self.maillog()[-2000:])
        self.assertTrue(wait_for(lambda: re.search(r"relay=rt-correspond,.*status=sent",
                                                   self.maillog()), 20))
        self.assertEqual(maildir_files(self.env["OUTGOING_MAILDIR"]), [], "bounced")

    def test_rt_domain_without_fallback_is_parked(self):
        self.start()
        self.send_ok(f"rt-comment+5@{self.env['RT_DOMAIN']}")
        self.assertTrue(wait_for(lambda: maildir_files(self.env["RT_FALLBACK_MAILDIR"]), 20))

    def test_refusals_at_rcpt(self):
        self.start()
        self.check_refusals()

    def test_milter_down(self):
        self.check_milter_down("451 4.7.1")
        with open(os.path.join(self.dir, "conf", "main.cf")) as f:
            main_cf = f.read()
        sock = os.path.join(os.path.realpath(self.dir), "no-such-milter.sock")
        self.assertIn(f"smtpd_milters = unix:{sock}\n", main_cf)

    def test_milter_spec_conversion(self):
        self.start("--milter", "inet:8891@127.0.0.1", "--milter", "inet6:8892@[::1]")
        with open(os.path.join(self.dir, "conf", "main.cf")) as f:
            main_cf = f.read()
        self.assertIn("smtpd_milters = inet:127.0.0.1:8891, inet:[::1]:8892\n", main_cf)
        for line in ("milter_default_action = tempfail", "milter_protocol = 6",
                     "milter_content_timeout = 300s", "in_flow_delay = 0"):
            self.assertIn(line + "\n", main_cf)
        r = self.sandbox("start", self.dir, "--milter", "inet:8891", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("give the host", r.stderr)

    def test_discard_all(self):
        self.start("--discard-all")
        self.send_ok(f"bob@{self.env['LOCAL_DOMAIN']}")
        self.send_ok(f"rt@{self.env['RT_DOMAIN']}")
        self.assertTrue(wait_for(lambda: len(re.findall(r"/discard\[\d+\]: .*status=sent",
                                                        self.maillog())) == 2, 20))
        self.assertEqual(maildir_files(os.path.join(self.env["MAILDIR"], "bob")), [])
        self.assertEqual(maildir_files(self.env["RT_FALLBACK_MAILDIR"]), [])

    def test_stop_and_restart(self):
        self.check_stop_and_restart()

    def test_stop_ends_busy_deliveries(self):
        """A pipe delivery stuck in rt-mailgate does not outlive stop."""
        stub = self.stub(Hang(), hang_limit=60)
        self.start("--rt-fallback", stub.url, "--mailgate", RT_MAILGATE)
        self.send_ok(f"rt@{self.env['RT_DOMAIN']}")
        self.assertTrue(wait_for(lambda: stub.connections >= 1, 30))
        t0 = time.monotonic()
        self.sandbox("stop", self.dir)
        self.assertLess(time.monotonic() - t0, 40)
        self.assertEqual(self.leftovers(), [])


if __name__ == "__main__":
    unittest.main()
