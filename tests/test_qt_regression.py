"""Regression guard: PySide6 6.12.0 on CPython 3.11 aborts after a few hundred Qt→Python calls.

The interpreter dies with "Fatal Python error: bool_dealloc/none_dealloc" (exit 134)
because that wheel mishandles the reference counts of None/True/False, which are only
immortal from Python 3.12 on. A run monitor makes such calls for every signal, timer
and qasync callback, so it would crash within minutes. pyproject pins the version;
this test runs thousands of callbacks in a subprocess so a bad wheel fails CI instead
of reaching users.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib import metadata

SCRIPT = textwrap.dedent(
    """
    import sys
    from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal

    class Emitter(QObject):
        ping = Signal(int)
        flag = Signal(bool)

    app = QCoreApplication(sys.argv)
    seen = {"ping": 0, "flag": 0, "timer": 0}

    def on_ping(value):
        seen["ping"] += 1
        return None

    def on_flag(value):
        seen["flag"] += 1 if value in (True, False) else 0

    emitter = Emitter()
    emitter.ping.connect(on_ping)
    emitter.flag.connect(on_flag)
    for i in range(5000):
        emitter.ping.emit(i)
        emitter.flag.emit(i % 2 == 0)

    def tick():
        seen["timer"] += 1
        if seen["timer"] == 2000:
            app.quit()

    for _ in range(2000):
        QTimer.singleShot(0, tick)
    app.exec()
    print(seen["ping"], seen["flag"], seen["timer"])
    """
)


def test_many_qt_callbacks_do_not_abort_the_interpreter() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    assert result.stdout.split() == ["5000", "5000", "2000"]


def test_the_known_bad_combination_is_not_installed() -> None:
    version = metadata.version("PySide6-Essentials")
    assert not (sys.version_info < (3, 12) and version == "6.12.0"), (
        "PySide6-Essentials 6.12.0 aborts CPython 3.11; see pyproject.toml"
    )
