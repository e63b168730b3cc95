"""test_stub — rt_stub itself (tests/relay).

Owns: the stub's own robustness.  A test server must outlive the clients its
tests make misbehave (issue 9, finding 11): a client that resets or closes
while the stub is still answering costs that connection only, never the
stub (Python raises BrokenPipeError / ConnectionResetError where C would
get SIGPIPE; the stub catches them per connection).
"""

import socket
import struct
import time
import unittest

from mailgate_harness import StubTestCase
from rt_stub import Huge, Reply

REQUEST = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"


class StubSurvivesHangUps(StubTestCase):

    def exchange(self, stub, reset: bool, read: bool = True) -> bytes:
        before = len(stub.requests)
        with socket.create_connection(("127.0.0.1", stub.port), timeout=10) as s:
            s.sendall(REQUEST)
            if reset:
                deadline = time.monotonic() + 10
                while len(stub.requests) < before + 1 and time.monotonic() < deadline:
                    time.sleep(0.01)
                time.sleep(0.2)                  # the stub is answering
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
                return b""
            return s.recv(12, socket.MSG_WAITALL) if read else b""

    def check_alive(self, stub, hung_up: int) -> None:
        self.assertTrue(stub.quiesce(10), "stub still busy")
        self.assertEqual(self.exchange(stub, reset=False), b"HTTP/1.1 200")
        reqs = stub.wait_for_requests(hung_up + 1)
        self.assertEqual(len(reqs), hung_up + 1)

    def test_reset_during_a_long_answer(self):
        stub = self.start_stub(Huge(64 * 1024 * 1024), Huge(64 * 1024 * 1024))
        self.exchange(stub, reset=True)
        self.exchange(stub, reset=True)
        stub.push(Reply())
        self.check_alive(stub, 2)
        self.assertTrue(all(r.action.startswith("Huge (failed")
                            for r in stub.requests[:2]),
                        [r.action for r in stub.requests])

    def test_closed_before_a_late_answer(self):
        stub = self.start_stub(Reply(200, b"ok\n" * 100_000, delay=0.5))
        self.exchange(stub, reset=False, read=False)   # gone before the answer
        stub.push(Reply())
        self.check_alive(stub, 1)


if __name__ == "__main__":
    unittest.main()
