"""test_pg_milter — the real rt-milter with its duplicate journal on the
private PostgreSQL of this ctest run (pg_server.py, fixture "pg";
$RTM_PG_STATE): a message delivered once and its resend recognised as a
duplicate; PostgreSQL stopped -> 451 "duplicate journal unavailable" and a
loud log line; PostgreSQL started again -> delivered by the same daemon;
--check-config connects, and names the key and the reason when it cannot.
Reused, not copied: tests/milter/milter_harness.py (rt-milter, miltertest,
the RT stub). Pauses and resumes the shared server (RESOURCE_LOCK pg_server).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
MILTER_DIR = os.path.join(HERE, "..", "milter")
sys.path.insert(0, MILTER_DIR)

from milter_harness import RT_MILTER, MilterTestCase, run_miltertest, write_config  # noqa: E402

STATE = os.environ.get("RTM_PG_STATE", "")
RT = "rt@example.com"
RESUME_BOUND = 10.0  # s for the daemon to use the journal again after a restart


def conninfo() -> str:
    with open(os.path.join(STATE, "conninfo")) as fh:
        return fh.read().strip()


def server(what: str) -> None:
    with open(os.path.join(STATE, "command")) as fh:
        command = fh.read().split()
    subprocess.run(command + [what, STATE], check=True, timeout=90)


class PgJournalMilter(MilterTestCase):

    def setUp(self):
        super().setUp()
        if not STATE or not os.path.exists(os.path.join(STATE, "conninfo")):
            self.fail(f"no PostgreSQL fixture: RTM_PG_STATE={STATE!r}")

    def run_script(self, milter, script: str, sender: str, **defines):
        params = {"SOCKET": milter.socket_spec, "TESTDIR": MILTER_DIR, "SENDER": sender,
                  "RT_RCPTS": RT, **defines}
        return run_miltertest(script, params)

    def test_duplicate_then_outage_then_resume(self):
        stub = self.start_stub()
        milter = self.start_milter(stub.url, journal=conninfo(), on_journal_error="tempfail")
        # Unique senders: the journal keeps rows across runs of this test.
        tag = f"{os.getpid()}.{int(time.time())}"
        first, later = f"<first.{tag}@example.org>", f"<later.{tag}@example.org>"

        run = self.run_script(milter, "accept.lua", first, QID="4PG001")
        self.assertEqual(run.rc, 0, run.describe())
        self.assertEqual(len(stub.requests), 1)

        run = self.run_script(milter, "accept.lua", first, QID="4PG002")  # the resend
        self.assertEqual(run.rc, 0, run.describe())
        self.assertEqual(len(stub.requests), 1, "the resend was posted again")
        self.assertIn("delivered earlier: duplicate journal", milter.log())

        server("pause")
        try:
            run = self.run_script(milter, "smtp_error.lua", later, QID="4PG003", CODE="451",
                                  XCODE="4.3.0", TEXT="rt-milter cannot check for duplicates; try again later")
            self.assertEqual(run.rc, 0, run.describe())
            self.assertEqual(len(stub.requests), 1, "posted without the journal")
            self.assertIn("duplicate journal unavailable", milter.log())
            self.assertNotIn(open(os.path.join(STATE, "pgpass")).read().split(":")[-1].strip(),
                             milter.log(), "the password in the log")
        finally:
            server("resume")

        # The same daemon, the server back: delivered (a 1 s back-off after
        # a failed connect, so the first try may still be a 451: bounded).
        deadline = time.monotonic() + RESUME_BOUND
        while True:
            run = self.run_script(milter, "accept.lua", later, QID="4PG004")
            if run.rc == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertEqual(len(stub.requests), 2)
        self.assertEqual(milter.stop(), 0)


    def check_config(self, journal: str) -> subprocess.CompletedProcess:
        path = os.path.join(self.workdir, "check.toml")
        write_config(path, "unix:" + os.path.join(self.workdir, "s.sock"), "http://127.0.0.1:1",
                     os.path.join(self.workdir, "spool"), journal=journal)
        return subprocess.run([RT_MILTER, "--check-config", "-c", path], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60)

    def test_check_config_connects(self):
        check = self.check_config(conninfo())
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertRegex(check.stdout, r"journal postgresql host=127\.0\.0\.1 port=\d+ dbname=rtmilter "
                                       r"user=rt_milter: connects, has its table, takes a write")

    def test_check_config_names_the_key_and_the_reason(self):
        nobody_there = re.sub(r"port=\d+", "port=1", conninfo())
        check = self.check_config(nobody_there)
        self.assertNotEqual(check.returncode, 0, check.stdout)
        errors = [line for line in check.stderr.splitlines() if "journal" in line]
        self.assertEqual(len(errors), 1, check.stderr)
        self.assertRegex(errors[0], r"^rt-milter: journal postgresql host=127\.0\.0\.1 port=1 dbname=rtmilter "
                                    r"user=rt_milter: cannot connect: .*Connection refused")
        with open(os.path.join(STATE, "pgpass")) as fh:
            self.assertNotIn(fh.read().split(":")[-1].strip(), check.stderr)


if __name__ == "__main__":
    unittest.main()
