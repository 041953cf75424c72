"""wiregrad.core.plot_png: PNG encoding, line charts, ticks, font, gaps, legend, speed, atomic writes."""

import math
import os
import struct
import time
import zlib

import numpy as np
import pytest
from wiregrad.core import plot_png
from wiregrad.core.plot_png import (
    charts_png,
    encode_png,
    line_chart_png,
    nice_ticks,
    render_charts,
    render_line_chart,
    text_bitmap,
)

BLUE, ORANGE, GREEN, PURPLE = (31, 119, 180), (255, 127, 14), (44, 160, 44), (148, 103, 189)


def decode_png(data: bytes) -> np.ndarray:
    """A small decoder for what encode_png writes: 8-bit RGB or grey, filter 0, no interlace.
    Checks the signature, every chunk's CRC, the IHDR fields and the inflated size."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks.append((kind, body))
        pos += 12 + length
    assert pos == len(data)
    assert chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    width, height, depth, colour, compression, filtering, interlace = \
        struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, compression, filtering, interlace) == (8, 0, 0, 0)
    channels = {0: 1, 2: 3}[colour]
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(raw) == height * (1 + width * channels)
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, 1 + width * channels)
    assert not rows[:, 0].any()                     # filter type 0 on every row
    pixels = rows[:, 1:].reshape(height, width, channels)
    return pixels[:, :, 0] if channels == 1 else pixels


def colour_mask(image, colour) -> np.ndarray:
    return np.all(image == np.array(colour, dtype=np.uint8), axis=-1)


# --- PNG ---------------------------------------------------------------------------------------

def test_encode_png_round_trips_rgb_and_grey():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(7, 13, 3), dtype=np.uint8)
    assert np.array_equal(decode_png(encode_png(rgb)), rgb)
    grey = rng.integers(0, 256, size=(5, 3), dtype=np.uint8)
    assert np.array_equal(decode_png(encode_png(grey)), grey)


@pytest.mark.parametrize("image", [np.zeros((4, 4, 3), dtype=float), np.zeros((4, 4, 4), np.uint8),
                                   np.zeros((0, 4, 3), np.uint8), np.zeros(5, np.uint8)])
def test_encode_png_refuses_what_it_cannot_write(image):
    with pytest.raises(ValueError):
        encode_png(image)


def test_line_chart_png_writes_the_rendered_image(tmp_path):
    series = [("train", [1, 2, 3], [1.0, 0.5, 0.25], "#1f77b4")]
    path = tmp_path / "loss.png"
    line_chart_png(path, series, title="Loss", ylabel="loss", width=640, height=400)
    image = decode_png(path.read_bytes())
    assert image.shape == (400, 640, 3)
    assert np.array_equal(image, render_line_chart(series, title="Loss", ylabel="loss",
                                                   width=640, height=400))


# --- What the chart shows ----------------------------------------------------------------------

def test_chart_is_white_with_lines_legend_text_and_grid():
    epochs = np.arange(1, 21)
    image = render_line_chart([("train", epochs, np.exp(-epochs / 5), BLUE),
                               ("val", epochs, np.exp(-epochs / 6) + 0.1, ORANGE)],
                              title="Loss", ylabel="loss")
    assert image.shape == (500, 800, 3) and image.dtype == np.uint8
    assert colour_mask(image, (255, 255, 255)).mean() > 0.7         # mostly white
    assert colour_mask(image, BLUE).sum() > 500                      # 2 px lines
    assert colour_mask(image, ORANGE).sum() > 500
    assert colour_mask(image, plot_png.TEXT).sum() > 200              # labels and title
    assert colour_mask(image, plot_png.GRID).sum() > 1000
    assert colour_mask(image[:40], plot_png.TEXT).any()               # title at the top


def test_legend_shows_each_labelled_series_colour_even_without_data():
    image = render_line_chart([("train", [1, 2, 3], [3.0, 2.0, 1.0], BLUE),
                               ("nothing yet", [], [], PURPLE)])
    swatch = colour_mask(image, PURPLE)
    assert swatch.sum() >= 20                                         # the legend swatch
    rows, cols = np.nonzero(swatch)
    assert np.ptp(rows) < 5 and np.ptp(cols) < 25                          # and nothing else


def test_unlabelled_series_get_no_legend():
    with_label = render_line_chart([("a", [1, 2], [1.0, 2.0], BLUE)])
    without = render_line_chart([("", [1, 2], [1.0, 2.0], BLUE)])
    assert colour_mask(with_label, plot_png.LEGEND_EDGE).sum() > 50
    assert not colour_mask(without, plot_png.LEGEND_EDGE).any()


def test_legend_avoids_the_corner_the_data_is_in():
    x = np.arange(1, 51)
    image = render_line_chart([("accuracy", x, 1 - np.exp(-x / 8), GREEN)])   # fills top right
    rows, cols = np.nonzero(colour_mask(image, plot_png.LEGEND_EDGE))
    assert cols.mean() < 400 or rows.mean() > 250


def test_nan_and_inf_leave_gaps():
    x = np.arange(1, 11, dtype=float)
    y = x.copy()
    y[4:6] = np.nan                                # points 5 and 6 missing
    y[8] = np.inf
    image = render_line_chart([("", x, y, BLUE)])
    cols = np.flatnonzero(colour_mask(image, BLUE).any(axis=0))
    gaps = np.diff(cols)
    assert (gaps > 40).sum() == 2                  # 4 -> 7 and 8 -> 10 are not joined
    assert gaps.max() > 150


def test_nan_in_xs_is_a_gap_too_and_all_nan_draws_nothing():
    image = render_line_chart([("", [1, np.nan, 3], [1.0, 2.0, 3.0], BLUE),
                               ("", [1, 2], [np.nan, np.nan], ORANGE)])
    assert colour_mask(image, BLUE).sum() < 60      # two dots, no line
    assert not colour_mask(image, ORANGE).any()


def test_a_single_point_is_a_dot():
    image = render_line_chart([("", [3], [0.5], GREEN)])
    rows, cols = np.nonzero(colour_mask(image, GREEN))
    assert 9 <= rows.size <= 49
    assert np.ptp(rows) <= 6 and np.ptp(cols) <= 6


def test_constant_series_is_a_flat_line_in_the_middle():
    image = render_line_chart([("", np.arange(1, 101), np.full(100, 0.7), BLUE)])
    rows, cols = np.nonzero(colour_mask(image, BLUE))
    assert np.ptp(rows) <= 2                         # 2 px thick, no markers at 100 points
    assert np.ptp(cols) > 600
    assert 150 < rows.mean() < 350


def test_empty_and_missing_series_render():
    for series in ([], None, [("empty", [], [], None)]):
        image = render_line_chart(series, title="Nothing")
        assert image.shape == (500, 800, 3)


def test_log_axis_drops_values_that_are_not_positive():
    x = np.arange(1, 101)
    image = render_line_chart([("", x, 10.0 ** (-x / 25), BLUE), ("", [1, 2, 3], [-1, 0, 1], GREEN)],
                              log_y=True)
    assert colour_mask(image, BLUE).sum() > 500
    assert 9 <= colour_mask(image, GREEN).sum() <= 49   # only y = 1 can be drawn


def test_series_can_omit_xs_and_colour():
    image = render_line_chart([("loss", None, [3.0, 2.0, 1.0])])
    assert colour_mask(image, plot_png.PALETTE[0]).sum() > 100


@pytest.mark.parametrize("series", [[("a", [1, 2], [1.0])], [("a", [[1, 2]], [[1.0, 2.0]], None)],
                                    [("a", [1], [1.0], "#12345")], [("a", [1], [1.0], (0, 0, 300))],
                                    [("a", [1])]])
def test_bad_series_are_refused(series):
    with pytest.raises(ValueError):
        render_line_chart(series)


def test_ten_thousand_points_render_quickly():
    rng = np.random.default_rng(0)
    series = [("noisy", None, rng.normal(size=10_000), BLUE),
              ("walk", None, np.cumsum(rng.normal(size=10_000)) / 30, ORANGE)]
    render_line_chart(series)                       # warm up
    start = time.perf_counter()
    image = render_line_chart(series)
    assert time.perf_counter() - start < 1.0
    assert colour_mask(image, BLUE).sum() > 10_000


# --- Stacked panels ----------------------------------------------------------------------------

def test_charts_stack_panels_and_line_up_their_frames(tmp_path):
    x = np.arange(1, 11)
    panels = [{"series": [("loss", x, 1 / x, BLUE)], "title": "Loss", "ylabel": "loss", "log_y": True},
              {"series": [("accuracy", x, 1 - 1 / x, GREEN)], "title": "Accuracy",
                   "ylabel": "accuracy (%)", "height": 300}]
    image = render_charts(panels, width=700)
    assert image.shape == (400 + 300, 700, 3)
    assert colour_mask(image[:400], BLUE).any() and colour_mask(image[400:], GREEN).any()
    frame = colour_mask(image, plot_png.FRAME)
    left_edges = [np.flatnonzero(frame[part].sum(axis=0) > 100)[0]
                  for part in (slice(0, 400), slice(400, 700))]
    assert left_edges[0] == left_edges[1]
    charts_png(tmp_path / "loss.png", panels, width=700)
    assert np.array_equal(decode_png((tmp_path / "loss.png").read_bytes()), image)


def test_charts_refuse_unknown_panel_keys_and_no_panels():
    with pytest.raises(ValueError, match="colour"):
        render_charts([{"series": [], "colour": "red"}])
    with pytest.raises(ValueError):
        render_charts([])


# --- Ticks and text ----------------------------------------------------------------------------

@pytest.mark.parametrize("lo,hi", [(0.0, 1.0), (0.05, 2.3), (-3.2, 170.0), (1e-6, 3e-6),
                                   (0.7, 0.7), (0.0, 0.0), (12345.0, 98765.0)])
def test_nice_ticks_are_1_2_5_steps_covering_the_data(lo, hi):
    lo2, hi2, ticks, step = nice_ticks(lo, hi, target=5)
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)
    assert any(math.isclose(mantissa, m) for m in (1, 2, 5))
    assert lo2 <= lo and hi2 >= hi and lo2 < hi2
    assert 2 <= len(ticks) <= 11
    assert np.allclose(np.diff(ticks), step)
    assert math.isclose(ticks[0], lo2, abs_tol=step * 1e-6)


def test_integer_axes_never_step_below_one():
    _, _, ticks, step = nice_ticks(1, 3, target=10, expand=False, integer=True)
    assert step == 1 and ticks == [1, 2, 3]


def test_tick_labels_are_short():
    assert plot_png._format_tick(0.6000000000000001, 0.2) == "0.6"
    assert plot_png._format_tick(2.0, 0.5) == "2.0"
    assert plot_png._format_tick(40, 10) == "40"
    assert plot_png._format_tick(-1e-17, 0.5) == "0.0"
    assert plot_png._format_tick(1e-5, None) == "1e-5"
    assert plot_png._format_tick(250000, 50000) == "2.5e5"


def test_font_has_a_glyph_for_every_printable_character():
    for code in range(33, 127):
        assert text_bitmap(chr(code)).any(), chr(code)
    assert not text_bitmap(" ").any()
    assert text_bitmap("abc").shape == (9, 17)
    assert text_bitmap("abc", scale=2).shape == (18, 34)
    assert np.array_equal(text_bitmap("é"), text_bitmap("?"))


# --- Atomic writes -----------------------------------------------------------------------------

def test_writing_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "loss.png"
    line_chart_png(path, [("a", [1, 2], [2.0, 1.0], BLUE)])
    line_chart_png(path, [("a", [1, 2, 3], [2.0, 1.0, 0.5], BLUE)])     # overwrite
    assert os.listdir(tmp_path) == ["loss.png"]
    assert decode_png(path.read_bytes()).shape == (500, 800, 3)


def test_a_failed_write_keeps_the_old_file_and_cleans_up(tmp_path, monkeypatch):
    path = tmp_path / "loss.png"
    path.write_bytes(b"old")

    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        line_chart_png(path, [("a", [1, 2], [2.0, 1.0], BLUE)])
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["loss.png"]
