#!/usr/bin/env python3
"""Charts and tables from criterion's output and the lag bench.

Reads <criterion>/**/new/{benchmark,estimates}.json (default target/criterion)
and the raw lag file written by `peer-benches/src/bin/lag.rs`, writes PNGs:

  docs/bench-engine.png  throughput vs N, cronlane vs Mutex<BinaryHeap>, log-log
  docs/bench-peers.png   throughput vs N, cronlane vs each peer crate, log-log
  docs/bench-lag.png     histogram of runner fire lag

and prints a markdown table (median, 95% CI of the mean as spread,
throughput) of every benchmark to stdout.

  python3 scripts/charts.py [--criterion DIR] [--lag FILE] [--out DIR]
"""
import argparse
import glob
import json
import os
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(criterion_dir):
    rows = []
    for bench in glob.glob(os.path.join(criterion_dir, "**", "new", "benchmark.json"), recursive=True):
        d = os.path.dirname(bench)
        with open(bench) as f:
            b = json.load(f)
        with open(os.path.join(d, "estimates.json")) as f:
            e = json.load(f)
        elems = (b.get("throughput") or {}).get("Elements")
        if not elems:
            continue
        med = e["median"]["point_estimate"]
        lo = e["median"]["confidence_interval"]["lower_bound"]
        hi = e["median"]["confidence_interval"]["upper_bound"]
        rows.append(
            {
                "group": b["group_id"],
                "function": b["function_id"],
                "n": int(b["value_str"]),
                "elements": elems,
                "median_ns": med,
                "lo_ns": lo,
                "hi_ns": hi,
                "per_s": elems / (med * 1e-9),
                "per_s_lo": elems / (hi * 1e-9),
                "per_s_hi": elems / (lo * 1e-9),
            }
        )
    return rows


def fmt_rate(x):
    if x >= 1e6:
        return f"{x / 1e6:.2f} M/s"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k/s"
    return f"{x:.0f} /s"


def fmt_time(ns):
    for unit, div in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= div:
            return f"{ns / div:.3g} {unit}"
    return f"{ns:.3g} ns"


def table(rows):
    print("| group | system | N | median time | 95% CI of median | median throughput | ratio to best in row group |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    best = defaultdict(float)
    for r in rows:
        best[(r["group"], r["n"])] = max(best[(r["group"], r["n"])], r["per_s"])
    for r in sorted(rows, key=lambda r: (r["group"], r["n"], -r["per_s"])):
        ratio = r["per_s"] / best[(r["group"], r["n"])]
        print(
            f"| {r['group']} | {r['function']} | {r['n']:,} | {fmt_time(r['median_ns'])} | "
            f"{fmt_time(r['lo_ns'])} – {fmt_time(r['hi_ns'])} | {fmt_rate(r['per_s'])} | {ratio:.2f} |"
        )


def panel(ax, rows, group, title):
    series = defaultdict(list)
    for r in rows:
        if r["group"] == group:
            series[r["function"]].append(r)
    for name in sorted(series):
        pts = sorted(series[name], key=lambda r: r["n"])
        xs = [p["n"] for p in pts]
        ys = [p["per_s"] for p in pts]
        err = [[p["per_s"] - p["per_s_lo"] for p in pts], [p["per_s_hi"] - p["per_s"] for p in pts]]
        style = "-o" if name.startswith("cronlane") else "--s"
        ax.errorbar(xs, ys, yerr=err, fmt=style, capsize=3, label=name, linewidth=1.5, markersize=5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("tasks (N)")
    ax.set_ylabel("tasks per second")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def engine_chart(rows, out, targets):
    panels = [
        ("register/1t", "registration, 1 thread"),
        ("register/2t", "registration, 2 threads at once"),
        ("dispatch_once", "dispatch: N due one-shots, one run_pending"),
        ("reschedule_every", "recurring: fire + reschedule per task"),
        ("remove", "remove by id"),
    ]
    present = [p for p in panels if any(r["group"] == p[0] for r in rows)]
    if not present:
        return
    fig, axes = plt.subplots(2, 3, figsize=(16, 9.5))
    axes = axes.flatten()
    for ax, (group, title) in zip(axes, present):
        panel(ax, rows, group, title)
        if group in targets:
            ax.axhline(targets[group], color="red", linestyle=":", linewidth=1.5, label="issue target")
            ax.legend(fontsize=8)
    for ax in axes[len(present):]:
        ax.axis("off")
    fig.suptitle("cronlane vs a Mutex<BinaryHeap> baseline (criterion medians, 95% CI bars; red: issue #5 target)")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "bench-engine.png"), dpi=110)
    plt.close(fig)


def peers_chart(rows, out):
    panels = [("peers_register", "registration of N one-shot tasks"), ("peers_fire", "firing N due tasks")]
    present = [p for p in panels if any(r["group"] == p[0] for r in rows)]
    if not present:
        return
    fig, axes = plt.subplots(1, len(present), figsize=(7 * len(present), 5.5), squeeze=False)
    for ax, (group, title) in zip(axes[0], present):
        panel(ax, rows, group, title)
    fig.suptitle("cronlane vs peer crates, same work through each API (criterion medians)")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "bench-peers.png"), dpi=110)
    plt.close(fig)


def lag_chart(lag_file, out):
    if not lag_file or not os.path.exists(lag_file):
        return
    with open(lag_file) as f:
        us = sorted(int(line) / 1000.0 for line in f if line.strip())
    if not us:
        return
    pct = lambda p: us[round((len(us) - 1) * p)]  # noqa: E731
    lo = max(min(us), 0.1)
    edges = [lo * (max(us) / lo) ** (i / 60) for i in range(61)] if max(us) > lo else [lo, lo * 2]
    fig, ax = plt.subplots(figsize=(9, 5))
    ax.hist([max(u, lo) for u in us], bins=edges, color="#4C72B0")
    ax.set_xscale("log")
    ax.set_yscale("log")
    for p, c in ((0.5, "green"), (0.99, "orange")):
        ax.axvline(pct(p), color=c, linestyle="--", label=f"p{int(p * 100)} = {pct(p):.1f} µs")
    ax.axvline(us[-1], color="red", linestyle="--", label=f"max = {us[-1]:.1f} µs")
    ax.axvline(100, color="black", linestyle=":", label="target p99 < 100 µs")
    ax.set_xlabel("lag: callback start − scheduled instant (µs, log)")
    ax.set_ylabel("fires (log)")
    ax.set_title(f"cronlane runner fire lag, {len(us)} fires, system clock")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "bench-lag.png"), dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--criterion", default="target/criterion")
    ap.add_argument("--lag", default="target/lag.txt")
    ap.add_argument("--out", default="docs")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rows = load(a.criterion)
    targets = {"register/1t": 15e6, "register/2t": 12e6, "dispatch_once": 10e6}
    engine_chart(rows, a.out, targets)
    peers_chart(rows, a.out)
    lag_chart(a.lag, a.out)
    table(rows)


if __name__ == "__main__":
    main()
