"""A real RTSP camera on 127.0.0.1 for tests and benchmarks: GStreamer's RTSP server
(Debian's gstreamer1.0-rtsp, run with Debian's /usr/bin/python3), live H.264.

    /usr/bin/python3 tests/peers/rtsp_camera.py [--size 160x120] [--fps 25] [--port 0]
                                                [--mount /cam] [--stamp] [--auth USER:PASS]

Prints "READY <port>" once it listens, then serves rtsp://127.0.0.1:PORT/cam until killed.
``--stamp`` draws the camera's clock (milliseconds, 40 bits) as black and white blocks in the
top 16 rows of every frame, over a moving gradient, so a viewer of the colourised output can
measure latency on its own (luma is kept exactly by streamcolor); otherwise it is
videotestsrc's moving ball.
"""

import argparse
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

BITS = 40
STAMP_ROWS = 16


def stamp_frame(width, height, t_ms, phase):
    """One I420 frame (bytes): a moving gradient with ``t_ms`` in the top rows."""
    row_bytes = bytes((40 + ((x + phase) * 180 // width) % 180) for x in range(width))
    y = bytearray(row_bytes * height)
    block = width // BITS
    for bit in range(BITS):
        v = 235 if (t_ms >> (BITS - 1 - bit)) & 1 else 16
        seg = bytes([v]) * block
        for r in range(STAMP_ROWS):
            start = r * width + bit * block
            y[start:start + block] = seg
    chroma = bytes([128]) * (width * height // 2)
    return bytes(y) + chroma


class StampFactory(GstRtspServer.RTSPMediaFactory):
    def __init__(self, width, height, fps):
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.set_shared(True)

    def do_create_element(self, url):
        caps = (f"video/x-raw,format=I420,width={self.width},height={self.height},"
                f"framerate={self.fps}/1")
        pipeline = Gst.parse_launch(
            f"appsrc name=src is-live=true do-timestamp=true format=time caps={caps} ! "
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! "
            "rtph264pay name=pay0 pt=96")
        src = pipeline.get_by_name("src")
        state = {"n": 0, "next": time.time()}

        def need_data(appsrc, _length):
            now = time.time()
            if now < state["next"]:  # pace at the frame rate: a live camera
                time.sleep(state["next"] - now)
            state["next"] = max(state["next"] + 1 / self.fps, time.time() - 1 / self.fps)
            data = stamp_frame(self.width, self.height, int(time.time() * 1000) % (1 << BITS),
                               state["n"] * 4)
            state["n"] += 1
            appsrc.emit("push-buffer", Gst.Buffer.new_wrapped(data))

        src.connect("need-data", need_data)
        return pipeline


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="160x120")
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--mount", default="/cam")
    ap.add_argument("--stamp", action="store_true")
    ap.add_argument("--auth", default=None, help="USER:PASS (basic authentication)")
    a = ap.parse_args()
    width, height = (int(v) for v in a.size.split("x"))
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))
    if a.stamp:
        factory = StampFactory(width, height, a.fps)
    else:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(
            f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},"
            f"height={height},framerate={a.fps}/1 ! videoconvert ! x264enc tune=zerolatency "
            "speed-preset=ultrafast key-int-max=25 ! rtph264pay name=pay0 pt=96 )")
        factory.set_shared(True)
    if a.auth:
        user, password = a.auth.split(":", 1)
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", user)
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        server.set_auth(auth)
        perms = GstRtspServer.RTSPPermissions()
        perms.add_permission_for_role(user, "media.factory.access", True)
        perms.add_permission_for_role(user, "media.factory.construct", True)
        factory.set_permissions(perms)
    server.get_mount_points().add_factory(a.mount, factory)
    if server.attach(None) == 0:
        raise SystemExit(f"cannot listen on 127.0.0.1:{a.port}")
    print(f"READY {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
