"""test_metrics_daemon — the real rt-milter's metrics listener (issue 13)
through a private Postfix (packaging/postfix-sandbox) in front of the
scripted RT stand-in (tests/relay/rt_stub.py), with the faults suite's
harness (tests/faults/faults_harness.py):

- the counters of a scrape match what the test sent (accepted, tempfailed,
  duplicates the journal stopped, POSTs by outcome, posted sizes), the
  exposition passes `promtool check metrics`, its families are those of
  tests/monitoring/metrics_contract.py (the dashboard's and the alerts'
  contract) and nothing else, and `rt-milter --status` says the same;
- /healthz answers 200, flips to 503 naming the journal while another
  process holds the SQLite journal's write lock (what a restart would meet),
  and back to 200 when it lets go; 503 when the milter socket's file is gone;
- scraping every 50 ms while 4 clients send 40 messages disturbs nothing:
  every message 250 and posted once, every scrape 200.

Owns only these checks; starts its own stub, rt-milter and Postfix per
test and stops them by pid (the harness's cleanup)."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(REPO, "tests", "faults"))
sys.path.insert(0, os.path.join(REPO, "tests", "monitoring"))

from faults_harness import (RT_MILTER, FaultCase, Reply, free_loopback_port,  # noqa: E402
                            wait_for)
from metrics_contract import CONTRACT  # noqa: E402

PROMTOOL = "/usr/bin/promtool"


def http_get(url: str, timeout: float = 10.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def sample(text: str, series: str) -> float:
    """The value of one series line, e.g. 'rt_milter_transactions_total{verdict="accepted"}'."""
    m = re.search(r"^" + re.escape(series) + r" (\S+)$", text, re.M)
    if not m:
        raise AssertionError(f"no series {series} in the scrape:\n{text[:3000]}")
    return float(m.group(1))


class MetricsDaemon(FaultCase):

    def start_all(self, *script, **milter_kw):
        self.metrics_port = free_loopback_port()
        self.base = f"http://127.0.0.1:{self.metrics_port}"
        self.stub = self.start_stub(*script)
        self.milter = self.start_milter(self.stub.url, extra=[f'metrics = "127.0.0.1:{self.metrics_port}"'],
                                        **milter_kw)
        self.start_postfix(self.milter)

    def scrape(self) -> str:
        status, body = http_get(self.base + "/metrics")
        self.assertEqual(status, 200, body)
        return body

    def test_counters_match_what_was_sent(self):
        # 3 taken, then RT answers 500 twice (2 tempfailed), then ok again
        self.start_all(Reply(200, b"ok\n"), Reply(200, b"ok\n"), Reply(200, b"ok\n"),
                       Reply(500, b"busy\n"), Reply(500, b"busy\n"))
        first = [self.new_message(f"m{i}") for i in range(3)]
        for m in first:
            self.assertTrue(self.send(m).accepted)
        for i in range(2):
            a = self.send(self.new_message(f"t{i}"))
            self.assertEqual((a.stage, a.code), ("end", 451), a.line())
        # the same bytes again: the journal says RT has them; nothing posted
        for m in first[:2]:
            self.assertTrue(self.send(m).accepted)
        self.assertEqual(len(self.stub.complete_requests()), 5)

        text = self.scrape()
        want = {
            'rt_milter_transactions_total{verdict="accepted"}': 5,
            'rt_milter_transactions_total{verdict="tempfailed"}': 2,
            'rt_milter_transactions_total{verdict="rejected"}': 0,
            'rt_milter_journal_duplicates_total': 2,
            'rt_milter_posts_total{server="rt",outcome="ok"}': 3,
            'rt_milter_posts_total{server="rt",outcome="temporary_failure"}': 2,
            'rt_milter_posts_total{server="rt",outcome="transport_error"}': 0,
            'rt_milter_post_duration_seconds_count{server="rt"}': 5,
            'rt_milter_posted_message_bytes_count': 5,
            'rt_milter_journal_errors_total': 0,
            'rt_milter_journal_usable': 1,
            'rt_milter_transactions_in_flight': 0,
            'rt_milter_config_generation': 1,
            'rt_milter_circuit_state{server="rt",state="closed"}': 1,
            'rt_milter_post_slots{server="rt"}': 16,
        }
        got = {k: sample(text, k) for k in want}
        self.assertEqual(got, {k: float(v) for k, v in want.items()})

        # the exposition format, as Prometheus's own tool reads it
        check = subprocess.run([PROMTOOL, "check", "metrics"], input=text, text=True,
                               capture_output=True, timeout=60)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        # the families are the contract the dashboard and the alerts use
        families = set(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
        self.assertEqual({name for name, _ in families}, set(CONTRACT))
        self.assertEqual(dict(families), {n: t for n, (t, _) in CONTRACT.items()})

        # rt-milter --status says the same, for a person
        st = subprocess.run([RT_MILTER, "--status", "-c", self.milter.config_path],
                            capture_output=True, text=True, timeout=30)
        self.assertEqual(st.returncode, 0, st.stdout + st.stderr)
        for line in ("healthy", "configuration " + self.milter.config_path + ", generation 1",
                     "server rt: circuit closed, 0 of 16 connection(s) in use, 0 waiting",
                     "posts since start: ok 3, not ok 0, temporary failure 2, transport error 0, timeout 0",
                     "since start: 5 accepted, 2 tempfailed, 0 rejected",
                     "journal since start: 2 duplicate(s) stopped, 0 in doubt, 0 error(s)"):
            self.assertIn(line, st.stdout)
        self.assertRegex(st.stdout, r"last error: \d{4}-\d\d-\d\d .*500")
        self.assertIn("metrics on http://127.0.0.1:%d/metrics" % self.metrics_port, self.milter.log())

    def test_healthz_follows_the_journal_and_the_socket(self):
        self.start_all()
        status, body = http_get(self.base + "/healthz")
        self.assertEqual((status, body), (200, "ok: configuration loaded, socket listening, journal usable\n"))
        # another process (an operator's sqlite3 shell, say) holds the write lock
        db = sqlite3.connect(self.milter.journal, isolation_level=None, timeout=10)
        db.execute("BEGIN EXCLUSIVE")
        try:
            status, body = http_get(self.base + "/healthz")
            self.assertEqual(status, 503, body)
            self.assertEqual(body, f"unhealthy: journal unusable: {self.milter.journal} takes no writes: "
                                   "database is locked\n")
            self.assertIn("\nrt_milter_journal_usable 0\n", self.scrape())
        finally:
            db.execute("ROLLBACK")
            db.close()
        status, body = http_get(self.base + "/healthz")
        self.assertEqual(status, 200, body)
        # and delivery works as before
        self.assertTrue(self.send(self.new_message("after")).accepted)
        # the socket's file removed (a cleaner of /run): the MTA cannot connect
        os.rename(self.milter.address, self.milter.address + ".away")
        try:
            status, body = http_get(self.base + "/healthz")
            self.assertEqual(status, 503, body)
            self.assertIn("the milter socket " + self.milter.address + " is gone", body)
            st = subprocess.run([RT_MILTER, "--status", "-c", self.milter.config_path],
                                capture_output=True, text=True, timeout=30)
            self.assertEqual(st.returncode, 1, st.stdout + st.stderr)
            self.assertIn("UNHEALTHY: the milter socket", st.stdout)
        finally:
            os.rename(self.milter.address + ".away", self.milter.address)
        self.assertEqual(http_get(self.base + "/healthz")[0], 200)

    def test_scrapes_under_load_disturb_nothing(self):
        self.start_all()
        messages = [self.new_message(f"load{i}") for i in range(40)]
        results: dict = {}
        scrapes: list = []
        stop = threading.Event()

        def scraper():
            deadline = time.monotonic() + 120
            while not stop.is_set() and time.monotonic() < deadline:
                t0 = time.monotonic()
                status, body = http_get(self.base + "/metrics")
                scrapes.append((status, time.monotonic() - t0, body))
                time.sleep(0.05)

        def client(batch):
            for m in batch:
                results[m.msgid] = self.send(m)

        s = threading.Thread(target=scraper)
        s.start()
        clients = [threading.Thread(target=client, args=(messages[i::4],)) for i in range(4)]
        for c in clients:
            c.start()
        for c in clients:
            c.join(300)
        stop.set()
        s.join(30)
        self.assertEqual([m.msgid for m in messages if not results[m.msgid].accepted], [])
        self.assertGreater(len(scrapes), 10)
        self.assertEqual([st for st, _, _ in scrapes if st != 200], [])
        self.assertLess(max(sec for _, sec, _ in scrapes), 5.0, "a scrape took seconds")
        final = self.scrape()
        self.assertEqual(sample(final, 'rt_milter_transactions_total{verdict="accepted"}'), 40)
        self.assertEqual(sample(final, 'rt_milter_posts_total{server="rt",outcome="ok"}'), 40)
        # a scrape taken mid-load saw work in progress and stays consistent
        counts = [sample(b, 'rt_milter_transactions_total{verdict="accepted"}') for _, _, b in scrapes]
        self.assertEqual(counts, sorted(counts), "a counter went down between scrapes")
        # For the record (RTM_METRICS_DUMP=FILE): the busiest scrape, and --status after.
        if os.environ.get("RTM_METRICS_DUMP"):
            busiest = max(scrapes, key=lambda x: (
                0 < sample(x[2], 'rt_milter_transactions_total{verdict="accepted"}') < 40,
                sample(x[2], "rt_milter_transactions_in_flight")))
            st = subprocess.run([RT_MILTER, "--status", "-c", self.milter.config_path],
                                capture_output=True, text=True, timeout=30)
            with open(os.environ["RTM_METRICS_DUMP"], "w") as fh:
                fh.write(busiest[2] + "\n# --- rt-milter --status ---\n" + st.stdout)
        self.conclude("metrics: 40 messages, 4 clients, scraped every 50 ms", self.milter, stubs=[self.stub])


    def test_a_taken_port_stops_the_start(self):
        import socket
        from faults_harness import FaultMilter
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            milter = FaultMilter(self.work, "http://127.0.0.1:9", extra=[f'metrics = "127.0.0.1:{port}"'])
            milter.address = os.path.join(self.work, "rt-milter.sock")
            milter.socket_spec = "unix:" + milter.address
            milter.write_config()
            check = subprocess.run([RT_MILTER, "--check-config", "-c", milter.config_path],
                                   capture_output=True, text=True, timeout=60)
            run = subprocess.run([RT_MILTER, "-c", milter.config_path, "--log-stderr"],
                                 capture_output=True, text=True, timeout=60)
        # --check-config says so first (a note: it may be the running daemon)
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertIn(f"metrics 127.0.0.1:{port}: in use: a process answers on it", check.stderr)
        self.assertEqual(run.returncode, 73, run.stderr)
        self.assertIn(f"metrics 127.0.0.1:{port}: cannot listen there: Address already in use", run.stderr)
        self.assertFalse(os.path.exists(milter.address), "the milter socket was left behind")

if __name__ == "__main__":
    unittest.main()
