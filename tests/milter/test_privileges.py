"""test_privileges — who rt-milter runs as and what it creates (issue 9):
started as root it refuses an empty `user` (exit 78, one line saying what
to set) and runs as root only with user = "root", with a warning;
--check-config says the same (a warning when it is not root). What the
daemon creates (journal, -wal, -shm, spool) is its own alone.
"""

import os
import pwd
import subprocess

from milter_harness import HERE, RT_MILTER, SENDER, MilterTestCase, run_miltertest, write_config

RUN_BOUND = 30
ADVICE = ('set user to an unprivileged account (e.g. user = "rt-milter"), '
          'or user = "root" to run as root on purpose')


class RootPolicy(MilterTestCase):
    """Finding 9: root only on purpose."""

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.fail("this test needs root (the project's tests run as root)")

    def config(self, **top):
        path = os.path.join(self.workdir, "rt-milter.toml")
        write_config(path, "unix:" + os.path.join(self.workdir, "rt-milter.sock"),
                     "http://127.0.0.1:1", os.path.join(self.workdir, "spool"), **top)
        return path

    def run_milter(self, *args, **kw):
        return subprocess.run([RT_MILTER, *args], stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=RUN_BOUND, **kw)

    def test_root_without_user_refuses_to_start(self):
        path = self.config(user="")
        r = self.run_milter("-c", path, "--log-stderr")
        self.assertEqual(r.returncode, 78, r)
        self.assertIn("user is empty and rt-milter was started as root: " + ADVICE, r.stderr.decode())
        self.assertFalse(os.path.exists(os.path.join(self.workdir, "rt-milter.sock")))
        r = self.run_milter("--check-config", "-c", path)
        self.assertEqual(r.returncode, 78, r)
        self.assertIn("user is empty and rt-milter was started as root: " + ADVICE, r.stderr.decode())

    def test_user_root_runs_with_a_warning(self):
        milter = self.start_milter("http://127.0.0.1:1", user="root")
        self.assertIn('warning: user = "root": rt-milter runs as root on purpose', milter.log())
        self.assertEqual(milter.stop(), 0)
        r = self.run_milter("--check-config", "-c", self.config(user="root"))
        self.assertEqual(r.returncode, 0, r)
        self.assertIn('warning: user = "root": rt-milter runs as root on purpose', r.stderr.decode())

    def test_check_config_not_as_root_warns(self):
        os.chmod(self.workdir, 0o755)
        path = self.config(user="")
        os.chmod(path, 0o644)
        nobody = pwd.getpwnam("nobody")
        r = self.run_milter("--check-config", "-c", path, user=nobody.pw_uid, group=nobody.pw_gid,
                            extra_groups=[])
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("warning: user is empty: started as root, rt-milter refuses to run; " + ADVICE,
                      r.stderr.decode())


class CreatedFiles(MilterTestCase):
    """Finding 9: umask 077 for everything the daemon makes."""

    def test_journal_and_spool_are_private(self):
        stub = self.start_stub()
        journal = os.path.join(self.workdir, "journal.sqlite")
        old = os.umask(0o022)  # what a shell would hand down
        try:
            milter = self.start_milter(stub.url, journal=journal)
        finally:
            os.umask(old)
        run = run_miltertest("accept.lua", {"SOCKET": milter.socket_spec, "TESTDIR": HERE,
                                            "SENDER": SENDER, "QID": "4UMASK1",
                                            "RT_RCPTS": "<rt@example.com>"})
        self.assertEqual(run.rc, 0, run.describe() + milter.log())
        for path in (journal, journal + "-wal", journal + "-shm", os.path.join(self.workdir, "spool")):
            mode = os.stat(path).st_mode & 0o777
            self.assertEqual(mode & 0o077, 0, f"{path}: mode {mode:o}")
        self.assertEqual(milter.stop(), 0)


if __name__ == "__main__":
    import unittest
    unittest.main()
