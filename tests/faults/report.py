#!/usr/bin/env python3
"""report — runs the fault-injection scenarios (tests/faults/test_faults.py)
and prints the table "scenario | messages sent | delivered once | duplicated
| lost", plus the 200 MB figures. Owns only its temporary table file.

  python3 report.py [-j N] [-k PATTERN]   run (N scenarios at a time, default
                                          2; -k: only test ids containing it)
  python3 report.py --table FILE          print FILE's rows (ctest writes
                                          build/faults/table.jsonl)

$RT_MILTER picks the binary (default build/bin/rt-milter). Exit 0 when every
scenario passed.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from faults_harness import format_table, read_table  # noqa: E402

PER_TEST_BOUND = 300       # s, as the slowest ctest timeout


def test_ids() -> list:
    suite = unittest.defaultTestLoader.loadTestsFromName("test_faults")

    def flat(s):
        for t in s:
            yield from (flat(t) if isinstance(t, unittest.TestSuite) else [t])
    return sorted(t.id() for t in flat(suite))


def run_one(test_id: str, table: str) -> tuple:
    env = dict(os.environ, FAULTS_TABLE=table, PYTHONDONTWRITEBYTECODE="1")
    t0 = time.monotonic()
    try:
        r = subprocess.run([sys.executable, "-m", "unittest", test_id], cwd=HERE,
                           env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=PER_TEST_BOUND)
        ok, out = r.returncode == 0, r.stderr
    except subprocess.TimeoutExpired as e:
        ok, out = False, f"{test_id}: over {PER_TEST_BOUND} s\n{e.stderr or ''}"
    return test_id, ok, time.monotonic() - t0, out


def show(rows: list) -> None:
    print(format_table(rows))
    for r in rows:
        x = r.get("extra") or {}
        if "peak_rss_kb" in x:
            print(f"\n{r['scenario']}: {x['bytes']} bytes delivered byte-exact, "
                  f"{x['seconds']} s through Postfix + rt-milter, rt-milter peak RSS "
                  f"{x['peak_rss_kb']} kB ({(x['peak_rss_kb'] or 0) / 1024:.1f} MiB)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-j", type=int, default=2)
    ap.add_argument("-k", default="")
    ap.add_argument("--table")
    args = ap.parse_args()
    if args.table:
        show(read_table(args.table))
        return 0
    ids = [i for i in test_ids() if args.k in i]
    with tempfile.TemporaryDirectory(prefix="faults-report-") as d:
        table = os.path.join(d, "table.jsonl")
        t0 = time.monotonic()
        with ThreadPoolExecutor(max(1, args.j)) as pool:
            results = list(pool.map(lambda i: run_one(i, table), ids))
        failed = [(i, out) for i, ok, _, out in results if not ok]
        for i, ok, secs, _ in results:
            print(f"{'PASS' if ok else 'FAIL'} {i} ({secs:.1f} s)")
        for i, out in failed:
            print(f"\n===== {i} =====\n{out[-6000:]}")
        print(f"\n{len(ids) - len(failed)}/{len(ids)} passed in "
              f"{time.monotonic() - t0:.0f} s\n")
        show(read_table(table))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
