"""test_rt_headers — RT's own header fields from a sender, end to end
(issue 11, part 2): swaks -> Postfix -> rt-milter -> the suite's real RT,
which acts on them as RT before 4.4.7 / 5.0.5 did (e2e_harness.start_rt:
rt-sandbox --without-cve-2023-41259-fix; Debian 12's RT has the fix
backported). Each test has its own pair with two routes to that RT: rt@
on [rt] (strip_rt_headers on, the default) and keep@ on [servers.keeping]
(strip_rt_headers = false, which is what rt-milter did before): the
control shows RT acting on the field, the default shows it never sees it.
"""

import re
import unittest

from e2e_harness import ALICE, ROUTES, RT_DOMAIN, E2ECase

KEEP = f"keep@{RT_DOMAIN}"
RT = f"rt@{RT_DOMAIN}"
ELSEWHERE = "someone@example.net"


class Postfix(E2ECase):
    TIMEOUT = 150

    def setUp(self):
        super().setUp()
        self.own_pair("hdr" + self._testMethodName[5:9], "postfix", config={
            "servers.keeping.url": self.url, "servers.keeping.strip_rt_headers": False,
            "routes": (*ROUTES, {"address": KEEP, "queue": "General", "server": "keeping"})})

    def copies_to(self, address, token):
        """RT's outgoing mail for this token that goes to address."""
        return [m for m in self.mails_with(token, wait=3.0)
                if re.search(rf"(?mi)^(To|Cc|Bcc):.*{re.escape(address)}", m)]

    def test_rt_send_cc_makes_rt_mail_a_copy_only_when_kept(self):
        # Control: posted with the field (strip_rt_headers = false), RT
        # mails a copy of the new ticket to whoever the sender named.
        kept = self.token()
        sent, qid = self.send_ok(KEEP, f"{kept} spoofed cc", headers=(f"RT-Send-Cc: {ELSEWHERE}",))
        self.the_ticket(kept)
        self.assertTrue(self.copies_to(ELSEWHERE, kept), "RT did not act on RT-Send-Cc: is the "
                        "sandbox RT running --without-cve-2023-41259-fix?")
        self.assertNotIn("rt_headers_removed", self.summary(qid))
        # The default: the field is left out; RT mails nobody else.
        tok = self.token()
        sent, qid = self.send_ok(RT, f"{tok} spoofed cc", headers=(f"RT-Send-Cc: {ELSEWHERE}",
                                                                  f"rt-send-bcc: bcc-{ELSEWHERE}"))
        tid = self.the_ticket(tok)
        self.assertEqual(self.copies_to(ELSEWHERE, tok), [])
        self.assertTrue(self.mails_with(tok), "RT's autoreply to the requestor is still sent")
        self.assertIn(", rt_headers_removed=RT-Send-Cc,RT-Send-Bcc,", self.summary(qid))
        top = self.attachment(tid, self.transaction(tid, self.history(tid)[0][0])["attachment_ids"][0])
        self.assertNotRegex(top["Headers"], r"(?mi)^RT-Send-(Cc|Bcc):")
        self.assertRegex(top["Headers"], rf"(?m)^Subject: {re.escape(tok)} spoofed cc$")

    def test_only_our_x_rt_mail_extension_reaches_rt(self):
        # Control: kept, the sender's own field is what RT stores.
        kept = self.token()
        self.send_ok(KEEP, f"{kept} spoofed extension", headers=("X-RT-Mail-Extension: spoofed",))
        tid = self.the_ticket(kept)
        top = self.attachment(tid, self.transaction(tid, self.history(tid)[0][0])["attachment_ids"][0])
        self.assertRegex(top["Headers"], r"(?m)^X-RT-Mail-Extension: spoofed$")
        # The default: to rt+TID@, the one rt-milter adds is the only one.
        last = self.history(tid)[-1][0]
        tok = self.token()
        self.send_ok(f"rt+{tid}@{RT_DOMAIN}", f"{tok} reply", body=f"reply {tok}",
                     headers=("X-RT-Mail-Extension: spoofed",))
        added = self.added(tid, f"Correspondence added by {ALICE}", last)
        self.assertEqual(len(added), 1, self.history(tid))
        top = self.attachment(tid, self.transaction(tid, added[0])["attachment_ids"][0])
        self.assertEqual(re.findall(r"(?mi)^X-RT-Mail-Extension: .*$", top["Headers"]),
                         [f"X-RT-Mail-Extension: {tid}"])


if __name__ == "__main__":
    unittest.main()
