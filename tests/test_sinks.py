"""Sinks with a constant-chroma stand-in model: exact chroma levels, ranges and file names."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from mediautil import chroma_planes, leftovers, luma_planes, make_video, read_rgb, write_gray_png

from streamcolor.api import EncodeOptions, colorize_path
from streamcolor.color import limited_to_full_luma, ycbcr_to_rgb
from streamcolor.io.atomic import partial_path_for, temp_path_for


class ConstantChroma:
    """Duck-typed colorizer: every pixel gets chroma (cb, cr) at a 32x32 render."""

    batch_size = 3

    def __init__(self, cb: float, cr: float) -> None:
        self.value = np.array([cb, cr], np.float32)
        self.frames_seen = 0

    def predict(self, lumas, *args, **kwargs):
        self.frames_seen += len(lumas)
        return np.broadcast_to(self.value, (len(lumas), 32, 32, 2)).copy()


@pytest.mark.parametrize(
    ("pix_fmt", "cb", "cr", "u", "v"),
    [
        ("yuv420p", 0.5, -0.5, 240, 16),  # limited range: chroma 16..240
        ("yuv420p", 0.1, -0.2, 150, 83),
        ("yuvj420p", 0.5, -0.5, 255, 0),  # full range: 0..255
        ("yuvj420p", 0.1, -0.2, 154, 77),
        ("yuv444p", 0.0, 0.0, 128, 128),
    ],
)
def test_video_chroma_levels_exact(tmp_path, pix_fmt, cb, cr, u, v):
    src = make_video(tmp_path / "in.mp4", frames=5, pix_fmt=pix_fmt)
    out = tmp_path / "out.mp4"
    stub = ConstantChroma(cb, cr)
    res = colorize_path(src, out, stub, encode=EncodeOptions(crf=0))
    assert res.frames == stub.frames_seen == 5
    planes = chroma_planes(out)
    assert len(planes) == 5
    for p in planes:
        assert (p[0] == u).all() and (p[1] == v).all(), (np.unique(p[0]), np.unique(p[1]))
    for a, b in zip(luma_planes(src), luma_planes(out), strict=True):
        assert np.array_equal(a, b)


def test_image_zero_chroma_is_exactly_gray(tmp_path):
    gray = np.random.default_rng(3).integers(0, 256, (49, 65), dtype=np.uint8)
    src = write_gray_png(tmp_path / "g.png", gray)
    colorize_path(src, tmp_path / "o.png", ConstantChroma(0.0, 0.0))
    rgb = read_rgb(tmp_path / "o.png")
    assert (rgb == gray[..., None]).all()


def test_image_constant_chroma_matches_ycbcr(tmp_path):
    gray = np.tile(np.linspace(60, 190, 80).astype(np.uint8), (30, 1))
    src = write_gray_png(tmp_path / "g.png", gray)
    colorize_path(src, tmp_path / "o.png", ConstantChroma(-0.1, 0.15))
    rgb = read_rgb(tmp_path / "o.png").astype(np.float64)
    ycc = np.stack([gray / 255.0, np.full(gray.shape, -0.1), np.full(gray.shape, 0.15)], -1)
    expected = np.clip(ycbcr_to_rgb(ycc) * 255.0, 0, 255)
    assert np.abs(rgb - expected).max() <= 1.0
    assert (rgb[..., 0] > rgb[..., 2]).all()  # positive Cr, negative Cb: reddish


def test_video_to_folder_names_and_full_range_luma(tmp_path):
    src = make_video(tmp_path / "in.mp4", frames=5)  # limited (TV) range
    out = tmp_path / "frames"
    colorize_path(src, out, ConstantChroma(0.0, 0.0))
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"frame_{i:06d}.png" for i in range(1, 6)]
    for name, y in zip(names, luma_planes(src), strict=True):
        rgb = read_rgb(out / name)
        assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
        # TV-range luma expanded to full range for the image
        assert np.abs(rgb[..., 0].astype(int) - limited_to_full_luma(y).astype(int)).max() <= 1
    assert not leftovers(out)


def test_image_to_folder_output(tmp_path):
    src = write_gray_png(tmp_path / "pic.png", np.full((20, 30), 99, np.uint8))
    out = tmp_path / "outdir"
    colorize_path(src, out, ConstantChroma(0.0, 0.0))
    assert [p.name for p in out.iterdir()] == ["pic.png"]


def test_file_url_input(tmp_path):
    src = make_video(tmp_path / "in.mp4", frames=4)
    out = tmp_path / "out.mp4"
    res = colorize_path(f"file://{src}", out, ConstantChroma(0.0, 0.0))
    assert res.frames == 4 and out.exists()


def test_temp_and_partial_names(tmp_path):
    final = tmp_path / "movie.final.mp4"
    tmp = temp_path_for(final)
    assert tmp.parent == final.parent and tmp.name.startswith(".movie.final.tmp-")
    assert tmp.suffix == ".mp4"
    assert partial_path_for(final) == tmp_path / "movie.final.partial.mp4"


def test_rate_used_for_frame_folder_video(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    for i in range(4):
        write_gray_png(folder / f"{i}.png", np.full((16, 16), 40 * i, np.uint8))
    out = tmp_path / "o.mkv"
    colorize_path(folder, out, ConstantChroma(0.0, 0.0),
                  encode=EncodeOptions(crf=0, fps=Fraction(30000, 1001)))
    with av.open(str(out)) as c:
        times = [float(f.pts * f.time_base) for f in c.decode(video=0)]
    assert times == pytest.approx([i * 1001 / 30000 for i in range(4)], abs=1e-3)
