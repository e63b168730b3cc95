#!/usr/bin/python3
# plot.py — draws one benchmark result (results.json of tests/bench/bench.py)
# as a PNG: two panels, messages per second and CPU ms per message (every
# process of the system under test), each with one group of bars per message
# size and one bar per configuration (medians, as in results.md; log scale,
# as 1 KB and 10 MB differ by two orders of magnitude). bench.py calls it at
# the end of a run; it also runs alone on an older result:
#
#   tests/bench/plot.py build-bench/bench/results.json out.png
#
# Needs python3-matplotlib (packaging/install-deps bench), hence Debian's
# /usr/bin/python3 in the #! line; draws with the non-interactive Agg
# backend, so no display is needed.

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

# The order of bench.py's ALL_CONFIGS (each followed by its @base twin);
# configurations not listed here come after, by name.
ORDER = ["postfix-only", "perl-pipe", "cxx-pipe", "noop-milter", "milter-unix",
         "milter-unix-metrics", "milter-unix-pg", "milter-inet"]
SIZE_ORDER = ["1k", "100k", "10m"]
SIZE_LABEL = {"1k": "1 KB", "100k": "100 KB", "10m": "10 MB"}
PANELS = [("msgs_per_s", "messages per second (to RT; postfix-only and noop-milter: accepted)"),
          ("sut_cpu_ms_per_msg", "CPU ms per message (all processes of the system under test)")]


def ordered_configs(table):
    known = [c for k in ORDER for c in (k, k + "@base") if c in table]
    return known + sorted(c for c in table if c not in known)


def plot(result, out):
    meta = result.get("meta", {})
    table = result["table"]
    configs = ordered_configs(table)
    sizes = [s for s in SIZE_ORDER if any(s in table[c] for c in configs)]
    sizes += sorted({s for c in configs for s in table[c]} - set(sizes))
    if not configs or not sizes:
        raise SystemExit("plot.py: no figures in this result")
    colors = plt.get_cmap("tab10" if len(configs) <= 10 else "tab20")
    fig, axes = plt.subplots(1, len(PANELS), figsize=(6.5 * len(PANELS), 5.2))
    width = 0.8 / len(configs)
    for ax, (key, label) in zip(axes, PANELS):
        for i, cfg in enumerate(configs):
            xs, ys = [], []
            for j, size in enumerate(sizes):
                v = table[cfg].get(size, {}).get(key)
                if v:  # None (failed) and 0 cannot sit on a log scale
                    xs.append(j - 0.4 + width * (i + 0.5))
                    ys.append(v)
            bars = ax.bar(xs, ys, width, label=cfg, color=colors(i % colors.N))
            for b, v in zip(bars, ys):
                ax.annotate(f"{v:.3g}", (b.get_x() + b.get_width() / 2, v), xytext=(0, 2),
                            textcoords="offset points", ha="center", va="bottom",
                            fontsize=6, rotation=90)
        ax.set_yscale("log")
        ax.set_xticks(range(len(sizes)))
        ax.set_xticklabels([SIZE_LABEL.get(s, s) for s in sizes])
        ax.set_xlabel("message size")
        ax.set_title(label, fontsize=9)
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.margins(y=0.15)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", fontsize=8, ncol=min(len(configs), 5),
               frameon=False)
    fig.suptitle(f"rt-milter benchmark {meta.get('started', '')}: commit {meta.get('commit', '?')}, "
                 f"{meta.get('sessions', '?')} sessions, median of {meta.get('reps', '?')}, "
                 f"{meta.get('nproc', '?')} CPUs", fontsize=10)
    rows = (len(configs) + 4) // 5
    fig.tight_layout(rect=(0, 0.035 * rows + 0.01, 1, 1))
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: tests/bench/plot.py RESULTS.json OUT.png")
    with open(sys.argv[1]) as f:
        result = json.load(f)
    plot(result, sys.argv[2])
    print(f"plot.py: written {os.path.abspath(sys.argv[2])}")


if __name__ == "__main__":
    main()
