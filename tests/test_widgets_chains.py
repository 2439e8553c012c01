"""LangevinChain: the explorer's cached Langevin runs equal fresh runs of the package's sampler."""

import pytest
import torch

from scoretutor.densities import ncsn_mixture
from scoretutor.lecture.widgets.chains import ChainCache, LangevinChain
from scoretutor.sampling import langevin

MIX = ncsn_mixture()


def x0(n=64, seed=3):
    return (2 * torch.rand(n, 2, generator=torch.Generator().manual_seed(seed)) - 1) * 8


def reference(n_steps, n=64, step_size=0.1, seed=7):
    out = langevin(MIX.score, x0(n), step_size, n_steps, generator=torch.Generator().manual_seed(seed),
                   progress=False)
    return getattr(out, "x", out)


def test_all_particles_match_the_package_sampler_bit_for_bit():
    chain = LangevinChain(MIX.score, x0(), 0.1, n=64, seed=7, n_paths=3, every=10)
    assert torch.equal(chain.run_to(37), reference(37))
    assert torch.equal(chain.trajectories(37)[-1], reference(37)[:3])


def test_moving_k_up_and_down_replays_the_same_chain():
    chain = LangevinChain(MIX.score, x0(), 0.1, n=64, seed=7, every=10)
    for k in [40, 13, 0, 25, 55, 40]:  # forwards, backwards past snapshots, to 0, beyond, back
        assert torch.equal(chain.run_to(k), reference(k)), k
    assert chain.k == 55 and sorted(chain.snapshots) == [0, 10, 20, 30, 40, 50]


def test_fewer_particles_are_a_slice_of_more():
    # particle j's noise does not depend on n: n = 16 gives the first 16 rows of the n = 64 run
    few = LangevinChain(MIX.score, x0(), 0.1, n=16, seed=7).run_to(30)
    assert torch.equal(few, reference(30)[:16])


def test_divergence_is_reported_from_its_first_step_on():
    chain = LangevinChain(MIX.score, x0(), 5.0, n=64, seed=7)  # ε far beyond 2σ² = 2: the chain explodes
    assert chain.run_to(2000) is None
    k = chain.diverged_at
    assert k is not None and 1 < k <= 2000
    assert chain.run_to(k) is None and chain.run_to(k - 1) is not None


def test_cache_reuses_a_chain_with_enough_particles_and_forgets_old_ones():
    made = []

    def make(eps, n):
        made.append((eps, n))
        return LangevinChain(MIX.score, x0(), eps, n, 7)

    cache = ChainCache(make, size=2)
    a = cache.get(0.1, 32)
    assert cache.get(0.1, 16) is a and cache.get(0.1, 32) is a
    assert cache.get(0.1, 64) is not a  # more particles than cached: a new chain
    cache.get(0.2, 8)
    cache.get(0.3, 8)
    assert list(cache.chains) == ["0.2", "0.3"] and made == [(0.1, 32), (0.1, 64), (0.2, 8), (0.3, 8)]
    assert cache.get(0.30000000000000004, 8) is cache.chains["0.3"]  # the browser's rounding


def test_prefetch_computes_in_the_background_and_get_reuses_it():
    cache = ChainCache(lambda eps, n: LangevinChain(MIX.score, x0(), eps, n, 7))
    small = cache.get(0.1, 16)
    cache.prefetch([(0.1, 64), (0.12, 64)], 30)
    assert cache.get(0.1, 16) is small or cache.get(0.1, 16).k == 30  # never a half-computed chain
    cache._pool.shutdown(wait=True)
    chain = cache.get(0.1, 64)
    assert chain is not small and chain.k == 30 and torch.equal(chain.run_to(30), reference(30))
    assert cache.get(0.12, 64).k == 30


def test_bad_arguments():
    with pytest.raises(ValueError, match="n must be in"):
        LangevinChain(MIX.score, x0(), 0.1, n=65, seed=0)
    with pytest.raises(ValueError, match="n_steps must be >= 0"):
        LangevinChain(MIX.score, x0(), 0.1, n=4, seed=0).run_to(-1)


def test_run_uses_a_single_torch_thread_worker_and_leaves_the_callers_threads_alone():
    threads = torch.get_num_threads()
    seen = []

    def score(x):
        seen.append(torch.get_num_threads())
        return MIX.score(x)

    cache = ChainCache(lambda eps, n: LangevinChain(score, x0(), eps, n, 7))
    assert torch.equal(cache.run(cache.get(0.1, 64), 5), reference(5))
    assert seen == [1] * 5 and torch.get_num_threads() == threads
