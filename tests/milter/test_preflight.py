"""test_preflight — a daemon that refuses to start broken (issue 10).

Before it listens, rt-milter checks what delivery needs, as the user it
runs as, and --check-config checks the same without creating anything:
the journal opens (its missing directory is made 0750 for the service
user when rt-milter may make it), the spool takes a file, TLS files and
a locked gateway's header files are readable, the socket can be bound. Each failure is one line naming the
key, the path and the reason; the exit status says what kind (73
EX_CANTCREAT: cannot create or write; 78 EX_CONFIG: the configuration).
A socket a running rt-milter answers on is a note for --check-config. A
file without a [[route]] is refused (78). A daemon with no syslog at
/dev/log logs to standard error and says so once; one with a syslog
there logs to it. Under a service manager (NOTIFY_SOCKET) it sends
READY=1 once the socket accepts, RELOADING=1 and READY=1 around a reload,
STOPPING=1 on SIGTERM, and nothing when it does not start.

Each test starts the real binary as root (with `user`) or as the service
user rtm-test (as the shipped unit starts it), in a per-test directory.
"""

import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time

from milter_harness import (RT_MILTER, RUN_AS, START_BOUND, STOP_BOUND, MilterTestCase, RtMilter,
                            ensure_system_user, make_dir, wait_accepting, write_config)

RUN_BOUND = 30
SERVICE_USER = "rtm-test"  # created by the tests when missing
ROUTE = ({"address": "rt@example.com", "queue": "General"},)
NO_ROUTE_LINE = ": no [[route]]: rt-milter has nothing to deliver; add your RT addresses (see rt-milter.toml(5))"


def error_lines(text: str) -> list:
    return [line for line in text.splitlines() if line.startswith("rt-milter: error: ")]


class Preflight(MilterTestCase):

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.fail("this test needs root (the project's tests run as root)")
        self.user = ensure_system_user(SERVICE_USER)
        self.root = pwd.getpwuid(0)
        os.chmod(self.workdir, 0o755)  # the service user may look in
        # The service user's own directory: socket and spool go there unless
        # a test says otherwise.
        self.home = make_dir(os.path.join(self.workdir, "home"), self.user)
        self.sock = os.path.join(self.home, "rt-milter.sock")
        self.config_path = os.path.join(self.workdir, "rt-milter.toml")

    def config(self, socket_spec=None, spool=None, routes=ROUTE, **top) -> str:
        """The minimal configuration: socket, [rt] url, routes; spool_dir and
        the journal in the service user's directory unless given (never the
        built-in /var/lib/rt-milter: a test must not make it on the host;
        the test of the report puts the default's layout under its own
        root-owned directory instead)."""
        top.setdefault("journal", os.path.join(self.home, "journal.sqlite"))
        write_config(self.config_path, socket_spec or "unix:" + self.sock, "http://127.0.0.1:1",
                     spool or os.path.join(self.home, "spool"), routes=routes, **top)
        os.chmod(self.config_path, 0o644)
        return self.config_path

    def as_service_user(self) -> dict:
        return dict(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])

    def run_milter(self, *args, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([RT_MILTER, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=RUN_BOUND, **kw)

    def start(self, *args, env=None, **kw) -> subprocess.Popen:
        log_path = os.path.join(self.workdir, "rt-milter.log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([RT_MILTER, "-c", self.config_path, *args], stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=log, env=env, **kw)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        return proc

    def log(self) -> str:
        with open(os.path.join(self.workdir, "rt-milter.log"), errors="replace") as fh:
            return fh.read()

    def assert_refused(self, status: int, line: str, daemon_kw=None, check_kw=None):
        """The daemon exits `status` with `line` as its one error, having
        bound no socket; --check-config exits the same with the same line."""
        daemon = self.run_milter("-c", self.config_path, "--log-stderr", **(daemon_kw or {}))
        self.assertEqual(daemon.returncode, status, daemon.stderr)
        self.assertEqual(error_lines(daemon.stderr), ["rt-milter: error: " + line], daemon.stderr)
        self.assertNotIn("listening on", daemon.stderr)
        check = self.run_milter("--check-config", "-c", self.config_path, **(check_kw or {}))
        self.assertEqual(check.returncode, status, check.stdout + check.stderr)
        self.assertIn("rt-milter: " + line + "\n", check.stderr)
        self.assertIn("configuration " + self.config_path + ": ok", check.stdout)  # the output of old stays
        return daemon, check

    # -- the journal ----------------------------------------------------------

    def test_journal_directory_the_user_cannot_make(self):
        # The report of issue 10: the minimal configuration, the journal's
        # directory missing under root's directory, the daemon started as
        # its user. Every message got 451; now it does not start.
        lib = make_dir(os.path.join(self.workdir, "lib"), self.root)
        journal = os.path.join(lib, "rt-milter", "journal.sqlite")
        # The socket's directory would be made at the socket step: it stays
        # missing when the daemon stops before it.
        self.sock = os.path.join(self.home, "run", "rt-milter.sock")
        self.config(journal=journal, user="")
        line = (f"journal {journal}: cannot create directory {lib}/rt-milter as user {SERVICE_USER}: "
                "Permission denied")
        self.assert_refused(73, line, self.as_service_user(), self.as_service_user())
        self.assertFalse(os.path.exists(os.path.join(lib, "rt-milter")))
        self.assertFalse(os.path.exists(os.path.dirname(self.sock)), "the daemon went on to the socket")

    def test_journal_directory_is_made_for_the_service_user(self):
        journal = os.path.join(self.workdir, "lib", "rt-milter", "journal.sqlite")
        lib = make_dir(os.path.dirname(os.path.dirname(journal)), self.root)
        # Started as root: root may write lib, so rt-milter makes the journal's
        # directory there and gives it to the user. --check-config only says so.
        self.config(journal=journal, user=SERVICE_USER)
        check = self.run_milter("--check-config", "-c", self.config_path)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertIn(f"journal {journal}: its directory is made at start by root", check.stdout)
        self.assertFalse(os.path.exists(os.path.dirname(journal)), "--check-config made it")
        proc = self.start("--log-stderr")
        self.assertTrue(wait_accepting(self.sock, proc, START_BOUND), self.log())
        made = os.stat(os.path.dirname(journal))
        self.assertEqual((made.st_uid, made.st_gid, stat.S_IMODE(made.st_mode)),
                         (self.user.pw_uid, self.user.pw_gid, 0o750))
        self.assertEqual(os.stat(journal).st_uid, self.user.pw_uid)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(STOP_BOUND), 0, self.log())

        # Started as the service user, in a directory of that user's: the
        # user makes it, the same way.
        journal = os.path.join(self.home, "state", "journal.sqlite")
        self.config(journal=journal, user="")
        proc = self.start("--log-stderr", **self.as_service_user())
        self.assertTrue(wait_accepting(self.sock, proc, START_BOUND), self.log())
        made = os.stat(os.path.dirname(journal))
        self.assertEqual((made.st_uid, stat.S_IMODE(made.st_mode)), (self.user.pw_uid, 0o750))
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(STOP_BOUND), 0, self.log())
        self.assertIn(f"created the journal's directory {os.path.dirname(journal)} for user {SERVICE_USER}, "
                      "mode 0750", self.log())

    # -- the spool, TLS files, the socket ---------------------------------------

    def test_spool_the_user_cannot_write(self):
        # The user's own directory, but read-only to it: root could write
        # there; the check runs as the user, who cannot.
        spool = make_dir(os.path.join(self.home, "spool"), self.user, 0o500)
        self.config(spool=spool, user=SERVICE_USER)
        self.assert_refused(73, f"spool_dir {spool}: cannot create spool file in {spool}: Permission denied "
                                f"(as user {SERVICE_USER})")

    def test_ca_file_the_user_cannot_read(self):
        ca_file = os.path.join(self.workdir, "ca.pem")
        with open(ca_file, "w") as fh:
            fh.write("root's alone\n")
        os.chmod(ca_file, 0o600)
        self.config(user=SERVICE_USER)
        with open(self.config_path, "a") as fh:
            fh.write(f'\n[servers.other]\nurl = "https://rt2.example.com"\nca_file = "{ca_file}"\n')
        self.assert_refused(78, f"servers.other.ca_file {ca_file}: cannot read it as user {SERVICE_USER}: "
                                "Permission denied")

    def test_header_file_the_user_cannot_read(self):
        # Root's secret, mode 0600: a secret file by the loader's rules (root
        # may own it), but the daemon, once it is the service user, reads it
        # again at every reload and cannot.
        secret = os.path.join(self.workdir, "gateway.secret")
        with open(secret, "w") as fh:
            fh.write("root's secret\n")
        os.chmod(secret, 0o600)
        self.config(user=SERVICE_USER)
        with open(self.config_path, "a") as fh:
            fh.write(f'\n[servers.other]\nurl = "https://rt2.example.com"\n'
                     f'header_files = {{ "X-RT-Gateway-Secret" = "{secret}" }}\n')
        daemon, check = self.assert_refused(
            78, f"servers.other.header_files.X-RT-Gateway-Secret {secret}: cannot read it as user "
                f"{SERVICE_USER}: Permission denied")
        self.assertNotIn("root's secret", daemon.stderr + check.stdout + check.stderr)

    def test_socket_directory_that_cannot_be_made(self):
        parent = make_dir(os.path.join(self.workdir, "roots"), self.root)
        self.sock = os.path.join(parent, "run", "rt-milter.sock")
        self.config(user=SERVICE_USER)
        self.assert_refused(73, f"socket unix:{self.sock}: cannot create directory {parent}/run as user "
                                f"{SERVICE_USER}: Permission denied; create it, owned by {SERVICE_USER} "
                                "(systemd: RuntimeDirectory=)")

    def test_check_config_notes_a_socket_in_use(self):
        for kind in ("unix", "inet"):
            with self.subTest(kind):
                milter = RtMilter(self.workdir, "http://127.0.0.1:1", kind, routes=ROUTE)
                self.addCleanup(milter.kill)
                milter.start()
                check = self.run_milter("--check-config", "-c", milter.config_path)
                self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
                self.assertIn(f"rt-milter: note: socket {milter.socket_spec}: in use: a process answers on it "
                              "(a running rt-milter?); the daemon will not start while it does", check.stderr)
                self.assertEqual(milter.stop(), 0, milter.log())
                # Nobody there: a bind works (and leaves nothing behind).
                check = self.run_milter("--check-config", "-c", milter.config_path)
                self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
                self.assertIn(f"socket {milter.socket_spec}: a bind works", check.stdout)
                if kind == "unix":
                    self.assertFalse(os.path.exists(milter.address))

    # -- no route -------------------------------------------------------------

    def test_no_route_no_start(self):
        self.config(routes=())
        daemon = self.run_milter("-c", self.config_path, "--log-stderr")
        self.assertEqual(daemon.returncode, 78, daemon.stderr)
        self.assertEqual(error_lines(daemon.stderr), ["rt-milter: error: " + self.config_path + NO_ROUTE_LINE])
        self.assertFalse(os.path.exists(self.sock))
        check = self.run_milter("--check-config", "-c", self.config_path)
        self.assertEqual(check.returncode, 78, check.stderr)
        self.assertIn(self.config_path + NO_ROUTE_LINE + "\n", check.stderr)


# /dev in a private mount namespace: a tmpfs hides the host's /dev/log (or
# its absence), /dev/null comes back by a bind mount, and with SYSLOG set the
# test's own socket is bound over /dev/log. unshare without --fork and sh's
# exec keep one pid, so SIGTERM reaches rt-milter. Nothing of the host's
# /dev changes.
PRIVATE_DEV = r"""
set -e
mount --make-rprivate /
mount --bind /dev/null "$WORK/null"
mount -t tmpfs -o mode=0755 tmpfs /dev
: > /dev/null && mount --bind "$WORK/null" /dev/null
if [ -n "$SYSLOG" ]; then : > /dev/log && mount --bind "$SYSLOG" /dev/log; fi
exec "$@"
"""


class Logging(MilterTestCase):
    """Where the daemon's lines go without --log-stderr."""

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.fail("this test needs root (unshare -m, mount)")
        if not shutil.which("unshare"):
            self.fail("unshare is not installed (Debian package util-linux)")
        self.sock = os.path.join(self.workdir, "rt-milter.sock")
        self.config_path = os.path.join(self.workdir, "rt-milter.toml")
        write_config(self.config_path, "unix:" + self.sock, "http://127.0.0.1:1",
                     os.path.join(self.workdir, "spool"), routes=ROUTE)
        open(os.path.join(self.workdir, "null"), "w").close()

    def run_in_private_dev(self, syslog: str = "") -> str:
        """rt-milter in the foreground, up until its socket accepts, then
        SIGTERM; its standard error."""
        env = dict(os.environ, WORK=self.workdir, SYSLOG=syslog)
        err_path = os.path.join(self.workdir, "stderr")
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(["unshare", "-m", "sh", "-c", PRIVATE_DEV, "sh", RT_MILTER, "-c",
                                     self.config_path], stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())

        def stderr_text():
            with open(err_path, errors="replace") as fh:
                return fh.read()

        deadline = time.monotonic() + START_BOUND
        up = False
        while not up and time.monotonic() < deadline and proc.poll() is None:
            with socket.socket(socket.AF_UNIX) as s:
                try:
                    s.connect(self.sock)
                    up = True
                except OSError:
                    time.sleep(0.02)
        self.assertTrue(up, f"exit {proc.poll()}: {stderr_text()}")
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(STOP_BOUND), 0, stderr_text())
        return stderr_text()

    def test_no_syslog_logs_to_stderr_saying_so_once(self):
        err = self.run_in_private_dev()
        warning = "rt-milter: warning: no syslog at /dev/log: logging to standard error"
        self.assertEqual(err.count(warning), 1, err)
        self.assertEqual(err.splitlines()[0], warning, err)
        self.assertIn("rt-milter: listening on unix:" + self.sock, err)
        self.assertIn("rt-milter: stopped", err)

    def test_syslog_there_gets_the_lines(self):
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            with self.subTest(kind=kind.name):
                path = os.path.join(self.workdir, f"syslog-{kind.name}.sock")
                listener = socket.socket(socket.AF_UNIX, kind)
                self.addCleanup(listener.close)
                listener.bind(path)
                received = []
                if kind == socket.SOCK_STREAM:
                    listener.listen(8)
                    threading.Thread(target=self.read_stream, args=(listener, received), daemon=True).start()
                else:
                    threading.Thread(target=self.read_datagrams, args=(listener, received), daemon=True).start()
                err = self.run_in_private_dev(syslog=path)
                deadline = time.monotonic() + 5
                while not any(b"stopped" in r for r in received) and time.monotonic() < deadline:
                    time.sleep(0.05)
                self.assertNotIn("no syslog", err)
                self.assertNotIn("listening on", err)  # on syslog, not on stderr
                self.assertTrue(any(b"rt-milter" in r and b"listening on unix:" in r for r in received), received)

    @staticmethod
    def read_datagrams(listener, received):
        while True:
            try:
                received.append(listener.recv(65536))
            except OSError:
                return

    @staticmethod
    def read_stream(listener, received):
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    received.append(data)


class Notify(MilterTestCase):
    """sd_notify, against a datagram socket of the test's as NOTIFY_SOCKET."""

    def setUp(self):
        super().setUp()
        self.notify_path = os.path.join(self.workdir, "notify.sock")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(self.notify.close)
        self.notify.bind(self.notify_path)
        self.sock = os.path.join(self.workdir, "rt-milter.sock")
        self.config_path = os.path.join(self.workdir, "rt-milter.toml")

    def start(self, **top) -> subprocess.Popen:
        write_config(self.config_path, "unix:" + self.sock, "http://127.0.0.1:1",
                     os.path.join(self.workdir, "spool"), routes=ROUTE, **top)
        self.log_path = os.path.join(self.workdir, "rt-milter.log")
        with open(self.log_path, "wb") as log:
            proc = subprocess.Popen([RT_MILTER, "-c", self.config_path, "--log-stderr"], stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=log, env=dict(os.environ, NOTIFY_SOCKET=self.notify_path))
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        return proc

    def log(self) -> str:
        with open(self.log_path, errors="replace") as fh:
            return fh.read()

    def next_state(self, bound: float = START_BOUND) -> dict:
        self.notify.settimeout(bound)
        data = self.notify.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.splitlines() if "=" in line)

    def test_ready_after_the_socket_accepts_reloading_and_stopping(self):
        proc = self.start()
        state = self.next_state()
        # The first word is READY=1, and by then the socket accepts.
        self.assertEqual(state.get("READY"), "1", state)
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.sock)
        self.assertEqual(state.get("STATUS"), f"listening on unix:{self.sock} with 1 route(s)")
        proc.send_signal(signal.SIGUSR1)
        state = self.next_state()
        self.assertEqual(state.get("RELOADING"), "1", state)
        self.assertIn("MONOTONIC_USEC", state)
        state = self.next_state()
        self.assertEqual(state.get("READY"), "1", state)
        self.assertEqual(state.get("STATUS"), f"reloaded {self.config_path}: 1 route(s)")
        proc.send_signal(signal.SIGTERM)
        state = self.next_state(STOP_BOUND)
        self.assertEqual(state.get("STOPPING"), "1", state)
        self.assertEqual(proc.wait(STOP_BOUND), 0, self.log())

    def test_nothing_when_it_does_not_start(self):
        os.chmod(self.workdir, 0o755)
        user = ensure_system_user(SERVICE_USER)
        spool = os.path.join(self.workdir, "spool")
        os.mkdir(spool, 0o500)
        os.chown(spool, user.pw_uid, user.pw_gid)
        proc = self.start(user=SERVICE_USER)
        self.assertEqual(proc.wait(RUN_BOUND), 73, self.log())
        self.assertIn(f"spool_dir {spool}: cannot create spool file", self.log())  # the preflight said no
        self.notify.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            self.notify.recv(4096)


if __name__ == "__main__":
    import unittest
    unittest.main()
