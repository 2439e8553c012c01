"""Checkpoints of trained models: weights in safetensors (no pickle), described by a JSON card.

A checkpoint is a folder with two files:

- ``model.safetensors``: the weights (float32 tensors by name); its metadata repeats the model's
  class and configuration, so weights and card cannot be mixed up unnoticed;
- ``model.json``: the card, ``{"format": "scoretutor-checkpoint", "version": 1, "model": {"class":
  ..., "config": {...}}, ...}`` plus whatever the trainer records (σ range, EMA rate, steps, data,
  seed, wall time, torch version, git commit).

:func:`load_checkpoint` rebuilds the model from the card (or checks a given model against it) and
names every mismatch in one :class:`~scoretutor.errors.CheckpointError`; both files are written
atomically (:func:`scoretutor.files.atomic_write`). The score models and the MNIST judge use this format.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from scoretutor.device import get_device
from scoretutor.errors import CheckpointError, CheckpointNotFoundError
from scoretutor.files import atomic_write

FORMAT, VERSION = "scoretutor-checkpoint", 1
WEIGHTS, CARD = "model.safetensors", "model.json"


def _model_classes() -> dict[str, type[nn.Module]]:
    """The classes a card may name when :func:`load_checkpoint` builds the model itself."""
    from scoretutor.mnist.classifier import DigitClassifier, StridedClassifier
    from scoretutor.mnist.noisy_classifier import NoisyDigitClassifier
    from scoretutor.mnist.unet import ScoreUNet
    from scoretutor.models import NoiseConditionalScoreMLP

    return {cls.__name__: cls for cls in (ScoreUNet, NoiseConditionalScoreMLP, DigitClassifier,
                                          NoisyDigitClassifier, StridedClassifier)}


def model_spec(model: nn.Module) -> dict:
    """``{"class": name, "config": kwargs}`` for a model that keeps its constructor kwargs in ``.config``."""
    name = type(model).__name__
    config = getattr(model, "config", None)
    if name not in _model_classes() or not isinstance(config, dict):
        raise ValueError(f"cannot describe a {name} in a checkpoint card; "
                         f"supported: {sorted(_model_classes())}")
    return {"class": name, "config": json.loads(json.dumps(config))}  # JSON-normalised (tuples → lists)


def save_checkpoint(directory: str | os.PathLike, model: nn.Module, **card) -> Path:
    """Write ``model``'s weights and a card with ``card``'s entries to ``directory``; return it."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    spec = model_spec(model)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "model": json.dumps(spec, sort_keys=True)}
    full_card = {"format": FORMAT, "version": VERSION, "model": spec, **card}
    atomic_write(folder / WEIGHTS, lambda p: save_file(tensors, str(p), metadata=meta))
    text = json.dumps(full_card, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    atomic_write(folder / CARD, text)
    return folder


def read_card(directory: str | os.PathLike) -> dict:
    """The JSON card of a checkpoint folder (:class:`CheckpointError` saying what is wrong)."""
    folder = Path(directory)
    if not folder.is_dir():
        raise CheckpointNotFoundError(f"no checkpoint folder at {folder}")
    for name in (CARD, WEIGHTS):
        if not (folder / name).is_file():
            raise CheckpointNotFoundError(f"checkpoint {folder} has no {name}")
    try:
        card = json.loads((folder / CARD).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{folder / CARD} is not valid JSON: {err}") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise CheckpointError(f"{folder / CARD} is not a {FORMAT} card")
    if card.get("version") != VERSION:
        raise CheckpointError(f"{folder / CARD} has version {card.get('version')!r}; "
                         f"this scoretutor reads {VERSION}")
    return card


def _differences(expected: dict, got: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(expected) | set(got)):
        a, b = expected.get(key, "<missing>"), got.get(key, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: model {b!r}, checkpoint {a!r}")
    return out


def _build(cls: type[nn.Module], config: dict, where: Path) -> nn.Module:
    """``cls(**config)``, with a :class:`CheckpointError` naming the key for an unknown or bad entry."""
    known = set(inspect.signature(cls).parameters)
    unknown = sorted(set(config) - known)
    if unknown:
        raise CheckpointError(f"{where}: unknown {cls.__name__} setting(s) {unknown} in 'model.config'; "
                              f"allowed: {sorted(known)}")
    try:
        return cls(**config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{where}: 'model.config' does not build a {cls.__name__}: {err}") from None


def load_checkpoint(directory: str | os.PathLike, model: nn.Module | None = None,
                    device: torch.device | str | None = None) -> tuple[nn.Module, dict]:
    """Load a checkpoint folder; returns ``(model in eval mode on device, card)``.

    Without ``model`` the model is built from the card. With one, its class and configuration must
    match the card's, else a :class:`CheckpointError` lists each difference. Weight names and shapes
    are checked as well, and the weights' own metadata must describe the same model as the card.
    """
    folder = Path(directory)
    card = read_card(folder)
    spec = card.get("model")
    classes = _model_classes()
    if (not isinstance(spec, dict) or spec.get("class") not in classes
            or not isinstance(spec.get("config"), dict)):
        raise CheckpointError(f"{folder / CARD}: 'model' must name one of {sorted(classes)} with a config, "
                              f"got {spec!r}")
    if model is None:
        model = _build(classes[spec["class"]], spec["config"], folder / CARD)
    else:
        mine = model_spec(model)
        diffs = _differences(spec, mine)
        if diffs:
            raise CheckpointError(f"checkpoint {folder} does not match the model: " + "; ".join(diffs))
    try:
        from safetensors import safe_open

        with safe_open(str(folder / WEIGHTS), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(folder / WEIGHTS))
    except Exception as err:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"cannot read {folder / WEIGHTS}: {err}") from None
    if meta.get("model") and json.loads(meta["model"]) != spec:
        raise CheckpointError(f"{folder / WEIGHTS} was saved for {meta['model']}, but {CARD} describes "
                         f"{json.dumps(spec, sort_keys=True)}")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    shapes = [f"{k}: model {tuple(expected[k].shape)}, checkpoint {tuple(tensors[k].shape)}"
              for k in sorted(set(expected) & set(tensors)) if expected[k].shape != tensors[k].shape]
    if missing or unexpected or shapes:
        parts = ([f"missing {missing[:5]}"] if missing else []) + (
            [f"unexpected {unexpected[:5]}"] if unexpected else []) + shapes[:5]
        raise CheckpointError(f"weights in {folder / WEIGHTS} do not fit the model: " + "; ".join(parts))
    model.load_state_dict(tensors)
    model.to(torch.device(device) if device is not None else get_device())
    return model.eval(), card
