"""Small networks for score-based modelling of toy data.

- ``ScoreMLP``: s_θ(x): R^d → R^d, a plain MLP that outputs the score directly.
- ``NoiseConditionalScoreMLP``: s_θ(x, σ), conditioned on the noise level through an embedding of
  log σ; with ``scale_by_sigma`` the output is net(x, σ)/σ (the 1/σ scaling of NCSNv2, Song & Ermon 2020,
  which itself uses an unconditional net(x)); ``model.frozen_score()`` is the same function for
  a sampler, faster for a fixed σ.
- ``StackedScoreMLP``: K independent score MLPs, one per noise level σ_k, run as one batched net.
- ``EnergyMLP``: a scalar energy f_θ(x) with score s_θ(x) = −∇ₓ f_θ(x) (the score of
  p_θ = e^{−f_θ}/Z_θ, since ∇ₓ log Z_θ = 0), computed by autograd.

Every network accepts x of shape (N, d) or (N, ...) with prod(...) = d (images are flattened
internally) and returns outputs of the same shape as x. SiLU activations keep the networks
smooth, so tr(∇ₓ s_θ) in implicit score matching is informative (a ReLU MLP's Jacobian is
piecewise constant).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from scoretutor import checks

Tensor = torch.Tensor


def _mlp(d_in: int, hidden: int, d_out: int, n_layers: int) -> nn.Sequential:
    """n_layers hidden Linear+SiLU blocks, then a Linear to d_out."""
    layers: list[nn.Module] = []
    width = d_in
    for _ in range(n_layers):
        layers += [nn.Linear(width, hidden), nn.SiLU()]
        width = hidden
    layers.append(nn.Linear(width, d_out))
    return nn.Sequential(*layers)


def _check_sizes(dim: int, hidden: int, n_layers: int) -> None:
    for name, value in (("dim", dim), ("hidden", hidden), ("n_layers", n_layers)):
        checks.count(value, name, 1)


def _flatten(x: Tensor, dim: int) -> Tensor:
    """(N, ...) → (N, dim), checking that the trailing dimensions hold exactly dim numbers."""
    if x.ndim < 2 or math.prod(x.shape[1:]) != dim:
        raise ValueError(
            f"expected x of shape (N, {dim}) or (N, ...) with {dim} numbers per example, "
            f"got {tuple(x.shape)}"
        )
    return x.reshape(x.shape[0], dim)


class ScoreMLP(nn.Module):
    """s_θ(x): R^d → R^d, an MLP with ``n_layers`` hidden SiLU layers of width ``hidden``."""

    def __init__(self, dim: int = 2, hidden: int = 128, n_layers: int = 3):
        super().__init__()
        _check_sizes(dim, hidden, n_layers)
        self.dim = int(dim)
        self.net = _mlp(self.dim, hidden, self.dim, n_layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(_flatten(x, self.dim)).reshape(x.shape)


class SigmaEmbedding(nn.Module):
    """Fourier features of log σ followed by a small MLP: σ ↦ e(σ) ∈ R^embed_dim.

    Features are [sin(ω_k log σ), cos(ω_k log σ)] with fixed frequencies ω_k spread geometrically
    over [0.1, 10], which resolves noise levels from about 10⁻³ to 10³ without a lookup table,
    so the network also accepts levels it was not trained on.
    """

    def __init__(self, embed_dim: int = 32):
        super().__init__()
        if int(embed_dim) != embed_dim or embed_dim < 2 or embed_dim % 2:
            raise ValueError(f"embed_dim must be an even integer >= 2, got {embed_dim!r}")
        freqs = torch.logspace(-1, 1, embed_dim // 2)
        self.register_buffer("freqs", freqs)
        self.mlp = nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim))

    def forward(self, sigma: Tensor) -> Tensor:
        angles = torch.log(sigma)[:, None] * self.freqs.to(sigma.dtype)
        return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=-1))


class NoiseConditionalScoreMLP(nn.Module):
    """s_θ(x, σ) ≈ ∇ₓ log p_σ(x): an MLP whose every hidden layer is shifted by a σ-embedding.

    h_{l+1} = SiLU(W_l h_l + U_l e(σ) + b_l); with ``scale_by_sigma`` the output is
    s_θ(x, σ) = net(x, σ)/σ, matching the ∝ 1/σ size of the true perturbed score (NCSNv2's scaling;
    NCSNv2 itself drops the σ-embedding and uses an unconditional net(x)/σ).
    ``sigma`` may be a float, a 0-d tensor, or an (N,) tensor with one level per example.
    """

    def __init__(self, dim: int = 2, hidden: int = 128, n_layers: int = 3, embed_dim: int = 32,
                 scale_by_sigma: bool = True):
        super().__init__()
        _check_sizes(dim, hidden, n_layers)
        self.dim = int(dim)
        self.scale_by_sigma = bool(scale_by_sigma)
        self.embed = SigmaEmbedding(embed_dim)
        widths = [self.dim] + [hidden] * n_layers
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.cond = nn.ModuleList(nn.Linear(embed_dim, hidden) for _ in range(n_layers))
        self.out = nn.Linear(hidden, self.dim)
        self.act = nn.SiLU()

    def forward(self, x: Tensor, sigma: float | Tensor) -> Tensor:
        h = _flatten(x, self.dim)
        sigma = checks.sigma(sigma, x)
        e = self.embed(sigma)
        for layer, cond in zip(self.layers, self.cond, strict=True):
            h = self.act(layer(h) + cond(e))
        out = self.out(h)
        if self.scale_by_sigma:
            out = out / sigma[:, None]
        return out.reshape(x.shape)

    def frozen_score(self) -> Callable[[Tensor, float], Tensor]:
        """score(x, σ) = self(x, σ) for a float σ, with the σ-conditioning precomputed once per σ.

        Every hidden layer adds U_l e(σ); for a fixed σ that is a constant bias, so per σ we fold
        b_l + U_l e(σ) into one vector and run a plain MLP (about 2× faster in a sampler that calls
        the model thousands of times with a handful of σ values). The folded biases are a
        snapshot of the current weights: call again after further training.
        """
        cache: dict[tuple[float, torch.dtype, torch.device], list[Tensor]] = {}

        @torch.no_grad()
        def score(x: Tensor, sigma: float) -> Tensor:
            key = (float(sigma), x.dtype, x.device)
            if key not in cache:
                e = self.embed(torch.full((1,), float(sigma), dtype=x.dtype, device=x.device))
                pairs = zip(self.layers, self.cond, strict=True)
                cache[key] = [layer.bias + cond(e)[0] for layer, cond in pairs]
            h = _flatten(x, self.dim)
            for layer, bias in zip(self.layers, cache[key], strict=True):
                h = self.act(torch.addmm(bias, h, layer.weight.T))
            out = self.out(h)
            if self.scale_by_sigma:
                out = out / float(sigma)
            return out.reshape(x.shape)

        return score


class StackedScoreMLP(nn.Module):
    """K independent score MLPs s_k(x) ≈ ∇log p_{σ_k}(x), evaluated together with batched matmuls.

    ``forward(x)`` takes x of shape (K, N, d) (or (N, d), broadcast to every model) and returns
    (K, N, d). Output k is divided by σ_k (NCSNv2's scaling s(x)/σ). The K parameter sets share
    nothing, so training them on a summed loss is K separate trainings run at once. Weights start
    from nn.Linear's default U(−1/√fan_in, 1/√fan_in), drawn from ``generator``.
    """

    def __init__(self, sigmas: Sequence[float] | Tensor, dim: int = 2, hidden: int = 64, n_layers: int = 2,
                 generator: torch.Generator | None = None):
        super().__init__()
        sigmas = torch.tensor(checks.sigmas(sigmas, decreasing=False), dtype=torch.get_default_dtype())
        _check_sizes(dim, hidden, n_layers)
        self.register_buffer("sigmas", sigmas)
        k, widths = sigmas.numel(), [dim] + [hidden] * n_layers + [dim]
        uniform = lambda *shape, bound: (2 * torch.rand(*shape, generator=generator) - 1) * bound
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            self.weights.append(nn.Parameter(uniform(k, a, b, bound=1 / math.sqrt(a))))
            self.biases.append(nn.Parameter(uniform(k, 1, b, bound=1 / math.sqrt(a))))

    def forward(self, x: Tensor) -> Tensor:
        k = self.sigmas.numel()
        h = x.expand(k, *x.shape) if x.ndim == 2 else x
        if h.ndim != 3 or h.shape[0] != k:
            raise ValueError(f"x must have shape (N, d) or ({k}, N, d), got {tuple(x.shape)}")
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = F.silu(h)
        return h / self.sigmas[:, None, None]


class EnergyMLP(nn.Module):
    """An energy f_θ(x) ∈ R (``forward``, shape (N,)) with score s_θ(x) = −∇ₓ f_θ(x) (``score``).

    ``score`` differentiates through autograd with ``create_graph=True`` whenever gradients are
    enabled, so score-matching losses (which need ∂s/∂θ and, for ISM, ∂s/∂x) can train the energy.
    Under ``torch.no_grad()`` it still works (gradients are switched on locally) and returns a
    detached tensor, so plotting helpers can call it.
    """

    def __init__(self, dim: int = 2, hidden: int = 128, n_layers: int = 3):
        super().__init__()
        _check_sizes(dim, hidden, n_layers)
        self.dim = int(dim)
        self.net = _mlp(self.dim, hidden, 1, n_layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(_flatten(x, self.dim)).squeeze(-1)

    def score(self, x: Tensor) -> Tensor:
        """s_θ(x) = −∇ₓ f_θ(x), same shape as x."""
        training = torch.is_grad_enabled()
        with torch.enable_grad():
            x_in = x if x.requires_grad else x.detach().requires_grad_(True)
            energy = self(x_in).sum()
            (grad,) = torch.autograd.grad(energy, x_in, create_graph=training)
        return -grad if training else -grad.detach()


# =============================================================================================
# Images: a small noise-conditional U-Net for 28×28 digits (issue 9)
# =============================================================================================
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

    Compute sits where it is cheap: a 3×3 convolution costs 9·C_in·C_out·H·W multiply-adds, so a
    few channels at full resolution and most blocks at the coarsest one. Encoder: ``blocks[k]``
    residual blocks with ``channels[k]`` channels at resolution k, then a stride-2 convolution;
    optional self-attention at the coarsest resolution; decoder: a 2×2 transposed convolution,
    the encoder's feature map concatenated (skip connection), one residual block per resolution.
    """

    def __init__(self, in_channels: int = 1, channels: tuple[int, ...] = (8, 32, 64),
                 blocks: tuple[int, ...] = (0, 1, 2), attention: bool = False, embed_dim: int = 64,
                 sigma_data: float = 0.5, groups: int = 8, c_skip: bool = False):
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
        self.sigma_data = float(sigma_data)
        self.embed = SigmaEmbedding(embed_dim)
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

    def forward(self, x: Tensor, sigma: float | Tensor) -> Tensor:
        factor = 2 ** len(self.downs)
        if (x.ndim != 4 or x.shape[1] != self.config["in_channels"]
                or x.shape[-1] % factor or x.shape[-2] % factor):
            raise ValueError(f"expected images of shape (N, {self.config['in_channels']}, H, W) with H and W "
                             f"divisible by {factor}, got {tuple(x.shape)}")
        s = checks.sigma(sigma, x)
        e = nn.functional.silu(self.embed(s))
        c_in = torch.rsqrt(s**2 + self.sigma_data**2)[:, None, None, None]
        h = self.stem(x * c_in)
        skips = []
        for k, blocks in enumerate(self.down_blocks):
            for block in blocks:
                h = block(h, e)
            if k < len(self.downs):
                skips.append(h)
                h = self.downs[k](h)
        if self.attn is not None:
            h = self.attn(h)
        for up, block in zip(self.ups, self.up_blocks, strict=True):
            h = block(torch.cat([up(h), skips.pop()], dim=1), e)
        out = self.out(nn.functional.silu(self.out_norm(h))) / s[:, None, None, None]
        if not self.config["c_skip"]:
            return out
        var = (s**2 + self.sigma_data**2)[:, None, None, None]
        return -x / var + self.sigma_data * torch.rsqrt(var) * out
