#!/usr/bin/env python3
"""Run the entryhw benchmark N times and keep the medians.

    python bench/run.py --runs 3
    python bench/run.py --runs 3 --baseline "node tests/js/original_standin.js"
    python bench/run.py --runs 1 -- --steady-s 5 --flood 10000   # after --: harness options
    python bench/run.py --runs 3 --curves --baseline "node tests/js/original_standin.js"
    python bench/run.py --runs 1 --curves --no-table --curve-args "--browsers 1,5 --copies 1,2"

Each run is one `node bench/entryhw_bench.mjs` (see its --help). With --baseline the two
commands alternate (target, baseline, target, baseline, ...) so that both see the same
machine over time. The result, bench/results/<date>-<label>.json, holds every run's full
output, the per-figure medians (and min/max) and the medians of the latency distributions;
bench/results/<date>-<label>.png draws them (matplotlib, installed by `tox -e bench`).

With --curves, N more alternating runs of `node bench/curve.mjs` (the cost curves: one host
with 1..100 browsers, one host with 1..20 client copies) go to <date>-<label>-curves.json and
-curves.png: per point the medians (min/max) over the runs, least-squares slopes (CPU cores
per added browser / copy, CPU µs per message) and where the curve departs from its line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HARNESS = HERE / "entryhw_bench.mjs"
CURVE_HARNESS = HERE / "curve.mjs"
FORMAT = 1

# Headline figures: (key in the harness summary, label in the table, unit, higher is better).
FIGURES = [
    ("startup_ready_ms", "startup: spawn -> runningModeChanged 2", "ms", False),
    ("startup_first_browser_ms", "startup: spawn -> first browser", "ms", False),
    ("rss_idle_kb", "RSS idle", "kB", False),
    ("paced_rtt_p50_ms", "paced RTT p50", "ms", False),
    ("paced_rtt_p90_ms", "paced RTT p90", "ms", False),
    ("paced_rtt_p99_ms", "paced RTT p99", "ms", False),
    ("flood_b2p_msgs_s", "flood browser->parent", "msg/s", True),
    ("flood_p2b_msgs_s", "flood parent->browser", "msg/s", True),
    ("flood_b2p_lost", "flood b2p lost", "msgs", False),
    ("flood_p2b_lost", "flood p2b lost", "msgs", False),
    ("rss_loaded_kb", "RSS after floods", "kB", False),
    ("steady_b2p_p50_ms", "steady b2p p50", "ms", False),
    ("steady_b2p_p99_ms", "steady b2p p99", "ms", False),
    ("steady_b2p_max_ms", "steady b2p max", "ms", False),
    ("steady_p2b_p50_ms", "steady p2b p50", "ms", False),
    ("steady_p2b_p99_ms", "steady p2b p99", "ms", False),
    ("steady_p2b_max_ms", "steady p2b max", "ms", False),
    ("steady_lost_b2p", "steady lost b2p", "msgs", False),
    ("steady_lost_p2b", "steady lost p2b", "msgs", False),
    ("steady_server_cpu_frac", "steady server CPU", "cores", False),
    ("steady_harness_cpu_frac", "steady harness CPU", "cores", False),
    ("steady_others_cpu_frac", "steady other processes' CPU", "cores", False),
    ("steady_rss_end_kb", "RSS end of steady", "kB", False),
    ("cloud_child_mode_ms", "cloud: spawn -> runningModeChanged 3", "ms", False),
    ("cloud_rtt_p50_ms", "cloud relay RTT p50", "ms", False),
    ("cloud_rtt_p99_ms", "cloud relay RTT p99", "ms", False),
    ("rss_peak_kb", "RSS peak (VmHWM)", "kB", False),
    ("shutdown_exit_ms", "shutdown: SIGTERM -> exit", "ms", False),
    ("shutdown_clean", "clean shutdown (1 = yes)", "", True),
    ("run_wall_s", "one run, wall time", "s", False),
]

# Latency distributions stored by the harness as quantiles at fixed probabilities.
DISTRIBUTIONS = {
    "paced_rtt": ("paced",),
    "steady_b2p": ("steady", "b2p"),
    "steady_p2b": ("steady", "p2b"),
    "cloud_rtt": ("cloud", "rtt"),
}
CDF_P = [i / 100 for i in range(100)] + [0.995, 0.999, 1.0]


def die(msg: str, code: int = 2) -> None:
    print(f"run.py: {msg}", file=sys.stderr)
    sys.exit(code)


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    harness_args: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, harness_args = argv[:i], argv[i + 1 :]
    p = argparse.ArgumentParser(
        prog="python bench/run.py",
        description="Benchmark entryhw (and optionally a baseline) with bench/entryhw_bench.mjs; "
        "write bench/results/<date>-<label>.json and .png. Options after -- go to the harness.",
    )
    p.add_argument("--runs", type=int, default=3, help="runs per command (default 3)")
    p.add_argument("--cmd", help="server command (default: entryhw-server on PATH or next to "
                   "this Python)")
    p.add_argument("--label",
                   help="name of the target (default: its --version, e.g. entryhw-0.1.0)")
    p.add_argument("--baseline", metavar="CMD", help="second server command, run alternately")
    p.add_argument("--baseline-label", help="name of the baseline (default: its program name)")
    p.add_argument("--out-dir", type=Path, default=HERE / "results",
                   help="where the JSON and PNG go (default bench/results)")
    p.add_argument("--node", default=shutil.which("node") or "node", help="node executable")
    p.add_argument("--no-plot", action="store_true", help="JSON only (no matplotlib needed)")
    p.add_argument("--replot", type=Path, metavar="JSON",
                   help="only redraw the PNG (and print the table) of an earlier result")
    p.add_argument("--timeout", type=float, default=180.0,
                   help="seconds after which one run is stopped (default 180)")
    p.add_argument("--curves", action="store_true",
                   help="also run the cost curves (bench/curve.mjs), as many alternating runs; "
                   "written to <date>-<label>-curves.json and .png")
    p.add_argument("--no-table", action="store_true",
                   help="skip the runs of entryhw_bench.mjs (with --curves: the curves only)")
    p.add_argument("--curve-args", default="", metavar="ARGS",
                   help='options for curve.mjs, one string, e.g. "--browsers 1,5 --measure-s 2" '
                   '(a single option needs the = form: --curve-args="--hz 30")')
    p.add_argument("--curve-timeout", type=float, default=960.0,
                   help="seconds after which one curve run is stopped (default 960)")
    args = p.parse_args(argv)
    if not 1 <= args.runs <= 50:
        p.error("--runs is 1..50")
    if args.no_table and not args.curves and not args.replot:
        p.error("--no-table without --curves leaves nothing to run")
    if harness_args and args.no_table:
        p.error("options after -- are for entryhw_bench.mjs, which --no-table skips")
    try:
        args.curve_argv = shlex.split(args.curve_args)
    except ValueError as exc:
        p.error(f"--curve-args: {exc}")
    if args.curve_argv and not args.curves:
        p.error("--curve-args needs --curves")
    return args, harness_args


def default_cmd() -> str:
    found = shutil.which("entryhw-server")
    if found:
        return found
    beside = Path(sys.executable).parent / "entryhw-server"
    if beside.exists():
        return str(beside)
    die("entryhw-server is neither on PATH nor next to this Python; pass --cmd")
    return ""  # unreachable


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-")[:60] or "run"


def run_once(node: str, cmd: str, label: str, harness_args: list[str], workdir: Path,
             name: str, timeout: float, harness: Path = HARNESS) -> dict:
    out = workdir / f"{name}.json"
    argv = [node, str(harness), "--cmd", cmd, "--label", label, "--json-out", str(out),
            "--log-dir", str(workdir / f"{name}-logs"), *harness_args]
    print(f"== {name}: {cmd}", flush=True)
    t = time.monotonic()
    # The harness's own table goes to a file (it is in the JSON too); its progress to stderr.
    table = open(workdir / f"{name}.txt", "w")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=table)
    try:
        code = proc.wait(timeout=timeout)
    except (subprocess.TimeoutExpired, KeyboardInterrupt) as exc:
        # SIGTERM first: the harness kills the servers it spawned, then exits.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if isinstance(exc, KeyboardInterrupt):
            raise
        code = None
    finally:
        table.close()
    wall = time.monotonic() - t
    try:
        res = json.loads(out.read_text())
    except (OSError, ValueError) as exc:
        res = {"summary": {}, "phases": {}, "meta": {}, "host": [], "cloud": [],
               "errors": [f"no result from the harness ({exc})"]}
    if code is None:
        res.setdefault("errors", []).append(f"stopped after {timeout:.0f} s")
    res["harness_exit_code"] = code
    res["harness_wall_s"] = round(wall, 2)
    if harness == CURVE_HARNESS:
        brief = "; ".join(
            f"{curve} CPU " + ", ".join(f"{p['n']}: {p[key]:.3f}" for p in res.get(curve, [])
                                        if isinstance(p.get(key), (int, float)))
            for curve, key in (("host", "server_cpu_cores"), ("cloud", "total_cpu_cores")))
    else:
        s = res.get("summary", {})
        brief = ", ".join(f"{text} {s[k]:g}" for k, text in (
            ("paced_rtt_p50_ms", "paced p50 ms"), ("flood_b2p_msgs_s", "b2p msg/s"),
            ("flood_p2b_msgs_s", "p2b msg/s"), ("steady_server_cpu_frac", "steady CPU"),
            ("steady_others_cpu_frac", "others' CPU")) if isinstance(s.get(k), (int, float)))
    print(f"== {name}: {wall:.1f} s, exit {code}; {brief}"
          + (f"; errors: {res['errors']}" if res.get("errors") else ""), flush=True)
    return res


def dig(d: dict, path: tuple[str, ...]):
    for k in path:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def aggregate(runs: list[dict]) -> dict:
    med, lo, hi = {}, {}, {}
    keys = {k for r in runs for k in r.get("summary", {})}
    for k in sorted(keys):
        vals = [r["summary"][k] for r in runs
                if isinstance(r.get("summary", {}).get(k), (int, float))]
        if vals:
            med[k] = round(statistics.median(vals), 4)
            lo[k], hi[k] = min(vals), max(vals)
    cdf = {}
    for name, path in DISTRIBUTIONS.items():
        curves = [c for r in runs if (c := dig(r.get("phases", {}), (*path, "cdf_ms")))]
        curves = [c for c in curves if len(c) == len(CDF_P)]
        if curves:
            cdf[name] = [round(statistics.median(col), 4) for col in zip(*curves, strict=True)]
    return {"median": med, "min": lo, "max": hi, "cdf_median_ms": cdf,
            "runs_ok": sum(1 for r in runs if not r.get("errors"))}


def first_meta(runs: list[dict]) -> dict:
    for r in runs:
        if r.get("meta"):
            return r["meta"]
    return {}


def fmt(v, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "kB":
        return f"{v / 1024:.1f} MB"
    if unit == "msg/s":
        return f"{v:,.0f}"
    if unit in ("ms",):
        return f"{v:.3f}" if v < 10 else f"{v:.1f}"
    if unit in ("cores",):
        return f"{v:.3f}"
    return f"{v:g}"


def print_table(targets: dict) -> None:
    names = list(targets)
    nruns = max(len(t["runs"]) for t in targets.values())
    w0 = max(len(f[1]) + len(f[2]) + 3 for f in FIGURES)
    rows = []
    for key, text, unit, _ in FIGURES:
        cells = []
        for n in names:
            agg = targets[n]["aggregate"]
            cell = fmt(agg["median"].get(key), unit)
            if nruns > 1 and key in agg["min"] and agg["min"][key] != agg["max"][key]:
                cell += f" ({fmt(agg['min'][key], unit).removesuffix(' MB')}-" \
                        f"{fmt(agg['max'][key], unit).removesuffix(' MB')})"
            cells.append(cell)
        if all(c == "-" for c in cells):
            continue
        rows.append((f"{text} [{unit}]" if unit else text, cells))
    cols = [max(len(n), *(len(r[1][i]) for r in rows)) + 2 for i, n in enumerate(names)]
    title = "median (min-max)" if nruns > 1 else "one run"
    head = f"{title:<{w0}}" + "".join(f"{n:>{c}}" for n, c in zip(names, cols, strict=True))
    print(head)
    print("-" * len(head))
    for label, cells in rows:
        print(f"{label:<{w0}}" + "".join(f"{c:>{w}}" for c, w in zip(cells, cols, strict=True)))
    if len(names) == 2:
        a, b = (targets[n]["aggregate"]["median"] for n in names)
        print(f"\nratio {names[0]}/{names[1]} of the medians: "
              + ", ".join(f"{k} {a[k] / b[k]:.2f}" for k in
                          ("startup_first_browser_ms", "rss_idle_kb", "rss_loaded_kb",
                           "steady_rss_end_kb", "paced_rtt_p50_ms", "paced_rtt_p99_ms",
                           "flood_b2p_msgs_s", "flood_p2b_msgs_s", "steady_server_cpu_frac",
                           "steady_b2p_p50_ms", "steady_b2p_p99_ms", "steady_b2p_max_ms",
                           "steady_p2b_p50_ms", "steady_p2b_p99_ms", "steady_p2b_max_ms",
                           "cloud_rtt_p99_ms")
                          if a.get(k) and b.get(k)))


def save_figure(fig, meta: dict, targets: dict, what: str, note: str, top: float,
                png: Path) -> None:
    """Title ``fig`` with the machine, the targets and their runs, then write the PNG."""
    import matplotlib.pyplot as plt

    vers = "; ".join(
        f"{n}: {t['server_version'] or t['command']}"
        + (f" on {t['runtime']}" if t.get("runtime") else "")
        for n, t in targets.items())
    runs = ", ".join(f"{len(t['runs'])} run{'s' if len(t['runs']) != 1 else ''} of {n}"
                     for n, t in targets.items())
    fig.suptitle(
        f"{what}, {meta['date'][:16].replace('T', ' ')} UTC: {meta['cpu_model']} "
        f"x{meta['cpus']}, Node {meta['node']}, socket.io-client {meta['socket_io_client']}\n"
        f"{vers}\nmedians of {runs}" + (" (alternating)" if len(targets) > 1 else "")
        + "; thin lines: single runs" + note,
        fontsize=10.5)
    fig.tight_layout(rect=(0, 0, 1, top))
    fig.savefig(png, dpi=100)
    plt.close(fig)


def plot(result: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    targets = result["targets"]
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    fig, axes = plt.subplots(2, 3, figsize=(16, 9.5))
    pace, nb, hz = (first_meta_opt(targets, k) for k in ("pace_ms", "steady_browsers", "steady_hz"))
    panels = [
        ("paced_rtt", f"Paced round trip ({pace} ms gaps)\n"
                      "parent → server → browser → server → parent"),
        ("steady_b2p", f"Steady load, one way browser → parent\n{nb} browsers x {hz} Hz each"),
        ("steady_p2b", f"Steady load, one way parent → browser\n{hz} Hz sends, each to {nb} "
                       "browsers"),
        ("cloud_rtt", "Cloud relay round trip\nparent2 → child → host → browser → … → parent2"),
    ]
    axes_for = [axes[0, 0], axes[0, 1], axes[0, 2], axes[1, 1]]
    probs = CDF_P[1:-1]  # the logit axis cannot show 0 and 1
    pct = {0.01: "p1", 0.1: "p10", 0.5: "p50", 0.9: "p90", 0.99: "p99", 0.999: "p99.9"}
    for (dist, title), ax in zip(panels, axes_for, strict=True):
        for i, (name, t) in enumerate(targets.items()):
            color = colors[i % len(colors)]
            for r in t["runs"]:
                path = DISTRIBUTIONS[dist]
                c = dig(r.get("phases", {}), (*path, "cdf_ms"))
                if c and len(c) == len(CDF_P):
                    ax.plot(c[1:-1], probs, color=color, alpha=0.25, lw=0.8)
            med = t["aggregate"]["cdf_median_ms"].get(dist)
            if med:
                p50, p99 = med[CDF_P.index(0.5)], med[CDF_P.index(0.99)]
                ax.plot(med[1:-1], probs, color=color, lw=2,
                        label=f"{name}: p50 {p50:.3g} ms, p99 {p99:.3g} ms")
        ax.set_xscale("log")
        ax.set_yscale("logit")
        ax.set_ylim(0.01, 0.999)
        ax.set_yticks(list(pct))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: pct.get(round(y, 3), "")))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda y, _: ""))
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="major", alpha=0.4)
        ax.grid(True, which="minor", axis="x", alpha=0.15)
        ax.set_xlabel("latency [ms], log scale")
        ax.set_ylabel("share of messages ≤ x (percentile, logit scale)")
        ax.set_title(title, fontsize=10)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize=8)
        else:
            ax.text(0.5, 0.5, "not measured", ha="center", transform=ax.transAxes)

    # Floods: bars = median, whiskers = min..max over the runs.
    ax = axes[1, 0]
    names = list(targets)
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        agg = targets[name]["aggregate"]
        xs, hs, lo, hi = [], [], [], []
        for j, key in enumerate(("flood_b2p_msgs_s", "flood_p2b_msgs_s")):
            if key in agg["median"]:
                xs.append(j + (i - (len(names) - 1) / 2) * width)
                hs.append(agg["median"][key])
                lo.append(agg["median"][key] - agg["min"][key])
                hi.append(agg["max"][key] - agg["median"][key])
        bars = ax.bar(xs, hs, width * 0.95, yerr=[lo, hi], capsize=4,
                      color=colors[i % len(colors)], label=name)
        ax.bar_label(bars, labels=[f"{h:,.0f}" for h in hs], fontsize=8, padding=2)
    ax.set_xticks([0, 1], ["browser → parent", "parent → browser"])
    ax.set_ylabel("messages / s (median, whiskers min-max)")
    n_flood = first_meta_opt(targets, "flood")
    ax.set_title(f"Floods: {n_flood} messages one way, as fast as possible", fontsize=10)
    ax.grid(True, axis="y", alpha=0.4)
    ax.legend(loc="upper left", fontsize=8)
    ax.margins(y=0.15)

    # Headline medians as a table.
    ax = axes[1, 2]
    ax.axis("off")
    keys = [
        ("startup_ready_ms", "startup → ready", "ms"),
        ("startup_first_browser_ms", "startup → 1st browser", "ms"),
        ("rss_idle_kb", "RSS idle", "kB"),
        ("rss_loaded_kb", "RSS after floods", "kB"),
        ("rss_peak_kb", "RSS peak", "kB"),
        ("steady_server_cpu_frac", "steady server CPU (cores)", "cores"),
        ("steady_others_cpu_frac", "other processes' CPU (noise)", "cores"),
        ("cloud_child_mode_ms", "2nd instance → child mode", "ms"),
        ("shutdown_exit_ms", "SIGTERM → exit", "ms"),
        ("flood_b2p_lost", "lost in floods (b2p)", ""),
        ("flood_p2b_lost", "lost in floods (p2b)", ""),
        ("run_wall_s", "one run (wall)", "s"),
    ]
    rows = [[text] + [fmt(targets[n]["aggregate"]["median"].get(k), unit) + (
        f" {unit}" if unit in ("ms", "s") and targets[n]["aggregate"]["median"].get(k) is not None
        else "") for n in names] for k, text, unit in keys]
    first = 0.5 if len(names) > 1 else 0.6
    tab = ax.table(cellText=rows, colLabels=["median of runs", *names], loc="center",
                   cellLoc="right", colLoc="right",
                   colWidths=[first] + [(1.05 - first) / len(names)] * len(names))
    tab.auto_set_font_size(False)
    tab.set_fontsize(8.5)
    tab.scale(1, 1.35)
    for (r, c), cell in tab.get_celld().items():
        if c == 0:
            cell.set_text_props(ha="left")
            cell._loc = "left"
        if r == 0:
            cell.set_text_props(weight="bold")

    save_figure(fig, result["meta"], targets, "entryhw bench", "", 0.96, png)


def first_meta_opt(targets: dict, key: str):
    for t in targets.values():
        for r in t["runs"]:
            v = r.get("options", {}).get(key)
            if v is not None:
                return f"{v:,}"
    return "?"


def shown(p: Path) -> Path:
    return p.relative_to(Path.cwd()) if p.is_relative_to(Path.cwd()) else p


# ---------------------------------------------------------------- cost curves (curve.mjs)

# Per-point figures of curve.mjs: name -> path inside one point of a run.
_LAT = {f"{d}_{q}_ms": (d, f"{q}_ms") for d in ("b2p", "p2b") for q in ("p50", "p99", "max")}
CURVE_METRICS = {
    "host": {
        "server_cpu_cores": ("server_cpu_cores",),
        "msgs_per_s": ("msgs_per_s",),
        "cpu_us_per_msg": ("cpu_us_per_msg",),
        **_LAT,
        "b2p_lost": ("b2p", "lost"),
        "p2b_lost": ("p2b", "lost"),
        "rss_end_kb": ("rss_end_kb",),
        "harness_cpu_cores": ("harness_cpu_cores",),
        "others_cpu_cores": ("others_cpu_cores",),
        "achieved_hz": ("achieved_hz",),
        "ticks_skipped": ("ticks_skipped",),
        "connect_all_ms": ("connect_all_ms",),
    },
    "cloud": {
        "total_cpu_cores": ("total_cpu_cores",),
        "host_cpu_cores": ("host_cpu_cores",),
        "copies_cpu_cores": ("copies_cpu_cores",),
        "msgs_per_s": ("msgs_per_s",),
        "cpu_us_per_msg": ("cpu_us_per_msg",),
        **_LAT,
        "b2p_lost": ("b2p", "lost"),
        "p2b_lost": ("p2b", "lost"),
        "misrouted": ("misrouted",),
        "rss_total_kb": ("rss_total_kb",),
        "host_rss_kb": ("host_rss_kb",),
        "harness_cpu_cores": ("harness_cpu_cores",),
        "others_cpu_cores": ("others_cpu_cores",),
        "achieved_hz": ("achieved_hz",),
        "ticks_skipped": ("ticks_skipped",),
        "spawn_all_ms": ("spawn_all_ms",),
        "relay_ready_ms": ("relay_ready_ms",),
    },
}
# curve -> (what N counts, the CPU figure the slopes are fitted to, the RSS figure)
CURVES = {
    "host": ("browser", "server_cpu_cores", "rss_end_kb"),
    "cloud": ("copy", "total_cpu_cores", "rss_total_kb"),
}
PLURAL = {"browser": "browsers", "copy": "copies"}
# Rows of the printed table: (figure, text, unit, ratio target/baseline printed).
CURVE_ROWS = {
    "host": [
        ("server_cpu_cores", "server CPU", "cores", True),
        ("msgs_per_s", "messages handled (b2p + p2b)", "msg/s", False),
        ("cpu_us_per_msg", "server CPU per message", "µs", True),
        ("b2p_p50_ms", "browser → parent p50", "ms", False),
        ("b2p_p99_ms", "browser → parent p99", "ms", True),
        ("p2b_p50_ms", "parent → browser p50", "ms", False),
        ("p2b_p99_ms", "parent → browser p99", "ms", True),
        ("lost", "lost (b2p + p2b)", "msgs", False),
        ("rss_end_kb", "server RSS", "MB", False),
        ("harness_cpu_cores", "harness CPU (parent + browsers)", "cores", False),
        ("others_cpu_cores", "other processes' CPU", "cores", False),
        ("achieved_hz", "achieved Hz per browser", "Hz", False),
    ],
    "cloud": [
        ("total_cpu_cores", "CPU of all servers", "cores", True),
        ("host_cpu_cores", "CPU of the host alone", "cores", False),
        ("msgs_per_s", "messages relayed (both ways)", "msg/s", False),
        ("cpu_us_per_msg", "CPU per relayed message", "µs", True),
        ("p2b_p50_ms", "relay parent → browser p50", "ms", False),
        ("p2b_p99_ms", "relay parent → browser p99", "ms", True),
        ("b2p_p50_ms", "relay browser → parent p50", "ms", False),
        ("b2p_p99_ms", "relay browser → parent p99", "ms", True),
        ("lost", "lost (both ways)", "msgs", False),
        ("misrouted", "misrouted (must be 0)", "msgs", False),
        ("rss_total_kb", "RSS of all servers", "MB", True),
        ("host_rss_kb", "RSS of the host alone", "MB", False),
        ("harness_cpu_cores", "harness CPU (parents + browsers)", "cores", False),
        ("others_cpu_cores", "other processes' CPU", "cores", False),
        ("spawn_all_ms", "start of all copies (to mode 3)", "ms", False),
    ],
}
LINEAR_TOL = 0.20  # a point more than 20% off the fitted line (and by > FLOOR cores) is flagged
LINEAR_FLOOR = 0.01  # cores: below this a difference is /proc resolution and noise


def point_values(curve: str, point: dict) -> dict:
    out = {}
    for key, path in CURVE_METRICS[curve].items():
        v = dig(point, path)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = v
    if "b2p_lost" in out and "p2b_lost" in out:
        out["lost"] = out["b2p_lost"] + out["p2b_lost"]
    return out


def curve_points(curve: str, run: dict) -> dict[int, dict]:
    """n -> figures of one run's points that measured something."""
    return {p["n"]: point_values(curve, p) for p in run.get(curve, [])
            if isinstance(p.get("n"), int) and not p.get("error")}


def aggregate_curve(curve: str, runs: list[dict]) -> list[dict]:
    per_run = [curve_points(curve, r) for r in runs]
    out = []
    for n in sorted({n for pr in per_run for n in pr}):
        vals = [pr[n] for pr in per_run if n in pr]
        med, lo, hi = {}, {}, {}
        for k in sorted({k for v in vals for k in v}):
            xs = [v[k] for v in vals if k in v]
            med[k] = round(statistics.median(xs), 4)
            lo[k], hi[k] = min(xs), max(xs)
        out.append({"n": n, "runs_ok": len(vals), "median": med, "min": lo, "max": hi})
    return out


def least_squares(xs: list[float], ys: list[float]) -> dict | None:
    """y = a + b x, with r²; None with fewer than two distinct x."""
    if len(xs) < 2 or len(set(xs)) < 2:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    a = my - b * mx
    syy = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys, strict=True))
    return {"a": a, "b": b, "r2": 1 - ss_res / syy if syy else 1.0}


def curve_fits(curve: str, points: list[dict], runs: list[dict]) -> dict:
    """Slopes of one target's curve (over the medians), and how far each point is off the line."""
    unit, cpu_key, rss_key = CURVES[curve]
    pts = [p for p in points if cpu_key in p["median"] and p["median"].get("msgs_per_s")]
    ns = [p["n"] for p in pts]
    cpu = [p["median"][cpu_key] for p in pts]
    msgs = [p["median"]["msgs_per_s"] for p in pts]
    per_n = least_squares(ns, cpu)
    per_msg = least_squares(msgs, cpu)
    rss_pts = [p for p in points if rss_key in p["median"]]
    per_rss = least_squares([p["n"] for p in rss_pts],
                            [p["median"][rss_key] / 1024 for p in rss_pts])
    out: dict = {"unit": unit, "points": [p["n"] for p in pts]}
    if per_n:
        out["cores_per_unit"] = round(per_n["b"], 6)
        out["cores_at_zero"] = round(per_n["a"], 4)
        out["r2"] = round(per_n["r2"], 4)
    if per_rss:
        out["rss_mb_per_unit"] = round(per_rss["b"], 3)
        out["rss_mb_at_zero"] = round(per_rss["a"], 2)
    # The same slope from every single run: how much it moves between runs.
    slopes = []
    for r in runs:
        pr = curve_points(curve, r)
        xy = [(n, v[cpu_key]) for n, v in sorted(pr.items()) if cpu_key in v]
        f = least_squares([x for x, _ in xy], [y for _, y in xy])
        if f:
            slopes.append(f["b"])
    if slopes:
        out["cores_per_unit_runs"] = [round(min(slopes), 6), round(max(slopes), 6)]
    if not per_msg:
        return out
    a, b = per_msg["a"], per_msg["b"]
    out["us_per_msg"] = round(b * 1e6, 3)
    out["fixed_cores"] = round(a, 4)
    out["r2_msgs"] = round(per_msg["r2"], 4)
    rows, flagged = [], []
    for i, (n, c, m) in enumerate(zip(ns, cpu, msgs, strict=True)):
        pred = a + b * m
        row = {"n": n, "cpu_cores": c, "fitted_cores": round(pred, 4),
               "us_per_msg": round(c / m * 1e6, 2), "fitted_us_per_msg": round(pred / m * 1e6, 2),
               "deviation": round(c / pred - 1, 3) if pred > LINEAR_FLOOR / 2 else None}
        if i:
            dm = m - msgs[i - 1]
            if dm > 0:
                row["marginal_us_per_msg"] = round((c - cpu[i - 1]) / dm * 1e6, 2)
        off = abs(c - pred) > LINEAR_FLOOR and (row["deviation"] is None
                                                 or abs(row["deviation"]) > LINEAR_TOL)
        row["flagged"] = off
        if off:
            flagged.append(row)
        rows.append(row)
    out["linearity"] = rows
    if flagged:
        out["statement"] = "not linear: " + "; ".join(
            f"N={r['n']} {r['cpu_cores']:.3f} cores vs {r['fitted_cores']:.3f} on the line"
            + (f" ({r['deviation']:+.0%})" if r["deviation"] is not None else "")
            for r in flagged)
    else:
        out["statement"] = (f"linear: every point within {LINEAR_TOL:.0%} (or {LINEAR_FLOOR} "
                            "cores) of the line")
    return out


def summarize_curves(targets: dict) -> dict:
    """Fill in every target's aggregate and fits from its runs; ratios target/baseline."""
    for t in targets.values():
        t["aggregate"] = {c: aggregate_curve(c, t["runs"]) for c in CURVES}
        t["fits"] = {c: curve_fits(c, t["aggregate"][c], t["runs"]) for c in CURVES}
    names = list(targets)
    if len(names) != 2:
        return {}
    ta, tb = (targets[n] for n in names)
    ratios: dict = {"of": f"{names[0]}/{names[1]}"}
    for c in CURVES:
        fa, fb = ta["fits"][c], tb["fits"][c]
        keys = ("cores_per_unit", "us_per_msg") + (("rss_mb_per_unit",) if c == "cloud" else ())
        ratios[c] = {k: round(fa[k] / fb[k], 3) for k in keys if fa.get(k) and fb.get(k)}
        by_n = {p["n"]: p["median"] for p in tb["aggregate"][c]}
        ratios[c]["points"] = {
            p["n"]: {k: round(p["median"][k] / by_n[p["n"]][k], 3)
                     for k, *_ in CURVE_ROWS[c]
                     if p["median"].get(k) and by_n.get(p["n"], {}).get(k)}
            for p in ta["aggregate"][c] if p["n"] in by_n}
    return ratios


def ratio_text(curve: str, ratios: dict) -> str:
    unit = CURVES[curve][0]
    names = {"cores_per_unit": f"CPU per added {unit}", "us_per_msg": "CPU per message",
             "rss_mb_per_unit": f"RSS per added {unit}"}
    return ", ".join(f"{names[k]} {v:.2f}" for k, v in ratios.items() if k in names)


def cfmt(v, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "MB":
        return f"{v / 1024:.1f}"
    if unit == "msg/s":
        return f"{v:,.0f}"
    if unit == "µs":
        return f"{v:.1f}"
    if unit == "ms":
        return f"{v:.2f}" if v < 100 else f"{v:.0f}"
    if unit == "cores":
        return f"{v:.3f}"
    return f"{v:g}"


def print_curves(result: dict) -> None:
    targets = result["targets"]
    names = list(targets)
    ratios = result.get("ratios") or {}
    nruns = max((len(t["runs"]) for t in targets.values()), default=0)
    hz = next((r.get("options", {}).get("hz") for t in targets.values() for r in t["runs"]
               if r.get("options")), "?")
    w0 = max(34, *(len(n) + 4 for n in names), len(ratios.get("of", "")) + 10)
    for c, (unit_n, *_) in CURVES.items():
        ns = sorted({p["n"] for t in targets.values() for p in t["aggregate"][c]})
        if not ns:
            continue
        what = ("one server, N browsers" if c == "host"
                else "1 host + N client copies, one browser each")
        spread = (", ±: half the min-max range over the runs, in % of the median"
                  if nruns > 1 else "")
        print(f"\n{c} curve: {what}, {hz} Hz both ways; median of {nruns} run"
              f"{'s' if nruns != 1 else ''}{spread}")
        cw = 15 if nruns > 1 else 10
        head = f"{'N = ' + PLURAL[unit_n]:<{w0}}" + "".join(f"{n:>{cw}}" for n in ns)
        print(head)
        print("-" * len(head))
        for key, text, unit, with_ratio in CURVE_ROWS[c]:
            lines = []
            for name in names:
                by_n = {p["n"]: p for p in targets[name]["aggregate"][c]}
                cells = []
                for n in ns:
                    p = by_n.get(n)
                    v = p["median"].get(key) if p else None
                    cell = cfmt(v, unit)
                    if nruns > 1 and v and p["max"][key] != p["min"][key]:
                        cell += f" ±{(p['max'][key] - p['min'][key]) / 2 / abs(v):.0%}"
                    cells.append(cell)
                lines.append((f"  {name}", cells))
            if all(cell == "-" for _, cells in lines for cell in cells):
                continue
            print(f"{text} [{unit}]")
            if with_ratio and c in ratios:
                pts = ratios[c]["points"]
                lines.append((f"  ratio {ratios['of']}",
                              [f"{pts[n][key]:.2f}" if key in pts.get(n, {}) else "-"
                               for n in ns]))
            for label, cells in lines:
                print(f"{label:<{w0}}" + "".join(f"{x:>{cw}}" for x in cells))
        print(f"\n{c} slopes (least squares over the medians):")
        for name in names:
            f = targets[name]["fits"][c]
            if "cores_per_unit" not in f:
                print(f"  {name}: fewer than two points")
                continue
            runs_rng = f.get("cores_per_unit_runs")
            print(f"  {name}: {f['cores_per_unit'] * 1000:.2f} mcores per added {unit_n}"
                  + (f" (single runs {runs_rng[0] * 1000:.2f}-{runs_rng[1] * 1000:.2f})"
                     if runs_rng and nruns > 1 else "")
                  + f", {f['cores_at_zero']:+.3f} cores at N=0, r² {f['r2']:.3f}; "
                  + (f"{f['us_per_msg']:.1f} µs per message, fixed {f['fixed_cores']:+.3f} "
                     "cores" if "us_per_msg" in f else "")
                  + (f"; RSS {f['rss_mb_per_unit']:.2f} MB per {unit_n}"
                     if "rss_mb_per_unit" in f else ""))
            if f.get("linearity"):
                marg = [f"{r['n']}: {r['marginal_us_per_msg']:.1f}" for r in f["linearity"]
                        if "marginal_us_per_msg" in r]
                dev = [f"{r['n']}: {r['deviation']:+.0%}" if r["deviation"] is not None
                       else f"{r['n']}: -" for r in f["linearity"]]
                print(f"    off the line at N = {', '.join(dev)}")
                if marg:
                    print(f"    marginal µs/msg up to N = {', '.join(marg)}")
                print(f"    {f['statement']}")
        if c in ratios and len(ratios[c]) > 1:
            print(f"  ratio {ratios['of']}: {ratio_text(c, ratios[c])}")


def plot_curves(result: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    targets = result["targets"]
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    fig, axes = plt.subplots(2, 4, figsize=(21, 10))
    hz = next((r.get("options", {}).get("hz") for t in targets.values() for r in t["runs"]
               if r.get("options")), "?")

    def series(ax, curve, key, scale=1.0, style="-", label_fmt=None, thin=True):
        for i, (name, t) in enumerate(targets.items()):
            color = colors[i % len(colors)]
            if thin:
                for r in t["runs"]:
                    pr = curve_points(curve, r)
                    xy = [(n, v[key] * scale) for n, v in sorted(pr.items()) if key in v]
                    if xy:
                        ax.plot(*zip(*xy, strict=True), style, color=color, alpha=0.3, lw=0.8)
            xy = [(p["n"], p["median"][key] * scale) for p in t["aggregate"][curve]
                  if key in p["median"]]
            if xy:
                label = label_fmt(name, t) if label_fmt else name
                ax.plot(*zip(*xy, strict=True), style, color=color, lw=2.2, marker="o", ms=4,
                        label=label)

    def fit_line(ax, curve, fit_key="cores_per_unit", zero_key="cores_at_zero"):
        for i, t in enumerate(targets.values()):
            f = t["fits"][curve]
            if fit_key in f and f.get("points"):
                xs = [0, max(f["points"])]
                ax.plot(xs, [f[zero_key] + f[fit_key] * x for x in xs], "--",
                        color=colors[i % len(colors)], lw=1, alpha=0.8)

    def finish_ax(ax, title, xlabel, ylabel, log_y=False):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_xlim(left=0)
        if log_y:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
            ax.grid(True, which="both", alpha=0.3)
        else:
            ax.set_ylim(bottom=0)
            ax.grid(True, alpha=0.4)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize=8)
        else:
            ax.text(0.5, 0.5, "not measured", ha="center", transform=ax.transAxes)

    xb, xc = "browsers on one server", "client copies (1 browser each) + 1 host"
    # -- host curve
    ax = axes[0, 0]
    series(ax, "host", "server_cpu_cores", label_fmt=lambda n, t: (
        f"{n}: {t['fits']['host'].get('cores_per_unit', 0) * 1000:.2f} mcores/browser"))
    series(ax, "host", "harness_cpu_cores", style=":", thin=False,
           label_fmt=lambda n, t: f"harness, runs of {n}")
    fit_line(ax, "host")
    finish_ax(ax, f"Server CPU, N browsers at {hz} Hz each way\n"
              "dashed: least-squares line; dotted: the harness (parent + all browsers)",
              xb, "CPU [cores]")
    ax = axes[0, 1]
    series(ax, "host", "cpu_us_per_msg", label_fmt=lambda n, t: (
        f"{n}: {t['fits']['host'].get('us_per_msg', 0):.1f} µs/msg marginal"))
    for i, t in enumerate(targets.values()):
        rows = t["fits"]["host"].get("linearity") or []
        if rows:
            ax.plot([r["n"] for r in rows], [r["fitted_us_per_msg"] for r in rows], "--",
                    color=colors[i % len(colors)], lw=1, alpha=0.8)
    finish_ax(ax, "Server CPU per message handled (b2p arrivals + p2b deliveries)\n"
              "dashed: the line's (fixed + per message) / messages", xb,
              "CPU per message [µs], log scale", log_y=True)
    for ax, key, text in ((axes[0, 2], "b2p_p99_ms", "browser → parent"),
                          (axes[0, 3], "p2b_p99_ms", "parent → browser (every browser's copy)")):
        series(ax, "host", key)
        finish_ax(ax, f"One-way latency p99, {text}", xb, "p99 [ms]")
    # -- cloud curve
    ax = axes[1, 0]
    series(ax, "cloud", "total_cpu_cores", label_fmt=lambda n, t: (
        f"{n}: {t['fits']['cloud'].get('cores_per_unit', 0) * 1000:.2f} mcores/copy"))
    series(ax, "cloud", "host_cpu_cores", style=":", thin=False,
           label_fmt=lambda n, t: f"host alone, {n}")
    fit_line(ax, "cloud")
    finish_ax(ax, f"CPU of all servers (host + copies), {hz} Hz each way per copy\n"
              "dashed: least-squares line; dotted: the host's share", xc, "CPU [cores]")
    ax = axes[1, 1]
    series(ax, "cloud", "rss_total_kb", scale=1 / 1024, label_fmt=lambda n, t: (
        f"{n}: {t['fits']['cloud'].get('rss_mb_per_unit', 0):.1f} MB/copy"))
    fit_line(ax, "cloud", "rss_mb_per_unit", "rss_mb_at_zero")
    finish_ax(ax, "RSS of all servers (sum of VmRSS)", xc, "RSS [MB]")
    ax = axes[1, 2]
    series(ax, "cloud", "p2b_p99_ms", label_fmt=lambda n, t: f"{n}: parent → browser")
    series(ax, "cloud", "b2p_p99_ms", style="--", label_fmt=lambda n, t: f"{n}: browser → parent")
    finish_ax(ax, "Relay one-way latency p99\ncopy's parent → copy → host → browser, and back",
              xc, "p99 [ms]")
    # -- slopes and linearity, as text
    ax = axes[1, 3]
    ax.axis("off")
    lines = []
    ratios = result.get("ratios") or {}
    for c, (unit_n, _, _) in CURVES.items():
        lines.append(f"{c} curve (per added {unit_n})")
        for name, t in targets.items():
            f = t["fits"][c]
            if "cores_per_unit" not in f:
                continue
            lines.append(f"  {name}: {f['cores_per_unit'] * 1000:.2f} mcores, "
                         f"{f.get('us_per_msg', float('nan')):.1f} µs/msg"
                         + (f", {f['rss_mb_per_unit']:.1f} MB" if "rss_mb_per_unit" in f
                            else ""))
            lines.append(f"    {f.get('statement', '')}")
        if c in ratios and len(ratios[c]) > 1:
            lines.append(f"  ratio {ratios['of']}: {ratio_text(c, ratios[c])}")
        lost = {n: sum(p["median"].get("lost", 0) for p in t["aggregate"][c])
                for n, t in targets.items()}
        extra = ""
        if c == "cloud":
            mis = {n: sum(p["median"].get("misrouted", 0) for p in t["aggregate"][c])
                   for n, t in targets.items()}
            extra = "; misrouted " + ", ".join(f"{n} {v:g}" for n, v in mis.items())
        lines.append("  lost (sum of medians) " + ", ".join(f"{n} {v:g}" for n, v in lost.items())
                     + extra)
        for n, t in targets.items():
            last = t["aggregate"][c][-1] if t["aggregate"][c] else None
            if last and "harness_cpu_cores" in last["median"]:
                m = last["median"]
                lines.append(f"  at N={last['n']} ({n}): harness {m['harness_cpu_cores']:.2f} "
                             f"cores, others {m.get('others_cpu_cores', 0):.2f}, "
                             f"{m.get('achieved_hz', 0):.1f} Hz achieved")
        lines.append("")
    wrapped = [w for line in lines
               for w in (textwrap.wrap(line, 62, subsequent_indent="      ") or [""])]
    ax.text(0, 1, "\n".join(wrapped), va="top", ha="left", family="monospace", fontsize=8,
            transform=ax.transAxes)

    save_figure(fig, result["meta"], targets, "entryhw cost curves",
                "; every point on fresh server processes", 0.95, png)


# ---------------------------------------------------------------- main


def run_series(args: argparse.Namespace, commands: dict[str, str], harness: Path,
               harness_args: list[str], timeout: float, tmp: Path, stamp: str,
               suffix: str) -> tuple[dict[str, list[dict]], list[str]]:
    """args.runs rounds of every command in turn (A B A B ...)."""
    runs: dict[str, list[dict]] = {n: [] for n in commands}
    order = []
    for i in range(args.runs):
        for name, c in commands.items():
            tag = f"{name}{suffix}#{i + 1}"
            order.append(tag)
            res = run_once(args.node, c, name, harness_args, tmp, slug(tag), timeout, harness)
            runs[name].append(res)
            logs = tmp / f"{slug(tag)}-logs"
            if res.get("errors") and logs.is_dir():
                # Keep the server logs of a failed run next to the result.
                keep = args.out_dir / f"{stamp}-logs" / slug(tag)
                shutil.copytree(logs, keep, dirs_exist_ok=True)
                res["kept_logs"] = str(keep)
    return runs, order


def target_info(command: str, runs: list[dict]) -> dict:
    meta = first_meta(runs)
    rt = meta.get("runtime") or {}
    return {
        "command": command,
        "program": meta.get("program"),
        "server_version": meta.get("server_version"),
        "runtime": rt.get("version"),
        "runtime_path": rt.get("interpreter"),
    }


def result_meta(started: dt.datetime, node_v: str, targets: dict, args: argparse.Namespace,
                order: list[str], t0: float) -> dict:
    any_meta = next((t["runs"][0]["meta"] for t in targets.values()
                     if t["runs"] and t["runs"][0].get("meta")), {})
    host = any_meta.get("host", {})
    return {
        "date": started.isoformat(timespec="seconds"),
        "cpu_model": host.get("cpu_model"),
        "cpus": host.get("cpus"),
        "kernel": host.get("kernel"),
        "node": node_v,
        "socket_io_client": any_meta.get("socket_io_client"),
        "python_run_py": sys.version.split()[0],
        "runs_per_target": args.runs,
        "order": order,
        "wall_s": round(time.monotonic() - t0, 1),
    }


def errors_of(targets: dict) -> list[str]:
    return [f"{n}: {e}" for n, t in targets.items() for r in t["runs"] for e in r.get("errors", [])]


def main(argv: list[str]) -> int:
    args, harness_args = parse_args(argv)
    if not args.no_plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            die("matplotlib is needed for the PNG: `tox -e bench` installs it "
                "(or pip install matplotlib, or pass --no-plot)")
    if args.replot:
        result = json.loads(args.replot.read_text())
        if result.get("kind") == "curves":
            result["ratios"] = summarize_curves(result["targets"])
            print_curves(result)
            draw = plot_curves
        else:
            print_table(result["targets"])
            draw = plot
        if not args.no_plot:
            draw(result, args.replot.with_suffix(".png"))
            print(f"wrote {shown(args.replot.with_suffix('.png'))}")
        return 0
    if not (HERE / "node_modules" / "socket.io-client").is_dir():
        die("bench/node_modules is missing: run `npm ci --prefix bench` first")
    node_v = subprocess.run([args.node, "--version"], capture_output=True, text=True, check=False)
    if node_v.returncode != 0:
        die(f"cannot run node ({args.node})")

    cmd = args.cmd or default_cmd()
    commands = {}
    label = args.label
    if not label:
        prog = shlex.split(cmd)[0]
        v = subprocess.run([prog, "--version"], capture_output=True, text=True, timeout=20,
                           check=False) if Path(prog).name == "entryhw-server" else None
        label = slug(v.stdout.strip().replace(" ", "-")) if v and v.returncode == 0 else slug(
            Path(prog).name)
    commands[label] = cmd
    if args.baseline:
        blabel = args.baseline_label or slug(Path(shlex.split(args.baseline)[-1]).stem)
        if blabel in commands:
            blabel += "-baseline"
        commands[blabel] = args.baseline

    started = dt.datetime.now(dt.UTC)
    stamp = started.astimezone().strftime("%Y-%m-%d-%H%M%S")
    file_label = slug("-vs-".join(commands))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    failed = []
    with tempfile.TemporaryDirectory(prefix="entryhw-bench-") as tmp:
        if not args.no_table:
            t0 = time.monotonic()
            runs, order = run_series(args, commands, HARNESS, harness_args, args.timeout,
                                     Path(tmp), stamp, "")
            targets = {name: {**target_info(c, runs[name]), "aggregate": aggregate(runs[name]),
                              "runs": runs[name]} for name, c in commands.items()}
            meta = result_meta(started, node_v.stdout.strip(), targets, args, order, t0)
            meta["harness_args"] = harness_args
            result = {"format": FORMAT, "tool": "bench/run.py + bench/entryhw_bench.mjs",
                      "meta": meta, "targets": targets}
            out_json = args.out_dir / f"{stamp}-{file_label}.json"
            out_json.write_text(json.dumps(result, indent=1) + "\n")
            print()
            print_table(targets)
            print(f"\nwrote {shown(out_json)}")
            if not args.no_plot:
                plot(result, out_json.with_suffix(".png"))
                print(f"wrote {shown(out_json.with_suffix('.png'))}")
            failed += errors_of(targets)
        if args.curves:
            t0 = time.monotonic()
            runs, order = run_series(args, commands, CURVE_HARNESS, args.curve_argv,
                                     args.curve_timeout, Path(tmp), stamp, "-curves")
            targets = {name: {**target_info(c, runs[name]), "runs": runs[name]}
                       for name, c in commands.items()}
            ratios = summarize_curves(targets)
            meta = result_meta(started, node_v.stdout.strip(), targets, args, order, t0)
            meta["curve_args"] = args.curve_argv
            result = {"format": FORMAT, "kind": "curves", "tool": "bench/run.py + bench/curve.mjs",
                      "meta": meta, "targets": targets, "ratios": ratios}
            out_json = args.out_dir / f"{stamp}-{file_label}-curves.json"
            out_json.write_text(json.dumps(result, indent=1) + "\n")
            print_curves(result)
            print(f"\nwrote {shown(out_json)}")
            if not args.no_plot:
                plot_curves(result, out_json.with_suffix(".png"))
                print(f"wrote {shown(out_json.with_suffix('.png'))}")
            failed += errors_of(targets)
    if failed:
        print("errors:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
