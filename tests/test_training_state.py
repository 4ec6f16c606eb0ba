"""Training state beside the weights: store, pull, resume byte for byte; refusals; lineage; conversions."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ADD_ARGS, PROJECT, git, isolate, run_zoo, snapshot

N = 8  # steps of the uninterrupted run; the interrupted one stops at N // 2
COMMON = dict(arch="linear", task="tabular-classification", dataset="wine", license="MIT")


def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = np.random.default_rng(123)  # fixed data, independent of the global generators
    return torch.tensor(g.standard_normal((64, 13)), dtype=torch.float32), torch.tensor(g.integers(0, 3, 64))


def _fresh():
    from checkpoint_zoo.nets import LinearNet

    model = LinearNet(13, 3)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    return model, opt, sched


def _train(model, opt, sched, steps: int) -> list[bytes]:
    """Steps whose every loss depends on all three generators: numpy picks the minibatch, python's random
    the batch size, torch the input dropout."""
    x, y = _data()
    losses = []
    model.train()
    for _ in range(steps):
        idx = torch.from_numpy(np.random.permutation(64)[: random.choice((8, 16))])
        xb = torch.nn.functional.dropout(x[idx], p=0.2, training=True)
        loss = torch.nn.functional.cross_entropy(model(xb), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.detach().numpy().tobytes())
    return losses


def _weights_bytes(model) -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in model.state_dict().items()})


def _save_weights(model, path: Path) -> Path:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def _cache_objects(root: Path) -> list[Path]:
    """The file objects of a clone's DVC cache (folder manifests left out)."""
    return [p for p in (root / ".dvc" / "cache").rglob("*") if p.is_file() and not p.name.endswith(".dir")]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A zoo with ``lin@4`` (weights + training state after N/2 steps) pushed and committed, plus the
    uninterrupted run's losses and final weights."""
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.api import init
    from checkpoint_zoo.training import capture

    mp = pytest.MonkeyPatch()
    base = tmp_path_factory.mktemp("state")
    isolate(mp, base / "home")
    _seed()
    model, opt, sched = _fresh()
    full_losses = _train(model, opt, sched, N)
    full_weights = _weights_bytes(model)

    _seed()
    model, opt, sched = _fresh()
    half_losses = _train(model, opt, sched, N // 2)
    root = base / "zoo"
    init(root, remote_url=str(base / "remote"), registries_from=PROJECT)
    git("commit", "-qm", "empty zoo", cwd=root)
    weights = _save_weights(model, base / "in" / "lin-4.safetensors")
    state = capture(model, opt, sched, step=N // 2, epoch=0.5)
    with Zoo(root) as zoo:
        res = zoo.add(weights, model="lin", step=N // 2, training_state=state, **COMMON)
        plain = _save_weights(model, base / "in" / "plain.safetensors")
        zoo.add(plain, model="plain", step=1, **COMMON)
        zoo.push()
    git("commit", "-qm", "lin@4 with its training state", cwd=root)
    yield {"root": root, "base": base, "full_losses": full_losses, "full_weights": full_weights,
           "half_losses": half_losses, "checkpoint": res.checkpoint, "weights": weights}
    mp.undo()


def test_stored_beside_the_weights_and_listed_resumable(world):
    root, ckpt = world["root"], world["checkpoint"]
    state_file = root / "zoo/checkpoints/lin/step-00000004.state.safetensors"
    assert state_file.is_file() and ckpt.resumable
    import hashlib
    import json

    from safetensors import safe_open

    assert hashlib.sha256(state_file.read_bytes()).hexdigest() == ckpt.state_sha256
    with safe_open(str(state_file), framework="pt") as f:
        meta = json.loads(f.metadata()["zoo.training_state"])
        names = set(f.keys())
    assert meta["format_version"] == 1 and meta["step"] == 4 and meta["optimizer"]["class"] == "Adam"
    assert meta["scheduler"]["class"] == "StepLR"
    assert {"rng.torch", "rng.numpy.keys", "optimizer.state.0.exp_avg"} <= names
    assert state_file.read_bytes()[:1] != b"\x80"  # not a pickle
    header = (root / "zoo/checkpoints.csv").read_text().splitlines()[0]
    assert "state_sha256" in header.split(",")
    ls = run_zoo("ls", "--format", "json", cwd=root)
    by_model = {c["model"]: c for c in __import__("json").loads(ls.out)}
    assert by_model["lin"]["resumable"] is True and by_model["plain"]["resumable"] is False
    assert by_model["lin"]["epoch"] == 0.5 and by_model["plain"]["epoch"] is None  # the state's epoch, in the row
    table = run_zoo("ls", cwd=root).out
    assert "RESUMABLE" in table and "yes" in table
    assert run_zoo("verify", "lin@4", "-v", cwd=root).out.count("ok") >= 2


def test_a_table_without_the_column_is_still_read(world, tmp_path):
    from checkpoint_zoo.catalog import rules, table

    data = (world["root"] / "zoo/checkpoints.csv").read_bytes().decode()
    lines = [l.split(",") for l in data.splitlines()]
    at = lines[0].index("state_sha256")
    old = "\n".join(",".join(l[:at] + l[at + 1:]) for l in lines) + "\n"
    rows = table.load(old.encode(), "old.csv")
    assert {r["state_sha256"] for r in rows} == {""} and list(rows[0]) == list(rows[0])
    assert table.dump_csv(rows).decode().splitlines()[0] == ",".join(rules.COLUMNS)  # always written


def test_pull_fetches_weights_only_then_with_state_resume_is_byte_identical(world, tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(world["root"]), str(clone)], check=True)
    r = run_zoo("pull", "lin@4", cwd=clone)
    assert r.code == 0, r.err
    objects = _cache_objects(clone)
    size = world["checkpoint"].size_bytes
    assert [p.stat().st_size for p in objects] == [size]  # the weights' bytes only
    assert not (clone / "zoo/checkpoints/lin/step-00000004.state.safetensors").exists()
    r = run_zoo("pull", "lin@4", "--with-state", cwd=clone)
    assert r.code == 0, r.err
    assert len(_cache_objects(clone)) == 2 and "state.safetensors" in r.out

    from checkpoint_zoo import Zoo

    torch.manual_seed(99)  # the resume, not luck, must put every generator back
    np.random.seed(99)
    random.seed(99)
    with Zoo(clone) as zoo:
        resumed = zoo.resume("lin@4")
    assert resumed.step == N // 2 and resumed.epoch == 0.5
    assert type(resumed.optimizer) is torch.optim.Adam and type(resumed.scheduler) is torch.optim.lr_scheduler.StepLR
    rest = _train(resumed.model, resumed.optimizer, resumed.scheduler, N - N // 2)
    assert world["half_losses"] + rest == world["full_losses"]  # every step's loss, bit for bit
    assert _weights_bytes(resumed.model) == world["full_weights"]


def test_an_epoch_other_than_the_states_is_refused(world, tmp_path):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import InvalidValueError

    root = world["root"]
    before = snapshot(root)
    state = root / "zoo/checkpoints/lin/step-00000004.state.safetensors"
    with Zoo(root) as zoo, pytest.raises(InvalidValueError, match=r"lin@9: --epoch 2 but its training state "
                                                                  r"records epoch 0.5"):
        zoo.add(world["weights"], model="lin", step=9, epoch=2, training_state=state, **COMMON)
    assert snapshot(root) == before


def test_with_state_for_a_checkpoint_without_one_is_refused(world):
    r = run_zoo("pull", "plain@1", "--with-state", cwd=world["root"])
    assert r.code == 1 and "plain@1 has no training state" in r.err and len(r.err.strip().splitlines()) == 1


def _bad_add(world, state_file: Path, step: int):
    root = world["root"]
    before = snapshot(root)
    r = run_zoo(*("add", str(world["weights"]), "--model=lin", f"--step={step}", *ADD_ARGS, "--state", str(state_file)),
                cwd=root)
    assert r.code == 1, r.out
    assert len(r.err.strip().splitlines()) == 1, r.err
    assert snapshot(root) == before  # nothing written
    return r.err


def test_refusals_name_the_file_and_the_fix(world, tmp_path):
    from checkpoint_zoo.nets import LinearNet
    from checkpoint_zoo.training import capture, save_state

    wide = LinearNet(13, 4)  # other parameter shapes
    opt = torch.optim.Adam(wide.parameters(), lr=0.1)
    wide(torch.zeros(2, 13)).sum().backward()
    opt.step()
    other = save_state(capture(wide, opt, step=1), tmp_path / "wide.state.safetensors")
    err = _bad_add(world, other, 11)
    assert str(other) in err and "shape" in err and "fc.weight" in err

    model = LinearNet(13, 3)
    opt = torch.optim.Adam([model.fc.weight], lr=0.1)  # one parameter of two, recorded by index
    model(torch.zeros(2, 13)).sum().backward()
    opt.step()
    fewer = save_state(capture(None, opt, step=1), tmp_path / "fewer.state.safetensors")
    err = _bad_add(world, fewer, 12)
    assert "covers 1 parameters but the architecture has 2" in err

    pickled = tmp_path / "state.pt"
    torch.save({"optimizer": opt.state_dict()}, pickled)
    err = _bad_add(world, pickled, 13)
    assert "is a pickle" in err and str(pickled) in err

    good = world["root"] / "zoo/checkpoints/lin/step-00000004.state.safetensors"
    cut = tmp_path / "cut.state.safetensors"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    err = _bad_add(world, cut, 14)
    assert "truncated" in err and str(cut) in err


def test_resume_with_other_param_groups_is_refused(world):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import ArchitectureError

    def two_groups(model):
        return torch.optim.Adam([{"params": [model.fc.weight]}, {"params": [model.fc.bias]}], lr=0.1)

    with Zoo(world["root"]) as zoo, pytest.raises(ArchitectureError, match=r"1 param group\(s\).*2 of"):
        zoo.resume("lin@4", optimizer_factory=two_groups)


def test_lineage_and_cards(world, tmp_path):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.publish.index import children_by_model, render_card

    root = world["root"]
    with Zoo(root) as zoo:
        zoo.add(world["weights"], model="lin-ft", step=0, parent="lin@4", **COMMON)
        zoo.add(world["weights"], model="lin-ft2", step=0, parent="lin-ft@0", **COMMON)
        lineage = zoo.lineage("lin-ft")
        assert lineage.ancestors == ("lin@4",) and lineage.descendants == ("lin-ft2@0",)
    r = run_zoo("lineage", "lin", cwd=root)
    assert r.code == 0 and "descendant  lin-ft@0" in r.out and "descendant  lin-ft2@0" in r.out

    def entry(model, step, parent=None):
        return {"model": model, "step": step, "ref": f"{model}@{step}", "parent": parent, "is_best": True,
                "metrics": {}, "tags": [], "arch": "linear", "dataset": "wine", "task": "t", "license": "MIT",
                "evaluation": {"split": "test"}, "description": "", "source": "s", "epoch": None,
                "reported_metric": None, "reported_value": None, "size_bytes": 1, "sha256": "0" * 64}

    summary = {"best": "x", "primary_metric": "accuracy", "selection_split": "val", "latest": "x"}
    entries = [entry("lin", 4), entry("lin-ft", 0, "lin@4")]
    child = render_card("lin-ft", [entries[1]], summary)
    assert "\nbase_model: lin@4\n" in child.split("\n---\n")[0] + "\n"
    assert "fine-tuned from: [lin@4](lin.md)" in child
    parent = render_card("lin", [entries[0]], summary, children_by_model(entries).get("lin", ()))
    assert "fine-tuned into: [lin-ft@0](lin-ft.md)" in parent and "base_model" not in parent


@pytest.fixture(scope="module", autouse=True)
def _cleanup_world(world):
    yield
    shutil.rmtree(world["base"] / "in", ignore_errors=True)


def _trained_parts(steps: int = 3):
    _seed()
    model, opt, sched = _fresh()
    _train(model, opt, sched, steps)
    return model, opt, sched


def test_convert_lightning_checkpoint_keeps_the_training_state(world, tmp_path):
    from checkpoint_zoo import Zoo

    model, opt, sched = _trained_parts()
    ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": model.state_dict(), "optimizer_states": [opt.state_dict()],
                "lr_schedulers": [sched.state_dict()], "global_step": 3, "epoch": 1, "hparams_name": "kwargs"}, ckpt)
    r = run_zoo("add", str(ckpt), "--model=lit", "--step=3", *ADD_ARGS, "--convert", cwd=world["root"])
    assert r.code == 0, r.err
    assert "training state: zoo/checkpoints/lit/step-00000003.state.safetensors" in r.out
    with Zoo(world["root"]) as zoo:
        assert "training state kept" in zoo.get("lit@3").source
        resumed = zoo.resume("lit@3")
    assert resumed.step == 3 and resumed.epoch == 1.0
    assert type(resumed.optimizer) is torch.optim.Adam and type(resumed.scheduler) is torch.optim.lr_scheduler.StepLR
    want, got = opt.state_dict(), resumed.optimizer.state_dict()
    assert want["param_groups"][0]["lr"] == got["param_groups"][0]["lr"]
    for idx in want["state"]:
        for key, value in want["state"][idx].items():
            assert torch.equal(value, got["state"][idx][key]), (idx, key)
    assert resumed.scheduler.state_dict()["last_epoch"] == sched.state_dict()["last_epoch"]


def test_convert_trainer_folder_keeps_optimizer_scheduler_and_rng(world, tmp_path):
    from safetensors.torch import save_file

    from checkpoint_zoo import Zoo

    model, opt, sched = _trained_parts()
    folder = tmp_path / "checkpoint-3"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    torch.save(opt.state_dict(), folder / "optimizer.pt")
    torch.save(sched.state_dict(), folder / "scheduler.pt")
    torch.save({"python": random.getstate(), "numpy": np.random.get_state(), "cpu": torch.get_rng_state()},
               folder / "rng_state.pth")
    expected = (random.random(), np.random.random(), torch.rand(1).item())
    (folder / "trainer_state.json").write_text('{"global_step": 3, "epoch": 0.75}')
    r = run_zoo("add", str(folder), "--model=hf", "--step=3", *ADD_ARGS, "--convert", cwd=world["root"])
    assert r.code == 0, r.err
    random.seed(5)
    np.random.seed(5)
    with Zoo(world["root"]) as zoo:
        resumed = zoo.resume("hf@3")
    assert (random.random(), np.random.random(), torch.rand(1).item()) == expected
    assert resumed.step == 3 and resumed.epoch == 0.75 and type(resumed.optimizer) is torch.optim.Adam

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"state": {}, "param_groups": [], "x": Payload()}, folder / "optimizer.pt")
    before = snapshot(world["root"])
    r = run_zoo("add", str(folder), "--model=hf", "--step=4", *ADD_ARGS, "--convert", cwd=world["root"])
    assert r.code == 1 and "optimizer.pt" in r.err and "weights_only" in r.err and "pwned" not in r.out + r.err
    assert snapshot(world["root"]) == before


def test_rm_removes_the_state_with_its_weights(world):
    from checkpoint_zoo import Zoo

    root = world["root"]
    state = root / "zoo/checkpoints/hf/step-00000003.state.safetensors"
    assert state.is_file()
    r = run_zoo("rm", "hf@3", cwd=root)
    assert r.code == 0, r.err
    assert not state.exists() and not (root / "zoo/checkpoints/hf").exists()
    with Zoo(root) as zoo:
        assert all(c.status == "ok" for c in zoo.verify(present_only=True))
