"""test_sigpipe — rt-milter is never killed by SIGPIPE (issue 9, finding 11):
the daemon ignores it (SigIgn in /proc/PID/status), survives an MTA that
hangs up while rt-milter writes progress and its reply (a raw milter client
that closes right after end-of-message, RT answering slowly) and serves the
next connection; --test survives a reader of its output that is gone.
"""

import os
import socket
import struct
import subprocess
import time

from milter_harness import (HERE, MESSAGE, RT_MILTER, SENDER, MilterTestCase,
                            Reply, run_miltertest, write_config)

SIGPIPE_BIT = 1 << (13 - 1)   # SigIgn is a mask of signal numbers 1..64
RUN_BOUND = 30


def sig_ignored(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        line = next(l for l in fh if l.startswith("SigIgn:"))
    return int(line.split()[1], 16)


def packet(cmd: bytes, data: bytes = b"") -> bytes:
    return struct.pack("!I", len(data) + 1) + cmd + data


def read_reply(sock: socket.socket) -> bytes:
    """One milter reply packet's command byte (bounded by the timeout)."""
    def exactly(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise AssertionError("rt-milter closed the connection")
            buf += chunk
        return buf
    (length,) = struct.unpack("!I", exactly(4))
    return exactly(length)[:1]


def transaction_up_to_eom(path: str) -> socket.socket:
    """As an MTA would, up to end-of-message; the answer is left unread."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(10)
        s.connect(path)
        s.sendall(packet(b"O", struct.pack("!III", 6, 0x1FF, 0)))
        assert read_reply(s) == b"O"
        steps = (
            packet(b"C", b"client.example.net\0" + b"4" + struct.pack("!H", 25) + b"192.0.2.10\0"),
            packet(b"M", SENDER.encode() + b"\0"),
            packet(b"R", b"<rt@example.com>\0"),
        )
        s.sendall(packet(b"D", b"M" + b"i\0" + b"4PIPE1\0"))  # macros: no reply
        for step in steps:
            s.sendall(step)
            assert read_reply(s) == b"c", step
        for name, value in ((b"From", b"alice@example.org"), (b"Subject", b"hang up"),
                            (b"Message-ID", b"<sigpipe-1@example.org>")):
            s.sendall(packet(b"L", name + b"\0" + value + b"\0"))
            read_reply(s)
        s.sendall(packet(b"N"))
        read_reply(s)
        s.sendall(packet(b"B", b"The MTA will not wait for the answer.\r\n"))
        read_reply(s)
        s.sendall(packet(b"E"))
    except BaseException:
        s.close()
        raise
    return s


class Sigpipe(MilterTestCase):

    def test_daemon_ignores_sigpipe(self):
        milter = self.start_milter("http://127.0.0.1:1")
        self.assertTrue(sig_ignored(milter.proc.pid) & SIGPIPE_BIT, "SIGPIPE is not ignored")
        self.assertEqual(milter.stop(), 0)

    def test_mta_hanging_up_during_the_answer_kills_nothing(self):
        stub = self.start_stub(Reply(200, b"ok\n", delay=3))
        milter = self.start_milter(stub.url)
        conn = transaction_up_to_eom(milter.address)
        try:
            deadline = time.monotonic() + 20
            while not stub.requests and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            conn.close()  # the MTA hangs up while RT is still busy
        self.assertEqual(len(stub.requests), 1, milter.log())
        time.sleep(4)  # RT answers after 3 s; rt-milter then writes to the closed socket
        self.assertIsNone(milter.proc.poll(), "rt-milter died:\n" + milter.log())
        run = run_miltertest("accept.lua", {"SOCKET": milter.socket_spec, "TESTDIR": HERE,
                                            "SENDER": SENDER, "QID": "4PIPE2",
                                            "RT_RCPTS": "<bugs@example.com>"})
        self.assertEqual(run.rc, 0, run.describe() + milter.log())
        self.assertEqual(milter.stop(), 0)

    def test_mode_survives_a_reader_that_is_gone(self):
        stub = self.start_stub(Reply(200, b"ok\n"))
        config = os.path.join(self.workdir, "rt-milter.toml")
        write_config(config, "unix:" + os.path.join(self.workdir, "s.sock"), stub.url,
                     os.path.join(self.workdir, "spool"))
        message = os.path.join(self.workdir, "message.eml")
        with open(message, "wb") as fh:
            fh.write(MESSAGE)
        read_end, write_end = os.pipe()
        os.close(read_end)  # every write to stdout now fails
        try:
            r = subprocess.run([RT_MILTER, "--test", "-c", config, "--rcpt", "rt@example.com", message],
                               stdin=subprocess.DEVNULL, stdout=write_end, stderr=subprocess.PIPE,
                               timeout=RUN_BOUND)
        finally:
            os.close(write_end)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        self.assertEqual(len(stub.requests), 1)


if __name__ == "__main__":
    import unittest
    unittest.main()
