"""Images, folders and globs of frames: luma kept, sizes kept, names and order kept, batching."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from mediautil import (
    bt601_luma,
    leftovers,
    luma_planes,
    pattern_frame,
    probe,
    read_rgb,
    write_gray_png,
)

from streamcolor.api import EncodeOptions, colorize_path
from streamcolor.color import colorfulness
from streamcolor.engine.pipeline import Pipeline
from streamcolor.io.sinks import FolderSink
from streamcolor.io.sources import FolderSource, natural_key, open_source
from streamcolor.model.colorizer import Colorizer


def mid_gray(i: int, w: int, h: int) -> np.ndarray:
    """A pattern frame squeezed into 70..180, where no plausible chroma leaves the RGB gamut."""
    g = pattern_frame(i, w, h).astype(np.float32)
    scale = 110.0 / max(float(g.max() - g.min()), 1.0)
    return np.rint(70 + (g - g.min()) * scale).astype(np.uint8)


@pytest.mark.parametrize(("w", "h"), [(96, 64), (65, 49), (160, 96)])
def test_gray_png_luma_kept_and_size_kept(colorizer, tmp_path, w, h):
    gray = mid_gray(2, w, h)
    src = write_gray_png(tmp_path / "in.png", gray)
    out = tmp_path / "out.png"
    result = colorize_path(src, out, colorizer)
    assert result.frames == 1 and result.output == out
    rgb = read_rgb(out)
    assert rgb.shape == (h, w, 3)
    assert np.abs(bt601_luma(rgb) - gray).max() <= 1.0
    assert colorfulness(rgb) > 3.0  # the model really added colour
    assert not leftovers(tmp_path)


def test_colour_png_input_uses_bt601_luma(colorizer, tmp_path, rng):
    gray = mid_gray(1, 64, 48).astype(np.float64)
    # a colourful input whose BT.601 luma stays in 60..190
    tint = rng.uniform(-20, 20, size=(48, 64, 3))
    tint -= (tint @ np.array([0.299, 0.587, 0.114]))[..., None]  # luma-neutral tint
    rgb_in = np.clip(np.rint(gray[..., None] + tint), 0, 255).astype(np.uint8)
    src = tmp_path / "colour.png"
    assert cv2.imwrite(str(src), rgb_in[..., ::-1])
    out = tmp_path / "out.png"
    colorize_path(src, out, colorizer)
    expected = np.rint(bt601_luma(rgb_in))
    assert np.abs(bt601_luma(read_rgb(out)) - expected).max() <= 1.0


def test_colorize_numpy_api(colorizer):
    gray = mid_gray(4, 80, 60)
    rgb = colorizer.colorize(gray)
    assert rgb.shape == (60, 80, 3) and rgb.dtype == np.uint8
    assert np.abs(bt601_luma(rgb) - gray).max() <= 1.0
    assert colorfulness(rgb) > 3.0
    rgb2 = colorizer.colorize(np.repeat(gray[..., None], 3, axis=2))
    assert np.array_equal(rgb, rgb2)
    # the sample types predict() takes are the ones colorize() takes; others are a TypeError
    rgbf = colorizer.colorize(gray.astype(np.float32) / 255.0)
    assert rgbf.dtype == np.float32 and np.abs(rgbf * 255.0 - rgb).max() <= 1.0
    with pytest.raises(TypeError, match="int32"):
        colorizer.colorize(gray.astype(np.int32))


def test_16bit_png_kept_16bit(colorizer, tmp_path):
    gray8 = mid_gray(0, 64, 48)
    gray16 = (gray8.astype(np.uint16) * 257)
    src = tmp_path / "deep.png"
    assert cv2.imwrite(str(src), gray16)
    out = tmp_path / "deep_out.png"
    colorize_path(src, out, colorizer)
    img = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert img.dtype == np.uint16 and img.shape == (48, 64, 3)
    luma = img[..., ::-1].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(luma - gray16).max() <= 257


def test_batch_size_invariance_predict(tiny_weights, colorizer):
    c1 = Colorizer(str(tiny_weights), precision="fp32", batch_size=1)
    assert (c1.batch_size, colorizer.batch_size) == (1, 4)
    frames = [pattern_frame(i, 96, 64).astype(np.float32) / 255.0 for i in range(7)]
    a = c1.predict_batched(frames)
    b = colorizer.predict_batched(frames)
    assert a.shape == b.shape == (7, *colorizer.render_size(64, 96), 2)
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    assert np.abs(a).max() > 0.02  # not all gray
    # frames really differ from each other (a batch mix-up would show)
    assert np.abs(a[0] - a[3]).max() > 1e-3


def _frame_folder(folder, names, w=64, h=48):
    folder.mkdir()
    grays = {}
    for k, name in enumerate(names):
        grays[name] = mid_gray(k * 7, w, h)
        write_gray_png(folder / name, grays[name])
    return grays


def test_pipeline_batch_size_gives_identical_images(tiny_weights, tmp_path):
    names = [f"f{i}.png" for i in range(1, 8)]
    grays = _frame_folder(tmp_path / "in", names)
    outs = {}
    for bs in (1, 3, 4):
        c = Colorizer(str(tiny_weights), precision="fp32", batch_size=bs)
        out = tmp_path / f"out{bs}"
        res = Pipeline(c).run(FolderSource(tmp_path / "in"), FolderSink(out))
        assert res.frames == len(names) and res.complete
        outs[bs] = {n: read_rgb(out / n) for n in names}
    for n in names:
        assert np.array_equal(outs[1][n], outs[3][n]), n
        assert np.array_equal(outs[1][n], outs[4][n]), n
        assert np.abs(bt601_luma(outs[1][n]) - grays[n]).max() <= 1.0


def test_natural_key_order():
    names = ["frame10.png", "frame2.png", "Frame1.png", "frame100.png", "frame9.png"]
    assert sorted(names, key=natural_key) == \
        ["Frame1.png", "frame2.png", "frame9.png", "frame10.png", "frame100.png"]


def test_folder_natural_sort_and_names_kept(colorizer, tmp_path):
    names = ["frame10.png", "frame2.png", "frame1.png", "frame100.jpg", "frame3.PNG"]
    grays = _frame_folder(tmp_path / "in", names)
    (tmp_path / "in" / "notes.txt").write_text("not a frame")
    (tmp_path / "in" / "sub.png").mkdir()  # a folder with an image suffix is not a frame
    src = FolderSource(tmp_path / "in")
    assert [p.name for p in src.files] == \
        ["frame1.png", "frame2.png", "frame3.PNG", "frame10.png", "frame100.jpg"]
    assert src.info.frame_count == 5
    out = tmp_path / "out"
    result = colorize_path(tmp_path / "in", out, colorizer)
    assert result.frames == 5
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    for n in names:
        rgb = read_rgb(out / n)
        tol = 1.0 if not n.endswith(".jpg") else 12.0
        err = np.abs(bt601_luma(rgb) - grays[n])
        assert (err.max() if tol == 1.0 else err.mean()) <= tol, n  # each file got its own frame
    assert not leftovers(out)


def test_folder_to_video_in_natural_order(colorizer, tmp_path):
    names = [f"img{i}.png" for i in (10, 2, 1, 11, 3)]
    grays = _frame_folder(tmp_path / "in", names)
    out = tmp_path / "seq.mp4"
    colorize_path(tmp_path / "in", out, colorizer, encode=EncodeOptions(crf=0, fps=12))
    info = probe(out)
    assert info.frames == 5
    assert info.times == pytest.approx([i / 12 for i in range(5)], abs=1e-6)
    planes = luma_planes(out)
    for n, y in zip(["img1.png", "img2.png", "img3.png", "img10.png", "img11.png"], planes,
                    strict=True):
        assert np.array_equal(y, grays[n]), n


def test_glob_input(colorizer, tmp_path):
    grays = _frame_folder(tmp_path / "in", ["a10.png", "a2.png", "b1.png", "a1.png"])
    pattern = str(tmp_path / "in" / "a*.png")
    src = open_source(pattern)
    assert isinstance(src, FolderSource)
    assert [p.name for p in src.files] == ["a1.png", "a2.png", "a10.png"]
    out = tmp_path / "out"
    result = colorize_path(pattern, out, colorizer)
    assert result.frames == 3
    assert sorted(p.name for p in out.iterdir()) == ["a1.png", "a10.png", "a2.png"]
    for n in ("a1.png", "a2.png", "a10.png"):
        assert np.abs(bt601_luma(read_rgb(out / n)) - grays[n]).max() <= 1.0


def test_folder_of_mixed_sizes_keeps_each_size(colorizer, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    sizes = {"f1.png": (64, 48), "f2.png": (64, 48), "f3.png": (65, 49), "f4.png": (64, 48),
             "f5.png": (96, 64), "f6.png": (96, 64)}
    grays = {n: mid_gray(k, w, h) for k, (n, (w, h)) in enumerate(sizes.items())}
    for n, g in grays.items():
        write_gray_png(folder / n, g)
    out = tmp_path / "out"
    assert colorize_path(folder, out, colorizer).frames == 6
    for n, (w, h) in sizes.items():
        rgb = read_rgb(out / n)
        assert rgb.shape == (h, w, 3), n
        assert np.abs(bt601_luma(rgb) - grays[n]).max() <= 1.0, n
