"""test_mailgate — behaviour of the client under test ($RT_MAILGATE) against
the recording stub (tests/relay).

Owns: reply classification and exit codes, the shape and bytes of the HTTP
request, the EXTENSION / --extension matrix, redirects, timeouts and
transport failures, TLS verification, invocation edge cases and --debug.
Every expectation here was observed with RT's Perl rt-mailgate 5.0.3,
except in tests marked only_ours: our deliberate differences (README.md).
"""

import os
import subprocess
import tempfile
import unittest

from mailgate_harness import (BINARY_MESSAGE, EX_TEMPFAIL, EXTENSION_ROWS,
                              GATEWAY_PATH, QA, QA_FIELDS, SAMPLE_MESSAGE,
                              StubTestCase, TLSCert, mailgate_env, only_ours,
                              run_mailgate, unused_port)
from rt_stub import Garbage, Hang, Huge, Reply, Reset, redirect



# --------------------------------------------------------------------------

class ReplyClassification(StubTestCase):
    """How the reply body/status maps to the exit code (one POST each)."""

    def check(self, reply, code, stderr_has=()):
        stub = self.start_stub(reply)
        run = self.deliver(stub, QA)
        self.assertExit(run, code)
        self.assertForm(self.one_request(stub), QA_FIELDS, SAMPLE_MESSAGE)
        if code:
            self.assertTrue(run.stderr.strip(), run.describe())
        for text in stderr_has:
            self.assertIn(text.lower(), run.err.lower(), run.describe())
        return run

    def test_ok(self):
        run = self.check(Reply(200, b"ok\n"), 0)
        self.assertEqual(run.stderr, b"")

    def test_ok_with_ticket_lines(self):
        self.check(Reply(200, b"ok\nTicket: 42\nQueue: General\n"), 0)

    def test_ok_without_newline(self):
        self.check(Reply(200, b"ok"), 0)

    def test_not_ok_counts_as_delivered(self):
        self.check(Reply(200, b"not ok - operation unsuccessful\n"), 0)

    def test_okay_prefix_match(self):
        self.check(Reply(200, b"okay fine\n"), 0)

    def test_not_okay_prefix_match(self):
        self.check(Reply(200, b"not okay\n"), 0)

    def test_ok_with_other_2xx_status(self):
        self.check(Reply(201, b"ok\n"), 0)

    def test_temporary_failure(self):
        self.check(Reply(200, b"temporary failure - operation unsuccessful\n"),
                   EX_TEMPFAIL, ["temporary failure"])

    def test_html_200(self):
        self.check(Reply(200, b"<html><body>ok</body></html>\n",
                         content_type="text/html"), EX_TEMPFAIL, ["RT server"])

    def test_garbage_200(self):
        self.check(Reply(200, b"\x00\xffgarbage\n"), EX_TEMPFAIL)

    def test_leading_space(self):
        self.check(Reply(200, b" ok\n"), EX_TEMPFAIL, ["RT server"])

    def test_leading_newline(self):
        self.check(Reply(200, b"\nok\n"), EX_TEMPFAIL)

    def test_ok_on_second_line_only(self):
        self.check(Reply(200, b"error\nok\n"), EX_TEMPFAIL)

    def test_uppercase_ok(self):
        self.check(Reply(200, b"OK\n"), EX_TEMPFAIL)

    def test_empty_200(self):
        self.check(Reply(200, b""), EX_TEMPFAIL)

    def test_204_no_content(self):
        self.check(Reply(204, b""), EX_TEMPFAIL)

    def test_500(self):
        self.check(Reply(500, b"oops\n"), EX_TEMPFAIL, ["500"])

    def test_404(self):
        self.check(Reply(404, b"not found\n"), EX_TEMPFAIL, ["404"])

    def test_503_with_ok_body(self):
        self.check(Reply(503, b"ok\n"), EX_TEMPFAIL, ["503"])

    def test_huge_ok_body(self):
        self.check(Huge(16 * 1024 * 1024, prefix=b"ok\n"), 0)

    def test_huge_html_body(self):
        self.check(Huge(16 * 1024 * 1024, prefix=b"<html>"), EX_TEMPFAIL)


# --------------------------------------------------------------------------

class TransportFailures(StubTestCase):
    """Network problems all end in EX_TEMPFAIL (75), within bounded time."""

    def test_connection_refused(self):
        sock = unused_port()
        self.addCleanup(sock.close)
        port = sock.getsockname()[1]
        run = self.deliver(f"http://127.0.0.1:{port}", QA, timeout=30)
        self.assertExit(run, EX_TEMPFAIL)
        self.assertTrue(run.stderr.strip(), run.describe())

    def test_unresolvable_host(self):
        run = self.deliver("http://nonexistent.invalid", QA, timeout=60)
        self.assertExit(run, EX_TEMPFAIL)
        self.assertTrue(run.stderr.strip(), run.describe())

    def test_never_answering_server_times_out(self):
        stub = self.start_stub(Hang())
        run = self.deliver(stub, [*QA, "--timeout", "2"], timeout=30)
        self.assertExit(run, EX_TEMPFAIL)
        self.assertGreaterEqual(run.elapsed, 1.5, run.describe())
        self.assertLess(run.elapsed, 6, run.describe())  # an inactivity timeout, not one averaged late
        reqs = stub.requests
        self.assertEqual(len(reqs), 1)
        self.assertTrue(reqs[0].complete, reqs[0].summary())

    def test_slow_answer_within_timeout(self):
        stub = self.start_stub(Reply(200, b"ok\n", delay=1.5))
        run = self.deliver(stub, [*QA, "--timeout", "6"], timeout=30)
        self.assertExit(run, 0)
        self.assertGreaterEqual(run.elapsed, 1.4, run.describe())
        self.assertForm(self.one_request(stub), QA_FIELDS, SAMPLE_MESSAGE)

    def test_default_timeout_allows_slow_answer(self):
        stub = self.start_stub(Reply(200, b"ok\n", delay=3))
        run = self.deliver(stub, QA, timeout=30)
        self.assertExit(run, 0)
        self.assertForm(self.one_request(stub), QA_FIELDS, SAMPLE_MESSAGE)

    def test_reset_after_body(self):
        stub = self.start_stub(Reset())
        run = self.deliver(stub, QA)
        self.assertExit(run, EX_TEMPFAIL)
        req = self.one_request(stub)
        self.assertForm(req, QA_FIELDS, SAMPLE_MESSAGE)
        self.assertEqual(req.action, "reset")

    def test_reset_mid_upload(self):
        message = SAMPLE_MESSAGE + b"x" * 100 + b"\n" * 4_000_000
        stub = self.start_stub(Reset(after_bytes=32 * 1024))
        run = self.deliver(stub, QA, stdin=message)
        self.assertExit(run, EX_TEMPFAIL)
        req = self.one_request(stub)
        self.assertFalse(req.complete)
        self.assertEqual(req.action, "reset")

    def test_close_without_response(self):
        stub = self.start_stub(Garbage(b""))
        run = self.deliver(stub, QA)
        self.assertExit(run, EX_TEMPFAIL)
        self.assertForm(self.one_request(stub), QA_FIELDS, SAMPLE_MESSAGE)

    def test_truncated_ok_counts_as_delivered(self):
        """A 2xx cut short after "ok": RT did it (rt-mailgate agrees); a
        retry would make a second ticket."""
        stub = self.start_stub(Garbage(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nok\n"))
        run = self.deliver(stub, QA)
        self.assertExit(run, 0)

    def test_truncated_other_body_is_temporary(self):
        stub = self.start_stub(Garbage(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n<html>"))
        self.assertExit(self.deliver(stub, QA), EX_TEMPFAIL)

    def test_binary_reply_is_temporary(self):
        stub = self.start_stub(Reply(200, bytes(range(256)) * 64))
        self.assertExit(self.deliver(stub, QA), EX_TEMPFAIL)

    def test_non_http_garbage_response(self):
        stub = self.start_stub(Garbage(b"\x00\xff\xfe garbage \x01\r\n\r\n"))
        run = self.deliver(stub, QA)
        self.assertExit(run, EX_TEMPFAIL)
        self.assertForm(self.one_request(stub), QA_FIELDS, SAMPLE_MESSAGE)


# --------------------------------------------------------------------------

class RequestFormat(StubTestCase):
    """Method, path, framing and the exact form fields and bytes sent."""

    def test_queue_and_action(self):
        stub = self.start_stub()
        self.assertExit(self.deliver(stub, QA), 0)
        req = self.one_request(stub)
        self.assertForm(req, QA_FIELDS, SAMPLE_MESSAGE)
        self.assertEqual(req.header("Host"), f"127.0.0.1:{stub.port}")

    def test_message_only_without_options(self):
        stub = self.start_stub()
        self.assertExit(self.deliver(stub), 0)
        self.assertForm(self.one_request(stub), {}, SAMPLE_MESSAGE)

    def test_queue_only(self):
        stub = self.start_stub()
        self.assertExit(self.deliver(stub, ["--queue", "Support"]), 0)
        self.assertForm(self.one_request(stub), {"queue": b"Support"},
                        SAMPLE_MESSAGE)

    def test_action_only(self):
        stub = self.start_stub()
        self.assertExit(self.deliver(stub, ["--action", "comment"]), 0)
        self.assertForm(self.one_request(stub), {"action": b"comment"},
                        SAMPLE_MESSAGE)

    def test_multi_action_and_numeric_queue(self):
        stub = self.start_stub()
        run = self.deliver(stub, ["--queue", "7", "--action",
                                  "take-comment-resolve"])
        self.assertExit(run, 0)
        self.assertForm(self.one_request(stub),
                        {"queue": b"7", "action": b"take-comment-resolve"},
                        SAMPLE_MESSAGE)

    def test_field_values_are_raw_bytes(self):
        stub = self.start_stub()
        run = self.deliver(stub, ["--queue", 'S\u00fcd "Q"; x=1',
                                  "--action", "correspond"])
        self.assertExit(run, 0)
        self.assertForm(self.one_request(stub),
                        {"queue": 'S\u00fcd "Q"; x=1'.encode(),
                         "action": b"correspond"}, SAMPLE_MESSAGE)

    def test_binary_message_bytes(self):
        stub = self.start_stub()
        self.assertExit(self.deliver(stub, QA, stdin=BINARY_MESSAGE), 0)
        self.assertForm(self.one_request(stub), QA_FIELDS, BINARY_MESSAGE)

    def test_binary_message_with_extension_header(self):
        stub = self.start_stub()
        run = self.deliver(stub, QA, stdin=BINARY_MESSAGE, extension="7")
        self.assertExit(run, 0)
        self.assertForm(self.one_request(stub), QA_FIELDS,
                        b"X-RT-Mail-Extension: 7\n" + BINARY_MESSAGE)

    def test_single_byte_message(self):
        stub = self.start_stub()
        self.assertExit(self.deliver(stub, QA, stdin=b"x"), 0)
        self.assertForm(self.one_request(stub), QA_FIELDS, b"x")

    def test_message_with_leading_whitespace(self):
        message = b" \n\t\nSubject: late\n\nbody"
        stub = self.start_stub()
        self.assertExit(self.deliver(stub, QA, stdin=message), 0)
        self.assertForm(self.one_request(stub), QA_FIELDS, message)

    def test_large_message(self):
        message = SAMPLE_MESSAGE + b"".join(
            b"%07d the quick brown fox \xe4\r\n" % i for i in range(150_000))
        stub = self.start_stub()
        self.assertExit(self.deliver(stub, QA, stdin=message), 0)
        self.assertForm(self.one_request(stub), QA_FIELDS, message)

    def test_url_with_trailing_slash(self):
        stub = self.start_stub()
        self.assertExit(self.deliver(stub.url + "/", QA), 0)
        req = self.one_request(stub)
        self.assertWireShape(req, path="/" + GATEWAY_PATH)

    def test_url_with_path_prefix(self):
        stub = self.start_stub()
        self.assertExit(self.deliver(stub.url + "/rt", QA), 0)
        self.assertWireShape(self.one_request(stub), path="/rt" + GATEWAY_PATH)


# --------------------------------------------------------------------------

class ExtensionMatrix(StubTestCase):
    """$EXTENSION and --extension as RT's Perl rt-mailgate handles them, row
    by row (EXTENSION_ROWS, in the harness, which says where that is)."""

    def check(self, extension, args, fields, header, stderr_has=None):
        stub = self.start_stub()
        run = self.deliver(stub, args, extension=extension)
        self.assertExit(run, 0)
        self.assertForm(self.one_request(stub), fields,
                        header + SAMPLE_MESSAGE)
        if stderr_has:
            self.assertIn(stderr_has, run.err, run.describe())


def _row_test(row):
    name, extension, args, fields, header, *rest = row

    def test(self):
        self.check(extension, args, fields, header, *rest)
    test.__name__ = f"test_{name}"
    test.__doc__ = f"EXTENSION={extension!r} {' '.join(args)}"
    return test


for _row in EXTENSION_ROWS:
    setattr(ExtensionMatrix, f"test_{_row[0]}", _row_test(_row))


# --------------------------------------------------------------------------

class Redirects(StubTestCase):
    """Up to 3 redirects are followed by re-POSTing the same form to the
    absolute Location, verbatim."""

    def follow(self, status):
        target = self.start_stub(Reply(200, b"ok\n"))
        stub = self.start_stub(redirect(target.url + "/elsewhere/gw", status))
        run = self.deliver(stub, QA)
        self.assertExit(run, 0)
        first = self.one_request(stub)
        second = self.one_request(target)
        self.assertForm(first, QA_FIELDS, SAMPLE_MESSAGE)
        self.assertWireShape(second, path="/elsewhere/gw")
        self.assertForm_same(first, second)

    def assertForm_same(self, a, b):
        self.assertEqual(a.fields, b.fields)
        self.assertEqual([(p.name, p.headers) for p in a.parts],
                         [(p.name, p.headers) for p in b.parts])

    def test_301_absolute(self):
        self.follow(301)

    def test_302_absolute(self):
        self.follow(302)

    def test_303_absolute_is_re_posted(self):
        self.follow(303)

    def test_307_absolute(self):
        self.follow(307)

    def test_308_absolute(self):
        self.follow(308)

    def test_relative_location_fails(self):
        stub = self.start_stub(redirect(GATEWAY_PATH, 302))
        run = self.deliver(stub, QA)
        self.assertExit(run, EX_TEMPFAIL)
        self.assertForm(self.one_request(stub), QA_FIELDS, SAMPLE_MESSAGE)

    def test_redirect_without_location_fails(self):
        stub = self.start_stub(Reply(302, b""))
        self.assertExit(self.deliver(stub, QA), EX_TEMPFAIL)
        self.assertForm(self.one_request(stub), QA_FIELDS, SAMPLE_MESSAGE)

    def test_three_redirects_then_ok(self):
        stub = self.start_stub()
        here = stub.url + GATEWAY_PATH
        stub.push(redirect(here), redirect(here, 301), redirect(here),
                  Reply(200, b"ok\n"))
        self.assertExit(self.deliver(stub, QA), 0)
        reqs = self.settled(stub)
        self.assertEqual(len(reqs), 4)
        for req in reqs:
            self.assertForm(req, QA_FIELDS, SAMPLE_MESSAGE)

    def test_loop_stops_after_four_posts(self):
        stub = self.start_stub()
        stub.default = redirect(stub.url + GATEWAY_PATH)
        run = self.deliver(stub, QA)
        self.assertExit(run, EX_TEMPFAIL)
        self.assertTrue(run.stderr.strip(), run.describe())
        reqs = self.settled(stub)
        self.assertEqual(len(reqs), 4)
        for req in reqs:
            self.assertForm(req, QA_FIELDS, SAMPLE_MESSAGE)

    def test_redirect_then_temporary_failure(self):
        stub = self.start_stub()
        stub.push(redirect(stub.url + GATEWAY_PATH),
                  Reply(200, b"temporary failure - x\n"))
        self.assertExit(self.deliver(stub, QA), EX_TEMPFAIL)
        self.assertEqual(len(self.settled(stub)), 2)


# --------------------------------------------------------------------------

@only_ours("follows any absolute redirect, to any host and scheme")
class RedirectPolicy(StubTestCase):
    """Issue 9, finding 8: never from https to http, never to another host
    than --url's unless --allow-redirect-host names it (any port, any
    case). A refused redirect is a temporary failure saying why, and the
    new location gets nothing: not even a connection."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cert = TLSCert()

    @classmethod
    def tearDownClass(cls):
        cls.cert.cleanup()
        super().tearDownClass()

    def ca(self):
        return ["--ca-file", self.cert.files.cert]

    def refused(self, first, target, run, *why):
        self.assertExit(run, EX_TEMPFAIL)
        self.assertIn("redirect refused", run.err, run.describe())
        for text in why:
            self.assertIn(text, run.err, run.describe())
        self.assertForm(self.one_request(first), QA_FIELDS, SAMPLE_MESSAGE)
        self.assertNoRequest(target)
        self.assertEqual(target.connections, 0)

    def followed(self, first, target, run):
        self.assertExit(run, 0)
        self.assertForm(self.one_request(first), QA_FIELDS, SAMPLE_MESSAGE)
        second = self.one_request(target)
        self.assertWireShape(second, path="/next" + GATEWAY_PATH)
        self.assertEqual(second.fields, self.one_request(first).fields)

    def test_https_to_http_on_another_host_refused(self):
        target = self.start_stub(host="127.0.0.2")
        first = self.start_stub(redirect(target.url + "/next" + GATEWAY_PATH),
                                tls=self.cert.files)
        run = self.deliver(first, [*QA, *self.ca()])
        self.refused(first, target, run, "from https to http",
                     "another host than localhost")

    def test_https_to_http_on_the_same_host_refused(self):
        target = self.start_stub()
        first = self.start_stub(
            redirect(target.base_url("localhost") + "/next" + GATEWAY_PATH),
            tls=self.cert.files)
        run = self.deliver(first, [*QA, *self.ca()])
        self.refused(first, target, run, "from https to http")
        self.assertNotIn("another host", run.err, run.describe())

    def test_https_to_http_refused_even_to_an_allowed_host(self):
        target = self.start_stub(host="127.0.0.2")
        first = self.start_stub(redirect(target.url + "/next" + GATEWAY_PATH),
                                tls=self.cert.files)
        run = self.deliver(first, [*QA, *self.ca(),
                                   "--allow-redirect-host", "127.0.0.2"])
        self.refused(first, target, run, "from https to http")

    def test_http_to_https_on_the_same_host_followed(self):
        target = self.start_stub(tls=self.cert.files)
        first = self.start_stub(redirect(target.url + "/next" + GATEWAY_PATH))
        run = self.deliver(first.base_url("localhost"), [*QA, *self.ca()])
        self.followed(first, target, run)

    def test_another_host_refused(self):
        target = self.start_stub(host="127.0.0.2")
        first = self.start_stub(redirect(target.url + "/next" + GATEWAY_PATH))
        run = self.deliver(first, QA)
        self.refused(first, target, run, "another host than 127.0.0.1")

    def test_another_host_allowed_with_the_option_followed(self):
        target = self.start_stub(host="127.0.0.2")
        first = self.start_stub(redirect(target.url + "/next" + GATEWAY_PATH))
        run = self.deliver(first, [*QA, "--allow-redirect-host", "rt.invalid",
                                   "--allow-redirect-host", "127.0.0.2"])
        self.followed(first, target, run)

    def test_allowed_host_in_another_case_followed(self):
        target = self.start_stub()
        first = self.start_stub(
            redirect(target.base_url("localhost") + "/next" + GATEWAY_PATH))
        run = self.deliver(first, [*QA, "--allow-redirect-host", "LocalHost"])
        self.followed(first, target, run)


# --------------------------------------------------------------------------

class TLS(StubTestCase):
    """Certificate verification against a self-signed localhost server."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cert = TLSCert()
        cls.other = TLSCert()           # an unrelated self-signed cert

    @classmethod
    def tearDownClass(cls):
        cls.cert.cleanup()
        cls.other.cleanup()
        super().tearDownClass()

    def tls_stub(self):
        return self.start_stub(tls=self.cert.files)

    def rejected(self, stub, run):
        self.assertExit(run, EX_TEMPFAIL)
        self.assertTrue(run.stderr.strip(), run.describe())
        self.assertNoRequest(stub)
        self.assertGreaterEqual(stub.connections, 1, "never connected")

    def accepted(self, stub, run):
        self.assertExit(run, 0)
        self.assertForm(self.one_request(stub), QA_FIELDS, SAMPLE_MESSAGE)

    def test_default_verification_rejects_self_signed(self):
        stub = self.tls_stub()
        self.rejected(stub, self.deliver(stub, QA))

    def test_explicit_verify_ssl_rejects_self_signed(self):
        stub = self.tls_stub()
        self.rejected(stub, self.deliver(stub, [*QA, "--verify-ssl"]))

    def test_ca_file(self):
        stub = self.tls_stub()
        self.accepted(stub, self.deliver(
            stub, [*QA, "--ca-file", self.cert.files.cert]))

    def test_ca_file_of_another_ca(self):
        stub = self.tls_stub()
        self.rejected(stub, self.deliver(
            stub, [*QA, "--ca-file", self.other.files.cert]))

    def test_no_verify_ssl(self):
        stub = self.tls_stub()
        self.accepted(stub, self.deliver(stub, [*QA, "--no-verify-ssl"]))

    def test_ca_file_hostname_mismatch(self):
        stub = self.tls_stub()
        self.rejected(stub, self.deliver(
            stub.base_url("127.0.0.1"),
            [*QA, "--ca-file", self.cert.files.cert]))

    def test_no_verify_ssl_ignores_hostname(self):
        stub = self.tls_stub()
        self.accepted(stub, self.deliver(stub.base_url("127.0.0.1"),
                                         [*QA, "--no-verify-ssl"]))


# --------------------------------------------------------------------------

class Invocation(StubTestCase):
    """stdin, required and unknown options, --help, environment."""

    def no_delivery(self, stdin):
        stub = self.start_stub()
        run = self.deliver(stub, QA, stdin=stdin)
        self.assertExit(run, 0)
        self.assertNoRequest(stub)
        self.assertEqual(stub.connections, 0)

    def test_empty_stdin(self):
        self.no_delivery(b"")

    def test_whitespace_only_stdin(self):
        self.no_delivery(b"  \n\n\t\r\n\x0b\x0c \r\n")

    def test_nul_only_stdin_is_a_message(self):
        stub = self.start_stub()
        self.assertExit(self.deliver(stub, QA, stdin=b"\x00"), 0)
        self.assertForm(self.one_request(stub), QA_FIELDS, b"\x00")

    def test_missing_url(self):
        run = self.run_plain(QA)
        self.assertExit(run, 1)
        self.assertIn("url", run.err.lower(), run.describe())

    def test_empty_url(self):
        run = self.run_plain(["--url", "", *QA])
        self.assertExit(run, 1)

    def test_help(self):
        stub = self.start_stub()
        run = self.deliver(stub, [*QA, "--help"])
        self.assertExit(run, 1)
        self.assertIn("--url", run.out, run.describe())
        self.assertIn("--queue", run.out, run.describe())
        self.assertNoRequest(stub)
        self.assertEqual(stub.connections, 0)

    def test_unknown_option_warns_and_delivers(self):
        stub = self.start_stub()
        run = self.deliver(stub, [*QA, "--bogus"])
        self.assertExit(run, 0)
        self.assertIn("bogus", run.err, run.describe())
        self.assertForm(self.one_request(stub), QA_FIELDS, SAMPLE_MESSAGE)

    def test_invalid_timeout_warns_and_delivers(self):
        stub = self.start_stub()
        run = self.deliver(stub, [*QA, "--timeout", "abc"])
        self.assertExit(run, 0)
        self.assertIn("timeout", run.err, run.describe())
        self.assertForm(self.one_request(stub), QA_FIELDS, SAMPLE_MESSAGE)

    def test_stray_argument_ignored(self):
        stub = self.start_stub()
        run = self.deliver(stub, [*QA, "stray"])
        self.assertExit(run, 0)
        self.assertForm(self.one_request(stub), QA_FIELDS, SAMPLE_MESSAGE)

    def test_jar_accepted(self):
        stub = self.start_stub()
        with tempfile.TemporaryDirectory() as d:
            run = self.deliver(stub, [*QA, "--jar", os.path.join(d, "jar")])
        self.assertExit(run, 0)
        req = self.one_request(stub)
        self.assertForm(req, QA_FIELDS, SAMPLE_MESSAGE)
        self.assertIsNone(req.header("Cookie"))

    def test_proxy_environment_ignored(self):
        dead = unused_port()
        self.addCleanup(dead.close)
        proxy = f"http://127.0.0.1:{dead.getsockname()[1]}"
        stub = self.start_stub()
        run = self.deliver(stub, QA, env={
            "http_proxy": proxy, "HTTP_PROXY": proxy, "https_proxy": proxy,
            "all_proxy": proxy, "ALL_PROXY": proxy})
        self.assertExit(run, 0)
        self.assertForm(self.one_request(stub), QA_FIELDS, SAMPLE_MESSAGE)

    def run_plain(self, args):
        return run_mailgate(args, binary=self.binary)


class OptionSyntax(StubTestCase):
    """Getopt::Long spellings the Perl client accepts."""

    def check(self, args, fields):
        stub = self.start_stub()
        run = run_mailgate([a.replace("URL", stub.url) for a in args],
                           binary=self.binary)
        self.assertExit(run, 0)
        self.assertForm(self.one_request(stub), fields, SAMPLE_MESSAGE)

    def test_equals_form(self):
        self.check(["--url=URL", "--queue=General", "--action=correspond"],
                   QA_FIELDS)

    def test_single_dash_long_options(self):
        self.check(["-url", "URL", "-queue", "General", "-action",
                    "correspond"], QA_FIELDS)

    def test_unique_abbreviations(self):
        self.check(["--ur", "URL", "--qu", "General", "--act", "correspond"],
                   QA_FIELDS)

    def test_options_before_url(self):
        self.check(["--queue", "General", "--action", "correspond",
                    "--url", "URL"], QA_FIELDS)

    def test_repeated_option_last_wins(self):
        self.check(["--url", "URL", "--queue", "First", "--queue", "General",
                    "--action", "correspond"], QA_FIELDS)


# --------------------------------------------------------------------------

class Debug(StubTestCase):
    """--debug reports the URL and the server's answer on stderr."""

    def test_debug_prints_url_and_reply(self):
        stub = self.start_stub(Reply(200, b"ok\nTicket: 4242\n"))
        run = self.deliver(stub, [*QA, "--debug"])
        self.assertExit(run, 0)
        self.assertIn(stub.url + GATEWAY_PATH, run.err, run.describe())
        self.assertIn("Ticket: 4242", run.err, run.describe())
        self.assertForm(self.one_request(stub), QA_FIELDS, SAMPLE_MESSAGE)

    def test_debug_on_failure(self):
        stub = self.start_stub(Reply(200, b"temporary failure - dbg\n"))
        run = self.deliver(stub, [*QA, "--debug"])
        self.assertExit(run, EX_TEMPFAIL)
        self.assertIn(stub.url + GATEWAY_PATH, run.err, run.describe())
        self.assertIn("temporary failure - dbg", run.err, run.describe())

    @only_ours("prints the password")
    def test_debug_masks_the_url_password(self):
        """Issue 9, finding 9: URL passwords are masked in every output."""
        stub = self.start_stub(Reply(200, b"ok\n"))
        url = stub.url.replace("://", "://rt:s3cret@")
        run = self.deliver(url, [*QA, "--debug"])
        self.assertExit(run, 0)
        self.assertIn(url.replace("s3cret", "***") + GATEWAY_PATH, run.err,
                      run.describe())
        self.assertNotIn("s3cret", run.err, run.describe())

    def test_no_debug_output_without_flag(self):
        stub = self.start_stub(Reply(200, b"ok\nTicket: 4242\n"))
        run = self.deliver(stub, QA)
        self.assertExit(run, 0)
        self.assertNotIn("4242", run.err, run.describe())


# --------------------------------------------------------------------------

@only_ours("dies of SIGPIPE here (exit -13)")
class ClosedOutput(StubTestCase):
    """Issue 9, finding 11: a reader of stdout/stderr that goes away (a
    closed pipe) must not kill the delivery; writes to it just fail."""

    def run_with_closed_output(self, stub) -> int:
        p = subprocess.Popen([self.binary, "--url", stub.url, *QA, "--debug"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=mailgate_env())
        p.stdout.close()              # gone before rt-mailgate writes a byte
        p.stderr.close()
        p.stdin.write(SAMPLE_MESSAGE)
        p.stdin.close()
        return p.wait(30)             # -13: killed by SIGPIPE

    def test_debug_into_closed_pipes_still_delivers(self):
        stub = self.start_stub(Reply(200, b"ok\n"))
        self.assertEqual(self.run_with_closed_output(stub), 0)
        self.assertForm(self.one_request(stub), QA_FIELDS, SAMPLE_MESSAGE)

    def test_temporary_failure_keeps_its_exit_code(self):
        stub = self.start_stub(Reply(200, b"temporary failure - x\n"))
        self.assertEqual(self.run_with_closed_output(stub), EX_TEMPFAIL)
        self.one_request(stub)


if __name__ == "__main__":
    unittest.main()
