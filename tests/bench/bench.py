#!/usr/bin/env python3
# bench.py — the side-by-side benchmark of rt-milter (run through
# tests/bench/run, which installs and builds first). Everything on loopback,
# in one run, against one stand-in RT:
#
#   stand-in RT   a private nginx (nginx-light) whose only location reads the
#                 whole request body (echo module: echo_read_request_body)
#                 and then answers "ok" in one write; its access log counts
#                 requests and bytes.
#   MTA           a private Postfix (packaging/postfix-sandbox), a fresh one
#                 per configuration; for the sendmail-only and sm-*
#                 configurations a private Sendmail 8 instead
#                 (packaging/sendmail-sandbox: never installed, run from a
#                 cache of the unpacked .debs, filled once by apt-get download
#                 before anything is timed, in a private mount namespace; its
#                 milter line INPUT_MAIL_FILTER with F=T and the sandbox's
#                 T=C:10s;S:30s;R:60s;E:5m; every recipient resolved to a sink
#                 mailer, /bin/true, as Postfix's discard(8)).
#   client        smtp-source (ships with Postfix): N messages of SIZE bytes
#                 of payload, S sessions at once, to rt@rt.example.com, with a
#                 sender unique to the run (smtp-source gives every message its
#                 own Message-ID; with the sender, no journal key repeats).
#
# Configurations (--configs):
#   postfix-only  Postfix accepts and hands every recipient to discard(8)
#   perl-pipe     Postfix delivers through pipe(8) to RT's Perl rt-mailgate
#   cxx-pipe      the same pipe with our rt-mailgate
#   noop-milter   Postfix + tests/bench/noop_milter.cpp, then discard(8)
#   noop-post     Postfix + noop_milter.cpp --post: the same job as rt-milter
#                 and nothing else (receives, POSTs over a kept connection,
#                 deletes the recipients, accepts): the floor of the job
#   milter-unix   Postfix + rt-milter over a unix socket -> stand-in
#   milter-inet   the same over inet:PORT@127.0.0.1
#   milter-unix-metrics  milter-unix with its Prometheus endpoint on
#                 (metrics = "127.0.0.1:PORT", a free loopback port) and a
#                 scraper in this script that GETs /metrics once a second
#                 during every throughput run, as Prometheus would (scrapes
#                 and failed scrapes counted in results.json): metrics on
#                 vs off, as the ratio milter-unix-metrics / milter-unix
#   milter-shipped  rt-milter as shipped: milter-unix with the metrics
#                 endpoint on and scraped (as milter-unix-metrics) and the
#                 trust policy of conf/rt-milter.toml set to work
#                 (trusted_networks, trusted_authserv_ids, a take-comment
#                 route beside the correspond one): issue 15 holds it to
#                 noop-post
#   milter-unix-pg  milter-unix with its duplicate journal on PostgreSQL:
#                 one private PostgreSQL 15 for the whole run, started and
#                 stopped by tests/pg/pg_server.py (called as a script), on
#                 loopback TCP with a passfile; journal = its conninfo
#   sendmail-only, sm-noop-milter, sm-noop-post, sm-milter-shipped
#                 postfix-only, noop-milter, noop-post and milter-shipped with
#                 Sendmail as the MTA (the same gateway, configured alike).
#                 Both gateways end a delivered message there as rt-milter
#                 does on Sendmail when RT took every recipient: discarded
#                 (SMFIS_DISCARD, noop-milter --post --discard), logged
#                 "discarded", no qf written; deleting the recipients and
#                 accepting, as on Postfix, would have Sendmail queue the
#                 message (df and qf) and then drop it.
#
# Measured per configuration and size (median of --reps repetitions, run
# interleaved so drift hits every configuration alike):
#   msgs/s        messages delivered to the stand-in RT per second, from the
#                 client's start to the last delivery (postfix-only,
#                 noop-milter and their Sendmail twins deliver nothing to RT:
#                 messages accepted per second, to the client's end);
#   CPU ms/msg    CPU of every process of the system under test (the MTA's
#                 processes, the gateway, nginx; not the load client), from
#                 the client's start until the MTA's queue is empty, per
#                 message: counted in a cgroup (cpuacct) when the machine
#                 allows it, otherwise the whole machine (/proc/stat) less
#                 the client's own rusage; for milter-unix-pg it includes
#                 every process of the PostgreSQL server (postmaster and its
#                 backends, in a cgroup of their own, 'pg', added only to
#                 this configuration's figure; pg CPU ms/msg alone in
#                 results.json). The MTA is in the group as it is started
#                 from its sandbox script in it: Postfix's master and
#                 everything it spawns; Sendmail's daemon and its children
#                 (a process per SMTP session, background deliveries and
#                 mailers, queue runners), and the sandbox's syslog listener
#                 that writes Sendmail's maillog (a run is refused if the
#                 daemon is not in the group);
#   gateway CPU   the gateway process alone (milters: /proc/PID/stat, all
#                 threads; pipes: the median of 5 rt-mailgate runs on the
#                 side under /usr/bin/time, rusage from wait4, as the pipe
#                 children are too short-lived to read);
#   peak RSS      of the gateway (milters: VmHWM after the run, the daemon
#                 fresh per configuration; pipes: the largest %M of /usr/bin/time
#                 in those side runs);
#   latency       for the milters and postfix-only (and their Sendmail
#                 twins): one session, one message at a time, 1 KB, time from
#                 the final "." to the 250 reply; added latency = milter minus
#                 noop-milter on the same MTA, median and p99.
#
# --compare BUILD runs each rt-milter and pipe configuration a second time
# (CONFIG@base) with the binaries of another build, interleaved in the same
# run: before/after figures from one time window (this machine's speed
# drifts by 10-20% between runs minutes apart).
#
# Output: one table on stdout (with the ratios milter/noop-milter,
# milter/postfix-only, milter/perl-pipe, inet/unix, unix-pg/unix,
# unix-metrics/unix and Sendmail/Postfix (msgs/s and CPU per message); the
# table "Sendmail beside Postfix": per MTA and size (1k, 100k) the msgs/s of
# the MTA alone, of noop-post and of milter-shipped, their ratio (target
# >= 1.0), the gateway CPU ms/msg of each and their ratio (target <= 1.2),
# marked met or **NO**; and the targets of the benchmark issue marked met or
# missed, Sendmail's among them), OUT/results.json, OUT/results.md
# and OUT/results.png (drawn by tests/bench/plot.py), plus copies stamped
# with the start time; then the
# Google Benchmark micro-benchmarks (bench-micro), whose JSON goes to
# OUT/micro.json. Every process started here is stopped by pid; every wait
# is bounded.

import argparse
import datetime
import http.client
import json
import os
import platform
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POSTFIX_SANDBOX = os.path.join(TOP, "packaging", "postfix-sandbox")
SENDMAIL_SANDBOX = os.path.join(TOP, "packaging", "sendmail-sandbox")
sys.path.insert(0, os.path.join(TOP, "packaging"))
from sandbox_common import read_env  # noqa: E402  (the sandbox's DIR/env)
PERL_MAILGATE = "/usr/bin/rt-mailgate"
NGINX = "/usr/sbin/nginx"
ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"
RT_DOMAIN = "rt.example.com"
RCPT = f"rt@{RT_DOMAIN}"
HOST = "127.0.0.1"
GATEWAY_PATH = "/REST/1.0/NoAuth/mail-gateway"  # what rt-milter posts to below [rt] url

ALL_CONFIGS = ["postfix-only", "perl-pipe", "cxx-pipe", "noop-milter", "noop-post", "milter-unix",
               "milter-shipped", "milter-unix-metrics", "milter-unix-pg", "milter-inet",
               "sendmail-only", "sm-noop-milter", "sm-noop-post", "sm-milter-shipped"]
# The configurations run by a private Sendmail instead of Postfix, each with
# the Postfix configuration whose gateway (and job) it shares.
ON_SENDMAIL = {"sendmail-only": "postfix-only", "sm-noop-milter": "noop-milter",
               "sm-noop-post": "noop-post", "sm-milter-shipped": "milter-shipped"}
# rt-milter's own configurations (one rt-milter.toml template, below).
RT_MILTERS = {"milter-unix", "milter-shipped", "milter-unix-metrics", "milter-unix-pg",
              "milter-inet"}
DELIVERING = {"perl-pipe", "cxx-pipe", "noop-post"} | RT_MILTERS
MILTERS = {"noop-milter", "noop-post"} | RT_MILTERS
# The configurations with rt-milter's metrics endpoint on (and scraped).
WITH_METRICS = {"milter-unix-metrics", "milter-shipped"}
# The configurations with the trust policy set to work (as a site would).
WITH_TRUST = {"milter-shipped"}
SCRAPE_INTERVAL = 1.0   # seconds between scrapes, as a Prometheus scrape_interval
SCRAPE_TIMEOUT = 2.0    # seconds one scrape may take before it counts as failed
PLOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plot.py")
# The configurations whose journal is on the benchmark's PostgreSQL.
ON_PG = {"milter-unix-pg"}
PG_SERVER = os.path.join(TOP, "tests", "pg", "pg_server.py")
# --compare DIR adds BASE_SUFFIX configurations: the same, with the
# binaries of another build (before/after a change, in one run).
BASE_SUFFIX = "@base"


def kind(cfg):
    """The configuration without BASE_SUFFIX."""
    return cfg[:-len(BASE_SUFFIX)] if cfg.endswith(BASE_SUFFIX) else cfg


def job(cfg):
    """The gateway's job of a configuration, whichever the MTA: its Postfix
    twin for the Sendmail ones ("sm-noop-post" -> "noop-post"), without
    BASE_SUFFIX. The sets above (DELIVERING, MILTERS, ...) are of jobs."""
    return ON_SENDMAIL.get(kind(cfg), kind(cfg))


def mta_name(cfg):
    return "sendmail" if kind(cfg) in ON_SENDMAIL else "postfix"
SIZES = {"1k": 1024, "100k": 100 * 1024, "10m": 10 * 1024 * 1024}
# Messages per run: [fast configurations, cxx-pipe, perl-pipe].
COUNTS = {"1k": (2000, 1000, 240), "100k": (1000, 500, 120), "10m": (40, 40, 20)}
QUICK_COUNTS = {"1k": (400, 200, 60), "100k": (200, 100, 30), "10m": (20, 20, 10)}
RUN_BOUND = 900.0       # seconds one run may take before it is called failed
TICK = 0.01


def say(msg):
    print(f"bench: {msg}", flush=True)


def percentile(values, p):
    """Nearest-rank percentile of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for(pred, bound, what):
    end = time.monotonic() + bound
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.02)
    raise RuntimeError(f"timed out after {bound:.0f} s waiting for {what}")


def stop_pid(proc, sig=signal.SIGTERM, bound=15.0):
    """Stops a child we started: SIG, then SIGKILL after BOUND seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(bound)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


# ---------------------------------------------------------------------------
# CPU accounting
class CpuMeter:
    """CPU of the system under test. With cgroup v1 cpuacct (root): a group
    'sut' for every process of the system under test and 'client' for the
    load client, 'pg' for the benchmark's PostgreSQL server (counted only
    for the configurations whose journal is on it); otherwise /proc/stat of
    the whole machine (PostgreSQL's included) less the client."""

    ROOT = "/sys/fs/cgroup/cpuacct"

    def __init__(self):
        self.base = None
        try:
            base = os.path.join(self.ROOT, f"rtm-bench-{os.getpid()}")
            os.makedirs(os.path.join(base, "sut"))
            os.makedirs(os.path.join(base, "client"))
            os.makedirs(os.path.join(base, "pg"))
            with open(os.path.join(base, "sut", "cpuacct.usage")):
                pass
            self.base = base
        except OSError:
            self.base = None
        self.mode = "cgroup cpuacct" if self.base else "/proc/stat less the client"

    def _join(self, group):
        if self.base:
            with open(os.path.join(self.base, group, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))

    def sut_preexec(self):
        return lambda: self._join("sut")

    def client_preexec(self):
        return lambda: self._join("client")

    def pg_preexec(self):
        return lambda: self._join("pg")

    def holds(self, group, pid):
        """Whether PID is in GROUP (always true without cgroups: the whole
        machine is counted then)."""
        if not self.base:
            return True
        with open(os.path.join(self.base, group, "cgroup.procs")) as f:
            return str(pid) in f.read().split()

    def _usage(self, group):
        with open(os.path.join(self.base, group, "cpuacct.usage")) as f:
            return int(f.read()) / 1e9

    @staticmethod
    def _machine():
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
        # user nice system idle iowait irq softirq steal
        busy = sum(int(x) for i, x in enumerate(fields[:8]) if i not in (3, 4))
        return busy / os.sysconf("SC_CLK_TCK")

    def snapshot(self):
        if self.base:
            return self._usage("sut")
        return self._machine()

    def pg_snapshot(self):
        """CPU of the PostgreSQL server so far (None without cgroups: the
        whole machine's figure already has it)."""
        return self._usage("pg") if self.base else None

    def delta(self, before, client_rusage_s):
        if self.base:
            return self._usage("sut") - before
        return max(0.0, self._machine() - before - client_rusage_s)

    def close(self):
        if not self.base:
            return
        for g in ("sut", "client", "pg", ""):
            path = os.path.join(self.base, g)
            for _ in range(100):
                try:
                    os.rmdir(path)
                    break
                except OSError:
                    time.sleep(0.1)


def proc_cpu_s(pid):
    """utime+stime of a process, all its threads (dead ones included)."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def proc_hwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


# ---------------------------------------------------------------------------
# The stand-in RT
class StandIn:
    def __init__(self, work, cpu):
        self.dir = os.path.join(work, "standin")
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        os.chmod(self.dir, 0o755)
        os.chmod(os.path.join(self.dir, "tmp"), 0o777)
        self.port = free_port()
        self.log = os.path.join(self.dir, "access.log")
        self.url = f"http://{HOST}:{self.port}"
        t = os.path.join(self.dir, "tmp")
        conf = f"""# nginx.conf of the benchmark's stand-in RT, written by tests/bench/bench.py
load_module {ECHO_MODULE};
worker_processes 1;
user nobody nogroup;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log error;
events {{ worker_connections 4096; }}
http {{
  log_format rt '$request_length $status';
  access_log {self.log} rt;
  client_body_temp_path {t}/body;
  proxy_temp_path {t}/proxy;
  fastcgi_temp_path {t}/fastcgi;
  uwsgi_temp_path {t}/uwsgi;
  scgi_temp_path {t}/scgi;
  client_max_body_size 0;
  client_body_buffer_size 128k;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  server {{
    listen {HOST}:{self.port};
    # Read the whole body, then answer from @ok: `return` gives a
    # Content-Length (echo alone would answer chunked) and nginx writes
    # headers and body in one go.
    location / {{
      echo_read_request_body;
      echo_exec @ok;
    }}
    location @ok {{
      default_type text/plain;
      return 200 "ok\n";
    }}
  }}
}}
"""
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        open(self.log, "w").close()
        self.proc = subprocess.Popen([NGINX, "-p", self.dir, "-c", self.conf, "-g", "daemon off;"],
                                     stdin=subprocess.DEVNULL, preexec_fn=cpu.sut_preexec())
        try:
            wait_for(self._answers, 15, "the stand-in RT")
        except Exception:
            self.stop()
            raise
        self._pos = 0
        self._count = 0
        self._bytes = 0
        self.count()

    def _answers(self):
        try:
            with socket.create_connection((HOST, self.port), 1) as s:
                s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                          b"Connection: close\r\n\r\nhi")
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                return data.startswith(b"HTTP/1.1 200") and data.endswith(b"\r\n\r\nok\n")
        except OSError:
            return False

    def count(self):
        """Requests answered 200 so far (and their bytes), read on from the log."""
        with open(self.log, "rb") as f:
            f.seek(self._pos)
            data = f.read()
        end = data.rfind(b"\n") + 1
        for line in data[:end].splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == b"200":
                self._count += 1
                self._bytes += int(parts[0])
        self._pos += end
        return self._count

    def total_bytes(self):
        self.count()
        return self._bytes

    def stop(self):
        stop_pid(self.proc, signal.SIGQUIT)


# ---------------------------------------------------------------------------
# The PostgreSQL server of the journal (milter-unix-pg)
class PgServer:
    """One private PostgreSQL for the whole run: tests/pg/pg_server.py
    (initdb, role rt_milter with its password only in a passfile, database
    rtmilter, loopback) called as a script, so that the postmaster and its
    backends are born in the CPU meter's 'pg' group; stopped by the pid it
    recorded. The journal's rows stay across configurations and
    repetitions (every run's keys are new: its sender is unique)."""

    def __init__(self, work, cpu):
        self.state = os.path.join(work, "pg")
        out = subprocess.run([sys.executable, PG_SERVER, "start", self.state],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
                             preexec_fn=cpu.pg_preexec(), timeout=180, check=True)
        self.conninfo = out.stdout.strip().splitlines()[-1]

    def stop(self):
        subprocess.run([sys.executable, PG_SERVER, "stop", self.state],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=60)


# ---------------------------------------------------------------------------
# Gateways
class Gateway:
    """What sits between the MTA and the stand-in for one configuration."""

    def __init__(self, cfg, args, work, standin, cpu, pg=None):
        name = job(cfg)
        self.name = cfg
        self.proc = None
        self.milter_spec = None
        self.fallback = None
        self.metrics_port = None
        self.dir = os.path.join(work, cfg.replace("@", "-"))
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        build = args.compare if cfg.endswith(BASE_SUFFIX) else args.build
        bindir = os.path.join(os.path.abspath(build), "bin")
        if name == "perl-pipe":
            self.fallback = (standin.url, PERL_MAILGATE)
        elif name == "cxx-pipe":
            self.fallback = (standin.url, os.path.join(bindir, "rt-mailgate"))
        elif name in ("noop-milter", "noop-post"):
            sock = os.path.join(self.dir, "noop.sock")
            self.milter_spec = f"unix:{sock}"
            post = ["--post", standin.url + GATEWAY_PATH] if name == "noop-post" else []
            if post and kind(cfg) in ON_SENDMAIL:
                post.append("--discard")  # as rt-milter ends an all-RT message on Sendmail
            self._start([os.path.join(bindir, "noop-milter")] + post + [self.milter_spec], cpu,
                        lambda: os.path.exists(sock))
        elif name in RT_MILTERS:
            if name != "milter-inet":
                sock = os.path.join(self.dir, "rt-milter.sock")
                self.milter_spec = f"unix:{sock}"
                ready = lambda: os.path.exists(sock)
            else:
                port = free_port()
                self.milter_spec = f"inet:{port}@{HOST}"
                ready = lambda: _tcp_open(port)
            metrics_line = ""
            if name in WITH_METRICS:
                self.metrics_port = free_port()
                metrics_line = f'metrics = "{HOST}:{self.metrics_port}"\n'
                milter_ready = ready
                ready = lambda: milter_ready() and _tcp_open(self.metrics_port)
            trust_lines = comment_route = ""
            if name in WITH_TRUST:
                trust_lines = (f'trusted_networks = ["{HOST}/32"]\n'
                               'trusted_authserv_ids = ["mx.example.com"]\n')
                comment_route = f"""
[[route]]
address = "rt-comment@{RT_DOMAIN}"
queue = "General"
action = "take-comment"
extension = "ticket"
"""
            if args.no_journal:
                journal = ""
            elif name in ON_PG:
                journal = pg.conninfo
            else:
                journal = self.dir + "/journal.sqlite"
            toml = os.path.join(self.dir, "rt-milter.toml")
            with open(toml, "w") as f:
                f.write(f"""# rt-milter.toml of the benchmark, written by tests/bench/bench.py
socket = "{self.milter_spec}"
socket_mode = "0660"
socket_group = "postfix"
user = "{pwd.getpwuid(os.geteuid()).pw_name}"
log_level = "info"
recipient_delimiter = "+"
spool_dir = "{self.dir}/spool"
journal = "{journal}"
{metrics_line}{trust_lines}
[rt]
url = "{standin.url}"
timeout = 60

[[route]]
address = "{RCPT}"
queue = "General"
action = "correspond"
extension = "ticket"
{comment_route}""")
            os.makedirs(os.path.join(self.dir, "spool"))
            self._start([os.path.join(bindir, "rt-milter"), "-c", toml, "--log-stderr"], cpu,
                        ready, log=os.path.join(self.dir, "rt-milter.log"))

    def _start(self, argv, cpu, ready, log=None):
        out = open(log, "ab") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                     preexec_fn=cpu.sut_preexec())
        if log:
            out.close()
        wait_for(lambda: ready() or self.proc.poll() is not None, 15, f"{self.name} to listen")
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited at start ({self.proc.returncode})")

    def cpu_s(self):
        return proc_cpu_s(self.proc.pid) if self.proc else None

    def hwm_kb(self):
        return proc_hwm_kb(self.proc.pid) if self.proc else None

    def stop(self):
        stop_pid(self.proc, signal.SIGTERM, 40)


def _tcp_open(port):
    try:
        with socket.create_connection((HOST, port), 0.5):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------------
# MTAs: a fresh private one per configuration, from its sandbox script
class Mta:
    """A private MTA on loopback, started by its sandbox script (SCRIPT start
    DIR --fresh) in the CPU meter's 'sut' group: the MTA daemons it leaves
    running (Postfix's master, Sendmail's -bd daemon) are born there, so is
    every process they fork (smtpd, cleanup, qmgr, discard; Sendmail's
    per-session and delivery children, its queue runners, the mailers), as
    children stay in their parent's cgroup; the sandbox's own processes
    besides (Sendmail's syslog listener) too. Its milter is the gateway's;
    without one, or without a fallback pipe to RT, every recipient is
    discarded. port; queued(): messages in the queue; stop()."""

    NAME = SCRIPT = None
    START_TIMEOUT = 120

    def __init__(self, work, gateway, cpu):
        self.dir = os.path.join(work, self.NAME)
        argv = [self.SCRIPT, "start", self.dir, "--fresh"]
        if gateway.milter_spec:
            argv += ["--milter", gateway.milter_spec]
        if gateway.fallback:
            argv += ["--rt-fallback", gateway.fallback[0], "--mailgate", gateway.fallback[1]]
        else:
            argv += ["--discard-all"]
        out = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
                             preexec_fn=cpu.sut_preexec(), timeout=self.START_TIMEOUT,
                             check=True)
        self.port = int(out.stdout.split()[-1])
        env = read_env(os.path.join(self.dir, "env"))
        self.queue = env["QUEUE_DIR"]
        self.pid = int(env["MTA_PID"])
        if not cpu.holds("sut", self.pid):
            self.stop()
            raise RuntimeError(f"{self.NAME}'s daemon {self.pid} is not in the CPU meter's "
                               "'sut' group: its CPU would not be counted")

    def stop(self):
        subprocess.run([self.SCRIPT, "stop", self.dir], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, timeout=120)


class Postfix(Mta):
    NAME, SCRIPT = "postfix", POSTFIX_SANDBOX

    def queued(self):
        n = 0
        for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
            for _, _, files in os.walk(os.path.join(self.queue, sub)):
                n += len(files)
        return n


class Sendmail(Mta):
    """Sendmail 8 of packaging/sendmail-sandbox (never installed: run from
    its cache of unpacked .debs, in a private mount namespace). Its milter
    line is the sandbox's INPUT_MAIL_FILTER with F=T and
    T=C:10s;S:30s;R:60s;E:5m: a read may take a minute and the end of
    message five, far above what the stand-in RT needs (rt-milter's own RT
    timeout here is 60 s, and it sends progress every few seconds)."""

    NAME, SCRIPT = "sendmail", SENDMAIL_SANDBOX
    # A queue file's kind is its name's first two letters (qf control, df
    # data, tf/xf temporary and transcript, hf/Qf lost ones), then its id.
    QUEUE_PREFIXES = ("qf", "df", "tf", "xf", "hf", "Qf")

    def queued(self):
        """Messages with any file in the queue (by queue id): a message whose
        recipients the milter all deleted must leave none."""
        ids = set()
        for _, _, files in os.walk(self.queue):
            ids.update(f[2:] for f in files if f[:2] in self.QUEUE_PREFIXES)
        return len(ids)

    @staticmethod
    def fetch():
        """The sandbox's cache of .debs, filled (apt-get download) before
        anything is timed."""
        subprocess.run([SENDMAIL_SANDBOX, "fetch"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, timeout=900, check=True)


def start_mta(cfg, work, gateway, cpu):
    return (Sendmail if mta_name(cfg) == "sendmail" else Postfix)(work, gateway, cpu)


# ---------------------------------------------------------------------------
# The scraper of milter-unix-metrics
class Scraper:
    """GETs http://HOST:PORT/metrics every SCRAPE_INTERVAL seconds in a
    thread of its own (the first at once), as Prometheus would, until stop()
    or BOUND seconds; a fresh connection per scrape, SCRAPE_TIMEOUT each.
    A scrape counts as good when the answer is 200 with a non-empty body.
    Runs in this driver process: its own CPU is not the system under test's,
    rt-milter's work to answer is."""

    def __init__(self, port, bound):
        self.port = port
        self.bound = bound
        self.scrapes = 0
        self.failed = 0
        self.ms = []
        self.last_bytes = None
        self.last_error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scraper", daemon=True)
        self._thread.start()

    def _scrape(self):
        conn = http.client.HTTPConnection(HOST, self.port, timeout=SCRAPE_TIMEOUT)
        try:
            conn.request("GET", "/metrics")
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200 or not body:
                raise RuntimeError(f"HTTP {resp.status}, {len(body)} bytes")
            return len(body)
        finally:
            conn.close()

    def _loop(self):
        end = time.monotonic() + self.bound
        while not self._stop.is_set() and time.monotonic() < end:
            t0 = time.monotonic()
            self.scrapes += 1
            try:
                self.last_bytes = self._scrape()
                self.ms.append((time.monotonic() - t0) * 1000.0)
            except Exception as e:  # any failure of one scrape is counted, not raised
                self.failed += 1
                self.last_error = f"{type(e).__name__}: {e}"[:200]
            self._stop.wait(max(0.0, SCRAPE_INTERVAL - (time.monotonic() - t0)))

    def stop(self):
        """Stops the thread (bounded) and returns the figures for results.json."""
        self._stop.set()
        self._thread.join(SCRAPE_TIMEOUT + 5)
        return {"scrapes": self.scrapes, "failed_scrapes": self.failed,
                "scrape_median_ms": statistics.median(self.ms) if self.ms else None,
                "scrape_max_ms": max(self.ms) if self.ms else None,
                "metrics_bytes": self.last_bytes, "scrape_error": self.last_error}


# ---------------------------------------------------------------------------
# One throughput run
def throughput_run(cfg, size_name, n, args, mta, gateway, standin, cpu, tag):
    size = SIZES[size_name]
    before_count = standin.count()
    before_bytes = standin.total_bytes()
    gw_cpu0 = gateway.cpu_s()
    pg0 = cpu.pg_snapshot() if job(cfg) in ON_PG else None
    sut0 = cpu.snapshot()
    sender = f"bench-{tag}@example.net"
    argv = ["smtp-source", "-s", str(args.sessions), "-m", str(n), "-l", str(size),
            "-f", sender, "-t", RCPT, "-M", "bench.example.net", f"{HOST}:{mta.port}"]
    t0 = time.monotonic()
    client = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, preexec_fn=cpu.client_preexec())
    scraper = Scraper(gateway.metrics_port, RUN_BOUND) if gateway.metrics_port else None
    client_end = None
    client_rusage = 0.0
    last_delivery = None
    seen = before_count
    end_bound = t0 + RUN_BOUND
    rc = None
    while time.monotonic() < end_bound:
        if client_end is None:
            pid, status, ru = os.wait4(client.pid, os.WNOHANG)
            if pid:
                client_end = time.monotonic()
                client.returncode = os.waitstatus_to_exitcode(status)
                rc = client.returncode
                client_rusage = ru.ru_utime + ru.ru_stime
        c = standin.count()
        if c != seen:
            seen = c
            last_delivery = time.monotonic()
        delivered_all = job(cfg) not in DELIVERING or seen - before_count >= n
        if client_end is not None and delivered_all and mta.queued() == 0:
            break
        time.sleep(TICK)
    t_done = time.monotonic()
    queued_at_end = mta.queued()
    scraped = scraper.stop() if scraper else None
    sut_cpu = cpu.delta(sut0, client_rusage)
    pg_cpu = (cpu.pg_snapshot() - pg0) if pg0 is not None else None
    if pg_cpu is not None:
        sut_cpu += pg_cpu  # the journal's server is part of the system under test
    err = client.stderr.read().decode(errors="replace").strip() if client_end else ""
    if client_end is None:
        stop_pid(client, signal.SIGTERM, 5)
    delivered = standin.count() - before_count
    if job(cfg) in DELIVERING:
        t_end = max(client_end or t_done, last_delivery or t_done)
    else:
        t_end = client_end or t_done
    ok = (client_end is not None and rc == 0 and t_done < end_bound and queued_at_end == 0
          and (job(cfg) not in DELIVERING or delivered == n))
    gw_cpu = (gateway.cpu_s() - gw_cpu0) if gw_cpu0 is not None else None
    r = {
        "config": cfg, "mta": mta.NAME, "size": size_name, "bytes": size, "messages": n,
        "sessions": args.sessions, "ok": ok, "client_rc": rc,
        "client_error": err[-500:], "delivered_to_rt": delivered,
        "queued_at_end": queued_at_end,
        "rt_request_bytes": standin.total_bytes() - before_bytes,
        "seconds": t_end - t0, "msgs_per_s": n / (t_end - t0) if t_end > t0 else 0.0,
        "sut_cpu_ms_per_msg": 1000.0 * sut_cpu / n,
        "gateway_cpu_ms_per_msg": (1000.0 * gw_cpu / n) if gw_cpu is not None else None,
        "client_cpu_ms_per_msg": 1000.0 * client_rusage / n,
        "pg_cpu_ms_per_msg": (1000.0 * pg_cpu / n) if pg_cpu is not None else None,
    }
    if scraped is not None:
        r.update(scraped)
    return r


# ---------------------------------------------------------------------------
# Latency: one session, one message at a time
class SmtpError(Exception):
    pass


def _reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise SmtpError("connection closed")
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3]), b"".join(lines)


def latency_run(port, count, tag):
    tag = tag.replace("@", "-")  # "milter-unix@base": one @ in an address only
    body_line = b"X" * 78 + b"\r\n"
    body = body_line * (1024 // len(body_line) + 1)
    lat = []
    failures = 0
    with socket.create_connection((HOST, port), 30) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = s.makefile("rb")

        def cmd(line, want):
            s.sendall(line + b"\r\n")
            code, text = _reply(f)
            if code != want:
                raise SmtpError(f"{line!r}: {text!r}")

        if _reply(f)[0] != 220:
            raise SmtpError("no greeting")
        cmd(b"EHLO bench.example.net", 250)
        for i in range(count):
            cmd(f"MAIL FROM:<lat-{tag}@example.net>".encode(), 250)
            cmd(f"RCPT TO:<{RCPT}>".encode(), 250)
            cmd(b"DATA", 354)
            head = (f"From: <lat-{tag}@example.net>\r\nTo: <{RCPT}>\r\n"
                    f"Subject: latency {i}\r\nMessage-ID: <lat-{tag}-{i}@bench.example.net>\r\n"
                    f"\r\n").encode()
            s.sendall(head + body)
            t0 = time.perf_counter()
            s.sendall(b".\r\n")
            code, _ = _reply(f)
            t1 = time.perf_counter()
            if code == 250:
                lat.append((t1 - t0) * 1000.0)
            else:
                failures += 1
        cmd(b"QUIT", 221)
    return lat, failures


# ---------------------------------------------------------------------------
# Side runs of the pipe gateways (their processes live too briefly to read)
def pipe_side_runs(gw_path, standin, work, sizes, runs=5):
    out = {}
    for size_name in sizes:
        size = SIZES[size_name]
        msg = os.path.join(work, f"side-{size_name}.eml")
        with open(msg, "wb") as f:
            f.write(b"From: <side@example.net>\nTo: <rt@rt.example.com>\n"
                    b"Subject: side run\nMessage-ID: <side@bench.example.net>\n\n")
            line = b"X" * 78 + b"\n"
            f.write(line * (size // len(line) + 1))
        rss, cpu = [], []
        for _ in range(runs):
            # Through /usr/bin/time: a child forked from this (large) Python
            # process would report Python's RSS as its own maximum. %M is the
            # gateway's peak RSS; wait4's rusage (microseconds) is the CPU of
            # time and the gateway together (time's own share is ~0.3 ms).
            with open(msg, "rb") as stdin:
                p = subprocess.Popen(["/usr/bin/time", "-f", "%M", gw_path, "--url", standin.url,
                                      "--queue", "General", "--action", "correspond"],
                                     stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                err = p.stderr.read().decode()
                _, status, ru = os.wait4(p.pid, 0)
                p.returncode = os.waitstatus_to_exitcode(status)
            if p.returncode != 0:
                raise RuntimeError(f"{gw_path}: exit {p.returncode}: {err[-300:]}")
            rss.append(int(err.strip().splitlines()[-1]))
            cpu.append((ru.ru_utime + ru.ru_stime) * 1000.0)
        out[size_name] = {"peak_rss_kb": max(rss), "cpu_ms_per_msg": statistics.median(cpu)}
    return out


# ---------------------------------------------------------------------------
def summarize(runs, latencies, sides):
    """Medians per (config, size) and the ratios."""
    summary = {}
    for r in runs:
        summary.setdefault(r["config"], {}).setdefault(r["size"], []).append(r)
    table = {}
    for cfg, by_size in summary.items():
        for size_name, rs in by_size.items():
            good = [r for r in rs if r["ok"]]
            row = {"runs": len(rs), "failed_runs": len(rs) - len(good)}
            if good:
                row["msgs_per_s"] = statistics.median(r["msgs_per_s"] for r in good)
                row["sut_cpu_ms_per_msg"] = statistics.median(r["sut_cpu_ms_per_msg"] for r in good)
                g = [r["gateway_cpu_ms_per_msg"] for r in good
                     if r["gateway_cpu_ms_per_msg"] is not None]
                row["gateway_cpu_ms_per_msg"] = statistics.median(g) if g else None
                row["peak_rss_kb"] = max((r.get("peak_rss_kb") or 0) for r in good) or None
                row["messages"] = good[0]["messages"]
                pg = [r["pg_cpu_ms_per_msg"] for r in good if r.get("pg_cpu_ms_per_msg") is not None]
                if pg:
                    row["pg_cpu_ms_per_msg"] = statistics.median(pg)
            if any("scrapes" in r for r in rs):  # metrics on: every run's scrapes, summed
                row["scrapes"] = sum(r.get("scrapes", 0) for r in rs)
                row["failed_scrapes"] = sum(r.get("failed_scrapes", 0) for r in rs)
                sm = [r["scrape_median_ms"] for r in rs if r.get("scrape_median_ms") is not None]
                row["scrape_median_ms"] = statistics.median(sm) if sm else None
                row["metrics_bytes"] = max((r.get("metrics_bytes") or 0) for r in rs) or None
            if cfg in sides and size_name in sides[cfg]:
                row["gateway_cpu_ms_per_msg"] = sides[cfg][size_name]["cpu_ms_per_msg"]
                row["peak_rss_kb"] = sides[cfg][size_name]["peak_rss_kb"]
                row["gateway_measured_on_the_side"] = True
            table.setdefault(cfg, {})[size_name] = row
    lat = {}
    for cfg, values in latencies.items():
        if values["ms"]:
            lat[cfg] = {"count": len(values["ms"]), "failures": values["failures"],
                        "median_ms": statistics.median(values["ms"]),
                        "p99_ms": percentile(values["ms"], 99), "max_ms": max(values["ms"])}
    for cfg in lat:  # added latency: against noop-milter on the same MTA
        noop = "sm-noop-milter" if mta_name(cfg) == "sendmail" else "noop-milter"
        if job(cfg) in RT_MILTERS and noop in lat:
            lat[cfg]["added_median_ms"] = lat[cfg]["median_ms"] - lat[noop]["median_ms"]
            lat[cfg]["added_p99_ms"] = lat[cfg]["p99_ms"] - lat[noop]["p99_ms"]
    return table, lat


def ratio(table, a, b, size, key="msgs_per_s"):
    try:
        x, y = table[a][size][key], table[b][size][key]
        return x / y if y else None
    except (KeyError, TypeError):
        return None


# Issue 15's targets for rt-milter as shipped against the floor of its job,
# per MTA: (milter-shipped, noop-post) of Postfix, then of Sendmail.
SHIPPED_VS_POST = (("milter-shipped", "noop-post"), ("sm-milter-shipped", "sm-noop-post"))
SHIPPED_MSGS_MIN = 1.0   # milter-shipped / noop-post msgs/s, at least
SHIPPED_CPU_MAX = 1.2    # milter-shipped / noop-post gateway CPU per message, at most
# The rows of the table "Sendmail beside Postfix": MTA, MTA-only, noop-post,
# milter-shipped.
MTA_ROWS = (("Postfix", "postfix-only", "noop-post", "milter-shipped"),
            ("Sendmail", "sendmail-only", "sm-noop-post", "sm-milter-shipped"))


def targets(table, lat):
    t = []

    def add(name, value, op, limit):
        if value is None:
            t.append({"target": name, "value": None, "limit": limit, "met": None})
            return
        met = value >= limit if op == ">=" else value <= limit
        t.append({"target": name, "value": value, "op": op, "limit": limit, "met": met})

    for size in ("1k", "100k"):
        add(f"milter-unix / noop-milter msgs/s at {size}",
            ratio(table, "milter-unix", "noop-milter", size), ">=", 0.9)
    # The floor of the same job (issue 15): rt-milter as shipped against a
    # milter that only receives, POSTs over a kept connection and accepts.
    # The same targets with Sendmail as the MTA (sm-*), after Postfix's.
    for shipped, post in SHIPPED_VS_POST:
        for size in ("1k", "100k"):
            add(f"{shipped} / {post} msgs/s at {size}",
                ratio(table, shipped, post, size), ">=", SHIPPED_MSGS_MIN)
            add(f"{shipped} / {post} gateway CPU per message at {size}",
                ratio(table, shipped, post, size, "gateway_cpu_ms_per_msg"), "<=",
                SHIPPED_CPU_MAX)
    for size in ("1k", "100k", "10m"):
        add(f"milter-inet / milter-unix msgs/s at {size}",
            ratio(table, "milter-inet", "milter-unix", size), ">=", 0.8)
    add("milter-unix / perl-pipe msgs/s at 1k", ratio(table, "milter-unix", "perl-pipe", "1k"),
        ">=", 25.0)
    for size in ("1k", "100k"):
        add(f"rt-milter / noop-milter gateway CPU per message at {size}",
            ratio(table, "milter-unix", "noop-milter", size, "gateway_cpu_ms_per_msg"), "<=", 1.5)
    for cfg in ("milter-unix", "milter-inet"):  # the targets; milter-unix-pg has none
        if cfg in lat:
            add(f"{cfg} added latency median (ms)", lat[cfg].get("added_median_ms"), "<=", 2.0)
            add(f"{cfg} added latency p99 (ms)", lat[cfg].get("added_p99_ms"), "<=", 10.0)
    try:
        rss_mb = table["milter-unix"]["10m"]["peak_rss_kb"] / 1024.0
    except (KeyError, TypeError):
        rss_mb = None
    add("rt-milter peak RSS at 10m, 10 sessions (MB)", rss_mb, "<=", 30.0)
    return t


def fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def ordered(names):
    """Configurations in ALL_CONFIGS order, each followed by its @base twin."""
    return [c for k in ALL_CONFIGS for c in (k, k + BASE_SUFFIX) if c in names]


def mta_table(table):
    """The table "Sendmail beside Postfix": per MTA and size, issue 15's
    comparison of rt-milter as shipped with the floor of its job (noop-post)
    on that MTA, the ratios marked as the targets are. [] if no Sendmail
    configuration ran."""
    if not any(mta_name(c) == "sendmail" for c in table):
        return []
    sizes = [s for s in ("1k", "100k") if any(s in table.get(c, {}) for c in table)]

    def val(cfg, size, key, digits):
        return fmt(table.get(cfg, {}).get(size, {}).get(key), digits)

    def marked(v, op, limit):
        if v is None:
            return "-"
        met = v >= limit if op == ">=" else v <= limit
        return f"{fmt(v, 2)} {'met' if met else '**NO**'}"

    out = ["", f"Sendmail beside Postfix: rt-milter as shipped (milter-shipped) against "
           f"the floor of its job (noop-post) on each MTA; targets msgs/s ratio >= "
           f"{SHIPPED_MSGS_MIN}, gateway CPU ratio <= {SHIPPED_CPU_MAX}. On Sendmail both "
           "discard a delivered message (rt-milter's way there).", "",
           "| MTA | size | MTA only msgs/s | noop-post msgs/s | milter-shipped msgs/s | "
           "ratio msgs/s | noop-post gateway CPU ms/msg | milter-shipped gateway CPU ms/msg | "
           "ratio gateway CPU |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for mta, only, post, shipped in MTA_ROWS:
        for size in sizes:
            out.append(
                f"| {mta} | {size} | {val(only, size, 'msgs_per_s', 1)} | "
                f"{val(post, size, 'msgs_per_s', 1)} | {val(shipped, size, 'msgs_per_s', 1)} | "
                f"{marked(ratio(table, shipped, post, size), '>=', SHIPPED_MSGS_MIN)} | "
                f"{val(post, size, 'gateway_cpu_ms_per_msg', 2)} | "
                f"{val(shipped, size, 'gateway_cpu_ms_per_msg', 2)} | "
                + marked(ratio(table, shipped, post, size, 'gateway_cpu_ms_per_msg'), '<=',
                         SHIPPED_CPU_MAX) + " |")
    return out


def markdown(meta, table, lat, tgts):
    out = [f"# rt-milter benchmark, {meta['started']}", "",
           f"Machine: {meta['nproc']} CPUs, {meta['kernel']}; commit {meta['commit']}; "
           f"{meta['sessions']} concurrent sessions; median of {meta['reps']} runs; "
           f"CPU counted by {meta['cpu_mode']}.", ""]
    sizes = [s for s in SIZES if any(s in table.get(c, {}) for c in table)]
    out += ["| configuration | size | msgs | msgs/s (to RT) | CPU ms/msg (all) | "
            "gateway CPU ms/msg | gateway peak RSS MB | failed runs |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for cfg in ordered(table):
        for size in sizes:
            row = table.get(cfg, {}).get(size)
            if not row:
                continue
            rss = row.get("peak_rss_kb")
            side = " (side run)" if row.get("gateway_measured_on_the_side") else ""
            out.append(f"| {cfg} | {size} | {row.get('messages', '-')} | "
                       f"{fmt(row.get('msgs_per_s'))} | {fmt(row.get('sut_cpu_ms_per_msg'), 2)} | "
                       f"{fmt(row.get('gateway_cpu_ms_per_msg'), 2)}{side} | "
                       f"{fmt(rss / 1024.0 if rss else None)} | {row['failed_runs']} |")
    pg_rows = [(cfg, size, table[cfg][size]["pg_cpu_ms_per_msg"]) for cfg in ordered(table)
               for size in sizes if table[cfg].get(size, {}).get("pg_cpu_ms_per_msg") is not None]
    if pg_rows:
        out += ["", "CPU ms/msg (all) of " + ", ".join(sorted({c for c, _, _ in pg_rows}))
                + " includes its journal's PostgreSQL server (postmaster and backends): "
                + ", ".join(f"{size} {fmt(v, 2)}" for _, size, v in pg_rows) + "."]
    out += ["", "| ratio (msgs/s) | " + " | ".join(sizes) + " |",
            "|---|" + "---:|" * len(sizes)]
    for a, b in (("milter-shipped", "noop-post"), ("milter-unix", "noop-post"),
                 ("noop-post", "noop-milter"),
                 ("milter-unix", "noop-milter"), ("milter-unix", "postfix-only"),
                 ("milter-unix", "perl-pipe"), ("milter-unix", "cxx-pipe"),
                 ("milter-inet", "milter-unix"), ("milter-unix-pg", "milter-unix"),
                 ("milter-unix-metrics", "milter-unix"),
                 ("noop-milter", "postfix-only"),
                 ("sm-milter-shipped", "sm-noop-post"), ("sm-noop-post", "sm-noop-milter"),
                 ("sm-noop-milter", "sendmail-only"), ("sendmail-only", "postfix-only"),
                 ("sm-noop-post", "noop-post"), ("sm-milter-shipped", "milter-shipped"),
                 ("milter-shipped", "milter-shipped" + BASE_SUFFIX),
                 ("milter-unix", "milter-unix" + BASE_SUFFIX),
                 ("milter-unix" + BASE_SUFFIX, "noop-milter")):
        if b not in table or a not in table:
            continue
        out.append(f"| {a} / {b} | " + " | ".join(fmt(ratio(table, a, b, s), 2)
                                                   for s in sizes) + " |")
    out += mta_table(table)
    # Metrics on vs off: the same rt-milter, its /metrics scraped once a second.
    on_off = [(a, b) for a, b in (("milter-unix-metrics", "milter-unix"),
                                  ("milter-unix-metrics" + BASE_SUFFIX,
                                   "milter-unix" + BASE_SUFFIX))
              if a in table and b in table]
    if on_off:
        out += ["", "| metrics on / off, CPU per message | " + " | ".join(sizes) + " |",
                "|---|" + "---:|" * len(sizes)]
        for a, b in on_off:
            for key, what in (("sut_cpu_ms_per_msg", "all processes"),
                              ("gateway_cpu_ms_per_msg", "rt-milter alone")):
                out.append(f"| {a} / {b}, {what} | " + " | ".join(
                    fmt(ratio(table, a, b, s, key), 2) for s in sizes) + " |")
    for cfg in ordered(table):
        scr = [(size, table[cfg][size]) for size in sizes
               if "scrapes" in table[cfg].get(size, {})]
        if scr:
            out += ["", f"{cfg}: GET /metrics once a second during each throughput run: "
                    + "; ".join(f"{size} {row['scrapes']} scrapes, {row['failed_scrapes']} failed"
                                + (f", median {fmt(row['scrape_median_ms'], 2)} ms"
                                   if row.get("scrape_median_ms") is not None else "")
                                for size, row in scr)
                    + (f" (last answer {max(r.get('metrics_bytes') or 0 for _, r in scr)} bytes)."
                       if any(r.get("metrics_bytes") for _, r in scr) else ".")]
    if lat:
        out += ["", "| latency, 1 KB, one session | messages | median ms | p99 ms | max ms | "
                "added median ms | added p99 ms |", "|---|---:|---:|---:|---:|---:|---:|"]
        for cfg in ordered(lat):
            if cfg in lat:
                v = lat[cfg]
                out.append(f"| {cfg} | {v['count']} | {fmt(v['median_ms'], 2)} | "
                           f"{fmt(v['p99_ms'], 2)} | {fmt(v.get('max_ms'), 1)} | "
                           f"{fmt(v.get('added_median_ms'), 2)} | "
                           f"{fmt(v.get('added_p99_ms'), 2)} |")
    out += ["", "| target | value | limit | met |", "|---|---:|---:|---|"]
    for t in tgts:
        met = {True: "yes", False: "**NO**", None: "not measured"}[t["met"]]
        out.append(f"| {t['target']} | {fmt(t['value'], 2)} | {t.get('op', '')} {t['limit']} | "
                   f"{met} |")
    return "\n".join(out) + "\n"


def git_commit():
    try:
        return subprocess.run(["git", "-C", TOP, "describe", "--always", "--dirty"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        return "unknown"


def draw(out_dir, stamp):
    """results.png (and its stamped copy) by tests/bench/plot.py; a failure
    to draw is reported, not fatal: the figures are already written."""
    png = os.path.join(out_dir, "results.png")
    # Debian's interpreter, where python3-matplotlib is (the python3 that
    # runs this script may be another one, e.g. a pyenv's, without it).
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    try:
        subprocess.run([py, PLOT, os.path.join(out_dir, "results.json"), png],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True,
                       timeout=120)
        shutil.copyfile(png, os.path.join(out_dir, f"results-{stamp}.png"))
        say(f"written: {png}")
    except (OSError, subprocess.SubprocessError) as e:
        say(f"no picture ({e}): is python3-matplotlib installed (packaging/install-deps bench)?")


def run_micro(args, out_dir):
    exe = os.path.join(args.build, "bin", "bench-micro")
    say("micro-benchmarks (bench-micro)")
    path = os.path.join(out_dir, "micro.json")
    subprocess.run([exe, f"--benchmark_out={path}", "--benchmark_out_format=json"],
                   check=True, timeout=600)
    say(f"micro-benchmark figures: {path}")


def main():
    ap = argparse.ArgumentParser(description="rt-milter side-by-side benchmark (see the header of tests/bench/bench.py)")
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("--out", default=None, help="default BUILD/bench")
    ap.add_argument("--configs", default=",".join(ALL_CONFIGS))
    ap.add_argument("--compare", metavar="BUILD", default=None,
                    help="another build folder (e.g. of an older commit): each rt-milter and pipe "
                         "configuration is run a second time, named CONFIG@base, with its binaries")
    ap.add_argument("--sizes", default=",".join(SIZES))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--latency-count", type=int, default=300,
                    help="messages per latency run (one per configuration and repetition)")
    ap.add_argument("--quick", action="store_true", help="fewer messages, one repetition")
    ap.add_argument("--no-micro", action="store_true")
    ap.add_argument("--micro-only", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--no-journal", action="store_true",
                    help="profiling: rt-milter without its duplicate journal (not a product setting "
                         "to benchmark against; shows what the journal costs)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (Postfix, Sendmail, nginx, cgroups)")
    configs = [c for c in args.configs.split(",") if c]
    sizes = [s for s in args.sizes.split(",") if s]
    for c in configs:
        if c not in ALL_CONFIGS:
            sys.exit(f"bench: unknown configuration {c} (known: {', '.join(ALL_CONFIGS)})")
    if args.compare:
        configs = [x for c in configs
                   for x in ([c, c + BASE_SUFFIX] if job(c) in DELIVERING else [c])]
    for s in sizes:
        if s not in SIZES:
            sys.exit(f"bench: unknown size {s} (known: {', '.join(SIZES)})")
    if args.quick:
        args.reps = 1
        args.latency_count = min(args.latency_count, 150)
    counts = QUICK_COUNTS if args.quick else COUNTS
    out_dir = args.out or os.path.join(args.build, "bench")
    os.makedirs(out_dir, exist_ok=True)
    if args.micro_only:
        run_micro(args, out_dir)
        return 0

    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    work = tempfile.mkdtemp(prefix="rtm-bench.")
    os.chmod(work, 0o755)
    cpu = CpuMeter()
    meta = {"started": started, "nproc": os.cpu_count(), "kernel": platform.release(),
            "commit": git_commit(), "sessions": args.sessions, "reps": args.reps,
            "cpu_mode": cpu.mode, "journal": not args.no_journal, "configs": configs, "sizes": sizes,
            "counts": {s: counts[s] for s in sizes}, "work": work}
    say(f"work folder {work}; CPU counted by {cpu.mode}")
    runs, latencies, sides = [], {}, {}
    standin = pg = None
    try:
        standin = StandIn(work, cpu)
        say(f"stand-in RT (nginx) at {standin.url}")
        if any(job(c) in ON_PG for c in configs) and not args.no_journal:
            pg = PgServer(work, cpu)
            say(f"journal PostgreSQL (tests/pg/pg_server.py): {pg.conninfo}")
        if any(mta_name(c) == "sendmail" for c in configs):
            Sendmail.fetch()
            say("Sendmail from packaging/sendmail-sandbox's cache of unpacked .debs")
        bindir = os.path.join(os.path.abspath(args.build), "bin")
        for cfg, path in (("perl-pipe", PERL_MAILGATE),
                          ("cxx-pipe", os.path.join(bindir, "rt-mailgate"))):
            if cfg in configs:
                say(f"{cfg}: side runs of {path} for CPU and peak RSS")
                sides[cfg] = pipe_side_runs(path, standin, work, sizes)
        seq = 0
        for rep in range(args.reps):
            for cfg in configs:
                gateway = mta = None
                try:
                    gateway = Gateway(cfg, args, work, standin, cpu, pg)
                    mta = start_mta(cfg, work, gateway, cpu)
                    for size_name in sizes:
                        fast, cxx, perl = counts[size_name]
                        n = perl if cfg == "perl-pipe" else cxx if cfg == "cxx-pipe" else fast
                        seq += 1
                        tag = f"{os.getpid()}-{seq}"
                        r = throughput_run(cfg, size_name, n, args, mta, gateway, standin,
                                           cpu, tag)
                        r["rep"] = rep
                        if gateway.proc:
                            r["peak_rss_kb"] = gateway.hwm_kb()
                        runs.append(r)
                        say(f"rep {rep + 1}/{args.reps} {cfg:19s} {size_name:4s} n={n:<5d} "
                            f"{r['msgs_per_s']:8.1f} msgs/s  {r['sut_cpu_ms_per_msg']:7.2f} "
                            f"CPU ms/msg  delivered {r['delivered_to_rt']}"
                            + (f"  (PostgreSQL {r['pg_cpu_ms_per_msg']:.2f} CPU ms/msg)"
                               if r.get("pg_cpu_ms_per_msg") is not None else "")
                            + (f"  ({r['scrapes']} scrapes, {r['failed_scrapes']} failed"
                               + (f": {r['scrape_error']}" if r["failed_scrapes"] else "") + ")"
                               if "scrapes" in r else "")
                            + ("" if r["ok"] else f"  FAILED rc={r['client_rc']} "
                               f"queued {r['queued_at_end']} {r['client_error'][-200:]}"))
                    if job(cfg) in MILTERS or job(cfg) == "postfix-only":
                        ms, fails = latency_run(mta.port, args.latency_count,
                                                f"{os.getpid()}-{cfg}-{rep}")
                        lv = latencies.setdefault(cfg, {"ms": [], "failures": 0})
                        lv["ms"] += ms
                        lv["failures"] += fails
                        say(f"rep {rep + 1}/{args.reps} {cfg:19s} latency median "
                            f"{statistics.median(ms) if ms else float('nan'):.2f} ms, "
                            f"{fails} failed")
                finally:
                    if mta:
                        mta.stop()
                    if gateway:
                        gateway.stop()
    finally:
        if standin:
            standin.stop()
        if pg:
            pg.stop()
        cpu.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    table, lat = summarize(runs, latencies, sides)
    tgts = targets(table, lat)
    md = markdown(meta, table, lat, tgts)
    result = {"meta": meta, "table": table, "latency": lat, "targets": tgts, "runs": runs,
              "pipe_side_runs": sides}
    stamp = started.replace(":", "").replace("-", "")
    for name in ("results", f"results-{stamp}"):
        with open(os.path.join(out_dir, name + ".json"), "w") as f:
            json.dump(result, f, indent=2)
        with open(os.path.join(out_dir, name + ".md"), "w") as f:
            f.write(md)
    print()
    print(md)
    say(f"written: {out_dir}/results.json, {out_dir}/results.md")
    draw(out_dir, stamp)
    if not args.no_micro:
        run_micro(args, out_dir)
    failed = sum(1 for r in runs if not r["ok"])
    if failed:
        say(f"{failed} run(s) failed: see client_error in results.json")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
