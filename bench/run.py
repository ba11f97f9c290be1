#!/usr/bin/env python3
"""Run the entryhw benchmark N times and keep the medians.

    python bench/run.py --runs 3
    python bench/run.py --runs 3 --baseline "node tests/js/original_standin.js"
    python bench/run.py --runs 1 -- --steady-s 5 --flood 10000   # after --: harness options

Each run is one `node bench/entryhw_bench.mjs` (see its --help). With --baseline the two
commands alternate (target, baseline, target, baseline, ...) so that both see the same
machine over time. The result, bench/results/<date>-<label>.json, holds every run's full
output, the per-figure medians (and min/max) and the medians of the latency distributions;
bench/results/<date>-<label>.png draws them (matplotlib, installed by `tox -e bench`).
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
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HARNESS = HERE / "entryhw_bench.mjs"
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
    ("steady_p2b_p50_ms", "steady p2b p50", "ms", False),
    ("steady_p2b_p99_ms", "steady p2b p99", "ms", False),
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
    args = p.parse_args(argv)
    if not 1 <= args.runs <= 50:
        p.error("--runs is 1..50")
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
             name: str, timeout: float) -> dict:
    out = workdir / f"{name}.json"
    argv = [node, str(HARNESS), "--cmd", cmd, "--label", label, "--json-out", str(out),
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
        res = {"summary": {}, "phases": {}, "meta": {},
               "errors": [f"no result from the harness ({exc})"]}
    if code is None:
        res.setdefault("errors", []).append(f"stopped after {timeout:.0f} s")
    res["harness_exit_code"] = code
    res["harness_wall_s"] = round(wall, 2)
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
                          ("paced_rtt_p50_ms", "flood_b2p_msgs_s", "flood_p2b_msgs_s",
                           "steady_b2p_p50_ms", "steady_p2b_p50_ms", "steady_server_cpu_frac",
                           "rss_idle_kb")
                          if a.get(k) and b.get(k)))


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

    meta = result["meta"]
    vers = "; ".join(
        f"{n}: {t['server_version'] or t['command']}"
        + (f" on {t['runtime']}" if t.get("runtime") else "")
        for n, t in targets.items())
    runs = ", ".join(f"{len(t['runs'])} run{'s' if len(t['runs']) != 1 else ''} of {n}"
                     for n, t in targets.items())
    fig.suptitle(
        f"entryhw bench, {meta['date'][:16].replace('T', ' ')} UTC: {meta['cpu_model']} "
        f"x{meta['cpus']}, Node {meta['node']}, socket.io-client {meta['socket_io_client']}\n"
        f"{vers}\nmedians of {runs}" + (" (alternating)" if len(targets) > 1 else "")
        + "; thin lines: single runs",
        fontsize=10.5)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(png, dpi=100)
    plt.close(fig)


def first_meta_opt(targets: dict, key: str):
    for t in targets.values():
        for r in t["runs"]:
            v = r.get("options", {}).get(key)
            if v is not None:
                return f"{v:,}"
    return "?"


def shown(p: Path) -> Path:
    return p.relative_to(Path.cwd()) if p.is_relative_to(Path.cwd()) else p


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
        print_table(result["targets"])
        if not args.no_plot:
            plot(result, args.replot.with_suffix(".png"))
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
    out_json = args.out_dir / f"{stamp}-{file_label}.json"
    out_png = out_json.with_suffix(".png")

    runs: dict[str, list[dict]] = {n: [] for n in commands}
    order = []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="entryhw-bench-") as tmp:
        for i in range(args.runs):
            for name, c in commands.items():
                tag = f"{name}#{i + 1}"
                order.append(tag)
                res = run_once(args.node, c, name, harness_args, Path(tmp), slug(tag),
                               args.timeout)
                runs[name].append(res)
                logs = Path(tmp) / f"{slug(tag)}-logs"
                if res.get("errors") and logs.is_dir():
                    # Keep the server logs of a failed run next to the result.
                    keep = args.out_dir / f"{stamp}-logs" / slug(tag)
                    shutil.copytree(logs, keep, dirs_exist_ok=True)
                    res["kept_logs"] = str(keep)

    targets = {}
    for name, c in commands.items():
        meta = first_meta(runs[name])
        rt = meta.get("runtime") or {}
        targets[name] = {
            "command": c,
            "program": meta.get("program"),
            "server_version": meta.get("server_version"),
            "runtime": rt.get("version"),
            "runtime_path": rt.get("interpreter"),
            "aggregate": aggregate(runs[name]),
            "runs": runs[name],
        }
    any_meta = next((t["runs"][0]["meta"] for t in targets.values()
                     if t["runs"] and t["runs"][0].get("meta")), {})
    host = any_meta.get("host", {})
    result = {
        "format": FORMAT,
        "tool": "bench/run.py + bench/entryhw_bench.mjs",
        "meta": {
            "date": started.isoformat(timespec="seconds"),
            "cpu_model": host.get("cpu_model"),
            "cpus": host.get("cpus"),
            "kernel": host.get("kernel"),
            "node": node_v.stdout.strip(),
            "socket_io_client": any_meta.get("socket_io_client"),
            "python_run_py": sys.version.split()[0],
            "runs_per_target": args.runs,
            "order": order,
            "harness_args": harness_args,
            "wall_s": round(time.monotonic() - t0, 1),
        },
        "targets": targets,
    }
    out_json.write_text(json.dumps(result, indent=1) + "\n")
    print()
    print_table(targets)
    print(f"\nwrote {shown(out_json)}")
    if not args.no_plot:
        plot(result, out_png)
        print(f"wrote {shown(out_png)}")
    failed = [f"{n}: {e}" for n, t in targets.items()
              for r in t["runs"] for e in r.get("errors", [])]
    if failed:
        print("errors:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
