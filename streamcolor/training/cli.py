"""``streamcolor train STAGE ...``: the whole NoGAN recipe as subcommands.

    streamcolor train pretrain --train DIR --run runs/g1 --phases 64:32:1000:frozen,...
    streamcolor train render   --train DIR --generator runs/g1/checkpoint.pt --run runs/r1
    streamcolor train critic   --train DIR --fakes runs/r1/fakes.npy --run runs/c1
    streamcolor train gan      --train DIR --generator runs/g1/checkpoint.pt \\
                               --critic runs/c1/checkpoint.pt --run runs/gan1
    streamcolor train select   runs/gan1 --val DIR --name stable
    streamcolor train cycle    --train DIR --generator runs/gan1/ckpt_X.pt --run runs/art \\
                               --cycles 3      # then: streamcolor train select runs/art/cycle_3/gan

Every stage writes a run directory (resolved ``config.json``, ``log.csv``, resumable
``checkpoint.pt``); rerunning the same command after a kill continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict
from pathlib import Path

log = logging.getLogger(__name__)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train", required=True, help="folder of colour training images")
    p.add_argument("--run", required=True, help="run directory (resumed if it exists)")
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--workers", type=int, default=None,
                   help="batch-making processes (default: 0 on the CPU, up to 4 on a GPU)")
    p.add_argument("--min-colorfulness", type=float, default=0.0,
                   help="drop training photos less colourful than this (BigColor: 15)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="streamcolor train", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="stage", required=True)
    sub.add_parser("pretrain", help="stage 1: generator pretraining (feature + L1 loss)",
                   add_help=False)

    r = sub.add_parser("render", help="render fakes with a generator for critic pretraining")
    _common(r)
    r.add_argument("--generator", required=True)
    r.add_argument("--size", type=int, default=128)
    r.add_argument("--count", type=int, default=2000)
    r.add_argument("--batch", type=int, default=16)

    c = sub.add_parser("critic", help="stage 2: pretrain the critic (generated vs real)")
    _common(c)
    c.add_argument("--fakes", required=True, help="fakes.npy written by 'render'")
    c.add_argument("--arch", default="critic_patch")
    c.add_argument("--size", type=int, default=128)
    c.add_argument("--batch", type=int, default=16)
    c.add_argument("--steps", type=int, default=1000)
    c.add_argument("--lr", type=float, default=2e-4)
    c.add_argument("--init", default=None, help="critic checkpoint to continue from")

    g = sub.add_parser("gan", help="stage 3: the short GAN phase with frequent snapshots")
    _common(g)
    _gan_args(g)
    g.add_argument("--generator", required=True)
    g.add_argument("--critic", required=True)

    y = sub.add_parser("cycle", help="stage 4: critic re-pretraining + GAN, N times (artistic)")
    _common(y)
    _gan_args(y)
    y.add_argument("--generator", required=True)
    y.add_argument("--cycles", type=int, default=3)
    y.add_argument("--critic", default=None,
                   help="checkpoint whose critic the first cycle continues from")
    y.add_argument("--render-count", type=int, default=2000)
    y.add_argument("--critic-steps", type=int, default=500)

    s = sub.add_parser("select", help="measure every GAN snapshot, pick the inflection point "
                       "and export it as a model")
    s.add_argument("run", help="GAN run directory")
    s.add_argument("--val", required=True, help="folder of colour validation images")
    s.add_argument("--name", required=True, help="model name (models/NAME.safetensors)")
    s.add_argument("--out", type=Path, default=None, help="models folder (default: models/)")
    s.add_argument("--limit", type=int, default=None, help="validation images to use")
    s.add_argument("--render-factor", type=int, default=16)
    s.add_argument("--psnr-tolerance", type=float, default=0.5)
    s.add_argument("--drift-tolerance", type=float, default=0.005)
    s.add_argument("--rule", choices=("feature", "margin", "target"), default="feature",
                   help="feature: the lowest feature distance within the PSNR and drift "
                   "tolerances; margin: the most PSNR above --reference's gain curve within "
                   "the drift tolerance; target: the highest PSNR among snapshots at least "
                   "--min-ratio as colourful as the truth, within the drift tolerance")
    s.add_argument("--min-ratio", type=float, default=0.85,
                   help="--rule target: the colourfulness ratio (absolute form) to reach")
    s.add_argument("--reference", default=None,
                   help="model whose chroma-gain curve each snapshot is measured against "
                   "(default: stable with --rule margin)")
    s.add_argument("--temperature", type=float, default=None,
                   help="hybrid generators: decode (and export) with this temperature")
    s.add_argument("--class-weight", type=float, default=None,
                   help="hybrid generators: decode (and export) with this class weight")
    s.add_argument("--no-export", action="store_true", help="only measure and report")
    s.add_argument("--metrics", type=Path, default=None,
                   help="JSON from 'python -m streamcolor.training.evaluate' of the selected "
                   "model, kept in its metadata (model card numbers)")
    s.add_argument("--threads", type=int, default=None)
    return ap


def _gan_args(g: argparse.ArgumentParser) -> None:
    g.add_argument("--critic-arch", default="critic_patch")
    g.add_argument("--size", type=int, default=192)
    g.add_argument("--batch", type=int, default=8)
    g.add_argument("--steps", type=int, default=1500)
    g.add_argument("--gen-lr", type=float, default=5e-5)
    g.add_argument("--critic-lr", type=float, default=2e-4)
    g.add_argument("--critic-threshold", type=float, default=0.65)
    g.add_argument("--adv-weight", type=float, default=1.0)
    g.add_argument("--l1-weight", type=float, default=5.0)
    g.add_argument("--snapshot-images", type=int, default=None)
    g.add_argument("--ce-weight", type=float, default=1.0,
                   help="hybrid generators: weight of the classification head's loss")


def _gan_kwargs(a: argparse.Namespace) -> dict:
    return dict(critic_arch=a.critic_arch, size=a.size, batch=a.batch, steps=a.steps,
                gen_lr=a.gen_lr, critic_lr=a.critic_lr, critic_threshold=a.critic_threshold,
                adv_weight=a.adv_weight, l1_weight=a.l1_weight,
                snapshot_images=a.snapshot_images, max_images=a.max_images,
                ce_weight=a.ce_weight, **_data_kwargs(a))


def _data_kwargs(a: argparse.Namespace) -> dict:
    return dict(device=a.device, min_colorfulness=a.min_colorfulness)


def main(argv: list[str] | None = None) -> int:
    """Run one stage; a missing or unreadable file or folder is one line and exit code 1."""
    import sys

    from streamcolor.errors import StreamcolorError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        _run_stage(argv)
    except OSError as e:  # missing run dir, data folder, checkpoint...
        where = e.filename if e.filename is not None else ""
        print(f"streamcolor train: error: {where}: {e.strerror or e}", file=sys.stderr)
        return 1
    except StreamcolorError as e:
        print(f"streamcolor train: error: {e}", file=sys.stderr)
        return 1
    return 0


def _run_stage(argv: list[str]) -> None:
    if argv and argv[0] == "pretrain":
        from streamcolor.training.pretrain_generator import main as pretrain_main

        pretrain_main(argv[1:])
        return
    a = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from streamcolor.model.runtime import configure_threads

    if getattr(a, "threads", None):
        configure_threads(a.threads)
    from streamcolor.training import gan

    if a.stage == "render":
        gan.render(gan.RenderConfig(train=a.train, generator=a.generator, run=a.run,
                                    size=a.size, count=a.count, batch=a.batch,
                                    max_images=a.max_images, **_data_kwargs(a)))
    elif a.stage == "critic":
        gan.pretrain_critic(gan.CriticConfig(train=a.train, fakes=a.fakes, run=a.run,
                                             arch=a.arch, size=a.size, batch=a.batch,
                                             steps=a.steps, lr=a.lr, init=a.init,
                                             max_images=a.max_images, workers=a.workers,
                                             **_data_kwargs(a)))
    elif a.stage == "gan":
        gan.train_gan(gan.GanConfig(train=a.train, generator=a.generator, critic=a.critic,
                                    run=a.run, workers=a.workers, **_gan_kwargs(a)))
    elif a.stage == "cycle":
        kw = _gan_kwargs(a)
        gan.cycle(a.train, a.generator, a.run, a.cycles,
                  {"count": a.render_count, "size": min(a.size, 128),
                   "max_images": a.max_images, **_data_kwargs(a)},
                  {"arch": a.critic_arch, "steps": a.critic_steps, "size": min(a.size, 128),
                   "max_images": a.max_images, "workers": a.workers, **_data_kwargs(a)},
                  {**kw, "workers": a.workers}, critic_init=a.critic)
    elif a.stage == "select":
        select_main(a)


def select_main(a: argparse.Namespace) -> None:
    from streamcolor.model.weights import models_dir
    from streamcolor.training.export import export_model
    from streamcolor.training.gan import load_generator_from
    from streamcolor.training.inflection import evaluate_run, report, select

    run = Path(a.run)
    reference = a.reference or ("stable" if a.rule != "feature" else None)
    rows = evaluate_run(run, a.val, limit=a.limit, render_factor=a.render_factor,
                        reference=reference, temperature=a.temperature,
                        class_weight=a.class_weight)
    start, snaps = rows[0], rows[1:]
    chosen = select(snaps, start, a.psnr_tolerance, a.drift_tolerance, a.rule, a.min_ratio)
    doc = report(run, rows, chosen)
    print((run / "inflection.md").read_text())
    print(f"selected: {chosen.name}")
    if a.no_export:
        return
    config = json.loads((run / "config.json").read_text())
    path = config["generator"] if chosen.name == "start" else run / chosen.name
    model = load_generator_from(path)
    if model.classes is not None:
        model.set_decoding(a.temperature, a.class_weight)
    arch = model.config.name
    recipe = {"stage": "NoGAN GAN phase, inflection point selected by measurement",
              "steps": chosen.images, "checkpoint": chosen.name, "gan_run": str(run),
              "gan_config": config,
              "rule": {"psnr_tolerance_db": a.psnr_tolerance,
                       "drift_tolerance": a.drift_tolerance,
                       "criterion": {
                           "feature": "lowest feature distance among snapshots within the "
                                      "PSNR and orange-drift tolerances of the start",
                           "margin": "largest PSNR margin over the reference model's "
                                     "chroma-gain curve among the start and snapshots within "
                                     "the orange-drift tolerance",
                           "target": f"highest PSNR among the start and snapshots whose "
                                     f"colourfulness ratio is at least {a.min_ratio} within "
                                     f"the orange-drift tolerance"}[a.rule],
                       "reference": reference}}
    metrics = {"selection": doc["selected"], "start": asdict(start),
               "val": str(a.val), "val_images": a.limit}
    if a.metrics:
        full = json.loads(a.metrics.read_text())
        metrics.update({k: full[k] for k in ("model", "gray", "mean_chroma", "ground_truth",
                                             "images") if k in full})
    out = export_model(model, arch, a.name, a.out or models_dir(), a.render_factor, recipe,
                       {"train": config.get("train")}, metrics)
    print(f"exported {out}")
