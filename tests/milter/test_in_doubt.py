"""test_in_doubt — the real rt-milter settling an in-doubt copy with RT's
REST2 API (issue 12, item 2), through miltertest and the RT stub; and its
online check at start (item 3), logged.

Owns: one rt-milter with a duplicate journal and a rest2_token_file, one
stub playing RT's mail gateway and REST2 in arrival order: the first try's
POST is never answered (in doubt, 451); on the client's retry rt-milter asks
REST2 (attachments by MessageId, then attachment, transaction, ticket,
queue) and, RT having the message in the route's queue, posts nothing and
accepts; RT not having it, posts again; REST2 failing, answers 451 again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import unittest

from milter_harness import (GATEWAY_PATH, HERE, RT_MILTER, SENDER,
                            MilterTestCase, run_miltertest, write_config)
from rt_stub import Hang, Reply

TOKEN = "1-23-0123456789abcdef0123456789abcdef"
MESSAGE_ID = "rt-milter-test-1@example.org"  # message.eml's, as RT stores it


def rest2(body: dict, status: int = 200) -> Reply:
    return Reply(status, json.dumps(body).encode(),
                 content_type="application/json")


SEARCH_HIT = rest2({"count": 1, "total": 1, "page": 1, "per_page": 20,
                    "items": [{"type": "attachment", "id": "123",
                               "_url": "x"}]})
SEARCH_NONE = rest2({"count": 0, "total": 0, "page": 1, "per_page": 20,
                     "items": []})
FOLLOW_HIT = (
    rest2({"id": 123, "TransactionId": {"type": "transaction", "id": "77"}}),
    rest2({"id": 77, "ObjectType": "RT::Ticket",
           "Object": {"type": "ticket", "id": "45"}}),
    rest2({"id": 45, "EffectiveId": {"type": "ticket", "id": "45"},
           "Queue": {"type": "queue", "id": "3"}}),
    rest2({"id": 3, "Name": "General"}),
)


# The daemon's online check at start (servers with a token): GET rt, then
# each distinct queue of ROUTES (General, Bugs, Ops), all there; it logs one
# "online check:" line per answer.
STARTUP_CHECK = (rest2({"Version": "5.0.3"}),
                 rest2({"id": 1, "Name": "General"}),
                 rest2({"id": 2, "Name": "Bugs"}),
                 rest2({"id": 3, "Name": "Ops"}))


class InDoubtWithRest2(MilterTestCase):

    def run_twice(self, *rest2_answers):
        token = os.path.join(self.workdir, "rest2.token")
        with open(os.open(token, os.O_WRONLY | os.O_CREAT, 0o600), "w") as fh:
            fh.write(TOKEN + "\n")
        stub = self.start_stub(*STARTUP_CHECK, Hang(), *rest2_answers)
        milter = self.start_milter(
            stub.url, timeout=1,
            journal=os.path.join(self.workdir, "journal.sqlite"),
            **{"rt.rest2_token_file": token})
        deadline = time.monotonic() + 10
        while milter.log().count("online check: ") < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("online check: server rt (" + stub.url + "): reachable, token "
                      "accepted (RT 5.0.3)", milter.log())
        self.assertIn("queue Bugs exists", milter.log())
        skip = len(stub.requests)  # the start-up check's
        runs = []
        for qid, want in (("4DOUBT1", "tempfail"), ("4DOUBT2", None)):
            params = {"SOCKET": milter.socket_spec, "TESTDIR": HERE,
                      "SENDER": SENDER, "QID": qid,
                      "RT_RCPTS": "<rt@example.com>", "WANT": want or self.want}
            runs.append(run_miltertest("answer.lua", params))
        self.assertEqual(milter.stop(), 0, milter.log())
        stub.quiesce(5.0)
        for run in runs:
            self.assertEqual(run.rc, 0, run.describe() + milter.log())
        return stub.requests[skip:], milter

    def paths(self, requests):
        return [(r.method, r.path) for r in requests]

    def test_rt_has_it_nothing_posted_again(self):
        self.want = "accept"
        requests, milter = self.run_twice(SEARCH_HIT, *FOLLOW_HIT)
        self.assertEqual(self.paths(requests), [
            ("POST", GATEWAY_PATH),
            ("POST", "/REST/2.0/attachments"),
            ("GET", "/REST/2.0/attachment/123"),
            ("GET", "/REST/2.0/transaction/77"),
            ("GET", "/REST/2.0/ticket/45"),
            ("GET", "/REST/2.0/queue/3")])
        search = requests[1]
        self.assertIn(("authorization", "token " + TOKEN),
                      [(k.lower(), v) for k, v in search.headers])
        self.assertEqual(json.loads(search.body), [
            {"field": "MessageId", "operator": "=", "value": MESSAGE_ID}])
        line = milter.summary_lines("4DOUBT2")[0]
        self.assertIn("in doubt: RT has it (attachment 123 on ticket 45)", line)
        self.assertNotIn(TOKEN, milter.log())

    def test_not_in_rt_posted_again(self):
        self.want = "accept"
        requests, milter = self.run_twice(SEARCH_NONE)
        self.assertEqual(self.paths(requests), [
            ("POST", GATEWAY_PATH), ("POST", "/REST/2.0/attachments"),
            ("POST", GATEWAY_PATH)])
        self.assertIn("in doubt: not in RT (no attachment with this "
                      "Message-ID), posting again",
                      milter.summary_lines("4DOUBT2")[0])

    def test_rest2_failing_is_451_and_nothing_posted(self):
        self.want = "tempfail"
        requests, milter = self.run_twice(rest2({"message": "oops"}, 500))
        self.assertEqual(self.paths(requests), [
            ("POST", GATEWAY_PATH), ("POST", "/REST/2.0/attachments")])
        self.assertIn("in doubt: RT REST2 did not answer (",
                      milter.summary_lines("4DOUBT2")[0])


class OnlineCheck(MilterTestCase):
    """Item 3: a route's queue RT does not have, found before mail arrives:
    by --check-config --online (exit 69), and by the daemon at start and on
    reload (a warning naming the route and the queue)."""

    ANSWERS = (rest2({"Version": "5.0.3"}), rest2({"id": 1, "Name": "General"}),
               rest2({"message": "Not Found"}, 404), rest2({"id": 3, "Name": "Ops"}))
    MISSING = ("online check: route bugs@example.com (", "): queue Bugs does not "
               "exist in RT rt (or the token's user may not see it)")

    def token_file(self):
        path = os.path.join(self.workdir, "rest2.token")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as fh:
            fh.write(TOKEN + "\n")
        return path

    def test_check_config_online_names_route_and_queue(self):
        stub = self.start_stub(*self.ANSWERS)
        config = os.path.join(self.workdir, "c.toml")
        write_config(config, "unix:" + os.path.join(self.workdir, "s.sock"),
                     stub.url, os.path.join(self.workdir, "spool"),
                     **{"rt.rest2_token_file": self.token_file()})
        run = subprocess.run([RT_MILTER, "--check-config", "--online", "-c", config],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 69, run.stdout + run.stderr)
        self.assertIn("online: server rt (" + stub.url + "): reachable, token accepted "
                      "(RT 5.0.3)", run.stdout)
        self.assertIn("queue General exists", run.stdout)
        self.assertIn("rt-milter: online: route bugs@example.com (", run.stderr)
        self.assertIn(self.MISSING[1], run.stderr)
        self.assertNotIn(TOKEN, run.stdout + run.stderr)
        self.assertEqual([(r.method, r.path) for r in stub.requests], [
            ("GET", "/REST/2.0/rt"), ("GET", "/REST/2.0/queue/General"),
            ("GET", "/REST/2.0/queue/Bugs"), ("GET", "/REST/2.0/queue/Ops")])

    def test_daemon_warns_at_start_and_on_reload(self):
        stub = self.start_stub(*self.ANSWERS, *self.ANSWERS)
        milter = self.start_milter(stub.url, **{"rt.rest2_token_file": self.token_file()})

        def warnings(n):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                lines = [l for l in milter.log().splitlines()
                         if "warning: " + self.MISSING[0] in l and self.MISSING[1] in l]
                if len(lines) >= n:
                    return lines
                time.sleep(0.05)
            self.fail(milter.log())

        warnings(1)
        milter.proc.send_signal(signal.SIGUSR1)
        warnings(2)
        self.assertEqual(milter.stop(), 0, milter.log())
        self.assertNotIn(TOKEN, milter.log())


if __name__ == "__main__":
    unittest.main()
