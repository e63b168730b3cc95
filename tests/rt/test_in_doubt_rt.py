"""test_in_doubt_rt — rt-milter killed mid-POST against a real RT 5, and the
client's retry settled with RT's REST2 API (issue 12, item 2).

Owns: its own rt-sandbox (started with --pause-on-subject, a token made by
`rt-sandbox token`), rt-milter driven by miltertest (tests/milter's harness
and answer.lua, with a message.eml of its own per case), and the two crash
cases: rt-milter is SIGKILLed once RT holds the whole request, paused in its
gateway; then (a) RT goes on and commits the ticket, or (b) RT's worker is
SIGKILLed before it commits. A fresh rt-milter on the same journal gets the
client's retry: (a) finds the message in RT and posts nothing, (b) does not
and posts it again. Either way RT ends with exactly one ticket. Also
`rt-milter --check-config --online` against this RT (item 3).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "milter"))

from milter_harness import HERE as MILTER_DIR  # noqa: E402
from milter_harness import RtMilter, SENDER, run_miltertest  # noqa: E402

SANDBOX = os.path.join(HERE, "..", "..", "packaging", "rt-sandbox")
MARKER = "[rtm-pause]"
BOUND = 90.0  # s for RT to pause, or to show a ticket


def wait_for(what, check, bound=BOUND):
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {bound:g} s")


class InDoubtRealRt(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.sandbox = tempfile.mkdtemp(prefix="rtm-rt-doubt-")
        os.rmdir(cls.sandbox)  # rt-sandbox makes it
        run = subprocess.run([sys.executable, SANDBOX, "start", cls.sandbox,
                              "--pause-on-subject", MARKER],
                             capture_output=True, text=True, timeout=300)
        if run.returncode != 0:
            raise AssertionError(f"rt-sandbox start: {run.stderr}")
        cls.url = run.stdout.strip().splitlines()[-1]
        run = subprocess.run([sys.executable, SANDBOX, "token", cls.sandbox,
                              "--user", "root"],
                             capture_output=True, text=True, timeout=120)
        if run.returncode != 0:
            cls.tearDownClass()
            raise AssertionError(f"rt-sandbox token: {run.stderr}")
        cls.token = run.stdout.strip()

    @classmethod
    def tearDownClass(cls):
        subprocess.run([sys.executable, SANDBOX, "stop", cls.sandbox],
                       capture_output=True, timeout=60)
        shutil.rmtree(cls.sandbox, True)

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="rtm-")
        self.addCleanup(shutil.rmtree, self.work, True)
        self.case = f"{self._testMethodName}-{uuid.uuid4().hex[:8]}"
        self.subject = f"in doubt {self.case} {MARKER}"
        self.message_id = f"{self.case}@example.org"
        # answer.lua reads TESTDIR/lib.lua and TESTDIR/message.eml
        self.testdir = os.path.join(self.work, "lua")
        os.mkdir(self.testdir)
        shutil.copy(os.path.join(MILTER_DIR, "lib.lua"), self.testdir)
        with open(os.path.join(self.testdir, "message.eml"), "w") as fh:
            fh.write(f"From: Alice <alice@example.org>\nTo: rt@example.com\n"
                     f"Subject: {self.subject}\nMessage-ID: <{self.message_id}>\n"
                     f"Date: Mon, 7 Dec 2026 03:00:00 +0000\n\n"
                     "Hello,\nplease help: the printer is on fire again.\nAlice\n")
        self.token_file = os.path.join(self.work, "rest2.token")
        with open(os.open(self.token_file, os.O_WRONLY | os.O_CREAT, 0o600),
                  "w") as fh:
            fh.write(self.token + "\n")
        self.journal = os.path.join(self.work, "journal.sqlite")

    # -- RT ----------------------------------------------------------------

    def rest2(self, path):
        req = urllib.request.Request(
            self.url + "/REST/2.0/" + path,
            headers={"Authorization": "token " + self.token})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp)

    def tickets(self):
        query = urllib.parse.quote(f"Subject LIKE '{self.case}'")
        return [item["id"] for item in
                self.rest2(f"tickets?query={query}")["items"]]

    def upload_noted(self):
        """True once rt-milter's journal says the whole request went out."""
        if not os.path.exists(self.journal):
            return False
        try:
            with sqlite3.connect(f"file:{self.journal}?mode=ro", uri=True, timeout=5) as db:
                return db.execute("SELECT count(*) FROM delivered WHERE note LIKE "
                                  "'uploaded%'").fetchone()[0] > 0
        except sqlite3.Error:
            return False  # not created yet, or busy: ask again

    @staticmethod
    def gone(pid):
        """True once pid is dead (reaped, or a zombie that runs no more code)."""
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0] in "ZX"
        except OSError:
            return True

    def paused_pid(self):
        for name in os.listdir(self.sandbox):
            if name.startswith("paused-"):
                return int(name[len("paused-"):])
        return None

    # -- rt-milter ---------------------------------------------------------

    def milter(self, name):
        workdir = os.path.join(self.work, name)
        os.mkdir(workdir)
        milter = RtMilter(workdir, self.url, timeout=120, journal=self.journal,
                          **{"rt.rest2_token_file": self.token_file})
        self.addCleanup(milter.kill)
        return milter.start()

    def send(self, milter, qid, want, while_running=None):
        params = {"SOCKET": milter.socket_spec, "TESTDIR": self.testdir,
                  "SENDER": SENDER, "QID": qid,
                  "RT_RCPTS": "<rt@example.com>", "WANT": want}
        return run_miltertest(os.path.join(MILTER_DIR, "answer.lua"), params,
                              bound=BOUND + 60, while_running=while_running)

    def crash(self, rt_commits: bool):
        """First try: RT pauses holding the whole request, rt-milter is
        killed; then RT commits, or its worker is killed. Returns the
        retry's summary line."""
        first = self.milter("first")
        open(os.path.join(self.sandbox, "pause-armed"), "w").close()
        self.addCleanup(lambda: os.path.exists(os.path.join(self.sandbox, "pause-armed"))
                        and os.unlink(os.path.join(self.sandbox, "pause-armed")))

        def kill_mid_post():
            try:
                pid = wait_for("RT pausing in its gateway", self.paused_pid, 30)
            except AssertionError as e:
                raise AssertionError(f"{e}\nrt-milter log:\n{first.log()}") from None
            wait_for("rt-milter noting the upload in its journal", self.upload_noted)
            first.kill()     # SIGKILL, by pid
            if rt_commits:
                open(os.path.join(self.sandbox, f"resume-{pid}"), "w").close()
            else:
                os.kill(pid, signal.SIGKILL)
            self.killed_worker = pid

        run = self.send(first, "4CRASH1", "tempfail", kill_mid_post)
        self.assertNotEqual(run.rc, 0, "rt-milter died mid-transaction: "
                                       "the MTA saw no answer")
        if rt_commits:
            wait_for("RT committing the paused ticket", self.tickets)
        else:
            # a dead worker commits nothing more: what RT shows now is final
            wait_for("RT's killed worker gone", lambda: self.gone(self.killed_worker))
            self.assertEqual(self.tickets(), [], "the killed worker committed")
        retry = self.milter("retry")
        run = self.send(retry, "4CRASH2", "accept")
        log = retry.log()
        self.assertEqual(retry.stop(), 0, log)
        self.assertEqual(run.rc, 0, run.describe() + "\n" + log)
        lines = retry.summary_lines("4CRASH2")
        self.assertEqual(len(lines), 1, log)
        self.assertNotIn(self.token, log + first.log())
        tickets = wait_for("a ticket", self.tickets, 30)
        self.assertEqual(len(tickets), 1, f"tickets {tickets}")
        return lines[0]

    def test_a_rt_completes_the_request(self):
        line = self.crash(rt_commits=True)
        self.assertRegex(line, r"in doubt: RT has it \(attachment \d+ on ticket \d+\)")

    def test_b_rt_worker_killed_before_commit(self):
        line = self.crash(rt_commits=False)
        self.assertIn("in doubt: not in RT (no attachment with this Message-ID), "
                      "posting again", line)

    def test_check_config_online_against_rt(self):
        """Item 3 with the real RT: the token taken, General there, a route
        to a queue RT does not have named; exit 69."""
        from milter_harness import RT_MILTER, write_config
        config = os.path.join(self.work, "c.toml")
        routes = ({"address": "rt@example.com", "queue": "General"},
                  {"address": "lost@example.com", "queue": "No Such Queue"})
        write_config(config, "unix:" + os.path.join(self.work, "s.sock"), self.url,
                     os.path.join(self.work, "spool"), routes=routes,
                     **{"rt.rest2_token_file": self.token_file})
        run = subprocess.run([RT_MILTER, "--check-config", "--online", "-c", config],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(run.returncode, 69, run.stdout + run.stderr)
        self.assertRegex(run.stdout, r"online: server rt \(" + self.url.replace(".", r"\.")
                         + r"\): reachable, token accepted \(RT 5\.")
        self.assertIn("queue General exists", run.stdout)
        self.assertIn("online: route lost@example.com (", run.stderr)
        self.assertIn("queue No Such Queue does not exist in RT rt", run.stderr)
        self.assertNotIn(self.token, run.stdout + run.stderr)


if __name__ == "__main__":
    unittest.main()
