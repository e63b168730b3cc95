"""package_harness — the harness of the package suite (tests/package): the
Debian package built from the checkout by packaging/build-deb, installed on
this machine with apt-get as a postmaster would, run the way its systemd
unit runs it, removed and purged.

Owns PACKAGE_DIR ($PACKAGE_DIR, else build/package): the .deb and its build
log (deb/), the private chrooted Postfix of the delivery test (postfix/),
the shims the pasted recipe runs with (shims/); and, while the suite runs,
the package rt-milter on this machine (/usr/sbin/rt-milter, /etc/rt-milter,
/var/lib/rt-milter, /var/spool/rt-milter, the alternatives of rt-mailgate).
It starts the fixture by purging any rt-milter package left installed, so
every run begins with a fresh install. Must not: touch the system's own
Postfix instance (the delivery test's Postfix is a postfix-sandbox; its
queue directory is bind-mounted over /var/spool/postfix only inside a
private mount namespace), or signal a process it did not start.

There is no systemd as PID 1 on the test machines: UnitRun does what
systemd does with the installed unit's settings (User=, Group= with the
user's supplementary groups, RuntimeDirectory=, StateDirectory=, a clean
environment, NOTIFY_SOCKET for Type=notify, ExecStartPre=, ExecStart=).
The sandboxing settings (ProtectSystem=, SystemCallFilter=, ...) are not
applied here; `systemd-analyze security --offline` and `verify` check them.

CLI (ctest's fixtures):
  python3 package_harness.py build     packaging/build-deb -o PACKAGE_DIR/deb
  python3 package_harness.py install   purge a leftover, apt-get install the .deb
"""

from __future__ import annotations

import glob
import grp
import gzip
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
import time
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "milter"))

from milter_harness import read_unit  # noqa: E402  (also test_package's ph.read_unit)
PACKAGE_DIR = os.path.realpath(os.environ.get("PACKAGE_DIR")
                               or os.path.join(REPO, "build", "package"))
DEB_DIR = os.path.join(PACKAGE_DIR, "deb")
BUILD_DEB = os.path.join(REPO, "packaging", "build-deb")

PACKAGE = "rt-milter"
BINARY = "/usr/sbin/rt-milter"
MAILGATE = "/usr/bin/rt-mailgate-milter"
CONFFILE = "/etc/rt-milter/rt-milter.toml"
STATE_DIR = "/var/lib/rt-milter"
SPOOL_DIR = "/var/spool/rt-milter"
CHROOT_SOCKET_DIR = "/var/spool/postfix/rt-milter"
DOC_DIR = "/usr/share/doc/rt-milter"
TMPFILES = "/usr/lib/tmpfiles.d/rt-milter.conf"
UNIT_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/system")
SERVICE_USER = "rt-milter"
PASTE_BEGIN, PASTE_END = "# --- paste: begin", "# --- paste: end"

BUILD_TIMEOUT = 1200   # s: a Release build of the whole project on 2 cores
APT_TIMEOUT = 300      # s: apt-get/dpkg runs (apt may fetch dependencies)
RUN_BOUND = 30         # s: ExecStartPre, a check, READY=1, a stop


def say(msg: str) -> None:
    print(f"package: {msg}", file=sys.stderr, flush=True)


def run(cmd, timeout: float = RUN_BOUND, check: bool = False, **kw) -> subprocess.CompletedProcess:
    """cmd with its output captured as text; raises on timeout, and on a
    non-zero exit when check (the message holds the output)."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)}: exit {r.returncode}\n{r.stdout}{r.stderr}")
    return r


def apt_env() -> dict:
    return dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C.UTF-8")


# --------------------------------------------------------------------------
# The package
# --------------------------------------------------------------------------

def deb_path() -> str:
    """The one .deb packaging/build-deb left in DEB_DIR."""
    debs = sorted(glob.glob(os.path.join(DEB_DIR, f"{PACKAGE}_*.deb")))
    if len(debs) != 1:
        raise RuntimeError(f"expected one {PACKAGE}_*.deb in {DEB_DIR}, found {debs}: "
                           "run the fixture package.fixture.deb (package_harness.py build)")
    return debs[0]


def build() -> str:
    """packaging/build-deb into a fresh DEB_DIR; the .deb's path."""
    shutil.rmtree(DEB_DIR, ignore_errors=True)
    os.makedirs(DEB_DIR)
    log = os.path.join(PACKAGE_DIR, "build-deb.log")
    t0 = time.monotonic()
    with open(log, "w") as fh:
        r = subprocess.run([BUILD_DEB, "-o", DEB_DIR], stdin=subprocess.DEVNULL, stdout=fh,
                           stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT, cwd=REPO)
    with open(log, errors="replace") as fh:
        text = fh.read()
    if r.returncode != 0:
        raise RuntimeError(f"packaging/build-deb failed (exit {r.returncode}); its log "
                           f"{log} ends:\n{text[-6000:]}")
    deb = deb_path()
    say(f"built {deb} in {time.monotonic() - t0:.0f} s")
    return deb


def dpkg_status() -> str:
    """dpkg's status of the package ("install ok installed", "deinstall ok
    config-files", ...) or "" when dpkg does not know it."""
    r = run(["dpkg-query", "-W", "-f=${Status}", PACKAGE])
    return r.stdout.strip() if r.returncode == 0 else ""


def purge_leftover() -> None:
    if dpkg_status():
        say(f"purging the {PACKAGE} package a previous run left ({dpkg_status()})")
        run(["dpkg", "--purge", PACKAGE], timeout=APT_TIMEOUT, check=True, env=apt_env())


def install() -> None:
    purge_leftover()
    deb = deb_path()
    r = run(["apt-get", "install", "-y", "--no-install-recommends", deb], timeout=APT_TIMEOUT,
            env=apt_env())
    if r.returncode != 0 or dpkg_status() != "install ok installed":
        raise RuntimeError(f"apt-get install {deb}: exit {r.returncode}, status "
                           f"{dpkg_status()!r}\n{r.stdout}{r.stderr}")
    say(f"installed {deb}")


def unit_path() -> str:
    for d in UNIT_DIRS:
        path = os.path.join(d, f"{PACKAGE}.service")
        if os.path.exists(path):
            return path
    raise RuntimeError(f"no {PACKAGE}.service in {UNIT_DIRS}")


def read_doc(path: str) -> str:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", errors="replace") as fh:
        return fh.read()


def paste_block() -> tuple:
    """(files, lines): the Postfix recipe's block of commands between
    PASTE_BEGIN and PASTE_END, as installed under DOC_DIR (every file that
    quotes it must quote the same commands)."""
    blocks = {}
    for root, _, files in os.walk(DOC_DIR):
        for name in sorted(files):
            path = os.path.join(root, name)
            lines = [l.strip() for l in read_doc(path).splitlines()]
            if PASTE_BEGIN in lines:
                block = lines[lines.index(PASTE_BEGIN) + 1:lines.index(PASTE_END)]
                blocks[path] = tuple(l for l in block if l and not l.startswith("#"))
    if not blocks or len(set(blocks.values())) != 1:
        raise RuntimeError(f"expected one block {PASTE_BEGIN!r} ... {PASTE_END!r} under "
                           f"{DOC_DIR}, found {blocks}")
    return sorted(blocks), list(next(iter(blocks.values())))


def processes_of(exe: str) -> list:
    """Pids whose executable is exe (also when it was deleted since)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            target = os.readlink(f"/proc/{d}/exe")
        except OSError:
            continue
        if target == exe or target == exe + " (deleted)":
            pids.append(int(d))
    return pids


# --------------------------------------------------------------------------
# The unit, run as systemd would
# --------------------------------------------------------------------------

class Namespace:
    """A private mount namespace in which `source` is bind-mounted over
    `target`, held by a sleeping process of ours; commands enter it with
    nsenter. Nothing outside the namespace sees the mount."""

    def __init__(self, source: str, target: str):
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
             'mount --bind "$1" "$2" && echo ready && exec sleep 3600', "_", source, target],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.proc.kill()
            raise RuntimeError(f"mount namespace: {line} {self.proc.stderr.read()}")

    def argv(self, cmd: list) -> list:
        return ["nsenter", "-t", str(self.proc.pid), "-m", "--", *cmd]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(RUN_BOUND)


class Notify:
    """A NOTIFY_SOCKET of our own: the datagrams sd_notify sends."""

    def __init__(self, directory: str):
        os.makedirs(directory, exist_ok=True)
        os.chmod(directory, 0o755)
        self.path = os.path.join(directory, "notify.sock")
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.messages = []

    def wait_for(self, field: str, timeout: float = RUN_BOUND, alive=lambda: True) -> bool:
        """Collect datagrams until one carries the line `field` (e.g.
        READY=1), for at most timeout seconds, or until alive() is false."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(field in m.splitlines() for m in self.messages):
                return True
            self.sock.settimeout(0.2)
            try:
                self.messages.append(self.sock.recv(4096).decode(errors="replace"))
            except socket.timeout:
                if not alive():
                    return any(field in m.splitlines() for m in self.messages)
        return any(field in m.splitlines() for m in self.messages)

    def close(self) -> None:
        self.sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


class UnitRun:
    """The installed unit's ExecStartPre= and ExecStart=, as its User= and
    Group= (with the user's supplementary groups, as systemd's initgroups
    gives them), after the RuntimeDirectory= and StateDirectory= systemd
    makes, in a clean environment with NOTIFY_SOCKET; stderr (the journal
    under systemd) goes to a log file. `wrap` turns a command line into the
    one to run (e.g. Namespace.argv)."""

    def __init__(self, log_path: str, notify: Notify, wrap=lambda argv: argv):
        self.unit = read_unit(unit_path())
        self.user = self.unit["User"][-1]
        self.group = self.unit.get("Group", [self.user])[-1]
        self.log_path = log_path
        self.notify = notify
        self.wrap = wrap
        self.proc: Optional[subprocess.Popen] = None
        self.made_dirs = []

    def make_directories(self) -> None:
        pw = pwd.getpwnam(self.user)
        gid = grp.getgrnam(self.group).gr_gid
        for key, base in (("RuntimeDirectory", "/run"), ("StateDirectory", "/var/lib")):
            mode = int(self.unit.get(key + "Mode", ["0755"])[-1], 8)
            for name in " ".join(self.unit.get(key, [])).split():
                path = os.path.join(base, name)
                if not os.path.isdir(path):
                    os.makedirs(path)
                    if base == "/run":
                        self.made_dirs.append(path)
                os.chown(path, pw.pw_uid, gid)
                os.chmod(path, mode)

    def command(self, key: str) -> list:
        (line,) = self.unit[key]
        argv = shlex.split(line.lstrip("-@:+!"))
        pw = pwd.getpwnam(self.user)
        gid = grp.getgrnam(self.group).gr_gid
        groups = ",".join(str(g) for g in os.getgrouplist(self.user, gid))
        as_user = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={gid}", f"--groups={groups}", "--"]
        return self.wrap(as_user + argv)

    def env(self) -> dict:
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "LANG": "C.UTF-8", "NOTIFY_SOCKET": self.notify.path}
        return env

    def start_pre(self) -> subprocess.CompletedProcess:
        return run(self.command("ExecStartPre"), env=self.env(), cwd="/")

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command("ExecStart"), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, env=self.env(), cwd="/")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as fh:
                return fh.read()
        except FileNotFoundError:
            return ""

    def main_pid(self) -> Optional[int]:
        """The daemon's own pid (nsenter and setpriv exec it, so it is
        ours); None once it has gone."""
        return self.proc.pid if self.alive() else None

    def stop(self) -> Optional[int]:
        """SIGTERM, as systemctl stop sends; the exit status (None if it
        had to be killed after RUN_BOUND)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(RUN_BOUND)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(RUN_BOUND)
                return None
        return self.proc.returncode

    def remove_directories(self) -> None:
        """RuntimeDirectory= goes when the unit stops."""
        for path in self.made_dirs:
            shutil.rmtree(path, ignore_errors=True)


def main(argv: list) -> int:
    if len(argv) != 2 or argv[1] not in ("build", "install"):
        print(__doc__, file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("package_harness: needs root (apt-get, dpkg, users)", file=sys.stderr)
        return 1
    os.makedirs(PACKAGE_DIR, exist_ok=True)
    try:
        build() if argv[1] == "build" else install()
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"package_harness {argv[1]}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
