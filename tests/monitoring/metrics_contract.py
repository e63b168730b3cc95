"""metrics_contract — the metrics rt-milter's GET /metrics exposes (issue 13),
in one place for tests/monitoring: name -> (type, {label: allowed values or
None for any}). The dashboard (packaging/grafana/rt-milter.json) and the alert
rules (packaging/prometheus/rt-milter-rules.yml) may use these and nothing
else (the rules also Prometheus's own `up`). Also owns promql_selectors(), a
small PromQL scanner that lists the series selectors of an expression.  A
later test checks this list against a real scrape of the daemon."""

from __future__ import annotations

import re

ANY = None
SERVER = {"server": ANY}

CONTRACT: dict[str, tuple[str, dict]] = {
    "rt_milter_transactions_total": (
        "counter", {"verdict": {"accepted", "tempfailed", "rejected", "not_ours"}}),
    "rt_milter_rcpt_refusals_total": ("counter", {"class": {"temporary", "permanent"}}),
    "rt_milter_posts_total": (
        "counter", {"server": ANY,
                    "outcome": {"ok", "not_ok", "temporary_failure", "transport_error", "timeout"}}),
    "rt_milter_post_duration_seconds": ("histogram", SERVER),
    "rt_milter_posted_message_bytes": ("histogram", {}),
    "rt_milter_journal_duplicates_total": ("counter", {}),
    "rt_milter_journal_in_doubt_total": (
        "counter", {"resolution": {"found_in_rt", "not_in_rt", "rest2_failed",
                                   "counted_delivered", "posted_again"}}),
    "rt_milter_journal_errors_total": ("counter", {}),
    "rt_milter_journal_usable": ("gauge", {}),
    "rt_milter_transactions_in_flight": ("gauge", {}),
    "rt_milter_posts_waiting": ("gauge", SERVER),
    "rt_milter_posts_in_progress": ("gauge", SERVER),
    "rt_milter_post_slots": ("gauge", SERVER),
    "rt_milter_circuit_state": ("gauge", {"server": ANY, "state": {"closed", "open", "half_open"}}),
    "rt_milter_config_generation": ("gauge", {}),
    "rt_milter_config_last_reload_success_timestamp_seconds": ("gauge", {}),
    "rt_milter_config_last_reload_successful": ("gauge", {}),
    "rt_milter_build_info": ("gauge", {"version": ANY}),
    "process_start_time_seconds": ("gauge", {}),
    "process_cpu_seconds_total": ("counter", {}),
    "process_resident_memory_bytes": ("gauge", {}),
    "process_open_fds": ("gauge", {}),
}

# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance"}


def series_labels() -> dict[str, dict]:
    """Every series name a scrape can have (a histogram's _bucket, _sum,
    _count) -> its labels and their allowed values."""
    out = {}
    for name, (kind, labels) in CONTRACT.items():
        if kind == "histogram":
            out[name + "_bucket"] = dict(labels, le=ANY)
            out[name + "_sum"] = dict(labels)
            out[name + "_count"] = dict(labels)
        else:
            out[name] = dict(labels)
    return out


# ---- a small PromQL scanner ---------------------------------------------------

AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
                "count_values", "bottomk", "topk", "quantile"}
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2"} | LABEL_LIST_KEYWORDS

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<var>\$\{?\w+\}?)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?:ms|[smhdwy])?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=(){}\[\],])
""", re.VERBOSE)


def _tokens(expr: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot scan {expr[pos:pos + 20]!r} in {expr!r}")
        pos = m.end()
        if m.lastgroup != "space":
            out.append((m.lastgroup, m.group()))
    return out


def _unquote(s: str) -> str:
    if s[0] == "`":
        return s[1:-1]
    return re.sub(r"\\(.)", r"\1", s[1:-1])


def promql_selectors(expr: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """The series selectors of a PromQL expression: [(metric name, [(label,
    op, value)])]. Grafana's $variables are taken as opaque values."""
    toks = _tokens(expr)
    out = []
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else ""
        if kind == "op" and text == "[":      # a range or subquery: [5m], [$__rate_interval]
            while toks[i][1] != "]":
                i += 1
            i += 1
            continue
        if kind == "op" and text == "{":
            raise ValueError(f"a selector without a metric name in {expr!r}")
        if kind != "ident":
            i += 1
            continue
        if text in LABEL_LIST_KEYWORDS and nxt == "(":   # by (le, server): labels, not metrics
            while toks[i][1] != ")":
                i += 1
            i += 1
            continue
        if text in KEYWORDS or text in AGGREGATIONS or nxt == "(":
            i += 1
            continue
        matchers = []
        i += 1
        if nxt == "{":
            i += 1
            while toks[i][1] != "}":
                if toks[i][1] == ",":
                    i += 1
                    continue
                label, op, value = toks[i][1], toks[i + 1][1], toks[i + 2]
                if value[0] == "string":
                    matchers.append((label, op, _unquote(value[1])))
                else:
                    raise ValueError(f"matcher {label}{op}{value[1]} in {expr!r}")
                i += 3
            i += 1
        out.append((text, matchers))
    return out


def contract_problems(expr: str, extra_names: dict | None = None) -> list[str]:
    """What in expr is not in the contract: unknown metric names, labels the
    metric does not have, label values outside an enumerated label's set."""
    known = series_labels()
    known.update(extra_names or {})
    problems = []
    for name, matchers in promql_selectors(expr):
        if name not in known:
            problems.append(f"metric {name} is not in the contract")
            continue
        labels = known[name]
        for label, op, value in matchers:
            if label in TARGET_LABELS:
                continue
            if label not in labels:
                problems.append(f"{name} has no label {label}")
                continue
            allowed = labels[label]
            if allowed is None or "$" in value:
                continue
            if op in ("=~", "!~"):
                if re.search(r"[.*+?()\[\]{}^\\]", value):
                    continue  # a real regex: not checked
                values = value.split("|")
            else:
                values = [value]
            for v in values:
                if v not in allowed:
                    problems.append(f"{name}{{{label}{op}\"{value}\"}}: {v!r} is not one of {sorted(allowed)}")
    return problems
