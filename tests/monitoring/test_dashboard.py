"""test_dashboard — packaging/grafana/rt-milter.json is a Grafana 9/10
dashboard that can be imported: it parses, takes its data source from the
${DS_PROMETHEUS} import input through the `datasource` variable, every panel
has a unique id and a gridPos inside the 24 columns without overlapping
another, every panel but a row has queries, and every metric, label and
label value its queries and variables use is in metrics_contract.CONTRACT.
Also that the panels the monitoring issue asks for are there."""

from __future__ import annotations

import json
import os
import re
import unittest

from metrics_contract import CONTRACT, contract_problems, promql_selectors, series_labels

HERE = os.path.dirname(os.path.abspath(__file__))
DASHBOARD = os.path.join(HERE, "..", "..", "packaging", "grafana", "rt-milter.json")
PANEL_TYPES = {"row", "timeseries", "stat", "state-timeline"}


def load():
    with open(DASHBOARD, encoding="utf-8") as f:
        return json.load(f)


def all_panels(dash):
    for p in dash["panels"]:
        yield p
        yield from p.get("panels", [])  # a collapsed row holds its panels


def exprs(dash):
    for p in all_panels(dash):
        for t in p.get("targets", []):
            yield p["title"], t["expr"]


class DashboardTest(unittest.TestCase):
    def setUp(self):
        self.dash = load()

    def test_grafana_9_10_dashboard(self):
        d = self.dash
        self.assertIn(d["schemaVersion"], range(36, 40))
        self.assertIsNone(d["id"])  # import makes a new one
        self.assertEqual(d["uid"], "rt-milter")
        self.assertEqual(d["title"], "rt-milter")
        for key in ("time", "templating", "annotations", "panels"):
            self.assertIn(key, d)

    def test_data_source_is_an_import_input(self):
        d = self.dash
        inputs = {i["name"]: i for i in d["__inputs"]}
        self.assertEqual(inputs["DS_PROMETHEUS"]["pluginId"], "prometheus")
        self.assertEqual(inputs["DS_PROMETHEUS"]["type"], "datasource")
        variables = {v["name"]: v for v in d["templating"]["list"]}
        ds = variables["datasource"]
        self.assertEqual((ds["type"], ds["query"]), ("datasource", "prometheus"))
        self.assertEqual(ds["current"]["value"], "${DS_PROMETHEUS}")
        want = {"type": "prometheus", "uid": "${datasource}"}
        for p in all_panels(self.dash):
            if p["type"] == "row":
                continue
            self.assertEqual(p["datasource"], want, p["title"])
            for t in p["targets"]:
                self.assertEqual(t["datasource"], want, p["title"])
        for name in ("instance", "server"):
            self.assertEqual(variables[name]["datasource"], want, name)
        # No data source named by a uid of some Grafana.
        with open(DASHBOARD, encoding="utf-8") as f:
            text = f.read()
        self.assertEqual(set(re.findall(r'"uid": "([^"]*)"', text)),
                         {"${datasource}", "-- Grafana --", "rt-milter"})

    def test_panels_ids_grid_targets(self):
        seen_ids = set()
        cells = {}
        for p in all_panels(self.dash):
            title = p.get("title", "?")
            self.assertIn(p["type"], PANEL_TYPES, title)
            self.assertIsInstance(p["id"], int, title)
            self.assertNotIn(p["id"], seen_ids, f"{title}: id {p['id']} used twice")
            seen_ids.add(p["id"])
            g = p["gridPos"]
            self.assertEqual(set(g), {"h", "w", "x", "y"}, title)
            self.assertTrue(g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["y"] >= 0, title)
            self.assertLessEqual(g["x"] + g["w"], 24, title)
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    self.assertNotIn((x, y), cells, f"{title} overlaps {cells.get((x, y))}")
                    cells[(x, y)] = title
            if p["type"] == "row":
                self.assertNotIn("targets", p, title)
                continue
            self.assertTrue(p["targets"], f"{title}: no query")
            ref_ids = [t["refId"] for t in p["targets"]]
            self.assertEqual(len(ref_ids), len(set(ref_ids)), title)
            for t in p["targets"]:
                self.assertTrue(t["expr"].strip(), title)

    def test_metrics_are_the_contract(self):
        problems = []
        for title, expr in exprs(self.dash):
            problems += [f"{title}: {p}" for p in contract_problems(expr)]
        for v in self.dash["templating"]["list"]:
            if v["type"] != "query":
                continue
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", v["query"])
            self.assertTrue(m, v["query"])
            problems += [f"variable {v['name']}: {p}" for p in contract_problems(m.group(1))]
            selector = promql_selectors(m.group(1))[0][0]
            if m.group(2) not in {"job", "instance"}:
                self.assertIn(m.group(2), CONTRACT[selector][1], v["name"])
        self.assertEqual(problems, [])

    def test_the_contract_check_catches_a_typo(self):
        self.assertTrue(contract_problems('rate(rt_milter_post_total{server="rt"}[5m])'))
        self.assertTrue(contract_problems('rt_milter_transactions_total{verdict="tempfail"}'))
        self.assertTrue(contract_problems('rt_milter_posts_total{result="ok"}'))
        self.assertEqual(contract_problems(
            'histogram_quantile(0.99, sum by (le, server) '
            '(rate(rt_milter_post_duration_seconds_bucket{server=~"$server"}[$__rate_interval])))'), [])

    def test_asked_for_panels(self):
        """The monitoring issue's panels, each found by what it queries."""
        queries = "\n".join(e for _, e in exprs(self.dash))
        types = {p["type"] for p in all_panels(self.dash)}
        for needle in (
            "sum by (verdict) (rate(rt_milter_transactions_total",
            'verdict="tempfailed"',
            "sum by (server, outcome) (rate(rt_milter_posts_total",
            "histogram_quantile(0.5, sum by (le, server) (rate(rt_milter_post_duration_seconds_bucket",
            "histogram_quantile(0.95, sum by (le, server) (rate(rt_milter_post_duration_seconds_bucket",
            "histogram_quantile(0.99, sum by (le, server) (rate(rt_milter_post_duration_seconds_bucket",
            "rt_milter_posted_message_bytes_bucket",
            "rt_milter_transactions_in_flight", "rt_milter_posts_waiting",
            "rt_milter_posts_in_progress", "rt_milter_post_slots",
            "rt_milter_circuit_state", "rt_milter_journal_duplicates_total",
            "sum by (resolution) (rate(rt_milter_journal_in_doubt_total",
            "rt_milter_journal_errors_total", "rt_milter_journal_usable",
            "rt_milter_config_generation", "rt_milter_config_last_reload_success_timestamp_seconds",
            "process_cpu_seconds_total", "process_resident_memory_bytes",
            "process_start_time_seconds"):
            self.assertIn(needle, queries)
        self.assertIn("state-timeline", types)
        self.assertIn("stat", types)
        variables = {v["name"]: v for v in self.dash["templating"]["list"]}
        self.assertTrue(variables["server"]["query"].startswith("label_values(rt_milter_posts_total"))
        self.assertTrue(variables["server"]["query"].endswith(", server)"))
        # Every selector of a metric with a server label follows the variable.
        labels = series_labels()
        for title, expr in exprs(self.dash):
            for name, matchers in promql_selectors(expr):
                if "server" in labels[name]:
                    self.assertIn(("server", "=~", "$server"), matchers, f"{title}: {name}")

if __name__ == "__main__":
    unittest.main()
