"""test_systemd_unit — packaging/rt-milter.service works as shipped (issue
9, finding 10). There is no systemd as PID 1 here, so the test does what
systemd would with the unit's own settings: User= and Group= (created when
missing, as the package will), RuntimeDirectory= and StateDirectory= with
their modes and owners, packaging/rt-milter.tmpfiles through
systemd-tmpfiles, then ExecStartPre= and ExecStart= as that user. All
paths live under a private root directory, so nothing of the host's /run,
/var or /etc is touched. The configuration is the sample's defaults with
[rt] url on the RT stub and one route. An MTA that runs as another user in
the socket's group (as the unit's comment has Postfix join it) pushes one
message through with miltertest: it is accepted and posted, and the
journal is rt-milter's. (With the unit before the fix, the MTA could not
reach the socket in root's 0750 /run/rt-milter; with user set as its
comment said, the journal in root's /var/lib/rt-milter could not be
opened.) systemd-analyze verify checks the unit's syntax.
"""

import grp
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time

from milter_harness import (GENERAL, HERE, MILTERTEST, RT_MILTER, SCRIPT_BOUND, SENDER,
                            START_BOUND, STOP_BOUND, MilterTestCase, ensure_system_user)

REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
UNIT = os.path.join(REPO, "packaging", "rt-milter.service")
TMPFILES = os.path.join(REPO, "packaging", "rt-milter.tmpfiles")
SAMPLE = os.path.join(REPO, "conf", "rt-milter.toml")
INSTALLED_BINARY = "/usr/sbin/rt-milter"
INSTALLED_CONFIG = "/etc/rt-milter/rt-milter.toml"
RUN_BOUND = 30
MTA_USER = "nobody"  # stands for the MTA's unprivileged user (postfix)

# The sample's defaults that the unit's directories must hold.
DEFAULTS = {"socket": "unix:/run/rt-milter/rt-milter.sock",
            "spool_dir": "/var/spool/rt-milter",
            "journal": "/var/lib/rt-milter/journal.sqlite"}


def read_unit(path: str) -> dict:
    """The [Service] section: key -> list of values, in order."""
    service, section = {}, None
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line
                continue
            key, _, value = line.partition("=")
            if section == "[Service]":
                service.setdefault(key.strip(), []).append(value.strip())
    return service


class SystemdUnit(MilterTestCase):

    def test_systemd_analyze_verify(self):
        if not shutil.which("systemd-analyze"):
            self.fail("systemd-analyze is not installed (Debian package systemd)")
        # The binary is not installed here: verify checks ExecStart exists.
        unit = os.path.join(self.workdir, "rt-milter.service")
        with open(UNIT) as src, open(unit, "w") as dst:
            dst.write(src.read().replace(INSTALLED_BINARY, os.path.abspath(RT_MILTER)))
        r = subprocess.run(["systemd-analyze", "verify", unit], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=RUN_BOUND)
        ours = [l for l in (r.stdout + r.stderr).splitlines() if "rt-milter" in l]
        self.assertEqual((r.returncode, ours), (0, []), r.stdout + r.stderr)

    def test_unit_as_shipped_accepts_and_posts(self):
        if os.geteuid() != 0:
            self.fail("this test needs root, as systemd has (the project's tests run as root)")
        with open(SAMPLE) as fh:
            sample = fh.read()
        for key, value in DEFAULTS.items():
            self.assertRegex(sample, rf'(?m)^{key} = "{re.escape(value)}"$')
        unit = read_unit(UNIT)
        user = unit.get("User", ["root"])[-1]
        group = unit.get("Group", [""])[-1]
        pw = ensure_system_user(user)  # as the package will (useradd --user-group: the group too)
        gid = grp.getgrnam(group).gr_gid if group else pw.pw_gid
        root = self.workdir
        os.chmod(root, 0o755)

        # What systemd does before ExecStartPre=: the directories, owned by
        # User=/Group= (root when the unit names none), with their modes.
        for key, base in (("RuntimeDirectory", "run"), ("StateDirectory", "var/lib")):
            mode = int(unit.get(key + "Mode", ["0755"])[-1], 8)
            for name in " ".join(unit.get(key, [])).split():
                path = os.path.join(root, base, name)
                os.makedirs(path)
                os.chown(path, pw.pw_uid, gid)
                os.chmod(path, mode)
        if os.path.exists(TMPFILES):
            # systemd-tmpfiles --root reads users from the root's /etc
            os.makedirs(os.path.join(root, "etc"))
            for db, name in (("passwd", user), ("group", group or user)):
                r = subprocess.run(["getent", db, name], capture_output=True, text=True, timeout=RUN_BOUND)
                with open(os.path.join(root, "etc", db), "w") as fh:
                    fh.write(r.stdout)
            r = subprocess.run(["systemd-tmpfiles", "--create", "--root=" + root, TMPFILES],
                               capture_output=True, text=True, timeout=RUN_BOUND)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        # The configuration: the sample's defaults under root, [rt] on the
        # stub, one route; installed root:<group> 0640 as a package would.
        stub = self.start_stub()
        config = root + INSTALLED_CONFIG
        os.makedirs(os.path.dirname(config), exist_ok=True)
        with open(config, "w") as fh:
            fh.write("# the sample's defaults, every path under the test's root\n")
            for key, value in DEFAULTS.items():
                path = value.split(":", 1)
                value = path[0] + ":" + root + path[1] if len(path) == 2 else root + value
                fh.write(f'{key} = "{value}"\n')
            fh.write(f'\n[rt]\nurl = "{stub.url}"\n\n[[route]]\naddress = "rt@example.com"\n'
                     'queue = "General"\naction = "correspond"\n')
        os.chown(config, 0, gid)
        os.chmod(config, 0o640)

        def command(key: str) -> list:
            (line,) = unit[key]
            argv = shlex.split(line.lstrip("-@:+!"))
            argv = [os.path.abspath(RT_MILTER) if a == INSTALLED_BINARY else root + a if a == INSTALLED_CONFIG else a
                    for a in argv]
            return argv

        # systemd's clean environment, plus the sanitizer settings of
        # tests/run's sanitizer stages
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        env.update({k: v for k, v in os.environ.items() if k.endswith("SAN_OPTIONS")})
        as_service = dict(user=pw.pw_uid, group=gid, extra_groups=os.getgrouplist(user, gid), cwd="/",
                          env=env, stdin=subprocess.DEVNULL)
        r = subprocess.run(command("ExecStartPre"), capture_output=True, text=True, timeout=RUN_BOUND,
                           **as_service)
        self.assertEqual(r.returncode, 0, f"ExecStartPre failed: {r.stdout}{r.stderr}")

        log_path = os.path.join(root, "rt-milter.log")
        with open(log_path, "wb") as log:  # systemd would take stderr into the journal
            daemon = subprocess.Popen(command("ExecStart") + ["--log-stderr"], stdout=log, stderr=log,
                                      **as_service)
        self.addCleanup(lambda: daemon.poll() is None and daemon.kill())

        def log_text():
            with open(log_path, errors="replace") as fh:
                return fh.read()

        sock = root + DEFAULTS["socket"].split(":", 1)[1]
        deadline = time.monotonic() + START_BOUND
        up = False
        while not up and time.monotonic() < deadline and daemon.poll() is None:
            with socket.socket(socket.AF_UNIX) as s:
                try:
                    s.connect(sock)
                    up = True
                except OSError:
                    time.sleep(0.05)
        self.assertTrue(up, f"ExecStart did not come up (exit {daemon.poll()}):\n{log_text()}")

        # The MTA: another user, a member only of the group the unit names
        # (its comment has Postfix join it); a unit without Group= asks for
        # no membership, and root's group is not one to give an MTA.
        mta = pwd.getpwnam(MTA_USER)
        mta_groups = [gid] if group else []
        argv = [MILTERTEST, "-s", os.path.join(HERE, "accept.lua")]
        for name, value in {"SOCKET": "unix:" + sock, "TESTDIR": HERE, "SENDER": SENDER,
                            "QID": "4UNIT1", "RT_RCPTS": "<rt@example.com>"}.items():
            argv += ["-D", f"{name}={value}"]
        mt = subprocess.run(argv, user=mta.pw_uid, group=mta.pw_gid, extra_groups=mta_groups,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=SCRIPT_BOUND)
        self.assertEqual(mt.returncode, 0, f"{mt.stdout}{mt.stderr}\nrt-milter log:\n{log_text()}")

        daemon.send_signal(signal.SIGTERM)
        self.assertEqual(daemon.wait(STOP_BOUND), 0, log_text())
        stub.quiesce(5.0)
        (req,) = stub.requests
        self.assertEqual({k: v for k, v in req.fields.items() if k != "message"}, GENERAL)
        journal = os.stat(root + DEFAULTS["journal"])
        self.assertEqual((journal.st_uid, journal.st_mode & 0o777), (pw.pw_uid, 0o600))
        self.assertNotIn("JOURNAL UNAVAILABLE", log_text())


if __name__ == "__main__":
    import unittest
    unittest.main()
