#!/usr/bin/env python3
"""Build RunMonitor as a one-folder PyInstaller bundle, then check that the bundle works.

    python packaging/build_bundle.py              # build dist/runmonitor/, then check it
    python packaging/build_bundle.py --check-only # check an existing dist/runmonitor/

Run it with the Python of the environment RunMonitor is installed in (``.venv/bin/python``):
PyInstaller freezes what that environment has, and is pip-installed there when missing.

The checks run the built program, never the source:

1. ``runmonitor services`` lists every service of the source tree (found by pkgutil inside the
   bundle);
2. ``runmonitor --demo --screenshot FILE --after 3`` opens the window on the embedded simulator
   and saves a picture with real content (under the current display, or offscreen without one);
3. keyring finds a working backend: on a private D-Bus session with a throwaway unlocked
   gnome-keyring (when ``dbus-run-session`` and ``gnome-keyring-daemon`` are installed), one
   ``runmonitor profiles add`` stores a secret and a second process reads it back; without them
   only the bundled keyring metadata (its backend entry points) is checked.

Prints the build time and the bundle's size; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "packaging" / "runmonitor.spec"
PYINSTALLER_REQUIREMENT = "pyinstaller>=6.10,<7"
EXE_SUFFIX = ".exe" if os.name == "nt" else ""


def ensure_pyinstaller() -> None:
    probe = subprocess.run([sys.executable, "-c", "import PyInstaller"], capture_output=True)
    if probe.returncode == 0:
        return
    print(f"PyInstaller is not installed in {sys.prefix}: installing {PYINSTALLER_REQUIREMENT}", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", PYINSTALLER_REQUIREMENT], check=True)


def build(dist: Path, work: Path) -> float:
    """Run PyInstaller on the spec; returns the seconds it took."""
    ensure_pyinstaller()
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--clean",
        "--log-level",
        "WARN",
        "--distpath",
        str(dist),
        "--workpath",
        str(work),
        str(SPEC),
    ]
    print("building:", " ".join(command), flush=True)
    started = time.monotonic()
    subprocess.run(command, check=True, cwd=ROOT)
    return time.monotonic() - started


def folder_size(folder: Path) -> tuple[int, int]:
    """(bytes, files) under ``folder``, symbolic links not followed."""
    total = count = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
            count += 1
    return total, count


def _run(command: list[str], env: Mapping[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=dict(env), capture_output=True, text=True, timeout=timeout)


def _base_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["RUNMONITOR_HOME"] = str(home)  # nothing touches the user's settings, history or keyring
    env.pop("PYTHONPATH", None)  # the bundle must stand on its own
    if sys.platform.startswith("linux") and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    return env


def source_services() -> list[str]:
    """The service keys of the source tree the bundle is built from (its registry)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from runmonitor.services import keys

    return keys()


def check_services(program: Path, env: Mapping[str, str]) -> list[str]:
    result = _run([str(program), "services"], env, timeout=120)
    if result.returncode != 0:
        return [f"`runmonitor services` exited {result.returncode}: {result.stderr.strip()[-800:]}"]
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    services = source_services()
    missing = [key for key in services if key not in listed]
    if missing:
        return [f"`runmonitor services` does not list {', '.join(missing)}:\n{result.stdout}"]
    print(f"ok: `runmonitor services` lists {', '.join(services)}")
    return []


def png_has_content(path: Path) -> str | None:
    """None when ``path`` is a PNG with more than a few colours; else what is wrong with it."""
    if not path.is_file() or path.stat().st_size == 0:
        return f"{path} was not written"
    if path.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
        return f"{path} is not a PNG"
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QImage

    image = QImage(str(path))
    if image.isNull() or image.width() < 200 or image.height() < 150:
        return f"{path} is not a window-sized picture ({image.width()}x{image.height()})"
    colours = set()
    for x in range(0, image.width(), max(1, image.width() // 50)):
        for y in range(0, image.height(), max(1, image.height() // 50)):
            colours.add(image.pixel(x, y))
    if len(colours) < 16:
        return f"{path} has {len(colours)} colours: the window did not paint"
    return None


def check_screenshot(program: Path, env: Mapping[str, str], out: Path) -> list[str]:
    out.unlink(missing_ok=True)  # a picture from an earlier run proves nothing
    command = [str(program), "--demo", "--screenshot", str(out), "--after", "3"]
    try:
        result = _run(command, env, timeout=180)
    except subprocess.TimeoutExpired:
        return ["the demo window did not save its screenshot and quit within 180 s"]
    if result.returncode != 0:
        return [f"the demo screenshot exited {result.returncode}: {result.stderr.strip()[-1500:]}"]
    problem = png_has_content(out)
    if problem:
        return [problem]
    print(f"ok: the demo window started and saved {out} ({out.stat().st_size} bytes)")
    return []


def check_keyring_metadata(bundle: Path) -> list[str]:
    found = list(bundle.rglob("keyring-*.dist-info/entry_points.txt"))
    if not found or "keyring.backends" not in found[0].read_text(encoding="utf-8"):
        return ["keyring's metadata (backend entry points) is not in the bundle"]
    print(f"ok: keyring's backend entry points are bundled ({found[0].relative_to(bundle)})")
    return []


KEYRING_SCRIPT = """
set -e
printf '%s' "$KEYRING_PASSWORD" | env -u XDG_RUNTIME_DIR HOME="$KEYRING_HOME" \
  XDG_DATA_HOME="$KEYRING_HOME/data" XDG_CACHE_HOME="$KEYRING_HOME/cache" \
  gnome-keyring-daemon --unlock --components=secrets >/dev/null
"$PROGRAM" profiles add connhex --name bundle-check --conn base_url=http://127.0.0.1:9 --no-prompt
env -u RUNMONITOR_SECRET_TOKEN "$PROGRAM" profiles list --json
"""


def check_keyring(program: Path, env: Mapping[str, str], scratch: Path) -> list[str]:
    """A secret stored by one run of the bundle is read back by another, through Secret Service."""
    if not (shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon")):
        print("skipped: the live keyring check (needs dbus-run-session and gnome-keyring-daemon)")
        return []
    keyring_home = scratch / "keyring-home"
    keyring_home.mkdir()
    run_env = dict(env)
    run_env.update(
        PROGRAM=str(program),
        KEYRING_HOME=str(keyring_home),
        KEYRING_PASSWORD=secrets.token_hex(8),
        RUNMONITOR_SECRET_TOKEN=secrets.token_hex(16),
    )
    run_env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    try:
        result = _run(["dbus-run-session", "--", "sh", "-c", KEYRING_SCRIPT], run_env, timeout=120)
    except subprocess.TimeoutExpired:
        return ["the keyring check did not finish within 120 s"]
    if result.returncode != 0 or '"token": true' not in result.stdout:
        detail = (result.stdout + result.stderr).strip()[-1500:]
        return [f"the bundle did not keep a secret in the Secret Service keyring:\n{detail}"]
    print("ok: a secret stored by the bundle was read back from Secret Service by a second run")
    return []


def check_bundle(bundle: Path, screenshot: Path | None = None) -> list[str]:
    program = bundle / f"runmonitor{EXE_SUFFIX}"
    if not program.is_file():
        return [f"{program} is missing"]
    problems = []
    with tempfile.TemporaryDirectory(prefix="runmonitor-bundle-check-") as tmp:
        scratch = Path(tmp)
        env = _base_env(scratch / "home")
        problems += check_services(program, env)
        problems += check_screenshot(program, env, screenshot or scratch / "demo.png")
        problems += check_keyring_metadata(bundle)
        problems += check_keyring(program, _base_env(scratch / "home-keyring"), scratch)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder (default dist/)")
    parser.add_argument(
        "--work", type=Path, default=ROOT / "build" / "pyinstaller", help="PyInstaller's work folder"
    )
    parser.add_argument(
        "--screenshot",
        type=Path,
        metavar="PNG",
        help="keep the demo window's picture here (default: a temp file)",
    )
    parser.add_argument("--check-only", action="store_true", help="check an existing bundle, do not build")
    args = parser.parse_args(argv)
    bundle = args.dist / "runmonitor"
    if not args.check_only:
        seconds = build(args.dist, args.work)
        print(f"built {bundle} in {seconds:.0f} s")
    size, files = folder_size(bundle)
    print(f"bundle size: {size / 2**20:.1f} MiB in {files} files")
    problems = check_bundle(bundle, args.screenshot)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    print("bundle check: " + ("failed" if problems else "passed"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
