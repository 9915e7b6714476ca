"""``runmonitor`` without a command: open the window (``--demo``: on the embedded simulator;
``--screenshot``: save a picture and quit), or follow the demo in the terminal where no window
can open. Qt is imported only here, only when the window really opens."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from runmonitor.cli.output import EXIT_BAD_INPUT, err


def display_available() -> bool:
    """Whether Qt can open a window here (Windows and macOS always can)."""
    if sys.platform in ("win32", "darwin"):
        return True
    if os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def add_options(parser: argparse.ArgumentParser) -> None:
    """The window's options, on the top-level parser (they apply when no command is given)."""
    parser.add_argument(
        "--demo",
        action="store_true",
        help="open the window on the embedded simulator, with a demo profile for every service",
    )
    parser.add_argument(
        "--console",
        action="store_true",
        help="with --demo: no window; follow one run per service in the terminal",
    )
    parser.add_argument("--screenshot", metavar="FILE", help="save a PNG of the window, then quit")
    parser.add_argument(
        "--after", type=float, default=8.0, metavar="SECONDS", help="with --screenshot: wait this long first"
    )
    parser.add_argument(
        "--tab", metavar="SERVICE", help="open on this tab (a service key, or 'all'), e.g. for screenshots"
    )


def open_window(args: argparse.Namespace) -> int:
    if args.demo and (args.console or not display_available()):
        from runmonitor.cli.demo import run_console_demo

        if not args.console:
            err("no display found: following the demo runs in the terminal instead")
        return asyncio.run(run_console_demo())
    if not display_available():
        err(
            "no display found for the window (set DISPLAY, or QT_QPA_PLATFORM=offscreen for "
            "screenshots); the commands work without one: runmonitor --help"
        )
        return EXIT_BAD_INPUT
    from runmonitor.ui.app import run_gui

    screenshot = Path(args.screenshot) if args.screenshot else None
    return run_gui(demo=args.demo, screenshot=screenshot, after=args.after, tab=args.tab)
