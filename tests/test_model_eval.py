"""Model evaluation for the model card (``training.evaluate``) and the PSNR/colourfulness
trade-off sweep (``training.pareto``) on a tiny model and synthesized photos."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from test_hybrid import hybrid_tiny
from test_nogan import colourful

from streamcolor.model.colorizer import Colorizer
from streamcolor.model.weights import save_weights
from streamcolor.training import pareto
from streamcolor.training.evaluate import OutputStats, comparison_table, evaluate, subset_of


@pytest.fixture(scope="module")
def val(tmp_path_factory):
    root = tmp_path_factory.mktemp("val")
    for i in range(4):
        prefix = "alpha" if i < 2 else "beta"
        cv2.imwrite(str(root / f"{prefix}_{i}.png"), colourful(300 + i, 48, 64)[..., ::-1])
    return root


@pytest.fixture(scope="module")
def hybrid_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("hybrid") / "hybrid.safetensors"
    save_weights(hybrid_tiny(), path, {"render_factor": 4})
    return path


def test_an_output_equal_to_the_truth_scores_perfectly():
    stats = OutputStats()
    for seed in range(3):
        gt = colourful(seed, 40, 56)
        truth = {"colorfulness": 10.0, "colorfulness_abs": 12.0, "orange": 0.0}
        from streamcolor.color import colorfulness, colorfulness_abs

        truth = {"colorfulness": colorfulness(gt), "colorfulness_abs": colorfulness_abs(gt),
                 "orange": 0.0}
        stats.update(gt, gt, truth)
    s = stats.summary()
    assert math.isinf(s["psnr"]) and s["ssim"] == pytest.approx(1.0)
    assert s["colorfulness_ratio_abs"] == pytest.approx(1.0)
    assert s["median_abs_dcf_abs"] == 0.0 and s["delta_cf_abs"] == 0.0
    assert s["auc"] == 1.0 and s["auc_rebalanced"] == 1.0
    assert all(v == 0.0 or math.isnan(v) for v in s["hue_js"].values())


def test_evaluation_of_a_model_beside_the_baselines(val, hybrid_path):
    c = Colorizer(str(hybrid_path), precision="fp32", runtime="torch")
    res = evaluate(c, val, np.array([0.01, -0.01], np.float32), n_boot=20)
    for k in ("model", "gray", "mean_chroma"):
        r = res[k]
        for key in ("psnr", "ssim", "dpsnr_over_gray", "colorfulness_ratio_abs",
                    "delta_cf_abs", "median_abs_dcf_abs", "p90_abs_dcf_abs", "auc",
                    "auc_rebalanced", "feature_distance", "kid", "orange_drift"):
            assert np.isfinite(r[key]), (k, key)
        lo, hi = r["feature_distance_ci"]
        assert lo <= hi and r["kid_ci"][0] <= r["kid_ci"][1]
        assert set(r["hue_js"]) == {"all", "skin", "sky", "water", "vegetation"}
        assert r["cf_stats"]["signed"]["n"] == 4
    gray = res["gray"]
    assert gray["dpsnr_over_gray"] == 0.0 and gray["colorfulness_ratio_abs"] == 0.0
    assert gray["hue_js"]["all"] == 1.0  # no colour at all: maximally far in hue
    # the gray output's median per-image gap is the truth's own median colourfulness
    from streamcolor.color import colorfulness_abs

    truths = [colorfulness_abs(cv2.imread(str(p))[..., ::-1]) for p in sorted(val.iterdir())]
    assert gray["median_abs_dcf_abs"] == pytest.approx(np.median(truths))
    assert set(res["subsets"]) == {"alpha", "beta"}
    assert res["subsets"]["alpha"]["images"] == 2
    res["meta"] = {"val": str(val), "render_factor": 4, "commit": "x", "date": "d",
                   "seconds": 1.0}
    md = comparison_table({"tiny": res}, res["meta"])
    assert "| **tiny** |" in md and "| gray (input) |" in md and "alpha 2" in md
    assert subset_of(val / "alpha_0.png") == "alpha" and subset_of(val / "x.png") == "other"


def test_margin_over_the_reference_curve_by_hand():
    ref = [(0.5, 26.0), (0.8, 25.0), (1.0, 24.0)]

    def pt(ratio, p):
        return pareto.Point("m", 16, None, None, 1.0, p, 0.0, ratio, ratio, 0.0, 0.0)

    assert pareto.margin(pt(0.8, 25.5), ref) == pytest.approx(0.5)
    assert pareto.margin(pt(0.9, 24.0), ref) == pytest.approx(-0.5)  # curve is 24.5 there
    assert pareto.margin(pt(0.65, 25.5), ref) == pytest.approx(0.0)
    assert pareto.margin(pt(1.2, 30.0), ref) is None  # beyond the curve: not comparable


def test_margin_interval_resamples_images_paired():
    rng = np.random.default_rng(0)
    truth = rng.uniform(20, 40, 60)
    ref_gains = (0.5, 1.0, 1.5)

    def pt(series, gain, psnr_img, cf_img):
        ratio = float(np.mean(cf_img) / np.mean(truth))
        return pareto.Point(series, 16, None, None, gain, float(np.mean(psnr_img)), 0.0, ratio,
                            ratio, 0.0, 0.0, tuple(psnr_img), tuple(cf_img))

    # the reference loses 2 dB per unit of ratio; per-image noise around it
    ref = [pt("ref", g, 26 - 2 * g + rng.normal(0, 1.0, 60), g * truth) for g in ref_gains]
    curve = sorted((r.cf_ratio, r.psnr) for r in ref)
    # a candidate 0.5 dB above the reference on every image: paired resampling keeps exactly
    # that shift in every resample (an unpaired bootstrap would spread it by the image noise)
    better = pt("cand", 1.0, np.array(ref[1].image_psnr) + 0.5, truth)
    lo, hi = pareto.margin_ci(better, ref, truth, n_boot=300)
    assert pareto.margin(better, curve) == pytest.approx(0.5, abs=1e-9)
    assert lo == pytest.approx(0.5) and hi == pytest.approx(0.5)
    # one as good only on average (noise of 1.5 dB per image): the interval spans 0
    noisy = pt("cand", 1.0, np.array(ref[1].image_psnr) + rng.normal(0, 1.5, 60), truth)
    lo, hi = pareto.margin_ci(noisy, ref, truth, n_boot=300)
    assert lo < pareto.margin(noisy, curve) < hi and hi - lo > 0.4
    # out of the curve's reach, or without per-image numbers: no interval
    assert pareto.margin_ci(pt("cand", 3.0, ref[1].image_psnr, 3 * truth), ref, truth) is None
    assert pareto.margin_ci(pareto.Point("m", 16, None, None, 1.0, 25.0, 0.0, 1.0, 1.0, 0.0,
                                         0.0), ref, truth) is None


def test_the_sweep_covers_gains_and_a_hybrids_decoding(val, hybrid_path, tmp_path):
    v = pareto.ValImages.load(val)
    pts = pareto.sweep(str(hybrid_path), v, gains=(0.0, 1.0, 2.0), render_factors=(4,),
                       temperatures=(0.2, 1.0), class_weights=(1.0,))
    assert len(pts) == 6
    assert {p.series for p in pts} == {"hybrid rf4 T0.2 w1", "hybrid rf4 T1 w1"}
    zero = [p for p in pts if p.gain == 0.0]
    assert all(p.cf_ratio == 0.0 and p.dpsnr_over_gray == pytest.approx(0.0) for p in zero)
    for s in {p.series for p in pts}:
        ratios = [p.cf_ratio for p in sorted(pts, key=lambda p: p.gain) if p.series == s]
        assert ratios[0] < ratios[1] < ratios[2]  # more gain, more colour
    # the temperature is a real axis (its effect by hand: test_chroma_bins)
    at1 = {p.temperature: p.psnr for p in pts if p.gain == 1.0}
    assert at1[0.2] != at1[1.0]
    # the command line writes the table, the JSON and the plot
    pareto.main(["--val", str(val), "--models", str(hybrid_path), "--reference",
                 str(hybrid_path), "--reference-rf", "4", "--render-factors", "4",
                 "--gains", "0.5,1,2", "--temperatures", "0.38", "--class-weights", "0.5",
                 "--json", str(tmp_path / "p.json"), "--plot", str(tmp_path / "p.png")])
    doc = json.loads((tmp_path / "p.json").read_text())
    # the reference spans the reference gains whatever --gains says (its curve must reach
    # every candidate's colourfulness)
    assert sorted(p["gain"] for p in doc["points"]) == list(pareto.REFERENCE_GAINS)
    assert all(p["margin"] == pytest.approx(0.0) for p in doc["points"])  # its own curve
    assert all(p["margin_ci"] is None and "image_psnr" not in p for p in doc["points"])
    assert (tmp_path / "p.png").stat().st_size > 10_000
