"""test_compat — $RT_MAILGATE against the original Perl rt-mailgate
(tests/relay).

Owns: the side-by-side table.  Each case runs RT's Perl /usr/bin/rt-mailgate
and $RT_MAILGATE with the same stdin bytes, arguments and environment, each
against a fresh recording stub with the same script, and asserts the same
exit code, the same number of requests, and per request the same method and
path, the same form field names and values, the same message bytes and the
same part headers (the boundary is the only allowed difference).  When
RT_MAILGATE is the Perl script itself this passes trivially.
"""

import unittest
from dataclasses import dataclass, field
from typing import Callable, Optional

from mailgate_harness import (BINARY_MESSAGE, EXTENSION_ROWS, GATEWAY_PATH,
                              MAILGATE, PERL_MAILGATE, QA, SAMPLE_MESSAGE,
                              UNSET, StubTestCase, run_mailgate)
from rt_stub import Garbage, Hang, Huge, Reply, Reset, redirect


@dataclass
class Case:
    name: str
    args: list = field(default_factory=lambda: list(QA))
    stdin: bytes = SAMPLE_MESSAGE
    extension: object = UNSET
    # script(stub) -> actions; default(stub) -> action once they are used up
    script: Callable = lambda stub: [Reply(200, b"ok\n")]
    default: Optional[Callable] = None
    with_url: bool = True
    url_suffix: str = ""
    # A deliberate difference: (Perl's exit code, ours), with the reason
    # beside the case.  Everything else is still compared.
    deviation: Optional[tuple] = None
    # ... and (Perl's number of requests, ours) when that differs too; the
    # requests both made are still compared.
    deviation_requests: Optional[tuple] = None


def _reply(status, body):
    return lambda stub: [Reply(status, body)]


def _redirect_once(status):
    return lambda stub: [redirect(stub.url + "/next" + GATEWAY_PATH, status)]


def _loop(stub):
    return redirect(stub.url + GATEWAY_PATH)


CASES = [
    # reply matrix
    Case("reply_ok", script=_reply(200, b"ok\n")),
    Case("reply_ok_ticket", script=_reply(200, b"ok\nTicket: 42\n")),
    Case("reply_not_ok", script=_reply(200, b"not ok - x\n")),
    Case("reply_temporary_failure",
         script=_reply(200, b"temporary failure - x\n")),
    Case("reply_html", script=_reply(200, b"<html>ok</html>\n")),
    Case("reply_leading_space", script=_reply(200, b" ok\n")),
    Case("reply_okay_prefix", script=_reply(200, b"okay fine\n")),
    Case("reply_empty_200", script=_reply(200, b"")),
    Case("reply_204", script=_reply(204, b"")),
    Case("reply_201_ok", script=_reply(201, b"ok\n")),
    Case("reply_500", script=_reply(500, b"oops\n")),
    Case("reply_404", script=_reply(404, b"ok\n")),
    Case("reply_huge_ok", script=lambda s: [Huge(8 * 1024 * 1024)]),
    Case("reply_reset", script=lambda s: [Reset()]),
    Case("reply_closed_silently", script=lambda s: [Garbage(b"")]),
    Case("reply_non_http_garbage",
         script=lambda s: [Garbage(b"\x00\xff garbage\r\n\r\n")]),
    # Perl's LWP takes a reply without a status line as HTTP/0.9 "200
    # Assumed OK" and exits 0 on "ok".  Ours does not: a service that is not
    # HTTP at all must never count as delivered (the mail would be lost), so
    # it is a temporary failure.
    Case("reply_http09_ok", script=lambda s: [Garbage(b"ok\n")],
         deviation=(0, 75)),
    Case("reply_timeout", args=[*QA, "--timeout", "1"],
         script=lambda s: [Hang()]),
    # redirects
    *[Case(f"redirect_{st}", script=_redirect_once(st))
      for st in (301, 302, 303, 307, 308)],
    Case("redirect_relative",
         script=lambda s: [redirect("/next" + GATEWAY_PATH)]),
    Case("redirect_three_then_ok",
         script=lambda s: [_loop(s), _loop(s), _loop(s), Reply()]),
    Case("redirect_loop", script=lambda s: [], default=_loop),
    # Perl re-posts the message to any host a redirect names; ours only to
    # --url's own host or one allowed with --allow-redirect-host (issue 9,
    # finding 8), so a refused redirect is a temporary failure and the
    # second POST never happens.  "localhost" is the same stub by another
    # name.
    Case("redirect_other_host",
         script=lambda s: [redirect(s.base_url("localhost") + "/next" + GATEWAY_PATH)],
         deviation=(0, 75), deviation_requests=(2, 1)),
    # message bytes
    Case("binary_message", stdin=BINARY_MESSAGE),
    Case("binary_message_extension", stdin=BINARY_MESSAGE, extension="9"),
    Case("single_byte", stdin=b"x"),
    Case("nul_only", stdin=b"\x00"),
    Case("nbsp_only", stdin=b"\xa0\n"),
    Case("empty_stdin", stdin=b""),
    Case("whitespace_stdin", stdin=b" \t\r\n\x0b\x0c\n"),
    Case("large_message", stdin=SAMPLE_MESSAGE + b"".join(
        b"%06d lorem ipsum \xc3\xa4\r\n" % i for i in range(60_000))),
    # invocation
    Case("no_options", args=[]),
    Case("raw_field_bytes", args=["--queue", "S\u00fcd \"Q\"", "--action",
                                  "take-comment"]),
    Case("unknown_option", args=[*QA, "--bogus"]),
    Case("invalid_timeout", args=[*QA, "--timeout", "abc"]),
    Case("help", args=[*QA, "--help"]),
    Case("no_url", with_url=False),
    Case("trailing_slash", url_suffix="/"),
    Case("equals_form", args=["--queue=General", "--action=comment"]),
]

# the extension matrix, row by row
CASES += [Case(f"extension_{row[0]}", args=list(row[2]), extension=row[1])
          for row in EXTENSION_ROWS]


class AgainstPerl(StubTestCase):
    """One test per case in CASES."""

    def play(self, case: Case, binary: str):
        """Run `binary` for `case` against a fresh stub."""
        stub = self.start_stub()
        stub.push(*case.script(stub))
        if case.default:
            stub.default = case.default(stub)
        args = list(case.args)
        if case.with_url:
            args = ["--url", stub.url + case.url_suffix, *args]
        run = run_mailgate(args, stdin=case.stdin, extension=case.extension,
                           binary=binary, timeout=60)
        self.assertTrue(stub.quiesce(10), f"{binary}: stub still busy")
        return run, stub.requests

    def compare(self, case: Case):
        perl_run, perl_reqs = self.play(case, PERL_MAILGATE)
        our_run, our_reqs = self.play(case, MAILGATE)
        ctx = (f"\nperl: {perl_run.describe()}\nours: {our_run.describe()}")
        if case.deviation:
            self.assertEqual(perl_run.rc, case.deviation[0], "Perl's exit code" + ctx)
            if MAILGATE != PERL_MAILGATE:
                self.assertEqual(our_run.rc, case.deviation[1], "our exit code" + ctx)
        else:
            self.assertEqual(our_run.rc, perl_run.rc, "exit code" + ctx)
        if case.deviation_requests:
            self.assertEqual(len(perl_reqs), case.deviation_requests[0], "Perl's requests" + ctx)
            if MAILGATE != PERL_MAILGATE:
                self.assertEqual(len(our_reqs), case.deviation_requests[1], "our requests" + ctx)
        else:
            self.assertEqual(len(our_reqs), len(perl_reqs),
                             "number of requests" + ctx)
        for i, (ours, perl) in enumerate(zip(our_reqs, perl_reqs)):
            where = f"request {i}" + ctx
            self.assertEqual(self.shape(ours), self.shape(perl), where)
            self.assertEqual(self.parts(ours), self.parts(perl), where)

    @staticmethod
    def shape(req):
        ctype = (req.header("Content-Type") or "").split(";")[0]
        return {"method": req.method, "target": req.target,
                "content-type": ctype.strip().lower(),
                "complete": req.complete,
                "multipart_error": req.multipart_error}

    @staticmethod
    def parts(req):
        """{name: (sorted part headers, has filename, content)}."""
        return {p.name: (sorted((k.lower(), v) for k, v in p.headers),
                         p.has_filename, p.content) for p in req.parts}


def _case_test(case):
    def test(self):
        self.compare(case)
    test.__name__ = f"test_{case.name}"
    return test


for _case in CASES:
    setattr(AgainstPerl, f"test_{_case.name}", _case_test(_case))


if __name__ == "__main__":
    unittest.main()
