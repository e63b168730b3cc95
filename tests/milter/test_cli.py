"""test_cli — rt-milter's command line and process life, against the real
binary (tests/milter): --check-config, configuration errors (file:line:col,
exit 78, no socket), the --test operator mode against the RT stub (posted
bytes, verdicts, exit codes, --dry-run), the unix socket's owner/group/mode
and the privilege drop, stale and live sockets, and SIGUSR1 reload (a bad
file keeps the running configuration).
"""

import grp
import os
import pwd
import signal
import socket
import subprocess
import time

from milter_harness import MESSAGE, RT_MILTER, MilterTestCase, Reply, write_config

RUN_BOUND = 30


class Cli(MilterTestCase):

    def config(self, rt_url="http://127.0.0.1:1", **top):
        path = os.path.join(self.workdir, "rt-milter.toml")
        write_config(path, "unix:" + os.path.join(self.workdir, "rt-milter.sock"),
                     rt_url, os.path.join(self.workdir, "spool"), **top)
        return path

    def run_milter(self, *args, stdin=b""):
        return subprocess.run([RT_MILTER, *args], input=stdin, capture_output=True,
                              timeout=RUN_BOUND)

    def message_file(self):
        path = os.path.join(self.workdir, "message.eml")
        with open(path, "wb") as fh:
            fh.write(MESSAGE.replace(b"\r\n", b"\n"))
        return path

    # -- --check-config and configuration errors ----------------------------

    def test_check_config_prints_the_routes(self):
        r = self.run_milter("--check-config", "-c", self.config())
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        self.assertIn(": ok", out)
        self.assertIn("rt@example.com -> rt queue=General action=correspond", out)
        self.assertIn("ticket@example.com -> rt queue=(RT's default) action=(correspond) extension=ticket", out)
        self.assertIn("ops@example.com -> rt queue=Ops action=(correspond) extension=action "
                      "allowed=[comment, correspond]", out)

    def test_config_errors_name_file_line_column_and_key(self):
        path = os.path.join(self.workdir, "bad.toml")
        with open(path, "w") as fh:
            fh.write('socket = "unix:/tmp/x.sock"\n'
                     'bogus = 1\n'
                     '[rt]\n'
                     'url = "ftp://rt.example.com"\n'
                     '[[route]]\n'
                     'address = "rt@example.com"\n'
                     'extension = "tickets"\n')
        for args in (("--check-config", "-c", path), ("-c", path, "--log-stderr")):
            r = self.run_milter(*args)
            self.assertEqual(r.returncode, 78, r)
            err = r.stderr.decode()
            self.assertRegex(err, rf"{path}:2:1: bogus: ")
            self.assertRegex(err, rf"{path}:4:7: rt\.url: ")
            self.assertRegex(err, rf"{path}:7:13: route\[1\]\.extension: .*\"tickets\"")
        self.assertFalse(os.path.exists("/tmp/x.sock"))

    def test_missing_file_and_usage_errors(self):
        r = self.run_milter("--check-config", "-c", os.path.join(self.workdir, "none.toml"))
        self.assertEqual(r.returncode, 78)
        self.assertIn("No such file or directory", r.stderr.decode())
        self.assertEqual(self.run_milter("--bogus").returncode, 64)
        self.assertEqual(self.run_milter("--test", "-c", self.config()).returncode, 64)  # no --rcpt
        help_run = self.run_milter("--help")
        self.assertEqual(help_run.returncode, 0)
        self.assertIn(b"--check-config", help_run.stdout)

    # -- --test --------------------------------------------------------------

    def test_mode_posts_like_a_live_session(self):
        stub = self.start_stub(Reply(200, b"ok\n"))
        r = self.run_milter("--test", "-c", self.config(stub.url), "--from", "alice@example.org",
                            "--rcpt", "ticket+42@example.com", "--rcpt", "bob@example.net",
                            self.message_file())
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 0, out + r.stderr.decode())
        self.assertIn("RCPT TO:<ticket+42@example.com> -> continue: RT address", out)
        self.assertIn("RCPT TO:<bob@example.net> -> continue: not an RT address", out)
        self.assertIn("field ticket=42", out)
        self.assertIn("recipient <ticket+42@example.com> removed", out)
        self.assertIn("SMTP reply to the client: 250", out)
        reqs = stub.requests
        self.assertEqual(len(reqs), 1)
        self.assertEqual(reqs[0].fields["ticket"], b"42")
        self.assertEqual(reqs[0].fields["message"],
                         b"X-RT-Mail-Extension: 42\nReturn-Path: <alice@example.org>\n"
                         + MESSAGE.replace(b"\r\n", b"\n"))

    def test_mode_reports_tempfail_and_reject(self):
        for reply, code, smtp in ((b"temporary failure - x\n", 75, "451 4.3.0"),
                                  (b"not ok - x\n", 1, "550 5.7.1")):
            stub = self.start_stub(Reply(200, reply))
            r = self.run_milter("--test", "-c", self.config(stub.url), "--rcpt", "rt@example.com",
                                self.message_file())
            self.assertEqual(r.returncode, code, r)
            self.assertIn(f"SMTP reply to the client: {smtp} ", r.stdout.decode())

    def test_mode_refuses_a_bad_extension_at_rcpt(self):
        stub = self.start_stub()
        r = self.run_milter("--test", "-c", self.config(stub.url), "--rcpt", "ticket+abc@example.com",
                            self.message_file())
        self.assertEqual(r.returncode, 1)
        self.assertIn('550 5.1.1 <ticket+abc@example.com>: "abc" is not a ticket number (this recipient only)',
                      r.stdout.decode())
        self.assertEqual(stub.requests, [])

    def test_dry_run_posts_nothing(self):
        stub = self.start_stub()
        r = self.run_milter("--test", "--dry-run", "-c", self.config(stub.url), "--from", "a@example.org",
                            "--rcpt", "bugs@example.com", stdin=MESSAGE)
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 0, out)
        self.assertIn("dry run", out)
        self.assertIn("field queue=Bugs", out)
        self.assertIn("| Return-Path: <a@example.org>", out)
        time.sleep(0.2)
        self.assertEqual(stub.requests, [])

    def test_url_passwords_are_masked_in_every_output(self):
        # finding 9 of the hostile review: --check-config and --test showed them
        stub = self.start_stub(Reply(200, b"temporary failure - x\n"))
        url = stub.url.replace("http://", "http://rtuser:s3cret-pw@")
        path = self.config(url)
        outputs = [self.run_milter("--check-config", "-c", path)]
        outputs.append(self.run_milter("--test", "-c", path, "--rcpt", "rt@example.com", self.message_file()))
        outputs.append(self.run_milter("--test", "--dry-run", "-c", path, "--rcpt", "rt@example.com",
                                       self.message_file()))
        for r in outputs:
            text = (r.stdout + r.stderr).decode()
            self.assertNotIn("s3cret-pw", text)
        self.assertIn("http://rtuser:***@127.0.0.1:", outputs[0].stdout.decode())
        self.assertIn("POST http://rtuser:***@127.0.0.1:", outputs[1].stdout.decode())
        self.assertEqual(len(stub.requests), 1)  # the password itself still goes to RT

    # -- the daemon's socket, privileges and reload --------------------------

    def test_socket_mode_group_and_privilege_drop(self):
        if os.geteuid() != 0:
            self.fail("this test needs root (the project's tests run as root)")
        # The socket is bound as the service user: its directory is that
        # user's, as RuntimeDirectory= or an operator would make it.
        nobody = pwd.getpwnam("nobody")
        os.chown(self.workdir, nobody.pw_uid, nobody.pw_gid)
        os.chmod(self.workdir, 0o755)
        milter = self.start_milter("http://127.0.0.1:1", user="nobody", socket_group="postfix",
                                   socket_mode="0660")
        st = os.stat(milter.address)
        self.assertEqual(st.st_mode & 0o777, 0o660)
        self.assertEqual(grp.getgrgid(st.st_gid).gr_name, "postfix")
        self.assertEqual(st.st_uid, nobody.pw_uid)
        with open(f"/proc/{milter.proc.pid}/status") as fh:
            uid_line = next(l for l in fh if l.startswith("Uid:"))
        self.assertEqual(int(uid_line.split()[1]), nobody.pw_uid)
        self.assertIn("running as user nobody", milter.log())
        self.assertEqual(milter.stop(), 0)

    def test_stale_socket_is_replaced_and_a_live_one_is_not_stolen(self):
        path = os.path.join(self.workdir, "rt-milter.sock")
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(path)
        stale.close()  # the file stays, nobody listens
        milter = self.start_milter("http://127.0.0.1:1")
        self.assertIn("removed stale socket", milter.log())
        second = os.path.join(self.workdir, "second.toml")
        write_config(second, "unix:" + path, "http://127.0.0.1:1", os.path.join(self.workdir, "spool"))
        r = self.run_milter("-c", second, "--log-stderr")
        self.assertEqual(r.returncode, 73, r)  # EX_CANTCREAT: the socket cannot be made
        self.assertIn("another process is listening", r.stderr.decode())
        self.assertTrue(os.path.exists(path), "the live socket was removed")
        self.assertEqual(milter.stop(), 0)
        self.assertFalse(os.path.exists(path), "socket left after a clean stop")

    def test_reload_keeps_the_old_config_when_the_new_one_is_bad(self):
        milter = self.start_milter("http://127.0.0.1:1")
        with open(milter.config_path, "a") as fh:
            fh.write("\n[[route]]\naddress = \"new@example.com\"\n")
        milter.proc.send_signal(signal.SIGUSR1)
        self.assertTrue(self.wait_log(milter, "reloaded"), milter.log())
        self.assertRegex(milter.log(), r"reloaded .*: 6 route\(s\)")
        with open(milter.config_path, "a") as fh:
            fh.write("nonsense = [\n")
        milter.proc.send_signal(signal.SIGUSR1)
        self.assertTrue(self.wait_log(milter, "the running configuration stays"), milter.log())
        self.assertIsNone(milter.proc.poll(), "a bad reload must not stop rt-milter")
        self.assertEqual(milter.stop(), 0)

    @staticmethod
    def wait_log(milter, text, bound=10.0):
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            if text in milter.log():
                return True
            time.sleep(0.05)
        return False


if __name__ == "__main__":
    import unittest
    unittest.main()
