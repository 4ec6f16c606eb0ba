"""Hostile training states (issue 25, class 8) and export destinations: every bad value is one ZooError
naming the field, raised by the functions resume calls (load_state, build_optimizer, build_scheduler,
restore_rng), never a RecursionError, a raw ValueError/RuntimeError or a broken optimizer; ``zoo export``
into a symlinked or dangling path is one line and writes nothing."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest
import torch
from conftest import run_zoo

from checkpoint_zoo.errors import ZooError
from checkpoint_zoo.training.state import (
    META_KEY,
    TrainingState,
    build_optimizer,
    build_scheduler,
    capture,
    load_state,
    resolve_param_names,
    restore_rng,
    save_state,
)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)


def _state(scheduler: str = "step") -> TrainingState:
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = (torch.optim.lr_scheduler.StepLR(opt, step_size=2) if scheduler == "step"
             else torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=5))
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    sched.step()
    return capture(model, opt, sched, step=1)


def _resume_like(path: Path) -> None:
    """What resume does with a state file, in its order (the weights part aside)."""
    state = load_state(path, "zoo/checkpoints/m/step-1.state.safetensors")
    model = _model()
    names = resolve_param_names(state, [n for n, _ in model.named_parameters()])
    assert not isinstance(names, str)
    optimizer = build_optimizer(state, model, names)
    build_scheduler(state, optimizer)
    restore_rng(state)


def _with_meta(tmp_path: Path, state: TrainingState, change) -> Path:
    meta = json.loads(json.dumps(state.meta))
    change(meta)
    return save_state(TrainingState(state.tensors, meta), tmp_path / "bad.state.safetensors")


def test_a_good_state_goes_through(tmp_path):
    _resume_like(save_state(_state(), tmp_path / "good.state.safetensors"))
    _resume_like(save_state(_state("cosine"), tmp_path / "cosine.state.safetensors"))


def test_a_deeply_nested_metadata_array_is_one_format_error(tmp_path):
    state = _state()
    meta = json.dumps(state.meta)
    deep = meta[:-1] + ', "extra": ' + "[" * 100_000 + "]" * 100_000 + "}"
    header = json.dumps({"__metadata__": {META_KEY: deep, "format": "pt"}}).encode()
    header += b" " * (-len(header) % 8)
    path = tmp_path / "deep.state.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(ZooError, match="nests deeper than"):
        load_state(path, "deep")


@pytest.mark.parametrize("case, change, says", [
    ("lr-fast", lambda m: m["optimizer"]["param_groups"][0].__setitem__("lr", "fast"), "'lr' is 'fast'"),
    ("momentum-list", lambda m: m["optimizer"]["param_groups"][0].__setitem__("momentum", [{"a": 1}]), "'momentum'"),
    ("sched-optimizer", lambda m: m["scheduler"]["state"].__setitem__("optimizer", "pwned"), "'optimizer'"),
    ("sched-kind", lambda m: m["scheduler"]["state"].__setitem__("gamma", "half"), "'gamma'"),
    ("rng-python-short", lambda m: m["rng"]["python"].__setitem__("state", [1, 2, 3]), "rng.python"),
    ("rng-numpy-pos", lambda m: m["rng"]["numpy"].__setitem__("pos", 10**9), "rng.numpy"),
])
def test_bad_values_in_the_metadata_are_one_zoo_error_naming_the_field(tmp_path, case, change, says):
    path = _with_meta(tmp_path, _state(), change)
    with pytest.raises(ZooError, match=says) as e:
        _resume_like(path)
    assert "\n" not in str(e.value)


def test_a_scheduler_argument_it_refuses_is_one_zoo_error(tmp_path):
    path = _with_meta(tmp_path, _state("cosine"), lambda m: m["scheduler"]["state"].__setitem__("T_0", 0))
    with pytest.raises(ZooError, match="T_0=0") as e:
        _resume_like(path)
    assert "CosineAnnealingWarmRestarts" in str(e.value) and "\n" not in str(e.value)


def test_a_ten_byte_rng_state_is_one_zoo_error(tmp_path):
    state = _state()
    tensors = {**state.tensors, "rng.torch": torch.zeros(10, dtype=torch.uint8)}
    path = save_state(TrainingState(tensors, state.meta), tmp_path / "rng.state.safetensors")
    with pytest.raises(ZooError, match="rng.torch") as e:
        _resume_like(path)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kind", ["symlink-to-empty-folder", "dangling-symlink", "under-a-dangling-folder",
                                  "under-a-file"])
def test_export_into_a_symlinked_or_dangling_path_is_one_line(small_zoo, tmp_path, kind):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    if kind == "symlink-to-empty-folder":
        dest.symlink_to(outside, target_is_directory=True)
    elif kind == "dangling-symlink":
        dest.symlink_to(tmp_path / "nowhere")
    elif kind == "under-a-dangling-folder":
        (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
        dest = tmp_path / "gone" / "dest"
    else:
        (tmp_path / "afile").write_text("x")
        dest = tmp_path / "afile" / "dest"
    before = sorted(os.listdir(tmp_path))
    r = run_zoo("export", "alpha@10", str(dest), cwd=small_zoo)
    assert r.code == 1 and r.err.count("\n") == 1 and str(dest) in r.err, r.err
    assert "unexpected" not in r.err and "NotADirectoryError" not in r.err, r.err
    assert sorted(os.listdir(tmp_path)) == before and list(outside.iterdir()) == []
    assert not (tmp_path / "nowhere").exists()
