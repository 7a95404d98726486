"""The shipped default model: present, hash-verified, self-describing, and better than gray."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from streamcolor.color import colorfulness, psnr, rgb_to_luma_u8
from streamcolor.model.colorizer import Colorizer
from streamcolor.model.contract import contract_from_meta
from streamcolor.model.weights import DEFAULT_MODEL, list_models, read_metadata

VAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "val"


def test_default_model_is_shipped():
    assert DEFAULT_MODEL in list_models()


@pytest.mark.parametrize("name", sorted(list_models()))
def test_shipped_models_are_verified_and_self_describing(name):
    rec = list_models()[name]
    rec.verify()  # sha256 of the file matches models.json
    assert rec.path.stat().st_size <= 30 * 1024 * 1024
    meta = read_metadata(rec.path)
    assert meta["arch"] == rec.arch and rec.arch in ("unet_lite0", "unet_lite0_hybrid")
    # a hybrid's decoding is in its contract, and only a hybrid has one
    assert rec.contract.hybrid == (rec.arch == "unet_lite0_hybrid")
    assert contract_from_meta(meta) == rec.contract  # the file and models.json agree
    for key in ("render_factor", "color_space", "recipe", "data", "metrics"):
        assert key in meta, key
    model, gray = meta["metrics"]["model"], meta["metrics"]["gray"]
    assert gray["colorfulness"] == 0 and model["colorfulness"] > 10  # measured beside gray
    if name == DEFAULT_MODEL:  # the default beats returning the input; `artistic` trades
        assert model["psnr"] > gray["psnr"]  # 0.09 dB of that for colour (model card)


@pytest.mark.skipif(not VAL.is_dir(), reason="needs ../shared/data/val beside the checkout")
def test_default_model_beats_gray_on_real_photos():
    files = sorted(VAL.glob("*.jpg"))[::25][:8]
    colorizer = Colorizer(precision="fp32")
    gains, colours = [], []
    for f in files:
        gt = cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)
        y = rgb_to_luma_u8(gt)
        out = colorizer.colorize(y)
        # luma kept: only RGB rounding and gamut clipping of saturated pixels move it
        assert np.abs(rgb_to_luma_u8(out).astype(int) - y).mean() < 1.0
        gains.append(psnr(out, gt) - psnr(np.repeat(y[..., None], 3, 2), gt))
        colours.append(colorfulness(out))
    assert np.mean(gains) > 0.3, gains  # a real model: better than returning the input
    assert np.mean(colours) > 8.0, colours  # and it does add colour
