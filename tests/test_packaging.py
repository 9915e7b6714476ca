"""Packaging: entry points, the Linux desktop entry and metainfo, the icon set and its compiled
Qt resources, the per-user install script, and (opt-in, slow) the PyInstaller bundle.

The validators (desktop-file-validate, appstreamcli) are Debian's desktop-file-utils and
appstream packages; those tests skip with a reason where they are not installed.
"""

from __future__ import annotations

import configparser
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from PySide6.QtCore import QByteArray, QFile, QIODevice, QRectF
from PySide6.QtGui import QColor, QIcon, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

from runmonitor import APP_ID, APP_NAME
from runmonitor.app.overview import Overall
from runmonitor.domain.status import RunStatus

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
ICONS = ROOT / "resources" / "icons"
DESKTOP = PACKAGING / "linux" / f"{APP_ID}.desktop"
METAINFO = PACKAGING / "linux" / f"{APP_ID}.metainfo.xml"
QRC = ROOT / "resources" / "runmonitor.qrc"
HICOLOR_SIZES = (16, 22, 24, 32, 48, 64, 128, 256)


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def gui_script() -> str:
    (name,) = pyproject()["project"]["gui-scripts"]
    return str(name)


def desktop_entry(path: Path = DESKTOP) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def load_make_icons() -> ModuleType:
    """packaging/make_icons.py (a script, not a package) as a module."""
    name = "runmonitor_make_icons"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, PACKAGING / "make_icons.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (Debian: apt-get install desktop-file-utils appstream)")
    return found


# -- entry points -------------------------------------------------------------------------------


def test_pyproject_declares_a_console_and_a_gui_script_for_the_same_main() -> None:
    project = pyproject()["project"]
    assert project["scripts"]["runmonitor"] == "runmonitor.cli.main:main"
    assert project["gui-scripts"] == {"runmonitor-gui": "runmonitor.cli.main:main"}
    module_name, _, attr = project["gui-scripts"]["runmonitor-gui"].partition(":")
    assert callable(getattr(importlib.import_module(module_name), attr))


# -- desktop entry and metainfo -----------------------------------------------------------------


def test_desktop_file_validates() -> None:
    result = subprocess.run([tool("desktop-file-validate"), str(DESKTOP)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stdout + result.stderr


def test_metainfo_validates() -> None:
    command = [tool("appstreamcli"), "validate", "--no-net", str(METAINFO)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_desktop_entry_names_the_app_id_the_gui_script_and_the_window_class() -> None:
    entry = desktop_entry()
    # Qt gives the window the desktop file name (setDesktopFileName(APP_ID)) as its Wayland
    # app id and _GTK_APPLICATION_ID; that only finds this file when it is named APP_ID.desktop.
    assert DESKTOP.name == f"{APP_ID}.desktop"
    assert entry["Icon"] == APP_ID
    assert entry["Exec"].split()[0] == gui_script()
    assert entry["TryExec"] == gui_script()
    # On X11, Qt's WM_CLASS is (program name, application name); app.py names it APP_NAME.
    assert entry["StartupWMClass"] == APP_NAME
    assert entry["Terminal"] == "false"


def test_metainfo_matches_the_desktop_entry_and_the_scripts() -> None:
    root = ET.parse(METAINFO).getroot()
    assert root.findtext("id") == APP_ID
    assert root.findtext("launchable") == DESKTOP.name
    assert root.findtext("icon") == APP_ID
    scripts = {*pyproject()["project"]["scripts"], *pyproject()["project"]["gui-scripts"]}
    assert {b.text for b in root.iter("binary")} == scripts
    assert root.findtext("project_license") == pyproject()["project"]["license"]


# -- icons --------------------------------------------------------------------------------------


def test_hicolor_pngs_exist_at_their_sizes_with_content(qapp: Any) -> None:
    for size in HICOLOR_SIZES:
        path = ICONS / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        image = QImage(str(path))
        assert not image.isNull(), path
        assert (image.width(), image.height()) == (size, size), path
        assert image.hasAlphaChannel(), path
        centre = image.pixelColor(size // 2, size // 2)
        corner = image.pixelColor(0, 0)
        assert centre.alpha() == 255 and corner.alpha() == 0, path  # the tile, on transparency
    scalable = ICONS / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"
    assert scalable.read_bytes() == (ICONS / "runmonitor.svg").read_bytes()
    assert (ICONS / "hicolor" / "symbolic" / "apps" / f"{APP_ID}-symbolic.svg").is_file()


def test_generated_icons_qrc_and_hicolor_svgs_are_up_to_date(qapp: Any) -> None:
    # qapp first: the generator must not make a QGuiApplication where the suite needs widgets.
    assert load_make_icons().stale_files() == []


def test_every_icon_has_a_symbolic_twin_and_the_set_is_complete() -> None:
    names = {p.name for p in ICONS.glob("*.svg")}
    colour = {n for n in names if not n.endswith("-symbolic.svg")}
    assert names == colour | {n.removesuffix(".svg") + "-symbolic.svg" for n in colour}
    # no status-*.svg: the window paints run status icons from icons.GLYPHS, the one source
    expected = {"runmonitor.svg"}
    expected |= {f"state-{k}.svg" for k in ("failing", "sign-in", "running", "ok", "nothing")}
    assert colour == expected


def test_the_set_follows_the_shapes_and_colours_the_app_draws(qapp: Any) -> None:
    from runmonitor.ui.icons import GLYPHS, status_colour
    from runmonitor.ui.tray import STATE_ICONS

    make_icons = load_make_icons()
    for status in RunStatus:
        expected = status_colour(status, dark=False).name()
        assert make_icons.STATUS_COLOURS[status.value.lower()] == expected, status
    states = {"failing": Overall.FAILING, "sign-in": Overall.SIGN_IN, "running": Overall.RUNNING}
    states |= {"ok": Overall.OK, "nothing": Overall.NOTHING}
    for key, overall in states.items():
        assert make_icons.STATE_BADGES[key] == STATE_ICONS[overall].value.lower(), key
    # pending is the only hollow one; every other status has a glyph of its own
    glyphs = make_icons.GLYPHS
    assert glyphs["pending"] == ()
    assert len({glyphs[s] for s in glyphs if s != "pending"}) == len(glyphs) - 1
    # the generator draws the very parts the window paints (one geometry, not a copy)
    assert all(glyphs[status.value.lower()] is GLYPHS[status] for status in RunStatus)


def _rendered(svg: str, size: int) -> QImage:
    renderer = QSvgRenderer(QByteArray(svg.encode()))
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return image


@pytest.mark.parametrize("status", list(RunStatus))
def test_a_tray_badge_is_the_status_icon_the_window_paints(qapp: Any, status: RunStatus) -> None:
    from runmonitor.ui.icons import status_pixmap

    # The badge make_icons writes into the tray-state SVGs, drawn on its own at the size and in
    # the circle the window's painter uses (a line of size/12, the circle half a line in)...
    size = 64
    radius = (size - size / 12) / 2
    make_icons = load_make_icons()
    body = make_icons.colour_badge(status.value.lower(), size / 2, size / 2, radius)
    svg = _rendered(make_icons._svg(size, body, title=status.value), size)
    # ...covers the same pixels in the same colours as the painted status icon.
    painted = status_pixmap(status, size=size).toImage().convertToFormat(QImage.Format.Format_ARGB32)
    off = 0
    for x in range(size):
        for y in range(size):
            a, b = svg.pixelColor(x, y), painted.pixelColor(x, y)
            channels = zip(a.getRgb(), b.getRgb(), strict=True)
            off += max(abs(one - other) for one, other in channels) > 32
    assert off <= size * size // 100, f"{off} pixels differ"


def test_qrc_lists_every_svg_and_rc_icons_serves_them_unchanged(qapp: Any) -> None:
    import runmonitor.ui.generated.rc_icons  # noqa: F401 - registers the resources

    listed = [f.text or "" for f in ET.parse(QRC).getroot().iter("file")]
    assert sorted(listed) == sorted(f"icons/{p.name}" for p in ICONS.glob("*.svg"))
    for name in listed:
        resource = f":/{name}"
        icon = QIcon(resource)
        assert not icon.isNull(), resource
        assert not icon.pixmap(32, 32).isNull(), resource
        file = QFile(resource)
        assert file.open(QIODevice.OpenModeFlag.ReadOnly), resource
        data = bytes(file.readAll().data())
        file.close()
        # the compiled module is stale when a source SVG changed: run packaging/make_icons.py
        assert data == (ROOT / "resources" / name).read_bytes(), resource


# -- the loader API -----------------------------------------------------------------------------


def painted(icon: QIcon, size: int = 32) -> list[QColor]:
    image = icon.pixmap(size, size).toImage()
    return [image.pixelColor(x, y) for x in range(image.width()) for y in range(image.height())]


def test_state_icon_for_every_overall_state_in_colour_and_symbolic(qapp: Any) -> None:
    from runmonitor.ui import resources

    for state in Overall:
        for symbolic in (False, True):
            icon = resources.state_icon(state, symbolic)
            assert not icon.isNull(), (state, symbolic)
            assert any(c.alpha() > 0 for c in painted(icon)), (state, symbolic)
    # the file keys work too, and the same state gives the same (cached) icon
    assert resources.state_icon("ok").cacheKey() == resources.state_icon(Overall.OK).cacheKey()
    with pytest.raises(ValueError, match="unknown tray state"):
        resources.state_icon("on fire")


def test_symbolic_icons_take_the_colour_asked_for(qapp: Any) -> None:
    from runmonitor.ui import resources

    for icon in (
        resources.state_icon(Overall.FAILING, True, "#ff0000"),
        resources.state_icon(Overall.OK, True, QColor("#ff0000")),
        resources.app_icon(True, "#ff0000"),
    ):
        opaque = [c for c in painted(icon) if c.alpha() == 255]
        assert opaque, "nothing painted"
        assert {(c.red(), c.green(), c.blue()) for c in opaque} == {(255, 0, 0)}
    white = [c for c in painted(resources.state_icon("running", True, "#ffffff")) if c.alpha() == 255]
    assert white and all(c.lightness() == 255 for c in white)
    with pytest.raises(ValueError, match="not a colour"):
        resources.state_icon("ok", True, "not-a-colour")


def test_the_compiled_resources_hold_no_run_status_icons(qapp: Any) -> None:
    from runmonitor.ui import resources

    # The window paints those (runmonitor.ui.icons); the compiled set has the app and tray ones.
    assert "state-ok-symbolic.svg" in resources.icon_names()
    assert not [name for name in resources.icon_names() if name.startswith("status-")]
    assert not hasattr(resources, "run_status_icon")


def test_app_icon_path_is_a_real_svg_file_even_when_nothing_is_installed(
    qapp: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runmonitor.ui import resources

    assert resources.app_icon_path() == ICONS / "runmonitor.svg"  # the source checkout's own
    monkeypatch.setattr(resources, "_app_icon_candidates", list)  # as from a wheel, not installed
    written = resources.app_icon_path(tmp_path / "cache")
    assert written == tmp_path / "cache" / "icons" / f"{APP_ID}.svg"
    assert written.read_bytes() == (ICONS / "runmonitor.svg").read_bytes()
    assert resources.app_icon_path(tmp_path / "cache") == written  # written once, then reused


# -- the per-user install script ----------------------------------------------------------------


@pytest.mark.skipif(os.name != "posix" or shutil.which("sh") is None, reason="a POSIX shell script")
def test_install_linux_puts_the_entry_metainfo_and_icons_in_place_and_removes_them(tmp_path: Path) -> None:
    data = tmp_path / "usr" / "share"
    script = PACKAGING / "install-linux.sh"
    command = ["sh", str(script), "--data-dir", str(data), "--exec", "/opt/runmonitor/runmonitor-gui"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    installed = data / "applications" / f"{APP_ID}.desktop"
    entry = desktop_entry(installed)
    assert entry["Exec"] == "/opt/runmonitor/runmonitor-gui"
    assert entry["TryExec"] == "/opt/runmonitor/runmonitor-gui"
    assert (data / "metainfo" / f"{APP_ID}.metainfo.xml").read_bytes() == METAINFO.read_bytes()
    for size in HICOLOR_SIZES:
        assert (data / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png").is_file()
    assert (data / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg").is_file()
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(installed)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout
    if shutil.which("appstreamcli"):
        # the installed tree as a whole: metainfo, its desktop entry and its icon found together
        check = subprocess.run(
            ["appstreamcli", "validate-tree", "--no-net", str(tmp_path)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr

    bad = subprocess.run(
        ["sh", str(script), "--data-dir", str(data), "--exec", "/path with space/x"], capture_output=True
    )
    assert bad.returncode == 2

    removed = subprocess.run(["sh", str(script), "--data-dir", str(data), "--uninstall"], capture_output=True)
    assert removed.returncode == 0
    left = [p for p in data.rglob("*") if p.is_file() and APP_ID in p.name]
    assert left == []


# -- the bundle (opt-in) ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.skipif(
    os.environ.get("RUNMONITOR_BUILD_BUNDLE") != "1",
    reason="builds the PyInstaller bundle (minutes, ~180 MB): set RUNMONITOR_BUILD_BUNDLE=1",
)
def test_the_pyinstaller_bundle_builds_starts_and_finds_its_services_and_keyring() -> None:
    # Built outside pytest's temporary folders and removed after: the bundle holds the embedded
    # simulator's demo credentials, which the suite's secret audit looks for in those folders.
    with tempfile.TemporaryDirectory(prefix="runmonitor-bundle-test-") as tmp:
        out = Path(tmp)
        command = [
            sys.executable,
            str(PACKAGING / "build_bundle.py"),
            "--dist",
            str(out / "dist"),
            "--work",
            str(out / "work"),
        ]
        result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=1700)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "bundle check: passed" in result.stdout
        assert (out / "dist" / "runmonitor" / "runmonitor").is_file()
        assert (out / "dist" / "runmonitor" / "runmonitor-gui").is_file()
