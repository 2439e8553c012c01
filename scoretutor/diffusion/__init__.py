"""Notebook 06: score models as SDEs, and what connects them to DDPM, likelihoods and GSNs.

- :mod:`~scoretutor.diffusion.sde`: the VE and VP SDEs, their marginals, priors and drifts.
- :mod:`~scoretutor.diffusion.samplers`: reverse SDE, predictor–corrector, probability-flow ODE.
- :mod:`~scoretutor.diffusion.likelihood`: exact log-likelihoods along the probability-flow ODE.
- :mod:`~scoretutor.diffusion.ddpm`: DDPM's chain, posterior and ELBO term.
- :mod:`~scoretutor.diffusion.gsn`: generative stochastic networks.
- :mod:`~scoretutor.diffusion.toy_models`: the 2D VE score model and VP ε-model, trained once and cached.
"""
