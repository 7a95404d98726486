"""The colourfulness hinge loss: the torch colourfulness equals the numpy reference, the
hinge pushes a dull prediction towards its truth's colour and leaves a colourful one alone."""

from __future__ import annotations

import numpy as np
import torch

from streamcolor.color import colorfulness_abs
from streamcolor.training.losses import colorfulness_abs_torch, colorfulness_hinge


def test_torch_colourfulness_equals_the_numpy_reference(rng):
    x = rng.random((3, 3, 12, 17)).astype(np.float32)
    got = colorfulness_abs_torch(torch.tensor(x)).numpy()
    want = [colorfulness_abs(np.moveaxis(x[i], 0, -1) * 255.0) for i in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_hinge_gradient_raises_a_dull_predictions_colour(rng):
    truth = torch.tensor(rng.random((2, 3, 16, 16)).astype(np.float32))
    dull = (0.5 + 0.05 * (truth - 0.5)).requires_grad_(True)
    loss = colorfulness_hinge(dull, truth)
    assert loss.item() > 0
    loss.backward()
    with torch.no_grad():
        stepped = dull - 1e-4 * dull.grad / dull.grad.abs().max()
    assert (colorfulness_abs_torch(stepped) > colorfulness_abs_torch(dull.detach())).all()


def test_hinge_is_zero_with_no_gradient_once_the_truths_colour_is_reached(rng):
    truth = torch.tensor(rng.random((2, 3, 16, 16)).astype(np.float32)) * 0.5 + 0.25
    vivid = ((truth - 0.5) * 1.5 + 0.5).clamp(0, 1).requires_grad_(True)
    loss = colorfulness_hinge(vivid, truth)
    loss.backward()
    assert loss.item() == 0.0 and float(vivid.grad.abs().max()) == 0.0
