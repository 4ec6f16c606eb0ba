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

from typing import TYPE_CHECKING, Any

from .state import TrainingState, capture, load_state, restore_rng, save_state

if TYPE_CHECKING:
    from ..api import Zoo
    from ..model import Resumed

__all__ = ["TrainingState", "capture", "load_state", "restore_rng", "resume", "save_state"]


def resume(zoo: Zoo, ref: str, *, optimizer_factory: Any = None, scheduler_factory: Any = None,
           remote: str | None = None) -> Resumed:
    """``Zoo.resume``: pull weights and state, check them, rebuild model, optimizer and scheduler, restore RNGs."""
    from ..catalog import rules
    from ..errors import ArchitectureError, MissingFileError
    from ..formats import load_weights_file, weight_shapes
    from ..model import Resumed
    from ..registry.archs import build, load_weights
    from .state import build_optimizer, build_scheduler, resolve_param_names, state_problem

    ckpt = zoo.get(ref)
    if not ckpt.resumable:
        raise MissingFileError(f"{ckpt.ref}: no training state stored with it (column state_sha256 is empty); "
                               "resume from a checkpoint that `zoo ls` marks resumable, or add its state with "
                               "`zoo add FILE --state STATE --replace`")
    weights, state_file = (r.path for r in zoo.pull([ckpt.ref], remote=remote, with_state=True))
    what = rules.state_path(ckpt.model, ckpt.step)
    state = load_state(state_file, what)
    registry = zoo.registry()
    spec = registry.arch(ckpt.arch)
    zoo._check_fit(spec, weights, ckpt.ref)
    model = load_weights(build(spec, registry), load_weights_file(weights), spec).train()
    arch_params = [n for n, _ in model.named_parameters()]
    problem = state_problem(state, {k: v[0] for k, v in weight_shapes(weights).items()}, arch_params)
    if problem:
        raise ArchitectureError(f"{what}: does not match the weights of {ckpt.ref}: {problem}")
    optimizer = scheduler = None
    if state.meta.get("optimizer") is not None:
        names = resolve_param_names(state, arch_params)
        assert not isinstance(names, str)  # state_problem said so
        optimizer = build_optimizer(state, model, names, optimizer_factory, what)
        scheduler = build_scheduler(state, optimizer, scheduler_factory)
    restore_rng(state)
    scaler = state.meta.get("scaler")
    return Resumed(ckpt.ref, model, optimizer, scheduler, dict(scaler) if scaler else None, state.step, state.epoch)
