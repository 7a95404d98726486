"""The live HTTP server: a page with every camera, MJPEG streams, snapshots, health and
metrics.

    GET /                              the page (every camera live, its state and fps)
    GET /cameras/NAME/stream.mjpg      multipart/x-mixed-replace MJPEG of the colourised frames
    GET /cameras/NAME/frame.jpg        the newest colourised frame
    GET /healthz                       JSON health of every camera
    GET /metrics                       Prometheus text format

It binds 127.0.0.1 unless told otherwise; a host beyond the loopback needs a token, which
every request must then carry (``?token=`` or ``Authorization: Bearer``).  Credentials in
camera URLs never appear: sources are shown masked.
"""

from __future__ import annotations

import hmac
import html
import ipaddress
import json
import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

from streamcolor.errors import StreamcolorError
from streamcolor.live.stats import CameraStats, healthz, prometheus
from streamcolor.live.view import CameraView

log = logging.getLogger(__name__)

BOUNDARY = "streamcolorframe"


def parse_bind(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``PORT`` -> (host, port); the host defaults to 127.0.0.1."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        n = int(port)
    except ValueError:
        raise StreamcolorError(f"--http {text}: not HOST:PORT") from None
    if not 0 <= n <= 65535:
        raise StreamcolorError(f"--http {text}: port must be 0..65535")
    return host, n


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>streamcolor live</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; background: #111; color: #ddd; margin: 1em; }}
h1 {{ font-size: 1.1em; font-weight: 600; }}
.grid {{ display: flex; flex-wrap: wrap; gap: 1em; }}
figure {{ margin: 0; background: #000; padding: .4em; border-radius: 6px;
          width: min(640px, 95vw); }}
figure img {{ display: block; width: 100%; }}
figcaption {{ font-size: .85em; padding-top: .3em; }}
.state {{ font-weight: 600; }} .live {{ color: #6c6; }} .stale {{ color: #e66; }}
</style></head><body>
<h1>streamcolor live</h1>
<div class="grid">
{cameras}
</div>
<script>
const token = {token};
async function refresh() {{
  try {{
    const r = await fetch("healthz" + token);
    const h = (await r.json()).cameras;
    for (const [name, c] of Object.entries(h)) {{
      const el = document.getElementById("cap-" + name);
      if (!el) continue;
      const stale = c.state !== "live" || (c.last_frame_age_s ?? 99) > 2;
      el.querySelector(".state").textContent = stale && c.state === "live" ? "stale" : c.state;
      el.querySelector(".state").className = "state " + (stale ? "stale" : "live");
      el.querySelector(".fps").textContent = c.fps_out.toFixed(1) + " fps";
      const p95 = c.latency_ms.p95;
      el.querySelector(".lat").textContent = p95 === null ? "" : "p95 " + p95 + " ms";
      el.querySelector(".drop").textContent = c.dropped + " dropped, " + c.reconnects +
        " reconnects";
    }}
  }} catch (e) {{ }}
}}
setInterval(refresh, 1000); refresh();
</script></body></html>
"""

CAMERA = """<figure><img id="img-{id}" alt="{name}" src="cameras/{url}/stream.mjpg{token}">
<figcaption id="cap-{id}"><b>{name}</b> <span class="state">connecting</span>
· <span class="fps"></span> · <span class="lat"></span> · <span class="drop"></span>
<br><small>{source}</small></figcaption></figure>"""


class LiveServer:
    """The HTTP server on its own threads (one per request; MJPEG clients each hold one)."""

    def __init__(self, host: str, port: int, views: Mapping[str, CameraView],
                 stats: Mapping[str, CameraStats], token: str | None = None) -> None:
        if not is_loopback(host) and not token:
            raise StreamcolorError(f"--http {host}:{port}: a host beyond the loopback needs "
                                   "--http-token (the cameras would be open to the network)")
        self.views = views
        self.stats = stats
        self.token = token
        self.stopping = threading.Event()
        handler = _handler(self)
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as e:
            raise StreamcolorError(f"--http {host}:{port}: cannot listen "
                                   f"({e.strerror or e})") from None
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                        name="streamcolor-http")

    @property
    def address(self) -> tuple[str, int]:
        return self.httpd.server_address[:2]  # type: ignore[return-value]

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}/"

    def start(self) -> LiveServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        for v in self.views.values():
            v.close()
        self.httpd.shutdown()
        self.httpd.server_close()

    def authorized(self, query: dict[str, list[str]], header: str | None) -> bool:
        if not self.token:
            return True
        given = (query.get("token") or [""])[0]
        if header and header.startswith("Bearer "):
            given = header[len("Bearer "):]
        return hmac.compare_digest(given.encode(), self.token.encode())

    def page(self, token_query: str) -> bytes:
        cams = "\n".join(
            CAMERA.format(id=html.escape(n), name=html.escape(n), url=quote(n),
                          token=html.escape(token_query), source=html.escape(s.source))
            for n, s in self.stats.items())
        return PAGE.format(cameras=cams, token=json.dumps(token_query)).encode()


def _handler(server: LiveServer) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "streamcolor"
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: object) -> None:
            log.debug("http: " + fmt, *args)

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            if not server.authorized(query, self.headers.get("Authorization")):
                self._send(401, b"token required\n", "text/plain; charset=utf-8")
                return
            token_query = "?" + "token=" + quote(server.token) if server.token else ""
            path = parts.path
            try:
                if path in ("/", "/index.html"):
                    self._send(200, server.page(token_query), "text/html; charset=utf-8")
                elif path == "/healthz":
                    body = json.dumps(healthz(server.stats.values()), indent=1).encode()
                    self._send(200, body, "application/json")
                elif path == "/metrics":
                    self._send(200, prometheus(server.stats.values()).encode(),
                               "text/plain; version=0.0.4; charset=utf-8")
                elif path.startswith("/cameras/"):
                    self._camera(path)
                else:
                    self._send(404, b"not found\n", "text/plain; charset=utf-8")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the viewer went away

        def _camera(self, path: str) -> None:
            from urllib.parse import unquote

            _, _, rest = path.partition("/cameras/")
            name, _, what = rest.partition("/")
            view = server.views.get(unquote(name))
            if view is None:
                self._send(404, b"no such camera\n", "text/plain; charset=utf-8")
            elif what == "frame.jpg":
                got = view.jpeg()
                if got is None:
                    self._send(503, b"no frame yet\n", "text/plain; charset=utf-8")
                else:
                    self._send(200, got[1], "image/jpeg")
            elif what == "stream.mjpg":
                self._mjpeg(view)
            else:
                self._send(404, b"not found\n", "text/plain; charset=utf-8")

        def _mjpeg(self, view: CameraView) -> None:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            sent = 0
            while not server.stopping.is_set() and not view.closed:
                view.wait_newer(sent, timeout=1.0)
                got = view.jpeg()
                if got is None or got[0] == sent:
                    continue
                sent, data = got
                self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                 f"Content-Length: {len(data)}\r\n\r\n".encode())
                self.wfile.write(data)
                self.wfile.write(b"\r\n")
                self.wfile.flush()

    return Handler
