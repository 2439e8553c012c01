"""Reference: the ScoreNet of the widely used score-SDE tutorial (Song, 2021), written afresh.

Gaussian Fourier time embedding, a 4-level convolutional encoder (channels 32, 64, 128, 256; valid
3×3 convolutions, stride 2 below the first) and a decoder of transposed convolutions with skip
concatenations, GroupNorm and SiLU throughout, output divided by the noise scale. Conditioned here on
σ (the embedding sees log σ) instead of the SDE time t, so it has the call ``model(x, sigma)`` of
scoretutor's models. Used only by benchmarks/bench_mnist.py as the speed yardstick (≈ 1.1 M parameters).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class GaussianFourierProjection(nn.Module):
    """[sin(2π W v), cos(2π W v)] with fixed random W ~ N(0, scale²)."""

    def __init__(self, embed_dim: int, scale: float = 30.0):
        super().__init__()
        self.register_buffer("W", torch.randn(embed_dim // 2) * scale)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        proj = v[:, None] * self.W[None, :] * 2 * math.pi
        return torch.cat([proj.sin(), proj.cos()], dim=-1)


class Dense(nn.Module):
    """A linear layer whose output is reshaped to (N, C, 1, 1) feature-map biases."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return self.dense(e)[..., None, None]


class ReferenceScoreNet(nn.Module):
    """The tutorial's time-dependent ScoreNet, conditioned on σ through log σ."""

    def __init__(self, channels=(32, 64, 128, 256), embed_dim: int = 256):
        super().__init__()
        c = channels
        self.embed = nn.Sequential(GaussianFourierProjection(embed_dim, scale=1.0),
                                   nn.Linear(embed_dim, embed_dim))
        self.conv1 = nn.Conv2d(1, c[0], 3, stride=1, bias=False)
        self.dense1, self.gnorm1 = Dense(embed_dim, c[0]), nn.GroupNorm(4, c[0])
        self.conv2 = nn.Conv2d(c[0], c[1], 3, stride=2, bias=False)
        self.dense2, self.gnorm2 = Dense(embed_dim, c[1]), nn.GroupNorm(32, c[1])
        self.conv3 = nn.Conv2d(c[1], c[2], 3, stride=2, bias=False)
        self.dense3, self.gnorm3 = Dense(embed_dim, c[2]), nn.GroupNorm(32, c[2])
        self.conv4 = nn.Conv2d(c[2], c[3], 3, stride=2, bias=False)
        self.dense4, self.gnorm4 = Dense(embed_dim, c[3]), nn.GroupNorm(32, c[3])
        self.tconv4 = nn.ConvTranspose2d(c[3], c[2], 3, stride=2, bias=False)
        self.dense5, self.tgnorm4 = Dense(embed_dim, c[2]), nn.GroupNorm(32, c[2])
        self.tconv3 = nn.ConvTranspose2d(c[2] + c[2], c[1], 3, stride=2, bias=False, output_padding=1)
        self.dense6, self.tgnorm3 = Dense(embed_dim, c[1]), nn.GroupNorm(32, c[1])
        self.tconv2 = nn.ConvTranspose2d(c[1] + c[1], c[0], 3, stride=2, bias=False, output_padding=1)
        self.dense7, self.tgnorm2 = Dense(embed_dim, c[0]), nn.GroupNorm(32, c[0])
        self.tconv1 = nn.ConvTranspose2d(c[0] + c[0], 1, 3, stride=1)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(x.shape[0])
        e = self.act(self.embed(torch.log(s) / 4))  # log σ ∈ [−4.6, 3.2] → about [−1, 1]
        h1 = self.act(self.gnorm1(self.conv1(x) + self.dense1(e)))
        h2 = self.act(self.gnorm2(self.conv2(h1) + self.dense2(e)))
        h3 = self.act(self.gnorm3(self.conv3(h2) + self.dense3(e)))
        h4 = self.act(self.gnorm4(self.conv4(h3) + self.dense4(e)))
        h = self.act(self.tgnorm4(self.tconv4(h4) + self.dense5(e)))
        h = self.act(self.tgnorm3(self.tconv3(torch.cat([h, h3], dim=1)) + self.dense6(e)))
        h = self.act(self.tgnorm2(self.tconv2(torch.cat([h, h2], dim=1)) + self.dense7(e)))
        h = self.tconv1(torch.cat([h, h1], dim=1))
        return h / s[:, None, None, None]
