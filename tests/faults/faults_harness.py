"""faults_harness — the harness of the fault-injection suite (tests/faults):
an SMTP client we control (smtplib, a unique Message-ID per message, the
retry = the very same bytes, sender and recipients sent again after a 4xx,
as a sending MTA does) -> a real private Postfix (packaging/postfix-sandbox,
smtpd_milters = unix:...) -> the real rt-milter -> a scripted, recording RT
stand-in (tests/relay/rt_stub.py) whose answer to each request is scripted.

Owns: FaultStub (RTStub that remembers which scripted action answered each
request), FaultMilter (RtMilter with this suite's config: journal, in_doubt,
circuit breaker keys — written only when the rt-milter under test knows them;
the journal a SQLite file in its folder or a PostgreSQL conninfo given),
OutMessage / Attempt / smtp_send (the client), FaultCase (the unittest base:
one stub, one rt-milter, one Postfix per test, the retry loop, the
"exactly once" accounting and the table row), and the table file
($FAULTS_TABLE, one JSON line per scenario run) that report.py prints.
Reused, not copied: tests/relay/rt_stub.py (RTStub and its actions),
tests/milter/milter_harness.py (RtMilter: start/stop by pid, socket wait,
log), tests/mta/mta_common.py (SandboxCase: the Postfix sandbox life cycle,
process leftovers; wait_for, maildir_files).
Must not: signal any process it did not start (rt-milter by its pid, Postfix
through postfix-sandbox stop), or listen anywhere but loopback.

Counting (the table "scenario | messages sent | delivered once | duplicated |
lost"): a request RT "processed" is a complete request the stub answered
"ok" (also late, after rt-milter gave up) or swallowed (Hang: RT keeps
working after the client gives up). Each (message, target) must be processed
exactly once: 0 = lost, 2+ = duplicated. A message is "delivered once" when
every one of its targets was.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
for _sub in ("relay", "milter", "mta"):
    sys.path.insert(0, os.path.join(REPO, "tests", _sub))

from rt_stub import Garbage, Hang, RecordedRequest, Reply, Reset, RTStub  # noqa: E402,F401
from milter_harness import (RT_MILTER, RUN_AS, GATEWAY_PATH, RtMilter,  # noqa: E402
                            _toml, free_loopback_port)
from mta_common import POSTFIX_SANDBOX, SandboxCase, maildir_files, wait_for  # noqa: E402,F401

RT_DOMAIN = "rt.example.com"          # postfix-sandbox's default RT domain
SENDER = "alice@example.org"
RT_RCPT = f"rt@{RT_DOMAIN}"
BUGS_RCPT = f"bugs@{RT_DOMAIN}"
ROUTES = (
    {"address": RT_RCPT, "queue": "General", "action": "correspond"},
    {"address": BUGS_RCPT, "queue": "Bugs", "action": "comment"},
)
# target of a request = (queue, action) as posted
TARGET_OF = {RT_RCPT: ("General", "correspond"), BUGS_RCPT: ("Bugs", "comment")}

SMTP_TIMEOUT = 120         # s: one SMTP command (end of DATA waits for RT)
RETRY_ATTEMPTS = 6         # attempts per message, first one included
RETRY_WITHIN = 90.0        # s for all the attempts of one message
TABLE_HEADER = "scenario | messages sent | delivered once | duplicated | lost"


def say(msg: str) -> None:
    print(f"faults: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# RT stand-in
# --------------------------------------------------------------------------

class FaultStub(RTStub):
    """RTStub that remembers the action object that answered each request
    (the stub picks it on the serving thread just before parsing the head,
    so a thread-local ties the two even with concurrent POSTs)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self._tl = threading.local()
        self.action_by_index: dict = {}

    def _next_action(self):
        action = super()._next_action()
        self._tl.action = action
        return action

    def _parse_head(self, req, head):
        with self._lock:
            self.action_by_index[req.index] = getattr(self._tl, "action", None)
        super()._parse_head(req, head)

    def action_of(self, req: RecordedRequest):
        with self._lock:
            return self.action_by_index.get(req.index)

    def complete_requests(self) -> list:
        return [r for r in self.requests if r.complete]


def processed(req: RecordedRequest, action) -> bool:
    """Did RT (as scripted) take this request in? See the module doc."""
    if not (req.complete and req.multipart_closed):
        return False
    if isinstance(action, Hang):
        return True
    if isinstance(action, Reply):
        return 200 <= action.status <= 299 and action.body.startswith(b"ok")
    return False


def request_target(req: RecordedRequest) -> tuple:
    f = {k: v for k, v in req.fields.items() if k != "message"}
    dec = lambda v: None if v is None else v.decode("latin-1")  # noqa: E731
    return (dec(f.get("queue")), dec(f.get("action")))


# --------------------------------------------------------------------------
# rt-milter
# --------------------------------------------------------------------------

_SUPPORT: dict = {}


def milter_supports(feature: str) -> bool:
    """Does the rt-milter under test know these keys? "journal" (in_doubt,
    journal_expiry, on_journal_error) and "circuit" (circuit_failures,
    circuit_cooldown in [rt]). Asked once per process with --check-config."""
    if feature not in _SUPPORT:
        probe = {"journal": ['in_doubt = "delivered"', "journal_expiry = 432000",
                             'on_journal_error = "tempfail"'],
                 "circuit": []}[feature]
        rt_extra = {"journal": [], "circuit": ["circuit_failures = 5",
                                                "circuit_cooldown = 30"]}[feature]
        with tempfile.TemporaryDirectory(prefix="rtf-probe-") as d:
            path = os.path.join(d, "probe.toml")
            with open(path, "w") as fh:
                fh.write("\n".join(
                    [f'socket = "unix:{d}/s.sock"', f'spool_dir = "{d}/spool"',
                     f"user = {_toml(RUN_AS)}",
                     f'journal = "{d}/j.sqlite"', *probe, "[rt]",
                     'url = "http://127.0.0.1:1"', *rt_extra, "[[route]]",
                     f'address = "{RT_RCPT}"']) + "\n")
            r = subprocess.run([RT_MILTER, "--check-config", "-c", path],
                               stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=30)
        _SUPPORT[feature] = r.returncode == 0
        if not _SUPPORT[feature]:
            say(f"rt-milter does not know the {feature} keys yet "
                f"({r.stderr.decode(errors='replace').strip()}); running without them")
    return _SUPPORT[feature]


class FaultMilter(RtMilter):
    """rt-milter on a unix socket in workdir, with this suite's config:
    journal (workdir/journal.sqlite), [rt] url/timeout and the circuit
    breaker keys. start() may be called again after kill() (same config,
    same journal, same spool)."""

    def __init__(self, workdir: str, rt_url: str, timeout: int = 3,
                 routes: Sequence[dict] = ROUTES, circuit: Optional[tuple] = None,
                 in_doubt: Optional[str] = None, journal: Optional[str] = None,
                 on_journal_error: Optional[str] = None,
                 extra: Sequence[str] = ()):
        super().__init__(workdir, rt_url, "unix")
        self.extra = list(extra)            # more top-level lines (metrics = ...)
        self.timeout = timeout
        self.routes = routes
        self.circuit = circuit              # (failures, cooldown) or None
        self.in_doubt = in_doubt
        self.spool_dir = os.path.join(workdir, "spool")
        # a file path (SQLite, the default) or a PostgreSQL conninfo
        self.journal = journal or os.path.join(workdir, "journal.sqlite")
        self.on_journal_error = on_journal_error

    def write_config(self) -> None:
        lines = ["# written by tests/faults/faults_harness.py",
                 f"socket = {_toml(self.socket_spec)}",
                 'socket_mode = "0666"',            # Postfix's smtpd is user postfix
                 f"spool_dir = {_toml(self.spool_dir)}",
                 f"journal = {_toml(self.journal)}",
                 f"user = {_toml(RUN_AS)}",            # root here: on purpose
                 'log_level = "info"']
        if self.in_doubt and milter_supports("journal"):
            lines.append(f"in_doubt = {_toml(self.in_doubt)}")
        if self.on_journal_error and milter_supports("journal"):
            lines.append(f"on_journal_error = {_toml(self.on_journal_error)}")
        lines += self.extra
        lines += ["", "[rt]", f"url = {_toml(self.rt_url)}",
                  f"timeout = {self.timeout}"]
        if self.circuit and milter_supports("circuit"):
            lines += [f"circuit_failures = {self.circuit[0]}",
                      f"circuit_cooldown = {self.circuit[1]}"]
        for route in self.routes:
            lines += ["", "[[route]]"]
            lines += [f"{k} = {_toml(v)}" for k, v in route.items()]
        with open(self.config_path, "w") as fh:
            fh.write("\n".join(lines) + "\n")

    def start(self) -> "FaultMilter":
        self.address = os.path.join(self.workdir, "rt-milter.sock")
        self.socket_spec = "unix:" + self.address
        self.write_config()
        self.terminated = False
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [RT_MILTER, "-c", self.config_path, "--log-stderr"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        if not self._wait_ready():
            raise AssertionError(f"rt-milter did not come up on "
                                 f"{self.socket_spec}:\n{self.log()}")
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def status(self, key: str) -> Optional[int]:
        """A kB figure of /proc/PID/status (VmHWM, VmRSS), None if gone."""
        try:
            with open(f"/proc/{self.pid}/status") as fh:
                for line in fh:
                    if line.startswith(key + ":"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def open_files(self) -> list:
        """Targets of /proc/PID/fd/* that are files (not sockets, pipes,
        anon inodes or /dev)."""
        out = []
        base = f"/proc/{self.pid}/fd"
        for fd in sorted(os.listdir(base), key=int):
            try:
                target = os.readlink(os.path.join(base, fd))
            except OSError:
                continue
            if target.startswith(("socket:", "pipe:", "anon_inode:", "/dev/")):
                continue
            out.append(target)
        return out

    def leaked_files(self) -> list:
        """Open files other than the log and the journal (+ -wal/-shm/
        -journal): deleted (O_TMPFILE) spool files and anything else."""
        allowed = {os.path.realpath(self.log_path)}
        jr = os.path.realpath(self.journal)
        allowed |= {jr, jr + "-wal", jr + "-shm", jr + "-journal"}
        return [t for t in self.open_files() if t not in allowed]

    def spool_contents(self) -> list:
        try:
            return sorted(os.listdir(self.spool_dir))
        except FileNotFoundError:
            return []


# --------------------------------------------------------------------------
# The SMTP client
# --------------------------------------------------------------------------

@dataclass
class OutMessage:
    """One message as a sending MTA holds it in its queue: the same bytes,
    sender and recipients at every attempt."""
    msgid: str
    rcpts: list
    data: bytes = b""                    # CRLF lines, no leading dots
    sender: str = SENDER
    # huge messages: chunks() yields the CRLF bytes; size/sha256 of what RT
    # must get (Return-Path line + the message with LF line ends)
    chunk_source: Optional[Callable[[], Iterator[bytes]]] = None
    expected_size: int = 0
    expected_sha256: str = ""

    def chunks(self) -> Iterator[bytes]:
        if self.chunk_source:
            yield from self.chunk_source()
        else:
            yield self.data

    def expected_part(self) -> bytes:
        return (b"Return-Path: <" + self.sender.encode() + b">\n"
                + self.data.replace(b"\r\n", b"\n"))

    def targets(self) -> list:
        return sorted({TARGET_OF[r] for r in self.rcpts})


def make_message(tag: str, rcpts: Sequence[str], body_size: int = 0,
                 n: int = 0) -> OutMessage:
    """A message with a unique Message-ID; body_size pads the body with
    numbered 78-character lines (so it is spooled past 1 MiB)."""
    msgid = f"<fault-{tag}-{n}-{uuid.uuid4().hex[:12]}@faults.test>"
    head = (f"From: Alice <{SENDER}>\r\nTo: {', '.join(rcpts)}\r\n"
            f"Subject: fault {tag} #{n}\r\nMessage-ID: {msgid}\r\n"
            f"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n\r\n")
    body = [f"fault scenario {tag}, message {n}.\r\n".encode()]
    line, i, size = b"", 0, 0
    while size < body_size:
        line = (f"{i:08d} " + "abcdefghijklmnopqrstuvwxyz" * 3)[:78].encode() + b"\r\n"
        body.append(line)
        size += len(line)
        i += 1
    return OutMessage(msgid, list(rcpts), head.encode() + b"".join(body))


def make_huge_message(tag: str, rcpts: Sequence[str], total: int) -> OutMessage:
    """About `total` bytes, generated in 1 MiB blocks (never held whole);
    the expected size and sha256 at RT are computed on the way."""
    msgid = f"<fault-{tag}-huge-{uuid.uuid4().hex[:12]}@faults.test>"
    head = (f"From: Alice <{SENDER}>\r\nTo: {', '.join(rcpts)}\r\n"
            f"Subject: fault {tag} huge\r\nMessage-ID: {msgid}\r\n"
            f"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n\r\n").encode()
    line = ("abcdefghijklmnopqrstuvwxyz0123456789" * 3)[:68]
    blocks = max(1, (total - len(head)) // (1 << 20))

    def block(k: int) -> bytes:
        lines = [f"blk{k:05d}l{j:05d} {line}\r\n".encode() for j in range(13000)]
        return b"".join(lines)                 # 13000 * 80 = 1,040,000 bytes

    def source() -> Iterator[bytes]:
        yield head
        for k in range(blocks):
            yield block(k)

    sha = hashlib.sha256(b"Return-Path: <" + SENDER.encode() + b">\n")
    size = len(b"Return-Path: <" + SENDER.encode() + b">\n")
    for chunk in source():
        lf = chunk.replace(b"\r\n", b"\n")
        sha.update(lf)
        size += len(lf)
    m = OutMessage(msgid, list(rcpts), b"", chunk_source=source,
                   expected_size=size, expected_sha256=sha.hexdigest())
    return m


@dataclass
class Attempt:
    """One SMTP attempt: where it ended and with what reply."""
    stage: str                      # connect | mail | rcpt | data | end | error
    code: int
    text: str
    rcpt_replies: dict = field(default_factory=dict)   # rcpt -> (code, text)
    seconds: float = 0.0
    started: float = 0.0

    @property
    def accepted(self) -> bool:
        return self.stage == "end" and self.code == 250

    @property
    def temporary(self) -> bool:
        return self.code == 0 or 400 <= self.code < 500

    def pending(self, rcpts: Sequence[str]) -> list:
        """Recipients a sending MTA still has to retry after this attempt."""
        if self.accepted:
            return [r for r in rcpts
                    if 400 <= self.rcpt_replies.get(r, (250, ""))[0] < 500]
        if self.stage == "end" and self.code >= 500:
            return []
        return [r for r in rcpts if self.rcpt_replies.get(r, (0, ""))[0] < 500]

    def line(self) -> str:
        return f"{self.stage}: {self.code} {self.text}"


def smtp_send(port: int, msg: OutMessage, rcpts: Optional[Sequence[str]] = None,
              timeout: float = SMTP_TIMEOUT) -> Attempt:
    """One attempt: EHLO, MAIL, RCPT each, DATA with the message streamed
    (only to the recipients accepted), the reply to the final dot."""
    rcpts = list(msg.rcpts if rcpts is None else rcpts)
    t0 = time.monotonic()
    stage = "connect"
    replies: dict = {}

    def done(code: int, text) -> Attempt:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return Attempt(stage, code, " ".join(str(text).split()), replies,
                       time.monotonic() - t0, t0)

    s = smtplib.SMTP(timeout=timeout)
    try:
        s.connect("127.0.0.1", port)
        s.ehlo("client.faults.test")
        stage = "mail"
        code, text = s.mail(msg.sender)
        if code != 250:
            return done(code, text)
        stage = "rcpt"
        for r in rcpts:
            replies[r] = s.rcpt(r)
        ok = [r for r in rcpts if replies[r][0] in (250, 251)]
        if not ok:
            first = replies[rcpts[0]]
            return done(first[0], first[1])
        stage = "data"
        s.putcmd("data")
        code, text = s.getreply()
        if code != 354:
            return done(code, text)
        for chunk in msg.chunks():
            s.sock.sendall(chunk)
        s.sock.sendall(b".\r\n")
        stage = "end"
        code, text = s.getreply()
        return done(code, text)
    except (OSError, smtplib.SMTPException) as e:
        return done(0, f"{type(e).__name__}: {e}")
    finally:
        try:
            s.quit()
        except (OSError, smtplib.SMTPException):
            s.close()


# --------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------

TABLE_PATH = os.environ.get("FAULTS_TABLE", "")


def record_row(scenario: str, sent: int, once: int, dup: int, lost: int,
               extra: Optional[dict] = None) -> str:
    row = f"{scenario} | {sent} | {once} | {dup} | {lost}"
    print(f"\n{TABLE_HEADER}\n{row}", file=sys.stderr, flush=True)
    if TABLE_PATH:
        os.makedirs(os.path.dirname(os.path.abspath(TABLE_PATH)), exist_ok=True)
        with open(TABLE_PATH, "a") as fh:
            fh.write(json.dumps({"scenario": scenario, "sent": sent, "once": once,
                                 "dup": dup, "lost": lost, "time": time.time(),
                                 "extra": extra or {}}) + "\n")
    return row


def read_table(path: str) -> list:
    """The latest row per scenario, in scenario order."""
    rows: dict = {}
    try:
        with open(path) as fh:
            for line in fh:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                rows[r["scenario"]] = r
    except FileNotFoundError:
        return []

    def order(name: str):
        m = re.match(r"(\d+)", name)
        return (int(m.group(1)) if m else 999, name)
    return [rows[k] for k in sorted(rows, key=order)]


def format_table(rows: Iterable[dict]) -> str:
    lines = [TABLE_HEADER, "---|---|---|---|---"]
    for r in rows:
        lines.append(f"{r['scenario']} | {r['sent']} | {r['once']} | {r['dup']} | {r['lost']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# The test base class
# --------------------------------------------------------------------------

class FaultCase(SandboxCase):
    """Per test: a loopback RT stub (or none: a closed port), rt-milter with
    a journal, a private Postfix whose milter it is. Soft checks (check())
    collect problems so the scenario runs to its end and prints its table
    row; conclude() then fails with every problem found."""

    SANDBOX = POSTFIX_SANDBOX
    maxDiff = None

    def setUp(self):
        super().setUp()                      # root + swaks checks, self.dir
        if not os.access("/usr/sbin/postfix", os.X_OK):
            self.skipTest("postfix is not installed")
        if not os.access(RT_MILTER, os.X_OK):
            raise AssertionError(f"rt-milter not executable: {RT_MILTER}")
        self.work = tempfile.mkdtemp(prefix="rtf-")   # short: sun_path
        os.chmod(self.work, 0o755)                    # smtpd reaches the socket
        self.addCleanup(self._remove_work)
        self.problems: list = []
        self.stubs_started: list = []
        self.messages: list = []             # every OutMessage of the scenario
        self.journal_on = milter_supports("journal")

    def leftovers(self):
        conf = "MAIL_CONFIG=" + os.path.join(os.path.realpath(self.dir), "conf")
        return [p for p in self.live_pids() if self.environ_has(p, conf)]

    def _remove_work(self):
        if self.failed():
            print(f"\nrt-milter folder kept for inspection: {self.work}",
                  file=sys.stderr)
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    # -- parts -------------------------------------------------------------

    def start_stub(self, *script, port: int = 0, default=Reply(200, b"ok\n"),
                   record_limit: Optional[int] = None) -> FaultStub:
        stub = FaultStub(script=script, default=default, port=port,
                         record_limit=record_limit, hang_limit=60)
        stub.start()
        self.addCleanup(stub.stop)
        return stub

    def start_milter(self, rt_url: str, **kw) -> FaultMilter:
        milter = FaultMilter(self.work, rt_url, **kw)
        self.addCleanup(self._stop_milter, milter)
        milter.start()
        return milter

    def _stop_milter(self, milter: FaultMilter) -> None:
        if milter.proc is not None and milter.proc.poll() is None:
            milter.stop()

    def start_postfix(self, milter: FaultMilter, *args: str) -> None:
        self.start("--milter", milter.socket_spec, *args)

    # -- soft checks -------------------------------------------------------

    def check(self, fn: Callable, *args, **kw) -> bool:
        """Run an assertion; record its failure instead of raising."""
        try:
            fn(*args, **kw)
            return True
        except AssertionError as e:
            self.problems.append(str(e))
            say(f"PROBLEM: {str(e).splitlines()[0][:300]}")
            return False

    def conclude(self, scenario: str, milter: Optional[FaultMilter] = None,
                 extra: Optional[dict] = None, stubs: Sequence[FaultStub] = ()) -> None:
        """Count, print the row, check the spool and the MTA, then fail on
        any problem seen."""
        counts = self.tally(stubs)
        once = dup = lost = 0
        for m in self.messages:
            per = [counts.get((m.msgid, t), 0) for t in m.targets()]
            if any(c == 0 for c in per):
                lost += 1
            elif any(c > 1 for c in per):
                dup += 1
            else:
                once += 1
        record_row(scenario, len(self.messages), once, dup, lost, extra)
        for m in self.messages:
            for t in m.targets():
                c = counts.get((m.msgid, t), 0)
                if c != 1:
                    self.problems.append(
                        f"{m.msgid} -> {t}: processed by RT {c} time(s), want exactly 1 "
                        f"({'duplicate' if c > 1 else 'lost'})")
        if milter is not None:
            self.check(self.assertEqual, milter.spool_contents(), [],
                       "files left in spool_dir")
        # RT-domain mail the milter let through would land here (no fallback)
        self.check(self.assertEqual, maildir_files(self.env["RT_FALLBACK_MAILDIR"]), [],
                   "a copy went past rt-milter to the MTA's RT maildir")
        if self.problems:
            detail = ""
            if milter is not None:
                detail = f"\n--- rt-milter log ---\n{milter.log()[-4000:]}"
            self.fail(f"{scenario}: {len(self.problems)} problem(s):\n- "
                      + "\n- ".join(self.problems) + detail)

    # -- sending -----------------------------------------------------------

    def new_message(self, tag: str, rcpts: Sequence[str] = (RT_RCPT,),
                    body_size: int = 0) -> OutMessage:
        m = make_message(tag, rcpts, body_size, len(self.messages) + 1)
        self.messages.append(m)
        return m

    def send(self, msg: OutMessage, rcpts: Optional[Sequence[str]] = None,
             timeout: float = SMTP_TIMEOUT) -> Attempt:
        a = smtp_send(self.port, msg, rcpts, timeout)
        say(f"{msg.msgid} -> {a.line()} ({a.seconds:.2f}s)")
        return a

    def retry_until_accepted(self, msg: OutMessage, first: Attempt,
                             attempts: int = RETRY_ATTEMPTS,
                             within: float = RETRY_WITHIN,
                             pause: float = 0.3,
                             send: Optional[Callable[[OutMessage, list], Attempt]] = None
                             ) -> list:
        """Send again (same bytes, sender, recipients still pending) until
        every recipient is accepted; bounded in attempts and time. `send`
        makes one attempt (default: self.send, to this test's Postfix; the
        two-MX suite alternates hosts). The attempts made (first one
        included); a problem when it never succeeds."""
        send = send or self.send
        history = [first]
        pending = first.pending(msg.rcpts)
        deadline = time.monotonic() + within
        while pending and len(history) < attempts and time.monotonic() < deadline:
            time.sleep(pause)
            a = send(msg, pending)
            history.append(a)
            if a.stage == "end" and a.code >= 500:
                self.problems.append(f"{msg.msgid}: permanent failure on retry: {a.line()}")
                return history
            pending = a.pending(pending)
        if pending:
            self.problems.append(
                f"{msg.msgid}: still not accepted after {len(history)} attempt(s): "
                + "; ".join(h.line() for h in history))
        return history

    # -- what RT got ---------------------------------------------------------

    def tally(self, stubs: Sequence[FaultStub]) -> dict:
        """(Message-ID, target) -> times RT processed it, over every
        request the stubs saw. Huge messages (content not kept) are known by
        their size + sha256."""
        counts: dict = {}
        by_sha = {m.expected_sha256: m.msgid for m in self.messages if m.expected_sha256}
        for stub in stubs:
            for req in stub.requests:
                if not processed(req, stub.action_of(req)):
                    continue
                try:
                    part = req.part("message")
                except KeyError:
                    continue
                msgid = None
                if part.content is not None:
                    mm = re.search(rb"(?mi)^Message-ID:\s*(<[^>\s]+>)", part.content)
                    msgid = mm.group(1).decode() if mm else None
                else:
                    msgid = by_sha.get(part.sha256)
                if msgid is None:
                    continue
                key = (msgid, request_target(req))
                counts[key] = counts.get(key, 0) + 1
        return counts

    def message_of(self, req: RecordedRequest) -> Optional[OutMessage]:
        """The scenario's message this request carries (by Message-ID, or
        by size + sha256 for a huge one)."""
        try:
            part = req.part("message")
        except KeyError:
            return None
        for m in self.messages:
            if part.content is not None and m.msgid.encode() in part.content:
                return m
            if part.content is None and m.expected_sha256 == part.sha256:
                return m
        return None

    def check_all_posted(self, stub: "FaultStub", target: tuple) -> None:
        """check_posted() for every complete request of the stub."""
        for req in stub.complete_requests():
            m = self.message_of(req)
            if m is None:
                self.problems.append(f"request #{req.index}: not one of this scenario's messages")
            else:
                self.check_posted(req, m, target)

    def check_posted(self, req: RecordedRequest, msg: OutMessage, target: tuple) -> None:
        """A complete, well-formed POST of msg to target: the form fields
        and the message bytes (Return-Path line + the message, LF ends)."""
        def inner():
            self.assertEqual((req.method, req.path), ("POST", GATEWAY_PATH))
            self.assertTrue(req.complete and req.multipart_closed, req.error)
            self.assertIsNone(req.multipart_error)
            fields = {k: v for k, v in req.fields.items() if k != "message"}
            self.assertEqual(fields, {"queue": target[0].encode(),
                                      "action": target[1].encode()})
            part = req.part("message")
            if msg.expected_sha256:
                self.assertEqual((part.size, part.sha256),
                                 (msg.expected_size, msg.expected_sha256))
            else:
                self.assertEqual(part.content, msg.expected_part())
        self.check(inner)

    def check_log(self, milter: FaultMilter, regex: str, what: str) -> None:
        self.check(self.assertTrue, re.search(regex, milter.log()),
                   f"rt-milter's log does not show {what} (/{regex}/)")

    def check_reply(self, attempt: Attempt, stage: str, regex: str, what: str) -> None:
        self.check(self.assertEqual, attempt.stage, stage,
                   f"{what}: ended at {attempt.line()}, want stage {stage}")
        self.check(self.assertRegex, f"{attempt.code} {attempt.text}", regex,
                   f"{what}: reply")
