"""test_remove_purge — the end of the package's life on this machine, run
as the cleanup of the package_installed fixture (after every other package
test): a reinstall keeps a changed conffile; `dpkg -r` stops a running
rt-milter, removes the programs and the alternative and keeps the
configuration, the journal and the spool; `dpkg -P` removes those too.
"""

from __future__ import annotations

import os
import subprocess
import unittest
import uuid

import package_harness as ph


class RemoveAndPurge(unittest.TestCase):

    def test_reinstall_then_remove_then_purge(self):
        self.assertEqual(ph.dpkg_status(), "install ok installed")
        files = ph.run(["dpkg", "-L", ph.PACKAGE], check=True).stdout.split()

        # An upgrade (here: the same .deb again) keeps the postmaster's
        # change to the conffile, without a .dpkg-dist beside it.
        mark = f"# changed by the package test {uuid.uuid4().hex}\n"
        with open(ph.CONFFILE, "a") as fh:
            fh.write(mark)
        r = ph.run(["dpkg", "-i", ph.deb_path()], timeout=ph.APT_TIMEOUT, env=ph.apt_env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(ph.CONFFILE) as fh:
            self.assertTrue(fh.read().endswith(mark))
        for suffix in (".dpkg-dist", ".dpkg-new", ".dpkg-old"):
            self.assertFalse(os.path.exists(ph.CONFFILE + suffix), suffix)

        # A journal and a spool file the daemon would have left.
        pw_uid = ph.pwd.getpwnam(ph.SERVICE_USER).pw_uid
        journal = os.path.join(ph.STATE_DIR, "journal.sqlite")
        left_in_spool = os.path.join(ph.SPOOL_DIR, "left-by-the-test")
        for path in (journal, left_in_spool):
            if not os.path.exists(path):
                with open(path, "w") as fh:
                    fh.write("x")
                os.chown(path, pw_uid, -1)

        # A running rt-milter (no systemd here: the prerm stops it itself).
        daemon = self.start_a_daemon()

        r = ph.run(["dpkg", "-r", ph.PACKAGE], timeout=ph.APT_TIMEOUT, env=ph.apt_env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(ph.dpkg_status(), "deinstall ok config-files")
        try:
            code = daemon.wait(ph.RUN_BOUND)
        except subprocess.TimeoutExpired:
            daemon.kill()
            self.fail("dpkg -r left rt-milter running")
        self.assertEqual(code, 0, "stopped by SIGTERM, as systemctl stop would")
        self.assertEqual(ph.processes_of(ph.BINARY), [])
        for path in (ph.BINARY, ph.MAILGATE, *[os.path.join(d, "rt-milter.service") for d in ph.UNIT_DIRS]):
            self.assertFalse(os.path.exists(path), path)
        q = ph.run(["update-alternatives", "--query", "rt-mailgate"])
        self.assertNotIn(ph.MAILGATE, q.stdout)
        with open(ph.CONFFILE) as fh:
            self.assertTrue(fh.read().endswith(mark), "remove keeps the configuration")
        for path in (journal, left_in_spool):
            self.assertTrue(os.path.exists(path), f"remove keeps {path}")

        r = ph.run(["dpkg", "-P", ph.PACKAGE], timeout=ph.APT_TIMEOUT, env=ph.apt_env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(ph.dpkg_status(), "")
        for path in ("/etc/rt-milter", ph.STATE_DIR, ph.SPOOL_DIR, ph.CHROOT_SOCKET_DIR):
            self.assertFalse(os.path.exists(path), f"purge removes {path}")
        left = [f for f in files if os.path.lexists(f) and not os.path.isdir(f)]
        self.assertEqual(left, [], "files of the package after purge")
        self.assertEqual(ph.processes_of(ph.BINARY), [])

    def start_a_daemon(self) -> subprocess.Popen:
        """The packaged rt-milter as its service user, on a configuration of
        its own (the conffile is the unconfigured sample, which refuses to
        start), until READY=1."""
        pw = ph.pwd.getpwnam(ph.SERVICE_USER)
        work = os.path.join(ph.PACKAGE_DIR, "remove")
        ph.shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        os.chown(work, pw.pw_uid, pw.pw_gid)
        os.chmod(work, 0o750)
        config = os.path.join(work, "rt-milter.toml")
        with open(config, "w") as fh:
            fh.write(f'socket = "unix:{work}/rt-milter.sock"\nspool_dir = "{work}/spool"\n'
                     f'journal = "{work}/journal.sqlite"\n\n[rt]\nurl = "http://127.0.0.1:1"\n\n'
                     '[[route]]\naddress = "rt@rt.example.com"\n')
        os.chmod(config, 0o644)
        notify = ph.Notify(os.path.join(ph.PACKAGE_DIR, "notify-remove"))
        self.addCleanup(notify.close)
        log = open(os.path.join(work, "rt-milter.log"), "wb")
        self.addCleanup(log.close)
        daemon = subprocess.Popen([ph.BINARY, "-c", config], user=pw.pw_uid, group=pw.pw_gid,
                                  extra_groups=os.getgrouplist(ph.SERVICE_USER, pw.pw_gid),
                                  env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "NOTIFY_SOCKET": notify.path},
                                  stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/")
        self.addCleanup(lambda: daemon.poll() is None and daemon.kill())
        self.assertTrue(notify.wait_for("READY=1", alive=lambda: daemon.poll() is None),
                        f"exit {daemon.poll()}: {notify.messages}")
        return daemon


if __name__ == "__main__":
    unittest.main()
