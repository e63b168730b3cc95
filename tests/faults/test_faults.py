"""test_faults — fault injection against the real rt-milter through a real
private Postfix (tests/faults; harness: faults_harness.py). Each test is one
scenario: RT misbehaves in one scripted way, the first SMTP attempt must get
the right reply, RT must have received what is asserted, and once the
client has retried until 250 every message must have been processed by RT
exactly once. Each prints its table row (report.py prints them all).
"""

import threading
import time
import unittest

from faults_harness import (BUGS_RCPT, RT_RCPT, TARGET_OF, FaultCase, Garbage,
                            Hang, Reply, Reset, free_loopback_port,
                            make_huge_message, request_target, say, wait_for)

GENERAL = TARGET_OF[RT_RCPT]
BUGS = TARGET_OF[BUGS_RCPT]
OK = Reply(200, b"ok\n")


def circuit_logged(state: str) -> str:
    """A log line announcing the circuit's change to `state`: "circuit
    STATE" or "circuit for RT server URL: OLD -> STATE"."""
    return rf"(?m)^rt-milter: .*\bcircuit\b(?: {state}\b|[^\n]*-> {state}\b)"


class Faults(FaultCase):

    # 1 ---------------------------------------------------------------------
    def test_01_rt_refuses_connections(self):
        """Nothing listens on RT's port: 451 4.4.1 at end of data, no
        request; RT comes up on that port; the retries deliver once."""
        port = free_loopback_port()
        milter = self.start_milter(f"http://127.0.0.1:{port}", timeout=3)
        self.start_postfix(milter)
        msgs = [self.new_message("refused") for _ in range(2)]
        firsts = [self.send(m) for m in msgs]
        for a in firsts:
            self.check_reply(a, "end", r"^451 4\.4\.1\b", "first attempt, RT down")
        stub = self.start_stub(port=port)
        for m, a in zip(msgs, firsts):
            self.retry_until_accepted(m, a)
        reqs = stub.requests
        self.check(self.assertEqual, len(reqs), 2, "one POST per message once RT is up")
        for m, r in zip(msgs, reqs):
            self.check_posted(r, m, GENERAL)
        self.conclude("1. RT refuses connections", milter, stubs=[stub])

    # 2 ---------------------------------------------------------------------
    def test_02_rt_hangs_in_doubt(self):
        """RT reads the whole request and never answers; [rt] timeout 3 s:
        451; the retry finds the target in doubt and, without a REST2
        token, in_doubt = "delivered" (no longer the default) does not post
        it again."""
        stub = self.start_stub(Hang())
        milter = self.start_milter(stub.url, timeout=3, in_doubt="delivered")
        self.start_postfix(milter)
        m = self.new_message("hang")
        first = self.send(m)
        self.check_reply(first, "end", r"^451 4\.[34]\.\d\b", "first attempt, RT silent")
        self.check(self.assertGreaterEqual, first.seconds, 2.5, "gave up before the timeout")
        self.check(self.assertEqual, len(stub.complete_requests()), 1,
                   "RT got the whole request once")
        self.retry_until_accepted(m, first)
        self.check(self.assertEqual, len(stub.requests), 1,
                   "the in-doubt target was posted again on the retry")
        self.check_posted(stub.requests[0], m, GENERAL)
        self.conclude("2. RT silent past the timeout (Hang)", milter, stubs=[stub])

    # 3 ---------------------------------------------------------------------
    def test_03_rt_answers_500(self):
        stub = self.start_stub(Reply(500, b"Internal Server Error\n"))
        milter = self.start_milter(stub.url, timeout=3)
        self.start_postfix(milter)
        m = self.new_message("http500")
        first = self.send(m)
        self.check_reply(first, "end", r"^451 4\.3\.0\b", "first attempt, RT 500")
        self.retry_until_accepted(m, first)
        reqs = stub.requests
        self.check(self.assertEqual, len(reqs), 2, "the 500 and one retry")
        for r in reqs:
            self.check_posted(r, m, GENERAL)
        self.conclude("3. RT answers 500", milter, stubs=[stub])

    # 4 ---------------------------------------------------------------------
    def test_04_reset_mid_upload(self):
        """A 2 MB message (spooled); RT resets the connection after 256 KiB
        of the body: 451; the retry posts it whole once."""
        stub = self.start_stub(Reset(after_bytes=256 * 1024))
        milter = self.start_milter(stub.url, timeout=10)
        self.start_postfix(milter)
        m = self.new_message("reset", body_size=2_000_000)
        first = self.send(m)
        self.check_reply(first, "end", r"^451 4\.[34]\.\d\b", "first attempt, reset")
        self.check(self.assertEqual, [r.complete for r in stub.requests], [False],
                   "the first upload must be cut short")
        self.retry_until_accepted(m, first)
        reqs = stub.requests
        self.check(self.assertEqual, len(reqs), 2, "the reset upload and one retry")
        if len(reqs) == 2:
            self.check_posted(reqs[1], m, GENERAL)
        self.conclude("4. RT resets mid-upload (2 MB)", milter, stubs=[stub])

    # 5 ---------------------------------------------------------------------
    def test_05_rt_answers_after_timeout(self):
        """RT answers ok 6 s after the whole request, the timeout is 3 s:
        451; RT did take it, so the retry must not post again. Without a
        REST2 token, in_doubt = "delivered" (no longer the default) is what
        says so."""
        stub = self.start_stub(Reply(200, b"ok\n", delay=6))
        milter = self.start_milter(stub.url, timeout=3, in_doubt="delivered")
        self.start_postfix(milter)
        m = self.new_message("late")
        first = self.send(m)
        self.check_reply(first, "end", r"^451 4\.[34]\.\d\b", "first attempt, RT late")
        self.retry_until_accepted(m, first)
        self.check(self.assertEqual, len(stub.requests), 1,
                   "the late-answered target was posted again on the retry")
        self.check_posted(stub.requests[0], m, GENERAL)
        self.conclude("5. RT answers after the timeout", milter, stubs=[stub])

    # 6 ---------------------------------------------------------------------
    def test_06_rt_answers_garbage(self):
        stub = self.start_stub(Garbage())
        milter = self.start_milter(stub.url, timeout=3)
        self.start_postfix(milter)
        m = self.new_message("garbage")
        first = self.send(m)
        self.check_reply(first, "end", r"^451 4\.[34]\.\d\b", "first attempt, garbage")
        self.retry_until_accepted(m, first)
        reqs = stub.requests
        self.check(self.assertEqual, len(reqs), 2, "the garbage and one retry")
        for r in reqs:
            self.check_posted(r, m, GENERAL)
        self.conclude("6. RT answers garbage", milter, stubs=[stub])

    # 7 ---------------------------------------------------------------------
    def test_07_two_targets_one_tempfails(self):
        """rt@ (General) and bugs@ (Bugs) in one message; the first POST to
        arrive gets ok, the second "temporary failure": 451; the retry posts
        only the target that failed."""
        stub = self.start_stub(OK, Reply(200, b"temporary failure: database busy\n"))
        milter = self.start_milter(stub.url, timeout=5)
        self.start_postfix(milter)
        m = self.new_message("two", rcpts=(RT_RCPT, BUGS_RCPT))
        first = self.send(m)
        self.check_reply(first, "end", r"^451 4\.3\.0\b", "first attempt, one target tempfailed")
        firsts = stub.requests
        self.check(self.assertEqual, len(firsts), 2, "one POST per target")
        failed = [r for r in firsts if stub.action_of(r) is not OK]
        self.retry_until_accepted(m, first)
        retries = stub.requests[len(firsts):]
        self.check(self.assertEqual, [request_target(r) for r in retries],
                   [request_target(r) for r in failed],
                   "the retry must post only the target that failed")
        for r in stub.requests:
            self.check_posted(r, m, request_target(r))
        self.conclude("7. two targets, one temporary failure", milter, stubs=[stub])

    # 8 ---------------------------------------------------------------------
    def test_08_circuit_breaker(self):
        """circuit_failures 2, circuit_cooldown 4 s, RT's port closed: two
        transactions fail (451 4.4.1 at end of data), the circuit opens; RT
        comes back, yet the third gets 451 4.4.1 at RCPT without a POST;
        after the cool-down a probe goes through and closes the circuit;
        the retries deliver everything once."""
        cooldown = 4
        port = free_loopback_port()
        milter = self.start_milter(f"http://127.0.0.1:{port}", timeout=3,
                                   circuit=(2, cooldown))
        self.start_postfix(milter)
        m1, m2, m3, m4 = (self.new_message("circuit") for _ in range(4))
        a1 = self.send(m1)
        a2 = self.send(m2)
        opened_at = time.monotonic()
        for a in (a1, a2):
            self.check_reply(a, "end", r"^451 4\.4\.1\b", "failing transaction")
        self.check_log(milter, circuit_logged("open"), "the circuit opening")
        stub = self.start_stub(port=port)          # RT is back
        a3 = self.send(m3)
        self.check_reply(a3, "rcpt", r"^451 4\.4\.1\b", "RCPT while the circuit is open")
        self.check(self.assertLess, a3.seconds, 2.0, "an open circuit answers at once")
        self.check(self.assertEqual, len(stub.requests), 0,
                   "no POST while the circuit is open")
        time.sleep(max(0.0, opened_at + cooldown + 0.5 - time.monotonic()))
        a4 = self.send(m4)                           # the probe
        self.check_reply(a4, "end", r"^250 ", "the probe after the cool-down")
        self.check(self.assertEqual, len(stub.requests), 1, "the probe's POST")
        self.check_log(milter, circuit_logged("half-open"), "the circuit half-opening")
        self.check_log(milter, circuit_logged("closed"), "the circuit closing")
        for m, a in ((m1, a1), (m2, a2), (m3, a3), (m4, a4)):
            self.retry_until_accepted(m, a)
        self.check_all_posted(stub, GENERAL)
        self.conclude("8. circuit breaker", milter, stubs=[stub])

    # 9 ---------------------------------------------------------------------
    def test_09_restart_safety(self):
        """Three 1.5 MB messages (spooled) in three concurrent sessions; RT
        holds its answers; SIGKILL rt-milter once RT has all three whole
        requests: Postfix tempfails them (milter_default_action tempfail);
        spool_dir is empty; rt-milter restarts on the same config and
        journal; the retries deliver each exactly once (RT had them whole)
        and leave no file open or spooled. (Not posting again without a REST2
        token: in_doubt = "delivered", no longer the default.)"""
        stub = self.start_stub(*(Reply(200, b"ok\n", delay=20) for _ in range(3)))
        milter = self.start_milter(stub.url, timeout=30, in_doubt="delivered")
        self.start_postfix(milter)
        msgs = [self.new_message("restart", body_size=1_500_000) for _ in range(3)]
        firsts: dict = {}

        def send(m):
            firsts[m.msgid] = self.send(m)
        threads = [threading.Thread(target=send, args=(m,), daemon=True) for m in msgs]
        for t in threads:
            t.start()
        whole = wait_for(lambda: len(stub.complete_requests()) >= 3, 30, step=0.02)
        self.check(self.assertTrue, whole, f"RT got {len(stub.complete_requests())} "
                   "whole requests, want 3 before the kill")
        killed_pid = milter.pid
        milter.kill()                                   # SIGKILL, our pid only
        say(f"SIGKILLed rt-milter {killed_pid} with 3 POSTs awaiting RT's answer")
        for t in threads:
            t.join(60)
        for m in msgs:
            a = firsts.get(m.msgid)
            self.check(self.assertIsNotNone, a, f"{m.msgid}: no reply within 60 s")
            if a:
                self.check_reply(a, "end", r"^451 ", "attempt cut by the kill")
        self.check(self.assertEqual, milter.spool_contents(), [],
                   "files left in spool_dir after SIGKILL")
        milter.start()                                  # same config + journal
        for m in msgs:
            self.retry_until_accepted(m, firsts.get(m.msgid) or self.send(m))
        self.check(self.assertEqual, len(stub.requests), 3,
                   "requests RT got whole before the kill were posted again")
        self.check_all_posted(stub, GENERAL)
        leaked = milter.leaked_files()
        say(f"rt-milter {milter.pid} open files after the retries: {milter.open_files()}")
        self.check(self.assertEqual, leaked, [], "files rt-milter still holds open")
        self.conclude("9. SIGKILL mid-POST, restart", milter, stubs=[stub])

    # 10 --------------------------------------------------------------------
    def test_10_huge_200mb(self):
        """A 200 MB message through Postfix -> rt-milter -> the stub (size +
        sha256 only): byte-exact at RT, rt-milter's peak RSS under 30 MB."""
        total = 200 * 1024 * 1024
        stub = self.start_stub(record_limit=1 << 20)
        milter = self.start_milter(stub.url, timeout=300)
        self.start_postfix(milter, "--message-size-limit", str(400 * 1024 * 1024))
        m = make_huge_message("huge", (RT_RCPT,), total)
        self.messages.append(m)
        hwm_before = milter.status("VmHWM")
        first = self.send(m, timeout=300)
        hwm = milter.status("VmHWM")
        rss = milter.status("VmRSS")
        self.check_reply(first, "end", r"^250 ", "200 MB message")
        reqs = stub.requests
        self.check(self.assertEqual, len(reqs), 1, "one POST")
        if reqs:
            self.check_posted(reqs[0], m, GENERAL)
            post_size = reqs[0].body_size
        else:
            post_size = 0
        leaked = milter.leaked_files()
        say(f"200 MB: message {m.expected_size} bytes at RT, POST body {post_size} "
            f"bytes, SMTP {first.seconds:.1f} s ({m.expected_size / 1e6 / max(first.seconds, 1e-3):.0f} MB/s), "
            f"rt-milter VmHWM {hwm} kB (at start {hwm_before} kB), VmRSS after {rss} kB, "
            f"open files {milter.open_files()}")
        self.check(self.assertIsNotNone, hwm, "rt-milter gone")
        if hwm is not None:
            self.check(self.assertLess, hwm, 30 * 1024, "rt-milter peak RSS (kB)")
        self.check(self.assertEqual, leaked, [], "files rt-milter still holds open")
        self.conclude("10. 200 MB message", milter, stubs=[stub],
                      extra={"peak_rss_kb": hwm, "seconds": round(first.seconds, 2),
                             "bytes": m.expected_size})


if __name__ == "__main__":
    unittest.main()
