"""Video files end to end: luma kept, frames and timestamps kept, audio remuxed, sizes kept."""

from __future__ import annotations

import av
import numpy as np
import pytest
from mediautil import chroma_planes, leftovers, luma_planes, probe

from streamcolor.api import EncodeOptions, colorize_path

LOSSLESS = EncodeOptions(crf=0)


def _colorize(src, out, colorizer, encode=LOSSLESS):
    result = colorize_path(src, out, colorizer, encode=encode)
    assert result.complete and result.output == out and out.exists()
    assert not leftovers(out.parent)
    return result


def test_luma_kept_exactly_with_lossless_encode(media, colorizer, tmp_path):
    out = tmp_path / "out.mp4"
    result = _colorize(media["plain"], out, colorizer)
    yi, yo = luma_planes(media["plain"]), luma_planes(out)
    assert result.frames == len(yi) == len(yo) == 8
    for a, b in zip(yi, yo, strict=True):
        assert a.shape == b.shape == (48, 64)
        assert np.array_equal(a, b)
    # ... and the output really is coloured (the chroma planes are not all neutral 128)
    ch = chroma_planes(out)
    assert max(np.abs(c - 128).max() for c in ch) >= 8
    assert np.mean([np.abs(c - 128).mean() for c in ch]) > 1.0
    with av.open(str(out)) as c:
        vs = c.streams.video[0]
        assert vs.codec_context.name == "h264"
        assert vs.codec_context.format.name == "yuv420p"


def test_luma_kept_with_default_quality(media, colorizer, tmp_path):
    out = tmp_path / "out.mp4"
    _colorize(media["plain"], out, colorizer, encode=EncodeOptions())
    yi, yo = luma_planes(media["plain"]), luma_planes(out)
    assert len(yi) == len(yo)
    diffs = [np.abs(a.astype(int) - b.astype(int)) for a, b in zip(yi, yo, strict=True)]
    assert np.mean([d.mean() for d in diffs]) < 1.5
    assert max(np.percentile(d, 99) for d in diffs) <= 8


def test_full_range_input_keeps_luma_and_range(media, colorizer, tmp_path):
    out = tmp_path / "out.mp4"
    _colorize(media["full"], out, colorizer)
    with av.open(str(media["full"])) as c:
        f = next(c.decode(video=0))
        assert f.format.name == "yuvj420p"
    yi, yo = luma_planes(media["full"]), luma_planes(out)
    assert len(yi) == len(yo)
    for a, b in zip(yi, yo, strict=True):
        assert np.array_equal(a, b)
    with av.open(str(out)) as c:
        f = next(c.decode(video=0))
        assert int(f.color_range) == 2  # JPEG / full range signalled


@pytest.mark.parametrize("clip", ["plain", "ntsc", "vfr"])
def test_frame_count_and_timestamps_kept(media, colorizer, tmp_path, clip):
    out = tmp_path / f"{clip}_out.mp4"
    _colorize(media[clip], out, colorizer, encode=EncodeOptions())
    i, o = probe(media[clip]), probe(out)
    assert o.frames == i.frames
    tick = float(max(i.time_base, o.time_base))
    for ti, to in zip(i.times, o.times, strict=True):
        assert abs(ti - to) <= max(1e-6, tick + 1e-9), (i.times, o.times)
    if clip == "vfr":  # the irregular spacing is really there (and kept)
        assert np.round(np.diff(o.times), 3).tolist() == \
            [0.033, 0.037, 0.03, 0.05, 0.06, 0.03, 0.06, 0.033]
    if clip == "ntsc":
        assert o.times[1] == pytest.approx(1001 / 30000, abs=1e-6)
        assert o.times[-1] == pytest.approx(9 * 1001 / 30000, abs=1e-6)


def _audio_packets(path):
    """(codec id name, sample rate, packet payloads) of the first audio stream."""
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        codec = s.codec_context.codec
        name = getattr(codec, "canonical_name", None) or s.codec_context.name
        data = [bytes(p) for p in c.demux(s) if p.dts is not None and p.size]
        return name, s.codec_context.sample_rate, data


@pytest.mark.parametrize(("clip", "suffix"), [("aac", ".mp4"), ("mp3", ".mp4"), ("pcm", ".mkv"),
                                              ("aac", ".mkv")])
def test_audio_remuxed_untouched(media, colorizer, tmp_path, clip, suffix):
    out = tmp_path / f"out{suffix}"
    _colorize(media[clip], out, colorizer, encode=EncodeOptions())
    i, o = probe(media[clip]), probe(out)
    assert len(o.audio) == 1
    assert o.audio[0][1] == i.audio[0][1] > 5
    name_i, rate_i, pk_i = _audio_packets(media[clip])
    name_o, rate_o, pk_o = _audio_packets(out)
    assert (name_o, rate_o) == (name_i, rate_i)
    assert pk_o == pk_i  # byte for byte: remuxed, not re-encoded
    assert o.frames == i.frames


def test_no_audio_in_gives_no_audio_out(media, colorizer, tmp_path):
    out = tmp_path / "out.mp4"
    _colorize(media["plain"], out, colorizer, encode=EncodeOptions())
    assert probe(out).audio == []


def test_odd_size_video_kept(media, colorizer, tmp_path):
    out = tmp_path / "odd_out.mp4"
    _colorize(media["odd"], out, colorizer)
    i, o = probe(media["odd"]), probe(out)
    assert (o.width, o.height) == (i.width, i.height) == (65, 49)
    assert o.frames == i.frames
    for a, b in zip(luma_planes(media["odd"]), luma_planes(out), strict=True):
        assert a.shape == b.shape == (49, 65)
        assert np.array_equal(a, b)


def test_odd_size_video_to_mkv_kept(media, colorizer, tmp_path):
    """Odd 4:4:4 input written to another container still keeps every pixel."""
    out = tmp_path / "odd_out.mkv"
    _colorize(media["odd"], out, colorizer)
    o = probe(out)
    assert (o.width, o.height) == (65, 49)
