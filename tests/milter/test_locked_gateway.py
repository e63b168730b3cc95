"""test_locked_gateway — the real rt-milter posting to a locked gateway
(issue 11, part 3): the RT stub over TLS asks for a client certificate
(test CA); rt-milter's [rt] has client_cert, client_key and header_files.
RT gets the certificate and the header with the file's value; neither the
log nor --check-config ever shows the value; a secret file others can read
stops rt-milter at load with the key, the path and the reason.
"""

import os
import subprocess
import sys

from milter_harness import (GENERAL, HERE, RT_MILTER, SENDER, MilterTestCase, RtMilter, rcpt_list,
                            run_miltertest, write_config)

sys.path.insert(0, os.path.join(HERE, "..", "relay"))
from rt_stub import RTStub, TestCA  # noqa: E402

RT = "<rt@example.com>"
SECRET = "9c8b7a-milter-gateway-secret"
HEADER = "X-RT-Gateway-Secret"


class LockedGateway(MilterTestCase):
    def setUp(self):
        super().setUp()
        self.ca = TestCA(self.workdir)
        self.server = self.ca.issue("server", "localhost", "DNS:localhost")
        self.client = self.ca.issue("client", "rt-milter-test", client=True)
        self.secret = os.path.join(self.workdir, "gateway.secret")
        with open(self.secret, "w") as fh:
            fh.write(SECRET + "\n")
        os.chmod(self.secret, 0o600)

    def locked(self, **extra) -> dict:
        return {"rt.ca_file": self.ca.cert, "rt.client_cert": self.client.cert,
                "rt.client_key": self.client.key, "rt.header_files": {HEADER: self.secret}, **extra}

    def test_certificate_and_header_reach_rt_and_the_secret_is_never_shown(self):
        stub = RTStub(tls=self.server, client_ca=self.ca.cert).start()
        self.addCleanup(stub.stop)
        milter = RtMilter(self.workdir, stub.url, "unix", **self.locked())
        self.addCleanup(milter.kill)
        milter.start()
        run = run_miltertest("accept.lua", {"SOCKET": milter.socket_spec, "TESTDIR": HERE, "SENDER": SENDER,
                                            "QID": "4LCK01", "RT_RCPTS": rcpt_list([RT])})
        self.assertEqual(milter.stop(), 0, milter.log())
        self.assertTrue(stub.quiesce(5.0))
        self.assertEqual(run.rc, 0, run.describe())
        self.assertEqual(len(stub.requests), 1)
        req = stub.requests[0]
        self.assertPosted(req, GENERAL)
        self.assertEqual(req.client_cert_cn, "rt-milter-test")
        self.assertEqual(req.header_all(HEADER), [SECRET])
        self.assertNotIn(SECRET, milter.log())
        check = subprocess.run([RT_MILTER, "--check-config", "-c", milter.config_path], capture_output=True,
                               text=True, timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertIn(f"  client certificate {self.client.cert}, key {self.client.key}\n", check.stdout)
        self.assertIn(f"  header {HEADER}: value from {self.secret} (not shown)\n", check.stdout)
        self.assertIn(f"rt.header_files.{HEADER} {self.secret}: readable", check.stdout)
        self.assertIn(f"rt.client_key {self.client.key}: readable", check.stdout)
        self.assertNotIn(SECRET, check.stdout + check.stderr)

    def test_a_secret_file_others_can_read_stops_it_at_load(self):
        os.chmod(self.secret, 0o644)
        config = os.path.join(self.workdir, "rt-milter.toml")
        write_config(config, "unix:" + os.path.join(self.workdir, "s.sock"), "https://localhost:1",
                     os.path.join(self.workdir, "spool"), **self.locked())
        for args in (["--check-config"], ["--log-stderr"]):
            with self.subTest(args=args):
                r = subprocess.run([RT_MILTER, *args, "-c", config], capture_output=True, text=True,
                                   timeout=30, stdin=subprocess.DEVNULL)
                self.assertEqual(r.returncode, 78, r.stderr)
                self.assertRegex(r.stderr, rf"{config}:\d+:\d+: rt.header_files.{HEADER}: {self.secret} has "
                                           r"mode 0644: others than its owner may read or write it; chmod 600 it")
                self.assertNotIn(SECRET, r.stdout + r.stderr)
                self.assertFalse(os.path.exists(os.path.join(self.workdir, "s.sock")))
