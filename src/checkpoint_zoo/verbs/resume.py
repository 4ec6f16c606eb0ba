"""``Zoo.resume``: everything to continue training from a checkpoint stored with its training state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..catalog import rules
from ..entities import Resumed
from ..errors import ArchitectureError, MissingFileError
from ..registry.fit import check_fit
from .ls import get
from .pull import pull

if TYPE_CHECKING:
    from .facade import Facade


def resume(zoo: Facade, ref: str, *, optimizer_factory: Any = None, scheduler_factory: Any = None,
           remote: str | None = None) -> Resumed:
    """``Zoo.resume``: pull weights and state, check them, rebuild model, optimizer and scheduler, restore RNGs."""
    from ..formats import load_weights_file, weight_shapes
    from ..registry.archs import build, load_weights
    from ..training.state import build_optimizer, build_scheduler, load_state, resolve_param_names, restore_rng, state_problem

    ckpt = get(zoo, ref)
    if not ckpt.resumable:
        raise MissingFileError(f"{ckpt.ref}: no training state stored with it (column state_sha256 is empty); "
                               "resume from a checkpoint that `zoo ls` marks resumable, or add its state with "
                               "`zoo add FILE --state STATE --replace`")
    weights, state_file = (r.path for r in pull(zoo, [ckpt.ref], remote=remote, with_state=True))
    what = rules.state_path(ckpt.model, ckpt.step)
    state = load_state(state_file, what)
    registry = zoo.registry()
    spec = registry.arch(ckpt.arch)
    check_fit(registry, spec, weights, ckpt.ref)
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
