"""milter_harness — runs the real rt-milter between miltertest and the RT
stub, for the milter-protocol suite (tests/milter).

Owns: locating rt-milter ($RT_MILTER, else build/bin/rt-milter) and
miltertest; the system users tests start it for; writing a config into a per-test temp dir; starting rt-milter in
the foreground on a unix or inet loopback socket and waiting (bounded) until
the socket accepts; running one miltertest script with -D parameters;
stopping rt-milter with SIGTERM by pid and bounding its exit; reading its
stderr log; reading a systemd unit's [Service] section (read_unit, also for
tests/package); and MilterTestCase, the unittest base class that ties one
exchange (stub + rt-milter + script) together and checks what RT received.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "relay"))

from mailgate_harness import unused_port  # noqa: E402
from rt_stub import Hang, RecordedRequest, Reply, RTStub  # noqa: E402

RT_MILTER = os.environ.get("RT_MILTER") or os.path.join(
    HERE, "..", "..", "build", "bin", "rt-milter")
MILTERTEST = os.environ.get("MILTERTEST") or shutil.which("miltertest") \
    or "/usr/bin/miltertest"
GATEWAY_PATH = "/REST/1.0/NoAuth/mail-gateway"

# Started as root, rt-milter refuses to run without `user`: the tests run it
# as whoever runs them, which is root here, so user = "root" on purpose.
RUN_AS = pwd.getpwuid(os.geteuid()).pw_name

START_BOUND = 10.0        # s until rt-milter's socket accepts
STOP_BOUND = 20.0         # s from SIGTERM to exit (libmilter polls every 5 s)
SCRIPT_BOUND = 60.0       # s for one miltertest run

SENDER = "<alice@example.org>"
SENDER_ADDRESS = "alice@example.org"
CLIENT = "client.example.net[192.0.2.10]"   # as lib.lua connects

with open(os.path.join(HERE, "message.eml"), "rb") as _fh:
    MESSAGE = _fh.read()  # what every script sends; RT must get these bytes

# The routes of every test's config.  rt@ and help@ share one target.
ROUTES = (
    {"address": "rt@example.com", "queue": "General", "action": "correspond"},
    {"address": "help@example.com", "queue": "General",
     "action": "correspond"},
    {"address": "bugs@example.com", "queue": "Bugs", "action": "comment"},
    {"address": "ticket@example.com", "extension": "ticket"},
    {"address": "ops@example.com", "queue": "Ops", "extension": "action",
     "actions": ["comment", "correspond"]},
)
GENERAL = {"queue": b"General", "action": b"correspond"}
BUGS = {"queue": b"Bugs", "action": b"comment"}


def _toml(value) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "[" + ", ".join(_toml(v) for v in value) + "]"


def write_config(path: str, socket_spec: str, rt_url: str, spool: str,
                 timeout: int = 10, routes=ROUTES, **top) -> None:
    lines = ["# written by tests/milter/milter_harness.py",
             f"socket = {_toml(socket_spec)}",
             f"spool_dir = {_toml(spool)}"]
    top.setdefault("journal", "")
    top.setdefault("user", RUN_AS)
    # "rt.KEY": a key of the [rt] table (a dotted key there would define it twice)
    rt_keys = {k[3:]: top.pop(k) for k in list(top) if k.startswith("rt.")}
    lines += [f"{k} = {_toml(v)}" for k, v in top.items()]
    lines += ["", "[rt]", f"url = {_toml(rt_url)}", f"timeout = {timeout}"]
    lines += [f"{k} = {_toml(v)}" for k, v in rt_keys.items()]
    for route in routes:
        lines += ["", "[[route]]"]
        lines += [f"{k} = {_toml(v)}" for k, v in route.items()]
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def ensure_system_user(name: str) -> pwd.struct_passwd:
    """An unprivileged system user with its own group, created when missing
    (idempotent, bounded: another test process may hold /etc/passwd's lock
    or create the same user meanwhile)."""
    for _ in range(10):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                            "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
            time.sleep(0.2)
    return pwd.getpwnam(name)


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_dir(path: str, owner: pwd.struct_passwd, mode: int = 0o755) -> str:
    """path (and missing parents), owned by owner, with mode."""
    os.makedirs(path, exist_ok=True)
    os.chown(path, owner.pw_uid, owner.pw_gid)
    os.chmod(path, mode)
    return path


def wait_accepting(path: str, proc: subprocess.Popen, bound: float) -> bool:
    """Whether the unix socket at path accepts a connection within bound
    seconds while proc lives."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(path)
                return True
            except OSError:
                time.sleep(0.02)
    return False


def read_unit(path: str) -> dict:
    """A systemd unit file's [Service] section: key -> list of values, in order."""
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


class RtMilter:
    """One rt-milter process in the foreground, logging to a file."""

    def __init__(self, workdir: str, rt_url: str, kind: str = "unix",
                 **config):
        self.workdir = workdir
        self.rt_url = rt_url
        self.kind = kind
        self.config_kw = config
        self.config_path = os.path.join(workdir, "rt-milter.toml")
        self.log_path = os.path.join(workdir, "rt-milter.log")
        self.proc: Optional[subprocess.Popen] = None
        self.exit_code: Optional[int] = None
        self.terminated = False
        self.socket_spec = ""

    # -- life cycle --------------------------------------------------------

    def start(self) -> "RtMilter":
        """Start and wait until the socket accepts.  An inet port another
        process took meanwhile is retried with a fresh one."""
        for attempt in range(3):
            if self.kind == "unix":
                self.address = os.path.join(self.workdir, "rt-milter.sock")
                self.socket_spec = "unix:" + self.address
            else:
                self.address = ("127.0.0.1", free_loopback_port())
                self.socket_spec = f"inet:{self.address[1]}@127.0.0.1"
            write_config(self.config_path, self.socket_spec, self.rt_url,
                         os.path.join(self.workdir, "spool"),
                         **self.config_kw)
            log = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen(
                    [RT_MILTER, "-c", self.config_path, "--log-stderr"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            finally:
                log.close()
            if self._wait_ready():
                return self
            if self.kind == "unix" or "cannot listen" not in self.log():
                break
        raise AssertionError(f"rt-milter did not come up on "
                             f"{self.socket_spec}:\n{self.log()}")

    def _wait_ready(self) -> bool:
        family = socket.AF_UNIX if self.kind == "unix" else socket.AF_INET
        deadline = time.monotonic() + START_BOUND
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.exit_code = self.proc.returncode
                return False
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                try:
                    s.connect(self.address)
                    return True
                except OSError:
                    pass
            time.sleep(0.05)
        self.kill()
        return False

    def terminate(self) -> None:
        """SIGTERM by pid, once."""
        if not self.terminated and self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.terminated = True

    def stop(self) -> int:
        """SIGTERM (unless sent already) and wait; the exit code (None if it
        outlived STOP_BOUND and had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.terminate()
        try:
            self.exit_code = self.proc.wait(STOP_BOUND)
        except subprocess.TimeoutExpired:
            self.kill()
            self.exit_code = None
        return self.exit_code

    def kill(self) -> None:
        """Cleanup for a test that failed early: SIGKILL our pid only."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_BOUND)

    # -- log ---------------------------------------------------------------

    def log(self) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                return fh.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def summary_lines(self, qid: str) -> list:
        """The per-message summary lines for queue id qid."""
        prefix = f"rt-milter: {qid}: from="
        return [l for l in self.log().splitlines() if l.startswith(prefix)]


@dataclass
class ScriptRun:
    """One miltertest run."""
    argv: list
    rc: int
    output: str
    seconds: float

    def describe(self) -> str:
        return (f"miltertest exit {self.rc} after {self.seconds:.1f}s\n"
                f"argv: {self.argv}\noutput:\n{self.output}")


def run_miltertest(script: str, defines: dict, bound: float = SCRIPT_BOUND,
                   while_running: Optional[Callable[[], None]] = None
                   ) -> ScriptRun:
    """Run one script; while_running() is called once it has started."""
    argv = [MILTERTEST, "-s", os.path.join(HERE, script)]
    for name, value in defines.items():
        argv += ["-D", f"{name}={value}"]
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        if while_running:
            while_running()
        out, _ = proc.communicate(
            timeout=max(0.1, bound - (time.monotonic() - start)))
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        rc, out = -1, out + b"\n[killed: over the bound]"
    return ScriptRun(argv, rc, out.decode("utf-8", "replace"),
                     time.monotonic() - start)


@dataclass
class Exchange:
    """What one test produced: the script run, rt-milter's exit code and
    log, and every request RT received (final: rt-milter has exited)."""
    run: ScriptRun
    milter: RtMilter
    exit_code: Optional[int]
    requests: list = field(default_factory=list)

    def describe(self) -> str:
        return (f"{self.run.describe()}\nrt-milter exit: {self.exit_code}\n"
                f"rt-milter log:\n{self.milter.log()}")


def rcpt_list(addresses: Sequence[str]) -> str:
    return ",".join(addresses)


class MilterTestCase(unittest.TestCase):
    """Per test: a temp dir, an RT stub, rt-milter, one miltertest script."""

    maxDiff = None
    SOCKET_KIND = "unix"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for what, path in (("rt-milter", RT_MILTER),
                           ("miltertest", MILTERTEST)):
            if not os.access(path, os.X_OK):
                raise AssertionError(f"{what} not executable: {path}")

    def setUp(self):
        super().setUp()
        self.workdir = tempfile.mkdtemp(prefix="rtm-")   # short: sun_path
        self.addCleanup(shutil.rmtree, self.workdir, True)

    # -- running -----------------------------------------------------------

    def start_stub(self, *script, default=Reply(200, b"ok\n")) -> RTStub:
        stub = RTStub(script=script, default=default).start()
        self.addCleanup(stub.stop)
        return stub

    def start_milter(self, rt_url: str, **config) -> RtMilter:
        milter = RtMilter(self.workdir, rt_url, self.SOCKET_KIND, **config)
        self.addCleanup(milter.kill)
        return milter.start()

    def exchange(self, script: str, *replies, rt_url: Optional[str] = None,
                 config: Optional[dict] = None, bound: float = SCRIPT_BOUND,
                 script_passes: bool = True,
                 sigterm_while_posting: bool = False,
                 **defines) -> Exchange:
        """Stub answering `replies` (then "ok"), rt-milter, `script` with
        SOCKET/TESTDIR/SENDER and `defines` (lists joined with commas);
        asserts the script passed (or failed, for script_passes=False) and
        that rt-milter stopped with exit 0.  sigterm_while_posting: SIGTERM
        rt-milter as soon as RT has received a request."""
        stub = self.start_stub(*replies)
        milter = self.start_milter(rt_url or stub.url, **(config or {}))
        params = {"SOCKET": milter.socket_spec, "TESTDIR": HERE,
                  "SENDER": SENDER}
        for name, value in defines.items():
            params[name] = rcpt_list(value) if isinstance(
                value, (list, tuple)) else value
        def sigterm_once_posted():
            deadline = time.monotonic() + START_BOUND
            while not stub.requests and time.monotonic() < deadline:
                time.sleep(0.02)
            milter.terminate()

        run = run_miltertest(
            script, params, bound,
            sigterm_once_posted if sigterm_while_posting else None)
        exit_code = milter.stop()
        stub.quiesce(5.0)
        ex = Exchange(run, milter, exit_code, stub.requests)
        if script_passes:
            self.assertEqual(run.rc, 0, ex.describe())
        else:
            self.assertNotEqual(run.rc, 0, ex.describe())
        with self.subTest("rt-milter exits 0 on SIGTERM"):
            self.assertEqual(exit_code, 0, ex.describe())
        return ex

    # -- assertions --------------------------------------------------------

    def assertPosts(self, ex: Exchange, n: int) -> list:
        self.assertEqual(len(ex.requests), n,
                         [r.summary() for r in ex.requests])
        return ex.requests

    def assertPosted(self, req: RecordedRequest, fields: dict,
                     extension: Optional[str] = None,
                     sender: str = SENDER_ADDRESS,
                     message: bytes = MESSAGE) -> None:
        """One well-formed POST to the gateway: form fields exactly
        `fields`, and the message part = the prefix rt-mailgate would add
        (X-RT-Mail-Extension when the address had one, then Return-Path)
        followed by the message as sent, CRLF turned into LF."""
        self.assertIsNone(req.error, req.summary())
        self.assertEqual((req.method, req.path), ("POST", GATEWAY_PATH))
        self.assertTrue(req.complete and req.multipart_closed,
                        req.summary())
        self.assertIsNone(req.multipart_error)
        got = dict(req.fields)
        body = got.pop("message", None)
        self.assertEqual(got, fields)
        prefix = b""
        if extension is not None:
            prefix += b"X-RT-Mail-Extension: " + extension.encode() + b"\n"
        prefix += b"Return-Path: <" + sender.encode() + b">\n"
        self.assertIsNotNone(body, "no message part")
        # as text, so that a difference shows as a line diff
        self.assertEqual(body.decode("latin-1"),
                         (prefix + message).decode("latin-1"))

    def assertSummary(self, ex: Exchange, qid: str, verdict: str,
                      *contains: str, sender: str = SENDER_ADDRESS,
                      client: str = CLIENT) -> str:
        """Exactly one summary line for qid, naming the sender and the
        client; its verdict starts with `verdict`; it holds each of
        `contains`."""
        lines = ex.milter.summary_lines(qid)
        self.assertEqual(len(lines), 1, ex.milter.log())
        line = lines[0]
        m = re.search(r', verdict="([^"]*)", delay=[0-9.]+$', line)
        self.assertIsNotNone(m, line)
        self.assertTrue(m.group(1).startswith(verdict),
                        f"verdict {m.group(1)!r} is not {verdict!r}...")
        for text in (f"from=<{sender}>", f"client={client}", *contains):
            self.assertIn(text, line)
        return line
