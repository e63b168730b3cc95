"""mailgate_harness — shared helpers for the relay tests (tests/relay).

Owns: choosing the binary under test ($RT_MAILGATE, default the Perl
/usr/bin/rt-mailgate), running it with a controlled environment, sample
messages, and StubTestCase, the unittest base class that starts rt_stub
servers and checks a recorded request's wire shape.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
import unittest
from dataclasses import dataclass
from typing import Optional, Sequence, Union

from rt_stub import RTStub, RecordedRequest, TLSFiles, make_cert

PERL_MAILGATE = "/usr/bin/rt-mailgate"
MAILGATE = os.environ.get("RT_MAILGATE") or PERL_MAILGATE
GATEWAY_PATH = "/REST/1.0/NoAuth/mail-gateway"
EX_TEMPFAIL = 75


def only_ours(why: str):
    """Skip a test of a deliberate difference (README.md, rt-mailgate)
    when the client under test is RT's Perl script; `why`: what it does."""
    return unittest.skipIf(MAILGATE == PERL_MAILGATE, f"the Perl original {why}")


# Variables that must not leak from the caller's environment into a run.
_SCRUB = {"EXTENSION", "http_proxy", "HTTP_PROXY", "https_proxy",
          "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY",
          "PERL_LWP_SSL_VERIFY_HOSTNAME", "PERL_LWP_SSL_CA_FILE",
          "HTTPS_CA_FILE", "HTTPS_CA_DIR", "SSL_CERT_FILE", "SSL_CERT_DIR",
          "CURL_CA_BUNDLE", "POSIXLY_CORRECT"}


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()          # EXTENSION not in the environment at all

SAMPLE_MESSAGE = (
    b"From: alice@example.com\n"
    b"To: rt@example.com\n"
    b"Subject: [example.com #12] hello\n"
    b"Message-ID: <relay-test@example.com>\n"
    b"\n"
    b"Body line\n")

# 8-bit bytes, NULs, CRLF and bare LF mixed, a lone CR, text that looks like
# multipart delimiters (including Perl's default boundary xYzZY), every byte
# value, and no final newline.
BINARY_MESSAGE = (
    b"From: bob@example.com\r\n"
    b"To: rt@example.com\n"
    b"Subject: =?UTF-8?B?w6TDtsO8?= \xe4\xf6\xfc bin\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"\r\n"
    b"line with NUL \x00 in it\n"
    b"crlf line\r\n"
    b"lone CR\rmid line\n"
    b"\r\n--xYzZY\r\n"
    b"--xYzZY--\n"
    b"\r\n--\r\n"
    b"Content-Disposition: form-data; name=\"queue\"\r\n\r\nEvil\r\n"
    + bytes(range(256)) + b"\n"
    b"\xff\xfe\x00\x00trailing bytes, no final newline")


# The usual invocation and the form fields it produces.
QA = ["--queue", "General", "--action", "correspond"]
QA_FIELDS = {"queue": b"General", "action": b"correspond"}

# What RT's Perl rt-mailgate does with $EXTENSION and --extension, row by
# row, each row observed with that client (5.0.3; the code is its
# setup_session, in /usr/bin/rt-mailgate-5 of Debian 12's request-tracker5:
# the two become the form fields queue/action/ticket and the
# X-RT-Mail-Extension header line):
# (name, EXTENSION env or UNSET, arguments, form fields besides message,
#  header line prepended to the message[, text stderr must mention]).
EXTENSION_ROWS = [
    # name, EXTENSION, args, fields, prepended header, stderr mentions
    ("no_extension", UNSET, QA, QA_FIELDS, b""),
    ("env_only_adds_header", "foo", ["--queue", "General"],
     {"queue": b"General"}, b"X-RT-Mail-Extension: foo\n"),
    ("queue_from_env", "Support", ["--extension", "queue", "--queue",
                                   "General"],
     {"queue": b"Support"}, b"X-RT-Mail-Extension: Support\n"),
    ("queue_env_unset_falls_back", UNSET,
     ["--extension", "queue", "--queue", "General"],
     {"queue": b"General"}, b"X-RT-Mail-Extension: queue\n"),
    ("queue_env_empty_falls_back", "",
     ["--extension", "queue", "--queue", "General"],
     {"queue": b"General"}, b"X-RT-Mail-Extension: queue\n"),
    ("queue_env_zero_falls_back", "0",
     ["--extension", "queue", "--queue", "General"],
     {"queue": b"General"}, b"X-RT-Mail-Extension: queue\n"),
    ("ticket_from_env", "123", ["--extension", "ticket"],
     {"ticket": b"123"}, b"X-RT-Mail-Extension: 123\n"),
    ("ticket_with_queue_and_action", "77",
     ["--extension", "ticket", "--queue", "General", "--action",
      "comment"],
     {"ticket": b"77", "queue": b"General", "action": b"comment"},
     b"X-RT-Mail-Extension: 77\n"),
    ("ticket_env_unset_sends_empty", UNSET, ["--extension", "ticket"],
     {"ticket": b""}, b"X-RT-Mail-Extension: ticket\n"),
    ("ticket_env_zero_sends_empty", "0", ["--extension", "ticket"],
     {"ticket": b""}, b"X-RT-Mail-Extension: ticket\n"),
    ("action_from_env", "comment",
     ["--extension", "action", "--action", "correspond"],
     {"action": b"comment"}, b"X-RT-Mail-Extension: comment\n"),
    ("mixed_case_with_env", "Support", ["--extension", "Queue"],
     {"queue": b"Support"}, b"X-RT-Mail-Extension: Support\n"),
    ("upper_case_ticket_with_env", "5", ["--extension", "TICKET"],
     {"ticket": b"5"}, b"X-RT-Mail-Extension: 5\n"),
    ("mixed_case_without_env_sends_empty", UNSET,
     ["--extension", "Queue", "--queue", "General"],
     {"queue": b""}, b"X-RT-Mail-Extension: Queue\n"),
    ("other_value_with_env_warns", "foo", ["--extension", "bar"],
     {}, b"X-RT-Mail-Extension: foo\n", "EXTENSION"),
    ("other_value_env_empty", "", ["--extension", "bar"],
     {}, b"X-RT-Mail-Extension: bar\n"),
    ("other_value_without_env", UNSET,
     ["--extension", "some-extension-arg"],
     {}, b"X-RT-Mail-Extension: some-extension-arg\n"),
    ("env_newlines_folded", "bad value with\nnewlines\n", [],
     {}, b"X-RT-Mail-Extension: bad value with\n\tnewlines\n"),
    ("env_crlf_folded", "a\r\nb", [],
     {}, b"X-RT-Mail-Extension: a\r\n\tb\n"),
    ("env_blank_lines_folded", "x\n\ny\r\n\n", [],
     {}, b"X-RT-Mail-Extension: x\n\t\n\ty\n"),
    ("env_cr_runs_folded", "a\r\r\nb\rc", [],
     {}, b"X-RT-Mail-Extension: a\r\r\n\tb\rc\n"),
    ("env_only_newline", "\n", [],
     {}, b"X-RT-Mail-Extension: \n"),
    ("env_zero_no_header", "0", [], {}, b""),
    ("env_empty_no_header", "", [], {}, b""),
]


@dataclass
class Run:
    """Outcome of one client run."""
    rc: int
    stdout: bytes
    stderr: bytes
    elapsed: float
    argv: list

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    def describe(self) -> str:
        return (f"argv={self.argv!r} rc={self.rc} "
                f"elapsed={self.elapsed:.2f}s\nstderr: {self.err[-2000:]}")


def mailgate_env(extension=UNSET, extra: Optional[dict] = None) -> dict:
    """The caller's environment minus EXTENSION/proxy/CA variables, with
    EXTENSION set to `extension` unless it is UNSET."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.setdefault("PATH", "/usr/bin:/bin")
    env["LC_ALL"] = "C"
    if extension is not UNSET:
        env["EXTENSION"] = extension
    env.update(extra or {})
    return env


def run_mailgate(args: Sequence[str],
                 stdin: Union[bytes, str] = SAMPLE_MESSAGE, extension=UNSET, env: Optional[dict] = None,
                 binary: Optional[str] = None, prefix: Sequence[str] = (),
                 timeout: float = 60) -> Run:
    """Run the client once.  stdin: bytes, or a path to a file to feed.
    subprocess.run kills the client if it outlives `timeout`."""
    argv = [*prefix, binary or MAILGATE, *args]
    start = time.monotonic()
    if isinstance(stdin, str):
        with open(stdin, "rb") as fh:
            p = subprocess.run(argv, stdin=fh, capture_output=True,
                               env=mailgate_env(extension, env),
                               timeout=timeout)
    else:
        p = subprocess.run(argv, input=stdin, capture_output=True,
                           env=mailgate_env(extension, env), timeout=timeout)
    return Run(p.returncode, p.stdout, p.stderr, time.monotonic() - start,
               argv)


class TLSCert:
    """A self-signed localhost certificate shared by one test class."""

    def __init__(self):
        self._dir = tempfile.TemporaryDirectory(prefix="relay_tls_")
        self.files: TLSFiles = make_cert(self._dir.name)

    def cleanup(self) -> None:
        self._dir.cleanup()


def unused_port() -> socket.socket:
    """A socket bound to 127.0.0.1:<port> but not listening: connecting to
    it is refused for as long as the caller keeps it open."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    return s


class StubTestCase(unittest.TestCase):
    """Base class: per-test stubs and request assertions."""

    maxDiff = None
    binary = MAILGATE

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.access(cls.binary, os.X_OK):
            raise AssertionError(
                f"client under test not executable: {cls.binary}")

    # -- running -----------------------------------------------------------

    def start_stub(self, *script, **kw) -> RTStub:
        stub = RTStub(script=script, **kw).start()
        self.addCleanup(stub.stop)
        return stub

    def deliver(self, stub_or_url, args: Sequence[str] = (), **kw) -> Run:
        """Run the client with --url first, then args."""
        url = stub_or_url if isinstance(stub_or_url, str) else stub_or_url.url
        return run_mailgate(["--url", url, *args],
                            binary=kw.pop("binary", self.binary), **kw)

    # -- assertions --------------------------------------------------------

    def assertExit(self, run: Run, code: int) -> None:
        self.assertEqual(run.rc, code, run.describe())

    def settled(self, stub: RTStub, timeout: float = 5.0) -> list:
        """All requests once the stub has nothing in flight."""
        self.assertTrue(stub.quiesce(timeout), "stub still busy")
        return stub.requests

    def one_request(self, stub: RTStub) -> RecordedRequest:
        reqs = self.settled(stub)
        self.assertEqual(len(reqs), 1, [r.summary() for r in reqs])
        return reqs[0]

    def assertNoRequest(self, stub: RTStub) -> None:
        self.assertEqual([r.summary() for r in self.settled(stub)], [])

    def assertWireShape(self, req: RecordedRequest,
                        path: str = GATEWAY_PATH) -> None:
        """POST, path, multipart/form-data with a boundary, Content-Length
        equal to the body, no chunking, well-formed parts, a message part
        with application/octet-stream and no filename."""
        ctx = req.summary() if req.body_size < 10000 else req.raw_head
        self.assertIsNone(req.error, ctx)
        self.assertEqual(req.method, "POST", ctx)
        self.assertEqual(req.target, path, ctx)
        self.assertIsNotNone(req.header("Host"), ctx)
        self.assertEqual(req.header_all("Transfer-Encoding"), [], ctx)
        self.assertFalse(req.chunked, ctx)
        self.assertEqual(len(req.header_all("Content-Length")), 1, ctx)
        self.assertEqual(req.content_length, req.body_size, ctx)
        self.assertTrue(req.complete, ctx)
        ctype = (req.header("Content-Type") or "").lower()
        self.assertTrue(ctype.startswith("multipart/form-data"), ctx)
        self.assertTrue(req.boundary, ctx)
        self.assertIsNone(req.multipart_error, ctx)
        self.assertTrue(req.multipart_closed, ctx)
        names = [p.name for p in req.parts]
        self.assertEqual(len(names), len(set(names)), ctx)
        for p in req.parts:
            self.assertEqual(p.disposition, "form-data", ctx)
            self.assertIsNotNone(p.name, ctx)
        msg = req.part("message")
        self.assertFalse(msg.has_filename, ctx)
        self.assertEqual((msg.header("Content-Type") or "").lower(),
                         "application/octet-stream", ctx)
        self.assertIsNone(msg.header("Content-Transfer-Encoding"), ctx)

    def assertForm(self, req: RecordedRequest, fields: dict,
                   message: bytes) -> None:
        """Exactly `fields` (name -> bytes) plus `message`, byte for byte."""
        self.assertWireShape(req)
        got = req.fields
        self.assertEqual(got.pop("message", None), message)
        self.assertEqual(got, fields)
