"""Benchmark: the fault storm at full size, and a soak, with the window open (offscreen).

Storm: the whole app (MainWindow on the qasync loop, Qt offscreen) creates ``--runs`` runs over
the five simulated services while the simulator misbehaves in every way in turn and then all
at once (``runmonitor.drills.storm``), follows them to the end, looks up creates whose
answer was lost, and compares everything with the simulator. Printed: faults injected by
kind, runs followed, lost runs (must be 0), duplicate creates (must be 0), runs whose final
status is wrong (must be 0), event-loop lag p50/p99/max, RSS at start / after the storm / end.

Soak (``--soak SECONDS``): about 60 runs kept going (a new one for each that ends) under a
light mix of faults, sampling RSS and open files/sockets every few seconds; printed as a
series with the growth between the first and the last third.

The simulator runs in this process (its faults are driven from here), on 127.0.0.1 only;
everything is bounded and the temporary home is removed.

    .venv/bin/python benchmarks/bench_storm.py                  # 1,000 runs
    .venv/bin/python benchmarks/bench_storm.py --runs 200 --soak 120
    .venv/bin/python benchmarks/bench_storm.py --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.*=false")  # offscreen's "propagateSizeHints" notes

from _common import percentile

from runmonitor.drills.storm import (
    Storm,
    open_storm_context,
    process_usage,
    soak,
    storm_phases,
    storm_through,
)
from runmonitor.simulator import Simulator


async def measure(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    from runmonitor.ui.main_window import MainWindow

    figures: dict[str, Any] = {}
    sim = Simulator(seed=args.seed, time_scale=1.0, duration_scale=args.duration_scale).start()
    context = await open_storm_context(sim, home / "storm")
    window = MainWindow(context, tray=False)
    try:
        await window.load()
        window.show()
        storm = Storm(
            sim,
            storm_phases(timeout_seconds=2.0),
            rate=args.rate,
            phase_seconds=args.phase_seconds,
            outage_seconds=3.0,
        )
        print(
            f"storm: {args.runs} runs, {len(storm.phases)} phases of {args.phase_seconds} s…", file=sys.stderr
        )
        report = await storm_through(
            context,
            storm,
            runs=args.runs,
            settle_timeout=args.settle_timeout,
            on_record=window.run_changed,
            rss=lambda: process_usage()[0],
        )
        figures["storm"] = {
            "runs_requested": args.runs,
            "runs_followed": report.runs_followed,
            "creates_attempted": report.creates_attempted,
            "creates_refused_before_processing": report.creates_refused,
            "creates_queued_for_quota": report.creates_queued,
            "creates_unconfirmed": report.creates_unconfirmed,
            "unconfirmed_adopted": report.adopted,
            "unconfirmed_discarded": report.discarded,
            "unconfirmed_left_to_the_person": report.ambiguous,
            "lost": len(report.lost),
            "duplicates": report.duplicates,
            "wrong_final_status": len(report.mismatched),
            "unfinished": len(report.unfinished),
            "faults_injected": report.faults,
            "lag_ms": {
                "p50": percentile(report.lag_ms, 50),
                "p99": percentile(report.lag_ms, 99),
                "max": max(report.lag_ms, default=float("nan")),
            },
            "rss_mib": [round(x, 1) for x in report.rss_mib],
            "seconds": round(report.seconds, 1),
            "window_rows": window.all_runs.model.rowCount(),
            "examples": {"lost": report.lost[:5], "wrong": report.mismatched[:5]},
        }
    finally:
        window.ticker.stop()
        window.status_soon.stop()
        if window.notifications is not None:
            await window.notifications.aclose()
        await context.close()
        window.deleteLater()
        sim.stop()
    if args.soak:
        print(f"soak: {args.soak:.0f} s…", file=sys.stderr)
        with Simulator(seed=args.seed + 1, time_scale=40.0) as soak_sim:
            soak_context = await open_storm_context(soak_sim, home / "soak")
            try:
                samples = await soak(soak_context, soak_sim, seconds=args.soak, active=60, sample_every=5.0)
            finally:
                await soak_context.close()
        settled = samples[len(samples) // 4 :] or samples
        third = max(1, len(settled) // 3)
        early, late = settled[:third], settled[-third:]
        figures["soak"] = {
            "seconds": args.soak,
            "runs_finished": samples[-1].finished if samples else 0,
            "series": [[round(s.seconds), round(s.rss_mib, 1), s.open_files, s.sockets] for s in samples],
            "rss_growth_mib": round(
                statistics.median(s.rss_mib for s in late) - statistics.median(s.rss_mib for s in early), 1
            ),
            "open_files_growth": max(s.open_files for s in late) - max(s.open_files for s in early),
            "sockets_growth": max(s.sockets for s in late) - max(s.sockets for s in early),
        }
    return figures


def render(figures: dict[str, Any]) -> str:
    storm = figures["storm"]
    lines = [
        "Fault storm (window offscreen)",
        f"  runs requested / followed          {storm['runs_requested']:,} / {storm['runs_followed']:,}",
        f"  creates: refused before processing {storm['creates_refused_before_processing']}, "
        f"queued for quota {storm['creates_queued_for_quota']}, unconfirmed {storm['creates_unconfirmed']} "
        f"(adopted {storm['unconfirmed_adopted']}, discarded {storm['unconfirmed_discarded']}, "
        f"left to the person {storm['unconfirmed_left_to_the_person']})",
        f"  lost runs                          {storm['lost']}  (must be 0) {storm['examples']['lost']}",
        f"  duplicate creates                  {storm['duplicates']}  (must be 0)",
        f"  wrong final status / unfinished    {storm['wrong_final_status']} / {storm['unfinished']}",
        f"  event-loop lag p50 / p99 / max     {storm['lag_ms']['p50']:.1f} / {storm['lag_ms']['p99']:.1f} / "
        f"{storm['lag_ms']['max']:.1f} ms",
        f"  RSS start / after storm / end      {' / '.join(f'{x:.0f}' for x in storm['rss_mib'])} MiB",
        f"  took                               {storm['seconds']} s",
        "  faults injected:",
    ]
    lines += [f"    {label:<34} {count:>6,}" for label, count in storm["faults_injected"].items()]
    soak_figures = figures.get("soak")
    if soak_figures:
        lines += [
            "",
            f"Soak ({soak_figures['seconds']:.0f} s, {soak_figures['runs_finished']} runs finished)",
            "  seconds   RSS MiB   open files   sockets",
        ]
        lines += [
            f"  {t:>7}   {rss:>7}   {files:>10}   {socks:>7}"
            for t, rss, files, socks in soak_figures["series"]
        ]
        lines.append(
            f"  growth, first → last third: RSS {soak_figures['rss_growth_mib']:+} MiB, "
            f"open files {soak_figures['open_files_growth']:+}, sockets {soak_figures['sockets_growth']:+}"
        )
    ok = storm["lost"] == 0 and storm["duplicates"] == 0 and storm["wrong_final_status"] == 0
    lines += ["", f"Result: {'every run accounted for' if ok else 'PROBLEMS (see above)'}"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--runs", type=int, default=1000, help="runs created during the storm (default 1,000)"
    )
    parser.add_argument(
        "--phase-seconds", type=float, default=3.0, help="seconds per storm phase (default 3)"
    )
    parser.add_argument(
        "--rate", type=float, default=0.2, help="share of requests that misbehave (default 0.2)"
    )
    parser.add_argument(
        "--duration-scale", type=float, default=0.1, help="run lengths relative to the usual (default 0.1)"
    )
    parser.add_argument(
        "--settle-timeout", type=float, default=600.0, help="longest wait after the storm (s)"
    )
    parser.add_argument("--soak", type=float, default=0.0, help="also soak for this many seconds (0: no)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    if not 1 <= args.runs <= 5000 or not 0 < args.rate <= 1 or args.soak < 0 or args.soak > 6 * 3600:
        parser.error("--runs 1..5000, --rate in (0, 1], --soak up to 6 hours")

    import qasync
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)  # the window closes before the soak: keep the loop
    home = Path(tempfile.mkdtemp(prefix="runmonitor-storm-"))
    try:
        with asyncio.Runner(loop_factory=qasync.QEventLoop) as runner:
            figures = runner.run(measure(args, home))
    except KeyboardInterrupt:
        return 130
    finally:
        shutil.rmtree(home, ignore_errors=True)
        del app
    print(json.dumps(figures, default=str) if args.json else render(figures))
    storm = figures["storm"]
    return 0 if storm["lost"] == 0 and storm["duplicates"] == 0 and storm["wrong_final_status"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
