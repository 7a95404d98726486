"""Audio and subtitle streams carried from the input to the output.

The source demuxes the input once (one connection for HTTP(S) and RTSP) and hands the packets
of its audio and subtitle streams to a :class:`SideStreams` queue; the video sink takes them
from there in time order, interleaved with the colourised frames.  Packets are remuxed
untouched where the output container takes the codec; audio that does not fit is re-encoded
to the container's own audio codec (Opus for WebM, MP2 for MPEG-PS, AAC for MP4/MKV/MOV...),
and a stream that cannot be kept at all is dropped with a warning that says so.

Memory: the reader is at most a few frames ahead of the writer, so the queue holds the side
packets of those frames (a badly interleaved file can hold more).
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Iterable

log = logging.getLogger(__name__)

# Encoders to try for an audio codec name the container prefers (the external libraries first:
# FFmpeg's native Opus and Vorbis encoders are experimental).
AUDIO_ENCODERS = {"opus": ("libopus", "opus"), "vorbis": ("libvorbis", "vorbis"),
                  "mp3": ("libmp3lame",), "aac": ("aac",), "mp2": ("mp2",), "ac3": ("ac3",),
                  "flac": ("flac",), "pcm_s16le": ("pcm_s16le",)}
FALLBACK_AUDIO = ("aac", "opus", "mp2", "vorbis", "flac")
STEREO_ONLY = frozenset({"mp2", "libmp3lame"})


class SideStreams:
    """The input's audio and subtitle streams and the packets demuxed from them so far.

    The reader thread :meth:`push`\\ es packets; the writer thread takes them with
    :meth:`take_until`.  ``finished`` turns true when the input has been read to its end.
    """

    def __init__(self, streams: Iterable[object]) -> None:
        self.streams = list(streams)
        self._packets: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self.finished = False

    def __bool__(self) -> bool:
        return bool(self.streams)

    def push(self, packet: object) -> None:
        if packet.dts is None and not packet.size:  # type: ignore[attr-defined]
            return  # the demuxer's end-of-stream marker
        with self._lock:
            self._packets.append(packet)

    def take_until(self, t: float | None) -> list[object]:
        """Packets that start at or before ``t`` seconds (all of them if None), in order."""
        out = []
        with self._lock:
            while self._packets:
                pkt = self._packets[0]
                pts = pkt.pts if pkt.pts is not None else pkt.dts  # type: ignore[attr-defined]
                if t is not None and pts is not None and \
                        float(pts * pkt.time_base) > t:  # type: ignore[attr-defined]
                    break
                out.append(self._packets.popleft())
        return out


def _audio_encoder(out: object, stream: object) -> str | None:
    """The encoder to re-encode ``stream`` with for container ``out``, or None."""
    import av

    supported = out.supported_codecs  # type: ignore[attr-defined]
    names = [out.default_audio_codec, *FALLBACK_AUDIO]  # type: ignore[attr-defined]
    for codec_name in names:
        if not codec_name or codec_name == "none":
            continue
        for enc in AUDIO_ENCODERS.get(codec_name, (codec_name,)):
            try:
                c = av.codec.Codec(enc, "w")
            except (av.error.FFmpegError, ValueError):
                continue
            if c.type == "audio" and codec_name in supported:
                return enc
    return None


class _Route:
    """How one input stream reaches the output: copied, re-encoded, or (None) dropped."""

    def __init__(self, ostream: object, decoder: object | None = None,
                 resampler: object | None = None) -> None:
        self.ostream = ostream
        self.decoder = decoder
        self.resampler = resampler


class SideMuxer:
    """The output side: adds the output streams for ``side`` to container ``out`` (before the
    header is written) and muxes their packets."""

    def __init__(self, out: object, side: SideStreams, label: str) -> None:
        self.out = out
        self.side = side
        self.label = label
        self.routes: dict[int, _Route] = {}
        self.warnings: list[str] = []
        for s in side.streams:
            route = self._route(s)
            if route is not None:
                self.routes[s.index] = route  # type: ignore[attr-defined]

    def _warn(self, text: str) -> None:
        log.warning("%s", text)
        self.warnings.append(text)

    def _route(self, s: object) -> _Route | None:
        import av

        out = self.out
        name = s.codec_context.name  # type: ignore[attr-defined]
        kind = s.type  # type: ignore[attr-defined]
        fmt = out.format.name  # type: ignore[attr-defined]
        if name in out.supported_codecs:  # type: ignore[attr-defined]
            try:
                return _Route(out.add_stream_from_template(s))  # type: ignore[attr-defined]
            except (av.error.FFmpegError, ValueError) as e:
                log.debug("cannot copy %s stream %s: %s", kind, name, e)
        if kind != "audio":
            self._warn(f"{self.label}: {kind} stream {s.index} ({name}) cannot be stored in "  # type: ignore[attr-defined]
                       f"{fmt}: dropped (use .mkv to keep it)")
            return None
        enc = _audio_encoder(out, s)
        if enc is None:
            self._warn(f"{self.label}: audio stream {s.index} ({name}) cannot be stored in "  # type: ignore[attr-defined]
                       f"{fmt} and no encoder fits: dropped")
            return None
        return self._reencode(s, enc)

    def _reencode(self, s: object, enc: str) -> _Route | None:
        import av

        cc = s.codec_context  # type: ignore[attr-defined]
        codec = av.codec.Codec(enc, "w")
        rates = list(codec.audio_rates or [])
        rate = cc.sample_rate or 48000
        if rates and rate not in rates:
            rate = min(rates, key=lambda r: (r < rate, abs(r - rate)))  # nearest, prefer higher
        layout = cc.layout.name if cc.layout else "stereo"
        if enc in STEREO_ONLY and cc.channels > 2:
            layout = "stereo"
        try:
            o = self.out.add_stream(enc, rate=rate)  # type: ignore[attr-defined]
            o.layout = layout
            formats = [f.name for f in (codec.audio_formats or [])]
            if formats and o.format.name not in formats:
                o.format = formats[0]
            decoder = av.CodecContext.create(cc.name, "r")
            if cc.extradata:
                decoder.extradata = cc.extradata
            decoder.sample_rate = cc.sample_rate
            decoder.layout = cc.layout
            resampler = av.AudioResampler(format=o.format, layout=o.layout, rate=o.rate)
        except (av.error.FFmpegError, ValueError, TypeError) as e:
            self._warn(f"{self.label}: audio stream {s.index} ({cc.name}) cannot be re-encoded "  # type: ignore[attr-defined]
                       f"with {enc} ({e}): dropped")
            return None
        self._warn(f"{self.label}: audio codec {cc.name} does not fit "
                   f"{self.out.format.name}: re-encoding it to {enc}")  # type: ignore[attr-defined]
        return _Route(o, decoder, resampler)

    def write_until(self, t: float | None) -> None:
        """Mux the side packets that start at or before ``t`` seconds (all if None)."""
        for packet in self.side.take_until(t):
            route = self.routes.get(packet.stream.index)  # type: ignore[attr-defined]
            if route is None:
                continue
            if route.decoder is None:
                if packet.dts is None:  # type: ignore[attr-defined]
                    continue
                packet.stream = route.ostream  # type: ignore[attr-defined]
                self.out.mux(packet)  # type: ignore[attr-defined]
                continue
            self._encode(route, route.decoder.decode(packet))  # type: ignore[attr-defined]

    def _encode(self, route: _Route, frames: Iterable[object]) -> None:
        for frame in frames:
            for rf in route.resampler.resample(frame):  # type: ignore[attr-defined]
                for p in route.ostream.encode(rf):  # type: ignore[attr-defined]
                    self.out.mux(p)  # type: ignore[attr-defined]

    def close(self) -> None:
        """Flush the re-encoders (the packets themselves were written by write_until)."""
        for route in self.routes.values():
            if route.decoder is None:
                continue
            self._encode(route, route.decoder.decode(None))  # type: ignore[attr-defined]
            for rf in route.resampler.resample(None):  # type: ignore[attr-defined]
                for p in route.ostream.encode(rf):  # type: ignore[attr-defined]
                    self.out.mux(p)  # type: ignore[attr-defined]
            for p in route.ostream.encode(None):  # type: ignore[attr-defined]
                self.out.mux(p)  # type: ignore[attr-defined]

