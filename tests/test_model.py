"""The network: the MC forward, dropout masks, the bounded sigmoid and the Fourier encoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pycemrg_scar_reconstruction.config import ModelConfig
from pycemrg_scar_reconstruction.model import ScarMLP


def test_mc_forward_is_one_pass_over_a_repeated_batch():
    torch.manual_seed(0)
    for position in ("all", "last"):
        net = ScarMLP(ModelConfig(width=16, depth=3, dropout=0.3, dropout_position=position))
        x = torch.rand(10, 3) * 2 - 1
        det = net(x, samples=4, dropout=False)
        assert det.shape == (4, 10)
        torch.testing.assert_close(det[0], det[3])  # no dropout: every pass the same
        torch.testing.assert_close(det[0], net(x, samples=1, dropout=False)[0])
        mc = net(x, samples=4)
        assert mc.shape == (4, 10) and not torch.allclose(mc[0], mc[1])
        assert float(mc.detach().min()) >= 0 and float(mc.detach().max()) <= 1


def test_output_bias_starts_at_the_mean_target():
    net = ScarMLP(ModelConfig(encoding="none", width=8, depth=2, dropout=0.0))
    torch.nn.init.zeros_(net.out.weight)
    net.set_output_bias(0.07)
    torch.testing.assert_close(net(torch.zeros(3, 3), dropout=False), torch.full((1, 3), 0.07))


def test_probabilities_are_clamped_where_the_sigmoid_would_underflow():
    from pycemrg_scar_reconstruction.model import LOGIT_LIMIT

    net = ScarMLP(ModelConfig(encoding="none", width=8, depth=2, dropout=0.0))
    torch.nn.init.zeros_(net.out.weight)
    for bias in (-40.0, 40.0, -5.0, 3.0):
        net.zero_grad()
        with torch.no_grad():
            net.out.bias.fill_(bias)
        p = net(torch.zeros(3, 3), dropout=False)
        z = torch.tensor(max(min(bias, LOGIT_LIMIT), -LOGIT_LIMIT))
        torch.testing.assert_close(p, torch.full((1, 3), float(torch.sigmoid(z))))
        p.sum().backward()
        # the gradient is sigmoid's slope at the clamped logit: never a denormal float (slow on x86),
        # and exactly the sigmoid's gradient inside the limits
        slope = float(torch.sigmoid(z) * (1 - torch.sigmoid(z)))
        assert slope >= 3e-7
        assert float(net.out.bias.grad) == pytest.approx(3 * slope, rel=1e-5)


def test_dropout_masks_drop_with_probability_p_in_both_lanes():
    from pycemrg_scar_reconstruction.model import dropout_keep

    torch.manual_seed(0)
    h = torch.ones(400_000)
    for p in (0.1, 0.3):
        dropped = (~dropout_keep(h, p)).float().view(-1, 2).mean(0)  # the two 16-bit lanes of each draw
        assert torch.allclose(dropped, torch.tensor([p, p]), atol=0.005), dropped


def test_training_dropout_scale_is_folded_into_the_next_layer():
    # with every unit kept, a dropout pass equals the deterministic pass scaled by 1/(1-p) before `out`
    torch.manual_seed(0)
    net = ScarMLP(ModelConfig(width=16, depth=2, dropout=0.25))
    x = torch.rand(7, 3)
    import pycemrg_scar_reconstruction.model as model

    keep_all = model.dropout_keep
    model.dropout_keep = lambda h, p: torch.ones_like(h, dtype=torch.bool)
    try:
        z = net.logits(x, samples=2)
    finally:
        model.dropout_keep = keep_all
    h = torch.relu(net.hidden[1](torch.relu(net.hidden[0](net.encode(x)))))
    expected = net.out(h / 0.75).squeeze(-1)
    torch.testing.assert_close(z.detach(), torch.stack([expected, expected]).detach())


@pytest.mark.parametrize("position", ["last", "all"])
def test_per_pass_masks_in_the_weights_equal_masking_the_activations(position):
    # (h * mask) W^T = h (W * mask)^T: check values and gradients against the plain per-pass network
    torch.manual_seed(0)
    net = ScarMLP(ModelConfig(width=16, depth=3, dropout=0.3, dropout_position=position)).double()
    x = torch.rand(9, 3, dtype=torch.float64)
    masks = [m.double() for m in net.sample_masks(3, torch.Generator().manual_seed(1))]
    assert len(masks) == (3 if position == "all" else 1)
    z = net.logits(x, samples=3, masks=masks)

    def plain(m: int) -> torch.Tensor:
        h, i = net.encode(x), 0
        for layer, drop in zip(net.hidden, net._dropout_after):
            h = torch.relu(layer(h))
            if drop:
                h, i = h * masks[i][m], i + 1
        return net.out(h).squeeze(-1)

    expected = torch.stack([plain(m) for m in range(3)])
    torch.testing.assert_close(z, expected)
    g = torch.autograd.grad(z.square().sum(), list(net.parameters()))
    g_ref = torch.autograd.grad(expected.square().sum(), list(net.parameters()))
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b)


def test_bounded_sigmoid_gradient_is_the_sigmoid_gradient_inside_the_limits():
    from pycemrg_scar_reconstruction.model import BoundedSigmoid

    z = torch.linspace(-14, 14, 57, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(BoundedSigmoid.apply, (z,))


def test_bounded_sigmoid_is_the_sigmoid_and_the_same_on_any_thread_count():
    from pycemrg_scar_reconstruction.model import LOGIT_LIMIT, BoundedSigmoid

    gen = torch.Generator().manual_seed(0)
    previous = torch.get_num_threads()
    try:
        for columns in range(4090, 4130):  # (32, n): sizes whose split between threads ends mid-vector
            z = torch.randn(32, columns, generator=gen) * 8
            torch.set_num_threads(1)
            one = BoundedSigmoid.apply(z)
            torch.set_num_threads(2)
            assert torch.equal(BoundedSigmoid.apply(z), one), columns
            torch.testing.assert_close(one, z.clamp(-LOGIT_LIMIT, LOGIT_LIMIT).sigmoid(), rtol=1e-6, atol=0)
    finally:
        torch.set_num_threads(previous)


def test_anisotropic_fourier_frequencies_stretch_in_plane_and_shrink_along_the_normal():
    from pycemrg_scar_reconstruction.model import FourierFeatures

    iso = FourierFeatures(32, 0.5, seed=4).B.double()
    assert torch.equal(FourierFeatures(32, 0.5, seed=4, anisotropy=1.0, normal=np.array([0, 0, 1.0])).B, iso.float())
    normal = np.array([1.0, 2.0, 2.0])  # not unit length on purpose
    n = torch.as_tensor(normal / 3)
    b = FourierFeatures(32, 0.5, seed=4, anisotropy=4.0, normal=normal).B.double()
    # along the normal: half the isotropic component; within the plane: twice
    torch.testing.assert_close(b @ n, (iso @ n) / 2, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(b - torch.outer(b @ n, n), 2 * (iso - torch.outer(iso @ n, n)), rtol=1e-6, atol=1e-6)


def test_fourier_encoding_is_sin_then_cos_and_differentiable_in_space():
    from pycemrg_scar_reconstruction.model import FourierFeatures

    enc = FourierFeatures(8, 0.5, seed=1)
    x = torch.randn(6, 3, dtype=torch.float32)
    proj = 2 * np.pi * (x.double() @ enc.B.double().T)
    expected = torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1).float()
    torch.testing.assert_close(enc(x), expected, rtol=1e-5, atol=1e-5)
    # the same values with a gradient wanted (the in-place halves have none): d sin / dx = 2 pi cos B
    xg = x.clone().requires_grad_(True)
    out = enc(xg)
    assert torch.equal(out.detach(), enc(x))
    out[:, 0].sum().backward()
    torch.testing.assert_close(
        xg.grad, (2 * np.pi * torch.cos(proj[:, 0]))[:, None].float() * enc.B[0], rtol=1e-4, atol=1e-4
    )
