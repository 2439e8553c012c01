"""Langevin chains that an explorer can extend, rewind and reuse instead of recomputing them.

A slider move in the Langevin explorer changes the number of steps K, the number of particles or ε.
:class:`LangevinChain` runs the unadjusted Langevin update of :func:`scoretutor.sampling.langevin`,

    x_{i+1} = x_i + ε·s(x_i) + √(2ε)·z_i,

and keeps a snapshot (iterate and noise-generator state) every ``every`` steps, so

- a larger K continues from the furthest step computed, a smaller K replays at most ``every − 1``
  steps from the nearest snapshot: moving the K slider costs (almost) nothing;
- the noise of particle j does not depend on how many particles run (each step draws ``n_max``
  rows and uses the first n), so a run with fewer particles is a slice of one with more: the
  particles slider reuses the chain, and each particle's path stays put when others are added.

With n = n_max the draws are exactly those of ``langevin(score_fn, x0, ε, K, generator)`` (same
generator, same shapes), which the tests check.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor

import torch

Tensor = torch.Tensor


class LangevinChain:
    """One ε, one seed: iterates x_0 … x_k of ``n`` particles, computed lazily up to the K asked for.

    Args:
        score_fn: s(x) for x of shape (n, d).
        x0: starting points of all ``n_max`` particles, shape (n_max, d).
        step_size: ε > 0.
        n: how many of the particles to run (the first n rows of x0).
        seed: seeds the CPU generator of the noise z_i.
        n_paths: how many particles (the first ones) have every iterate kept, for trajectories.
        every: snapshot spacing in steps (the K slider's step).
    """

    def __init__(self, score_fn: Callable[[Tensor], Tensor], x0: Tensor, step_size: float, n: int, seed: int,
                 n_paths: int = 0, every: int = 10):
        if not 0 < n <= x0.shape[0]:
            raise ValueError(f"n must be in [1, {x0.shape[0]}], got {n}")
        if step_size <= 0 or every < 1:
            raise ValueError(f"need step_size > 0 and every >= 1, got {step_size}, {every}")
        self.score_fn, self.step_size, self.n, self.every = score_fn, float(step_size), int(n), int(every)
        self.noise_shape, self.dtype = tuple(x0.shape), x0.dtype
        self.noise_scale = math.sqrt(2 * self.step_size)
        self.generator = torch.Generator().manual_seed(seed)
        self.x = x0[: self.n].clone()
        self.k = 0  # self.x is x_k
        self.snapshots: dict[int, tuple[Tensor, Tensor]] = {0: (self.x, self.generator.get_state())}
        self.paths = [x0[:n_paths].clone()]  # paths[i] = x_i of the first n_paths particles
        self.diverged_at: int | None = None  # first step with a non-finite iterate
        self._lock = threading.Lock()  # a background prefetch and a slider move may share the chain

    @torch.no_grad()
    def _step(self, x: Tensor, generator: torch.Generator) -> Tensor:
        s = self.score_fn(x).detach().to(x.dtype)
        z = torch.randn(self.noise_shape, generator=generator, dtype=self.dtype)[: self.n].to(x.device)
        return x + self.step_size * s + self.noise_scale * z

    def run_to(self, n_steps: int) -> Tensor | None:
        """x_K for K = ``n_steps`` (shape (n, d)), or None if the chain diverged at or before step K."""
        if n_steps < 0:
            raise ValueError(f"n_steps must be >= 0, got {n_steps}")
        with self._lock:
            return self._run_to(n_steps)

    def _run_to(self, n_steps: int) -> Tensor | None:
        if self.diverged_at is not None and n_steps >= self.diverged_at:
            return None
        if n_steps <= self.k:  # replay from the nearest snapshot (fewer than `every` steps)
            start = (n_steps // self.every) * self.every
            x, state = self.snapshots[start]
            g = torch.Generator().set_state(state)
            for _ in range(n_steps - start):
                x = self._step(x, g)
            return x
        n_paths = self.paths[0].shape[0]
        while self.k < n_steps:
            x = self._step(self.x, self.generator)
            if not torch.isfinite(x).all():
                self.diverged_at = self.k + 1
                return None
            self.x, self.k = x, self.k + 1
            self.paths.append(x[:n_paths].clone())
            if self.k % self.every == 0:
                self.snapshots[self.k] = (x, self.generator.get_state())
        return self.x

    def trajectories(self, n_steps: int) -> Tensor:
        """x_0 … x_K of the first ``n_paths`` particles, shape (K + 1, n_paths, d) (after run_to(K))."""
        return torch.stack(self.paths[: n_steps + 1])


def _one_torch_thread() -> None:
    torch.set_num_threads(1)  # for the calling (worker) thread only


class ChainCache:
    """The last ``size`` chains by ε; a chain with at least n particles serves any n (by slicing).

    ε values are keyed to 6 significant digits, so a slider's 10**(k·step) computed in the browser
    and the same value computed here share a chain. :meth:`prefetch` computes chains in one
    background thread while the student looks at the current frame (e.g. for the ε one slider step
    away); a new prefetched chain enters the cache only once it is computed, so it never makes a
    slider move wait for work that move did not need.

    Chains run in worker threads limited to one torch thread each (:meth:`run`): the tensors are
    tiny, and torch's intra-op threads on a busy CPU made each step 10-20× slower (measured on a
    2-core machine under load; the setting is per thread, so the notebook's own torch is untouched).
    """

    def __init__(self, make: Callable[[float, int], LangevinChain], size: int = 8):
        self.make, self.size = make, size
        self.chains: OrderedDict[str, LangevinChain] = OrderedDict()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None  # background (prefetch)
        self._foreground: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []

    @staticmethod
    def key(step_size: float) -> str:
        return f"{step_size:.6g}"

    def get(self, step_size: float, n: int) -> LangevinChain:
        """The cached chain for ε with at least n particles (a new one if there is none)."""
        key = self.key(step_size)
        with self._lock:
            chain = self.chains.get(key)
            if chain is None or chain.n < n:
                chain = self.make(step_size, n)
                self._install(key, chain)
            self.chains.move_to_end(key)
            return chain

    def _install(self, key: str, chain: LangevinChain) -> None:
        """Cache ``chain`` unless one with at least as many particles is there (call with the lock)."""
        old = self.chains.get(key)
        if old is None or old.n < chain.n:
            self.chains[key] = chain
        while len(self.chains) > self.size:
            self.chains.popitem(last=False)

    def run(self, chain: LangevinChain, n_steps: int) -> Tensor | None:
        """``chain.run_to(n_steps)`` in the single-torch-thread foreground worker; waits for it."""
        if self._foreground is None:
            self._foreground = ThreadPoolExecutor(max_workers=1, initializer=_one_torch_thread,
                                                  thread_name_prefix="langevin")
        return self._foreground.submit(chain.run_to, n_steps).result()

    def prefetch(self, jobs: Iterable[tuple[float, int]], n_steps: int) -> None:
        """Compute x_K (K = n_steps) for each (ε, n particles) in ``jobs``, in order, in the background.

        Work queued by an earlier call and not started yet is dropped (the student moved on).
        """
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, initializer=_one_torch_thread,
                                            thread_name_prefix="langevin-prefetch")
        for f in self._pending:
            f.cancel()
        self._pending = [self._pool.submit(self._compute, s, n, n_steps) for s, n in jobs]

    def _compute(self, step_size: float, n: int, n_steps: int) -> None:
        key = self.key(step_size)
        with self._lock:
            chain = self.chains.get(key)
        if chain is None or chain.n < n:
            chain = self.make(step_size, n)
            chain.run_to(n_steps)
            with self._lock:
                self._install(key, chain)
        else:
            chain.run_to(n_steps)  # extend the cached chain (a slider move waits on its lock)
