# tests/rt/test_real_rt.py — end-to-end tests of an rt-mailgate client against
# a real RT 5 started by packaging/rt-sandbox. Each case feeds a mail to the
# client, checks its exit code, and reads the outcome back over RT's REST 1.0
# API (and, where RT mails someone, from the sandbox's outgoing.mbox).
#
# Environment:
#   RT_MAILGATE     client under test (default /usr/bin/rt-mailgate, RT's Perl one)
#   RT_SANDBOX_ENV  path of the sandbox's DIR/env (gives RT_URL and RT_MBOX), or
#   RT_URL          the RT base URL directly (RT_MBOX optional)
# Every mail carries a token unique to this run and case, so cases never depend
# on each other or on ticket numbers. Python 3 stdlib only.
#
#   packaging/rt-sandbox start /tmp/rt && \
#   RT_SANDBOX_ENV=/tmp/rt/env python3 -m unittest -v test_real_rt   (in tests/rt)

import base64
import email.header
import http.cookiejar
import os
import re
import shlex
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "packaging"))
from sandbox_common import read_env  # noqa: E402  (DIR/env, read where it is written)

MAILGATE_TIMEOUT = 120  # seconds; the client's own default HTTP timeout is 180
HTTP_TIMEOUT = 30
RUN = f"{time.strftime('%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
ALICE = "alice@example.com"     # unprivileged; auto-created by RT on first mail
STAFF = "staff@example.com"     # privileged fixture user "staff"
NO_SUCH_TICKET = 999999999


class RealRt(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mailgate = os.environ.get("RT_MAILGATE") or "/usr/bin/rt-mailgate"
        if not os.access(cls.mailgate, os.X_OK):
            raise RuntimeError(f"RT_MAILGATE={cls.mailgate} is not an executable")
        conf = {}
        if os.environ.get("RT_SANDBOX_ENV"):
            path = os.environ["RT_SANDBOX_ENV"]
            if not os.path.exists(path):
                raise RuntimeError(f"RT_SANDBOX_ENV={path} does not exist: is the "
                                   "sandbox running (packaging/rt-sandbox start)?")
            conf = read_env(path)
        cls.url = os.environ.get("RT_URL") or conf.get("RT_URL")
        cls.mbox = os.environ.get("RT_MBOX") or conf.get("RT_MBOX")
        if not cls.url:
            raise RuntimeError("set RT_SANDBOX_ENV (DIR/env of packaging/rt-sandbox) "
                               "or RT_URL")
        cls.url = cls.url.rstrip("/")
        cls.cookies = http.cookiejar.CookieJar()
        cls.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(cls.cookies))

    # ----- the client ---------------------------------------------------
    def token(self):
        """A string unique to this run and test case."""
        return f"t{RUN}-{self._testMethodName[5:]}"

    @staticmethod
    def message(sender, subject, body, msgid, headers=(), crlf=False):
        lines = [f"From: {sender}", "To: rt@rt.test", f"Subject: {subject}",
                 f"Message-ID: <{msgid}@example.com>",
                 "Date: " + time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
                 *headers, "", *body.split("\n")]
        eol = "\r\n" if crlf else "\n"
        return (eol.join(lines) + eol).encode("utf-8")

    def mailgate_run(self, msg, *args, extension=None):
        env = {k: v for k, v in os.environ.items() if k != "EXTENSION"}
        if extension is not None:
            env["EXTENSION"] = str(extension)
        cmd = [self.mailgate, "--url", self.url, *args]
        r = subprocess.run(cmd, input=msg, env=env, capture_output=True,
                           timeout=MAILGATE_TIMEOUT)
        r.cmd = cmd
        return r

    def assertExit(self, r, code):
        self.assertEqual(
            r.returncode, code,
            f"{shlex.join(r.cmd)} exited {r.returncode}, expected {code}\n"
            f"stdout: {r.stdout.decode(errors='replace')}\n"
            f"stderr: {r.stderr.decode(errors='replace')}")

    # ----- REST 1.0 -----------------------------------------------------
    def rest_raw(self, path, **params):
        # Log in (user/pass, which costs RT a password hash, ~250 ms) only
        # until RT has given this process a session cookie (~15 ms a call).
        for login in ((False, True) if len(self.cookies) else (True,)):
            query = dict(params, **({"user": "root", "pass": "password"} if login else {}))
            url = f"{self.url}/REST/1.0/{path}?{urllib.parse.urlencode(query)}"
            try:
                with self.opener.open(url, timeout=HTTP_TIMEOUT) as resp:
                    data = resp.read()
            except urllib.error.URLError as e:
                self.fail(f"GET {url}: {e}")
            head, sep, rest = data.partition(b"\n\n")
            if re.match(rb"RT/\S+ 401 ", data):
                continue
            if not (head.startswith(b"RT/") and head.endswith(b" 200 Ok") and sep):
                self.fail(f"GET {url}: unexpected answer {data[:300]!r}")
            return rest
        self.fail(f"GET {url}: RT refused root/password: {data[:300]!r}")

    def rest(self, path, **params):
        return self.rest_raw(path, **params).decode("utf-8")

    @staticmethod
    def fields(text):
        """'Key: value' lines (with indented continuation lines) -> dict."""
        out, key = {}, None
        for line in text.split("\n"):
            m = re.match(r"^([A-Za-z][\w.-]*):\s?(.*)$", line)
            if m:
                key = m.group(1)
                out[key] = m.group(2)
            elif key and line.startswith(" "):
                out[key] += "\n" + line.strip()
        return out

    def show(self, tid):
        text = self.rest(f"ticket/{tid}/show")
        f = self.fields(text)
        self.assertEqual(f.get("id"), f"ticket/{tid}", f"ticket {tid}: {text!r}")
        return f

    def history(self, tid):
        """[(transaction id, description)] of ticket tid, oldest first."""
        text = self.rest(f"ticket/{tid}/history")
        return [(int(m.group(1)), m.group(2))
                for m in re.finditer(r"^(\d+): (.*)$", text, re.M)]

    def transaction(self, tid, txid):
        f = self.fields(self.rest(f"ticket/{tid}/history/id/{txid}"))
        f["attachment_ids"] = [int(x) for x in
                               re.findall(r"(\d+):", f.get("Attachments", ""))]
        return f

    def attachment(self, tid, aid):
        text = self.rest_raw(f"ticket/{tid}/attachments/{aid}")
        return self.fields(text.decode("utf-8", "replace"))  # Content may be binary

    def search(self, token):
        """{id: subject} of tickets whose subject contains token."""
        text = self.rest("search/ticket", query=f"Subject LIKE '{token}'",
                         orderby="id", format="s")
        if text.strip() == "No matching results.":
            return {}
        found = {int(m.group(1)): m.group(2)
                 for m in re.finditer(r"^(\d+): (.*)$", text, re.M)}
        self.assertTrue(found, f"search for {token}: unexpected answer {text!r}")
        return found

    def assertNoTicket(self, token):
        self.assertEqual(self.search(token), {},
                         f"a ticket with {token} in its subject exists")

    def the_ticket(self, token):
        found = self.search(token)
        self.assertEqual(len(found), 1, f"tickets with {token}: {found}")
        return next(iter(found))

    def added(self, tid, description, since=0):
        """Transactions of tid after txid `since` whose description is exact."""
        return [tx for tx, d in self.history(tid) if tx > since and d == description]

    # ----- the sandbox's outgoing mail -----------------------------------
    def mails_with(self, needle, wait=5.0):
        """Messages in outgoing.mbox that contain needle (waits a little)."""
        if not self.mbox:
            self.skipTest("no RT_MBOX (use RT_SANDBOX_ENV) to read outgoing mail")
        deadline = time.monotonic() + wait
        while True:
            with open(self.mbox, "rb") as f:
                data = f.read()
            msgs = [m for m in re.split(rb"(?m)^From \S+ .*\n", data)
                    if needle.encode() in m]
            if msgs or time.monotonic() > deadline:
                return [m.decode("utf-8", "replace") for m in msgs]
            time.sleep(0.2)

    # ----- building blocks ----------------------------------------------
    def create_ticket(self, sender=ALICE, queue="bugs"):
        """A new ticket by mail; returns (id, subject)."""
        tok = self.token()
        subject = f"{tok} printer on fire"
        r = self.mailgate_run(
            self.message(f"Sender <{sender}>", subject, f"create body {tok}", f"{tok}.new"),
            "--queue", queue, "--action", "correspond")
        self.assertExit(r, 0)
        return self.the_ticket(tok), subject

    def content_of(self, tid, txid):
        return self.transaction(tid, txid).get("Content", "")

    # ----- the cases asked for ---------------------------------------------
    def test_new_ticket(self):
        tok = self.token()
        subject = f"{tok} printer on fire"
        r = self.mailgate_run(
            self.message(f"Alice Example <{ALICE}>", subject, f"first line {tok}\nsecond",
                         f"{tok}.1"),
            "--queue", "bugs", "--action", "correspond")
        self.assertExit(r, 0)
        tid = self.the_ticket(tok)
        t = self.show(tid)
        self.assertEqual(t["Queue"], "bugs")
        self.assertEqual(t["Subject"], subject)
        self.assertEqual(t["Requestors"], ALICE)
        self.assertEqual(t["Creator"], ALICE)
        self.assertEqual(t["Owner"], "Nobody")
        self.assertEqual(t["Status"], "new")
        hist = self.history(tid)
        self.assertEqual(hist[0][1], f"Ticket created by {ALICE}")
        self.assertIn(f"first line {tok}", self.content_of(tid, hist[0][0]))
        top = self.attachment(tid, self.transaction(tid, hist[0][0])["attachment_ids"][0])
        self.assertEqual(top["MessageId"], f"{tok}.1@example.com")
        # RT's AutoReply went to the requestor, with the ticket's subject tag.
        replies = [m for m in self.mails_with(subject)
                   if f"Subject: [rt.test #{tid}] AutoReply: {subject}" in m]
        self.assertEqual(len(replies), 1, "AutoReply in outgoing.mbox")
        self.assertRegex(replies[0], rf"(?m)^To: {re.escape(ALICE)}$")

    def test_reply_by_subject_tag(self):
        tid, subject = self.create_ticket()
        last = self.history(tid)[-1][0]
        tok = self.token()
        r = self.mailgate_run(
            self.message(ALICE, f"Re: [rt.test #{tid}] {subject}", f"reply body {tok}",
                         f"{tok}.reply"),
            "--queue", "bugs", "--action", "correspond")
        self.assertExit(r, 0)
        added = self.added(tid, f"Correspondence added by {ALICE}", last)
        self.assertEqual(len(added), 1, self.history(tid))
        self.assertIn(f"reply body {tok}", self.content_of(tid, added[0]))
        self.assertEqual(self.show(tid)["Status"], "open")  # correspondence opens it
        self.assertEqual(self.search(tok), {tid: subject}, "no second ticket")

    def test_comment(self):
        tid, subject = self.create_ticket()
        last = self.history(tid)[-1][0]
        tok = self.token()
        r = self.mailgate_run(
            self.message(ALICE, f"[rt.test #{tid}] {subject}", f"comment body {tok}",
                         f"{tok}.comment"),
            "--queue", "bugs", "--action", "comment")
        self.assertExit(r, 0)
        added = self.added(tid, f"Comments added by {ALICE}", last)
        self.assertEqual(len(added), 1, self.history(tid))
        self.assertIn(f"comment body {tok}", self.content_of(tid, added[0]))
        self.assertEqual(self.added(tid, f"Correspondence added by {ALICE}", last), [])
        self.assertEqual(self.show(tid)["Status"], "new")  # a comment does not open it

    def test_extension_ticket(self):
        tid, subject = self.create_ticket()
        last = self.history(tid)[-1][0]
        tok = self.token()
        other = f"{tok} no tag in this subject"
        r = self.mailgate_run(
            self.message(ALICE, other, f"via extension {tok}", f"{tok}.ext"),
            "--queue", "bugs", "--action", "correspond", "--extension", "ticket",
            extension=tid)
        self.assertExit(r, 0)
        added = self.added(tid, f"Correspondence added by {ALICE}", last)
        self.assertEqual(len(added), 1, self.history(tid))
        self.assertIn(f"via extension {tok}", self.content_of(tid, added[0]))
        self.assertNoTicket(other)
        # The client prepends EXTENSION as a header; RT stores it with the mail.
        top = self.attachment(tid, self.transaction(tid, added[0])["attachment_ids"][0])
        self.assertRegex(top["Headers"], rf"(?m)^X-RT-Mail-Extension: {tid}$")
        self.assertEqual(self.show(tid)["Subject"], subject)

    def test_unknown_queue(self):
        tok = self.token()
        r = self.mailgate_run(
            self.message(ALICE, f"{tok} lost mail", f"body {tok}", f"{tok}.q"),
            "--queue", "no-such-queue", "--action", "correspond")
        self.assertExit(r, 75)  # RT says "temporary failure": the MTA retries
        self.assertNoTicket(tok)

    def test_take_comment_refused(self):
        tid, subject = self.create_ticket()
        before = self.history(tid)
        tok = self.token()
        r = self.mailgate_run(
            self.message(ALICE, f"[rt.test #{tid}] {subject}", f"take attempt {tok}",
                         f"{tok}.take"),
            "--queue", "bugs", "--action", "take-comment")
        self.assertExit(r, 0)  # RT answers "not ok": a permanent refusal
        self.assertEqual(self.show(tid)["Owner"], "Nobody")
        self.assertEqual(self.history(tid), before, "nothing recorded, not even the comment")
        # RT bounced the mail to the sender instead.
        bounces = [m for m in self.mails_with(f"take attempt {tok}")
                   if re.search(r"(?m)^Subject: Permission Denied$", m)]
        self.assertEqual(len(bounces), 1, "Permission Denied mail in outgoing.mbox")
        self.assertRegex(bounces[0], rf"(?m)^To: {re.escape(ALICE)}$")

    # ----- further cheap cases -------------------------------------------
    def test_take_comment_by_staff(self):
        tid, subject = self.create_ticket()
        last = self.history(tid)[-1][0]
        tok = self.token()
        r = self.mailgate_run(
            self.message(f"Staff Member <{STAFF}>", f"[rt.test #{tid}] {subject}",
                         f"mine now {tok}", f"{tok}.take"),
            "--queue", "bugs", "--action", "take-comment")
        self.assertExit(r, 0)
        self.assertEqual(self.show(tid)["Owner"], "staff")
        self.assertEqual(len(self.added(tid, "Taken by staff", last)), 1, self.history(tid))
        added = self.added(tid, "Comments added by staff", last)
        self.assertEqual(len(added), 1, self.history(tid))
        self.assertIn(f"mine now {tok}", self.content_of(tid, added[0]))

    def test_correspond_resolve_by_staff(self):
        tid, subject = self.create_ticket()
        last = self.history(tid)[-1][0]
        tok = self.token()
        r = self.mailgate_run(
            self.message(STAFF, f"Re: [rt.test #{tid}] {subject}", f"fixed {tok}",
                         f"{tok}.resolve"),
            "--queue", "bugs", "--action", "correspond-resolve")
        self.assertExit(r, 0)
        self.assertEqual(self.show(tid)["Status"], "resolved")
        self.assertEqual(len(self.added(tid, "Correspondence added by staff", last)), 1)

    def test_correspond_resolve_refused_is_partial(self):
        # RT checks only the first action up front: the reply is recorded,
        # the resolve is refused, and the answer is "not ok" (exit 0).
        tid, subject = self.create_ticket()
        last = self.history(tid)[-1][0]
        tok = self.token()
        r = self.mailgate_run(
            self.message(ALICE, f"Re: [rt.test #{tid}] {subject}", f"close it {tok}",
                         f"{tok}.resolve"),
            "--queue", "bugs", "--action", "correspond-resolve")
        self.assertExit(r, 0)
        self.assertEqual(len(self.added(tid, f"Correspondence added by {ALICE}", last)), 1)
        self.assertNotEqual(self.show(tid)["Status"], "resolved")

    def test_nonexistent_ticket_tag(self):
        self.assertIn("does not exist", self.rest(f"ticket/{NO_SUCH_TICKET}/show"))
        tok = self.token()
        r = self.mailgate_run(
            self.message(ALICE, f"Re: [rt.test #{NO_SUCH_TICKET}] {tok} ghost",
                         f"ghost {tok}", f"{tok}.ghost"),
            "--queue", "bugs", "--action", "correspond")
        self.assertExit(r, 0)  # "not ok": bounced, not retried
        self.assertNoTicket(tok)
        self.assertIn("does not exist", self.rest(f"ticket/{NO_SUCH_TICKET}/show"))

    def test_extension_queue(self):
        tok = self.token()
        r = self.mailgate_run(
            self.message(ALICE, f"{tok} routed by extension", f"body {tok}", f"{tok}.eq"),
            "--queue", "General", "--action", "correspond", "--extension", "queue",
            extension="bugs")
        self.assertExit(r, 0)
        self.assertEqual(self.show(self.the_ticket(tok))["Queue"], "bugs")

    def test_extension_action(self):
        tid, subject = self.create_ticket()
        last = self.history(tid)[-1][0]
        tok = self.token()
        r = self.mailgate_run(
            self.message(ALICE, f"[rt.test #{tid}] {subject}", f"aside {tok}", f"{tok}.ea"),
            "--queue", "bugs", "--action", "correspond", "--extension", "action",
            extension="comment")
        self.assertExit(r, 0)
        self.assertEqual(len(self.added(tid, f"Comments added by {ALICE}", last)), 1,
                         self.history(tid))
        self.assertEqual(self.added(tid, f"Correspondence added by {ALICE}", last), [])

    def test_utf8_subject_and_8bit_body(self):
        tok = self.token()
        subject = f"{tok} Grüße — ünïcödé ✓"
        encoded = email.header.Header(subject, "utf-8").encode()
        body = f"Ça marche: naïve café, 日本語 {tok}"
        r = self.mailgate_run(
            self.message(ALICE, encoded, body, f"{tok}.utf8",
                         headers=("MIME-Version: 1.0",
                                  "Content-Type: text/plain; charset=utf-8",
                                  "Content-Transfer-Encoding: 8bit")),
            "--queue", "bugs")
        self.assertExit(r, 0)
        tid = self.the_ticket(tok)
        self.assertEqual(self.show(tid)["Subject"], subject)
        self.assertIn(body, self.content_of(tid, self.history(tid)[0][0]))

    def test_crlf_message(self):
        tok = self.token()
        r = self.mailgate_run(
            self.message(ALICE, f"{tok} crlf", f"line one {tok}\nline two", f"{tok}.crlf",
                         crlf=True),
            "--queue", "bugs")
        self.assertExit(r, 0)
        tid = self.the_ticket(tok)
        self.assertEqual(self.show(tid)["Requestors"], ALICE)
        self.assertIn(f"line one {tok}", self.content_of(tid, self.history(tid)[0][0]))

    def test_binary_attachment_round_trip(self):
        # 1 MiB of every byte value, base64 in a ~1.4 MB multipart mail: what RT
        # stores must be exactly what was sent, so the whole mail got through.
        # (base64 survives line-ending changes; the 8-bit test covers bytes.)
        tok = self.token()
        payload = bytes(range(256)) * 4096 + tok.encode()
        b64 = base64.encodebytes(payload).decode("ascii").rstrip("\n")
        boundary = f"b-{tok}"
        body = "\n".join([
            f"--{boundary}", "Content-Type: text/plain; charset=us-ascii", "",
            f"see attachment {tok}", "",
            f"--{boundary}", "Content-Type: application/octet-stream",
            "Content-Transfer-Encoding: base64",
            f'Content-Disposition: attachment; filename="blob-{tok}.bin"', "",
            b64, f"--{boundary}--"])
        r = self.mailgate_run(
            self.message(ALICE, f"{tok} attachment", body, f"{tok}.bin",
                         headers=("MIME-Version: 1.0",
                                  f'Content-Type: multipart/mixed; boundary="{boundary}"')),
            "--queue", "bugs")
        self.assertExit(r, 0)
        tid = self.the_ticket(tok)
        ids = self.transaction(tid, self.history(tid)[0][0])["attachment_ids"]
        blobs = [a for a in ids
                 if self.attachment(tid, a).get("Filename") == f"blob-{tok}.bin"]
        self.assertEqual(len(blobs), 1, f"attachments {ids}")
        stored = self.rest_raw(f"ticket/{tid}/attachments/{blobs[0]}/content")
        self.assertEqual(len(stored), len(payload))
        self.assertTrue(stored == payload, "attachment bytes differ")


if __name__ == "__main__":
    unittest.main()
