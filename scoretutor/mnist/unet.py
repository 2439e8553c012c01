"""The noise-conditional U-Net of notebook 05: s_θ(x, σ) for 28×28 digits.

- ``ResBlock``: a pre-norm residual block modulated by the σ-embedding (FiLM).
- ``SelfAttention``: optional attention over a small feature map.
- ``ScoreUNet``: 28 → 14 → 7 and back, with Karras et al.'s input scaling and, with ``c_skip``, a
  learned correction to the Gaussian score −x/(σ² + σ_d²).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from scoretutor import checks
from scoretutor.models import SigmaEmbedding

Tensor = torch.Tensor


def full_precision(x: Tensor):
    """A context with autocast switched off for x's device if it is on (else a no-op context)."""
    kind = x.device.type
    try:
        on = torch.is_autocast_enabled(kind)
    except TypeError:  # torch < 2.4 takes no device type
        on = torch.is_autocast_cpu_enabled() if kind == "cpu" else torch.is_autocast_enabled()
    return torch.autocast(kind, enabled=False) if on else contextlib.nullcontext()


class ResBlock(nn.Module):
    """h + conv(SiLU(FiLM(GN(conv(SiLU(GN(h))))))): a pre-norm residual block whose second
    normalisation is modulated by the σ-embedding, GN(h)·(1 + a(e)) + b(e) (FiLM)."""

    def __init__(self, c_in: int, c_out: int, embed_dim: int, groups: int = 8):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.film = nn.Linear(embed_dim, 2 * c_out)
        self.norm2 = nn.GroupNorm(min(groups, c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)

    def forward(self, h: Tensor, e: Tensor) -> Tensor:
        a, b = self.film(e)[:, :, None, None].chunk(2, dim=1)
        y = self.conv1(nn.functional.silu(self.norm1(h)))
        y = self.conv2(nn.functional.silu(self.norm2(y) * (1 + a) + b))
        return self.skip(h) + y


class SelfAttention(nn.Module):
    """h + Attention(GN(h)) over the H·W positions of a (small) feature map, with 4 heads."""

    def __init__(self, c: int, groups: int = 8, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(min(groups, c), c)
        self.attn = nn.MultiheadAttention(c, heads if c % heads == 0 else 1, batch_first=True)

    def forward(self, h: Tensor) -> Tensor:
        n, c, height, width = h.shape
        t = self.norm(h).reshape(n, c, height * width).transpose(1, 2)
        y, _ = self.attn(t, t, t, need_weights=False)
        return h + y.transpose(1, 2).reshape(n, c, height, width)


class ScoreUNet(nn.Module):
    """s_θ(x, σ) ≈ ∇ₓ log p_σ(x) for (N, C, H, W) images: a small U-Net, e.g. 28 → 14 → 7.

    s_θ(x, σ) = F_θ(c_in(σ)·x, e(log σ)) / σ, with the input scaled by c_in = 1/√(σ² + σ_data²)
    so the network sees inputs of about unit size at every noise level (Karras et al. 2022), and the
    output divided by σ (the ∝ 1/σ size of the true perturbed score, as in NCSNv2). e is
    :class:`SigmaEmbedding` (Fourier features of log σ), so any σ > 0 is accepted; it modulates
    every residual block (FiLM).

    With ``c_skip=True`` (the shipped MNIST model) the network only learns a correction to the
    perturbed score of a Gaussian with the data's scale, N(0, σ_data² I) (Karras et al.'s
    preconditioning, D = c_skip x + c_out F written as a score):

        s_θ(x, σ) = −x/(σ² + σ_data²) + σ_data/√(σ² + σ_data²) · F_θ(c_in x, e(log σ)) / σ.

    At small σ this is the plain form; at large σ the Gaussian term carries the score and F's errors
    are damped by σ_data/σ instead of reaching the denoised image σ-fold.

    With ``n_classes`` = K > 0 the model is class-conditional, s_θ(x, σ, y) ≈ ∇ₓ log p_σ(x | y) (notebook 08):
    a learned embedding of y ∈ {0, …, K−1, ∅} is added to the σ-embedding; y = ∅ (``labels=None``, index K)
    is the unconditional score, learned by dropping labels in training (classifier-free guidance).

    Under bf16 autocast (:func:`scoretutor.device.autocast`) the convolutions and linear layers of the
    coarser resolutions run in bf16; c_in, the Gaussian term, the division by σ and the output stay in
    x's dtype (fp32), and so does the full-resolution level (stem, its blocks, the last up-sampling
    block, the output head: ~5 % of the multiply-adds). At σ = 0.01 the noise the network must find is
    ~1 % of the scaled image c_in·x, below bf16's spacing (2⁻⁸ relative): rounded to bf16 there the score
    is off by ~13 % (relative L2) at σ_min, with this level kept in fp32 by < 1 %.

    Compute sits where it is cheap: a 3×3 convolution costs 9·C_in·C_out·H·W multiply-adds, so a
    few channels at full resolution and most blocks at the coarsest one. Encoder: ``blocks[k]``
    residual blocks with ``channels[k]`` channels at resolution k, then a stride-2 convolution;
    optional self-attention at the coarsest resolution; decoder: a 2×2 transposed convolution,
    the encoder's feature map concatenated (skip connection), one residual block per resolution.
    """

    def __init__(self, in_channels: int = 1, channels: tuple[int, ...] = (8, 32, 64),
                 blocks: tuple[int, ...] = (0, 1, 2), attention: bool = False, embed_dim: int = 64,
                 sigma_data: float = 0.5, groups: int = 8, c_skip: bool = False, n_classes: int = 0):
        super().__init__()
        channels, blocks = tuple(int(c) for c in channels), tuple(int(b) for b in blocks)
        if len(channels) != len(blocks) or len(channels) < 2:
            raise ValueError(f"channels and blocks need one entry per resolution (>= 2), "
                             f"got channels={channels}, blocks={blocks}")
        for c in channels:
            checks.count(c, "channels", 1)
        for b in blocks:
            checks.count(b, "blocks", 0)
        checks.count(in_channels, "in_channels", 1)
        self.config = {"in_channels": int(in_channels), "channels": list(channels), "blocks": list(blocks),
                       "attention": bool(attention), "embed_dim": int(embed_dim),
                       "sigma_data": float(sigma_data), "groups": int(groups), "c_skip": bool(c_skip)}
        checks.count(n_classes, "n_classes", 0)
        if n_classes:  # a class-conditional model (notebook 08); the unconditional card stays as it was
            self.config["n_classes"] = int(n_classes)
        self.sigma_data = float(sigma_data)
        self.embed = SigmaEmbedding(embed_dim)
        # label k < n_classes, or n_classes = "no label" (∅, classifier-free guidance's null label)
        self.label_embed = nn.Embedding(n_classes + 1, embed_dim) if n_classes else None
        self.stem = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(
            nn.ModuleList(ResBlock(c, c, embed_dim, groups) for _ in range(b))
            for c, b in zip(channels, blocks, strict=True))
        self.downs = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1)
                                   for a, b in zip(channels[:-1], channels[1:], strict=True))
        self.attn = SelfAttention(channels[-1], groups) if attention else None
        levels = list(reversed(range(len(channels) - 1)))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(channels[k + 1], channels[k], 2, stride=2)
                                 for k in levels)
        self.up_blocks = nn.ModuleList(ResBlock(2 * channels[k], channels[k], embed_dim, groups)
                                       for k in levels)
        self.out_norm = nn.GroupNorm(min(groups, channels[0]), channels[0])
        self.out = nn.Conv2d(channels[0], in_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def n_classes(self) -> int:
        """Number of classes the model is conditioned on (0: unconditional)."""
        return self.config.get("n_classes", 0)

    def forward(self, x: Tensor, sigma: float | Tensor, labels: Tensor | None = None) -> Tensor:
        factor = 2 ** len(self.downs)
        if (x.ndim != 4 or x.shape[1] != self.config["in_channels"]
                or x.shape[-1] % factor or x.shape[-2] % factor):
            raise ValueError(f"expected images of shape (N, {self.config['in_channels']}, H, W) with H and W "
                             f"divisible by {factor}, got {tuple(x.shape)}")
        s = checks.sigma(sigma, x)  # x's dtype: fp32 also under autocast (element-wise ops keep it)
        e = self.embed(s)
        if self.label_embed is not None:
            e = e + self.label_embed(self._labels(labels, x))
        elif labels is not None:
            raise ValueError("labels given to an unconditional model (n_classes = 0)")
        e = nn.functional.silu(e)
        c_in = torch.rsqrt(s**2 + self.sigma_data**2)[:, None, None, None]  # fp32, as is x · c_in
        with full_precision(x):  # the full-resolution level in x's dtype also under autocast (see above)
            e_full = e.to(x.dtype)
            h = self.stem(x * c_in)
            for block in self.down_blocks[0]:
                h = block(h, e_full)
        skips = [h]
        h = self.downs[0](h)
        for k in range(1, len(self.down_blocks)):
            for block in self.down_blocks[k]:
                h = block(h, e)
            if k < len(self.downs):
                skips.append(h)
                h = self.downs[k](h)
        if self.attn is not None:
            h = self.attn(h)
        for up, block in zip(self.ups[:-1], self.up_blocks[:-1], strict=True):
            h = block(torch.cat([up(h), skips.pop()], dim=1), e)
        with full_precision(x):
            h = self.up_blocks[-1](torch.cat([self.ups[-1](h.to(x.dtype)), skips.pop()], dim=1), e_full)
            out = self.out(nn.functional.silu(self.out_norm(h))) / s[:, None, None, None]
        if not self.config["c_skip"]:
            return out
        var = (s**2 + self.sigma_data**2)[:, None, None, None]
        return -x / var + self.sigma_data * torch.rsqrt(var) * out

    def _labels(self, labels: Tensor | int | None, x: Tensor) -> Tensor:
        """(N,) class indices; None = the null label ∅ (index n_classes) for every image."""
        k = self.n_classes
        if labels is None:
            return torch.full((x.shape[0],), k, dtype=torch.long, device=x.device)
        labels = torch.as_tensor(labels, device=x.device).long().expand(x.shape[0])
        if labels.numel() and (labels.min() < 0 or labels.max() > k):
            raise ValueError(f"labels must lie in 0..{k - 1} (or {k} for no label), "
                             f"got {labels.min().item()}..{labels.max().item()}")
        return labels
