"""Sources: what each input kind opens as, what it reports, and how it fails."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from mediautil import make_video, pattern_frame, write_gray_png

from streamcolor.errors import InputNotFoundError, InvalidInputError, UnsupportedURLError
from streamcolor.io.sources import FolderSource, ImageSource, VideoSource, open_source


def test_video_source_info_and_frames(media):
    src = open_source(media["ntsc"])
    try:
        assert isinstance(src, VideoSource)
        info = src.info
        assert (info.kind, info.width, info.height, info.frame_count) == ("video", 64, 48, 10)
        assert info.rate == Fraction(30000, 1001) and not info.live
        frames = list(src)
    finally:
        src.close()
    assert [f.index for f in frames] == list(range(10))
    assert all(f.luma.shape == (48, 64) and f.luma.dtype == np.uint8 for f in frames)
    assert all(not f.full_range for f in frames)  # yuv420p from x264: TV range
    assert [f.time for f in frames] == pytest.approx([i * 1001 / 30000 for i in range(10)],
                                                     abs=1e-6)
    assert all(b.pts > a.pts for a, b in itertools.pairwise(frames))


def test_vfr_frame_count_and_mkv_estimate(media, tmp_path):
    src = open_source(media["vfr"])
    assert src.info.frame_count == 9 and len(list(src)) == 9
    src.close()
    mkv = make_video(tmp_path / "c.mkv", frames=12)  # mkv: count estimated from duration
    src = open_source(mkv)
    assert src.info.frame_count == 12 and len(list(src)) == 12
    src.close()


def test_full_range_flag(media):
    src = open_source(media["full"])
    assert all(f.full_range for f in src)
    src.close()


def test_image_and_folder_sources(tmp_path):
    g = pattern_frame(0, 40, 30)
    img = write_gray_png(tmp_path / "a.png", g)
    src = open_source(img)
    assert isinstance(src, ImageSource)
    assert (src.info.kind, src.info.width, src.info.height, src.info.frame_count) == \
        ("image", 40, 30, 1)
    (frame,) = list(src)
    assert np.array_equal(frame.luma, g) and frame.name == "a.png" and frame.full_range
    assert isinstance(open_source(tmp_path), FolderSource)
    assert isinstance(open_source(str(tmp_path / "*.png")), FolderSource)


def test_colour_image_luma_is_bt601(tmp_path):
    import cv2

    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 255, 0)
    rgb[0, 2] = (0, 0, 255)
    rgb[1] = (200, 100, 50)
    p = tmp_path / "c.png"
    cv2.imwrite(str(p), rgb[..., ::-1])
    (frame,) = list(open_source(p))
    assert frame.luma.tolist() == [[76, 150, 29], [124, 124, 124]]  # 124.2 -> 124


def test_source_errors(tmp_path):
    with pytest.raises(InputNotFoundError):
        open_source(tmp_path / "nope.mp4")
    with pytest.raises(InputNotFoundError):
        open_source(tmp_path / "nodir")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG but not really")
    with pytest.raises(InvalidInputError, match=r"bad\.png"):
        open_source(bad)
    with pytest.raises(UnsupportedURLError):
        open_source("smb://user:pw@host/share/x.mp4")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no frames here")
    with pytest.raises(InvalidInputError, match="zero frames"):
        open_source(empty)
    with pytest.raises(InvalidInputError, match="zero frames"):
        open_source(str(tmp_path / "*.jpg"))


def test_corrupt_frame_in_folder_is_one_line_error(tmp_path, tiny_weights, capsys,
                                                   restore_logging):
    from streamcolor import cli

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (1, 2, 3):
        write_gray_png(folder / f"f{i}.png", pattern_frame(i, 64, 48))
    (folder / "f4.png").write_bytes(b"garbage")
    rc = cli.main(["colorize", str(folder), "-o", str(tmp_path / "out.mp4"), "--model",
                   str(tiny_weights), "-q"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc == 1 and len(err) == 1
    assert err[0].startswith("streamcolor: error:") and str(folder / "f4.png") in err[0]
    assert not (tmp_path / "out.mp4").exists()
