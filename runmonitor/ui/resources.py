"""The icons compiled into the application, and where the app icon is on disk.

The SVGs in ``resources/icons/`` are compiled into :mod:`runmonitor.ui.generated.rc_icons` (see
``packaging/make_icons.py``), so they are there however RunMonitor was installed: from source,
from a wheel or as a PyInstaller bundle. Each icon comes in colour and as a *symbolic* variant:
one colour, glyphs cut out, for panels and menus; it is tinted to a colour you choose (by default
the application palette's text colour).

- :func:`state_icon`: the tray states (failing, sign-in needed, running, all good, nothing
  followed): the app icon wearing the status badge of ``tray.STATE_ICONS``;
- :func:`app_icon` and :func:`app_icon_path` (a real file, for desktop notifications).

The run status icons are not here: :mod:`runmonitor.ui.icons` paints them (any size, light or
dark, stale or not) from the glyph geometry the tray-state SVGs are drawn from.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QByteArray, QDir, QFile, QIODevice, QRectF
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

import runmonitor.ui.generated.rc_icons  # noqa: F401 - importing it registers :/icons/ with Qt
from runmonitor import APP_ID

__all__ = [
    "ICON_PREFIX",
    "STATES",
    "app_icon",
    "app_icon_path",
    "icon_names",
    "state_icon",
    "svg_bytes",
]

ICON_PREFIX = ":/icons/"
#: The colour written into the symbolic SVGs, replaced when they are tinted.
SYMBOLIC_COLOUR = "#232629"
#: Sizes rendered for a tinted symbolic icon (QIcon scales from the nearest one).
SYMBOLIC_SIZES = (16, 22, 24, 32, 48, 64, 128)
#: The tray states' file names, and the names they are known by (``Overall`` values included).
STATES = ("failing", "sign-in", "running", "ok", "nothing")
_STATE_ALIASES = {
    "failing": "failing",
    "sign-in": "sign-in",
    "sign-in needed": "sign-in",
    "sign_in": "sign-in",
    "running": "running",
    "ok": "ok",
    "all good": "ok",
    "nothing": "nothing",
    "nothing followed": "nothing",
}

_cache: dict[tuple[str, str | None], QIcon] = {}


def icon_names() -> list[str]:
    """Every icon file in the compiled resources, e.g. ``state-ok-symbolic.svg``."""
    return sorted(QDir(ICON_PREFIX.rstrip("/")).entryList(["*.svg"]))


def svg_bytes(name: str) -> bytes:
    """The SVG text of ``name`` (a file name from :func:`icon_names`)."""
    file = QFile(ICON_PREFIX + name)
    if not file.open(QIODevice.OpenModeFlag.ReadOnly):
        raise KeyError(f"no icon {name!r} in the compiled resources")
    try:
        return bytes(file.readAll().data())
    finally:
        file.close()


def _state_key(state: str) -> str:
    key = _STATE_ALIASES.get(str(state).strip().lower())
    if key is None:
        raise ValueError(f"unknown tray state {state!r}; known: {', '.join(STATES)}")
    return key


def state_icon(state: str, symbolic: bool = False, colour: QColor | str | None = None) -> QIcon:
    """The tray icon for ``state``: an ``Overall`` value (``"all good"``) or a file key (``"ok"``).

    ``symbolic`` gives the one-colour variant, tinted ``colour`` (default: the palette's text).
    """
    return _icon(f"state-{_state_key(state)}", symbolic, colour)


def app_icon(symbolic: bool = False, colour: QColor | str | None = None) -> QIcon:
    """The application icon from the compiled resources."""
    return _icon("runmonitor", symbolic, colour)


def _icon(stem: str, symbolic: bool, colour: QColor | str | None) -> QIcon:
    if not symbolic:
        key: tuple[str, str | None] = (stem, None)
        if key not in _cache:
            _cache[key] = _colour_icon(f"{stem}.svg")
        return _cache[key]
    tint = _tint(colour)
    key = (f"{stem}-symbolic", tint.name(QColor.NameFormat.HexArgb))
    if key not in _cache:
        _cache[key] = _rendered_icon(f"{stem}-symbolic.svg", tint)
    return _cache[key]


def _tint(colour: QColor | str | None) -> QColor:
    if colour is None:
        return QGuiApplication.palette().color(QPalette.ColorRole.WindowText)
    tint = QColor(colour)
    if not tint.isValid():
        raise ValueError(f"not a colour: {colour!r}")
    return tint


def _colour_icon(name: str) -> QIcon:
    """QIcon on the resource (Qt's SVG icon engine scales it); rendered pixmaps without one."""
    svg_bytes(name)  # fail loudly on a name that is not there
    icon = QIcon(ICON_PREFIX + name)
    if icon.pixmap(16, 16).isNull():
        icon = _rendered_icon(name, None)
    return icon


def _rendered_icon(name: str, tint: QColor | None, sizes: Iterable[int] = SYMBOLIC_SIZES) -> QIcon:
    data = svg_bytes(name)
    opacity = 1.0
    if tint is not None:
        data = data.replace(SYMBOLIC_COLOUR.encode(), tint.name(QColor.NameFormat.HexRgb).encode())
        opacity = tint.alphaF()
    renderer = QSvgRenderer(QByteArray(data))
    if not renderer.isValid():
        raise ValueError(f"the compiled icon {name!r} is not a valid SVG")
    icon = QIcon()
    for size in sizes:
        pixmap = QPixmap(size, size)
        pixmap.fill(QColor(0, 0, 0, 0))
        painter = QPainter(pixmap)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setOpacity(opacity)
            renderer.render(painter, QRectF(0, 0, size, size))
        finally:
            painter.end()
        icon.addPixmap(pixmap)
    return icon


def clear_cache() -> None:
    """Forget rendered icons (after a palette change, for default-tinted symbolic ones)."""
    _cache.clear()


# --------------------------------------------------------------------------------------------
# The app icon as a file


def _data_dirs() -> list[Path]:
    home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    dirs = os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share"
    return [Path(home), *(Path(d) for d in dirs.split(os.pathsep) if d)]


def _app_icon_candidates() -> list[Path]:
    # resources/ beside the package: a source checkout, or a PyInstaller bundle (its spec puts
    # resources/icons/runmonitor.svg there); then the icon install-linux.sh or a distribution
    # package installed.
    here = Path(__file__).resolve()
    found = [here.parents[2] / "resources" / "icons" / "runmonitor.svg"]
    found += [d / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg" for d in _data_dirs()]
    return found


def app_icon_path(cache_dir: Path | None = None) -> Path:
    """A file holding the app icon (SVG), for places that take a path (desktop notifications).

    When no installed copy is found, the compiled one is written to ``cache_dir`` (default: the
    app's cache folder, which follows ``RUNMONITOR_HOME``) and that path is returned.
    """
    for path in _app_icon_candidates():
        if path.is_file():
            return path
    if cache_dir is None:
        from runmonitor.storage.paths import app_paths, ensure_private_dir

        cache_dir = app_paths().cache_dir
        ensure_private_dir(cache_dir)
    target = cache_dir / "icons" / f"{APP_ID}.svg"
    data = svg_bytes("runmonitor.svg")
    if not (target.is_file() and target.read_bytes() == data):
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".svg.part")
        partial.write_bytes(data)
        os.replace(partial, target)
    return target
