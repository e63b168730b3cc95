"""test_hostile — hostile input through the real rt-milter (tests/milter):
10 000 header fields, an 8-bit header, a bare CR, 8-bit body bytes and a
1 MB line (hostile.lua; NUL bytes are covered by the unit tests) are taken whole and posted byte for
byte; huge, binary and truncated RT answers get a defined SMTP reply; a
storm of SIGUSR1 while a message is in flight changes nothing; hostile
envelopes (findings 2 and 7 of the hostile review): an unparsable other
recipient keeps its copy on Sendmail, and a sender with an LF in it never
reaches RT.
"""

import signal
import threading
import time
import unittest

from milter_harness import HERE, SENDER, MilterTestCase, Reply, run_miltertest
from rt_stub import Garbage, Huge

HEADERS = 10_000
LINE = 1024 * 1024


class Hostile(MilterTestCase):

    def test_ten_thousand_headers_nul_bare_cr_8bit_and_a_1mb_line(self):
        ex = self.exchange("hostile.lua", Reply(200, b"ok\n"), QID="4HOST1",
                           RT_RCPTS=["<rt@example.com>"], HEADERS=str(HEADERS), LINE=str(LINE))
        (req,) = self.assertPosts(ex, 1)
        msg = req.fields["message"]
        head, _, body = msg.partition(b"\n\n")
        lines = head.split(b"\n")
        self.assertEqual(lines[0], b"Return-Path: <alice@example.org>")
        self.assertEqual(lines[1:HEADERS + 1], [b"X-H%d: v%d" % (i, i) for i in range(1, HEADERS + 1)])
        self.assertEqual(lines[HEADERS + 1], b"X-8bit: caf\xc3\xa9 \xff\xfe")
        self.assertEqual(body, b"bare\rcr\n\n8bit:\x80\xff\n" + b"x" * LINE + b"\nlast\n")

    def test_huge_binary_and_truncated_rt_answers(self):
        cases = (
            (Huge(32 * 1024 * 1024, prefix=b"ok\n"), "accept"),       # ok, then a flood
            (Reply(200, bytes(range(256)) * 256), "451"),             # binary
            (Garbage(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nok\n"), "accept"),  # cut short after ok
            (Garbage(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n<ht"), "451"),       # cut short, not ok
            (Garbage(b"HTTP/1.1 2"), "451"),                          # a status line cut in two
        )
        for i, (answer, want) in enumerate(cases):
            with self.subTest(i=i, want=want):
                ex = self.exchange("answer.lua", answer, QID=f"4ANS{i}", RT_RCPTS=["<rt@example.com>"],
                                   WANT="accept" if want == "accept" else "tempfail")
                self.assertPosts(ex, 1)
                (line,) = ex.milter.summary_lines(f"4ANS{i}")
                self.assertIn('verdict="accepted' if want == "accept" else 'verdict="451 4.3.0 ', line)

    def test_sendmail_keeps_the_copy_of_an_unparsable_other_recipient(self):
        other = '<"unterminated@elsewhere.org>'
        ex = self.exchange("sendmail_other.lua", QID="4SMO1", RT_RCPTS=["<rt@example.com>"],
                           OTHER_RCPTS=[other])
        self.assertPosts(ex, 1)
        (line,) = ex.milter.summary_lines("4SMO1")
        self.assertIn('verdict="accepted, 1 RT recipient(s) removed, 1 other(s) kept"', line)

    def test_a_sender_with_an_lf_never_reaches_rt(self):
        sender = "<evil\nRT-Send-Cc: victim@example.net\n@example.org>"
        ex = self.exchange("bad_sender.lua", QID="4BADS", BAD_SENDER=sender,
                           RT_RCPTS=["<rt@example.com>"], OTHER_RCPTS=["<bob@example.org>"])
        self.assertPosts(ex, 0)
        log = ex.milter.log()
        self.assertIn("the envelope sender does not parse", log)
        for line in log.splitlines():  # nothing of the sender starts a line of its own
            self.assertFalse(line.startswith("RT-Send-Cc"), log)

    def test_reload_storm_during_a_slow_post(self):
        stub = self.start_stub(Reply(200, b"ok\n", delay=3))
        milter = self.start_milter(stub.url)
        stop = threading.Event()

        def storm():
            for _ in range(200):  # bounded: at most 200 signals, 10 s
                if stop.is_set():
                    return
                milter.proc.send_signal(signal.SIGUSR1)
                time.sleep(0.05)

        t = threading.Thread(target=storm)
        t.start()
        try:
            run = run_miltertest("accept.lua", {"SOCKET": milter.socket_spec, "TESTDIR": HERE, "SENDER": SENDER,
                                                "QID": "4STORM", "RT_RCPTS": "<rt@example.com>"})
        finally:
            stop.set()
            t.join(15)
        self.assertEqual(run.rc, 0, run.describe() + milter.log())
        self.assertEqual(len(stub.requests), 1)
        self.assertGreater(milter.log().count("reloaded"), 5)
        self.assertEqual(milter.stop(), 0, milter.log())


if __name__ == "__main__":
    unittest.main()
