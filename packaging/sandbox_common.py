"""sandbox_common — what the three sandboxes (packaging/postfix-sandbox,
packaging/sendmail-sandbox, packaging/rt-sandbox) share; python3 stdlib only.

It owns:
  - the sandbox folder DIR's bookkeeping: the marker file, claiming a folder
    only when empty or already the tool's, the DIR/.lock flock, --fresh's
    wipe of named entries (SandboxDir);
  - DIR/env, the shell-sourceable KEY=value file every sandbox writes: the
    writer (SandboxDir.write_env, values quoted with shlex.quote) and the one
    reader (read_env), which the tests use too;
  - /proc scanning (stat, environment, executable of a pid) and signalling
    pids (never names);
  - loopback ports: free or not, a free one in 20000-31999, the choice
    between --port, the previous port and a fresh one; the SMTP greeting
    probe and the greeting token of the two MTA sandboxes;
  - the command line the two MTA sandboxes share: their common start
    options and checks, the fallback mapping's names (rt-queue, rt-alias),
    the sb-maildir delivery script, the env values, status, and the part of
    main() that runs start/stop/status/flush (run_mta_command; rt-sandbox
    shares only its stop/status part, SandboxDir.run_on_dir).
What each MTA or RT does (configuration, start, stop) stays in its script.
The scripts put their own folder (symlinks resolved) first on sys.path and
import this file from there, so it works wherever packaging/ is copied, as
long as the file moves with them.
"""

import fcntl
import hashlib
import os
import pwd
import random
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time

HOST = "127.0.0.1"
DELIVERY_USER = "nobody"    # the MTAs' mailers (maildirs and rt-mailgate) run as this
LOCAL_PART = r"[a-z0-9_][a-z0-9_.=-]*"
PORT_RANGE = (20000, 32000)  # below Linux's ephemeral range: outgoing connections cannot grab it
LOCK_WAIT = 300.0            # seconds for DIR/.lock


class SandboxError(Exception):
    pass


def sayer(prog):
    """say(msg) for the tool prog: one line on stderr, prefixed with its name."""
    def say(msg):
        print(f"{prog}: {msg}", file=sys.stderr, flush=True)
    return say


def tail(path, lines=30):
    """The last lines of a log, indented for an error message."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return f"  ({path}: not found)"
    text = data.decode("utf-8", "replace").splitlines()[-lines:]
    return "\n".join(f"  | {l}" for l in text) or f"  ({path}: empty)"


def flock(path, seconds):
    """An fd holding an exclusive flock on path (created if needed)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise SandboxError(f"{path} stayed locked for {seconds:.0f} s")
            time.sleep(0.2)


def wait_until(pred, seconds, step=0.05):
    """Poll pred() until true or seconds have passed; its last value."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


# --------------------------------------------------------------------------
# DIR/env
# --------------------------------------------------------------------------

def env_text(prog, values):
    """DIR/env's text: a header line, then KEY=value, value shlex-quoted."""
    return (f"# Written by packaging/{prog}; shell-sourceable.\n"
            + "".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items()))


def read_env(path):
    """DIR/env of any sandbox -> {KEY: value}: undoes env_text's shlex
    quoting (so a value holding quotes or white space comes back whole)."""
    values = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, eq, value = line.partition("=")
            words = shlex.split(value)
            if not eq or len(words) > 1:
                raise ValueError(f"{path}:{n}: not KEY=one-shell-word: {line!r}")
            values[key] = words[0] if words else ""
    return values


# --------------------------------------------------------------------------
# Processes (by pid, through /proc)
# --------------------------------------------------------------------------

def proc_stat(pid):
    """(state, pgrp, starttime) of pid, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], int(fields[2]), fields[19]


def live_processes():
    """(pid, proc_stat) of every live (non-zombie) process but this one."""
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            st = proc_stat(int(name))
            if st and st[0] not in "ZX":
                yield int(name), st


def is_live(pid):
    st = proc_stat(pid)
    return bool(st) and st[0] not in "ZX"


def environ_has(pid, entry):
    """True if pid's environment holds the exact entry NAME=VALUE."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
    except OSError:
        return False
    return entry.encode() in env


def exe_of(pid):
    """The executable of pid (even when since deleted), or None."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
    return exe.removesuffix(" (deleted)")


def read_pid(path):
    """The first number in a pid file, or None."""
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def kill_pids(pids, sig):
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


# --------------------------------------------------------------------------
# Users
# --------------------------------------------------------------------------

def user_can_search(user, path):
    """True if user (without supplementary groups) may `test -x` path."""
    pw = pwd.getpwnam(user)
    return subprocess.run(["/bin/test", "-x", path], user=pw.pw_uid, group=pw.pw_gid,
                          extra_groups=[]).returncode == 0


def check_users_reach(users, d):
    for user in users:
        if not user_can_search(user, d):
            raise SandboxError(
                f"user {user} cannot reach {d}: make its parent folders "
                "searchable (chmod o+x) or choose a DIR elsewhere")


# --------------------------------------------------------------------------
# Ports
# --------------------------------------------------------------------------

def port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pick_port():
    for _ in range(100):
        port = random.randrange(*PORT_RANGE)
        if port_free(port):
            return port
    raise SandboxError("found no free loopback port in 20000-31999")


def choose_port(requested, previous):
    """--port if given (and free), else the previous start's port if free,
    else a free one: a DIR keeps its port across restarts."""
    if requested:
        if not port_free(requested):
            raise SandboxError(f"port {requested} on {HOST} is already in use")
        return requested
    return previous if previous and port_free(previous) else pick_port()


def port_in_file(path, pattern):
    """The port a config file names (group 1 of the line pattern), or None:
    the port of DIR's last start."""
    try:
        with open(path) as f:
            m = re.search(pattern, f.read(), re.M)
    except OSError:
        return None
    return int(m.group(1)) if m else None


def refuse_other_port(d, port, requested, who):
    """A start of a running DIR may not ask for another port."""
    if requested and requested != port:
        raise SandboxError(f"already running in {d} on port {port} ({who}), "
                           f"not {requested}; stop it first")


def greeting_token(d):
    """Put in an MTA's 220 greeting, so a start never mistakes another MTA
    on the port for its own."""
    return "sandbox-" + hashlib.sha256(d.encode()).hexdigest()[:10]


def greeting(port, timeout=2.0, read_quit_reply=False):
    """The first line an SMTP server on HOST:port says, or None."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.settimeout(timeout)
            data = b""
            while b"\n" not in data:
                chunk = s.recv(512)
                if not chunk:
                    break
                data += chunk
            try:
                s.sendall(b"QUIT\r\n")
                if read_quit_reply:
                    s.recv(512)
            except OSError:
                pass
            return data.decode("latin-1").strip()
    except OSError:
        return None


# --------------------------------------------------------------------------
# The sandbox folder
# --------------------------------------------------------------------------

class SandboxDir:
    """DIR of the tool PROG: marker DIR/.PROG, DIR/.lock, DIR/env."""
    PROG = ""            # e.g. "postfix-sandbox"
    ARTICLE = "a"        # "This folder is a postfix-sandbox"
    DIR_MODE = None      # chmod of DIR at claim (None: left as made)

    def __init__(self, d):
        self.dir = os.path.realpath(d)
        self.marker = self.path("." + self.PROG)
        self.envfile = self.path("env")
        self.lockfile = self.path(".lock")

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def claim(self):
        """Create DIR, or accept it if empty or already ours."""
        if os.path.exists(self.dir):
            if not os.path.isdir(self.dir):
                raise SandboxError(f"{self.dir} exists and is not a folder")
            if not os.path.exists(self.marker) and os.listdir(self.dir):
                raise SandboxError(
                    f"{self.dir} is not empty and was not made by {self.PROG} "
                    f"(no {os.path.basename(self.marker)}); refusing to touch it")
        else:
            os.makedirs(self.dir)
        with open(self.marker, "w") as f:
            f.write(f"This folder is {self.ARTICLE} {self.PROG} (packaging/{self.PROG}).\n")
        if self.DIR_MODE is not None:
            os.chmod(self.dir, self.DIR_MODE)

    def lock(self):
        """Serialise start/stop on this DIR (held until the fd is closed)."""
        return flock(self.lockfile, LOCK_WAIT)

    def locked(self, fn, *args):
        """fn(*args) holding lock()."""
        fd = self.lock()
        try:
            return fn(*args)
        finally:
            os.close(fd)

    def wipe(self, names):
        """--fresh: remove these entries of DIR (only these)."""
        for name in names:
            p = self.path(name)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            elif os.path.lexists(p):
                os.unlink(p)

    def write_env(self, values):
        with open(self.envfile + ".tmp", "w") as f:
            f.write(env_text(self.PROG, values))
        os.replace(self.envfile + ".tmp", self.envfile)

    def run_on_dir(self, cmd, commands, say, strict=()):
        """The tail of main() for a command on an existing DIR: status of a
        folder that is no sandbox is 3, a command in strict fails there,
        others (stop) have nothing to do; else commands[cmd]() under the
        lock for stop, without it for the rest. Returns the exit status."""
        if not os.path.exists(self.marker):
            if cmd == "status":
                print(f"not running ({self.dir}: no sandbox)")
                return 3
            if cmd in strict:
                raise SandboxError(f"{self.dir} is not {self.ARTICLE} {self.PROG}")
            say(f"{self.dir} is not {self.ARTICLE} {self.PROG}; nothing to stop")
            return 0
        if cmd == "stop":
            self.locked(commands["stop"])
            return 0
        return commands[cmd]()


# --------------------------------------------------------------------------
# The two MTA sandboxes: start options, checks, env, status, delivery script
# --------------------------------------------------------------------------

def add_mta_start_options(s, milter_actions):
    """The start options postfix-sandbox and sendmail-sandbox share, but
    --fresh and --wait (add_fresh_and_wait), which come last."""
    s.add_argument("dir")
    s.add_argument("--port", type=int, default=0, help="default: a free port")
    s.add_argument("--milter", action="append", default=[], metavar="SPEC",
                   help="unix:/path or inet:PORT@HOST (repeatable)")
    s.add_argument("--milter-default-action", default="tempfail", choices=milter_actions)
    s.add_argument("--rt-domain", default="rt.example.com")
    s.add_argument("--local-domain", default="example.net")
    s.add_argument("--rt-fallback", metavar="URL",
                   help="deliver RT-domain mail to this RT through rt-mailgate")
    s.add_argument("--mailgate", metavar="PATH",
                   default=os.environ.get("RT_MAILGATE") or "/usr/bin/rt-mailgate")
    s.add_argument("--rt-queue", default="General",
                   help="queue of rt@ and rt-comment@ (default General)")
    s.add_argument("--rt-alias", action="append", default=[], metavar="NAME=QUEUE",
                   help="NAME@ and NAME-comment@ go to QUEUE (repeatable)")
    s.add_argument("--message-size-limit", type=int, default=300 * 1024 * 1024)
    s.add_argument("--discard-all", action="store_true",
                   help="discard every accepted recipient (benchmarks)")


def add_fresh_and_wait(s, default_wait):
    s.add_argument("--fresh", action="store_true",
                   help="stop and wipe queue, logs and mailboxes first")
    s.add_argument("--wait", type=float, default=default_wait)


def add_dir_commands(sub, commands):
    """Subcommands taking only DIR: [(name, help)]."""
    for name, hlp in commands:
        sub.add_parser(name, help=hlp).add_argument("dir")


def check_domain(d, what):
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+",
                        d):
        raise SandboxError(f"bad {what} {d!r}: want a lower-case dotted domain")
    return d


def rt_aliases(o):
    """[(local part, queue)]: rt -> --rt-queue, then every --rt-alias."""
    out = [("rt", o.rt_queue)]
    for item in o.rt_alias:
        name, _, queue = item.partition("=")
        out.append((name, queue))
    return out


def check_rt_names(o):
    queue_re = r"[A-Za-z0-9_]([A-Za-z0-9_. -]*[A-Za-z0-9_.-])?"  # spaces work as a next hop
    if not re.fullmatch(queue_re, o.rt_queue):
        raise SandboxError(f"bad --rt-queue {o.rt_queue!r}: want {queue_re}")
    seen = {"rt"}
    for item in o.rt_alias:
        name, eq, queue = item.partition("=")
        if (not eq or not re.fullmatch(LOCAL_PART, name) or name.endswith("-comment")
                or not re.fullmatch(queue_re, queue)):
            raise SandboxError(f"bad --rt-alias {item!r}: want NAME=QUEUE, NAME a "
                               f"lower-case local part not ending in -comment, QUEUE {queue_re}")
        if name in seen:
            raise SandboxError(f"--rt-alias {name!r} given twice (rt is --rt-queue)")
        seen.add(name)


def check_mta_start(a, milter_check, url_re, mailgate_may_have_space):
    """The checks of the shared start options; milter_check(spec) raises on
    a bad --milter. Resolves a.mailgate when --rt-fallback is given."""
    if a.port and not 0 < a.port < 65536:
        raise SandboxError(f"bad --port {a.port}")
    check_domain(a.rt_domain, "--rt-domain")
    check_domain(a.local_domain, "--local-domain")
    if a.rt_domain == a.local_domain:
        raise SandboxError("--rt-domain and --local-domain must differ")
    for m in a.milter:
        milter_check(m)
    if a.message_size_limit <= 0:
        raise SandboxError("--message-size-limit must be positive")
    check_rt_names(a)
    if not a.rt_fallback:
        return
    if not re.match(url_re, a.rt_fallback):
        raise SandboxError(f"bad --rt-fallback {a.rt_fallback!r}")
    a.mailgate = os.path.realpath(a.mailgate)
    if mailgate_may_have_space:
        if not os.access(a.mailgate, os.X_OK):
            raise SandboxError(f"--mailgate {a.mailgate}: not an executable")
    elif not os.access(a.mailgate, os.X_OK) or re.search(r"\s", a.mailgate):
        raise SandboxError(f"--mailgate {a.mailgate}: not an executable "
                           "(or its path has white space)")
    if not user_can_search(DELIVERY_USER, a.mailgate):
        raise SandboxError(f"user {DELIVERY_USER} cannot execute {a.mailgate} (a parent "
                           "folder not searchable?)")


def run_mta_command(sb, a, say, check_start):
    """main() of an MTA sandbox after parsing, for DIR's commands: start
    (check_start(a) first; prints the port), stop, status, flush. Returns
    the exit status; SandboxError passes through."""
    if a.cmd == "start":
        check_start(a)
        sb.claim()
        print(sb.locked(sb.start, a), flush=True)
        return 0
    return sb.run_on_dir(a.cmd, {"stop": sb.stop, "status": sb.status, "flush": sb.flush},
                         say, strict=("flush",))


def mta_env(mta, sb, o, port, pid, queue_dir):
    """The DIR/env values both MTA sandboxes write (each adds its own)."""
    return {
        "MTA": mta,
        "MTA_DIR": sb.dir,
        "MTA_PID": str(pid),
        "SMTP_HOST": HOST,
        "SMTP_PORT": str(port),
        "MAILLOG": sb.maillog,
        "MAILDIR": sb.mail,
        "RT_FALLBACK_MAILDIR": sb.rt_mail,
        "OUTGOING_MAILDIR": sb.outgoing,
        "QUEUE_DIR": queue_dir,
        "RT_DOMAIN": o.rt_domain,
        "LOCAL_DOMAIN": o.local_domain,
        "MILTER": ",".join(o.milter),
        "RT_FALLBACK_URL": o.rt_fallback or "",
    }


def mta_status(sb, pid, port, pid_label, greet):
    """status: 3 not running, 0 running and greeting with sb.token, 1 not
    answering; pid_label names the pid ("master", "pid")."""
    if not pid:
        print(f"not running ({sb.dir})")
        return 3
    token = sb.token
    g = greet(port) if port else None
    if g and g.startswith("220") and token in g:
        print(f"running {HOST}:{port} {pid_label} {pid}")
        return 0
    print(f"running {pid_label} {pid} but {HOST}:{port} does not greet ({g!r})")
    return 1


DELIVER_MAILDIR = r"""# Exit 67 (EX_NOUSER) for a bad USER, 75 (EX_TEMPFAIL) on any other error.
umask 022
base=@DIR@
case ${1-} in
  mail)
    u=$(printf '%s' "${2-}" | tr 'A-Z' 'a-z'); u=${u%%+*}
    case $u in
      ''|.*|*/*|*[!a-z0-9_.=-]*) echo "deliver-maildir: bad user '${2-}'" >&2; exit 67 ;;
    esac
    d=$base/mail/$u ;;
  rt-mail|outgoing) d=$base/$1 ;;
  *) echo "deliver-maildir: bad kind '${1-}'" >&2; exit 75 ;;
esac
mkdir -p "$d/tmp" "$d/new" "$d/cur" || exit 75
n=$(date +%s.%N).P$$.sandbox
cat > "$d/tmp/$n" || { rm -f "$d/tmp/$n"; exit 75; }
mv "$d/tmp/$n" "$d/new/$n" || exit 75
exit 0
"""


def deliver_maildir_script(header, d):
    """The shell script storing a delivery in d's maildirs (mail/USER,
    rt-mail, outgoing); header: its comment lines naming the mailer."""
    return "#!/bin/sh\n" + header + DELIVER_MAILDIR.replace("@DIR@", shlex.quote(d))
