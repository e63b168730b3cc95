"""test_reload — rt-milter's SIGUSR1 reload, end to end (Postfix only): while
concurrent SMTP clients send a bounded batch of uniquely-subjected messages
through Postfix to rt@, rt-milter is reloaded over and over, alternating
between two valid configurations that differ harmlessly; every message must
get 250 and become exactly one ticket. A broken configuration must be
refused with its file:line:col, and the running one must keep working.
Each test starts its own Postfix + rt-milter (E2E_DIR/reload,
E2E_DIR/badreload), so its signals disturb no other test.
"""

import collections
import os
import re
import sys
import threading
import time
import unittest

from e2e_harness import RT_DOMAIN, E2ECase, swaks, wait_for

RT = f"rt@{RT_DOMAIN}"
MESSAGES = 40            # sent under reloads
CLIENTS = 4              # concurrent swaks loops
RELOAD_EVERY = 0.3       # s between one reload's log line and the next signal
MIN_RELOADS = 3          # reloads the batch cannot finish without (see client())
RELOAD_BOUND = 10        # s for one reload to be logged
LOAD_BOUND = 150         # s for the whole batch
MAX_RELOADS = 400
EXTRA_ROUTE = f'\n[[route]]\naddress = "unrelated@{RT_DOMAIN}"\nqueue = "General"\n'


class Postfix(E2ECase):
    TIMEOUT = 240

    # ----- configuration files and reloads ---------------------------------
    def write_config(self, text: str) -> None:
        path = self.pair.milter.config_path
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)  # rt-milter never reads half a file

    def log_matches(self, regex: str) -> list:
        return re.findall(regex, self.pair.milter_log(), re.M)

    def reloads(self) -> list:
        """Route counts of the successful reloads rt-milter logged."""
        path = re.escape(self.pair.milter.config_path)
        return self.log_matches(rf"^rt-milter: reloaded {path}: (\d+) route\(s\)$")

    def failed_reloads(self) -> list:
        path = re.escape(self.pair.milter.config_path)
        return self.log_matches(
            rf"^rt-milter: error: reload of {path} failed; the running configuration stays$")

    def reload(self, text: str, logged) -> None:
        """Write text, SIGUSR1, and wait (bounded) until logged() grows."""
        before = len(logged())
        self.write_config(text)
        self.pair.reload()
        self.assertTrue(wait_for(lambda: len(logged()) > before, RELOAD_BOUND),
                        f"reload not logged within {RELOAD_BOUND} s:\n"
                        + self.pair.milter_log()[-3000:])

    # ----- the tests ----------------------------------------------------------
    def test_reload_under_load(self):
        mta = self.own_pair("reload", "postfix")
        with open(self.pair.milter.config_path) as f:
            plain = f.read()
        variants = (plain + EXTRA_ROUTE, plain)   # 7 routes, 6 routes
        tok = self.token()
        subjects = [f"{tok} load {i:02d}" for i in range(MESSAGES)]
        results = [None] * MESSAGES
        gate = threading.Condition()   # guards logged[0] (reloads logged), over[0]
        logged, over = [0], [False]

        def client(k):
            # Message i waits for reload ceil(i * MIN_RELOADS / MESSAGES) to be
            # logged, so the batch cannot end before MIN_RELOADS reloads,
            # however fast the messages or slow the reloads (a loaded machine).
            for i in range(k, MESSAGES, CLIENTS):
                need = -(-i * MIN_RELOADS // MESSAGES)
                with gate:
                    gate.wait_for(lambda: logged[0] >= need or over[0], LOAD_BOUND)
                    if over[0]:
                        return
                results[i] = swaks(mta.port, RT, subjects[i])
        threads = [threading.Thread(target=client, args=(k,), daemon=True)
                   for k in range(CLIENTS)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        done = 0
        try:
            while (any(t.is_alive() for t in threads) and done < MAX_RELOADS
                   and time.monotonic() - t0 < LOAD_BOUND):
                self.reload(variants[done % 2], self.reloads)
                done += 1
                with gate:
                    logged[0] = done
                    gate.notify_all()
                time.sleep(RELOAD_EVERY)
        except BaseException:
            with gate:   # a reload failed: the clients send nothing more
                over[0] = True
                gate.notify_all()
            raise
        for t in threads:
            t.join(max(0.1, LOAD_BOUND - (time.monotonic() - t0)))
        seconds = time.monotonic() - t0
        self.assertFalse(any(t.is_alive() for t in threads),
                         f"clients still sending after {LOAD_BOUND} s")

        refused = [(subjects[i], r.data_reply() if r else None)
                   for i, r in enumerate(results)
                   if not r or not re.match(mta.QUEUE_ID_IN_REPLY, r.data_reply() or "")]
        counts = collections.Counter(self.search(tok).values())
        lost = [s for s in subjects if counts[s] == 0]
        duplicated = [s for s in subjects if counts[s] > 1]
        strangers = set(counts) - set(subjects)
        print(f"\nreload under load: {MESSAGES} sent by {CLIENTS} clients in {seconds:.1f} s, "
              f"{MESSAGES - len(refused)} got 250, "
              f"{sum(1 for s in subjects if counts[s] == 1)} delivered once, "
              f"{len(duplicated)} duplicated, {len(lost)} lost, {done} reloads",
              file=sys.stderr)
        self.assertEqual(refused, [], "every message gets 250")
        self.assertEqual((lost, duplicated, strangers), ([], [], set()))

        # rt-milter logged every reload, alternating 7 and 6 routes, and the
        # reloads happened while messages were going through
        self.assertGreaterEqual(done, MIN_RELOADS, "several reloads under load")
        self.assertEqual(self.reloads(), ["7", "6"] * (done // 2) + ["7"] * (done % 2))
        self.assertEqual(self.failed_reloads(), [])
        qids = [re.match(mta.QUEUE_ID_IN_REPLY, r.data_reply()).group(1) for r in results]
        for qid in qids:
            self.assertIn("(delivered, RT said: ok", self.summary(qid))
        log = self.pair.milter_log().splitlines()
        line_of = {l.split(":")[1].strip(): n for n, l in enumerate(log)
                   if re.match(r"rt-milter: [0-9A-F]+: from=", l)}
        reload_lines = [n for n, l in enumerate(log) if l.startswith("rt-milter: reloaded ")]
        between = [q for q in qids if reload_lines[0] < line_of[q] < reload_lines[-1]]
        self.assertTrue(between, "no message went through between the first and last reload")

    def test_broken_config_keeps_running_one(self):
        self.own_pair("badreload", "postfix")
        path = self.pair.milter.config_path
        with open(path) as f:
            good = f.read()
        broken = {
            "syntax": ("socket = \n", r":1:10: Error while parsing"),
            "value": (good.replace('extension = "ticket"', 'extension = "tickets"'),
                      r':\d+:\d+: route\[1\]\.extension: must be one of'),
        }
        for name, (text, error) in broken.items():
            with self.subTest(name):
                self.reload(text, self.failed_reloads)
                self.assertTrue(self.log_matches(rf"^rt-milter: error: reload: {re.escape(path)}{error}"),
                                self.pair.milter_log()[-2000:])
                # the configuration loaded before the bad file still routes rt@
                tok = self.token()
                sent, qid = self.send_ok(RT, f"{tok} after a bad reload")
                self.the_ticket(tok)
                self.assertIn(f"rt=<{RT}> -> rt queue=General action=correspond (delivered",
                              self.summary(qid))
        self.assertEqual(self.reloads(), [])
        self.reload(good + EXTRA_ROUTE, self.reloads)  # and a good file is taken again
        self.assertEqual(self.reloads(), ["7"])


if __name__ == "__main__":
    unittest.main()
