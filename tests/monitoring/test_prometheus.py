"""test_prometheus — the Prometheus files of packaging/prometheus work as
shipped and as pasted: promtool (Debian's prometheus package; packaging/
install-deps test) accepts the rules and the scrape configuration, both as a
prometheus.yml of its own and pasted into an existing one; the alerts fire
and stay silent as rules_test.yml says (promtool test rules), and that test
fails when a rule is broken; the rules use only metrics of the contract
(metrics_contract.py) and Prometheus's `up`; README.md's YAML blocks are the
two files byte for byte."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import unittest

import yaml

from metrics_contract import contract_problems

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
PROM_DIR = os.path.join(ROOT, "packaging", "prometheus")
RULES = os.path.join(PROM_DIR, "rt-milter-rules.yml")
SCRAPE = os.path.join(PROM_DIR, "prometheus-scrape.yml")
RULES_TEST = os.path.join(HERE, "rules_test.yml")
README = os.path.join(ROOT, "README.md")

# An existing prometheus.yml as Debian ships it (less its comments): the
# scrape job and the rule file are pasted into it.
DEBIAN_CONFIG = """\
global:
  scrape_interval:     15s
  evaluation_interval: 15s
  external_labels:
      monitor: 'example'

alerting:
  alertmanagers:
  - static_configs:
    - targets: ['localhost:9093']

rule_files:

scrape_configs:
  - job_name: 'prometheus'
    scrape_interval: 5s
    scrape_timeout: 5s
    static_configs:
      - targets: ['localhost:9090']

  - job_name: node
    static_configs:
      - targets: ['localhost:9100']
"""


def read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def promtool() -> str:
    path = shutil.which("promtool") or "/usr/bin/promtool"
    if not os.access(path, os.X_OK):
        raise AssertionError("promtool not found: install Debian's prometheus "
                             "(packaging/install-deps test)")
    return path


def run_promtool(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)


def section(text: str, key: str) -> str:
    """The lines under top-level `key:` of a YAML text, up to the next
    blank line: what a user pastes from the shipped file."""
    m = re.search(rf"^{key}:\n((?:[ #].*\n)+)", text, re.M)
    assert m, key
    return m.group(1)


class PromtoolTest(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="rtm-prom-")
        self.addCleanup(tmp.cleanup)
        self.tmp = tmp.name

    def check(self, *args, cwd=None):
        r = run_promtool(*args, cwd=cwd)
        self.assertEqual(r.returncode, 0, f"promtool {' '.join(args)}:\n{r.stdout}{r.stderr}")
        return r.stdout + r.stderr

    def test_check_rules(self):
        out = self.check("check", "rules", RULES)
        self.assertIn("SUCCESS: 6 rules found", out)

    def test_check_config_as_prometheus_yml(self):
        """The scrape file installed as prometheus.yml, the rules beside it."""
        shutil.copy(SCRAPE, os.path.join(self.tmp, "prometheus.yml"))
        shutil.copy(RULES, os.path.join(self.tmp, "rt-milter-rules.yml"))
        out = self.check("check", "config", "prometheus.yml", cwd=self.tmp)
        self.assertIn("SUCCESS: 1 rule files found", out)
        self.assertIn("SUCCESS: 6 rules found", out)

    def test_check_config_pasted_into_an_existing_one(self):
        """The job pasted under an existing scrape_configs, the rule file
        under its rule_files."""
        shipped = read(SCRAPE)
        config = DEBIAN_CONFIG.replace(
            "scrape_configs:\n", "scrape_configs:\n" + section(shipped, "scrape_configs") + "\n"
        ).replace("rule_files:\n", "rule_files:\n" + section(shipped, "rule_files"))
        path = os.path.join(self.tmp, "prometheus.yml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(config)
        shutil.copy(RULES, os.path.join(self.tmp, "rt-milter-rules.yml"))
        out = self.check("check", "config", path)
        self.assertIn("SUCCESS: 1 rule files found", out)
        jobs = {j["job_name"]: j for j in yaml.safe_load(config)["scrape_configs"]}
        self.assertEqual(set(jobs), {"prometheus", "node", "rt-milter"})
        self.assertEqual(jobs["rt-milter"]["static_configs"], [{"targets": ["127.0.0.1:9731"]}])
        self.assertNotIn("metrics_path", jobs["rt-milter"])  # the default, /metrics

    def test_alerts_fire_and_stay_silent(self):
        out = self.check("test", "rules", os.path.basename(RULES_TEST), cwd=HERE)
        self.assertIn("SUCCESS", out)

    def test_every_alert_is_tested_both_ways(self):
        alerts = [r["alert"] for g in yaml.safe_load(read(RULES))["groups"]
                  for r in g["rules"] if "alert" in r]
        fires, silent = set(), set()
        for t in yaml.safe_load(read(RULES_TEST))["tests"]:
            for a in t["alert_rule_test"]:
                (fires if a["exp_alerts"] else silent).add(a["alertname"])
        self.assertEqual(set(alerts), fires)
        self.assertEqual(set(alerts), silent)
        for name in ("RtMilterCircuitOpen", "RtMilterRtUnreachable", "RtMilterTempfailRatioHigh",
                     "RtMilterJournalUnusable", "RtMilterDown"):
            self.assertIn(name, alerts)

    def test_the_rules_test_catches_a_broken_rule(self):
        """rules_test.yml against rules broken one way at a time: it fails
        every time."""
        rules = read(RULES)
        mutations = {
            "ratio threshold": ("> 0.2", "> 0.6"),
            "minimum volume": (">= 10", ">= 1"),
            "not_ours counted": ('{verdict!="not_ours"}[15m])) > 0.2', "[15m])) > 0.2"),
            "circuit delay": ('"closed"}) == 0\n        for: 2m', '"closed"}) == 0\n        for: 30m'),
            "circuit state": ('state="closed"}) == 0', 'state="open"}) == 1'),
            "ok POSTs ignored": ('outcome="ok"', 'outcome="not_ok"'),
            "journal": ("rt_milter_journal_usable == 0", "rt_milter_journal_usable == 2"),
            "any job down": ('up{job="rt-milter"}', "up"),
        }
        test = read(RULES_TEST).replace("../../packaging/prometheus/rt-milter-rules.yml",
                                        "rt-milter-rules.yml")
        with open(os.path.join(self.tmp, "rules_test.yml"), "w", encoding="utf-8") as f:
            f.write(test)
        for what, (old, new) in mutations.items():
            with self.subTest(what):
                self.assertEqual(rules.count(old), 1, old)
                with open(os.path.join(self.tmp, "rt-milter-rules.yml"), "w", encoding="utf-8") as f:
                    f.write(rules.replace(old, new))
                self.check("check", "rules", "rt-milter-rules.yml", cwd=self.tmp)
                r = run_promtool("test", "rules", "rules_test.yml", cwd=self.tmp)
                self.assertNotEqual(r.returncode, 0, f"{what}: the broken rule passed")

    def test_rules_use_the_contract(self):
        problems = []
        for g in yaml.safe_load(read(RULES))["groups"]:
            for r in g["rules"]:
                problems += [f"{r['alert']}: {p}"
                             for p in contract_problems(r["expr"], {"up": {}})]
        self.assertEqual(problems, [])


class ReadmeTest(unittest.TestCase):
    def test_readme_yaml_blocks_are_the_shipped_files(self):
        """README's ```yaml blocks, in order: the scrape configuration, the
        rules, byte for byte (what is pasted from there is what is tested)."""
        blocks = re.findall(r"^```yaml\n(.*?)^```$", read(README), re.S | re.M)
        self.assertEqual(len(blocks), 2, "README.md: two ```yaml blocks expected")
        self.assertEqual(blocks[0], read(SCRAPE), "README.md's scrape block != " + SCRAPE)
        self.assertEqual(blocks[1], read(RULES), "README.md's rules block != " + RULES)

    def test_files_say_what_they_own(self):
        for path in (SCRAPE, RULES, RULES_TEST):
            first = read(path).splitlines()[0]
            self.assertTrue(first.startswith("# " + os.path.basename(path) + " — "), path)


if __name__ == "__main__":
    unittest.main()
