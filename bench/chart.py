"""Draw bench/results/bench.png from results.json (run with a Python that has matplotlib).

    bench/.venv-plot/bin/python bench/chart.py RESULTS.json OUT.png
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

COLORS = {"sesam-tls": "#2a7ab9", "certbot": "#d9822b", "lego": "#5a9e4b"}


def bar_with_range(ax, labels, stats, colors, unit_scale=1.0):
    med = [s["median"] * unit_scale for s in stats]
    lo = [(s["median"] - s["min"]) * unit_scale for s in stats]
    hi = [(s["max"] - s["median"]) * unit_scale for s in stats]
    bars = ax.bar(labels, med, yerr=[lo, hi], capsize=4, color=colors)
    for b, m, h in zip(bars, med, hi, strict=True):
        ax.annotate(f"{m:.2f}" if m < 10 else f"{m:.0f}", (b.get_x() + b.get_width() / 2, m + h),
                    ha="center", va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")


def main(src: str, dst: str) -> None:
    res = json.load(open(src))
    tools = res["tools"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    m = res.get("machine", {})
    fig.suptitle(f"sesam-tls vs certbot vs lego on a loopback Pebble — {m.get('cpu', '?')}, "
                 f"{m.get('nproc', '?')} CPUs, {m.get('date', '')}", fontsize=10)

    issue = res.get("issue")
    ax = axes[0][0]
    if issue:
        ts = [t for t in tools if issue["latency"][t].get("n")]
        bar_with_range(ax, ts, [issue["latency"][t] for t in ts], [COLORS[t] for t in ts])
        n = max(issue["latency"][t]["n"] for t in ts)
        ax.set_title(f"1. one issuance, 1 name (median, min–max; n={n})", fontsize=9)
        ax.set_ylabel("seconds")

    ax = axes[0][1]
    if issue:
        for t in tools:
            pts = sorted((int(k), v) for k, v in issue["scaling"][t].items() if v.get("n"))
            if not pts:
                continue
            xs = [p[0] for p in pts]
            ys = [p[1]["median"] for p in pts]
            ax.plot(xs, ys, marker="o", color=COLORS[t], label=t)
            ax.fill_between(xs, [p[1]["min"] for p in pts], [p[1]["max"] for p in pts], color=COLORS[t], alpha=0.15)
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("names on the certificate")
        ax.set_ylabel("seconds (log)")
        ax.set_title("2. scaling with names (median; band: min–max)", fontsize=9)
        ax.legend(fontsize=8)

    ax = axes[1][0]
    st = res.get("startup")
    if st:
        labels = list(st)
        colors = [COLORS[k.split()[0]] for k in labels]
        bar_with_range(ax, [k.replace(" (nothing due)", "\n(nothing due)") for k in labels],
                       [st[k] for k in labels], colors, unit_scale=1000)
        ax.set_ylabel("milliseconds")
        ax.set_title("3. start-up (median, min–max)", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)

    ax = axes[1][1]
    rot = res.get("rotation")
    if rot:
        modes = [m for m in ("idle", "reload", "restart") if m in rot]
        bar_with_range(ax, [f"{m}\n{rot[m]['failed_total']} failed of {rot[m]['requests_total']}" for m in modes],
                       [rot[m]["longest_gap_ms"] for m in modes], ["#999999", "#2a7ab9", "#b93a2a"])
        ax.set_ylabel("longest gap between successful responses, ms")
        ax.set_title("4. rotation under HTTPS load: sesam-tls --reload-mode", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)

    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
