"""A real RTSP camera on 127.0.0.1 for the stream tests: GStreamer's RTSP server (Debian's
gstreamer1.0-rtsp, run with Debian's /usr/bin/python3), a live test pattern in H.264.

    /usr/bin/python3 tests/peers/rtsp_camera.py [WIDTHxHEIGHT] [FPS]

Prints the port it listens on, then serves rtsp://127.0.0.1:PORT/cam until killed.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

size = sys.argv[1] if len(sys.argv) > 1 else "160x120"
fps = sys.argv[2] if len(sys.argv) > 2 else "25"
width, height = size.split("x")
Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service("0")  # any free port
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},"
    f"framerate={fps}/1 ! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast "
    "key-int-max=25 ! rtph264pay name=pay0 pt=96 )")
factory.set_shared(True)
server.get_mount_points().add_factory("/cam", factory)
server.attach(None)
print(server.get_bound_port(), flush=True)
GLib.MainLoop().run()
