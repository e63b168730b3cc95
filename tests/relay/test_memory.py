"""test_memory — a 50 MiB message through $RT_MAILGATE in bounded memory
(tests/relay).

Owns: the streaming check.  The client runs under /usr/bin/time -v against a
stub that keeps only the size and sha256 of the message part; the test
asserts exit 0, the recorded size/sha256 equal to the input's, and a peak
RSS ("Maximum resident set size") below RT_MAILGATE_MAX_RSS_MB (default 20;
override only to look at another client, e.g. the Perl one needs ~2x the
message).  It prints the measured peak RSS and wall time.
"""

import hashlib
import os
import re
import tempfile
import unittest

from mailgate_harness import QA, QA_FIELDS, UNSET, StubTestCase

MESSAGE_BYTES = 50 * 1024 * 1024
RSS_LIMIT_MB = float(os.environ.get("RT_MAILGATE_MAX_RSS_MB") or 20)
TIME = "/usr/bin/time"


def write_message(path: str, size: int) -> None:
    """An RFC 822 message of exactly `size` bytes, mostly text lines with a
    sprinkling of 8-bit bytes and CRLFs."""
    head = (b"From: big@example.com\nTo: rt@example.com\n"
            b"Subject: a large message\nMessage-ID: <big@example.com>\n\n")
    words = [b"lorem", b"ipsum", b"dolor", b"sit", b"amet", b"consectetur",
             b"adipiscing", b"elit", b"sed", b"do", b"eiusmod", b"tempor",
             b"\xe4\xf6\xfc", b"incididunt", b"ut", b"labore"]
    lines = []
    for i in range(4096):
        line = b" ".join(words[(i * 7 + k * 3) % len(words)]
                         for k in range(10 + i % 5))
        lines.append(line + (b"\r\n" if i % 9 == 0 else b"\n"))
    with open(path, "wb") as fh:
        fh.write(head)
        written, n = len(head), 0
        while written < size:
            line = b"%08d " % n + lines[n % len(lines)]
            line = line[:size - written]
            fh.write(line)
            written += len(line)
            n += 1


def file_digest(path: str, prefix: bytes = b"") -> tuple:
    sha = hashlib.sha256(prefix)
    size = len(prefix)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
    return size, sha.hexdigest()


class LargeMessage(StubTestCase):
    """50 MiB through the client: bytes intact, peak RSS bounded."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.access(TIME, os.X_OK):
            raise AssertionError(f"{TIME} is needed (Debian package time)")
        cls.tmp = tempfile.TemporaryDirectory(prefix="relay_memory_")
        cls.message = os.path.join(cls.tmp.name, "message.eml")
        write_message(cls.message, MESSAGE_BYTES)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()
        super().tearDownClass()

    def measure(self, extension, header: bytes):
        stub = self.start_stub(record_limit=64 * 1024)
        report = os.path.join(self.tmp.name, f"time-{self.id()}.txt")
        run = self.deliver(stub, QA, stdin=self.message, extension=extension,
                           prefix=[TIME, "-v", "-o", report], timeout=240)
        with open(report, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        found = re.search(r"Maximum resident set size \(kbytes\): (\d+)",
                          text)
        self.assertIsNotNone(found, text)
        rss_kb = int(found.group(1))
        print(f"\n{self.id()}: {os.path.basename(self.binary)} "
              f"({self.binary}) posted {MESSAGE_BYTES} bytes: "
              f"peak RSS {rss_kb} kB ({rss_kb / 1024:.1f} MiB), "
              f"wall {run.elapsed:.2f} s", flush=True)

        self.assertExit(run, 0)
        req = self.one_request(stub)
        self.assertWireShape(req)
        part = req.part("message")
        self.assertIsNone(part.content)          # only size + sha256 kept
        size, digest = file_digest(self.message, header)
        self.assertEqual((part.size, part.sha256), (size, digest))
        fields = {p.name: p.content for p in req.parts if p.name != "message"}
        self.assertEqual(fields, QA_FIELDS)
        self.assertLess(rss_kb, RSS_LIMIT_MB * 1024,
                        f"peak RSS {rss_kb} kB over {RSS_LIMIT_MB} MiB")

    def test_50mb_message(self):
        self.measure(UNSET, b"")

    def test_50mb_message_with_extension_header(self):
        self.measure("support", b"X-RT-Mail-Extension: support\n")


if __name__ == "__main__":
    unittest.main()
