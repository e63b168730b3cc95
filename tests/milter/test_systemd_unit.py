"""test_systemd_unit — packaging/rt-milter.service works as shipped (issue
9, finding 10; issue 10: the package's locked-down unit). There is no
systemd as PID 1 here, so the test does what systemd would with the unit's
own settings: User= and Group= (created when missing, as the package
does), RuntimeDirectory= and StateDirectory= with their modes and owners,
packaging/rt-milter.tmpfiles through systemd-tmpfiles, then ExecStartPre=
and ExecStart= as that user. All paths live under a private root
directory, so nothing of the host's /run, /var or /etc is touched. The
configuration is a copy of the sample conf/rt-milter.toml, paths under that
root, with what an admin adds before the first start: [rt] url (on the RT
stub) and one route. Its socket is the sample's, inside Debian's Postfix
chroot, in the directory rt-milter.tmpfiles makes. An MTA that runs as
another user in the socket's group (as the package has Postfix join it)
pushes one message through with miltertest: it is accepted and posted, and
the journal is rt-milter's. That run is traced with strace: every system
call rt-milter made must pass the unit's SystemCallFilter= (skipped for a
sanitizer build, whose runtime makes calls of its own).

Also: systemd-analyze verify finds nothing to say; systemd-analyze security
rates the unit 2.0 or less; every directory the sample writes to is
writable under ProtectSystem=strict; and with Type=notify, rt-milter sends
READY=1 on $NOTIFY_SOCKET once its socket accepts (skipped only when the
binary does not link libsystemd, i.e. before sd_notify support).
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
                            START_BOUND, STOP_BOUND, MilterTestCase, ensure_system_user, read_unit)

REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
UNIT = os.path.join(REPO, "packaging", "rt-milter.service")
TMPFILES = os.path.join(REPO, "packaging", "rt-milter.tmpfiles")
SAMPLE = os.path.join(REPO, "conf", "rt-milter.toml")
INSTALLED_BINARY = "/usr/sbin/rt-milter"
INSTALLED_CONFIG = "/etc/rt-milter/rt-milter.toml"
RUN_BOUND = 30
MTA_USER = "nobody"  # stands for the MTA's unprivileged user (postfix)
EXPOSURE_LIMIT = 2.0  # systemd-analyze security's overall figure, at most

# The sample's paths that the unit and tmpfiles.d must provide.
SAMPLE_PATHS = {"socket": "unix:/var/spool/postfix/rt-milter/rt-milter.sock",
                "spool_dir": "/var/spool/rt-milter",
                "journal": "/var/lib/rt-milter/journal.sqlite"}
BUILTIN_SOCKET = "unix:/run/rt-milter/rt-milter.sock"  # Sendmail's, the default


def links(binary: str, pattern: str) -> bool:
    """Whether ldd lists a library matching pattern for binary."""
    r = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=RUN_BOUND)
    return re.search(pattern, r.stdout) is not None


def syscall_set(name: str, seen: frozenset = frozenset()) -> set:
    """The system calls of a systemd-analyze syscall-filter group, nested
    groups expanded; a plain name is itself."""
    if not name.startswith("@"):
        return {name}
    if name in seen:
        return set()
    r = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True, text=True,
                       timeout=RUN_BOUND, check=True)
    calls = set()
    for line in r.stdout.splitlines()[1:]:
        word = line.strip()
        if word and not word.startswith("#"):
            calls |= syscall_set(word, seen | {name})
    return calls


def allowed_syscalls(unit: dict) -> set:
    """What the unit's SystemCallFilter= lines let through: the allow-list
    of the first, less every "~" deny-list after it."""
    allowed, denied = set(), set()
    for value in unit.get("SystemCallFilter", []):
        deny = value.startswith("~")
        for word in value.lstrip("~").split():
            (denied if deny else allowed).update(syscall_set(word))
    return allowed - denied


def traced_syscalls(trace: str) -> set:
    """The system calls named in an strace -f log."""
    calls = set()
    with open(trace, errors="replace") as fh:
        for line in fh:
            m = re.match(r"^\d+\s+(?:<\.\.\. )?(\w+)[( ]", line)
            if m and m.group(1) not in ("exited", "killed"):
                calls.add(m.group(1))
    return calls


class SystemdUnit(MilterTestCase):

    def test_systemd_analyze_verify(self):
        if not shutil.which("systemd-analyze"):
            self.fail("systemd-analyze is not installed (Debian package systemd)")
        # The binary is not installed here: verify checks ExecStart exists.
        unit = os.path.join(self.workdir, "rt-milter.service")
        with open(UNIT) as src, open(unit, "w") as dst:
            dst.write(src.read().replace(INSTALLED_BINARY, os.path.abspath(RT_MILTER)))
        # Nor are its man pages (Documentation=): --man=no, and they must
        # be among packaging/man's, which the package installs.
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", unit], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=RUN_BOUND)
        ours = [l for l in (r.stdout + r.stderr).splitlines() if "rt-milter" in l]
        self.assertEqual((r.returncode, ours), (0, []), r.stdout + r.stderr)
        with open(UNIT) as fh:
            pages = re.findall(r"man:([\w.-]+)\((\d)\)", fh.read())
        self.assertTrue(pages)
        for name, section in pages:
            self.assertTrue(os.path.exists(os.path.join(REPO, "packaging", "man", f"{name}.{section}")), name)

    def test_security_exposure(self):
        r = subprocess.run(["systemd-analyze", "security", "--offline=true", UNIT],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=RUN_BOUND)
        m = re.search(r"Overall exposure level for rt-milter\.service: (\d+\.\d+)", r.stdout)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        self.assertLessEqual(float(m.group(1)), EXPOSURE_LIMIT, r.stdout)

    def test_sample_paths_writable_in_the_sandbox(self):
        """ProtectSystem=strict leaves only the unit's own directories and
        ReadWritePaths= writable: the directory of each path the sample
        writes must be one of them, and tmpfiles.d must make the ones
        systemd does not."""
        unit = read_unit(UNIT)
        self.assertEqual(unit["ProtectSystem"], ["strict"])
        made_by_systemd = {"/run/" + d for v in unit.get("RuntimeDirectory", []) for d in v.split()}
        made_by_systemd |= {"/var/lib/" + d for v in unit.get("StateDirectory", []) for d in v.split()}
        read_write = {p.lstrip("-") for v in unit.get("ReadWritePaths", []) for p in v.split()}
        with open(TMPFILES) as fh:
            tmpfiles = {f[1]: f for f in (l.split() for l in fh) if f and f[0] == "d"}
        with open(SAMPLE) as fh:
            sample = fh.read()
        for key, value in SAMPLE_PATHS.items():
            self.assertRegex(sample, rf'(?m)^{key} = "{re.escape(value)}"$')
        paths = dict(SAMPLE_PATHS, builtin_socket=BUILTIN_SOCKET)
        for key, value in paths.items():
            path = value.split(":", 1)[1] if key.endswith("socket") else value
            directory = path if key == "spool_dir" else os.path.dirname(path)
            with self.subTest(key=key, directory=directory):
                self.assertIn(directory, made_by_systemd | read_write)
                if directory not in made_by_systemd:
                    self.assertIn(directory, tmpfiles)
                    self.assertEqual(tmpfiles[directory][2:5], ["0750", unit["User"][-1], unit["Group"][-1]])

    def start_as_unit(self, notify_socket: str = "", trace: str = ""):
        """Everything systemd would do to start the unit, under a private
        root: users, directories, the configuration, ExecStartPre= (which
        must succeed), then ExecStart= (under strace -f -o trace when
        trace is set), with NOTIFY_SOCKET when notify_socket is set.
        Returns (process, socket path, stub, service passwd, log reader)."""
        if os.geteuid() != 0:
            self.fail("this test needs root, as systemd has (the project's tests run as root)")
        unit = read_unit(UNIT)
        user = unit.get("User", ["root"])[-1]
        group = unit.get("Group", [""])[-1]
        pw = ensure_system_user(user)  # as the package does (useradd --user-group: the group too)
        gid = grp.getgrnam(group).gr_gid if group else pw.pw_gid
        self.service_gid = gid
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
        # systemd-tmpfiles --root reads users from the root's /etc
        os.makedirs(os.path.join(root, "etc"))
        for db, name in (("passwd", user), ("group", group or user)):
            r = subprocess.run(["getent", db, name], capture_output=True, text=True, timeout=RUN_BOUND)
            with open(os.path.join(root, "etc", db), "w") as fh:
                fh.write(r.stdout)
        r = subprocess.run(["systemd-tmpfiles", "--create", "--root=" + root, TMPFILES],
                           capture_output=True, text=True, timeout=RUN_BOUND)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        # The configuration: a copy of the sample, its paths under root,
        # with what the admin adds (README.Debian): [rt] url, one route.
        # Installed root:<group> 0640 as the package's postinst does.
        stub = self.start_stub()
        with open(SAMPLE) as fh:
            text = fh.read()
        for key, value in SAMPLE_PATHS.items():
            kind, sep, path = value.rpartition(":")
            text = text.replace(f'{key} = "{value}"', f'{key} = "{kind}{sep}{root}{path}"')
        text = text.replace('\n#url = "https://rt.example.com"\n', f'\nurl = "{stub.url}"\n', 1)
        text += '\n[[route]]\naddress = "rt@example.com"\nqueue = "General"\naction = "correspond"\n'
        config = root + INSTALLED_CONFIG
        os.makedirs(os.path.dirname(config), exist_ok=True)
        with open(config, "w") as fh:
            fh.write(text)
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
        umask = int(unit.get("UMask", ["0022"])[-1], 8)
        as_service = dict(user=pw.pw_uid, group=gid, extra_groups=os.getgrouplist(user, gid), cwd="/",
                          stdin=subprocess.DEVNULL, umask=umask)
        r = subprocess.run(command("ExecStartPre"), capture_output=True, text=True, timeout=RUN_BOUND,
                           env=env, **as_service)
        self.assertEqual(r.returncode, 0, f"ExecStartPre failed: {r.stdout}{r.stderr}")

        if notify_socket:
            env["NOTIFY_SOCKET"] = notify_socket
        argv = command("ExecStart") + ["--log-stderr"]
        if trace:  # strace runs as the service user too: the log is its
            with open(trace, "w"):
                pass
            os.chown(trace, pw.pw_uid, -1)
            argv = ["strace", "-f", "-qq", "-o", trace] + argv
        log_path = os.path.join(root, "rt-milter.log")
        with open(log_path, "wb") as log:  # systemd would take stderr into the journal
            daemon = subprocess.Popen(argv, stdout=log, stderr=log, env=env, **as_service)
        self.addCleanup(lambda: daemon.poll() is None and daemon.kill())

        def log_text():
            with open(log_path, errors="replace") as fh:
                return fh.read()

        return daemon, root + SAMPLE_PATHS["socket"].split(":", 1)[1], stub, pw, log_text

    @staticmethod
    def accepts(sock: str) -> bool:
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(sock)
                return True
            except OSError:
                return False

    def wait_accepting(self, daemon, sock: str, log_text) -> None:
        deadline = time.monotonic() + START_BOUND
        while time.monotonic() < deadline and daemon.poll() is None:
            if self.accepts(sock):
                return
            time.sleep(0.05)
        self.fail(f"ExecStart did not come up (exit {daemon.poll()}):\n{log_text()}")

    def stop(self, daemon, log_text, traced: bool = False) -> None:
        """SIGTERM to rt-milter (strace's child when traced: strace then
        exits with rt-milter's status), which must stop cleanly."""
        pids = [daemon.pid]
        if traced:
            with open(f"/proc/{daemon.pid}/task/{daemon.pid}/children") as fh:
                pids = [int(p) for p in fh.read().split()]
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        self.assertEqual(daemon.wait(STOP_BOUND), 0, log_text())

    def test_unit_as_shipped_accepts_and_posts(self):
        sanitized = links(RT_MILTER, r"lib(a|t|ub)san")
        if not sanitized and not shutil.which("strace"):
            self.fail("strace is not installed (Debian package strace)")
        trace = "" if sanitized else os.path.join(self.workdir, "rt-milter.strace")
        daemon, sock, stub, pw, log_text = self.start_as_unit(trace=trace)
        self.wait_accepting(daemon, sock, log_text)

        # The MTA: another user, a member only of the group the unit names
        # (the package has Postfix join it); a unit without Group= asks for
        # no membership, and root's group is not one to give an MTA.
        mta = pwd.getpwnam(MTA_USER)
        mta_groups = [self.service_gid] if read_unit(UNIT).get("Group") else []
        argv = [MILTERTEST, "-s", os.path.join(HERE, "accept.lua")]
        for name, value in {"SOCKET": "unix:" + sock, "TESTDIR": HERE, "SENDER": SENDER,
                            "QID": "4UNIT1", "RT_RCPTS": "<rt@example.com>"}.items():
            argv += ["-D", f"{name}={value}"]
        mt = subprocess.run(argv, user=mta.pw_uid, group=mta.pw_gid, extra_groups=mta_groups,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=SCRIPT_BOUND)
        self.assertEqual(mt.returncode, 0, f"{mt.stdout}{mt.stderr}\nrt-milter log:\n{log_text()}")

        self.stop(daemon, log_text, traced=bool(trace))
        stub.quiesce(5.0)
        (req,) = stub.requests
        self.assertEqual({k: v for k, v in req.fields.items() if k != "message"}, GENERAL)
        journal = os.stat(self.workdir + SAMPLE_PATHS["journal"])
        self.assertEqual((journal.st_uid, journal.st_mode & 0o777), (pw.pw_uid, 0o600))
        self.assertNotIn("JOURNAL UNAVAILABLE", log_text())

        if trace:
            # Under SystemCallErrorNumber=EPERM a call outside the filter
            # would fail: rt-milter must make none, start to stop.
            used = traced_syscalls(trace)
            self.assertIn("bind", used, "the trace holds no bind: strace log not parsed?")
            outside = sorted(used - allowed_syscalls(read_unit(UNIT)))
            self.assertEqual(outside, [], "system calls the unit's SystemCallFilter= refuses")

    def test_notify_ready_once_listening(self):
        """Type=notify: READY=1 arrives on $NOTIFY_SOCKET, and by then the
        milter socket accepts (the MTA is ordered after the unit)."""
        if not links(RT_MILTER, r"libsystemd"):
            self.skipTest("rt-milter does not link libsystemd (no sd_notify support in this build)")
        self.assertEqual(read_unit(UNIT)["Type"], ["notify"])
        notify_path = os.path.join(self.workdir, "notify.sock")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(notify.close)
        notify.bind(notify_path)
        pw = ensure_system_user(read_unit(UNIT)["User"][-1])
        os.chown(notify_path, pw.pw_uid, -1)  # systemd's is writable by every service
        daemon, sock, _, _, log_text = self.start_as_unit(notify_socket=notify_path)

        notify.settimeout(0.2)
        deadline, messages = time.monotonic() + START_BOUND, []
        while time.monotonic() < deadline and daemon.poll() is None:
            try:
                messages.append(notify.recv(4096).decode(errors="replace"))
            except socket.timeout:
                continue
            if "READY=1" in messages[-1].split("\n"):
                break
        self.assertTrue(messages and "READY=1" in messages[-1].split("\n"),
                        f"no READY=1 (got {messages!r}, exit {daemon.poll()}):\n{log_text()}")
        self.assertTrue(self.accepts(sock), "READY=1 before the socket accepts")
        self.stop(daemon, log_text)


if __name__ == "__main__":
    import unittest
    unittest.main()
