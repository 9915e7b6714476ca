#!/usr/bin/env python3
"""Build RunMonitor's icon set from the app icon SVG and the status glyphs of ``runmonitor/ui/icons.py``.

    python packaging/make_icons.py            # write everything below
    python packaging/make_icons.py --check    # exit 1 when a committed file is out of date

Writes, all committed to the repository:

- ``resources/icons/state-<state>[-symbolic].svg``: the tray states (failing, sign-in, running,
  ok, nothing): the app icon with the status badge ``runmonitor/ui/tray.py`` puts on it, drawn
  from the glyph geometry of ``runmonitor/ui/icons.py`` (``GLYPHS``), the one description of
  the status shapes (the window paints its status icons from it at run time);
- ``resources/icons/runmonitor-symbolic.svg``: a one-colour app icon;
- ``resources/runmonitor.qrc`` and ``runmonitor/ui/generated/rc_icons.py`` (compiled with pyside6-rcc);
- ``resources/icons/hicolor/``: the app icon as PNG in the freedesktop sizes, plus the scalable
  and symbolic SVGs, named after ``runmonitor.APP_ID``.

The colour variants use the light-palette colours of ``icons.py``. The symbolic variants are a
single path in one colour (``currentColor`` with the ``ColorScheme-Text`` class, which KDE
recolours; GTK recolours any fill), with the glyphs cut out, so they can be tinted to any panel.
``--check`` compares the SVG and .qrc text exactly; PNG and rcc output depend on the Qt version,
so for those it only checks that they exist (the tests check their sizes and contents).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# This checkout's runmonitor (the glyph geometry, the app id), whether or not one is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QColor,
    QGuiApplication,
    QImage,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QTransform,
)
from PySide6.QtSvg import QSvgRenderer

from runmonitor import APP_ID
from runmonitor.domain.status import RunStatus
from runmonitor.ui.icons import GLYPHS as STATUS_GLYPHS
from runmonitor.ui.icons import (
    RING_PEN,
    RING_RADIUS,
    GlyphPart,
    PathStep,
    glyph_colour,
    glyph_path,
    status_colour,
)

ROOT = Path(__file__).resolve().parents[1]

RESOURCES = ROOT / "resources"
ICONS = RESOURCES / "icons"
HICOLOR = ICONS / "hicolor"
QRC = RESOURCES / "runmonitor.qrc"
RC_MODULE = ROOT / "runmonitor" / "ui" / "generated" / "rc_icons.py"
APP_SVG = ICONS / "runmonitor.svg"
HICOLOR_SIZES = (16, 22, 24, 32, 48, 64, 128, 256)
SVG_NS = "http://www.w3.org/2000/svg"
#: Symbolic paths are computed this many times larger than drawn (see _symbolic_svg).
FINE = 16.0

#: The light-palette colours of runmonitor/ui/icons.py (contrast >= 3:1 on white), by status key.
STATUS_COLOURS = {status.value.lower(): status_colour(status, dark=False).name() for status in RunStatus}
GLYPH_COLOUR = glyph_colour(dark=False).name()
#: The tray states and the run status whose badge each one wears (tray.py's STATE_ICONS).
STATE_BADGES = {
    "failing": "failed",
    "sign-in": "unknown",
    "running": "running",
    "ok": "succeeded",
    "nothing": "pending",
}
#: The colour symbolic icons carry until something recolours them (Breeze's text colour).
SYMBOLIC_COLOUR = "#232629"
SYMBOLIC_STYLE = f"<style>.ColorScheme-Text {{ color: {SYMBOLIC_COLOUR}; }}</style>"

#: The status glyphs of runmonitor/ui/icons.py, by status key.
GLYPHS: dict[str, tuple[GlyphPart, ...]] = {
    status.value.lower(): parts for status, parts in STATUS_GLYPHS.items()
}


def _num(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _place(steps: Iterable[PathStep], cx: float, cy: float, r: float) -> str:
    out = []
    for op, coords in steps:
        placed = [cx + v * r if i % 2 == 0 else cy + v * r for i, v in enumerate(coords)]
        out.append(op + " ".join(_num(v) for v in placed))
    return " ".join(out)


def _svg(size: int, body: Sequence[str], *, title: str, extra_head: str = "") -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}">'
    )
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', head, f"  <title>{title}</title>"]
    if extra_head:
        lines.append(f"  {extra_head}")
    lines += [f"  {line}" for line in body]
    lines.append("</svg>")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Colour icons: readable SVG elements


def colour_badge(status: str, cx: float, cy: float, r: float) -> list[str]:
    """A status disc (or ring, for pending) with its glyph, as SVG elements."""
    colour = STATUS_COLOURS[status]
    if status == "pending":
        ring = RING_RADIUS * r
        width = RING_PEN * r
        return [
            f'<circle cx="{_num(cx)}" cy="{_num(cy)}" r="{_num(ring)}" fill="none" '
            f'stroke="{colour}" stroke-width="{_num(width)}"/>'
        ]
    out = [f'<circle cx="{_num(cx)}" cy="{_num(cy)}" r="{_num(r)}" fill="{colour}"/>']
    for part in GLYPHS[status]:
        if part.kind == "stroke":
            out.append(
                f'<path d="{_place(part.path, cx, cy, r)}" fill="none" stroke="{GLYPH_COLOUR}" '
                f'stroke-width="{_num(part.width * r)}" stroke-linecap="round" stroke-linejoin="round"/>'
            )
        elif part.kind == "fill":
            out.append(f'<path d="{_place(part.path, cx, cy, r)}Z" fill="{GLYPH_COLOUR}"/>')
        else:
            x, y = part.centre
            out.append(
                f'<circle cx="{_num(cx + x * r)}" cy="{_num(cy + y * r)}" r="{_num(part.radius * r)}" '
                f'fill="{GLYPH_COLOUR}"/>'
            )
    return out


def _app_body() -> list[str]:
    """The app icon's elements (without its title), to draw the tray states on."""
    ET.register_namespace("", SVG_NS)
    root = ET.fromstring(APP_SVG.read_text(encoding="utf-8"))
    body = []
    for child in root:
        if child.tag == f"{{{SVG_NS}}}title":
            continue
        child.tail = None
        text = ET.tostring(child, encoding="unicode").replace(f' xmlns="{SVG_NS}"', "")
        body.append(" ".join(text.split()))
    return body


def state_svg(state: str) -> str:
    # tray.py: a badge 62% of the icon wide in the lower right corner. A white halo keeps the
    # badge apart from the blue tile, and gives the hollow "nothing" ring a ground to sit on.
    badge = 256 * 0.62
    r = badge / 2 - badge / 24
    c = 256 - badge / 2
    halo = f'<circle cx="{_num(c)}" cy="{_num(c)}" r="{_num(r + 14)}" fill="#ffffff"/>'
    body = [*_app_body(), halo, *colour_badge(STATE_BADGES[state], c, c, r)]
    return _svg(256, body, title=f"RunMonitor: {state}")


# --------------------------------------------------------------------------------------------
# Symbolic icons: one path, computed with Qt's path operations


_app: QGuiApplication | None = None


def _qt() -> None:
    """Path operations and rendering need a QGuiApplication (offscreen is enough)."""
    global _app
    if QGuiApplication.instance() is None:
        _app = QGuiApplication([])


def _stroke(path: QPainterPath, width: float) -> QPainterPath:
    stroker = QPainterPathStroker()
    stroker.setWidth(width)
    stroker.setCapStyle(Qt.PenCapStyle.RoundCap)
    stroker.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return stroker.createStroke(path)


def _disc(cx: float, cy: float, r: float) -> QPainterPath:
    path = QPainterPath()
    path.addEllipse(QPointF(cx, cy), r, r)
    return path


def symbolic_badge(status: str, cx: float, cy: float, r: float) -> QPainterPath:
    """The status disc with its glyph cut out (a ring for pending), as one QPainterPath."""
    if status == "pending":
        outer = (RING_RADIUS + RING_PEN / 2) * r
        inner = (RING_RADIUS - RING_PEN / 2) * r
        return _disc(cx, cy, outer).subtracted(_disc(cx, cy, inner))
    shape = _disc(cx, cy, r)
    for part in GLYPHS[status]:
        if part.kind == "stroke":
            cut = _stroke(glyph_path(part, cx, cy, r), part.width * r)
        elif part.kind == "fill":
            cut = glyph_path(part, cx, cy, r)
        else:
            cut = _disc(cx + part.centre[0] * r, cy + part.centre[1] * r, part.radius * r)
        shape = shape.subtracted(cut)
    return shape


def _tile_frame(k: float) -> QPainterPath:
    """The app's rounded tile as an outline (16 px grid times k)."""
    outer = QPainterPath()
    outer.addRoundedRect(QRectF(1 * k, 1 * k, 14 * k, 14 * k), 3.5 * k, 3.5 * k)
    inner = QPainterPath()
    inner.addRoundedRect(QRectF(2.5 * k, 2.5 * k, 11 * k, 11 * k), 2.2 * k, 2.2 * k)
    return outer.subtracted(inner)


def _app_symbolic_path(k: float) -> QPainterPath:
    """The app icon in one colour: the tile's outline with a pulse line across it."""
    points = [(3.6, 8.6), (5.4, 8.6), (6.7, 5.4), (8.6, 11.2), (10.0, 7.2), (10.8, 8.6), (12.4, 8.6)]
    pulse = GlyphPart("stroke", (("M", points[0]), *(("L", point) for point in points[1:])))
    return _tile_frame(k).united(_stroke(glyph_path(pulse, 0.0, 0.0, k), 1.5 * k))


def _d(path: QPainterPath) -> str:
    """SVG path data for a QPainterPath."""
    parts: list[str] = []
    i = 0
    count = path.elementCount()
    while i < count:
        e = path.elementAt(i)
        if e.type == QPainterPath.ElementType.MoveToElement:
            if parts:
                parts.append("Z")
            parts.append(f"M{_num(e.x)} {_num(e.y)}")
            i += 1
        elif e.type == QPainterPath.ElementType.LineToElement:
            parts.append(f"L{_num(e.x)} {_num(e.y)}")
            i += 1
        else:  # CurveToElement, then two CurveToDataElement
            c2, end = path.elementAt(i + 1), path.elementAt(i + 2)
            parts.append(f"C{_num(e.x)} {_num(e.y)} {_num(c2.x)} {_num(c2.y)} {_num(end.x)} {_num(end.y)}")
            i += 3
    if parts:
        parts.append("Z")
    return " ".join(parts)


def _symbolic_svg(build: Callable[[float], QPainterPath], title: str) -> str:
    """One path in one colour. ``build(k)`` draws the icon on a 16 px grid scaled by ``k``."""
    # Qt's path operations flatten curves into line segments of about a unit: build the path at
    # FINE times the size and scale it down, so circles stay round when the icon is drawn large.
    _qt()
    path = QTransform.fromScale(1 / FINE, 1 / FINE).map(build(FINE).simplified())
    rule = "evenodd" if path.fillRule() == Qt.FillRule.OddEvenFill else "nonzero"
    body = [f'<path class="ColorScheme-Text" fill="currentColor" fill-rule="{rule}" d="{_d(path)}"/>']
    return _svg(16, body, title=title, extra_head=SYMBOLIC_STYLE)


def state_symbolic_svg(state: str) -> str:
    """The app's tile outline with the state's badge in the lower right, a gap around it.

    The pulse line is left out: at panel sizes the badge would leave only a stub of it.
    """
    c, r, gap = 10.6, 5.4, 1.1

    def build(k: float) -> QPainterPath:
        base = _tile_frame(k).subtracted(_disc(c * k, c * k, (r + gap) * k))
        return base.united(symbolic_badge(STATE_BADGES[state], c * k, c * k, r * k))

    return _symbolic_svg(build, f"RunMonitor: {state}")


def app_symbolic_svg() -> str:
    return _symbolic_svg(_app_symbolic_path, "RunMonitor")


# --------------------------------------------------------------------------------------------
# The set, the .qrc, the hicolor tree and the compiled resources


def icon_sources() -> dict[str, str]:
    """File name under resources/icons → SVG text, for every generated icon."""
    files: dict[str, str] = {"runmonitor-symbolic.svg": app_symbolic_svg()}
    for state in STATE_BADGES:
        files[f"state-{state}.svg"] = state_svg(state)
        files[f"state-{state}-symbolic.svg"] = state_symbolic_svg(state)
    return files


def qrc_text(names: Iterable[str]) -> str:
    lines = ['<!DOCTYPE RCC><RCC version="1.0">', '<qresource prefix="/">']
    lines += [f"    <file>icons/{name}</file>" for name in sorted(names)]
    lines += ["</qresource>", "</RCC>"]
    return "\n".join(lines) + "\n"


def hicolor_svgs() -> dict[Path, bytes]:
    """The scalable and symbolic app icons under their freedesktop names."""
    name = APP_ID
    return {
        HICOLOR / "scalable" / "apps" / f"{name}.svg": APP_SVG.read_bytes(),
        HICOLOR / "symbolic" / "apps" / f"{name}-symbolic.svg": app_symbolic_svg().encode(),
    }


def hicolor_png(size: int) -> Path:
    return HICOLOR / f"{size}x{size}" / "apps" / f"{APP_ID}.png"


def render_png(svg: Path, size: int, out: Path) -> None:
    _qt()
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"cannot read {svg}")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(0)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    out.parent.mkdir(parents=True, exist_ok=True)
    if not image.convertToFormat(QImage.Format.Format_ARGB32).save(str(out), "PNG"):
        raise SystemExit(f"cannot write {out}")


def rcc_command() -> list[str]:
    """pyside6-rcc from this interpreter's environment (or PATH), emitting Python."""
    here = Path(sys.executable).parent
    for candidate in (here / "pyside6-rcc", here / "pyside6-rcc.exe"):
        if candidate.is_file():
            return [str(candidate)]
    found = shutil.which("pyside6-rcc")
    if found:
        return [found]
    raise SystemExit("pyside6-rcc not found: install PySide6-Essentials in this environment")


def compile_resources() -> None:
    """resources/runmonitor.qrc → runmonitor/ui/generated/rc_icons.py, the same bytes for the same inputs."""
    # zlib rather than rcc's default zstd: any Qt can read it. A fixed file date keeps the output
    # from changing when only the SVGs' timestamps did.
    env = {**os.environ, "QT_RCC_SOURCE_DATE_OVERRIDE": "1"}
    command = [*rcc_command(), "-g", "python", "--compress-algo", "zlib", str(QRC), "-o", str(RC_MODULE)]
    subprocess.run(command, check=True, cwd=ROOT, env=env)
    text = RC_MODULE.read_text(encoding="utf-8")
    header = (
        "# ruff: noqa\n# fmt: off\n# mypy: ignore-errors\n"
        "# Generated by packaging/make_icons.py from resources/runmonitor.qrc; do not edit.\n"
    )
    RC_MODULE.write_text(header + text, encoding="utf-8")


def write_all() -> None:
    sources = icon_sources()
    for name, text in sources.items():
        (ICONS / name).write_text(text, encoding="utf-8")
    QRC.write_text(qrc_text([APP_SVG.name, *sources]), encoding="utf-8")
    for path, data in hicolor_svgs().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for size in HICOLOR_SIZES:
        render_png(APP_SVG, size, hicolor_png(size))
    compile_resources()


def stale_files() -> list[str]:
    """Committed files that differ from what this script would write (or are missing)."""
    stale = []
    sources = icon_sources()
    expected: dict[Path, bytes] = {ICONS / name: text.encode() for name, text in sources.items()}
    expected[QRC] = qrc_text([APP_SVG.name, *sources]).encode()
    expected.update(hicolor_svgs())
    for path, data in expected.items():
        if not path.is_file() or path.read_bytes().replace(b"\r\n", b"\n") != data:
            stale.append(str(path.relative_to(ROOT)))
    for path in [hicolor_png(size) for size in HICOLOR_SIZES] + [RC_MODULE]:
        if not path.is_file():
            stale.append(str(path.relative_to(ROOT)))
    return stale


def contact_sheet(out: Path) -> None:
    """Every compiled icon at several sizes on a light and a dark ground, for a person to look at.

    Drawn through runmonitor.ui.resources, so it shows what the app gets (tinting included).
    """
    _qt()
    from runmonitor.ui import resources

    sizes = (16, 22, 32, 48, 96)
    grounds = (("#ffffff", "#232629", "#202020"), ("#2b2b2b", "#eeeeee", "#f0f0f0"))
    names = [name.removesuffix(".svg") for name in resources.icon_names()]
    label_w, pad, row_h = 230, 10, max(sizes) + 12
    half = sum(sizes) + pad * (len(sizes) + 1)
    image = QImage(label_w + 2 * half, row_h * len(names), QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    painter.fillRect(0, 0, label_w, image.height(), QColor("#f4f4f4"))
    for i, name in enumerate(names):
        top = i * row_h
        painter.setPen(QColor("#202020"))
        painter.drawText(QRectF(6, top, label_w - 6, row_h), Qt.AlignmentFlag.AlignVCenter, name)
        symbolic = name.endswith("-symbolic")
        stem = name.removesuffix("-symbolic")
        for g, (ground, tint, _text) in enumerate(grounds):
            left = label_w + g * half
            painter.fillRect(left, top, half, row_h, QColor(ground))
            if stem == "runmonitor":
                icon = resources.app_icon(symbolic, tint)
            else:
                icon = resources.state_icon(stem.removeprefix("state-"), symbolic, tint)
            x = left + pad
            for size in sizes:
                icon.paint(painter, x, top + (row_h - size) // 2, size, size)
                x += size + pad
    painter.end()
    out.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(out)):
        raise SystemExit(f"cannot write {out}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only report files that are out of date")
    parser.add_argument("--sheet", metavar="PNG", type=Path, help="only draw a contact sheet of the icon set")
    args = parser.parse_args(argv)
    if args.sheet:
        contact_sheet(args.sheet)
        sys.stdout.write(f"contact sheet written to {args.sheet}\n")
        return 0
    if args.check:
        stale = stale_files()
        for name in stale:
            sys.stderr.write(f"out of date: {name}\n")
        if stale:
            sys.stderr.write("run: python packaging/make_icons.py\n")
        return 1 if stale else 0
    write_all()
    sys.stdout.write(
        f"icons, {QRC.relative_to(ROOT)}, hicolor tree and {RC_MODULE.relative_to(ROOT)} written\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
