"""verifiers — the MTA's own DKIM and DMARC verifiers for the end-to-end
suite (issue 11): a real OpenDKIM and a real OpenDMARC (Debian packages
opendkim and opendmarc), each a milter on a unix socket, set up as
packaging/postfix/README tells a site to (AuthservID, AuthservIDWithJobID,
RemoveARAll; TrustedAuthservIDs), listed before rt-milter in the pair's
smtpd_milters. Also the sending side: DKIM keys of two domains and the
signing of a message as such a domain's own server would (python3-dkim,
rsa-sha256, relaxed/relaxed).

No DNS: the public keys and the DMARC records come from the verifiers'
test data sets (OpenDKIM's TestDNSData, opendkim.conf(5); OpenDMARC's
TestDNSData, read by opendmarc 1.4's dmarcf_load_dnsdata though its man page
does not list it), files of "NAME VALUE" lines. Test settings besides what
the README asks for: Mode v (verify only), InternalHosts and IgnoreHosts
set to 192.0.2.1 (their default, 127.0.0.1, is where every test client
comes from: OpenDKIM would sign that mail and OpenDMARC skip it),
SPFSelfValidate no (no DNS for SPF; DMARC then rests on DKIM alone).

Owns DIR (a pair's verifiers/ folder) and nothing outside it:
  keys/DOMAIN.pem       a sender domain's private key (selector "s1")
  dns-dkim, dns-dmarc   the test data sets
  opendkim/, opendmarc/ NAME.conf, NAME.sock, NAME.pid, NAME.out (stderr)
The daemons run in the foreground (-f) as their packages' users, started
by whichever process calls start() and stopped by the pid in NAME.pid,
checked against /proc (executable and config path), never by name.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import time

AUTHSERV_ID = "mx.rt.example.com"     # what the verifiers write and rt-milter trusts
SELECTOR = "s1"
STAFF_DOMAIN = "example.com"          # RT's staff user is staff@example.com
OTHER_DOMAIN = "other.example"        # signs, but is not the From: domain
# DMARC records: the staff domain publishes p=reject, the other p=none.
DMARC = {STAFF_DOMAIN: "v=DMARC1; p=reject", OTHER_DOMAIN: "v=DMARC1; p=none"}
NOT_A_CLIENT = "192.0.2.1"            # TEST-NET-1: InternalHosts / IgnoreHosts
START_WAIT = 20.0                      # s for a socket to appear
STOP_WAIT = 15.0                       # s for both to go after SIGTERM (~2 and ~5 s here)


def _daemon_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(f"no user {name}: install the Debian package {name} "
                           "(packaging/install-deps test)") from None


class Verifiers:
    """OpenDKIM and OpenDMARC of one pair, in DIR."""

    DAEMONS = {"opendkim": "/usr/sbin/opendkim", "opendmarc": "/usr/sbin/opendmarc"}

    def __init__(self, folder: str):
        self.dir = folder
        self.keys = os.path.join(folder, "keys")
        self.procs = []   # the daemons this process started, reaped at stop()

    def path(self, name: str, ext: str) -> str:
        return os.path.join(self.dir, name, f"{name}.{ext}")

    def socket_spec(self, name: str) -> str:
        """libmilter syntax, as postfix-sandbox --milter wants it."""
        return "unix:" + self.path(name, "sock")

    @property
    def milters(self) -> list:
        """In the order they must run: OpenDKIM's result is what OpenDMARC reads."""
        return [self.socket_spec("opendkim"), self.socket_spec("opendmarc")]

    # ----- keys and signing ---------------------------------------------
    def key_path(self, domain: str) -> str:
        return os.path.join(self.keys, f"{domain}.pem")

    def _make_key(self, domain: str) -> str:
        """A new 2048-bit key for domain; its DKIM TXT record."""
        key = self.key_path(domain)
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:2048", "-out", key], check=True,
                       capture_output=True, timeout=60)
        der = subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "PEM"],
                             check=True, capture_output=True, timeout=60).stdout.decode()
        p = "".join(line for line in der.splitlines() if not line.startswith("-----"))
        return f"v=DKIM1;k=rsa;p={p}"   # no white space: the value of a data set line

    def sign(self, message: bytes, domain: str) -> bytes:
        """message with a DKIM-Signature of domain on top (From, To, Subject,
        Date, Message-ID signed)."""
        import dkim  # python3-dkim; here, so that listing the tests does not need it
        with open(self.key_path(domain), "rb") as f:
            key = f.read()
        sig = dkim.sign(message, SELECTOR.encode(), domain.encode(), key,
                        canonicalize=(b"relaxed", b"relaxed"),
                        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
        return sig + message

    # ----- configuration ------------------------------------------------
    def _write(self, path: str, text: str, mode: int = 0o644) -> None:
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)

    def _folder(self, path: str, user: pwd.struct_passwd | None = None) -> None:
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o755)
        if user:
            os.chown(path, user.pw_uid, user.pw_gid)

    def write(self) -> None:
        self._folder(self.dir)
        self._folder(self.keys)
        os.chmod(self.keys, 0o700)
        records = {f"{SELECTOR}._domainkey.{d}": self._make_key(d)
                   for d in (STAFF_DOMAIN, OTHER_DOMAIN)}
        self._write(os.path.join(self.dir, "dns-dkim"),
                    "".join(f"{k} {v}\n" for k, v in records.items()))
        self._write(os.path.join(self.dir, "dns-dmarc"),
                    "".join(f"_dmarc.{d} {v}\n" for d, v in DMARC.items()))
        self._write(os.path.join(self.dir, "not-a-client"), NOT_A_CLIENT + "\n")
        common = (f"AuthservID {AUTHSERV_ID}\nAuthservIDWithJobID yes\nSyslog no\n"
                  "UMask 000\n")
        for name in self.DAEMONS:
            self._folder(os.path.join(self.dir, name), _daemon_user(name))
        self._write(self.path("opendkim", "conf"), common + f"""\
Mode v
RemoveARAll yes
Socket local:{self.path("opendkim", "sock")}
PidFile {self.path("opendkim", "pid")}
UserID opendkim
TestDNSData file:{self.dir}/dns-dkim
InternalHosts {self.dir}/not-a-client
""")
        self._write(self.path("opendmarc", "conf"), common + f"""\
TrustedAuthservIDs {AUTHSERV_ID}
Socket local:{self.path("opendmarc", "sock")}
PidFile {self.path("opendmarc", "pid")}
UserID opendmarc
TestDNSData {self.dir}/dns-dmarc
IgnoreHosts {self.dir}/not-a-client
SPFSelfValidate no
RejectFailures false
""")

    # ----- processes ----------------------------------------------------
    def _conf_flag(self, name: str) -> str:
        return "-x" if name == "opendkim" else "-c"

    def start(self) -> None:
        """Fresh keys and configuration, then both daemons; returns when both
        sockets accept."""
        self.stop()
        self.write()
        for name, exe in self.DAEMONS.items():
            for ext in ("sock", "pid"):
                if os.path.lexists(self.path(name, ext)):
                    os.unlink(self.path(name, ext))
            with open(self.path(name, "out"), "wb") as out:
                self.procs.append(subprocess.Popen([exe, "-f", self._conf_flag(name), self.path(name, "conf")],
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 start_new_session=True))
        deadline = time.monotonic() + START_WAIT
        for name in self.DAEMONS:
            while not (os.path.exists(self.path(name, "sock")) and self.pid(name)):
                if time.monotonic() > deadline:
                    with open(self.path(name, "out"), errors="replace") as f:
                        raise RuntimeError(f"{name} did not start in {START_WAIT} s: {f.read()}")
                time.sleep(0.05)

    def pid(self, name: str) -> int | None:
        """The live daemon of this folder named name, else None."""
        try:
            with open(self.path(name, "pid")) as f:
                pid = int(f.read().split()[0])
            exe = os.readlink(f"/proc/{pid}/exe")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except (OSError, ValueError, IndexError):
            return None
        if os.path.basename(exe) != name or self.path(name, "conf") not in argv:
            return None
        return pid

    def stop(self) -> list:
        """SIGTERM each live daemon, SIGKILL after STOP_WAIT; what needed
        SIGKILL (should be [])."""
        problems = []
        live = {name: pid for name in self.DAEMONS if (pid := self.pid(name))}
        for pid in live.values():  # both at once: each takes seconds to go
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT
        while any(self.pid(name) for name in live) and time.monotonic() < deadline:
            time.sleep(0.05)
        for name, pid in live.items():
            if self.pid(name) == pid:
                problems.append(f"{name} {pid} outlived SIGTERM by {STOP_WAIT} s")
                os.kill(pid, signal.SIGKILL)
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                problems.append(f"{proc.args[0]} {proc.pid} not reaped")
        self.procs = []
        return problems
