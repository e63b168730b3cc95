"""mta_common — helpers shared by the tests of packaging/postfix-sandbox and
packaging/sendmail-sandbox (tests/mta).  Owns nothing else.

Each test starts its own sandbox in a fresh temporary folder on a port the
sandbox picks, sends with swaks, and stops the sandbox in tearDown (also when
the test failed), so tests are independent and can run in parallel (ctest -j).
RT's gateway is played by tests/relay/rt_stub.py's RTStub. DIR/env is read
with packaging/sandbox_common.py's read_env, beside the code that writes it.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "relay"))
sys.path.insert(0, os.path.join(REPO, "packaging"))
from rt_stub import RTStub, Reply, Hang  # noqa: E402,F401  (tests/relay; re-exported)
# DIR/env of any sandbox, read by the module that writes it (re-exported),
# and /proc as the sandboxes themselves scan it
import sandbox_common  # noqa: E402
from sandbox_common import read_env  # noqa: E402,F401

POSTFIX_SANDBOX = os.path.join(REPO, "packaging", "postfix-sandbox")
SENDMAIL_SANDBOX = os.path.join(REPO, "packaging", "sendmail-sandbox")
SWAKS = shutil.which("swaks") or "/usr/bin/swaks"
RT_MAILGATE = os.environ.get("RT_MAILGATE") or "/usr/bin/rt-mailgate"
SANDBOX_TIMEOUT = 180  # seconds for one sandbox command (a first sendmail
                       # start may download the .debs)
QUEUE_BOUND = 60       # seconds for the MTA to finish with what it accepted
# The queue files that hold a message until every delivery of it is done:
# Postfix's queues below queue_directory, Sendmail's qf/df files in mqueue.
POSTFIX_QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")


def wait_for(pred, timeout, step=0.05):
    """Poll pred() until true or timeout; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def maildir_files(path):
    new = os.path.join(path, "new")
    try:
        return sorted(os.path.join(new, f) for f in os.listdir(new))
    except FileNotFoundError:
        return []


class SandboxCase(unittest.TestCase):
    """Base class: self.start(...) starts the sandbox tool SANDBOX in a fresh
    folder; tearDown stops it and checks that none of its processes live on."""

    SANDBOX = None          # path of the sandbox program
    START_ARGS = ()         # extra arguments to every start

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("the MTA sandboxes need root")
        if not os.access(SWAKS, os.X_OK):
            self.skipTest("swaks is not installed")
        self.dir = tempfile.mkdtemp(prefix="mta-test-")
        self.started = False
        self.stubs = []

    def tearDown(self):
        if self.started:
            self.sandbox("stop", self.dir)
            self.assertEqual(self.leftovers(), [], "processes survived stop")
        for stub in self.stubs:
            stub.stop()
        if not self.failed():
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print(f"\nsandbox kept for inspection: {self.dir}", file=sys.stderr)

    def failed(self):
        outcome = getattr(self, "_outcome", None)
        result = getattr(outcome, "result", None)
        if result is None:
            return False
        return any(t is self for t, _ in result.failures + result.errors)

    # ----- running the tools --------------------------------------------
    def sandbox(self, *args, check=True):
        r = subprocess.run([sys.executable, self.SANDBOX, *args], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=SANDBOX_TIMEOUT)
        if check and r.returncode != 0:
            self.fail(f"{os.path.basename(self.SANDBOX)} {' '.join(args)} failed "
                      f"(exit {r.returncode}):\n{r.stdout}{r.stderr}")
        return r

    def start(self, *args):
        t0 = time.monotonic()
        r = self.sandbox("start", self.dir, *self.START_ARGS, *args)
        self.started = True
        self.start_seconds = time.monotonic() - t0
        self.port = int(r.stdout.strip().splitlines()[-1])
        self.env = read_env(os.path.join(self.dir, "env"))
        self.assertEqual(self.env["SMTP_PORT"], str(self.port))
        return r

    def stub(self, *script, **kw):
        s = RTStub(script=script, **kw).start()
        self.stubs.append(s)
        return s

    def swaks(self, to, sender="alice@example.org", subject=None, body=None):
        """Send one message; return (exit code, transcript)."""
        cmd = [SWAKS, "--server", f"127.0.0.1:{self.port}", "--from", sender,
               "--to", to, "--timeout", "30", "--helo", "client.test"]
        if subject:
            cmd += ["--h-Subject", subject]
        if body:
            cmd += ["--body", body]
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=90)
        return r.returncode, r.stdout + r.stderr

    def send_ok(self, to, **kw):
        rc, out = self.swaks(to, **kw)
        self.assertEqual(rc, 0, f"swaks to {to} failed:\n{out}")
        self.assertRegex(out, r"<-  250 2\.0\.0", out)
        return out

    def reply_to_rcpt(self, to):
        """The server's reply line to RCPT TO:<to> (swaks stops after it on error)."""
        rc, out = self.swaks(to)
        m = re.search(r"-> RCPT TO:<[^>]*>\n(<[-*]+ +\d{3}[^\n]*)", out)
        self.assertTrue(m, f"no RCPT reply in:\n{out}")
        return m.group(1)

    def unique(self):
        return uuid.uuid4().hex[:12]

    def queued(self):
        """Files of messages the MTA still holds (QUEUE_DIR of DIR/env)."""
        q = self.env["QUEUE_DIR"]
        dirs = ([os.path.join(q, d) for d in POSTFIX_QUEUES] if self.env["MTA"] == "postfix"
                else [q])
        return [os.path.join(r, f) for d in dirs for r, _, files in os.walk(d) for f in files]

    def wait_queue_empty(self):
        """Until the MTA has finished with every message it accepted: a
        message leaves the queue only after its last delivery (a duplicate
        included) has returned, so what arrived by then is all that will."""
        self.assertTrue(wait_for(lambda: not self.queued(), QUEUE_BOUND),
                        f"still queued after {QUEUE_BOUND} s: {self.queued()}\n"
                        + self.maillog()[-3000:])

    def maillog(self):
        try:
            with open(self.env["MAILLOG"], errors="replace") as f:
                return f.read()
        except (OSError, KeyError):
            return ""

    # ----- processes ----------------------------------------------------
    def leftovers(self):
        """Live processes that belong to this sandbox (subclass decides)."""
        raise NotImplementedError

    @staticmethod
    def live_pids():
        """Live (non-zombie) pids but this process's."""
        return [pid for pid, _ in sandbox_common.live_processes()]

    environ_has = staticmethod(sandbox_common.environ_has)
    exe_of = staticmethod(sandbox_common.exe_of)

    # ----- shared scenarios ---------------------------------------------
    def check_local_delivery_once(self):
        token = self.unique()
        self.send_ok(f"bob@{self.env['LOCAL_DOMAIN']}", subject=f"local {token}",
                     body=f"body {token}")
        box = os.path.join(self.env["MAILDIR"], "bob")
        self.assertTrue(wait_for(lambda: maildir_files(box), 20),
                        f"nothing delivered to {box}\n{self.maillog()[-3000:]}")
        self.wait_queue_empty()  # a duplicate would have been stored by now
        files = maildir_files(box)
        self.assertEqual(len(files), 1, files)
        with open(files[0], errors="replace") as f:
            text = f.read()
        self.assertIn(f"Subject: local {token}", text)
        self.assertIn(f"body {token}", text)
        self.assertRegex(text, r"(?m)^Return-Path: <alice@example\.org>$")
        self.assertEqual(maildir_files(self.env["RT_FALLBACK_MAILDIR"]), [])

    def check_rt_fallback(self, extra_start=()):
        """rt@, rt+123@, rt-comment@, bugs-comment+9@ reach the stub once each
        with the right fields; an unknown NAME@ is parked in rt-mail/."""
        stub = self.stub()
        self.start("--rt-fallback", stub.url, "--mailgate", RT_MAILGATE,
                   "--rt-alias", "bugs=bugs", *extra_start)
        d = self.env["RT_DOMAIN"]
        want = {  # local part -> (queue, action, ticket)
            "rt": ("General", "correspond", None),
            "rt+123": ("General", "correspond", "123"),
            "rt-comment": ("General", "comment", None),
            "rt+comment": ("General", "comment", None),
            "bugs-comment+9": ("bugs", "comment", "9"),
        }
        tokens = {}
        for lp in want:
            tokens[lp] = self.unique()
            self.send_ok(f"{lp}@{d}", subject=f"fallback {tokens[lp]}")
        self.send_ok(f"nobody-knows@{d}", subject="parked")
        reqs = stub.wait_for_requests(len(want), timeout=60)
        self.assertEqual(len(reqs), len(want),
                         f"stub saw {len(reqs)} requests\n{self.maillog()[-3000:]}")
        self.assertTrue(wait_for(lambda: maildir_files(self.env["RT_FALLBACK_MAILDIR"]),
                                 20), "unknown RT name not parked in rt-mail/")
        self.wait_queue_empty()  # a duplicate POST would have been made by now
        reqs = stub.requests
        self.assertEqual(len(reqs), len(want), "a message was posted twice")
        by_token = {}
        for req in reqs:
            self.assertEqual(req.path, "/REST/1.0/NoAuth/mail-gateway")
            fields = {k: (v.decode() if k != "message" else v)
                      for k, v in req.fields.items()}
            m = re.search(rb"Subject: fallback (\w+)", fields["message"])
            self.assertTrue(m, fields["message"][:500])
            by_token[m.group(1).decode()] = (fields, req)
        for lp, (queue, action, ticket) in want.items():
            fields, req = by_token[tokens[lp]]
            self.assertEqual(fields.get("queue"), queue, lp)
            self.assertEqual(fields.get("action"), action, lp)
            self.assertEqual(fields.get("ticket"), ticket, lp)
            msg = fields["message"]
            if ticket:
                self.assertTrue(msg.startswith(f"X-RT-Mail-Extension: {ticket}\n".encode()),
                                msg[:200])
            else:
                self.assertNotIn(b"X-RT-Mail-Extension", msg)
            self.assertRegex(msg, rb"(?m)^Return-Path: <alice@example\.org>$")
        self.assertEqual(len(maildir_files(self.env["RT_FALLBACK_MAILDIR"])), 1)

    def check_refusals(self):
        d, ld = self.env["RT_DOMAIN"], self.env["LOCAL_DOMAIN"]
        # Every RT-domain local part is valid for the MTA: the milter decides.
        self.assertRegex(self.reply_to_rcpt(f"rt+abc@{d}"), r"^<-  250 ")
        self.assertRegex(self.reply_to_rcpt(f"rt+comment@{d}"), r"^<-  250 ")
        self.assertRegex(self.reply_to_rcpt("carol@example.org"), r"^<\*\* 55\d 5\.7\.1 ")
        self.assertRegex(self.reply_to_rcpt(f"rt+42@{d}"), r"^<-  250 ")
        self.assertRegex(self.reply_to_rcpt(f"Bob+x@{ld}"), r"^<-  250 ")

    def check_milter_down(self, code):
        """With the milter socket absent: tempfail by default, accept on demand."""
        sock = os.path.join(self.dir, "no-such-milter.sock")
        self.start("--milter", f"unix:{sock}")
        self.assertEqual(self.env["MILTER"], f"unix:{sock}")
        rc, out = self.swaks(f"bob@{self.env['LOCAL_DOMAIN']}")
        self.assertNotEqual(rc, 0, out)
        self.assertIn(f"<** {code}", out)
        self.assertEqual(maildir_files(os.path.join(self.env["MAILDIR"], "bob")), [])
        # the same DIR restarted/reloaded with default action accept passes mail
        self.start("--milter", f"unix:{sock}", "--milter-default-action", "accept")
        self.send_ok(f"bob@{self.env['LOCAL_DOMAIN']}")
        self.assertTrue(wait_for(
            lambda: maildir_files(os.path.join(self.env["MAILDIR"], "bob")), 20))

    def check_stop_and_restart(self):
        self.start()
        first_pid = self.env["MTA_PID"]
        r = self.sandbox("status", self.dir, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # start again: same instance, same port
        self.start()
        self.assertEqual(self.env["MTA_PID"], first_pid)
        self.send_ok(f"bob@{self.env['LOCAL_DOMAIN']}")
        t0 = time.monotonic()
        self.sandbox("stop", self.dir)
        self.stop_seconds = time.monotonic() - t0
        self.assertEqual(self.leftovers(), [])
        r = self.sandbox("status", self.dir, check=False)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "env")))
        self.sandbox("stop", self.dir)  # stopping twice is fine
        # and it starts again on the same port
        port = self.port
        self.start()
        self.assertEqual(self.port, port)
        print(f"\n{os.path.basename(self.SANDBOX)}: start {self.start_seconds:.2f} s, "
              f"stop {self.stop_seconds:.2f} s", file=sys.stderr)
