"""Live-camera benchmark: latency measured from the camera's own clock, output fps, drops, CPU,
and the time to notice and recover from a killed and a frozen camera.

    python benchmarks/bench_live.py                     # -> benchmarks/results/live.{json,md}
    python benchmarks/bench_live.py --seconds 20 --cameras 1,2 --sizes 640x480

A loopback RTSP camera (GStreamer's RTSP server, ``tests/peers/rtsp_camera.py --stamp``, run
with Debian's /usr/bin/python3) draws its clock into the top rows of every frame; ``streamcolor
live`` (a separate process, default runtime) colourises it; this script reads the MJPEG
stream of each camera like a viewer, reads the clock back from the frames (streamcolor keeps
the source's luma) and takes latency = viewer's clock - camera's clock.  So latency here is
camera -> encoder -> RTSP -> streamcolor -> JPEG -> viewer, not streamcolor's own number (which
``/healthz`` reports beside it).  Several cameras are several RTSP sessions of one shared
camera, so the camera's cost stays the same.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import NoiseProbe, cpu_model, log, write_results

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PEER = ROOT / "tests" / "peers" / "rtsp_camera.py"
SYSTEM_PYTHON = "/usr/bin/python3"
BITS, STAMP_ROWS = 40, 16
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

TARGET_P95_MS = 250.0  # one 640x480 camera
TARGET_FPS = 20.0
TARGET_BACK_S = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Camera:
    def __init__(self, size: str, fps: int = 25, port: int = 0) -> None:
        self.size, self.fps, self.port = size, fps, port
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(PEER), "--stamp", "--size", self.size,
                                      "--fps", str(self.fps), "--port", str(self.port)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        line = self.proc.stdout.readline().split()  # type: ignore[union-attr]
        if line[:1] != ["READY"]:
            raise SystemExit(f"camera did not start: {line}")
        self.port = int(line[1])

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()


def read_stamp(gray: np.ndarray, reduce: int) -> int | None:
    """The camera clock (ms) drawn in the top rows, from a (reduced) gray frame."""
    w = gray.shape[1]
    block = (w * reduce // BITS) / reduce
    row = gray[max(0, STAMP_ROWS // (2 * reduce) - 1): STAMP_ROWS // reduce - 1].mean(axis=0)
    value = 0
    for bit in range(BITS):
        x = int((bit + 0.5) * block)
        if x >= w:
            return None
        value = (value << 1) | int(row[x] > 128)
    return value


class Viewer(threading.Thread):
    """Reads one camera's MJPEG stream and records (viewer time, latency ms) per frame."""

    def __init__(self, url: str, reduce: int) -> None:
        super().__init__(daemon=True)
        self.url, self.reduce = url, reduce
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        flag = {2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4}.get(
            self.reduce, cv2.IMREAD_GRAYSCALE)
        while not self.stop.is_set():
            try:
                with NO_PROXY.open(self.url, timeout=10) as r:
                    buf = b""
                    while not self.stop.is_set():
                        chunk = r.read1(65536)
                        if not chunk:
                            break
                        buf += chunk
                        while True:
                            a = buf.find(b"\xff\xd8")
                            b = buf.find(b"\xff\xd9", a + 2)
                            if a < 0 or b < 0:
                                break
                            jpeg, buf = buf[a:b + 2], buf[b + 2:]
                            now_ms = time.time() * 1000.0
                            gray = cv2.imdecode(np.frombuffer(jpeg, np.uint8), flag)
                            stamp = read_stamp(gray, self.reduce) if gray is not None else None
                            if stamp is not None:
                                lat = (now_ms - stamp) % (1 << BITS)
                                if lat < 60_000:  # a misread stamp gives nonsense
                                    self.samples.append((time.monotonic(), lat))
            except OSError:
                time.sleep(0.2)


def start_live(sources: list[str], port: int, extra: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "streamcolor", "live", *sources, "--http",
                             f"127.0.0.1:{port}", "-q", *extra], cwd=str(ROOT),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def healthz(port: int) -> dict[str, Any]:
    with NO_PROXY.open(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
        return json.loads(r.read())["cameras"]


def wait_live(port: int, names: list[str], timeout: float = 90) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            h = healthz(port)
            if all(h[n]["state"] == "live" and h[n]["frames_out"] > 10 for n in names):
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("streamcolor live did not get going")


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def run_config(size: str, n_cams: int, seconds: float, extra: list[str]) -> dict[str, Any]:
    cam = Camera(size)
    port = free_port()
    names = [f"cam{i}" for i in range(n_cams)]
    live = start_live([f"{n}={cam.url}" for n in names], port, extra)
    try:
        wait_live(port, names)
        reduce = 2 if int(size.split("x")[0]) <= 800 else 4
        viewers = {n: Viewer(f"http://127.0.0.1:{port}/cameras/{n}/stream.mjpg", reduce)
                   for n in names}
        for v in viewers.values():
            v.start()
        time.sleep(2.0)  # viewers connected, steady state
        probe = NoiseProbe()
        cpu0, cam0 = cpu_seconds(live.pid), cpu_seconds(cam.proc.pid)
        h0 = healthz(port)
        t0 = time.monotonic()
        time.sleep(seconds)
        t1 = time.monotonic()
        cpu1, cam1 = cpu_seconds(live.pid), cpu_seconds(cam.proc.pid)
        h1 = healthz(port)
        noise = probe.result()
        for v in viewers.values():
            v.stop.set()
    finally:
        live.send_signal(signal.SIGTERM)
        live.wait(60)
        cam.close()
    rows = []
    for n in names:
        s = [(t, lat) for t, lat in viewers[n].samples if t0 <= t <= t1]
        lats = [lat for _, lat in s]
        third = max(1, len(lats) // 3)
        frames_in = h1[n]["frames_in"] - h0[n]["frames_in"]
        dropped = h1[n]["dropped"] - h0[n]["dropped"]
        rows.append({"camera": n, "frames_seen": len(s), "fps_out": len(s) / (t1 - t0),
                     "latency_ms": {"p50": pct(lats, 50), "p95": pct(lats, 95),
                                    "p99": pct(lats, 99), "max": pct(lats, 100)},
                     "latency_p50_first_third": pct(lats[:third], 50),
                     "latency_p50_last_third": pct(lats[-third:], 50),
                     "dropped_share": dropped / frames_in if frames_in else None,
                     "own_latency_ms": h1[n]["latency_ms"]})
    return {"size": size, "cameras": n_cams, "seconds": t1 - t0, "per_camera": rows,
            "streamcolor_cpu_cores": (cpu1 - cpu0) / (t1 - t0),
            "camera_cpu_cores": (cam1 - cam0) / (t1 - t0), "noise": noise}


def run_failures(stall: float, outage: float, extra: list[str]) -> dict[str, Any]:
    """Kill the camera for ``outage`` s, then freeze it (SIGSTOP) for ``outage`` s."""
    cam = Camera("640x480")
    port = free_port()
    live = start_live([f"cam0={cam.url}", "--stall-timeout", str(stall)], port, extra)
    out: dict[str, Any] = {"stall_timeout": stall, "outage_s": outage}
    try:
        wait_live(port, ["cam0"])
        viewer = Viewer(f"http://127.0.0.1:{port}/cameras/cam0/stream.mjpg", 2)
        viewer.start()
        time.sleep(2)
        for kind in ("killed", "frozen"):
            t_fail = time.monotonic()
            if kind == "killed":
                cam.proc.kill()
                cam.proc.wait()
            else:
                cam.proc.send_signal(signal.SIGSTOP)
            detected = None
            while time.monotonic() - t_fail < outage:
                if detected is None and healthz(port)["cam0"]["state"] != "live":
                    detected = time.monotonic() - t_fail
                time.sleep(0.05)
            t_back = time.monotonic()
            if kind == "killed":
                cam.start()  # same port
            else:
                cam.proc.send_signal(signal.SIGCONT)
            back = None
            while time.monotonic() - t_back < 30:
                fresh = [t for t, lat in viewer.samples if t > t_back and lat < 1000]
                if fresh:
                    back = fresh[0] - t_back
                    break
                time.sleep(0.05)
            out[kind] = {"detected_s": detected, "first_coloured_frame_after_return_s": back}
            log(f"{kind}: detected after {detected} s, back {back} s after the camera returned")
            time.sleep(3)
        viewer.stop.set()
        out["healthz"] = healthz(port)["cam0"]
    finally:
        live.send_signal(signal.SIGTERM)
        live.wait(60)
        cam.close()
    return out


def markdown(doc: dict[str, Any]) -> str:
    n = doc["noise"]
    lines = [f"Live benchmark, `python benchmarks/bench_live.py` ({doc['finished']}, "
             f"{doc['cpu']}, 2 CPUs; default runtime; {doc['seconds']:.0f} s per configuration; "
             f"other processes used {100 * (n['other_cpu_share'] or 0):.1f} % of the CPU). "
             "Latency is the viewer's clock minus the camera's, read from the frames "
             "(camera -> RTSP -> streamcolor -> MJPEG -> viewer).", "",
             "| target | goal | measured | |", "|---|---|---|---|"]
    for t in doc["targets"]:
        lines.append(f"| {t['name']} | {t['goal']} | {t['value']} | "
                     f"{'pass' if t['pass'] else 'FAIL'} |")
    lines += ["", "| camera | cameras | fps out (each) | latency p50 / p95 / p99 ms | "
              "p50 first → last third | dropped | streamcolor CPU | camera CPU |",
              "|---|---|---|---|---|---|---|---|"]
    for r in doc["runs"]:
        fps = " / ".join(f"{c['fps_out']:.1f}" for c in r["per_camera"])
        lat = "; ".join(f"{c['latency_ms']['p50']} / {c['latency_ms']['p95']} / "
                        f"{c['latency_ms']['p99']}" for c in r["per_camera"])
        flat = "; ".join(f"{c['latency_p50_first_third']} → {c['latency_p50_last_third']}"
                         for c in r["per_camera"])
        drop = " / ".join(f"{100 * (c['dropped_share'] or 0):.0f} %" for c in r["per_camera"])
        lines.append(f"| {r['size']} | {r['cameras']} | {fps} | {lat} | {flat} | {drop} | "
                     f"{r['streamcolor_cpu_cores']:.2f} cores | {r['camera_cpu_cores']:.2f} "
                     "cores |")
    f = doc.get("failures")
    if f:
        lines += ["", f"Failures (640x480, `--stall-timeout {f['stall_timeout']:g}`, outage "
                  f"{f['outage_s']:g} s):", "", "| camera | noticed after | first coloured "
                  "frame after it returned |", "|---|---|---|"]
        for kind in ("killed", "frozen"):
            k = f[kind]
            lines.append(f"| {kind} | {_s(k['detected_s'])} | "
                         f"{_s(k['first_coloured_frame_after_return_s'])} |")
    return "\n".join(lines) + "\n"


def _s(v: float | None) -> str:
    return "never" if v is None else f"{v:.2f} s"


def targets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    one = [r for r in doc["runs"] if r["size"] == "640x480" and r["cameras"] == 1]
    if one:
        c = one[0]["per_camera"][0]
        p95, fps = c["latency_ms"]["p95"], c["fps_out"]
        out.append({"name": "one 640x480 camera: latency p95", "goal": f"<= {TARGET_P95_MS:g} "
                    "ms", "value": f"{p95} ms", "pass": p95 is not None and p95 <= TARGET_P95_MS})
        out.append({"name": "one 640x480 camera: fps out", "goal": f">= {TARGET_FPS:g}",
                    "value": f"{fps:.1f}", "pass": fps >= TARGET_FPS})
    grew = [c for r in doc["runs"] for c in r["per_camera"]
            if c["latency_p50_last_third"] and c["latency_p50_first_third"] and
            c["latency_p50_last_third"] > c["latency_p50_first_third"] * 1.25 + 20]
    out.append({"name": "latency flat over the run (p50 of the last third <= 1.25x the first "
                "+ 20 ms), every configuration", "goal": "all", "value":
                f"{len(grew)} grew", "pass": not grew})
    f = doc.get("failures")
    if f:
        limit = f["stall_timeout"] + 1
        for kind in ("killed", "frozen"):
            d = f[kind]["detected_s"]
            b = f[kind]["first_coloured_frame_after_return_s"]
            out.append({"name": f"{kind} camera noticed", "goal": f"<= {limit:g} s",
                        "value": _s(d), "pass": d is not None and d <= limit})
            out.append({"name": f"{kind} camera: coloured again after it returns",
                        "goal": f"<= {TARGET_BACK_S:g} s", "value": _s(b),
                        "pass": b is not None and b <= TARGET_BACK_S})
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--cameras", default="1,2,4")
    ap.add_argument("--sizes", default="640x480,1280x720")
    ap.add_argument("--stall-timeout", type=float, default=5.0)
    ap.add_argument("--outage", type=float, default=10.0)
    ap.add_argument("--no-failures", action="store_true")
    ap.add_argument("--out", default=str(RESULTS / "live.json"))
    ap.add_argument("--extra", default="", help="more `streamcolor live` options")
    a = ap.parse_args(argv)
    extra = a.extra.split()
    noise = NoiseProbe()
    runs = []
    for size in a.sizes.split(","):
        for n in (int(x) for x in a.cameras.split(",")):
            log(f"{n} camera(s) at {size}, {a.seconds:g} s")
            runs.append(run_config(size, n, a.seconds, extra))
            c = runs[-1]["per_camera"][0]
            log(f"  {c['fps_out']:.1f} fps out, p95 {c['latency_ms']['p95']} ms")
    doc: dict[str, Any] = {"cpu": cpu_model(), "seconds": a.seconds, "runs": runs}
    if not a.no_failures:
        doc["failures"] = run_failures(a.stall_timeout, a.outage, extra)
    doc["noise"] = noise.result()
    doc["finished"] = time.strftime("%Y-%m-%d %H:%M")
    doc["targets"] = targets(doc)
    write_results(doc, a.out, markdown)


if __name__ == "__main__":
    main()
