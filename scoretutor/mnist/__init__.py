"""Notebook 05: a noise-conditional U-Net trained on MNIST digits, sampled and judged.

- :mod:`~scoretutor.mnist.unet`: the network; :mod:`~scoretutor.mnist.training`: the shipped recipe;
  :mod:`~scoretutor.mnist.sampling`: annealed Langevin, predictor–corrector, inpainting.
- :mod:`~scoretutor.mnist.data` (with :mod:`~scoretutor.mnist.idx`, :mod:`~scoretutor.mnist.download`):
  the digits; :mod:`~scoretutor.mnist.checkpoints`: safetensors + JSON card.
- :mod:`~scoretutor.mnist.classifier` and :mod:`~scoretutor.mnist.quality`: the judge and the quality table.
- ``shipped/``: the trained score model, the judge classifier and the offline digits.

The training and sampling functions are also available here:
``from scoretutor import mnist; mnist.sample_pc(...)``.
"""

from scoretutor.mnist.sampling import (
    DEFAULT_STEPS_EACH,
    ODE_CALLS,
    ODE_SOLVER,
    PC_CORRECTORS,
    PC_SNR,
    STEP_SIZE_FACTOR,
    SamplerSettings,
    default_settings,
    inpaint,
    pc_steps,
    sample,
    sample_ode,
    sample_pc,
    sample_with_snapshots,
    sampler_settings,
)
from scoretutor.mnist.training import (
    EMA_DECAY,
    LABEL_DROPOUT,
    LR_FINAL,
    LR_SCHEDULES,
    MODEL_CONFIG,
    SIGMA_MIN,
    TRAIN_STATE,
    load_pretrained,
    make_model,
    shipped_checkpoint_dir,
    sigma_max_rule,
    train,
)

__all__ = [
    "DEFAULT_STEPS_EACH", "EMA_DECAY", "LABEL_DROPOUT", "LR_FINAL", "LR_SCHEDULES", "MODEL_CONFIG",
    "ODE_CALLS", "ODE_SOLVER",
    "PC_CORRECTORS", "PC_SNR", "SIGMA_MIN", "STEP_SIZE_FACTOR", "TRAIN_STATE", "SamplerSettings",
    "default_settings",
    "inpaint", "load_pretrained", "make_model", "pc_steps", "sample", "sample_ode", "sample_pc",
    "sample_with_snapshots", "sampler_settings", "shipped_checkpoint_dir", "sigma_max_rule", "train",
]
