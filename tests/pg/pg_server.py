"""pg_server — one private PostgreSQL 15 for the tests of the PostgreSQL
journal (tests/pg), started once per ctest run as a fixture.

Owns: the server's state directory (STATE, in the build tree: data
directory, unix socket directory, log, passfile, state.json, conninfo, command); choosing a
free loopback port; initdb (scram-sha-256 over TCP, trust over the private
socket); the role rt_milter (its password only in the passfile, mode 0600)
and the database rtmilter; starting and stopping the postmaster as the
user "postgres" (PostgreSQL refuses root), and stopping it by the pid it
recorded, bounded. Listens on 127.0.0.1 and the private socket only.

  pg_server.py start STATE    make everything new, start, write state.json
  pg_server.py stop STATE     stop the server (fixture cleanup), bounded
  pg_server.py pause STATE    stop it, keep the data (a test's outage)
  pg_server.py resume STATE   start it again on the same port
  pg_server.py conninfo STATE print the conninfo the tests use
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time

START_BOUND = 60.0   # s for pg_ctl start -w (initdb'd cluster, first start)
STOP_BOUND = 30.0    # s from SIGINT (fast shutdown) to exit
SERVER_USER = "postgres"


def bin_dir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if os.environ.get("RTM_PG_BIN"):
        return os.environ["RTM_PG_BIN"]
    if not found:
        sys.exit("pg_server: no PostgreSQL server (Debian: apt-get install postgresql-15)")
    return os.path.dirname(found[-1])


def as_server_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", SERVER_USER, "--"] + argv if os.geteuid() == 0 else argv


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def paths(state: str) -> dict:
    return {"data": os.path.join(state, "data"), "socket": os.path.join(state, "socket"),
            "log": os.path.join(state, "server.log"), "passfile": os.path.join(state, "pgpass"),
            "json": os.path.join(state, "state.json")}


def read_state(state: str) -> dict:
    with open(paths(state)["json"]) as fh:
        return json.load(fh)


def write_state(state: str, info: dict) -> None:
    with open(paths(state)["json"], "w") as fh:
        json.dump(info, fh)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def start_server(state: str, info: dict) -> None:
    p = paths(state)
    opts = f"-c listen_addresses=127.0.0.1 -p {info['port']} -k {p['socket']}"
    subprocess.run(as_server_user([os.path.join(info["bin"], "pg_ctl"), "-D", p["data"], "-l", p["log"],
                                   "-o", opts, "-w", "-t", str(int(START_BOUND)), "start"]),
                   check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(p["data"], "postmaster.pid")) as fh:
        info["pid"] = int(fh.readline())
    write_state(state, info)


def stop_server(state: str) -> None:
    info = read_state(state)
    pid = info.get("pid")
    if not pid or not pid_alive(pid):
        return
    os.kill(pid, signal.SIGINT)  # fast shutdown of our postmaster, by its recorded pid
    deadline = time.monotonic() + STOP_BOUND
    while pid_alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGQUIT)
            sys.exit(f"pg_server: postmaster {pid} did not stop in {STOP_BOUND:.0f} s")
        time.sleep(0.05)
    info["pid"] = None
    write_state(state, info)


def psql(info: dict, state: str, sql: str) -> None:
    subprocess.run(as_server_user([os.path.join(info["bin"], "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                                   "-h", paths(state)["socket"], "-p", str(info["port"]), "-U", SERVER_USER,
                                   "-d", "postgres", "-c", sql]), check=True)


def start(state: str) -> None:
    if os.path.exists(paths(state)["json"]):
        stop_server(state)  # one a killed run left
    shutil.rmtree(state, ignore_errors=True)
    p = paths(state)
    os.makedirs(p["socket"])
    if os.geteuid() == 0:
        user = pwd.getpwnam(SERVER_USER)
        for d in (state, p["socket"]):
            os.chown(d, user.pw_uid, user.pw_gid)
    os.chmod(state, 0o755)
    info = {"bin": bin_dir(), "port": free_port(), "pid": None}
    subprocess.run(as_server_user([os.path.join(info["bin"], "initdb"), "-D", p["data"], "-U", SERVER_USER,
                                   "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8"]),
                   check=True, stdout=subprocess.DEVNULL)
    start_server(state, info)
    password = secrets.token_hex(16)
    psql(info, state, f"CREATE ROLE rt_milter LOGIN PASSWORD '{password}'")
    psql(info, state, "CREATE DATABASE rtmilter OWNER rt_milter")
    # The password only here: libpq refuses a passfile others can read.
    fd = os.open(p["passfile"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"127.0.0.1:{info['port']}:rtmilter:rt_milter:{password}\n")
    info["conninfo"] = (f"host=127.0.0.1 port={info['port']} dbname=rtmilter user=rt_milter "
                        f"passfile={p['passfile']}")
    write_state(state, info)
    with open(os.path.join(state, "conninfo"), "w") as fh:
        fh.write(info["conninfo"] + "\n")
    with open(os.path.join(state, "command"), "w") as fh:  # how tests pause and resume it
        fh.write(f"{sys.executable} {os.path.abspath(__file__)}\n")
    print(info["conninfo"])


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    command, state = sys.argv[1], os.path.abspath(sys.argv[2])
    if command == "start":
        start(state)
    elif command in ("stop", "pause"):
        stop_server(state)
    elif command == "resume":
        start_server(state, read_state(state))
    elif command == "conninfo":
        print(read_state(state)["conninfo"])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
