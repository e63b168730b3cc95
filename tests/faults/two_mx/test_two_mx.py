"""test_two_mx — the fault-injection scenarios with TWO MX hosts: two private
Postfix instances (packaging/postfix-sandbox), each with its own rt-milter,
both rt-milters sharing ONE duplicate journal: the PostgreSQL database of the
ctest fixture "pg" (tests/pg/pg_server.py, $RTM_PG_STATE), and one scripted
RT stub. The client's retries ALTERNATE between the hosts (first attempt to
MX A, retry to MX B, next to A, ...). Also: the same message to both MX hosts
at the same moment (one POST, the other session 451, its retry a duplicate),
and PostgreSQL stopped mid-load (451 "duplicate journal unavailable", then
each delivered once by the same daemons once it is back).

Owns: TwoMxCase (two rt-milters + two Postfix sandboxes on one journal, the
alternating retry loop, pausing/resuming the fixture's server) and the
scenarios; each records a row "2MX: ..." in the fault table.
Reused, not copied: tests/faults/faults_harness.py (FaultCase, FaultMilter,
the client, the counting and the table), tests/pg/pg_server.py (the server,
through the command file the fixture writes). Pauses and resumes the shared
PostgreSQL server (RESOURCE_LOCK pg_server). Stops only what it started,
by pid (rt-milter) or through postfix-sandbox stop; loopback only.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))          # tests/faults

from faults_harness import (BUGS_RCPT, RT_RCPT, TARGET_OF, Attempt,  # noqa: E402
                            FaultCase, FaultMilter, Hang, Reply,
                            request_target, say, smtp_send, wait_for)
from mta_common import read_env  # noqa: E402  (tests/mta, on the path via faults_harness)

GENERAL = TARGET_OF[RT_RCPT]
OK = Reply(200, b"ok\n")
STATE = os.environ.get("RTM_PG_STATE", "")
ALT_ATTEMPTS = 12          # attempts per message, first one included
ALT_WITHIN = 60.0          # s for all of them
ALT_PAUSE = 0.5            # s between attempts
RESUME_BOUND = 10.0        # s for an rt-milter to use PostgreSQL again


def conninfo() -> str:
    with open(os.path.join(STATE, "conninfo")) as fh:
        return fh.read().strip()


def pg_server(what: str) -> None:
    """pause / resume the fixture's server (pg_server.py, by its pid)."""
    with open(os.path.join(STATE, "command")) as fh:
        command = fh.read().split()
    subprocess.run(command + [what, STATE], check=True, timeout=90,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


class Mx:
    """One MX host: its rt-milter and its Postfix sandbox's SMTP port."""

    def __init__(self, name: str, milter: FaultMilter, port: int):
        self.name, self.milter, self.port = name, milter, port


class TwoMxCase(FaultCase):

    def setUp(self):
        super().setUp()
        if not STATE or not os.path.exists(os.path.join(STATE, "conninfo")):
            self.fail(f"no PostgreSQL fixture: RTM_PG_STATE={STATE!r}")
        if not self.journal_on:
            self.skipTest("rt-milter without the journal keys")

    def start_two(self, stub, **kw) -> tuple:
        """MX A (this case's sandbox) and MX B (a second sandbox), each with
        its own rt-milter on the fixture's journal."""
        mxs = []
        for name in ("a", "b"):
            work = os.path.join(self.work, name)
            os.makedirs(work, mode=0o755)
            milter = FaultMilter(work, stub.url, journal=conninfo(),
                                 on_journal_error="tempfail", **kw)
            self.addCleanup(self._stop_milter, milter)
            milter.start()
            if name == "a":
                self.start_postfix(milter)
                port = self.port
            else:
                port = self.start_second_postfix(milter)
            mxs.append(Mx(name.upper(), milter, port))
        return tuple(mxs)

    def start_second_postfix(self, milter: FaultMilter) -> int:
        d = tempfile.mkdtemp(prefix="mta-test-")
        conf = "MAIL_CONFIG=" + os.path.join(os.path.realpath(d), "conf")

        def stop():
            self.sandbox("stop", d, check=False)
            left = [p for p in self.live_pids() if self.environ_has(p, conf)]
            self.assertEqual(left, [], "MX B: processes survived stop")
            if not self.failed():
                shutil.rmtree(d, ignore_errors=True)
        r = self.sandbox("start", d, "--milter", milter.socket_spec)
        self.addCleanup(stop)
        port = int(r.stdout.strip().splitlines()[-1])
        self.assertEqual(read_env(os.path.join(d, "env"))["SMTP_PORT"], str(port))
        return port

    # -- sending -----------------------------------------------------------

    def send_to(self, mx: Mx, msg, rcpts=None) -> Attempt:
        a = smtp_send(mx.port, msg, rcpts)
        say(f"MX {mx.name}: {msg.msgid} -> {a.line()} ({a.seconds:.2f}s)")
        return a

    def retry_alternating(self, msg, first: Attempt, mxs: tuple,
                          first_mx: int = 0) -> list:
        """After the first attempt (to mxs[first_mx]) send again, same bytes,
        pending recipients only, to the OTHER host, then back, ...; bounded in
        attempts and time (FaultCase.retry_until_accepted). A problem when
        never accepted."""
        at = [first_mx]

        def to_the_other_host(m, pending):
            at[0] = 1 - at[0]
            return self.send_to(mxs[at[0]], m, pending)

        return self.retry_until_accepted(msg, first, attempts=ALT_ATTEMPTS, within=ALT_WITHIN,
                                         pause=ALT_PAUSE, send=to_the_other_host)

    def check_both_hosts_used(self, history: list) -> None:
        self.check(self.assertGreaterEqual, len(history), 2,
                   "the scenario needs a retry (on the other MX host)")

    def finish(self, scenario: str, stub, mxs: tuple) -> None:
        for mx in mxs:
            self.check(self.assertEqual, mx.milter.spool_contents(), [],
                       f"MX {mx.name}: files left in spool_dir")
        log = "".join(f"\n--- MX {mx.name} rt-milter log ---\n{mx.milter.log()[-2500:]}"
                      for mx in mxs)
        if self.problems:
            say(log)
        self.conclude(scenario, None, stubs=[stub])


class TwoMx(TwoMxCase):

    def test_01_hang_in_doubt(self):
        """RT reads the request and never answers ([rt] timeout 3 s): MX A
        451; the retry on MX B finds the target in doubt in the shared
        journal and, without a REST2 token, in_doubt = "delivered" (not the
        default) counts it as delivered: no second POST."""
        stub = self.start_stub(Hang())
        mxs = self.start_two(stub, timeout=3, in_doubt="delivered")
        m = self.new_message("2mx-hang")
        first = self.send_to(mxs[0], m)
        self.check_reply(first, "end", r"^451 4\.[34]\.\d\b", "MX A, RT silent")
        hist = self.retry_alternating(m, first, mxs)
        self.check_both_hosts_used(hist)
        self.check(self.assertEqual, len(stub.requests), 1,
                   "the in-doubt target was posted again by the other host")
        self.finish("2MX: RT silent past the timeout (Hang)", stub, mxs)

    def test_02_answers_after_timeout(self):
        """RT answers ok 6 s after the request, timeout 3 s: MX A 451; RT
        took it, so MX B's retry must not post again (in_doubt =
        "delivered": no REST2 token here)."""
        stub = self.start_stub(Reply(200, b"ok\n", delay=6))
        mxs = self.start_two(stub, timeout=3, in_doubt="delivered")
        m = self.new_message("2mx-late")
        first = self.send_to(mxs[0], m)
        self.check_reply(first, "end", r"^451 4\.[34]\.\d\b", "MX A, RT late")
        hist = self.retry_alternating(m, first, mxs)
        self.check_both_hosts_used(hist)
        self.check(self.assertEqual, len(stub.requests), 1,
                   "the late-answered target was posted again by the other host")
        self.finish("2MX: RT answers after the timeout", stub, mxs)

    def test_03_500_then_ok(self):
        """RT answers 500 twice, then ok: MX A 451 4.3.0, the retry on MX B
        451 4.3.0 again, the next one on MX A posts it once (a failed POST
        leaves no claim that holds up the other host)."""
        stub = self.start_stub(*(Reply(500, b"Internal Server Error\n") for _ in range(2)))
        mxs = self.start_two(stub, timeout=3)
        m = self.new_message("2mx-500")
        first = self.send_to(mxs[0], m)
        self.check_reply(first, "end", r"^451 4\.3\.0\b", "MX A, RT 500")
        hist = self.retry_alternating(m, first, mxs)
        self.check(self.assertEqual, [(h.code, h.stage) for h in hist],
                   [(451, "end"), (451, "end"), (250, "end")],
                   "A: 451, B: 451, A: 250")
        self.check(self.assertEqual, len(stub.requests), 3, "two 500s and one ok")
        for r in stub.requests:
            self.check_posted(r, m, GENERAL)
        self.finish("2MX: RT 500 twice, then ok (A, B, A)", stub, mxs)

    def test_04_two_targets_one_tempfails(self):
        """rt@ and bugs@ in one message; through MX A one target gets ok, the
        other "temporary failure": 451; MX B's retry posts only the target
        that failed (the other is in the shared journal as delivered)."""
        stub = self.start_stub(OK, Reply(200, b"temporary failure: database busy\n"))
        mxs = self.start_two(stub, timeout=5)
        m = self.new_message("2mx-two", rcpts=(RT_RCPT, BUGS_RCPT))
        first = self.send_to(mxs[0], m)
        self.check_reply(first, "end", r"^451 4\.3\.0\b", "MX A, one target tempfailed")
        firsts = stub.requests
        self.check(self.assertEqual, len(firsts), 2, "one POST per target")
        failed = [r for r in firsts if stub.action_of(r) is not OK]
        hist = self.retry_alternating(m, first, mxs)
        self.check_both_hosts_used(hist)
        retries = stub.requests[len(firsts):]
        self.check(self.assertEqual, [request_target(r) for r in retries],
                   [request_target(r) for r in failed],
                   "the retry on MX B must post only the target that failed")
        for r in stub.requests:
            self.check_posted(r, m, request_target(r))
        self.finish("2MX: two targets, one temporary failure", stub, mxs)

    def test_05_sigkill_mid_post(self):
        """A 1.5 MB message through MX A; RT holds its answer; SIGKILL MX A's
        rt-milter once RT has the whole request: Postfix A tempfails; the
        retry goes to MX B (A's rt-milter is restarted, same config, for the
        attempt after). RT had it whole, so nobody posts it again: in_doubt =
        "delivered" (no REST2 token). B may answer 451 "being delivered by
        another host" while A's dead claim has not run out: bounded."""
        stub = self.start_stub(Reply(200, b"ok\n", delay=20))
        mxs = self.start_two(stub, timeout=30, in_doubt="delivered")
        m = self.new_message("2mx-kill", body_size=1_500_000)
        box: dict = {}
        t = threading.Thread(target=lambda: box.setdefault("a", self.send_to(mxs[0], m)),
                             daemon=True)
        t.start()
        whole = wait_for(lambda: len(stub.complete_requests()) >= 1, 30, step=0.02)
        self.check(self.assertTrue, whole, "RT never got the whole request")
        killed = mxs[0].milter.pid
        mxs[0].milter.kill()                       # SIGKILL, our pid only
        say(f"SIGKILLed MX A's rt-milter {killed} with its POST awaiting RT")
        t.join(60)
        first = box.get("a")
        self.check(self.assertIsNotNone, first, "MX A: no reply within 60 s")
        first = first or Attempt("error", 0, "no reply")
        self.check_reply(first, "end", r"^451 ", "MX A, attempt cut by the kill")
        mxs[0].milter.start()                      # same config, same journal
        hist = self.retry_alternating(m, first, mxs)
        self.check_both_hosts_used(hist)
        self.check(self.assertEqual, len(stub.requests), 1,
                   "the request RT got whole before the kill was posted again")
        self.finish("2MX: SIGKILL mid-POST, retry on the other host", stub, mxs)

    def test_06_same_message_both_hosts_at_once(self):
        """The same message to MX A and MX B at the same moment (RT slow,
        3 s): RT gets exactly one POST; the other session gets 451 ("this
        message is being delivered right now"; its rt-milter logs "being
        delivered by another session/host"); its retry (to the other host)
        is recognised as a duplicate: 250, nothing posted."""
        stub = self.start_stub(Reply(200, b"ok\n", delay=3))
        mxs = self.start_two(stub, timeout=10)
        m = self.new_message("2mx-same")
        res: dict = {}
        go = threading.Barrier(2, timeout=10)

        def send(i):
            go.wait()
            res[i] = self.send_to(mxs[i], m)
        ts = [threading.Thread(target=send, args=(i,), daemon=True) for i in (0, 1)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        got = [res.get(i) or Attempt("error", 0, "no reply") for i in (0, 1)]
        won = [i for i in (0, 1) if got[i].accepted]
        lost = [i for i in (0, 1) if not got[i].accepted]
        self.check(self.assertEqual, (len(won), len(lost)), (1, 1),
                   f"one session delivers, the other 451: {[a.line() for a in got]}")
        self.check(self.assertEqual, len(stub.requests), 1, "RT got one POST")
        if len(won) == 1 and len(lost) == 1:
            loser = lost[0]
            self.check_reply(got[loser], "end", r"^451 4\.3\.0 .*being delivered",
                             f"MX {mxs[loser].name}, the concurrent session")
            self.check_log(mxs[loser].milter, r"being delivered by another session/host",
                           "the claim held by the other host")
            hist = self.retry_alternating(m, got[loser], mxs, first_mx=loser)
            self.check(self.assertTrue, hist[-1].accepted, "the retry: 250")
        self.check(self.assertEqual, len(stub.requests), 1,
                   "the retry was posted again, not recognised as a duplicate")
        if stub.requests:
            self.check_posted(stub.requests[0], m, GENERAL)
        dup_logged = any("delivered earlier: duplicate journal" in mx.milter.log() for mx in mxs)
        self.check(self.assertTrue, dup_logged, "no rt-milter logged the retry as a duplicate")
        self.finish("2MX: same message to both hosts at once", stub, mxs)

    def test_07_postgresql_stopped_mid_load(self):
        """Eight messages, one after the other, through MX A; PostgreSQL is
        stopped (the fixture's pause, by its recorded pid) after the 2nd and
        started again after the 5th: those sent meanwhile get 451 and MX A
        logs "duplicate journal unavailable"; nothing is posted without the
        journal; after the restart the retries (alternating A/B) deliver
        each exactly once, rt-milter never restarted; a last message
        through MX A is delivered by A (bounded: a 1 s back-off after a
        failed connect)."""
        n, stop_after, start_after = 8, 2, 5
        stub = self.start_stub()
        mxs = self.start_two(stub, timeout=5)
        pids = [mx.milter.pid for mx in mxs]
        msgs = [self.new_message("2mx-pgdown") for _ in range(n)]
        firsts = []
        paused = False
        try:
            for i, m in enumerate(msgs):
                if i == stop_after:
                    pg_server("pause")
                    paused = True
                    say("PostgreSQL stopped")
                if i == start_after:
                    pg_server("resume")
                    paused = False
                    say("PostgreSQL started again")
                firsts.append(self.send_to(mxs[0], m))
        finally:
            if paused:
                pg_server("resume")
        for i, a in enumerate(firsts):
            if stop_after <= i < start_after:
                self.check_reply(a, "end", r"^451 ", f"message {i + 1}, PostgreSQL down")
            elif i < stop_after:
                self.check_reply(a, "end", r"^250 ", f"message {i + 1}, PostgreSQL up")
        self.check_log(mxs[0].milter, r"duplicate journal unavailable",
                       "the journal outage")
        during = [r for r in stub.requests
                  if self.message_of(r) in msgs[stop_after:start_after]]
        self.check(self.assertEqual, len(during), 0, "posted without the journal")
        for m, a in zip(msgs, firsts):
            self.retry_alternating(m, a, mxs)
        self.check(self.assertEqual, [mx.milter.pid for mx in mxs], pids,
                   "an rt-milter was restarted")
        self.check(self.assertTrue, all(mx.milter.proc.poll() is None for mx in mxs),
                   "an rt-milter died")
        # MX A itself uses the journal again (after its back-off), bounded.
        after = self.new_message("2mx-pgdown-after")
        deadline = time.monotonic() + RESUME_BOUND
        while True:
            a = self.send_to(mxs[0], after)
            if a.accepted or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.check_reply(a, "end", r"^250 ", "MX A after PostgreSQL is back")
        self.check_all_posted(stub, GENERAL)
        self.finish("2MX: PostgreSQL stopped mid-load", stub, mxs)


if __name__ == "__main__":
    unittest.main()
