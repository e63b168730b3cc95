"""test_package — the Debian package as a postmaster meets it (label
"package"; fixtures and helpers in package_harness.py).

Owns: lintian's verdict on the .deb (Lintian); what a fresh install put
where, with which owner and mode, the conffile, the rt-mailgate
alternatives beside Debian's rt5-clients, the unit's exposure and verify
result, and that a fresh install neither enables nor starts the unit and
that the unconfigured sample refuses to start with one clear line
(Installed); a message through a private Postfix whose smtpd runs chrooted,
set up with the recipe's paste block as installed under
/usr/share/doc/rt-milter, into the packaged rt-milter run the way its unit
runs it, becoming a ticket in a real RT 5 (Delivery). Removal and purge:
test_remove_purge.py, run last as the fixture's cleanup.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import socket
import stat
import subprocess
import sys
import tomllib
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))

import package_harness as ph  # noqa: E402
from e2e_harness import RT_DOMAIN, E2ECase, read_env, swaks  # noqa: E402
from mta_common import POSTFIX_SANDBOX, SANDBOX_TIMEOUT, maildir_files  # noqa: E402

MAX_EXPOSURE = 2.0
NO_ROUTE = re.compile(r"no \[\[route\]\]")


def check_config_as_service_user(path: str = ph.CONFFILE) -> subprocess.CompletedProcess:
    """`rt-milter --check-config -c path` as the unit's ExecStartPre= runs
    it: as the service user with its groups."""
    pw = pwd.getpwnam(ph.SERVICE_USER)
    return ph.run([ph.BINARY, "--check-config", "-c", path], user=pw.pw_uid, group=pw.pw_gid,
                  extra_groups=os.getgrouplist(ph.SERVICE_USER, pw.pw_gid), cwd="/")


class Lintian(unittest.TestCase):

    def test_lintian_finds_no_error_and_no_warning(self):
        deb = ph.deb_path()
        r = ph.run(["lintian", "--fail-on", "error,warning", "--info", deb], timeout=600)
        print(f"lintian --fail-on error,warning --info {os.path.basename(deb)}: exit "
              f"{r.returncode}\n{r.stdout}{r.stderr}", file=sys.stderr)
        tags = [l for l in r.stdout.splitlines() if re.match(r"^[EW]: ", l)]
        self.assertEqual((r.returncode, tags), (0, []), r.stdout + r.stderr)


class Installed(unittest.TestCase):
    """A fresh install (the fixture purged any earlier one first)."""

    def assertOwnerMode(self, path: str, user: str, group: str, mode: int) -> None:
        st = os.lstat(path)
        self.assertEqual((pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name,
                          oct(stat.S_IMODE(st.st_mode))), (user, group, oct(mode)), path)

    def test_files_where_a_postmaster_expects_them(self):
        self.assertEqual(ph.dpkg_status(), "install ok installed")
        self.assertOwnerMode(ph.BINARY, "root", "root", 0o755)
        self.assertOwnerMode(ph.MAILGATE, "root", "root", 0o755)
        self.assertOwnerMode(ph.unit_path(), "root", "root", 0o644)
        for page in ("man8/rt-milter.8.gz", "man5/rt-milter.toml.5.gz",
                     "man1/rt-mailgate-milter.1.gz"):
            self.assertTrue(os.path.isfile(os.path.join("/usr/share/man", page)), page)
        self.assertTrue(os.path.isfile(ph.TMPFILES))
        docs = os.listdir(ph.DOC_DIR)
        self.assertIn("copyright", docs)
        self.assertTrue(any(d.startswith("README.Debian") for d in docs), docs)
        self.assertNotEqual(ph.paste_block()[1], [], "the Postfix recipe's paste block")
        # dpkg's own record matches what is on disk
        r = ph.run(["dpkg", "--verify", ph.PACKAGE])
        self.assertEqual((r.returncode, r.stdout), (0, ""), r.stderr)

    def test_service_user_state_and_spool(self):
        pw = pwd.getpwnam(ph.SERVICE_USER)
        self.assertLess(pw.pw_uid, 1000, "a system user")
        self.assertEqual(grp.getgrgid(pw.pw_gid).gr_name, ph.SERVICE_USER)
        self.assertIn(pw.pw_shell, ("/usr/sbin/nologin", "/bin/false"))
        self.assertFalse(os.path.exists(pw.pw_dir) and pw.pw_dir != "/nonexistent"
                         and os.listdir(pw.pw_dir), pw.pw_dir)
        self.assertOwnerMode(ph.STATE_DIR, ph.SERVICE_USER, ph.SERVICE_USER, 0o750)
        self.assertOwnerMode(ph.SPOOL_DIR, ph.SERVICE_USER, ph.SERVICE_USER, 0o750)

    def test_conffile_is_dpkgs_and_readable_by_the_service_only(self):
        r = ph.run(["dpkg-query", "-W", "-f=${Conffiles}", ph.PACKAGE], check=True)
        self.assertIn(ph.CONFFILE, r.stdout)
        # root's, readable by the service's group, by nobody else
        self.assertOwnerMode(ph.CONFFILE, "root", ph.SERVICE_USER, 0o640)
        r = check_config_as_service_user()
        self.assertNotIn("Permission denied", r.stderr, "the service user can read it")

    def test_fresh_install_is_not_enabled_not_started_and_refuses_to_start(self):
        self.assertFalse(os.path.lexists("/etc/systemd/system/multi-user.target.wants/rt-milter.service"))
        self.assertEqual(ph.processes_of(ph.BINARY), [])
        # the sample as installed: one clear line, EX_CONFIG
        r = check_config_as_service_user()
        self.assertEqual(r.returncode, 78, r.stdout + r.stderr)
        self.assertRegex(r.stderr, NO_ROUTE)
        lines = [l for l in r.stderr.splitlines() if NO_ROUTE.search(l)]
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn(ph.CONFFILE, lines[0])

    def test_rt_mailgate_alternative_beside_rt5_clients(self):
        r = ph.run(["update-alternatives", "--query", "rt-mailgate"], check=True)
        alternatives = dict(re.findall(r"(?m)^Alternative: (\S+)\nPriority: (\d+)", r.stdout))
        self.assertEqual(alternatives.get(ph.MAILGATE), "100", r.stdout)
        best = re.search(r"(?m)^Best: (\S+)", r.stdout).group(1)
        if os.path.exists("/usr/bin/rt-mailgate-5"):
            # Debian's Perl gateway (priority 240) stays the default
            self.assertEqual(best, "/usr/bin/rt-mailgate-5", r.stdout)
            self.assertEqual(os.path.realpath("/usr/bin/rt-mailgate"), "/usr/bin/rt-mailgate-5")
        else:
            self.assertEqual(os.path.realpath("/usr/bin/rt-mailgate"), ph.MAILGATE)
        r = ph.run([ph.MAILGATE, "--help"])
        self.assertIn("--help", r.stdout + r.stderr)

    def test_unit_exposure_and_verify(self):
        unit = ph.unit_path()
        r = ph.run(["systemd-analyze", "security", "--offline=true", unit], timeout=120)
        m = re.search(r"Overall exposure level for rt-milter\.service: (\d+\.\d+)", r.stdout + r.stderr)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        print(f"systemd-analyze security --offline=true {unit}: {m.group(0)}", file=sys.stderr)
        self.assertLessEqual(float(m.group(1)), MAX_EXPOSURE, r.stdout)
        r = ph.run(["systemd-analyze", "verify", unit], timeout=120)
        ours = [l for l in (r.stdout + r.stderr).splitlines() if "rt-milter" in l]
        self.assertEqual((r.returncode, ours), (0, []), r.stdout + r.stderr)
        service = ph.read_unit(unit)
        self.assertEqual(service["Type"], ["notify"])
        self.assertEqual(service["User"], [ph.SERVICE_USER])
        self.assertEqual(service["ExecReload"][-1].split()[-2:], ["-USR1", "$MAINPID"])


def configure(text: str, rt_url: str, routes: list) -> str:
    """What the postmaster does to the installed sample: RT's URL under
    [rt], and their routes at the end."""
    url_line = f'url = "{rt_url}"'
    if re.search(r"(?m)^\[rt\][ \t]*$", text):
        text = re.sub(r"(?m)^(\[rt\][ \t]*)$", lambda m: m.group(1) + "\n" + url_line, text, count=1)
    else:
        text += f"\n[rt]\n{url_line}\n"
    for route in routes:
        text += "\n[[route]]\n" + "".join(f'{k} = "{v}"\n' for k, v in route.items())
    tomllib.loads(text)  # still TOML
    return text


SHIMS = {
    # the recipe's postconf edits the private Postfix's main.cf
    "postconf": '#!/bin/sh\nexec /usr/sbin/postconf -c "$PF_CONF" "$@"\n',
    # and its restart of Postfix restarts the private one
    "systemctl": """#!/bin/sh
case "$*" in
  "restart postfix")
    /usr/sbin/postfix -c "$PF_CONF" stop >/dev/null 2>&1 || true
    n=0
    while /usr/sbin/postfix -c "$PF_CONF" status >/dev/null 2>&1; do
      n=$((n + 1)); [ $n -lt 200 ] || { echo "systemctl shim: Postfix did not stop" >&2; exit 1; }
      sleep 0.1
    done
    exec /usr/sbin/postfix -c "$PF_CONF" start ;;
  *) echo "systemctl shim: the recipe asked for 'systemctl $*', which this test does not know" >&2
     exit 1 ;;
esac
""",
}


class Delivery(E2ECase):
    """Debian's chrooted smtpd, the recipe as pasted, the unit as shipped."""

    def test_chrooted_postfix_with_the_packaged_recipe_makes_a_ticket(self):
        # 1. the postmaster's edit of the conffile (restored afterwards, for
        #    the other tests and the removal's check of a changed conffile)
        with open(ph.CONFFILE, "rb") as fh:
            original = fh.read()

        def restore():
            with open(ph.CONFFILE, "wb") as fh:
                fh.write(original)
        self.addCleanup(restore)
        route = {"address": f"rt@{RT_DOMAIN}", "queue": "General", "action": "correspond"}
        with open(ph.CONFFILE, "w") as fh:
            fh.write(configure(original.decode(), self.url, [route]))
        r = check_config_as_service_user()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        # 2. a private Postfix, smtpd chrooted in its queue directory
        pf = os.path.join(ph.PACKAGE_DIR, "postfix")
        r = ph.run([sys.executable, POSTFIX_SANDBOX, "start", pf, "--fresh", "--chroot"],
                   timeout=SANDBOX_TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.addCleanup(lambda: ph.run([sys.executable, POSTFIX_SANDBOX, "stop", pf],
                                       timeout=SANDBOX_TIMEOUT))
        env = read_env(os.path.join(pf, "env"))
        queue = env["QUEUE_DIR"]
        with open(os.path.join(env["POSTFIX_CONF"], "master.cf")) as fh:
            self.assertRegex(fh.read(), r"(?m)^127\.0\.0\.1:\d+ +inet +n +- +y +- +- +smtpd$")

        # 3. its queue directory is /var/spool/postfix, in a namespace of ours
        ns = ph.Namespace(queue, "/var/spool/postfix")
        self.addCleanup(ns.close)
        # what the postinst did (and every boot does) on the real one
        r = ph.run(ns.argv(["systemd-tmpfiles", "--create", ph.TMPFILES]))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        # 4. the recipe's block, pasted as it is installed
        doc, block = ph.paste_block()
        shims = os.path.join(ph.PACKAGE_DIR, "shims")
        os.makedirs(shims, exist_ok=True)
        for name, text in SHIMS.items():
            with open(os.path.join(shims, name), "w") as fh:
                fh.write(text)
            os.chmod(os.path.join(shims, name), 0o755)
        script = "set -ex\n" + "\n".join(block) + "\n"
        r = ph.run(ns.argv(["bash", "-c", script]), timeout=120,
                   env={"PATH": f"{shims}:/usr/sbin:/usr/bin:/sbin:/bin", "PF_CONF": env["POSTFIX_CONF"],
                        "LANG": "C.UTF-8"})
        self.assertEqual(r.returncode, 0, f"the block of {doc}:\n{script}\n{r.stdout}{r.stderr}")
        postconf = ph.run(["postconf", "-c", env["POSTFIX_CONF"], "-h", "smtpd_milters"]).stdout
        self.assertIn("rt-milter", postconf)

        # 5. rt-milter, as the unit runs it, inside the namespace
        notify = ph.Notify(os.path.join(ph.PACKAGE_DIR, "notify"))
        self.addCleanup(notify.close)
        log = os.path.join(ph.PACKAGE_DIR, "rt-milter.log")
        if os.path.exists(log):
            os.unlink(log)
        unit = ph.UnitRun(log, notify, ns.argv)
        self.addCleanup(unit.remove_directories)
        self.addCleanup(unit.stop)
        unit.make_directories()
        pre = unit.start_pre()
        self.assertEqual(pre.returncode, 0, f"ExecStartPre: {pre.stdout}{pre.stderr}")
        unit.start()
        self.assertTrue(notify.wait_for("READY=1", alive=unit.alive),
                        f"no READY=1 (exit {unit.proc.poll()}); {notify.messages}\n{unit.log()}")
        with open(ph.CONFFILE) as fh:
            sock = tomllib.loads(fh.read())["socket"].split(":", 1)[1]
        self.assertTrue(sock.startswith("/var/spool/postfix/"), sock)
        host_path = os.path.join(queue, os.path.relpath(sock, "/var/spool/postfix"))
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(host_path)  # listening when READY=1 came

        # 6. the mail, and the ticket
        tok = self.token()
        sent = swaks(int(env["SMTP_PORT"]), f"rt@{RT_DOMAIN}", f"{tok} packaged and chrooted")
        self.assertRegex(sent.data_reply() or "", r"^250 ", sent.describe() + "\n" + unit.log())
        tid = self.the_ticket(tok)
        self.assertEqual(self.show(tid)["Queue"], "General")
        self.assertEqual(maildir_files(env["RT_FALLBACK_MAILDIR"]), [], "a copy left to Postfix")
        self.assertRegex(unit.log(), r"accepted")

        # 7. systemctl stop: SIGTERM, exit 0, STOPPING=1
        self.assertEqual(unit.stop(), 0, unit.log())
        self.assertTrue(notify.wait_for("STOPPING=1", timeout=2), notify.messages)


if __name__ == "__main__":
    unittest.main()
