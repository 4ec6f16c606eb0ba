"""Save and resume training with the zoo, in a plain PyTorch loop.

Saving::

    state = capture(model, optimizer, scheduler, step=step, epoch=epoch)
    zoo.add(weights_file, model=..., step=step, ..., training_state=state)

Resuming (``Zoo.resume``)::

    r = zoo.resume("my-model@500")
    model, optimizer, scheduler, step = r.model, r.optimizer, r.scheduler, r.step

``state.py`` holds the format (one safetensors file, JSON metadata, never a pickle).
"""

from __future__ import annotations

from .state import TrainingState, capture, load_state, restore_rng, save_state

__all__ = ["TrainingState", "capture", "load_state", "restore_rng", "save_state"]
