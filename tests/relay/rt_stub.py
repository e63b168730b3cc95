#!/usr/bin/env python3
"""rt_stub — scripted, recording stand-in for RT's mail gateway (tests/relay).

Owns: the fake RT web server used by every relay test.  Python 3 stdlib only.

* Listens on loopback only: 127.0.0.1, or host= another loopback address
  such as 127.0.0.2 to play "another host" (port 0 picks a free port);
  plain HTTP or TLS with a self-signed certificate made by the openssl CLI
  (make_cert()), or one issued by a test CA (TestCA); with client_ca= it
  asks for a client certificate (optional, as a front that also serves
  browsers) and records the subject CN of one that verified.
* Records every request: method, target, raw header bytes, parsed headers,
  Content-Length / chunked framing, the body (or only its size and sha256
  when record_limit is exceeded) and the multipart/form-data parts, parsed
  here by a streaming parser: name, part headers, filename= presence, content
  bytes (or size + sha256 only).
* Answers each request from a script consumed in arrival order (Reply,
  redirect(), Hang, Reset, Garbage, Huge); when the script is exhausted the
  default action answers (200 "ok\\n" unless told otherwise).

Module use (preferred):

    with RTStub(script=[Reply(200, b"ok\\n")]) as stub:
        ... run the client against stub.url ...
        req = stub.wait_for_requests(1)[0]

Command line:  python3 rt_stub.py --reply '200:ok\\n' --reply hang --tls
prints "PORT <n>" (and "URL <url>") then one JSON line per finished request.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import select
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence, Union

__all__ = [
    "RTStub", "Reply", "redirect", "Hang", "Reset", "Garbage", "Huge",
    "RecordedRequest", "RecordedPart", "TLSFiles", "make_cert", "TestCA",
    "parse_action",
]

MAX_HEAD_BYTES = 64 * 1024
RECV_SIZE = 256 * 1024


# --------------------------------------------------------------------------
# Script actions
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Reply:
    """A normal HTTP response, optionally after `delay` seconds."""
    status: int = 200
    body: bytes = b"ok\n"
    headers: tuple = ()                      # extra (name, value) pairs
    delay: float = 0.0
    content_type: str = "text/plain; charset=utf-8"


def redirect(location: str, status: int = 302) -> Reply:
    """A redirect response carrying `location` verbatim (absolute or not)."""
    return Reply(status=status, body=b"", headers=(("Location", location),))


@dataclass(frozen=True)
class Hang:
    """Read the request, then never answer: hold the connection open until
    the stub stops (bounded by the stub's hang_limit)."""


@dataclass(frozen=True)
class Reset:
    """Reset the connection (TCP RST).  after_bytes=None: after reading the
    whole body; an int: after reading that many body bytes (mid-upload)."""
    after_bytes: Optional[int] = None


@dataclass(frozen=True)
class Garbage:
    """Write raw bytes that are not an HTTP response, then close."""
    data: bytes = b"\x00\xff garbage \x01\x02 not http\r\n\r\n"


@dataclass(frozen=True)
class Huge:
    """A 200 response whose body is `prefix` followed by filler up to `size`
    bytes in total, streamed."""
    size: int = 16 * 1024 * 1024
    prefix: bytes = b"ok\n"
    status: int = 200


Action = Union[Reply, Hang, Reset, Garbage, Huge]

_REASONS = {
    200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently",
    302: "Found", 303: "See Other", 307: "Temporary Redirect",
    308: "Permanent Redirect", 400: "Bad Request", 403: "Forbidden",
    404: "Not Found", 413: "Payload Too Large", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable",
}


def _unescape(text: str) -> bytes:
    return text.encode("utf-8").decode("unicode_escape").encode("latin-1")


def parse_action(spec: str) -> Action:
    """Command-line action syntax:
    STATUS:BODY | delay:SECS:STATUS:BODY | redirect:STATUS:LOCATION | hang |
    reset | reset-mid:NBYTES | garbage[:BYTES] | huge:SIZE[:PREFIX].
    BODY/BYTES/PREFIX accept backslash escapes (\\n, \\x00, ...)."""
    kind, _, rest = spec.partition(":")
    if kind.isdigit():
        return Reply(int(kind), _unescape(rest))
    if kind == "delay":
        secs, status, body = rest.split(":", 2)
        return Reply(int(status), _unescape(body), delay=float(secs))
    if kind == "redirect":
        status, location = rest.split(":", 1)
        return redirect(location, int(status))
    if kind == "hang":
        return Hang()
    if kind == "reset":
        return Reset()
    if kind == "reset-mid":
        return Reset(after_bytes=int(rest))
    if kind == "garbage":
        return Garbage(_unescape(rest)) if rest else Garbage()
    if kind == "huge":
        size, _, prefix = rest.partition(":")
        return Huge(int(size), _unescape(prefix) if prefix else b"ok\n")
    raise ValueError(f"unknown action spec: {spec!r}")


# --------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------

class _Sink:
    """Counts, hashes and (up to `limit` bytes, None = no limit) keeps data."""

    def __init__(self, limit: Optional[int]):
        self.limit = limit
        self.size = 0
        self.sha = hashlib.sha256()
        self.data: Optional[bytearray] = bytearray()

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        self.sha.update(chunk)
        if self.data is not None:
            if self.limit is not None and self.size > self.limit:
                self.data = None             # too big: size + sha256 only
            else:
                self.data += chunk

    def content(self) -> Optional[bytes]:
        return None if self.data is None else bytes(self.data)


@dataclass
class RecordedPart:
    name: Optional[str]
    headers: list                      # [(name, value)] as sent (str, latin-1)
    raw_headers: bytes
    disposition: str                   # e.g. "form-data"
    params: dict                       # Content-Disposition parameters
    has_filename: bool
    filename: Optional[str]
    size: int = 0
    sha256: str = ""
    content: Optional[bytes] = None    # None when over record_limit

    def header(self, name: str) -> Optional[str]:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def summary(self) -> dict:
        d = dataclasses.asdict(self)
        d["raw_headers"] = self.raw_headers.decode("latin-1")
        d["content"] = (None if self.content is None
                        else self.content.decode("latin-1"))
        return d


@dataclass
class RecordedRequest:
    index: int
    peer: tuple
    action: str = ""                   # what the stub did with it
    method: str = ""
    target: str = ""
    version: str = ""
    raw_head: bytes = b""              # request line + headers, as received
    headers: list = field(default_factory=list)   # [(name, value)]
    content_length: Optional[int] = None
    chunked: bool = False
    expect_continue: bool = False
    body: Optional[bytes] = None       # None when over record_limit
    body_size: int = 0
    body_sha256: str = ""
    complete: bool = False             # whole body (per framing) was read
    boundary: Optional[str] = None
    parts: list = field(default_factory=list)     # [RecordedPart]
    multipart_closed: bool = False     # closing delimiter seen
    multipart_error: Optional[str] = None
    error: Optional[str] = None        # I/O or framing problem
    client_cert_cn: Optional[str] = None   # CN of a client certificate that verified

    def header(self, name: str) -> Optional[str]:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name: str) -> list:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def part(self, name: str) -> RecordedPart:
        found = [p for p in self.parts if p.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} parts named {name!r}")
        return found[0]

    @property
    def fields(self) -> dict:
        """name -> content bytes for every part (content may be None)."""
        return {p.name: p.content for p in self.parts}

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def summary(self) -> dict:
        d = {k: v for k, v in dataclasses.asdict(self).items()
             if k not in ("parts", "raw_head", "body")}
        d["raw_head"] = self.raw_head.decode("latin-1")
        d["body"] = None if self.body is None else self.body.decode("latin-1")
        d["parts"] = [p.summary() for p in self.parts]
        return d


def _parse_params(value: str) -> tuple:
    """'form-data; name="a"; filename="b"' -> ('form-data', {...})."""
    items, cur, quoted, esc = [], "", False, False
    for ch in value:
        if esc:
            cur += ch
            esc = False
        elif quoted and ch == "\\":
            esc = True
        elif ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    main = items[0].strip().lower()
    params = {}
    for item in items[1:]:
        k, sep, v = item.partition("=")
        if sep:
            params[k.strip().lower()] = v.strip()
    return main, params


def _parse_header_block(raw: bytes) -> list:
    headers = []
    for line in raw.split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and headers:   # obsolete folding
            k, v = headers[-1]
            headers[-1] = (k, v + " " + line.strip().decode("latin-1"))
            continue
        k, _, v = line.partition(b":")
        headers.append((k.decode("latin-1").strip(),
                        v.decode("latin-1").strip()))
    return headers


class MultipartParser:
    """Streaming multipart/form-data parser (RFC 7578 / RFC 2046)."""

    def __init__(self, boundary: bytes, limit: Optional[int]):
        self.delim = b"\r\n--" + boundary
        self.limit = limit
        self.buf = bytearray(b"\r\n")   # so the first delimiter matches too
        self.state = "preamble"
        self.parts: list = []
        self.closed = False
        self.error: Optional[str] = None
        self._part: Optional[RecordedPart] = None
        self._sink: Optional[_Sink] = None

    def feed(self, data: bytes) -> None:
        if self.error:
            return
        self.buf += data
        self._run()

    def _run(self) -> None:
        keep = len(self.delim) - 1
        while True:
            if self.state in ("preamble", "content"):
                pos = self.buf.find(self.delim)
                if pos < 0:
                    cut = max(0, len(self.buf) - keep)
                    if self.state == "content" and cut:
                        self._sink.write(bytes(self.buf[:cut]))
                    del self.buf[:cut]
                    return
                if self.state == "content":
                    self._sink.write(bytes(self.buf[:pos]))
                    self._finish_part()
                del self.buf[:pos + len(self.delim)]
                self.state = "after_delim"
            elif self.state == "after_delim":
                if len(self.buf) < 2:
                    return
                if self.buf[:2] == b"--":
                    self.closed = True
                    self.state = "epilogue"
                    continue
                eol = self.buf.find(b"\r\n")
                if eol < 0:
                    if len(self.buf) > 1024:
                        self.error = "junk after boundary"
                    return
                if self.buf[:eol].strip(b" \t"):
                    self.error = "junk after boundary"
                    return
                del self.buf[:eol + 2]
                self.state = "headers"
            elif self.state == "headers":
                if self.buf[:2] == b"\r\n":
                    raw = b""
                    del self.buf[:2]
                else:
                    end = self.buf.find(b"\r\n\r\n")
                    if end < 0:
                        if len(self.buf) > MAX_HEAD_BYTES:
                            self.error = "part headers too long"
                        return
                    raw = bytes(self.buf[:end])
                    del self.buf[:end + 4]
                self._start_part(raw)
                self.state = "content"
            else:                               # epilogue
                self.buf.clear()
                return

    def _start_part(self, raw: bytes) -> None:
        headers = _parse_header_block(raw)
        disp, params = "", {}
        for k, v in headers:
            if k.lower() == "content-disposition":
                disp, params = _parse_params(v)
        self._part = RecordedPart(
            name=params.get("name"), headers=headers, raw_headers=raw,
            disposition=disp, params=params,
            has_filename="filename" in params or "filename*" in params,
            filename=params.get("filename"))
        self._sink = _Sink(self.limit)

    def _finish_part(self) -> None:
        p, s = self._part, self._sink
        p.size, p.sha256, p.content = s.size, s.sha.hexdigest(), s.content()
        self.parts.append(p)
        self._part = self._sink = None

    def finish(self) -> None:
        if self.error is None and not self.closed:
            self.error = f"no closing delimiter (state {self.state})"


# --------------------------------------------------------------------------
# TLS certificate
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class TLSFiles:
    cert: str
    key: str


def make_cert(directory: str, cn: str = "localhost",
              timeout: float = 60) -> TLSFiles:
    """Self-signed certificate (CN and SAN DNS = cn) made with openssl."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={cn}",
         "-addext", f"subjectAltName=DNS:{cn}"],
        check=True, capture_output=True, timeout=timeout)
    return TLSFiles(cert, key)


class TestCA:
    """A throw-away certificate authority made with the openssl CLI in
    `directory`: ca.pem / ca.key, and issue() for server and client
    certificates signed by it (RSA 2048, two days)."""

    def __init__(self, directory: str, name: str = "rt-milter test CA",
                 timeout: float = 60):
        self.dir = directory
        self.timeout = timeout
        self.cert = os.path.join(directory, "ca.pem")
        self.key = os.path.join(directory, "ca.key")
        self._run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                   "-keyout", self.key, "-out", self.cert, "-days", "2",
                   "-subj", f"/CN={name}",
                   "-addext", "basicConstraints=critical,CA:TRUE",
                   "-addext", "keyUsage=critical,keyCertSign,cRLSign"])

    def _run(self, cmd: list) -> None:
        subprocess.run(cmd, check=True, capture_output=True, timeout=self.timeout)

    def issue(self, name: str, cn: str, san: str = "", client: bool = False) -> TLSFiles:
        """NAME.pem / NAME.key for `cn`: a server certificate for the
        subjectAltName `san` (e.g. "DNS:localhost,IP:127.0.0.1"), or a
        client certificate (client=True). The key is mode 0600."""
        cert = os.path.join(self.dir, f"{name}.pem")
        key = os.path.join(self.dir, f"{name}.key")
        csr = os.path.join(self.dir, f"{name}.csr")
        ext = os.path.join(self.dir, f"{name}.ext")
        with open(ext, "w") as fh:
            fh.write("basicConstraints=CA:FALSE\n")
            fh.write(f"extendedKeyUsage={'clientAuth' if client else 'serverAuth'}\n")
            if san:
                fh.write(f"subjectAltName={san}\n")
        self._run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes",
                   "-keyout", key, "-out", csr, "-subj", f"/CN={cn}"])
        self._run(["openssl", "x509", "-req", "-in", csr, "-CA", self.cert,
                   "-CAkey", self.key, "-CAcreateserial", "-out", cert,
                   "-days", "2", "-extfile", ext])
        os.chmod(key, 0o600)
        return TLSFiles(cert, key)


# --------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------

class _Closed(Exception):
    pass


class RTStub:
    """Scripted recording HTTP(S) server on 127.0.0.1 (or `host`).

    script        actions answering requests in arrival order
    default       action once the script is used up
    tls           TLSFiles to serve HTTPS, None for plain HTTP
    client_ca     with tls: a CA file; client certificates are asked for
                  (optional) and the CN of one that verifies is recorded
    record_limit  None: keep all bytes; N: keep the raw body and each part's
                  content only while <= N bytes (size + sha256 always kept)
    hang_limit    upper bound (s) for Hang
    io_timeout    socket timeout (s) while reading a request
    host          loopback address to listen on
    """

    def __init__(self, script: Iterable[Action] = (),
                 default: Action = Reply(),
                 tls: Optional[TLSFiles] = None,
                 record_limit: Optional[int] = None,
                 hang_limit: float = 120.0, io_timeout: float = 30.0,
                 port: int = 0, on_request=None, host: str = "127.0.0.1",
                 client_ca: Optional[str] = None):
        self._script = list(script)
        self.default = default
        self.tls = tls
        self.record_limit = record_limit
        self.hang_limit = hang_limit
        self.io_timeout = io_timeout
        self.on_request = on_request          # callback(RecordedRequest)
        self._want_port = port
        self.host = host
        self.client_ca = client_ca
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._requests: list = []
        self._tls_errors: list = []
        self._connections = 0
        self._threads: list = []
        self._socks: set = set()
        self._listener: Optional[socket.socket] = None
        self._accept_thread: Optional[threading.Thread] = None
        self._ctx: Optional[ssl.SSLContext] = None
        self.port = 0

    # -- life cycle --------------------------------------------------------

    def start(self) -> "RTStub":
        if self.tls:
            self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ctx.load_cert_chain(self.tls.cert, self.tls.key)
            if self.client_ca:
                self._ctx.load_verify_locations(self.client_ca)
                self._ctx.verify_mode = ssl.CERT_OPTIONAL
        self._listener = socket.create_server((self.host, self._want_port),
                                              backlog=64)
        self.port = self._listener.getsockname()[1]
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"rt_stub:{self.port}", daemon=True)
        self._accept_thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._accept_thread:
            self._accept_thread.join(timeout)
        with self._lock:
            socks = list(self._socks)
        for s in socks:                      # unblock readers
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for t in list(self._threads):
            t.join(max(0.0, deadline - time.monotonic()))
        if self._listener:
            self._listener.close()

    def __enter__(self) -> "RTStub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- accessors ---------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL for --url (https uses the certificate's name)."""
        return self.base_url()

    def base_url(self, host: Optional[str] = None) -> str:
        if self.tls:
            return f"https://{host or 'localhost'}:{self.port}"
        return f"http://{host or self.host}:{self.port}"

    def push(self, *actions: Action) -> None:
        with self._lock:
            self._script.extend(actions)

    @property
    def requests(self) -> list:
        with self._lock:
            return list(self._requests)

    @property
    def finished_requests(self) -> list:
        """Requests the stub is done with (answered, reset, ...)."""
        with self._lock:
            return [r for r in self._requests if r.action]

    @property
    def tls_errors(self) -> list:
        with self._lock:
            return list(self._tls_errors)

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> list:
        """Wait until n requests have been handled; return all so far."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while sum(1 for r in self._requests if r.action) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            return list(self._requests)

    def quiesce(self, timeout: float = 5.0) -> bool:
        """Wait until no connection is pending or being served (a Hang keeps
        its connection busy).  True if quiet within `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = select.select([self._listener], [], [], 0)[0]
                busy = any(t.is_alive() for t in self._threads)
            if not pending and not busy:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    # -- internals ---------------------------------------------------------

    def _next_action(self) -> Action:
        with self._lock:
            return self._script.pop(0) if self._script else self.default

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._listener], [], [], 0.1)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            with self._lock:             # atomic w.r.t. quiesce()
                try:
                    sock, peer = self._listener.accept()
                except OSError:
                    continue
                self._connections += 1
                self._socks.add(sock)
                t = threading.Thread(target=self._serve, args=(sock, peer),
                                     daemon=True)
                self._threads.append(t)
                t.start()

    def _serve(self, sock: socket.socket, peer) -> None:
        raw = sock
        try:
            sock.settimeout(self.io_timeout)
            if self._ctx:
                try:
                    sock = self._ctx.wrap_socket(sock, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    with self._lock:
                        self._tls_errors.append(repr(e))
                    return
            self._handle(sock, peer)
        except Exception:                       # never kill the server
            pass
        finally:
            with self._lock:
                self._socks.discard(raw)
            try:
                sock.close()
            except OSError:
                pass

    def _handle(self, sock, peer) -> None:
        conn = _Conn(sock)
        req = RecordedRequest(index=-1, peer=peer)
        try:
            head = conn.read_head()
        except _Closed:
            return                               # connection without request
        if isinstance(sock, ssl.SSLSocket):
            cert = sock.getpeercert() or {}
            for rdn in cert.get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        req.client_cert_cn = value
        with self._lock:
            req.index = len(self._requests)
            self._requests.append(req)
        action = self._next_action()
        try:
            self._parse_head(req, head)
            limit = action.after_bytes if isinstance(action, Reset) else None
            if req.expect_continue and limit is None:
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            self._read_body(conn, req, limit)
        except (_Closed, OSError, ValueError) as e:
            req.error = req.error or f"{type(e).__name__}: {e}"
        try:
            req.action = self._act(sock, action)
        except OSError as e:
            req.action = f"{type(action).__name__} (failed: {e})"
        with self._lock:
            self._lock.notify_all()
        if self.on_request:
            self.on_request(req)

    def _parse_head(self, req: RecordedRequest, head: bytes) -> None:
        req.raw_head = head
        line, _, rest = head.partition(b"\r\n")
        parts = line.decode("latin-1").split(" ")
        if len(parts) != 3:
            raise ValueError(f"bad request line {line!r}")
        req.method, req.target, req.version = parts
        req.headers = _parse_header_block(rest)
        te = ",".join(req.header_all("Transfer-Encoding")).lower()
        req.chunked = "chunked" in te
        cl = req.header("Content-Length")
        if cl is not None:
            req.content_length = int(cl)
        req.expect_continue = (req.header("Expect") or "").lower() \
            == "100-continue"
        ctype, params = _parse_params(req.header("Content-Type") or "")
        if ctype == "multipart/form-data":
            req.boundary = params.get("boundary")
            if not req.boundary:
                req.multipart_error = "no boundary parameter"

    def _read_body(self, conn: "_Conn", req: RecordedRequest,
                   limit: Optional[int]) -> None:
        body = _Sink(self.record_limit)
        mp = (MultipartParser(req.boundary.encode("latin-1"),
                              self.record_limit) if req.boundary else None)

        def emit(chunk: bytes) -> None:
            body.write(chunk)
            if mp:
                mp.feed(chunk)

        def done() -> None:
            req.body_size = body.size
            req.body_sha256 = body.sha.hexdigest()
            req.body = body.content()
            if mp:
                req.parts = mp.parts
                req.multipart_closed = mp.closed
                if req.complete:
                    mp.finish()
                req.multipart_error = mp.error

        try:
            if req.chunked:
                req.complete = conn.read_chunked(emit, limit)
            elif req.content_length is not None:
                got = conn.read_exact(req.content_length, emit, limit)
                req.complete = got == req.content_length
            else:
                req.complete = True              # no body
        finally:
            done()

    def _act(self, sock, action: Action) -> str:
        if isinstance(action, Reply):
            if action.delay and self._stop.wait(action.delay):
                return "stopped during delay"
            self._respond(sock, action.status, action.body, action.headers,
                          action.content_type)
            return f"reply {action.status}"
        if isinstance(action, Hang):
            return self._hang(sock)
        if isinstance(action, Reset):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
            return "reset"
        if isinstance(action, Garbage):
            sock.sendall(action.data)
            self._close_write(sock)
            return "garbage"
        if isinstance(action, Huge):
            head = (f"HTTP/1.1 {action.status} "
                    f"{_REASONS.get(action.status, 'Status')}\r\n"
                    f"Content-Type: text/plain\r\nContent-Length: "
                    f"{action.size}\r\nConnection: close\r\n\r\n")
            sock.sendall(head.encode() + action.prefix)
            left = action.size - len(action.prefix)
            filler = b"x" * 65535 + b"\n"
            while left > 0 and not self._stop.is_set():
                n = min(left, len(filler))
                sock.sendall(filler[:n])
                left -= n
            self._close_write(sock)
            return "huge"
        raise TypeError(action)

    def _hang(self, sock) -> str:
        """Say nothing until the peer hangs up, the stub stops or
        hang_limit passes."""
        deadline = time.monotonic() + self.hang_limit
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return "hang (limit)"
            try:
                ready = select.select([sock], [], [], min(0.1, left))[0]
                if ready and not sock.recv(RECV_SIZE):
                    return "hang (peer closed)"
            except (OSError, ValueError):
                return "hang (peer closed)"
        return "hang (stopped)"

    def _respond(self, sock, status: int, body: bytes, headers: Sequence,
                 content_type: str) -> None:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
                 f"Content-Type: {content_type}",
                 f"Content-Length: {len(body)}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
                     + body)
        self._close_write(sock)

    @staticmethod
    def _close_write(sock) -> None:
        try:
            if isinstance(sock, ssl.SSLSocket):
                return                   # close() follows; no unwrap needed
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class _Conn:
    """Buffered reader over a (TLS) socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> None:
        data = self.sock.recv(RECV_SIZE)
        if not data:
            raise _Closed("peer closed the connection")
        self.buf += data

    def read_head(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buf[:end])
                del self.buf[:end + 4]
                return head
            if len(self.buf) > MAX_HEAD_BYTES:
                raise ValueError("request head too long")
            self._fill()

    def read_line(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[:end + 2]
                return line
            if len(self.buf) > MAX_HEAD_BYTES:
                raise ValueError("line too long")
            self._fill()

    def read_exact(self, n: int, emit, limit: Optional[int] = None) -> int:
        """Pass n bytes to emit (stop early after `limit`); returns count."""
        want = n if limit is None else min(n, limit)
        got = 0
        while got < want:
            if not self.buf:
                self._fill()
            take = min(len(self.buf), want - got)
            emit(bytes(self.buf[:take]))
            del self.buf[:take]
            got += take
        return got

    def read_chunked(self, emit, limit: Optional[int] = None) -> bool:
        """Decode a chunked body into emit; True once the last chunk and
        trailers were read, False when stopped early by `limit`."""
        total = 0
        while True:
            size = int(self.read_line().split(b";", 1)[0].strip(), 16)
            if size == 0:
                while self.read_line():          # trailers
                    pass
                return True
            room = None if limit is None else limit - total
            got = self.read_exact(size, emit, room)
            total += got
            if got < size:
                return False
            if self.read_line():
                raise ValueError("missing CRLF after chunk")


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def main(argv: Optional[list] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--reply", action="append", default=[], metavar="SPEC",
                    help="scripted action, in order (see parse_action)")
    ap.add_argument("--default", default="200:ok\\n", metavar="SPEC")
    ap.add_argument("--tls", action="store_true",
                    help="serve HTTPS with a fresh self-signed cert")
    ap.add_argument("--tls-dir", help="where to write cert.pem/key.pem")
    ap.add_argument("--record-limit", type=int, default=None)
    ap.add_argument("--max-seconds", type=float, default=3600,
                    help="exit after this long")
    args = ap.parse_args(argv)
    tls, tmp = None, None
    if args.tls:
        if not args.tls_dir:
            tmp = tempfile.TemporaryDirectory(prefix="rt_stub_tls_")
        tls = make_cert(args.tls_dir or tmp.name)
        print(f"CERT {tls.cert}", flush=True)

    def show(req: RecordedRequest) -> None:
        print(json.dumps(req.summary()), flush=True)

    stub = RTStub(script=[parse_action(s) for s in args.reply],
                  default=parse_action(args.default), tls=tls,
                  record_limit=args.record_limit, port=args.port,
                  on_request=show)
    stub.start()
    print(f"PORT {stub.port}", flush=True)
    print(f"URL {stub.url}", flush=True)
    try:
        stub._stop.wait(args.max_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        stub.stop()
        if tmp:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
