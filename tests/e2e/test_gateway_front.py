"""test_gateway_front — a locked mail gateway, end to end (issue 11, part
3): the shipped recipes packaging/nginx/rt-gateway.conf and
packaging/apache/rt-gateway.conf run by a private nginx / Apache on
loopback (fronts.py: paths and ports replaced, a test CA and certificates
made on the fly) in front of the suite's real RT.

nginx, once with the client certificate alone (no secret) and once with
the secret header alone (the certificate lines deleted, as the README
says): through Postfix and rt-milter, a route to the front without the
credential gets 403 at nginx, and the sender 451 with the reason in
rt-milter's log; with it the ticket is in RT. rt-mailgate, without and
with its options, against the same nginx: 75 and 0.
Apache: apache2 -t (what apache2ctl configtest runs) on the recipe, then
real requests through it by rt-mailgate (none: 403; certificate, secret:
the ticket; a wrong secret: 403).
"""

import os
import re
import subprocess
import unittest

from e2e_harness import E2E_DIR, RT_MAILGATE, ROUTES, RT_DOMAIN, E2ECase
from fronts import GATEWAY_SPELLINGS, HEADER, SECRET, ApacheFront, Credentials, NginxFront, post_status

EX_TEMPFAIL = 75


class FrontCase(E2ECase):
    TIMEOUT = 180

    def setUp(self):
        super().setUp()
        self.folder = os.path.join(E2E_DIR, "fr-" + self._testMethodName[5:12])
        subprocess.run(["rm", "-rf", "--one-file-system", self.folder], check=True, timeout=30)
        os.makedirs(self.folder)
        os.chmod(self.folder, 0o755)
        self.creds = Credentials(os.path.join(self.folder, "creds"))

    def front(self, kind, **kw):
        front = kind(os.path.join(self.folder, kind.NAME), self.url, self.creds, **kw)
        front.start()
        self.addCleanup(front.stop)
        return front

    def message(self, token):
        return (f"From: alice@example.com\nTo: rt@rt.test\nSubject: {token} through the front\n"
                f"Message-ID: <{token}@e2e.test>\n\nbody {token}\n").encode()

    def mailgate(self, front, token, *args):
        r = subprocess.run([RT_MAILGATE, "--url", front.url, "--queue", "General", "--ca-file",
                            self.creds.ca.cert, *args], input=self.message(token), capture_output=True,
                           timeout=120)
        r.err = r.stderr.decode(errors="replace")
        self.assertNotIn(SECRET, r.err)
        return r

    def assertEverySpellingLocked(self, front):
        statuses = {path: post_status(front, path, self.creds.ca.cert) for path in GATEWAY_SPELLINGS}
        self.assertEqual(statuses, {path: 403 for path in GATEWAY_SPELLINGS})
        self.assertEqual(post_status(front, "/REST/1.0/", self.creds.ca.cert), 200, "the rest of RT")

    def assertMailgateRefused(self, front, token, *args, status="403 Forbidden"):
        r = self.mailgate(front, token, *args)
        self.assertEqual(r.returncode, EX_TEMPFAIL, r.err)
        self.assertIn(f"HTTP request failed: {status}", r.err)
        self.assertNoTicket(token)

    def assertMailgateDelivered(self, front, token, *args):
        r = self.mailgate(front, token, *args)
        self.assertEqual(r.returncode, 0, r.err)
        self.assertEqual(self.show(self.the_ticket(token))["Queue"], "General")

    def smtp_through(self, front, name, locked: dict, open_: dict):
        """A pair whose route locked@ goes to the front without the
        credential and open@ with it: 451 (403 at the front), then the ticket."""
        servers = {"servers.locked.url": front.url, "servers.locked.ca_file": self.creds.ca.cert,
                   "servers.open.url": front.url, "servers.open.ca_file": self.creds.ca.cert}
        servers.update({f"servers.locked.{k}": v for k, v in locked.items()})
        servers.update({f"servers.open.{k}": v for k, v in open_.items()})
        self.own_pair(name, "postfix", config={**servers, "routes": (
            *ROUTES, {"address": f"locked@{RT_DOMAIN}", "queue": "General", "server": "locked"},
            {"address": f"open@{RT_DOMAIN}", "queue": "General", "server": "open"})})
        tok = self.token()
        sent = self.send(f"locked@{RT_DOMAIN}", f"{tok} without the credential")
        self.assertReply(sent.data_reply(), rf"^451 4\.3\.0 message for <locked@{re.escape(RT_DOMAIN)}> not "
                                            r"delivered: RT did not take it; try again later$", sent)
        self.assertNoTicket(tok)
        qid = self.assertNotQueued(sent.msgid)
        self.assertIn("-> locked queue=General (temporary, HTTP request failed: 403 Forbidden: refused before "
                      "RT, a locked gateway? see client_cert, client_key, header_files of server locked, ",
                      self.summary(qid))
        self.assertEqual(front.gateway_statuses(), [403], front.access_lines())
        tok = self.token()
        sent, qid = self.send_ok(f"open@{RT_DOMAIN}", f"{tok} with the credential")
        self.assertEqual(self.show(self.the_ticket(tok))["Queue"], "General")
        self.assertIn("-> open queue=General (delivered, RT said: ok", self.summary(qid))
        self.assertEqual(front.gateway_statuses(), [403, 200], front.access_lines())
        self.assertNotIn(SECRET, self.pair.milter_log())


class Nginx(FrontCase):
    def test_client_certificate(self):
        front = self.front(NginxFront, secret=False)
        self.smtp_through(front, "ngxc", {"header_files": {HEADER: self.creds.secret}},
                          {"client_cert": self.creds.client.cert, "client_key": self.creds.client.key})
        self.assertEverySpellingLocked(front)
        self.assertMailgateRefused(front, self.token())
        self.assertMailgateRefused(front, self.token(), "--header-file", f"{HEADER}={self.creds.secret}")
        # a certificate of another CA fails its verification: nginx's 400
        self.assertMailgateRefused(front, self.token(), "--client-cert", self.creds.rogue.cert,
                                   "--client-key", self.creds.rogue.key, status="400 Bad Request")
        self.assertMailgateDelivered(front, self.token(), "--client-cert", self.creds.client.cert,
                                     "--client-key", self.creds.client.key)

    def test_secret_header(self):
        front = self.front(NginxFront, certificate=False)
        self.smtp_through(front, "ngxs", {"header_files": {HEADER: self.creds.wrong_secret}},
                          {"header_files": {HEADER: self.creds.secret}})
        self.assertEverySpellingLocked(front)
        self.assertMailgateRefused(front, self.token())
        self.assertMailgateRefused(front, self.token(), "--client-cert", self.creds.client.cert,
                                   "--client-key", self.creds.client.key)
        self.assertMailgateDelivered(front, self.token(), "--header-file", f"{HEADER}={self.creds.secret}")


class Apache(FrontCase):
    def test_configtest_and_requests(self):
        for certificate, secret in ((True, False), (False, True), (True, True)):
            with self.subTest(certificate=certificate, secret=secret):
                check = ApacheFront(os.path.join(self.folder, "check"), self.url, self.creds,
                                    certificate=certificate, secret=secret).configtest()
                self.assertEqual((check.returncode, check.stderr.strip()[-9:]), (0, "Syntax OK"), check.stderr)
        front = self.front(ApacheFront)  # both methods
        self.assertEverySpellingLocked(front)
        self.assertMailgateRefused(front, self.token())
        self.assertMailgateRefused(front, self.token(), "--header-file", f"{HEADER}={self.creds.wrong_secret}")
        self.assertMailgateDelivered(front, self.token(), "--client-cert", self.creds.client.cert,
                                     "--client-key", self.creds.client.key)
        self.assertMailgateDelivered(front, self.token(), "--header-file", f"{HEADER}={self.creds.secret}")
        self.assertEqual(front.gateway_statuses()[-4:], [403, 403, 200, 200], front.access_lines())


if __name__ == "__main__":
    unittest.main()
