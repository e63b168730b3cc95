"""e2e_harness — the harness of the end-to-end suite (tests/e2e): an SMTP
client (swaks) -> a real MTA (packaging/postfix-sandbox or
packaging/sendmail-sandbox) -> the real rt-milter -> a real RT 5
(packaging/rt-sandbox), everything on loopback.

Owns the runtime folder E2E_DIR ($E2E_DIR, else build/e2e; every folder
0755) and nothing outside it:
  rt/           the RT sandbox (fresh DB per suite run)
  NAME/         one "pair": rt-milter's rt-milter.toml, .sock, .log, .pid
                and spool/, and mta/, the MTA sandbox whose smtpd_milters /
                INPUT_MAIL_FILTER is that rt-milter (postfix/ and sendmail/
                are the shared ctest fixtures, and trust/, whose Postfix runs
                OpenDKIM and OpenDMARC (NAME/verifiers/, verifiers.py) before
                rt-milter; the reload and fallback tests make their own,
                named after the test)
It also owns the suite's rt-milter configuration, sending with swaks and
parsing the replies, reading the MTA's log, queue and maildirs, and reading
RT back over REST 1.0 (the methods of tests/rt's RealRt, one cookie session
per test process). Reused, not copied: tests/mta/mta_common.py (swaks,
maildirs, env files, process inspection, which come from
packaging/sandbox_common.py), tests/milter/milter_harness.py
(RtMilter: config file, start, wait for the socket), tests/rt/test_real_rt.py.
Must not: touch the system's MTA or files, or signal a process it did not
start (rt-milter is stopped by the pid it recorded, checked against
/proc; the sandboxes stop their own).

CLI (for ctest's fixtures and by hand):
  python3 e2e_harness.py start rt|postfix|sendmail|trust
  python3 e2e_harness.py stop  rt|postfix|sendmail|trust   (stop rt: everything)
  python3 e2e_harness.py list     test ids "ID FIXTURES TIMEOUT" for CMake
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest
import urllib.request
import uuid
import warnings
from dataclasses import dataclass
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
for _sub in ("tests/mta", "tests/milter", "tests/rt", "packaging"):
    sys.path.insert(0, os.path.join(REPO, _sub))

import mta_common  # noqa: E402
from mta_common import (POSTFIX_SANDBOX, SANDBOX_TIMEOUT, SENDMAIL_SANDBOX,  # noqa: E402
                        SWAKS, maildir_files, read_env, wait_for)
from milter_harness import RT_MILTER, STOP_BOUND, RtMilter  # noqa: E402
from sandbox_common import proc_stat  # noqa: E402
import test_real_rt as real_rt  # noqa: E402  (module only: its tests stay there)
from verifiers import AUTHSERV_ID, Verifiers  # noqa: E402

RT_SANDBOX = os.path.join(REPO, "packaging", "rt-sandbox")
RT_MAILGATE = os.environ.get("RT_MAILGATE") or os.path.join(REPO, "build", "bin",
                                                            "rt-mailgate")
E2E_DIR = os.path.realpath(os.environ.get("E2E_DIR")
                           or os.path.join(REPO, "build", "e2e"))

ALICE = real_rt.ALICE              # unprivileged; RT creates her at the warm-up
RT_DOMAIN = "rt.example.com"       # the sandboxes' defaults
LOCAL_DOMAIN = "example.net"
# [servers.down]: privileged port 1 on loopback, where nothing listens here
# (checked by the test that uses it), so a connect is refused at once.
DOWN_URL = "http://127.0.0.1:1"
RUN = f"{time.strftime('%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:4]}"

RT_START_TIMEOUT = 180     # s: rt-sandbox start --fresh (DB init ~20 s here)
SEND_TIMEOUT = 120         # s: one swaks run (RT answers in well under 1 s)
LOG_WAIT = 15              # s: for a line to reach a log, a file to a maildir

ROUTES = (
    {"address": f"rt@{RT_DOMAIN}", "queue": "General", "action": "correspond",
     "extension": "ticket"},
    {"address": f"rt+comment@{RT_DOMAIN}", "queue": "General", "action": "comment"},
    {"address": f"bugs@{RT_DOMAIN}", "queue": "bugs", "action": "correspond"},
    {"address": f"nosuchqueue@{RT_DOMAIN}", "queue": "no-such-queue"},
    {"address": f"take@{RT_DOMAIN}", "queue": "bugs", "action": "take-comment"},
    {"address": f"down@{RT_DOMAIN}", "server": "down"},
)


# rt-milter's max_message_size in the shared pairs (no test sends more but
# the one that checks the limit).
MAX_MESSAGE_SIZE = 2_000_000


def milter_config() -> dict:
    """RtMilter keyword arguments: the suite's routes on [rt] (the sandbox
    RT) and [servers.down] (a closed port; TOML dotted keys, written before
    [rt]); the socket open to Postfix's smtpd (user postfix). Loopback is a
    trusted network here, so take@ reaches RT, whose own refusal is what
    test_delivery's take_refused checks; the trust policy itself has the
    "trust" pair (TRUST_CONFIG, test_proven_sender)."""
    return {"timeout": 60, "routes": ROUTES, "socket_mode": "0666",
            "log_level": "info", "max_message_size": MAX_MESSAGE_SIZE,
            "trusted_networks": ["127.0.0.1/32"],
            "servers.down.url": DOWN_URL, "servers.down.timeout": 5}


# The "trust" pair (test_proven_sender): OpenDKIM and OpenDMARC before
# rt-milter (verifiers.py), Postfix dropping inbound Authentication-Results
# (header_checks IGNORE) and offering SMTP AUTH to staff, and rt-milter with
# the trust policy: only 127.0.0.2 is a trusted network (tests send from
# 127.0.0.1 unless they bind 127.0.0.2), only AUTHSERV_ID's results count.
SASL_USER, SASL_PASSWORD = "staff", "password"
TRUSTED_CLIENT = "127.0.0.2"
TRUST_ROUTES = (
    {"address": f"rt@{RT_DOMAIN}", "queue": "General", "action": "correspond"},
    {"address": f"take@{RT_DOMAIN}", "queue": "General", "action": "take-comment"},
    {"address": f"resolve@{RT_DOMAIN}", "queue": "General", "action": "correspond-resolve"},
    {"address": f"strict@{RT_DOMAIN}", "queue": "General", "action": "take-comment",
     "untrusted_action": "reject"},
    {"address": f"act@{RT_DOMAIN}", "queue": "General", "extension": "action",
     "actions": ["correspond", "comment", "take-comment", "correspond-resolve"]},
)
TRUST_CONFIG = {"routes": TRUST_ROUTES, "trusted_networks": [f"{TRUSTED_CLIENT}/32"],
                "trusted_authserv_ids": [AUTHSERV_ID]}


def say(msg: str) -> None:
    print(f"e2e: {msg}", file=sys.stderr, flush=True)


def makedirs(path: str) -> None:
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o755)


def run_tool(*cmd: str, timeout: float = SANDBOX_TIMEOUT) -> str:
    """Run a sandbox tool; its stdout; raise with its output if it fails."""
    r = subprocess.run([sys.executable, *cmd], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {r.returncode}):\n"
                           f"{r.stdout}{r.stderr}")
    return r.stdout


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

def _starttime(pid: int) -> Optional[str]:
    st = proc_stat(pid)
    return None if not st or st[0] in "ZX" else st[2]


def _cmdline(pid: int) -> list:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode("utf-8", "replace").split("\0")
    except OSError:
        return []


def _is_verifier(pid: int, prefix: str) -> bool:
    """OpenDKIM or OpenDMARC with a config file below prefix (verifiers.py)."""
    exe = mta_common.SandboxCase.exe_of(pid) or ""
    return os.path.basename(exe) in Verifiers.DAEMONS and any(
        a.startswith(prefix) for a in _cmdline(pid))


def _is_milter(pid: int, config_path: str) -> bool:
    exe = mta_common.SandboxCase.exe_of(pid) or ""
    return os.path.basename(exe) == "rt-milter" and config_path in _cmdline(pid)


def leftovers(root: str = E2E_DIR) -> list:
    """Live processes this harness started below root: rt-milters, OpenDKIM
    and OpenDMARC (by their config path), Postfix (MAIL_CONFIG), Sendmail
    (exe or SENDMAIL_SANDBOX), RT (RT_SITE_CONFIG)."""
    out = []
    prefix = root.rstrip("/") + "/"
    marks = (b"MAIL_CONFIG=", b"SENDMAIL_SANDBOX=", b"RT_SITE_CONFIG=")
    for pid in mta_common.SandboxCase.live_pids():
        if pid == os.getpid():
            continue
        exe = mta_common.SandboxCase.exe_of(pid) or ""
        if exe.startswith(prefix) or _is_verifier(pid, prefix) or (
                os.path.basename(exe) == "rt-milter" and any(
                a.startswith(prefix) for a in _cmdline(pid))):
            out.append(pid)
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if any(e.startswith(m + prefix.encode()) for e in env for m in marks):
            out.append(pid)
    return out


# --------------------------------------------------------------------------
# The RT sandbox
# --------------------------------------------------------------------------

RT_DIR = os.path.join(E2E_DIR, "rt")


def rt_env() -> dict:
    path = os.path.join(RT_DIR, "env")
    if not os.path.exists(path):
        raise RuntimeError(f"no RT sandbox ({path}): run the ctest fixture, or "
                           "`python3 e2e_harness.py start rt` first")
    return read_env(path)


def start_rt() -> str:
    """The suite's RT, fresh. It acts on RT-Send-Cc & co. in incoming mail,
    as RT before 5.0.5 (rt-sandbox --without-cve-2023-41259-fix): the worst
    case rt-milter's strip_rt_headers is for (test_rt_headers)."""
    makedirs(E2E_DIR)
    url = run_tool(RT_SANDBOX, "start", RT_DIR, "--fresh", "--without-cve-2023-41259-fix",
                   timeout=RT_START_TIMEOUT).strip().splitlines()[-1]
    # Warm-up: RT's first mail compiles its templates, and creates alice,
    # whom the tests' first concurrent mails would otherwise race to create.
    msg = (f"From: {ALICE}\nTo: rt@rt.test\nSubject: e2e warm-up {RUN}\n"
           f"Message-ID: <warm-up.{RUN}@e2e.test>\n\nwarm-up\n").encode()
    r = subprocess.run([RT_MAILGATE, "--url", url, "--queue", "General",
                        "--action", "correspond"], input=msg, capture_output=True,
                       timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"warm-up mail through {RT_MAILGATE} failed "
                           f"(exit {r.returncode}): {r.stderr.decode(errors='replace')}")
    return url


# --------------------------------------------------------------------------
# An MTA sandbox (read side)
# --------------------------------------------------------------------------

class Mta:
    """A running MTA sandbox, read through its DIR/env."""
    KIND = ""
    SANDBOX = ""
    QUEUE_ID_IN_REPLY = ""     # regex on the 250 reply to the final "."
    TO_LINE = ""               # regex of a delivery line, groups (to, relay)
    ALL_RT_DISPOSAL = ""       # what the log says of a message RT took whole

    def __init__(self, sandbox_dir: str):
        self.dir = sandbox_dir
        self.env = read_env(os.path.join(sandbox_dir, "env"))
        self.port = int(self.env["SMTP_PORT"])

    @staticmethod
    def of(kind: str, sandbox_dir: str) -> "Mta":
        return {"postfix": PostfixMta, "sendmail": SendmailMta}[kind](sandbox_dir)

    def maillog(self) -> str:
        try:
            with open(self.env["MAILLOG"], errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def lines(self, qid: str) -> list:
        return [l for l in self.maillog().splitlines() if f" {qid}: " in l]

    def wait_line(self, regex: str, timeout: float = LOG_WAIT) -> Optional[re.Match]:
        return wait_for(lambda: re.search(regex, self.maillog(), re.M), timeout)

    def deliveries(self, qid: str) -> list:
        """[(recipient, relay or mailer)] the MTA logged as delivered."""
        return [(to.strip("<>"), relay) for to, relay in
                re.findall(self.TO_LINE.format(qid=re.escape(qid)), self.maillog(), re.M)]

    def maildir(self, user: str) -> list:
        return maildir_files(os.path.join(self.env["MAILDIR"], user))

    def rt_mail(self) -> list:
        return maildir_files(self.env["RT_FALLBACK_MAILDIR"])

    def outgoing(self) -> list:
        return maildir_files(self.env["OUTGOING_MAILDIR"])

    def queue_id(self, msgid: str, timeout: float = LOG_WAIT) -> Optional[str]:
        """The queue id the MTA's log gives the message with this Message-ID."""
        raise NotImplementedError

    def queue_files(self, qid: str) -> list:
        raise NotImplementedError

    def flush(self) -> None:
        run_tool(self.SANDBOX, "flush", self.dir)


class PostfixMta(Mta):
    KIND = "postfix"
    SANDBOX = POSTFIX_SANDBOX
    QUEUE_ID_IN_REPLY = r"^250 2\.0\.0 Ok: queued as ([0-9A-F]+)$"
    TO_LINE = r" {qid}: to=<([^>]*)>, (?:orig_to=<[^>]*>, )?relay=([^,]*),.* status=sent "
    ALL_RT_DISPOSAL = r" {qid}: removed$"
    QUEUES = ("maildrop", "incoming", "active", "deferred", "hold", "corrupt")

    def queue_id(self, msgid, timeout=LOG_WAIT):
        m = self.wait_line(rf"cleanup\[\d+\]: ([0-9A-F]+): message-id=<{re.escape(msgid)}>$",
                           timeout)
        return m.group(1) if m else None

    def queue_files(self, qid):
        found = []
        for q in self.QUEUES:
            for top, _, files in os.walk(os.path.join(self.env["QUEUE_DIR"], q)):
                found += [os.path.join(top, f) for f in files if f == qid]
        return found

    def entered_queue(self, qid: str) -> bool:
        """qmgr saw it (a message refused at end of DATA never gets here)."""
        return bool(re.search(rf"qmgr\[\d+\]: {qid}: from=<", self.maillog()))


class SendmailMta(Mta):
    KIND = "sendmail"
    SANDBOX = SENDMAIL_SANDBOX
    QUEUE_ID_IN_REPLY = r"^250 2\.0\.0 (\w+) Message accepted for delivery$"
    TO_LINE = r" {qid}: to=(.*?), (?:ctladdr=.*?, )?delay=.*? mailer=(\w+),.* stat=Sent"
    ALL_RT_DISPOSAL = r" {qid}: discarded$"

    def queue_id(self, msgid, timeout=LOG_WAIT):
        m = self.wait_line(rf"sendmail\[\d+\]: (\w+): from=<[^>]*>, .*msgid=<{re.escape(msgid)}>",
                           timeout)
        return m.group(1) if m else None

    def queue_files(self, qid):
        try:
            names = os.listdir(self.env["QUEUE_DIR"])
        except FileNotFoundError:
            return []
        return [n for n in names if n[2:] == qid]  # qf, df, tf, xf, Qf + id

    def entered_queue(self, qid):
        return bool(self.queue_files(qid)) or bool(self.deliveries(qid))


# --------------------------------------------------------------------------
# A pair: one rt-milter in front of one MTA sandbox
# --------------------------------------------------------------------------

class Pair:
    """E2E_DIR/NAME: rt-milter (unless milter=False) and an MTA sandbox of
    KIND in NAME/mta whose milter is that rt-milter, with the RT fallback
    (rt-mailgate after the queue) on, as packaging/ deploys it."""

    def __init__(self, name: str, kind: str, config: Optional[dict] = None,
                 verifiers: bool = False, drop_inbound_results: bool = True):
        """verifiers: OpenDKIM and OpenDMARC (verifiers.py, in NAME/verifiers)
        before rt-milter, inbound Authentication-Results dropped by Postfix's
        header_checks (unless not drop_inbound_results), and SMTP AUTH for
        SASL_USER (Postfix only)."""
        self.name = name
        self.kind = kind
        self.dir = os.path.join(E2E_DIR, name)
        self.verifiers = Verifiers(os.path.join(self.dir, "verifiers")) if verifiers else None
        self.drop_inbound_results = drop_inbound_results
        self.mta_dir = os.path.join(self.dir, "mta")
        self.pidfile = os.path.join(self.dir, "rt-milter.pid")
        self.sandbox = {"postfix": POSTFIX_SANDBOX, "sendmail": SENDMAIL_SANDBOX}[kind]
        # RtMilter's files (config, socket, log) are in self.dir; the URL is
        # filled in at start.
        self.milter = RtMilter(self.dir, "", "unix", **{**milter_config(), **(config or {})})
        self.absent_socket = os.path.join(self.dir, "no-milter.sock")

    @property
    def socket_path(self) -> str:
        return os.path.join(self.dir, "rt-milter.sock")

    def mta(self) -> Mta:
        if not os.path.exists(os.path.join(self.mta_dir, "env")):
            raise RuntimeError(f"no {self.kind} sandbox in {self.mta_dir}: run the "
                               f"ctest fixture, or `python3 e2e_harness.py start "
                               f"{self.name}` first")
        return Mta.of(self.kind, self.mta_dir)

    def start(self, rt_url: str, milter: bool = True, mta_args=()) -> Mta:
        left = self.stop()  # what an interrupted earlier run may have left
        if left:
            raise RuntimeError(f"stopping an earlier {self.dir}: {left}")
        shutil.rmtree(self.dir, ignore_errors=True)
        makedirs(E2E_DIR)
        makedirs(self.dir)
        if len(self.socket_path) > 100:
            raise RuntimeError(f"{self.socket_path}: too long for a unix socket; "
                               "set E2E_DIR to a shorter folder")
        try:
            before = []
            if self.verifiers:
                self.verifiers.start()
                before = [a for m in self.verifiers.milters for a in ("--milter", m)]
                mta_args = (*mta_args, "--sasl-user", f"{SASL_USER}:{SASL_PASSWORD}")
                if self.drop_inbound_results:
                    checks = os.path.join(self.dir, "header_checks")
                    with open(checks, "w") as f:
                        f.write("/^Authentication-Results:/ IGNORE\n")
                    os.chmod(checks, 0o644)
                    mta_args = (*mta_args, "--set", f"header_checks = regexp:{checks}")
            if milter:
                self.milter.rt_url = rt_url
                self.milter.start()
                pid = self.milter.proc.pid
                with open(self.pidfile, "w") as f:
                    f.write(f"{pid} {_starttime(pid)}\n")
                spec = self.milter.socket_spec
            else:
                spec = "unix:" + self.absent_socket
            run_tool(self.sandbox, "start", self.mta_dir, "--fresh", *before, "--milter", spec,
                     "--rt-fallback", rt_url, "--mailgate", RT_MAILGATE, *mta_args)
            return self.mta()
        except BaseException:
            self.stop()  # nothing half-started outlives a failed start
            raise

    def milter_pid(self) -> Optional[int]:
        """The pid of this pair's live rt-milter, else None."""
        try:
            with open(self.pidfile) as f:
                pid_s, start = f.read().split()
            pid = int(pid_s)
        except (OSError, ValueError):
            return None
        if _starttime(pid) != start or not _is_milter(pid, self.milter.config_path):
            return None
        return pid

    def stop(self) -> list:
        """Stop the MTA, then rt-milter (SIGTERM: it finishes what is in
        flight and exits 0). Returns what went wrong (should be []):
        processes of this pair still alive, an rt-milter that needed
        SIGKILL, did not log "stopped" or exited non-zero."""
        problems = []
        if os.path.exists(os.path.join(self.mta_dir, "." + os.path.basename(self.sandbox))):
            run_tool(self.sandbox, "stop", self.mta_dir)
        pid = self.milter_pid()
        if pid:
            os.kill(pid, signal.SIGTERM)
            if not wait_for(lambda: self.milter_pid() is None, STOP_BOUND, 0.1):
                problems.append(f"rt-milter {pid} outlived SIGTERM by {STOP_BOUND} s")
                os.kill(pid, signal.SIGKILL)
                wait_for(lambda: self.milter_pid() is None, 5, 0.1)
            elif not self.milter_log().endswith("rt-milter: stopped\n"):
                problems.append(f"rt-milter {pid} did not log its stop:\n"
                                + self.milter_log()[-1000:])
        if self.milter.proc is not None:  # started by this process: reap it
            if self.milter.proc.poll() not in (0, None):
                problems.append(f"rt-milter exited {self.milter.proc.returncode}")
            self.milter.proc = None
        try:
            os.unlink(self.pidfile)
        except FileNotFoundError:
            pass
        # also when this Pair was made without verifiers (e2e_harness stop rt)
        problems += Verifiers(os.path.join(self.dir, "verifiers")).stop()
        return problems + leftovers(self.dir)

    def reload(self) -> None:
        """SIGUSR1 to this pair's rt-milter."""
        pid = self.milter_pid()
        if not pid:
            raise AssertionError(f"rt-milter of {self.dir} is not running")
        os.kill(pid, signal.SIGUSR1)

    def milter_log(self) -> str:
        return self.milter.log()

    def summary_lines(self, qid: str) -> list:
        return self.milter.summary_lines(qid)


SHARED_PAIRS = {"postfix": Pair("postfix", "postfix"),
                "sendmail": Pair("sendmail", "sendmail"),
                "trust": Pair("trust", "postfix", TRUST_CONFIG, verifiers=True)}


# --------------------------------------------------------------------------
# Sending
# --------------------------------------------------------------------------

@dataclass
class Sent:
    """One swaks run: the SMTP dialogue, as (command, [reply lines])."""
    rc: int
    transcript: str
    msgid: str
    subject: str

    def dialogue(self) -> list:
        steps, command = [], None
        for line in self.transcript.splitlines():
            if line.startswith(" -> "):
                text = line[4:]
                if command is None or command[1]:
                    command = (text, [])
                    steps.append(command)
                else:  # message lines after DATA: the last one is "."
                    command = (text, command[1])
                    steps[-1] = command
            elif line[:3] in ("<- ", "<**") and command is not None:
                command[1].append(re.sub(r"^<(-|\*\*) +", "", line))
        return steps

    def reply(self, command_regex: str) -> Optional[str]:
        """The (last line of the) reply to the first command matching."""
        for command, replies in self.dialogue():
            if re.fullmatch(command_regex, command, re.I) and replies:
                return replies[-1]
        return None

    def rcpt_reply(self, address: str) -> Optional[str]:
        return self.reply(rf"RCPT TO:<{re.escape(address)}>")

    def data_reply(self) -> Optional[str]:
        """The reply to the final "." (end of DATA)."""
        return self.reply(r"\.")

    def describe(self) -> str:
        return f"swaks exit {self.rc}; transcript:\n{self.transcript}"


def swaks(port: int, to, subject: str, sender: str = ALICE, body: str = "",
          msgid: Optional[str] = None, body_file: Optional[str] = None, headers=(),
          data: Optional[bytes] = None, args=()) -> Sent:
    """One message by SMTP to 127.0.0.1:port; to is one address or a list.
    body_file: the body is that file's content (for bodies too long for argv).
    headers: more "Name: value" header lines. data: the whole message as is
    (then subject and msgid only describe it, and body, body_file and
    headers are not used). args: more swaks options (--auth ...)."""
    recipients = [to] if isinstance(to, str) else list(to)
    msgid = msgid or f"{uuid.uuid4().hex}@e2e.test"
    cmd = [SWAKS, "--server", f"127.0.0.1:{port}", "--helo", "client.e2e.test",
           "--from", sender, "--to", ",".join(recipients), "--timeout", "100", *args]
    if data is None:
        cmd += ["--header", f"Subject: {subject}", "--header", f"Message-Id: <{msgid}>",
                *[a for h in headers for a in ("--add-header", h)],
                "--body", f"@{body_file}" if body_file else (body or f"Body of: {subject}")]
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=SEND_TIMEOUT)
    else:  # swaks reads the message from stdin ("--data -")
        r = subprocess.run(cmd + ["--data", "-"], input=data.decode("utf-8", "surrogateescape"),
                           capture_output=True, text=True, timeout=SEND_TIMEOUT)
    return Sent(r.returncode, r.stdout + r.stderr, msgid, subject)


# --------------------------------------------------------------------------
# The base test class
# --------------------------------------------------------------------------

class RtReadBack:
    """RT read-back over REST 1.0: tests/rt's RealRt methods (root's cookie
    session, ~15 ms a call), borrowed as plain functions."""
    _r = real_rt.RealRt
    rest_raw, rest = _r.rest_raw, _r.rest
    fields = staticmethod(_r.fields)
    show, history, transaction, attachment = _r.show, _r.history, _r.transaction, _r.attachment
    search, the_ticket, added, content_of = _r.search, _r.the_ticket, _r.added, _r.content_of
    assertNoTicket, mails_with = _r.assertNoTicket, _r.mails_with
    del _r


class E2ECase(RtReadBack, unittest.TestCase):
    """Reads the shared RT (and, with PAIR, the shared MTA + rt-milter)."""
    PAIR: Optional[str] = None    # "postfix" | "sendmail": the shared pair used
    FIXTURES = ("rt",)            # ctest fixtures required (see `list`)
    TIMEOUT = 120                 # ctest TIMEOUT of each test, seconds
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = rt_env()
        cls.url, cls.mbox = env["RT_URL"].rstrip("/"), env.get("RT_MBOX")
        cls.cookies = http.cookiejar.CookieJar()
        cls.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(cls.cookies))
        if cls.PAIR:
            cls.pair = SHARED_PAIRS[cls.PAIR]
            cls.mta = cls.pair.mta()
            if not cls.pair.milter_pid():
                raise AssertionError(f"rt-milter of {cls.pair.dir} is not running")

    def token(self) -> str:
        """Unique to this run, test and call (and never a substring of
        another token): put it in every subject."""
        return f"e2e{RUN}-{type(self).__name__}-{self._testMethodName[5:]}-{uuid.uuid4().hex[:8]}"

    def own_pair(self, name: str, kind: str, milter: bool = True, mta_args=(),
                 config: Optional[dict] = None, **pair_kw) -> Mta:
        """A pair for this test alone in E2E_DIR/name (short: the socket
        path is limited), stopped at cleanup, which fails the test if
        anything of it survives. config: rt-milter keys besides (or
        instead of) milter_config()'s, e.g. routes and servers.NAME.KEY.
        pair_kw: Pair's verifiers, drop_inbound_results."""
        self.pair = Pair(name, kind, config, **pair_kw)

        def stop():
            self.assertEqual(self.pair.stop(), [], f"stopping {self.pair.dir}")
        self.addCleanup(stop)
        self.mta = self.pair.start(self.url, milter, mta_args)
        return self.mta

    # ----- sending ------------------------------------------------------
    def send(self, to, subject: str, sender: str = ALICE, **kw) -> Sent:
        return swaks(self.mta.port, to, subject, sender, **kw)

    def assertReply(self, line: Optional[str], regex: str, sent: Sent) -> None:
        self.assertIsNotNone(line, sent.describe())
        self.assertRegex(line, regex, sent.describe())

    def send_ok(self, to, subject: str, **kw) -> tuple:
        """Send; assert 250 at end of DATA; (Sent, the queue id in it)."""
        sent = self.send(to, subject, **kw)
        line = sent.data_reply()
        self.assertReply(line, self.mta.QUEUE_ID_IN_REPLY, sent)
        return sent, re.match(self.mta.QUEUE_ID_IN_REPLY, line).group(1)

    def new_ticket(self, to=f"rt@{RT_DOMAIN}", queue="General") -> tuple:
        """A ticket of this test's own, through the MTA: (id, subject)."""
        tok = self.token()
        subject = f"{tok} printer on fire"
        self.send_ok(to, subject)
        tid = self.the_ticket(tok)
        self.assertEqual(self.show(tid)["Queue"], queue)
        return tid, subject

    # ----- the MTA and rt-milter's log ------------------------------------
    def summary(self, qid: str) -> str:
        """rt-milter's one summary line for queue id qid."""
        lines = self.pair.summary_lines(qid)
        self.assertEqual(len(lines), 1, f"summary lines for {qid}:\n{self.pair.milter_log()}")
        return lines[0]

    def assertNothingElsewhere(self) -> None:
        """No RT-domain copy parked, no bounce or DSN, no local mail but
        bob's: for the whole life of this MTA, as no test sends anything
        that should land anywhere else."""
        self.assertEqual(self.mta.rt_mail(), [], "RT-domain mail parked in rt-mail/")
        self.assertEqual(self.mta.outgoing(), [], "a bounce or DSN in outgoing/")
        self.assertLessEqual(set(os.listdir(self.mta.env["MAILDIR"])), {"bob"},
                             "local mail (postmaster?) besides bob's")

    def assertNotQueued(self, msgid: str) -> str:
        """The MTA refused the message at end of DATA: nothing queued,
        nothing delivered. Returns its queue id."""
        qid = self.mta.queue_id(msgid)
        self.assertTrue(qid, f"no queue id for <{msgid}> in\n{self.mta.maillog()[-3000:]}")
        self.assertTrue(wait_for(lambda: not self.mta.queue_files(qid), 5),
                        self.mta.queue_files(qid))
        self.assertFalse(self.mta.entered_queue(qid), "\n".join(self.mta.lines(qid)))
        self.assertEqual(self.mta.deliveries(qid), [])
        return qid

    def maildir_with(self, user: str, needle: str) -> list:
        out = []
        for path in self.mta.maildir(user):
            with open(path, errors="replace") as f:
                if needle in f.read():
                    out.append(path)
        return out


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def list_tests() -> int:
    """One line per test: "module.Class.method FIXTURE,... TIMEOUT"."""
    sys.path.insert(0, HERE)
    suite = unittest.defaultTestLoader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)

    def walk(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                yield from walk(t)
            else:
                yield t
    tests = list(walk(suite))
    import e2e_harness  # the test modules' copy, not this __main__
    broken = [t.id() for t in tests if not isinstance(t, e2e_harness.E2ECase)]
    if broken or not tests:
        print("cannot load: " + ", ".join(broken), file=sys.stderr)
        return 1
    for t in sorted(tests, key=lambda t: t.id()):
        print(f"{t.id()} {','.join(t.FIXTURES)} {t.TIMEOUT}")
    return 0


def main(argv) -> int:
    if len(argv) == 1 and argv[0] == "list":
        return list_tests()
    if len(argv) != 2 or argv[0] not in ("start", "stop") or \
            argv[1] not in ("rt", *SHARED_PAIRS):
        print(__doc__.split("CLI")[1], file=sys.stderr)
        return 2
    action, what = argv
    # "start" leaves rt-milter running on purpose when this process exits
    warnings.simplefilter("ignore", ResourceWarning)
    t0 = time.monotonic()
    if action == "start":
        if what == "rt":
            url = start_rt()
            say(f"RT at {url} ({RT_DIR}) after {time.monotonic() - t0:.1f} s")
        else:
            mta = SHARED_PAIRS[what].start(rt_env()["RT_URL"])
            say(f"{what} on 127.0.0.1:{mta.port} with rt-milter "
                f"{SHARED_PAIRS[what].milter_pid()} after {time.monotonic() - t0:.1f} s")
        return 0
    if what == "rt":  # the end of the suite: also whatever a killed test left
        left = []
        if os.path.isdir(E2E_DIR):
            for name in sorted(os.listdir(E2E_DIR)):
                d = os.path.join(E2E_DIR, name, "mta")
                for kind, sb in (("postfix", POSTFIX_SANDBOX), ("sendmail", SENDMAIL_SANDBOX)):
                    if os.path.exists(os.path.join(d, "." + os.path.basename(sb))):
                        left += Pair(name, kind).stop()
        if os.path.exists(os.path.join(RT_DIR, ".rt-sandbox")):
            run_tool(RT_SANDBOX, "stop", RT_DIR)
        left += leftovers()
    else:
        left = SHARED_PAIRS[what].stop()
    if left:
        say(f"stop {what}: {left}")
        return 1
    say(f"stopped {what} after {time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
