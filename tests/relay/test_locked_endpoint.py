"""test_locked_endpoint — rt-mailgate's options for issue 11 (ours, not the
original's), against rt_stub over TLS with a test CA:

* --strip-rt-headers: RT's own header fields left out, every other byte
  posted as read; without it the message goes as it is (the original's way).
* --client-cert / --client-key: the certificate is presented (the stub
  records its CN); without them none is.
* --header-file NAME=PATH: the header is sent with the file's value (one
  trailing newline removed); the value never shows on stderr, --debug
  included; a file others can read, a bad value or name, http:// are
  refused with exit 75, naming the option and the path, and nothing is
  posted.
* Redirects: the credentials follow a redirect to the same origin only; to
  another host (allowed with --allow-redirect-host) or another port, the
  request goes without header and certificate.
"""

import os
import tempfile
import unittest

from mailgate_harness import (EX_TEMPFAIL, GATEWAY_PATH, QA, QA_FIELDS, SAMPLE_MESSAGE,
                              StubTestCase, only_ours)
from rt_stub import TestCA, redirect

SECRET = "0f1e2d3c-gateway-secret-never-shown"
HEADER = "X-RT-Gateway-Secret"

RT_FIELDS_MESSAGE = (
    b"From: alice@example.com\n"
    b"RT-Send-Cc: someone@example.net,\n"
    b"\tother@example.net\n"
    b"To: rt@example.com\n"
    b"x-rt-mail-extension: spoofed\n"
    b"Subject:  spacing  kept \n"
    b"RT-Attach: 1\n"
    b"\n"
    b"RT-Send-Cc: a body line stays\n")
RT_FIELDS_STRIPPED = (
    b"From: alice@example.com\n"
    b"To: rt@example.com\n"
    b"Subject:  spacing  kept \n"
    b"\n"
    b"RT-Send-Cc: a body line stays\n")


@only_ours("has no --strip-rt-headers")
class StripRtHeaders(StubTestCase):
    def test_without_the_option_the_message_goes_as_it_is(self):
        stub = self.start_stub()
        run = self.deliver(stub, QA, stdin=RT_FIELDS_MESSAGE)
        self.assertExit(run, 0)
        self.assertForm(self.one_request(stub), QA_FIELDS, RT_FIELDS_MESSAGE)

    def test_rt_fields_left_out_the_rest_byte_exact(self):
        stub = self.start_stub()
        run = self.deliver(stub, [*QA, "--strip-rt-headers", "--debug"], stdin=RT_FIELDS_MESSAGE)
        self.assertExit(run, 0)
        self.assertForm(self.one_request(stub), QA_FIELDS, RT_FIELDS_STRIPPED)
        self.assertIn("left out RT's own header fields: RT-Send-Cc, X-RT-Mail-Extension, RT-Attach",
                      run.err)

    def test_our_extension_header_is_the_only_one(self):
        stub = self.start_stub()
        run = self.deliver(stub, [*QA, "--strip-rt-headers"], stdin=RT_FIELDS_MESSAGE,
                           extension="support")
        self.assertExit(run, 0)
        self.assertForm(self.one_request(stub), QA_FIELDS,
                        b"X-RT-Mail-Extension: support\n" + RT_FIELDS_STRIPPED)

    def test_crlf_message(self):
        stub = self.start_stub()
        message = RT_FIELDS_MESSAGE.replace(b"\n", b"\r\n")
        run = self.deliver(stub, [*QA, "--strip-rt-headers"], stdin=message)
        self.assertExit(run, 0)
        self.assertForm(self.one_request(stub), QA_FIELDS, RT_FIELDS_STRIPPED.replace(b"\n", b"\r\n"))


class CredentialCase(StubTestCase):
    """A test CA; a server certificate for localhost, 127.0.0.1 and
    127.0.0.2; a client certificate (CN rt-mailgate-test); a secret file."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._dir = tempfile.TemporaryDirectory(prefix="relay_locked_")
        cls.ca = TestCA(cls._dir.name)
        cls.server = cls.ca.issue("server", "localhost", "DNS:localhost,IP:127.0.0.1,IP:127.0.0.2")
        cls.client = cls.ca.issue("client", "rt-mailgate-test", client=True)

    @classmethod
    def tearDownClass(cls):
        cls._dir.cleanup()
        super().tearDownClass()

    def secret_file(self, content=SECRET + "\n", mode=0o600, name="gateway.secret"):
        path = os.path.join(self._dir.name, f"{self._testMethodName}-{name}")
        with open(path, "w") as fh:
            fh.write(content)
        os.chmod(path, mode)
        return path

    def tls_stub(self, *script, host="127.0.0.1"):
        return self.start_stub(*script, tls=self.server, client_ca=self.ca.cert, host=host)

    def cert_args(self):
        return ["--client-cert", self.client.cert, "--client-key", self.client.key]

    def header_args(self, path=None):
        return ["--header-file", f"{HEADER}={path or self.secret_file()}"]

    def ca_args(self):
        return ["--ca-file", self.ca.cert]

    def assertNoSecret(self, run):
        self.assertNotIn(SECRET, run.err + run.out, "the secret was shown")

    def refused(self, stub, run, *texts):
        self.assertExit(run, EX_TEMPFAIL)
        for text in texts:
            self.assertIn(text, run.err, run.describe())
        self.assertNoSecret(run)
        self.assertNoRequest(stub)
        self.assertEqual(stub.connections, 0)


@only_ours("has no --client-cert, --client-key, --header-file")
class ClientCertificate(CredentialCase):
    def test_presented_when_given(self):
        stub = self.tls_stub()
        run = self.deliver(stub, [*QA, *self.ca_args(), *self.cert_args()])
        self.assertExit(run, 0)
        req = self.one_request(stub)
        self.assertForm(req, QA_FIELDS, SAMPLE_MESSAGE)
        self.assertEqual(req.client_cert_cn, "rt-mailgate-test")

    def test_none_without_the_options(self):
        stub = self.tls_stub()
        run = self.deliver(stub, [*QA, *self.ca_args()])
        self.assertExit(run, 0)
        self.assertIsNone(self.one_request(stub).client_cert_cn)

    def test_key_others_can_read_is_refused(self):
        stub = self.tls_stub()
        with open(self.client.key) as fh:
            key = self.secret_file(fh.read(), mode=0o640, name="client.key")
        run = self.deliver(stub, [*QA, *self.ca_args(), "--client-cert", self.client.cert,
                                  "--client-key", key])
        self.refused(stub, run, f"--client-key: {key} has mode 0640: others than its owner")

    def test_certificate_without_key_is_refused(self):
        stub = self.tls_stub()
        run = self.deliver(stub, [*QA, *self.ca_args(), "--client-cert", self.client.cert])
        self.refused(stub, run, "--client-cert and --client-key go together")

    def test_over_http_is_refused(self):
        stub = self.start_stub()
        run = self.deliver(stub, [*QA, *self.cert_args()])
        self.refused(stub, run, "--client-cert needs an https:// --url")


@only_ours("has no --header-file")
class HeaderFile(CredentialCase):
    def test_sent_with_the_files_value_and_never_shown(self):
        stub = self.tls_stub()
        run = self.deliver(stub, [*QA, *self.ca_args(), *self.header_args(), "--debug"])
        self.assertExit(run, 0)
        req = self.one_request(stub)
        self.assertForm(req, QA_FIELDS, SAMPLE_MESSAGE)
        self.assertEqual(req.header_all(HEADER), [SECRET])
        self.assertNoSecret(run)

    def test_two_headers(self):
        stub = self.tls_stub()
        other = self.secret_file("v2", name="other")
        run = self.deliver(stub, [*QA, *self.ca_args(), *self.header_args(),
                                  "--header-file", f"X-Other={other}"])
        self.assertExit(run, 0)
        req = self.one_request(stub)
        self.assertEqual((req.header(HEADER), req.header("X-Other")), (SECRET, "v2"))

    def test_file_others_can_read_is_refused(self):
        stub = self.tls_stub()
        path = self.secret_file(mode=0o644)
        run = self.deliver(stub, [*QA, *self.ca_args(), *self.header_args(path)])
        self.refused(stub, run, f"--header-file {HEADER}: {path} has mode 0644: others than its owner "
                                "may read or write it; chmod 600 it (or 400)")

    def test_file_of_another_owner_is_refused(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to give a file away")
        stub = self.tls_stub()
        path = self.secret_file()
        os.chown(path, 65534, 65534)
        run = self.deliver(stub, [*QA, *self.ca_args(), *self.header_args(path)])
        self.refused(stub, run, f"--header-file {HEADER}: {path} is owned by ", ", not by root")

    def test_value_with_cr_or_two_lines_is_refused(self):
        for content, what in ((SECRET + "\r\n", "contains a carriage return (CR)"),
                              (SECRET + "\nmore\n", "contains a line feed (LF)"),
                              (SECRET + "\0", "contains a NUL byte"),
                              ("\n", "is empty")):
            with self.subTest(content=content):
                stub = self.tls_stub()
                path = self.secret_file(content)
                run = self.deliver(stub, [*QA, *self.ca_args(), *self.header_args(path)])
                self.refused(stub, run, f"--header-file {HEADER}: {path} {what}")

    def test_bad_names_are_refused(self):
        path = self.secret_file()
        for spec, what in ((f"X Secret={path}", "a header name is letters, digits"),
                           (f"Host={path}", "Host is set by the HTTP client itself"),
                           (path, "give NAME=PATH")):
            with self.subTest(spec=spec):
                stub = self.tls_stub()
                run = self.deliver(stub, [*QA, *self.ca_args(), "--header-file", spec])
                self.refused(stub, run, what)

    def test_over_http_is_refused(self):
        stub = self.start_stub()
        run = self.deliver(stub, [*QA, *self.header_args()])
        self.refused(stub, run, "--header-file needs an https:// --url")


@only_ours("has neither credentials nor a redirect policy")
class CredentialsAndRedirects(CredentialCase):
    """The certificate and the headers go to --url's own scheme, host and
    port only."""

    def args(self):
        return [*QA, *self.ca_args(), *self.cert_args(), *self.header_args()]

    def with_credentials(self, req):
        self.assertEqual((req.client_cert_cn, req.header(HEADER)), ("rt-mailgate-test", SECRET))

    def without_credentials(self, req):
        self.assertEqual((req.client_cert_cn, req.header(HEADER)), (None, None))

    def test_same_origin_redirect_keeps_them(self):
        stub = self.tls_stub()
        stub.push(redirect(stub.url + "/next" + GATEWAY_PATH))
        run = self.deliver(stub, self.args())
        self.assertExit(run, 0)
        first, second = self.settled(stub)
        self.assertEqual(second.path, "/next" + GATEWAY_PATH)
        self.with_credentials(first)
        self.with_credentials(second)

    def test_another_host_gets_neither(self):
        target = self.tls_stub(host="127.0.0.2")
        first = self.tls_stub(redirect(target.base_url("127.0.0.2") + "/next" + GATEWAY_PATH))
        run = self.deliver(first, [*self.args(), "--allow-redirect-host", "127.0.0.2", "--debug"])
        self.assertExit(run, 0)
        self.with_credentials(self.one_request(first))
        second = self.one_request(target)
        self.assertWireShape(second, path="/next" + GATEWAY_PATH)
        self.assertEqual(second.part("message").content, SAMPLE_MESSAGE)
        self.without_credentials(second)
        self.assertIn("not sending the client certificate and extra headers to 127.0.0.2:", run.err)
        self.assertNoSecret(run)

    def test_another_port_of_the_same_host_gets_neither(self):
        target = self.tls_stub()
        first = self.tls_stub(redirect(target.url + "/next" + GATEWAY_PATH))
        run = self.deliver(first, self.args())
        self.assertExit(run, 0)
        self.with_credentials(self.one_request(first))
        self.without_credentials(self.one_request(target))


if __name__ == "__main__":
    unittest.main()
