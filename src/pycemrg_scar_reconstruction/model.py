"""The coordinate network f: normalised xyz -> scar probability, with dropout for MC sampling.

f(x) = sigmoid(MLP(encode(x))), the logit clamped to +-15 (its gradient passed straight through);
with ``output_activation`` none, f(x) = MLP(encode(x)), trained as it is and clipped to [0, 1] when
predicting.
The encoding is either the raw coordinates or random Fourier features [sin(2 pi B x),
cos(2 pi B x)] with a fixed Gaussian B (Tancik et al. 2020). Dropout is applied functionally with
an explicit flag, so MC sampling never depends on a module's train/eval state. Layers before the
first dropout are deterministic: for M MC samples they run once on the batch. With a fresh mask
per row the rest runs on the M-times repeated batch; with one mask per pass shared by all rows the
masks are folded into the weights of the layer after each dropout, so with dropout after the last
hidden layer only the output product has M columns.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .config import ModelConfig

#: Logits are clamped to +-LOGIT_LIMIT before the sigmoid (see :class:`BoundedSigmoid`).
LOGIT_LIMIT = 15.0


def dropout_keep(h: torch.Tensor, p: float) -> torch.Tensor:
    """A bool mask of ``h``'s shape: True (kept) with probability 1 - p, from cheap random bits.

    ``torch.nn.functional.dropout`` spends most of a small MLP's training step drawing one float per
    element on CPU; here one int32 draw serves two elements. ``random_`` on int32 fills
    [0, 2^31 - 1] (31 random bits); shifted left by one, each 16-bit half is uniform over the signed
    16-bit range (the low half in steps of 2), so one scalar comparison drops an element with
    probability p (to 1/32768) in both halves.
    """
    n = h.numel()
    bits = torch.empty((n + 1) // 2, dtype=torch.int32, device=h.device).random_().bitwise_left_shift_(1)
    return (bits.view(torch.int16) >= round(p * 65536) - 32768)[:n].view(h.shape)


class FourierFeatures(nn.Module):
    """[sin(2 pi x B^T), cos(2 pi x B^T)] with Gaussian frequencies B, fixed at construction.

    Isotropic: B ~ N(0, scale^2 I). With ``anisotropy`` r and a unit ``normal`` n the frequencies
    are stretched by sqrt(r) within the plane perpendicular to n and shrunk by sqrt(r) along it
    (standard deviations scale * sqrt(r) and scale / sqrt(r); their geometric mean stays ``scale``).

    Parameters
    ----------
    n_features : number of frequencies (the output has 2 * n_features columns).
    scale : standard deviation of B, in cycles per normalised unit.
    seed : seed of B.
    anisotropy : in-plane / normal standard deviation ratio (1: isotropic).
    normal : (3,) direction of the normal (the slices' normal); None: isotropic.
    """

    def __init__(
        self, n_features: int, scale: float, seed: int, anisotropy: float = 1.0, normal: np.ndarray | None = None
    ) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        b = torch.randn(n_features, 3, generator=gen) * scale
        if normal is not None and anisotropy != 1.0:
            n = torch.as_tensor(np.asarray(normal, dtype=np.float64))
            nn_t = torch.outer(n, n) / n.dot(n)
            root = math.sqrt(anisotropy)
            stretch = root * (torch.eye(3, dtype=torch.float64) - nn_t) + nn_t / root  # symmetric
            b = (b.double() @ stretch).float()
        self.register_buffer("B", b)

    B: torch.Tensor

    @property
    def out_features(self) -> int:
        return 2 * int(self.B.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        proj = (2 * math.pi) * (x @ self.B.T)
        if proj.requires_grad:  # out= has no gradient: a field differentiated in space concatenates
            return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)
        # sin and cos written into the two halves of one output: no concatenated copy (at a million
        # nodes each fresh buffer costs its page faults)
        f = proj.shape[-1]
        out = proj.new_empty((*proj.shape[:-1], 2 * f))
        torch.sin(proj, out=out[..., :f])
        torch.cos(proj, out=out[..., f:])
        return out


class ScarMLP(nn.Module):
    """MC-dropout MLP on normalised coordinates (see the module docstring)."""

    def __init__(
        self, config: ModelConfig, seed: int = 0, normal: np.ndarray | None = None, norm_scale_mm: float | None = None
    ) -> None:
        """``normal``: (3,) slice normal the Fourier frequencies are stretched about (None: isotropic);
        ``norm_scale_mm``: the data's normalisation scale in mm, which ``fourier_unit_mm`` needs and
        ``fourier_max_unit_mm`` compares (None: a net built without data, never capped)."""
        super().__init__()
        self.config = config
        #: the cap (mm) when ``fourier_max_unit_mm`` set this mesh's frequencies, else None
        self.capped_unit_mm: float | None = None
        if config.encoding == "fourier":
            scale = config.fourier_scale
            if config.fourier_unit_mm is not None:
                if norm_scale_mm is None:
                    raise ValueError("fourier_unit_mm needs the data's normalisation scale (norm_scale_mm)")
                scale *= norm_scale_mm / config.fourier_unit_mm  # cycles per unit -> per normalised unit
            elif (cap := config.fourier_max_unit_mm) is not None and norm_scale_mm is not None and norm_scale_mm > cap:
                scale *= norm_scale_mm / cap  # a large mesh: per ``cap`` mm, as a mesh of that size is
                self.capped_unit_mm = cap
            self.encode: nn.Module = FourierFeatures(config.fourier_features, scale, seed, config.fourier_anisotropy, normal)
            n_in = self.encode.out_features
        else:
            self.encode = nn.Identity()
            n_in = 3
        widths = [n_in] + [config.width] * config.depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.out = nn.Linear(config.width, 1)
        # dropout after hidden layer i (0-based) when this is True
        self._dropout_after = [
            config.dropout > 0 and (config.dropout_position == "all" or i == config.depth - 1) for i in range(config.depth)
        ]

    def set_output_bias(self, probability: float) -> None:
        """Start the output at a given probability (the mean target) instead of 0.5 (sigmoid) or 0 (none)."""
        p = min(max(probability, 1e-3), 1 - 1e-3)
        with torch.no_grad():
            self.out.bias.fill_(p if self.config.output_activation == "none" else math.log(p / (1 - p)))

    def sample_masks(self, samples: int, generator: torch.Generator) -> list[torch.Tensor]:
        """One dropout mask per pass and dropout layer, shared by all nodes: (M, width) each, scaled 1/(1-p).

        A pass with shared masks is one sampled sub-network, so prediction does not depend on how
        nodes are batched and each pass is a coherent scar field; per node the distribution is the
        same as with independent masks. Training with ``dropout_masks="step"`` draws them per step.
        Drawn on ``generator``'s device.
        """
        keep = 1.0 - self.config.dropout
        n_layers = sum(self._dropout_after)
        full = torch.full((samples, self.config.width), keep, device=generator.device)
        return [torch.bernoulli(full, generator=generator) / keep for _ in range(n_layers)]

    def logits(
        self,
        x: torch.Tensor,
        samples: int = 1,
        dropout: bool = True,
        masks: list[torch.Tensor] | None = None,
        encoded: bool = False,
    ) -> torch.Tensor:
        """Logits for ``samples`` stochastic passes.

        Parameters
        ----------
        x : (B, 3) normalised coordinates, or (B, n_in) their encoding when ``encoded``.
        samples : M, the number of MC-dropout passes.
        dropout : apply dropout (True for training and MC prediction).
        masks : per-pass masks from :meth:`sample_masks`, shared by every row and folded into the
            weights of the layer after each dropout (prediction; training with per-step masks);
            None draws a fresh mask per row (training with per-row masks).
        encoded : ``x`` is already ``self.encode(coordinates)`` (the encoding has no trainable
            parameters, so training can encode every membership once instead of every step).

        Returns
        -------
        (M, B) logits.
        """
        n = x.shape[0]
        h = x if encoded else self.encode(x)
        repeated = False
        i_drop = 0
        scale: float | torch.Tensor = 1.0  # applied to the next layer's input columns, i.e. to its weights
        for layer, drop in zip(self.hidden, self._dropout_after):
            h = torch.relu_(_linear(layer, h, scale))  # type: ignore[arg-type]  # in place: addmm's backward does not need its output
            scale = 1.0
            if not (drop and dropout):
                continue
            if masks is not None:
                # One mask per pass shared by every row: (h * mask) W^T = h (W * mask)^T, so the
                # mask goes into M copies of the next layer's weights and no B x width product is made.
                scale = masks[i_drop]
                i_drop += 1
                continue
            # The deterministic prefix ran once; the first mask multiplies a broadcast view of
            # it, which makes the M copies without a separate repeat.
            h = h.view(-1, n, h.shape[-1]) if repeated else h.unsqueeze(0).expand(samples, n, h.shape[-1])
            repeated = True
            h = h * dropout_keep(h, self.config.dropout)  # mul casts the bool mask to float (forward and backward)
            h = h.reshape(samples * n, -1)
            # inverted-dropout scale, folded into the next layer's weights (width numbers, not B x width)
            scale = 1.0 / (1.0 - self.config.dropout)
        out = _linear(self.out, h, scale)
        if out.dim() == 3:  # (M, B, 1) from per-pass masks
            return out.squeeze(-1)
        out = out.squeeze(-1)
        if not repeated:
            out = out.repeat(samples)
        return out.view(samples, n)

    def forward(
        self,
        x: torch.Tensor,
        samples: int = 1,
        dropout: bool = True,
        masks: list[torch.Tensor] | None = None,
        encoded: bool = False,
        clip: bool = True,
    ) -> torch.Tensor:
        """(M, B) probabilities in float32: with the sigmoid output in [sigmoid(-15), sigmoid(15)] =
        [3.1e-7, 1 - 3.1e-7] (the logits clamped to +-:data:`LOGIT_LIMIT`, see :class:`BoundedSigmoid`);
        without an output activation the last layer's value, clipped to [0, 1] unless ``clip`` is False
        (training: the loss sees the value as it is).
        """
        z = self.logits(x, samples, dropout, masks, encoded).float()
        if self.config.output_activation == "none":
            return z.clamp(0.0, 1.0) if clip else z
        return BoundedSigmoid.apply(z)


class BoundedSigmoid(torch.autograd.Function):
    """sigmoid(clamp(z, -LOGIT_LIMIT, LOGIT_LIMIT)), with the gradient p (1 - p) of its output.

    Beyond +-15 the sigmoid's gradient underflows to denormal floats, which x86 CPUs process many
    times slower; at the clamped output it is at least 3.1e-7. The clamp passes gradients straight
    through (a node beyond the limit still gets the limit's slope, where a plain clamp sends zero),
    so the backward pass is one elementwise product instead of clamp's four comparison passes.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor) -> torch.Tensor:
        # 1 / (1 + exp(-z)) rather than torch's sigmoid, whose CPU kernel computes the elements at the
        # end of each thread's share another way (a different exp): with it the result's last bits
        # depended on the thread count, and with them the whole training
        p = z.clamp(-LOGIT_LIMIT, LOGIT_LIMIT).neg_().exp_().add_(1.0).reciprocal_()
        ctx.save_for_backward(p)
        return p

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (p,) = ctx.saved_tensors
        return torch.ops.aten.sigmoid_backward(grad, p)


def _linear(layer: nn.Linear, h: torch.Tensor, scale: float | torch.Tensor) -> torch.Tensor:
    """``layer(h * scale)`` computed as ``h @ (scale W)^T + b``.

    ``scale`` is a number, or (M, in) per-pass column scales (dropout masks): then ``h`` is (B, in)
    or (M, B, in) and the result (M, B, out).
    """
    if isinstance(scale, torch.Tensor):
        w = layer.weight[None] * scale[:, None, :]  # (M, out, in)
        if h.dim() == 2:  # all passes in one matmul: (B, in) x (in, M * out)
            m, out_f = w.shape[0], w.shape[1]
            y = torch.addmm(layer.bias.repeat(m), h, w.reshape(m * out_f, -1).T)
            return y.view(-1, m, out_f).transpose(0, 1)
        return torch.baddbmm(layer.bias[None, None, :], h, w.transpose(1, 2))
    if scale == 1.0:
        return layer(h)
    return nn.functional.linear(h, layer.weight * scale, layer.bias)


def n_parameters(model: nn.Module) -> int:
    """Trainable parameter count."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
