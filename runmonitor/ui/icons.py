"""Status icons drawn with QPainter, the form feedback icons, and the application icon.

Every status has its own shape, so a status can be told apart without seeing colour:

========== ============================================ =========
status     shape                                        colour
========== ============================================ =========
PENDING    hollow circle                                grey
RUNNING    filled circle with a "play" triangle         blue
SUCCEEDED  filled circle with a check mark              green
FAILED     filled circle with a cross                   red
CANCELLED  filled circle with a slash                   dark grey
UNKNOWN    filled circle with a question mark           amber
========== ============================================ =========

A stale run (its last check failed) keeps its glyph, drawn in the status colour inside a
dashed ring instead of a filled disc, plus a small clock badge. Icons are cached per
(status, stale, size, dark); "dark" follows the application palette at call time, so a
palette change picks fresh colours.

:data:`GLYPHS` is the one description of these shapes: the painter here draws it at run time,
and ``packaging/make_icons.py`` draws the same parts into the tray-state SVGs (the app icon
wearing a status badge), so the window's status icons and the tray's badges are one geometry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QIcon,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
)

from runmonitor.domain.status import RunStatus
from runmonitor.ui.theme import is_dark_palette

__all__ = [
    "GLYPHS",
    "GLYPH_PEN",
    "LINE",
    "RING_PEN",
    "RING_RADIUS",
    "GlyphPart",
    "PathStep",
    "app_icon",
    "clear_icon_cache",
    "feedback_icon",
    "glyph_colour",
    "glyph_path",
    "status_colour",
    "status_icon",
    "status_label",
    "status_pixmap",
]

_LABELS: dict[RunStatus, str] = {
    RunStatus.PENDING: "Pending",
    RunStatus.RUNNING: "Running",
    RunStatus.SUCCEEDED: "Succeeded",
    RunStatus.FAILED: "Failed",
    RunStatus.CANCELLED: "Cancelled",
    RunStatus.UNKNOWN: "Unknown",
}

# Chosen for a contrast of at least 3:1 (graphical objects, WCAG 1.4.11) against a white
# window in light mode and against a #1e1e1e-#353535 window in dark mode.
_LIGHT: dict[RunStatus, str] = {
    RunStatus.PENDING: "#6b6b6b",
    RunStatus.RUNNING: "#1565c0",
    RunStatus.SUCCEEDED: "#2e7d32",
    RunStatus.FAILED: "#c62828",
    RunStatus.CANCELLED: "#424242",
    RunStatus.UNKNOWN: "#a35c00",
}
_DARK: dict[RunStatus, str] = {
    RunStatus.PENDING: "#b4b4b4",
    RunStatus.RUNNING: "#64b5f6",
    RunStatus.SUCCEEDED: "#66bb6a",
    RunStatus.FAILED: "#ff7070",
    RunStatus.CANCELLED: "#a8a8a8",
    RunStatus.UNKNOWN: "#ffb300",
}
# The glyph drawn inside a filled circle: white on the darker light-mode fills, near-black on
# the brighter dark-mode fills.
_GLYPH_LIGHT = "#ffffff"
_GLYPH_DARK = "#161616"

#: The painter's line is 1/12 of the icon and the status circle fills the icon less half a line
#: on each side, so its radius is 11/24 of the icon: one line is 2/11 of the radius.
LINE = 2 / 11
#: In units of the status circle's radius: the glyph strokes, and the width and radius of the
#: hollow (pending) ring.
GLYPH_PEN = 1.7 * LINE
RING_PEN = 1.6 * LINE
RING_RADIUS = 1 - 0.8 * LINE

#: One step of a glyph path: ("M", (x, y)), ("L", (x, y)) or ("C", (x1, y1, x2, y2, x, y)).
PathStep = tuple[str, tuple[float, ...]]


@dataclass(frozen=True)
class GlyphPart:
    """One piece of a status glyph, in units of the circle's radius around its centre: a
    stroked open path, a filled polygon or a round dot."""

    kind: str  # "stroke" | "fill" | "dot"
    path: tuple[PathStep, ...] = ()
    width: float = GLYPH_PEN
    centre: tuple[float, float] = (0.0, 0.0)
    radius: float = 0.0


def _m(x: float, y: float) -> PathStep:
    return ("M", (x, y))


def _l(x: float, y: float) -> PathStep:
    return ("L", (x, y))


def _c(*xy: float) -> PathStep:
    return ("C", xy)


#: The glyph inside each status circle (pending has none: it is the hollow ring).
GLYPHS: dict[RunStatus, tuple[GlyphPart, ...]] = {
    RunStatus.PENDING: (),
    RunStatus.RUNNING: (GlyphPart("fill", (_m(-0.32, -0.48), _l(0.52, 0.0), _l(-0.32, 0.48))),),
    RunStatus.SUCCEEDED: (GlyphPart("stroke", (_m(-0.45, 0.02), _l(-0.12, 0.36), _l(0.48, -0.34))),),
    RunStatus.FAILED: (
        GlyphPart("stroke", (_m(-0.38, -0.38), _l(0.38, 0.38))),
        GlyphPart("stroke", (_m(-0.38, 0.38), _l(0.38, -0.38))),
    ),
    RunStatus.CANCELLED: (GlyphPart("stroke", (_m(-0.45, 0.45), _l(0.45, -0.45))),),
    RunStatus.UNKNOWN: (
        GlyphPart(
            "stroke",
            (
                _m(-0.27, -0.25),
                _c(-0.27, -0.45, -0.15, -0.56, 0.0, -0.56),
                _c(0.16, -0.56, 0.29, -0.45, 0.29, -0.29),
                _c(0.29, -0.14, 0.18, -0.07, 0.08, -0.01),
                _c(0.02, 0.03, 0.0, 0.07, 0.0, 0.12),
            ),
            width=0.27,
        ),
        GlyphPart("dot", centre=(0.0, 0.47), radius=0.155),
    ),
}

_cache: dict[tuple[RunStatus, bool, int, bool], QIcon] = {}
_APP_ICON_NAME = "runmonitor.svg"


def status_label(status: RunStatus) -> str:
    """The status as a person reads it, e.g. "Succeeded"."""
    return _LABELS.get(status, status.value.capitalize())


def status_colour(status: RunStatus, dark: bool) -> QColor:
    """The status colour for a light (``dark=False``) or dark background."""
    table = _DARK if dark else _LIGHT
    return QColor(table.get(status, table[RunStatus.UNKNOWN]))


def glyph_colour(dark: bool) -> QColor:
    """The colour of a glyph on a filled status circle, for a light or dark background."""
    return QColor(_GLYPH_DARK if dark else _GLYPH_LIGHT)


def glyph_path(part: GlyphPart, cx: float, cy: float, r: float) -> QPainterPath:
    """The path of a stroke or fill ``part`` for a circle of radius ``r`` around (cx, cy)."""
    path = QPainterPath()
    for op, coords in part.path:
        points = [QPointF(cx + coords[i] * r, cy + coords[i + 1] * r) for i in range(0, len(coords), 2)]
        if op == "M":
            path.moveTo(points[0])
        elif op == "L":
            path.lineTo(points[0])
        else:
            path.cubicTo(points[0], points[1], points[2])
    if part.kind == "fill":
        path.closeSubpath()
    return path


def clear_icon_cache() -> None:
    _cache.clear()


def status_icon(status: RunStatus, *, stale: bool = False, size: int = 16) -> QIcon:
    """The icon for ``status`` at ``size`` logical pixels (with a 2x version for HiDPI)."""
    dark = is_dark_palette()
    key = (status, stale, size, dark)
    icon = _cache.get(key)
    if icon is None:
        icon = QIcon()
        for ratio in (1.0, 2.0):
            icon.addPixmap(status_pixmap(status, stale=stale, size=size, dark=dark, ratio=ratio))
        _cache[key] = icon
    return icon


def status_pixmap(
    status: RunStatus, *, stale: bool = False, size: int = 16, dark: bool = False, ratio: float = 1.0
) -> QPixmap:
    """One rendering of a status icon (``size`` logical pixels at device pixel ratio ``ratio``)."""
    pixels = max(1, round(size * ratio))
    pixmap = QPixmap(pixels, pixels)
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        _paint_status(painter, status, float(size), stale=stale, dark=dark)
    finally:
        painter.end()
    return pixmap


def _paint_status(painter: QPainter, status: RunStatus, size: float, *, stale: bool, dark: bool) -> None:
    colour = status_colour(status, dark)
    line = max(1.0, size / 12.0)
    # Leave room for the clock badge on stale icons: the circle shrinks towards the top left.
    extent = size * (0.86 if stale else 1.0)
    circle = QRectF(line / 2, line / 2, extent - line, extent - line)
    centre = circle.center()
    radius = circle.width() / 2

    if stale:
        # Out of date: the same glyph, but inside a dashed ring instead of a filled disc.
        pen = QPen(colour, line * 1.4)
        pen.setDashPattern([2.2, 1.4])
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        inset = line * 0.7
        painter.drawEllipse(circle.adjusted(inset, inset, -inset, -inset))
        _paint_glyph(painter, status, centre, radius * 0.92, colour, line)
        _paint_clock_badge(painter, size, dark)
        return

    if status is RunStatus.PENDING:
        painter.setPen(QPen(colour, line * RING_PEN / LINE))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        inset = line * (1 - RING_RADIUS) / LINE
        painter.drawEllipse(circle.adjusted(inset, inset, -inset, -inset))
        return

    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QBrush(colour))
    painter.drawEllipse(circle)
    _paint_glyph(painter, status, centre, radius, glyph_colour(dark), line)


def _paint_glyph(
    painter: QPainter, status: RunStatus, centre: QPointF, radius: float, colour: QColor, line: float
) -> None:
    """The parts of ``GLYPHS[status]``; strokes keep the icon's line width (``line`` is
    ``LINE`` of the radius), however large the circle they sit in."""
    cx, cy = centre.x(), centre.y()
    for part in GLYPHS[status]:
        if part.kind == "stroke":
            width = max(1.2, line * part.width / LINE)
            pen = QPen(colour, width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
            pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(glyph_path(part, cx, cy, radius))
            continue
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QBrush(colour))
        if part.kind == "fill":
            painter.drawPath(glyph_path(part, cx, cy, radius))
        else:
            x, y = part.centre
            dot = part.radius * radius
            painter.drawEllipse(QPointF(cx + x * radius, cy + y * radius), dot, dot)


def _paint_clock_badge(painter: QPainter, size: float, dark: bool) -> None:
    """A small clock at the bottom right: the run's information is out of date."""
    d = max(7.0, size * 0.42)
    rect = QRectF(size - d, size - d, d, d).adjusted(0.5, 0.5, -0.5, -0.5)
    face = QColor("#2b2b2b") if dark else QColor("#ffffff")
    ink = QColor("#f0f0f0") if dark else QColor("#202020")
    painter.setPen(QPen(ink, max(1.0, size / 16.0)))
    painter.setBrush(QBrush(face))
    painter.drawEllipse(rect)
    c = rect.center()
    hand = rect.width() * 0.32
    painter.setPen(QPen(ink, max(1.0, size / 18.0), Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
    painter.drawLine(c, QPointF(c.x(), c.y() - hand))
    painter.drawLine(c, QPointF(c.x() + hand * 0.8, c.y()))


# --------------------------------------------------------------------------------------------
# Feedback icons (form checks and warnings)


def feedback_icon(shape: str, colour: QColor, size: int = 16, ratio: float = 1.0) -> QIcon:
    """A small drawn icon whose SHAPE carries the meaning, so colour is never the only cue.

    ``warning``: triangle with "!"; ``ok``: circle with a check mark; ``failed``: circle with a
    cross; ``signin``: a padlock; ``unreachable``: circle with a slash.
    """
    pixmap = QPixmap(round(size * ratio), round(size * ratio))
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    p = QPainter(pixmap)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = float(size)
    pen = QPen(colour, max(1.5, s / 9))
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    if shape == "warning":
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(colour)
        p.drawPolygon([QPointF(s / 2, s * 0.06), QPointF(s * 0.97, s * 0.92), QPointF(s * 0.03, s * 0.92)])
        bang = QPen(QColor("white") if colour.lightness() < 140 else QColor("black"), max(1.6, s / 8))
        bang.setCapStyle(Qt.PenCapStyle.RoundCap)
        p.setPen(bang)
        p.drawLine(QPointF(s / 2, s * 0.36), QPointF(s / 2, s * 0.62))
        p.drawPoint(QPointF(s / 2, s * 0.78))
    elif shape == "signin":
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawArc(QRectF(s * 0.28, s * 0.08, s * 0.44, s * 0.5), 0, 180 * 16)
        p.drawLine(QPointF(s * 0.28, s * 0.33), QPointF(s * 0.28, s * 0.45))
        p.drawLine(QPointF(s * 0.72, s * 0.33), QPointF(s * 0.72, s * 0.45))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(colour)
        p.drawRoundedRect(QRectF(s * 0.16, s * 0.44, s * 0.68, s * 0.5), s * 0.08, s * 0.08)
    else:
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        margin = pen.widthF() / 2 + 0.5
        p.drawEllipse(QRectF(margin, margin, s - 2 * margin, s - 2 * margin))
        if shape == "ok":
            p.drawPolyline(
                [QPointF(s * 0.28, s * 0.52), QPointF(s * 0.44, s * 0.68), QPointF(s * 0.72, s * 0.34)]
            )
        elif shape == "failed":
            p.drawLine(QPointF(s * 0.33, s * 0.33), QPointF(s * 0.67, s * 0.67))
            p.drawLine(QPointF(s * 0.67, s * 0.33), QPointF(s * 0.33, s * 0.67))
        elif shape == "unreachable":
            p.drawLine(QPointF(s * 0.27, s * 0.73), QPointF(s * 0.73, s * 0.27))
    p.end()
    return QIcon(pixmap)


# --------------------------------------------------------------------------------------------
# Application icon


def _app_icon_candidates() -> list[Path]:
    here = Path(__file__).resolve()
    return [
        here.parents[2] / "resources" / "icons" / _APP_ICON_NAME,
        here.parent / "resources" / "icons" / _APP_ICON_NAME,
        here.parent / _APP_ICON_NAME,
    ]


def app_icon() -> QIcon:
    """The app icon from the compiled Qt resources (always there, wheels and bundles included);
    else resources/icons/runmonitor.svg; a drawn icon as the last resort."""
    from runmonitor.ui import resources

    try:
        icon = resources.app_icon()
        if not icon.isNull():
            return icon
    except (OSError, ValueError, RuntimeError):
        pass
    for path in _app_icon_candidates():
        if path.is_file():
            icon = QIcon(str(path))
            if not icon.isNull() and not icon.pixmap(32, 32).isNull():
                return icon
    return drawn_app_icon()


def drawn_app_icon() -> QIcon:
    """A fallback app icon: a rounded window with a pulse line and a status dot."""
    icon = QIcon()
    for size in (16, 24, 32, 48, 64, 128, 256):
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            s = float(size)
            body = QRectF(s * 0.06, s * 0.1, s * 0.88, s * 0.8)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor("#1f3a5f"))
            painter.drawRoundedRect(body, s * 0.14, s * 0.14)
            pen = QPen(QColor("#7fd3ff"), max(1.0, s * 0.07), Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
            pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
            painter.setPen(pen)
            points = [(0.16, 0.55), (0.34, 0.55), (0.44, 0.3), (0.56, 0.72), (0.64, 0.5), (0.72, 0.5)]
            path = QPainterPath(QPointF(s * points[0][0], s * points[0][1]))
            for x, y in points[1:]:
                path.lineTo(QPointF(s * x, s * y))
            painter.drawPath(path)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor("#66bb6a"))
            r = s * 0.085
            painter.drawEllipse(QPointF(s * 0.8, s * 0.5), r, r)
        finally:
            painter.end()
        icon.addPixmap(pixmap)
    return icon
