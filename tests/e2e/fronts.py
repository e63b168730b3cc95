"""fronts — the web servers of packaging/nginx and packaging/apache in front
of the e2e suite's real RT, for test_gateway_front (issue 11, part 3).

Owns, in a folder the test gives it: a test CA and its certificates, made
with openssl on the fly (Credentials: a server certificate for localhost
and 127.0.0.1, a client certificate, a client certificate of another CA,
a secret file); a private nginx (Debian's nginx-light) or Apache (Debian's
apache2) that runs the shipped rt-gateway.conf with its paths, ports and
RT's address replaced — every text replaced must be in the recipe, so an
edit of the recipe that the test no longer matches fails loudly — on
127.0.0.1 only, started in the foreground and stopped by the pid it
started (SIGTERM, then SIGKILL after a bound). Must not: touch /etc/nginx,
/etc/apache2 or Debian's services, listen anywhere but loopback.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "relay"))
from rt_stub import TestCA  # noqa: E402

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
APACHE = shutil.which("apache2") or "/usr/sbin/apache2"
APACHE_MODULES = "/usr/lib/apache2/modules"
NGINX_RECIPE = os.path.join(REPO, "packaging", "nginx", "rt-gateway.conf")
APACHE_RECIPE = os.path.join(REPO, "packaging", "apache", "rt-gateway.conf")
SECRET = "5e1f0c0ffee2b1e5e1f0c0ffee2b1e5e1f0c0ffee2b1e5e1f0c0ffee2b1e5e"  # hex, as the READMEs make it
HEADER = "X-RT-Gateway-Secret"
START_BOUND = 15.0
STOP_BOUND = 10.0


class Credentials:
    """A test CA in folder/ca: server.pem/.key (localhost, 127.0.0.1),
    client.pem/.key (CN rt-milter-e2e), and rogue.pem/.key, a client
    certificate of another CA; folder/gateway.secret (mode 0600)."""

    def __init__(self, folder: str):
        ca_dir = os.path.join(folder, "ca")
        rogue_dir = os.path.join(folder, "rogue-ca")
        for d in (ca_dir, rogue_dir):
            os.makedirs(d, exist_ok=True)
        self.ca = TestCA(ca_dir)
        self.server = self.ca.issue("server", "localhost", "DNS:localhost,IP:127.0.0.1")
        self.client = self.ca.issue("client", "rt-milter-e2e", client=True)
        self.rogue = TestCA(rogue_dir, "another CA").issue("rogue", "rt-milter-e2e", client=True)
        self.secret = os.path.join(folder, "gateway.secret")
        with open(self.secret, "w") as fh:
            fh.write(SECRET + "\n")
        os.chmod(self.secret, 0o600)
        self.wrong_secret = os.path.join(folder, "wrong.secret")
        with open(self.wrong_secret, "w") as fh:
            fh.write(SECRET[::-1] + "\n")
        os.chmod(self.wrong_secret, 0o600)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def replace_all(text: str, replacements: list, recipe: str) -> str:
    """Each (old, new) replaced; each old must be in the recipe."""
    for old, new in replacements:
        if old not in text:
            raise AssertionError(f"{recipe} no longer has {old!r}: update tests/e2e/fronts.py")
        text = text.replace(old, new)
    return text


class Front:
    """One web server process in the foreground, in `folder`."""
    NAME = ""

    def __init__(self, folder: str, rt_url: str, creds: Credentials,
                 certificate: bool = True, secret: bool = True):
        self.dir = folder
        self.rt_url = rt_url.rstrip("/")
        self.creds = creds
        self.certificate = certificate   # the client certificate method kept
        self.secret = secret             # the secret header method on
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None
        os.makedirs(folder, exist_ok=True)
        os.chmod(folder, 0o755)
        for name in ("server.pem", "server.key"):
            shutil.copy(getattr(creds.server, "cert" if name.endswith("pem") else "key"),
                        os.path.join(folder, name))
        shutil.copy(creds.ca.cert, os.path.join(folder, "client-ca.pem"))
        self.error_log = os.path.join(folder, "error.log")
        self.access_log = os.path.join(folder, "access.log")

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def command(self) -> list:
        raise NotImplementedError

    def write(self) -> None:
        raise NotImplementedError

    def write_site(self, recipe: str, replacements: list, secret_name: str, secret_line: str) -> None:
        """The recipe with its texts replaced, as rt-gateway.conf, and the
        secret file it includes (mode 0600; empty without the secret)."""
        with open(recipe) as fh:
            site = replace_all(fh.read(), replacements, recipe)
        with open(os.path.join(self.dir, "rt-gateway.conf"), "w") as fh:
            fh.write(site)
        secret = os.path.join(self.dir, secret_name)
        with open(secret, "w") as fh:
            fh.write(secret_line if self.secret else "")
        os.chmod(secret, 0o600)

    def start(self) -> "Front":
        for _ in range(3):  # a port taken meanwhile: another one
            self.port = free_port()
            self.write()
            with open(os.path.join(self.dir, "stdout.log"), "ab") as out:
                self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=out,
                                             stderr=subprocess.STDOUT)
            deadline = time.monotonic() + START_BOUND
            while time.monotonic() < deadline and self.proc.poll() is None:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", self.port)) == 0:
                        return self
                time.sleep(0.05)
            self.stop()
        raise AssertionError(f"{self.NAME} did not come up on 127.0.0.1:{self.port}:\n{self.logs()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_BOUND)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_BOUND)
        self.proc = None

    def logs(self) -> str:
        out = []
        for path in (self.error_log, os.path.join(self.dir, "stdout.log")):
            try:
                with open(path, errors="replace") as fh:
                    out.append(f"{path}:\n{fh.read()[-3000:]}")
            except OSError:
                pass
        return "\n".join(out)

    def access_lines(self) -> list:
        try:
            with open(self.access_log, errors="replace") as fh:
                return fh.read().splitlines()
        except OSError:
            return []

    def gateway_statuses(self) -> list:
        """The status of each request for the mail gateway, in order."""
        return [int(m.group(1)) for line in self.access_lines()
                if (m := re.search(r'"POST /REST/1\.0/NoAuth/mail-gateway HTTP/1\.1" (\d{3}) ', line))]


# The gateway's path as a client may spell it: each must meet the lock
# (403), none may slip past it to RT.
GATEWAY_SPELLINGS = ("/REST/1.0/NoAuth/mail-gateway", "/REST/1.0/NoAuth//mail-gateway",
                     "//REST/1.0/NoAuth/mail-gateway", "/rest/1.0/noauth/MAIL-GATEWAY",
                     "/REST/1.0/NoAuth/mail-gateway/", "/REST/1.0/NoAuth/./mail-gateway",
                     "/REST/1.0/x/../NoAuth/mail-gateway", "/REST/1.0/NoAuth/mail%2Dgateway",
                     "/REST/1.0/NoAuth/mail-gateway?queue=General")


def post_status(front: "Front", path: str, ca: str) -> int:
    """The status of an empty POST to path at the front, with no credential."""
    context = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection("localhost", front.port, context=context, timeout=30)
    try:
        conn.request("POST", path, body=b"message=x",
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        return conn.getresponse().status
    finally:
        conn.close()


class NginxFront(Front):
    NAME = "nginx"

    def write(self) -> None:
        replacements = [("/etc/nginx/rt-gateway/", self.dir + "/"),
                        ("    listen 443 ssl;\n", f"    listen 127.0.0.1:{self.port} ssl;\n"),
                        ("    listen [::]:443 ssl;\n", ""),
                        ("proxy_pass http://127.0.0.1:8080;", f"proxy_pass {self.rt_url};")]
        if not self.certificate:  # as packaging/nginx/README says for the secret alone
            replacements += [("    ssl_client_certificate " + self.dir + "/client-ca.pem;\n", ""),
                             ("    ssl_verify_client optional;\n", "")]
        self.write_site(NGINX_RECIPE, replacements, "secret.map", f'"{SECRET}" 1;\n')
        tmp = os.path.join(self.dir, "tmp")
        os.makedirs(tmp, exist_ok=True)
        os.chmod(tmp, 0o755)
        with open(os.path.join(self.dir, "nginx.conf"), "w") as fh:
            fh.write(f"""# written by tests/e2e/fronts.py
daemon off;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.error_log} info;
events {{ worker_connections 64; }}
http {{
    access_log {self.access_log};
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {self.dir}/rt-gateway.conf;
}}
""")

    def command(self) -> list:
        return [NGINX, "-p", self.dir, "-c", os.path.join(self.dir, "nginx.conf")]


class ApacheFront(Front):
    NAME = "apache2"
    MODULES = ("mpm_event", "authz_core", "socache_shmcb", "ssl", "proxy", "proxy_http", "headers")

    def write(self) -> None:
        replacements = [("/etc/apache2/rt-gateway/", self.dir + "/"),
                        ("Listen 443\n", f"Listen 127.0.0.1:{self.port}\n"),
                        ("<VirtualHost *:443>", f"<VirtualHost 127.0.0.1:{self.port}>"),
                        ("http://127.0.0.1:8080/", self.rt_url + "/")]
        if not self.certificate:  # as packaging/apache/README says for the secret alone
            replacements += [("    SSLCACertificateFile " + self.dir + "/client-ca.pem\n", ""),
                             ("    SSLVerifyClient optional\n", ""), ("    SSLVerifyDepth 2\n", "")]
        self.write_site(APACHE_RECIPE, replacements, "secret.conf", f'Define RT_GATEWAY_SECRET "{SECRET}"\n')
        run = os.path.join(self.dir, "run")
        os.makedirs(run, exist_ok=True)
        loads = "".join(f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so\n" for m in self.MODULES)
        with open(os.path.join(self.dir, "apache2.conf"), "w") as fh:
            fh.write(f"""# written by tests/e2e/fronts.py
ServerRoot {self.dir}
ServerName localhost
DefaultRuntimeDir {run}
PidFile {run}/apache2.pid
Mutex file:{run} default
User www-data
Group www-data
{loads}ErrorLog {self.error_log}
LogLevel warn
LogFormat "%h %l %u %t \\"%r\\" %>s %b" common
CustomLog {self.access_log} common
Include {self.dir}/rt-gateway.conf
""")

    def command(self) -> list:
        return [APACHE, "-f", os.path.join(self.dir, "apache2.conf"), "-DFOREGROUND"]

    def configtest(self) -> subprocess.CompletedProcess:
        """apache2 -t, what apache2ctl configtest runs (port 443's text
        replaced by a free one, so the check sees what the test runs)."""
        if not self.port:
            self.port = free_port()
        self.write()
        return subprocess.run([APACHE, "-t", "-f", os.path.join(self.dir, "apache2.conf")],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
