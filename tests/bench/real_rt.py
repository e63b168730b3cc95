#!/usr/bin/env python3
# real_rt.py — the real-RT stage of the benchmark (issue 15, part 2), run by
# tests/bench/run after bench.py. It owns one private PostgreSQL
# (tests/pg/pg_server.py), one real RT 5 on it with W Starlet workers
# (packaging/rt-sandbox --database pg --workers W), a fresh Postfix sandbox
# per measured configuration and the load clients; it measures, on loopback
# only, tickets created per second by:
#
#   rt-direct   N client threads POSTing straight to RT's mail gateway, as
#               rt-mailgate does (multipart/form-data: queue, action, message
#               without a filename): RT's own ceiling is the best N
#   rt-milter   Postfix + rt-milter (bench.py's milter-unix configuration,
#               its rt-milter.toml with [rt] url = this RT and
#               max_concurrent = M), smtp-source with max(8, 2M) sessions
#   perl-pipe   Postfix pipe(8) to Debian's Perl /usr/bin/rt-mailgate
#               (bench.py's perl-pipe; Postfix's own delivery concurrency)
#
# Every message is ~1 KB with its own Message-ID and one sender per run, so
# RT auto-creates one requestor per run whichever row it is. Tickets are
# counted twice where both exist: RT's "ok" answers (rt-direct) and the
# Tickets table (psql over the server's private socket); they must agree.
# That count runs every 50 ms during every measured run, direct or not, so
# that each row carries the same harness load on RT's PostgreSQL.
# RT's database is fresh per whole run; tickets accumulate across the sweep.
# The plan (direct and milter levels alternating, the pipe last) runs in
# rounds (four: an even number), alternately forwards and backwards, so
# that drift of a shared machine and of the growing database hits every row
# alike, each pair in both orders equally often; each row's
# median round counts, the ceiling included (the best of one round is the
# luckiest spell of a shared machine, not RT's ceiling). RT is warmed once (2W tickets; its
# workers are not replaced during the run: --max-requests), each
# fresh Postfix with one message per session, neither measured. CPU of the
# system under test (RT, PostgreSQL, Postfix, the gateway; not the clients)
# is counted per ticket in bench.py's cgroups when the machine has them.
# Output: one markdown table on stdout, OUT/real_rt.json and OUT/real_rt.md.
# Every process started here is stopped by pid (try/finally); every wait is
# bounded.
# It must not edit bench.py's figures or files: it only imports its classes.

import argparse
import datetime
import http.client
import json
import os
import secrets
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no root-owned __pycache__ beside the scripts
import bench  # noqa: E402  (Gateway, Postfix, free_port, wait_for, stop_pid, ...)

TOP = bench.TOP
RT_SANDBOX = os.path.join(TOP, "packaging", "rt-sandbox")
PG_SERVER = bench.PG_SERVER
HOST = bench.HOST
RCPT = bench.RCPT
QUEUE = "General"          # the queue of bench.py's route and of postfix-sandbox's rt@
RT_DB = "rt5"
# W: RT's Starlet workers. Two per core: a ticket creation is mostly Perl on
# the CPU, but each one also waits on PostgreSQL (another process), on its
# commit and on forking the AutoReply's sendmail, so one worker per core
# leaves a core idle in those waits; many more only add memory (~200 MB
# each) and contention on two cores.
DEFAULT_WORKERS = 4
# Requests a Starlet worker serves before it is replaced. Starlet's own
# default is 100: every 100 tickets a worker exits and a fresh one forks, opens
# its own PostgreSQL connection (a fresh backend) and warms up again, so RT's
# one warm-up would not hold and those warm-ups (4 at a time, as the workers
# share the load evenly) would land in whichever rows happen to run then.
MAX_REQUESTS = 1000000
SWEEP_N = "1,2,4,8"         # client threads straight to RT (8 = 2W: past saturation)
SWEEP_M = "1,2,4,8"         # rt-milter's max_concurrent
QUICK_N = "2,4,8"
QUICK_M = "1,2,4"
MESSAGES, QUICK_MESSAGES = 100, 30   # per run
ROUNDS, QUICK_ROUNDS = 4, 1  # even: each pair of rows runs in both orders alike
TARGET = 0.95
MESSAGE_BYTES = 1024
POST_TIMEOUT = 180.0       # s for one POST (rt-mailgate's default timeout)
RUN_BOUND = 600.0          # s for one measured run
POLL = 0.05                # s between ticket counts while mail flows
COUNT_BOUND = 30.0         # s for one ticket count
BOUNDARY = "xYzZYrealRT"


def say(msg):
    print(f"real-rt: {msg}", flush=True)


# ---------------------------------------------------------------------------
# PostgreSQL and RT
class Database:
    """tests/pg/pg_server.py's private server, plus a superuser role with a
    password for rt-setup-database (--dba) over loopback TCP."""

    def __init__(self, work):
        self.state = os.path.join(work, "pg")
        self.counter = None

    def start(self, cpu):
        subprocess.run([sys.executable, PG_SERVER, "start", self.state], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, preexec_fn=cpu.sut_preexec(), timeout=180,
                       check=True)
        with open(os.path.join(self.state, "state.json")) as f:
            info = json.load(f)
        self.bin, self.port = info["bin"], info["port"]
        self.socket = os.path.join(self.state, "socket")
        self.dba, self.dba_password = "rt_dba", secrets.token_hex(12)
        self.rt_user, self.rt_password = "rt_user", secrets.token_hex(12)
        self.sql("postgres", f"CREATE ROLE {self.dba} LOGIN SUPERUSER PASSWORD "
                             f"'{self.dba_password}'")

    def sql(self, db, statement):
        """One statement as the server's superuser over the private socket
        (trust); its output, unaligned."""
        argv = [os.path.join(self.bin, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-h", self.socket, "-p", str(self.port), "-U", "postgres", "-d", db,
                "-c", statement]
        out = subprocess.run(["runuser", "-u", "postgres", "--"] + argv, stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"psql: {statement}: {out.stderr.strip()}")
        return out.stdout.strip()

    def open_counter(self):
        """One psql kept open on RT's database: a count costs well under a
        millisecond, so polling it during a run takes no CPU from RT."""
        argv = [os.path.join(self.bin, "psql"), "-X", "-q", "-A", "-t", "-h", self.socket,
                "-p", str(self.port), "-U", "postgres", "-d", RT_DB]
        self.counter = subprocess.Popen(["runuser", "-u", "postgres", "--"] + argv,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True, bufsize=1)

    def tickets(self):
        """Tickets in RT's database now."""
        self.counter.stdin.write("SELECT count(*) FROM Tickets;\n")
        self.counter.stdin.flush()
        if not select.select([self.counter.stdout], [], [], COUNT_BOUND)[0]:
            raise RuntimeError(f"psql gave no ticket count in {COUNT_BOUND:.0f} s")
        line = self.counter.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"psql's ticket count: {line!r}")
        return int(line)

    def stop(self):
        if self.counter:
            try:
                self.counter.stdin.close()
            except OSError:
                pass
            bench.stop_pid(self.counter, bound=5)
        if not os.path.exists(os.path.join(self.state, "state.json")):
            return  # pg_server.py never got as far as starting it
        subprocess.run([sys.executable, PG_SERVER, "stop", self.state], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, timeout=90)


class RealRt:
    """packaging/rt-sandbox on the Database, W workers; stopped by the pid
    rt-sandbox recorded (rt-sandbox stop)."""

    def __init__(self, work):
        self.dir = os.path.join(work, "rt")

    def start(self, db, workers, cpu, max_requests=None):
        argv = [RT_SANDBOX, "start", self.dir, "--workers", str(workers), "--wait", "180",
                "--database", "pg", "--pg-host", HOST, "--pg-port", str(db.port),
                "--pg-name", RT_DB, "--pg-user", db.rt_user, "--pg-password", db.rt_password,
                "--pg-dba", db.dba, "--pg-dba-password", db.dba_password]
        if max_requests:
            argv += ["--max-requests", str(max_requests)]
        out = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
                             preexec_fn=cpu.sut_preexec(), timeout=400)
        if out.returncode != 0:
            raise RuntimeError(f"rt-sandbox start failed (exit {out.returncode}); "
                               f"see {self.dir}/log")
        self.url = out.stdout.split()[-1]
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self):
        if not os.path.isdir(self.dir):
            return
        subprocess.run([RT_SANDBOX, "stop", self.dir], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, timeout=120)


# ---------------------------------------------------------------------------
# Straight to RT's mail gateway
def message(tag, i, size=MESSAGE_BYTES):
    """The message smtp-source -l SIZE sends (no Subject; lines of a digit and
    78 X's, SIZE bytes of body), with its own Message-Id."""
    now = datetime.datetime.now(datetime.timezone.utc)
    head = (f"From: <bench-{tag}@example.net>\n"
            f"To: <{RCPT}>\n"
            f"Date: {now:%a, %e %b %Y %H:%M:%S} +0000 (UTC)\n"
            f"Message-Id: <{tag}.{i}@bench.example.net>\n\n")
    full, rest = divmod(size, 80)
    body = "".join(f"{(k + 1) % 10}{'X' * 78}\n" for k in range(full))
    return (head + body + ("X" * rest + "\n" if rest else "")).encode()


def form(msg):
    """rt-mailgate's request body: the message without a filename."""
    b = BOUNDARY.encode()
    return (b"--" + b + b"\r\nContent-Disposition: form-data; name=\"message\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n" + msg + b"\r\n"
            b"--" + b + b"\r\nContent-Disposition: form-data; name=\"queue\"\r\n\r\n"
            + QUEUE.encode() + b"\r\n"
            b"--" + b + b"\r\nContent-Disposition: form-data; name=\"action\"\r\n\r\n"
            b"correspond\r\n--" + b + b"--\r\n")


def post(port, body):
    """One POST as rt-mailgate makes it (a connection of its own); RT's
    answer's first line, or the error."""
    conn = http.client.HTTPConnection(HOST, port, timeout=POST_TIMEOUT)
    try:
        conn.request("POST", bench.GATEWAY_PATH, body=body,
                     headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                              "Connection": "close"})
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        return text.split("\n", 1)[0] if resp.status == 200 else f"HTTP {resp.status}"
    except OSError as e:
        return f"{type(e).__name__}: {e}"
    finally:
        conn.close()


def direct_run(rt, db, cpu, clients, n, tag):
    """N client threads POST n messages; wall time from the first POST to
    the last answer (RT answers after its commit)."""
    bodies = [form(message(tag, i)) for i in range(n)]
    lock = threading.Lock()
    nxt = [0]
    answers = {}

    def worker():
        while True:
            with lock:
                if nxt[0] >= n:
                    return
                i = nxt[0]
                nxt[0] += 1
            a = post(rt.port, bodies[i])
            with lock:
                answers[a] = answers.get(a, 0) + 1

    before = db.tickets()
    stop = threading.Event()

    def poller():
        # The same ticket count every POLL as postfix_run makes while mail
        # flows (each costs its PostgreSQL backend ~0.5 ms of CPU, counted
        # in the system under test, and psql as much outside it): without
        # it the through-Postfix rows alone paid for the harness.
        while not stop.wait(POLL):
            db.tickets()

    sut0 = cpu.snapshot()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    counter = threading.Thread(target=poller, daemon=True)
    t0 = time.monotonic()
    counter.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, t0 + RUN_BOUND - time.monotonic()))
    seconds = time.monotonic() - t0
    stop.set()
    counter.join(COUNT_BOUND + 5)
    bounded_out = any(t.is_alive() for t in threads) or counter.is_alive()
    sut_cpu = cpu.delta(sut0, 0.0) if cpu.base else None
    created = db.tickets() - before
    ok = answers.get("ok", 0)
    return {"config": "rt-direct", "level": clients, "messages": n, "tickets": created,
            "ok_answers": ok, "other_answers": {k: v for k, v in answers.items() if k != "ok"},
            "seconds": seconds, "tickets_per_s": created / seconds if seconds > 0 else 0.0,
            "cpu_ms_per_ticket": cpu_ms(sut_cpu, created),
            "ok": not bounded_out and created == n and ok == n}


# ---------------------------------------------------------------------------
# Through Postfix
class RtMilterGateway(bench.Gateway):
    """bench.py's milter-unix, with max_concurrent = M added to its [rt]."""

    def __init__(self, max_concurrent, *a):
        self.max_concurrent = max_concurrent
        super().__init__(*a)

    def _start(self, argv, cpu, ready, log=None):
        toml = argv[argv.index("-c") + 1]
        with open(toml) as f:
            text = f.read()
        if "\n[rt]\n" not in text:
            raise RuntimeError(f"{toml}: no [rt] table to set max_concurrent in")
        text = text.replace("\n[rt]\n", f"\n[rt]\nmax_concurrent = {self.max_concurrent}\n", 1)
        with open(toml, "w") as f:
            f.write(text)
        super()._start(argv, cpu, ready, log)


def postfix_concurrency(postfix):
    """Postfix's delivery concurrency for the rt-correspond pipe: its
    destination concurrency limit, initial window and process limit."""
    conf = os.path.join(postfix.dir, "conf")
    keys = ["rt-correspond_destination_concurrency_limit",
            "rt-correspond_initial_destination_concurrency", "default_process_limit"]
    out = subprocess.run(["postconf", "-c", conf, "-x", "-h"] + keys, capture_output=True, text=True,
                         timeout=30)
    vals = out.stdout.split()
    master = subprocess.run(["postconf", "-c", conf, "-M", "rt-correspond/unix"],
                            capture_output=True, text=True, timeout=30).stdout.split()
    maxproc = master[6] if len(master) > 6 else "?"
    return {"destination_concurrency_limit": vals[0] if vals else "?",
            "initial_destination_concurrency": vals[1] if len(vals) > 1 else "?",
            "pipe_maxproc": maxproc if maxproc != "-" else (vals[2] if len(vals) > 2 else "?")}


def cpu_ms(seconds, tickets):
    return 1000.0 * seconds / tickets if seconds is not None and tickets else None


def postfix_run(cfg, level, db, cpu, postfix, n, sessions, tag):
    """smtp-source sends n messages in `sessions` sessions; the run ends when
    n new tickets exist (bounded); time from the client's start to the
    count that saw the last ticket."""
    before = db.tickets()
    argv = ["smtp-source", "-s", str(sessions), "-m", str(n), "-l", str(MESSAGE_BYTES),
            "-f", f"bench-{tag}@example.net", "-t", RCPT, "-M", "bench.example.net",
            f"{HOST}:{postfix.port}"]
    sut0 = cpu.snapshot()
    t0 = time.monotonic()
    client = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, preexec_fn=cpu.client_preexec())
    last, seen, rc = t0, 0, None
    try:
        while time.monotonic() < t0 + RUN_BOUND:
            if rc is None:
                rc = client.poll()
            c = db.tickets() - before
            if c != seen:
                seen, last = c, time.monotonic()
            if rc is not None and seen >= n:
                break
            time.sleep(POLL)
    finally:
        bench.stop_pid(client, bound=5)
    sut_cpu = cpu.delta(sut0, 0.0) if cpu.base else None
    err = client.stderr.read().decode(errors="replace").strip()
    seconds = last - t0
    r = {"config": cfg, "level": level, "sessions": sessions, "messages": n, "tickets": seen,
         "seconds": seconds, "tickets_per_s": seen / seconds if seconds > 0 else 0.0,
         "cpu_ms_per_ticket": cpu_ms(sut_cpu, seen),
         "client_rc": rc, "client_error": err[-300:], "ok": rc == 0 and seen == n}
    return r


def through_postfix(name, args, work, rt, db, cpu, n, tag, max_concurrent=None):
    standin = type("RealRtUrl", (), {"url": rt.url})()
    gateway = postfix = None
    try:
        if name == "rt-milter":
            gateway = RtMilterGateway(max_concurrent, "milter-unix", args, work, standin, cpu)
            sessions = max(8, 2 * max_concurrent)
        else:
            gateway = bench.Gateway("perl-pipe", args, work, standin, cpu)
            sessions = 8
        postfix = bench.Postfix(work, gateway, cpu)
        # Warm-up, not measured: Postfix spawns its smtpd and cleanup
        # processes, the gateway its connections, as on a running server.
        w = postfix_run(name, max_concurrent, db, cpu, postfix, sessions, sessions, tag + "-w")
        if not w["ok"]:
            return dict(w, messages=n, ok=False, client_error="warm-up: " + w["client_error"])
        r = postfix_run(name, max_concurrent, db, cpu, postfix, n, sessions, tag)
        if name == "perl-pipe":
            r["postfix_concurrency"] = postfix_concurrency(postfix)
        return r
    finally:
        if postfix:
            postfix.stop()
        if gateway:
            gateway.stop()


# ---------------------------------------------------------------------------
# The plan
def schedule(sweep_n, sweep_m, perl):
    """(configuration, level) in the order of one round: rt-direct and
    rt-milter levels alternating, the Perl pipe last."""
    plan = []
    for i in range(max(len(sweep_n), len(sweep_m))):
        plan += [("rt-direct", sweep_n[i])] if i < len(sweep_n) else []
        plan += [("rt-milter", sweep_m[i])] if i < len(sweep_m) else []
    return plan + ([("perl-pipe", None)] if perl else [])


def measure(cfg, level, args, work, rt, db, cpu, n, tag):
    if cfg == "rt-direct":
        return direct_run(rt, db, cpu, level, n, tag)
    return through_postfix(cfg, args, work, rt, db, cpu, n, tag, level)


def level_name(cfg, level):
    return {"rt-direct": f"N={level}", "rt-milter": f"M={level}"}.get(cfg, "")


def summarize(runs):
    """One row per configuration and level: the median of its rounds (of
    the ok ones), the messages and tickets of all its rounds."""
    groups = {}
    for r in runs:
        groups.setdefault((r["config"], r["level"]), []).append(r)
    table = []
    for (cfg, level), rs in groups.items():
        good = [r for r in rs if r["ok"]]
        best = max(good or rs, key=lambda r: r["tickets_per_s"])
        median = statistics.median(r["tickets_per_s"] for r in (good or rs))
        g = {"config": cfg, "level": level, "rounds": len(rs), "ok": len(good) == len(rs),
             "messages": sum(r["messages"] for r in rs), "tickets": sum(r["tickets"] for r in rs),
             "tickets_per_s": median,
             "each_round": [round(r["tickets_per_s"], 2) for r in rs]}
        cpus = [r["cpu_ms_per_ticket"] for r in rs if r.get("cpu_ms_per_ticket") is not None]
        g["cpu_ms_per_ticket"] = statistics.median(cpus) if cpus else None
        if "postfix_concurrency" in best:
            g["postfix_concurrency"] = best["postfix_concurrency"]
        table.append(g)
    order = {"rt-direct": 0, "rt-milter": 1, "perl-pipe": 2}
    return sorted(table, key=lambda g: (order[g["config"]], g["level"] or 0))


# ---------------------------------------------------------------------------
# Report
def fmt(v, digits=2):
    return "—" if v is None else f"{v:.{digits}f}"


def markdown(meta, table, ceiling, smallest_m):
    best = (f"{fmt(ceiling['tickets_per_s'])} tickets/s (rt-direct, N={ceiling['level']} "
            "clients, the best of the sweep)") if ceiling else "not measured (every run failed)"
    out = [f"# Real RT 5 ({meta['workers']} Starlet workers, PostgreSQL 15): tickets per second",
           "",
           f"{meta['started']}, commit {meta['commit']}, {meta['nproc']} CPUs; "
           f"{meta['messages']} messages of ~1 KB per run, {meta['rounds']} round(s), alternately "
           "forwards and backwards; tickets/s is the median of each row's rounds. One RT database for "
           f"the whole run (tickets accumulate: {meta.get('tickets_at_end', '?')} at the end).",
           f"RT's ceiling: {best}. Target: rt-milter >= {TARGET:.2f}x the ceiling.",
           "",
           "| configuration | N or M | messages | tickets | tickets/s | each round | "
           "ratio to ceiling | target | CPU ms/ticket |",
           "|---|---|---:|---:|---:|---|---:|---|---:|"]
    for g in table:
        if g["config"] == "perl-pipe":
            c = g.get("postfix_concurrency", {})
            nm = (f"Postfix concurrency {c.get('destination_concurrency_limit', '?')} "
                  f"(initial {c.get('initial_destination_concurrency', '?')})")
            mark = "(no target)"
        else:
            nm = level_name(g["config"], g["level"])
            mark = ("ceiling" if g is ceiling else "") if g["config"] == "rt-direct" else \
                ("met" if g.get("target_met") else "NO")
        if not g["ok"]:
            mark += " FAILED"
        out.append(f"| {g['config']} | {nm} | {g['messages']} | {g['tickets']} | "
                   f"{fmt(g['tickets_per_s'])} | {', '.join(f'{x:.2f}' for x in g['each_round'])}"
                   f" | {fmt(g['ratio'])} | {mark.strip()} | {fmt(g['cpu_ms_per_ticket'], 0)} |")
    out += ["",
            "rt-direct: N threads POST straight to RT's mail gateway, as rt-mailgate does. "
            "rt-milter: Postfix + rt-milter (bench.py's milter-unix, journal on SQLite) with "
            "[rt] max_concurrent = M, smtp-source with max(8, 2M) sessions. perl-pipe: Postfix "
            "pipe(8) to /usr/bin/rt-mailgate, smtp-source with 8 sessions. Through Postfix the "
            "time runs from the first send until the last ticket exists in RT's database. "
            f"CPU ms/ticket (median of the rounds; {meta['cpu_mode']}): every process of RT, "
            "its PostgreSQL and, through Postfix, Postfix and the gateway; not the load "
            "clients: on a shared machine a steadier figure than tickets/s.",
            "Smallest max_concurrent meeting the target: "
            + (f"**{smallest_m}**" if smallest_m is not None else "**none in the sweep**"), ""]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(
        description="rt-milter against a real RT 5 on PostgreSQL (see the header of "
                    "tests/bench/real_rt.py)")
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("--out", default=None, help="default BUILD/bench")
    ap.add_argument("--quick", action="store_true", help="fewer messages and levels")
    ap.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="RT's Starlet workers")
    ap.add_argument("--max-requests", type=int, default=MAX_REQUESTS,
                    help=f"requests a Starlet worker serves before a fresh one replaces it "
                         f"(default {MAX_REQUESTS}: none during a run; Starlet's own is 100)")
    ap.add_argument("--clients", default=None, help=f"rt-direct sweep (default {SWEEP_N})")
    ap.add_argument("--max-concurrent", default=None, help=f"rt-milter sweep (default {SWEEP_M})")
    ap.add_argument("--messages", type=int, default=None,
                    help=f"messages per run (default {MESSAGES}, --quick {QUICK_MESSAGES})")
    ap.add_argument("--rounds", type=int, default=None,
                    help=f"rounds of the whole plan, alternately forwards and backwards, so that "
                         f"drift hits every row alike; each row's median round counts "
                         f"(default {ROUNDS}, --quick {QUICK_ROUNDS})")
    ap.add_argument("--no-perl", action="store_true", help="leave out the perl-pipe row")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("real-rt: run as root (PostgreSQL, RT, Postfix)")
    n = args.messages or (QUICK_MESSAGES if args.quick else MESSAGES)
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else ROUNDS)
    sweep_n = [int(x) for x in (args.clients or (QUICK_N if args.quick else SWEEP_N)).split(",")]
    sweep_m = [int(x) for x in
               (args.max_concurrent or (QUICK_M if args.quick else SWEEP_M)).split(",")]
    if args.workers not in sweep_m:  # max_concurrent = W is the natural guess: always tried
        sweep_m = sorted(sweep_m + [args.workers])
    if not 1 <= rounds <= 20 or not 1 <= n <= 100000 or not all(1 <= x <= 64 for x in sweep_n + sweep_m):
        sys.exit("real-rt: messages 1..100000, clients and max_concurrent 1..64")
    args.compare, args.no_journal = None, False  # what bench.Gateway reads besides build
    out_dir = args.out or os.path.join(args.build, "bench")
    os.makedirs(out_dir, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    t_stage = time.monotonic()
    work = tempfile.mkdtemp(prefix="rtm-realrt.")
    os.chmod(work, 0o755)
    meta = {"started": started, "nproc": os.cpu_count(), "commit": bench.git_commit(),
            "workers": args.workers, "messages": n, "clients_sweep": sweep_n,
            "max_concurrent_sweep": sweep_m, "rounds": rounds, "target": TARGET,
            "max_requests": args.max_requests, "work": work}
    say(f"work folder {work}; RT with {args.workers} workers; {n} messages per run")
    runs = []
    db = rt = None
    finished = False
    cpu = bench.CpuMeter()
    meta["cpu_mode"] = cpu.mode if cpu.base else "not counted (no cgroup v1 cpuacct)"
    seq = [0]

    def tag():
        seq[0] += 1
        return f"{os.getpid()}-{seq[0]}"

    try:
        db = Database(work)  # stopped in finally even if its start fails half-way
        db.start(cpu)
        say(f"PostgreSQL on {HOST}:{db.port}")
        t = time.monotonic()
        rt = RealRt(work)
        rt.start(db, args.workers, cpu, args.max_requests)
        say(f"RT at {rt.url} after {time.monotonic() - t:.1f} s")
        db.open_counter()
        # Warm-up: every worker compiles and loads on its first request.
        w = direct_run(rt, db, cpu, args.workers, 2 * args.workers, tag())
        say(f"warm-up: {w['tickets']} tickets in {w['seconds']:.1f} s")
        plan = schedule(sweep_n, sweep_m, not args.no_perl)
        for rnd in range(rounds):
            for cfg, level in (plan if rnd % 2 == 0 else plan[::-1]):
                r = measure(cfg, level, args, work, rt, db, cpu, n, tag())
                r["round"] = rnd + 1
                runs.append(r)
                say(f"round {rnd + 1}/{rounds} {cfg:9s} {level_name(cfg, level):8s} "
                    f"{r['tickets']:4d} tickets {r['tickets_per_s']:6.2f} tickets/s"
                    + (f" ({r['ok_answers']} ok)" if cfg == "rt-direct" else "")
                    + (f" (Postfix concurrency {r['postfix_concurrency']})"
                       if cfg == "perl-pipe" else "")
                    + ("" if r["ok"] else f"  FAILED {r.get('other_answers') or ''}"
                       f"{r.get('client_error', '')[-200:]}"))
        meta["tickets_at_end"] = db.tickets()
        finished = True
    finally:
        if rt:
            rt.stop()
        if db:
            db.stop()
        cpu.close()
        if args.keep or not finished:
            say(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    table = summarize(runs)
    direct = [g for g in table if g["config"] == "rt-direct" and g["ok"]]
    ceiling = max(direct, key=lambda g: g["tickets_per_s"]) if direct else None
    c = ceiling["tickets_per_s"] if ceiling else 0.0
    for g in table:
        g["ratio"] = g["tickets_per_s"] / c if c else None
        if g["config"] == "rt-milter":
            g["target_met"] = bool(g["ok"] and g["ratio"] and g["ratio"] >= TARGET)
    met = [g["level"] for g in table if g.get("target_met")]
    smallest_m = min(met) if met else None
    meta["stage_seconds"] = time.monotonic() - t_stage
    meta["ceiling_tickets_per_s"] = c
    meta["ceiling_clients"] = ceiling["level"] if ceiling else None
    meta["smallest_max_concurrent_meeting_target"] = smallest_m
    md = markdown(meta, table, ceiling, smallest_m)
    with open(os.path.join(out_dir, "real_rt.json"), "w") as f:
        json.dump({"meta": meta, "table": table, "runs": runs}, f, indent=2)
    with open(os.path.join(out_dir, "real_rt.md"), "w") as f:
        f.write(md)
    print()
    print(md)
    say(f"written: {out_dir}/real_rt.json, {out_dir}/real_rt.md "
        f"(stage took {meta['stage_seconds']:.0f} s)")
    failed = [r for r in runs if not r["ok"]]
    if failed or ceiling is None:
        say(f"{len(failed)} run(s) failed: see real_rt.json")
        return 1
    return 0  # a missed target is marked in the table, not a failed run


if __name__ == "__main__":
    sys.exit(main())
