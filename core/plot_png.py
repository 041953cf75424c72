"""Line charts as PNG files, drawn with numpy and encoded with zlib and struct.

`wiregrad train` writes `loss.png` with this module; core/ may not depend on matplotlib, Qt or
Pillow, so everything a chart needs is here: a small bitmap font, nice 1-2-5 tick values,
vectorised line drawing, a legend, and a PNG encoder.

    line_chart_png("loss.png", [("train", epochs, train_loss, "#1f77b4"),
                                ("val", epochs, val_loss, "#ff7f0e")],
                   title="Loss", ylabel="loss", log_y=True)

    charts_png("loss.png", [dict(series=loss_series, title="Loss", ylabel="loss"),
                            dict(series=acc_series, title="Accuracy", ylabel="accuracy")])

A series is `(label, xs, ys, color)`: `xs` may be None (meaning 1, 2, ..., len(ys)), `color` may
be None (a default palette colour), "#rrggbb", "#rgb" or an (r, g, b) tuple of 0..255 ints.
Points whose x or y is NaN or infinite (or y <= 0 on a log axis) are left out, breaking the
line there; a point with no drawable neighbour is drawn as a dot. Files are written atomically.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import numpy as np

from .fileio import atomic_write

__all__ = [
    "PALETTE",
    "charts_png",
    "draw_text",
    "encode_png",
    "line_chart_png",
    "nice_ticks",
    "render_charts",
    "render_line_chart",
    "text_bitmap",
    "write_png",
]

# --- Font ------------------------------------------------------------------------------------
# 5x9 cells: rows 0-6 hold capitals and digits, rows 7-8 the descenders of g j p q y , _.
# Each glyph is its rows top to bottom, two hex digits a row, 0x10 the leftmost column;
# missing rows at the bottom are blank.
GLYPH_W, GLYPH_H, ADVANCE = 5, 9, 6
_FONT_HEX = {
    ' ': "", '!': "04040404040004", '"': "0a0a0a", '#': "0a0a1f0a1f0a0a", '$': "040f140e051e04",
    '%': "18190204081303", '&': "0c12140815120d", "'": "040408", '(': "02040808080402",
    ')': "08040202020408", '*': "0004150e1504", '+': "0004041f0404", ',': "00000000000c0408",
    '-': "0000001f", '.': "00000000000c0c", '/': "000102040810", '0': "0e11131519110e",
    '1': "040c040404040e", '2': "0e11010204081f", '3': "1f02040201110e", '4': "02060a121f0202",
    '5': "1f101e0101110e", '6': "0608101e11110e", '7': "1f010204080808", '8': "0e11110e11110e",
    '9': "0e11110f01020c", ':': "000c0c000c0c", ';': "000c0c000c0408", '<': "02040810080402",
    '=': "00001f001f", '>': "08040201020408", '?': "0e110102040004", '@': "0e11010d15150e",
    'A': "0e11111f111111", 'B': "1e11111e11111e", 'C': "0e11101010110e", 'D': "1c12111111121c",
    'E': "1f10101e10101f", 'F': "1f10101e101010", 'G': "0e11101711110f", 'H': "1111111f111111",
    'I': "0e04040404040e", 'J': "0702020202120c", 'K': "11121418141211", 'L': "1010101010101f",
    'M': "111b1515111111", 'N': "11111915131111", 'O': "0e11111111110e", 'P': "1e11111e101010",
    'Q': "0e11111115120d", 'R': "1e11111e141211", 'S': "0f10100e01011e", 'T': "1f040404040404",
    'U': "1111111111110e", 'V': "11111111110a04", 'W': "1111111515150a", 'X': "11110a040a1111",
    'Y': "11110a04040404", 'Z': "1f01020408101f", '[': "0e08080808080e", '\\': "001008040201",
    ']': "0e02020202020e", '^': "040a11", '_': "000000000000001f", '`': "080402",
    'a': "00000e010f110f", 'b': "10101e1111111e", 'c': "00000e1010110e", 'd': "01010f1111110f",
    'e': "00000e111f100e", 'f': "0609081c080808", 'g': "00000f1111110f010e", 'h': "10101619111111",
    'i': "04000c0404040e", 'j': "02000602020202120c", 'k': "10101214181412", 'l': "0c04040404040e",
    'm': "00001a15151511", 'n': "00001619111111", 'o': "00000e1111110e", 'p': "00001e1111111e1010",
    'q': "00000f1111110f0101", 'r': "00001619101010", 's': "00000f100e011e", 't': "08081c08080906",
    'u': "0000111111130d", 'v': "00001111110a04", 'w': "0000111115150a", 'x': "0000110a040a11",
    'y': "0000111111110f010e", 'z': "00001f0204081f", '{': "02040408040402", '|': "04040404040404",
    '}': "08040402040408", '~': "0000081502",
}


def _glyph_table() -> np.ndarray:
    rows = np.zeros((128, GLYPH_H), dtype=np.uint8)
    for char, hexrows in _FONT_HEX.items():
        data = bytes.fromhex(hexrows)
        rows[ord(char), :len(data)] = list(data)
    bits = (rows[:, :, None] >> np.arange(GLYPH_W - 1, -1, -1)) & 1
    return bits.astype(bool)                                    # (128, 9, 5)


_GLYPHS = _glyph_table()


def text_bitmap(text: str, scale: int = 1) -> np.ndarray:
    """The text as a boolean (9 * scale, width) array; characters outside ASCII 32..126 are '?'."""
    codes = [ord(c) if 32 <= ord(c) < 127 else ord("?") for c in str(text)]
    if not codes:
        return np.zeros((GLYPH_H * scale, 0), dtype=bool)
    cells = np.zeros((len(codes), GLYPH_H, ADVANCE), dtype=bool)
    cells[:, :, :GLYPH_W] = _GLYPHS[codes]
    bitmap = cells.transpose(1, 0, 2).reshape(GLYPH_H, -1)[:, :-1]   # no gap after the last
    return np.repeat(np.repeat(bitmap, scale, axis=0), scale, axis=1)


def text_size(text: str, scale: int = 1) -> tuple[int, int]:
    """(width, height) in pixels of `text` drawn at `scale`."""
    n = len(str(text))
    return (max(n * ADVANCE - 1, 0) * scale, GLYPH_H * scale)


def draw_text(image: np.ndarray, x: int, y: int, text: str, color, scale: int = 1,
              align: str = "left", valign: str = "top", vertical: bool = False) -> None:
    """Draw text with its `align`/`valign` point at (x, y); `vertical` reads bottom to top."""
    bitmap = text_bitmap(text, scale)
    if vertical:
        bitmap = np.rot90(bitmap)
    h, w = bitmap.shape
    x -= {"left": 0, "center": w // 2, "right": w}[align]
    y -= {"top": 0, "center": h // 2, "bottom": h}[valign]
    _blit(image, bitmap, int(x), int(y), _rgb(color))


def _blit(image: np.ndarray, mask: np.ndarray, x: int, y: int, color) -> None:
    """Paint `color` where `mask` is true, with the mask's top-left at (x, y), clipped."""
    H, W = image.shape[:2]
    h, w = mask.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x0 >= x1 or y0 >= y1:
        return
    region = image[y0:y1, x0:x1]
    region[mask[y0 - y:y1 - y, x0 - x:x1 - x]] = color


# --- Colours -----------------------------------------------------------------------------------

PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
WHITE = (255, 255, 255)
TEXT = (40, 40, 40)
FRAME = (90, 90, 90)
GRID = (232, 232, 232)
LEGEND_EDGE = (200, 200, 200)


def _rgb(color) -> tuple[int, int, int]:
    if isinstance(color, str):
        digits = color.lstrip("#")
        if len(digits) == 3:
            digits = "".join(d * 2 for d in digits)
        try:
            if len(digits) != 6:
                raise ValueError
            return tuple(bytes.fromhex(digits))
        except ValueError:
            raise ValueError(f"colour {color!r} is not '#rrggbb' or '#rgb'") from None
    try:
        r, g, b = (int(c) for c in color)
    except (TypeError, ValueError):
        raise ValueError(f"colour {color!r} is not '#rrggbb' or an (r, g, b) tuple") from None
    if not all(0 <= c <= 255 for c in (r, g, b)):
        raise ValueError(f"colour {color!r} has a component outside 0..255")
    return (r, g, b)


# --- Axes: limits, 1-2-5 ticks, labels ------------------------------------------------------------

def _nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * magnitude >= raw * (1 - 1e-9):
            return m * magnitude
    return 10 * magnitude


def nice_ticks(lo: float, hi: float, target: int = 5, expand: bool = True,
               integer: bool = False) -> tuple[float, float, list[float], float]:
    """Axis limits and ticks for data in [lo, hi]: (lo, hi, ticks, step), step 1, 2 or 5 x 10^k.

    `expand` widens the limits out to whole steps; `integer` keeps the step at least 1.
    An empty or single-valued range is widened around its value first.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi - lo <= 1e-12 * max(abs(lo), abs(hi), 1e-300):
        pad = 1.0 if integer or lo == 0 else abs(lo) * 0.1
        lo, hi = lo - pad, hi + pad
    step = _nice_step(hi - lo, target)
    if integer:
        step = max(step, 1.0)
    if expand:
        lo = math.floor(lo / step + 1e-9) * step
        hi = math.ceil(hi / step - 1e-9) * step
    first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    ticks = [float(f"{k * step:.12g}") for k in range(first, last + 1)]   # 0.6, not 0.600..01
    return lo, hi, ticks, step


def _log_ticks(lo: float, hi: float, target: int) -> tuple[float, float, list[float]]:
    """Limits and ticks for a log axis over positive [lo, hi]: powers of ten, plus 2x and 5x
    when the data spans few decades."""
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        lo, hi = 0.1, 1.0
    e0, e1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    decades = e1 - e0
    multiples = (1, 2, 5) if decades <= 2 else (1,)
    every = max(1, math.ceil((decades + 1) / max(target, 2)))
    candidates = [m * 10.0 ** e for e in range(e0 - 1, e1 + 2) for m in multiples
                  if multiples != (1,) or (e - e0) % every == 0]
    below = [c for c in candidates if c <= lo * (1 + 1e-9)]
    above = [c for c in candidates if c >= hi * (1 - 1e-9)]
    lo2, hi2 = below[-1], above[0]
    if lo2 == hi2:                                   # one value, exactly on a tick
        i = candidates.index(lo2)
        lo2, hi2 = candidates[i - 1], candidates[i + 1]
    ticks = [c for c in candidates if lo2 <= c <= hi2]
    return lo2, hi2, ticks


def _format_tick(value: float, step: float | None) -> str:
    """Tick text: as many decimals as the step needs, or short scientific for huge/tiny values."""
    if step is not None and abs(value) < step * 1e-6:
        value = 0.0                                     # "0.0", not "-1.2e-17"
    if value == 0 and (step is None or not 1e-3 <= step < 1e5):
        return "0"
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        if step is None:
            return f"{value:g}"
        return f"{value:.{max(0, -math.floor(math.log10(step) + 1e-9))}f}"
    digits = 3 if step is None else max(1, math.floor(math.log10(abs(value)) + 1e-9)
                                        - math.floor(math.log10(step) + 1e-9) + 1)
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


# --- Series ------------------------------------------------------------------------------------

class _Series:
    def __init__(self, entry, index: int, log_y: bool):
        if len(entry) == 3:
            label, xs, ys = entry
            color = None
        elif len(entry) == 4:
            label, xs, ys, color = entry
        else:
            raise ValueError(f"series {index}: expected (label, xs, ys, color), "
                             f"got {len(entry)} items")
        self.label = "" if label is None else str(label)
        y = np.asarray(ys, dtype=float)
        x = np.arange(1, y.size + 1, dtype=float) if xs is None else np.asarray(xs, dtype=float)
        if y.ndim != 1 or x.ndim != 1:
            raise ValueError(f"series {self.label or index}: xs and ys must be 1-D")
        if x.size != y.size:
            raise ValueError(f"series {self.label or index}: {x.size} xs but {y.size} ys")
        self.x, self.y = x, y
        self.ok = np.isfinite(x) & np.isfinite(y)
        if log_y:
            with np.errstate(invalid="ignore"):
                self.ok &= y > 0
        self.color = PALETTE[index % len(PALETTE)] if color is None else _rgb(color)


# --- Rasterising -------------------------------------------------------------------------------

_MAX_SAMPLES = 1 << 21          # points sampled per batch of segments, to bound memory


def _stamp(layer, cx, cy, offsets, clip) -> None:
    """Mark pixels of `layer` at every centre (cx, cy) plus every (dx, dy) offset, in `clip`."""
    x0, y0, x1, y1 = clip
    width = layer.shape[1]
    for dx, dy in offsets:                       # a handful of offsets, each over all centres
        ix, iy = cx + dx, cy + dy
        inside = (ix >= x0) & (ix < x1) & (iy >= y0) & (iy < y1)
        layer.flat[iy[inside] * width + ix[inside]] = True


def _square(size: int) -> np.ndarray:
    r = np.arange(size)
    return np.stack(np.meshgrid(r, r), axis=-1).reshape(-1, 2)


def _disc(radius: float) -> np.ndarray:
    r = np.arange(-math.ceil(radius), math.ceil(radius) + 1)
    dx, dy = np.meshgrid(r, r)
    keep = dx ** 2 + dy ** 2 <= radius ** 2 + 0.5
    return np.stack([dx[keep], dy[keep]], axis=-1)


def _draw_polyline(layer, px, py, ok, clip, width: int = 2) -> None:
    """Mark segments between consecutive drawable points on `layer`, `width` pixels thick.

    Each segment is sampled at one point per pixel of its longer side, all segments at once;
    every sample stamps a width x width square. Pixel i covers [i, i + 1).
    """
    joined = ok[:-1] & ok[1:]
    x0, y0 = px[:-1][joined], py[:-1][joined]
    dx, dy = px[1:][joined] - x0, py[1:][joined] - y0
    n = np.ceil(np.maximum(np.abs(dx), np.abs(dy))).astype(np.int64) + 1
    square = _square(width)
    ends = np.cumsum(n)
    start = 0
    while start < n.size:                           # batches of at most _MAX_SAMPLES samples
        stop = max(int(np.searchsorted(ends, ends[start] - n[start] + _MAX_SAMPLES, "right")),
                   start + 1)
        nb = n[start:stop]
        seg = np.repeat(np.arange(start, stop), nb)
        first = np.repeat(np.cumsum(nb) - nb, nb)
        t = (np.arange(nb.sum()) - first) / np.maximum(n[seg] - 1, 1)
        sx = x0[seg] + t * dx[seg]
        sy = y0[seg] + t * dy[seg]
        base_x = np.ceil(sx - width / 2 - 0.5).astype(np.int64)
        base_y = np.ceil(sy - width / 2 - 0.5).astype(np.int64)
        _stamp(layer, base_x, base_y, square, clip)
        start = stop


# --- One chart ---------------------------------------------------------------------------------

MARGIN = 12          # around the whole chart
GAP = 6              # between a label and what it labels
TICK = 4             # tick mark length, outside the frame
INSET = 8            # data never touches the frame: limits sit this far inside it
MARKERS_UP_TO = 40   # series with at most this many points get a dot at each point


class _Chart:
    """A chart's series, axes and layout, worked out before anything is drawn."""

    def __init__(self, series, title="", xlabel="epoch", ylabel="", log_y=False,
                 width=800, height=500):
        if width < 160 or height < 120:
            raise ValueError(f"a chart needs at least 160 x 120 pixels, not {width} x {height}")
        self.width, self.height = int(width), int(height)
        self.title, self.xlabel, self.ylabel = str(title or ""), str(xlabel or ""), str(ylabel or "")
        self.log_y = bool(log_y)
        self.series = [_Series(entry, i, self.log_y) for i, entry in enumerate(series or [])]

        xs = np.concatenate([s.x[s.ok] for s in self.series] + [np.empty(0)])
        ys = np.concatenate([s.y[s.ok] for s in self.series] + [np.empty(0)])
        self.empty = xs.size == 0

        # Top to bottom: title, frame, tick labels, x label.
        self.top = MARGIN + (GLYPH_H * 2 + GAP + 4 if self.title else 0)
        self.bottom = self.height - (MARGIN + TICK + 3 + GLYPH_H
                                     + (GAP + GLYPH_H if self.xlabel else 0))
        span = self.bottom - self.top - 2 * INSET
        if self.log_y:
            lo, hi = (ys.min(), ys.max()) if ys.size else (math.nan, math.nan)
            self.ylo, self.yhi, self.yticks = _log_ticks(lo, hi, max(2, span // 30))
            self.ylabels = [_format_tick(v, None) for v in self.yticks]
        else:
            lo, hi = (ys.min(), ys.max()) if ys.size else (0.0, 1.0)
            self.ylo, self.yhi, self.yticks, step = nice_ticks(lo, hi, max(2, min(10, span // 45)))
            self.ylabels = [_format_tick(v, step) for v in self.yticks]

        # Left to right: y label, tick labels, frame.
        widest = max((text_size(t)[0] for t in self.ylabels), default=0)
        self.left = MARGIN + (GLYPH_H + GAP if self.ylabel else 0) + widest + 3 + TICK
        self.right = self.width - MARGIN - 10
        self._xs = xs

    def _x_axis(self):
        span = self.right - self.left - 2 * INSET
        xs = self._xs
        integer = bool(xs.size) and bool(np.all(xs == np.round(xs)))
        lo, hi = (xs.min(), xs.max()) if xs.size else (0.0, 1.0)
        self.xlo, self.xhi, self.xticks, step = nice_ticks(
            lo, hi, max(2, min(12, span // 90)), expand=False, integer=integer)
        self.xlabels = [_format_tick(v, step) for v in self.xticks]

    def _to_px(self, x, y):
        """Data to continuous pixel coordinates (pixel i spans [i, i + 1))."""
        ax0, ax1 = self.left + INSET, self.right - INSET
        ay0, ay1 = self.bottom - INSET, self.top + INSET          # y grows downwards
        px = ax0 + (np.asarray(x, dtype=float) - self.xlo) / (self.xhi - self.xlo) * (ax1 - ax0)
        y = np.asarray(y, dtype=float)
        lo, hi = self.ylo, self.yhi
        if self.log_y:
            with np.errstate(divide="ignore", invalid="ignore"):
                y, lo, hi = np.log10(y), math.log10(lo), math.log10(hi)
        py = ay0 + (y - lo) / (hi - lo) * (ay1 - ay0)
        return px + 0.5, py + 0.5

    def render(self) -> np.ndarray:
        self._x_axis()
        image = np.full((self.height, self.width, 3), 255, dtype=np.uint8)
        L, R, T, B = self.left, self.right, self.top, self.bottom
        clip = (L + 1, T + 1, R, B)                 # inside the frame

        # Grid, frame, ticks and their labels.
        xpix = [int(p) for p in self._to_px(self.xticks, np.zeros(len(self.xticks)))[0]]
        ypix = [int(p) for p in self._to_px(np.zeros(len(self.yticks)), self.yticks)[1]]
        for p in xpix:
            image[T + 1:B, p] = GRID
        for p in ypix:
            image[p, L + 1:R] = GRID
        image[T, L:R + 1] = image[B, L:R + 1] = FRAME
        image[T:B + 1, L] = image[T:B + 1, R] = FRAME
        for p, text in zip(xpix, self.xlabels):
            image[B + 1:B + 1 + TICK, p] = FRAME
            draw_text(image, p + 1, B + TICK + 3, text, TEXT, align="center")
        for p, text in zip(ypix, self.ylabels):
            image[p, L - TICK:L] = FRAME
            draw_text(image, L - TICK - 3, p + 1, text, TEXT, align="right", valign="center")

        # Titles.
        mid_x, mid_y = (L + R + 1) // 2, (T + B + 1) // 2
        if self.title:
            draw_text(image, mid_x, MARGIN, self.title, TEXT, scale=2, align="center")
        if self.xlabel:
            draw_text(image, mid_x, self.height - MARGIN, self.xlabel, TEXT,
                      align="center", valign="bottom")
        if self.ylabel:
            draw_text(image, MARGIN, mid_y, self.ylabel, TEXT, valign="center", vertical=True)

        # The data.
        drawn = np.zeros(image.shape[:2], dtype=bool)
        for s in self.series:
            px, py = self._to_px(s.x, s.y)
            ok = s.ok
            layer = np.zeros(image.shape[:2], dtype=bool)
            _draw_polyline(layer, px, py, ok, clip)
            alone = ok.copy()                          # points with no drawable neighbour
            alone[1:] &= ~ok[:-1]
            alone[:-1] &= ~ok[1:]
            dots = ok if ok.sum() <= MARKERS_UP_TO else alone
            if dots.any():
                cx = np.floor(px[dots]).astype(np.int64)
                cy = np.floor(py[dots]).astype(np.int64)
                _stamp(layer, cx, cy, _disc(2.5), clip)
            image[layer] = s.color
            drawn |= layer
        if self.empty:
            draw_text(image, mid_x, mid_y, "no data", FRAME, scale=2, align="center",
                      valign="center")
        self._legend(image, drawn)
        return image

    def _legend(self, image, drawn) -> None:
        """Swatch and label per series, in the inside corner that hides the least data."""
        entries = [s for s in self.series if s.label]
        if not entries:
            return
        row, swatch, pad = GLYPH_H + 5, 20, 7
        w = pad + swatch + GAP + max(text_size(s.label)[0] for s in entries) + pad
        h = pad + row * len(entries) - 5 + pad
        inner = 5
        corners = [(self.right - inner - w, self.top + inner + 1),       # top right
                   (self.left + inner + 1, self.top + inner + 1),        # top left
                   (self.right - inner - w, self.bottom - inner - h),    # bottom right
                   (self.left + inner + 1, self.bottom - inner - h)]     # bottom left
        cover = [drawn[max(y, 0):y + h, max(x, 0):x + w].sum() for x, y in corners]
        x, y = corners[int(np.argmin(cover))]
        x, y = max(x, 0), max(y, 0)
        image[y:y + h, x:x + w] = WHITE
        image[y, x:x + w] = image[y + h - 1, x:x + w] = LEGEND_EDGE
        image[y:y + h, x] = image[y:y + h, x + w - 1] = LEGEND_EDGE
        for i, s in enumerate(entries):
            ty = y + pad + i * row
            image[ty + 2:ty + 5, x + pad:x + pad + swatch] = s.color
            draw_text(image, x + pad + swatch + GAP, ty, s.label, TEXT)


def render_line_chart(series, title: str = "", xlabel: str = "epoch", ylabel: str = "",
                      log_y: bool = False, width: int = 800, height: int = 500) -> np.ndarray:
    """Draw a line chart; returns an (height, width, 3) uint8 RGB image."""
    return _Chart(series, title, xlabel, ylabel, log_y, width, height).render()


def line_chart_png(path, series, title: str = "", xlabel: str = "epoch", ylabel: str = "",
                   log_y: bool = False, width: int = 800, height: int = 500) -> None:
    """Draw a line chart and write it to `path` as a PNG, atomically."""
    write_png(path, render_line_chart(series, title, xlabel, ylabel, log_y, width, height))


_PANEL_KEYS = {"series", "title", "xlabel", "ylabel", "log_y", "height"}


def render_charts(panels, width: int = 800, panel_height: int = 400) -> np.ndarray:
    """Charts stacked top to bottom, one per panel dict (series, title, xlabel, ylabel, log_y,
    height); their frames share one left edge so the x axes line up."""
    charts = []
    for i, panel in enumerate(panels):
        unknown = set(panel) - _PANEL_KEYS
        if unknown:
            raise ValueError(f"panel {i}: unknown keys {sorted(unknown)}; "
                             f"expected some of {sorted(_PANEL_KEYS)}")
        args = dict(panel)
        args.setdefault("series", [])
        args.setdefault("height", panel_height)
        charts.append(_Chart(width=width, **args))
    if not charts:
        raise ValueError("charts need at least one panel")
    left = max(c.left for c in charts)
    for c in charts:
        c.left = left
    return np.concatenate([c.render() for c in charts], axis=0)


def charts_png(path, panels, width: int = 800, panel_height: int = 400) -> None:
    """Stacked charts (see render_charts) written to `path` as a PNG, atomically."""
    write_png(path, render_charts(panels, width, panel_height))


# --- PNG ---------------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def encode_png(image) -> bytes:
    """PNG bytes of an (H, W, 3) RGB or (H, W) grey uint8 image (8 bits, no interlace)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"PNG images here are uint8, not {image.dtype}")
    if image.ndim == 2:
        colour_type, channels = 0, 1
    elif image.ndim == 3 and image.shape[2] == 3:
        colour_type, channels = 2, 3
    else:
        raise ValueError(f"expected an (H, W, 3) or (H, W) image, got shape {image.shape}")
    h, w = image.shape[:2]
    if h == 0 or w == 0:
        raise ValueError("a PNG image needs at least one pixel")
    rows = np.zeros((h, 1 + w * channels), dtype=np.uint8)      # filter byte 0 on each row
    rows[:, 1:] = image.reshape(h, w * channels)
    header = struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)
    return (PNG_SIGNATURE + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + _chunk(b"IEND", b""))


def write_png(path, image) -> None:
    """Encode `image` and write it to `path` atomically."""
    atomic_write(Path(path), encode_png(image))
