"""The registries in conf/: new tasks, datasets and architectures (torchvision, the zoo's own code) with
no change under src/, fit checks at add and validate time, memo keys per task, `_target_` safety and
trust for zoos opened at another revision. All through the real `zoo` entry point and `dvc repro`."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import ADD_ARGS, evaluations, git, reference_rows, register_arch, repro, run_zoo, sh, snapshot, write_safetensors
from test_pipeline import agree_within_contract

N_REF = len(reference_rows())

FLOWER_TASK = """\
description: Tell the three iris species apart from four flower measurements.
evaluator: {_target_: checkpoint_zoo.evaluation.evaluators.classify}
metrics:
  balanced_accuracy:
    metric: {_target_: torchmetrics.classification.MulticlassAccuracy, num_classes: "${num_classes}", average: macro}
    reproducibility: exact
    range: [0, 1]
  cross_entropy:
    metric: {_target_: checkpoint_zoo.evaluation.metrics.NegativeLogLikelihood}
    reproducibility: {rel: 1.0e-5, abs: 1.0e-6}
    range: [0, null]
    higher_is_better: false
primary_metric: balanced_accuracy
select_split: val
report_split: test
"""
IRIS = """\
description: Fisher's iris flowers, bundled with scikit-learn.
task: flower-species
loader: {_target_: checkpoint_zoo.datasets.sklearn_splits, name: load_iris, holdout: 0.4, val_share: 0.5, seed: 0}
input: {shape: [4], dtype: float32, range: [0, 8], normalisation: none (centimetres)}
labels: [setosa, versicolor, virginica]
license: CC-BY-4.0
"""
TORCHVISION_ARCH = "_target_: torchvision.ops.MLP\nin_channels: 4\nhidden_channels: [16, 3]\n"
OWN_ARCH = "_target_: zoo_code.flowers.TinyNet\nhidden: 8\n"
OWN_CODE = '''\
import torch


class TinyNet(torch.nn.Module):
    """A team's own architecture, versioned in the zoo's code folder."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.a = torch.nn.Linear(4, hidden)
        self.b = torch.nn.Linear(hidden, 3)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))
'''


def declare_flowers(root: Path) -> None:
    """A new task, dataset and two architectures, declared by files alone."""
    for rel, text in (("conf/task/flower-species.yaml", FLOWER_TASK), ("conf/dataset/iris.yaml", IRIS),
                      ("conf/arch/tv-mlp.yaml", TORCHVISION_ARCH), ("conf/arch/tiny.yaml", OWN_ARCH),
                      ("zoo_code/flowers.py", OWN_CODE)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def train_flowers(root: Path, arch: str, steps: tuple[int, ...], out: Path) -> list[Path]:
    """Real checkpoints: Adam on the iris train split, saved at each of ``steps``."""
    import torch
    from safetensors.torch import save_file

    from checkpoint_zoo import Zoo
    from checkpoint_zoo.registry.archs import build
    from checkpoint_zoo.registry.datasets import load_splits

    reg = Zoo(root).registry()
    data = load_splits(reg.dataset("iris"), reg).train
    torch.manual_seed(0)
    model = build(reg.arch(arch), reg)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    files = []
    for step in range(1, max(steps) + 1):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step in steps:
            path = out / f"{arch}-{step}.safetensors"
            save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(path))
            files.append(path)
    return files


def test_new_task_dataset_and_architectures_with_no_change_under_src(pipeline_clone, tmp_path):
    declare_flowers(pipeline_clone)
    for arch, model in (("tv-mlp", "iris-tv"), ("tiny", "iris-tiny")):
        for step, f in zip((5, 40), train_flowers(pipeline_clone, arch, (5, 40), tmp_path)):
            r = run_zoo("add", str(f), "--model", model, "--step", str(step), "--arch", arch, "--task", "flower-species",
                        "--dataset", "iris", "--license", "MIT", "--reported", "balanced_accuracy=0.9", cwd=pipeline_clone)
            assert r.code == 0, r.err
    listed = run_zoo("archs", "--format", "json", cwd=pipeline_clone)
    assert listed.code == 0, listed.err
    archs = {a["name"]: a for a in json.loads(listed.out)["items"]}
    assert archs["tv-mlp"]["target"] == "torchvision.ops.MLP" and archs["tiny"]["file"] == "conf/arch/tiny.yaml"
    tasks = {t["name"]: t for t in json.loads(run_zoo("tasks", "--format", "json", cwd=pipeline_clone).out)["items"]}
    assert tasks["flower-species"]["primary_metric"] == "balanced_accuracy"
    assert "iris" in run_zoo("datasets", cwd=pipeline_clone).out

    out = repro(pipeline_clone).stdout
    assert f"evaluated 4, reused {N_REF}" in out, out
    stored = json.loads((pipeline_clone / "zoo/metrics/evaluations/iris-tv.json").read_text())["checkpoints"]
    records = {r["step"]: r for r in stored}
    assert set(records[40]["metrics"]) == {"balanced_accuracy", "cross_entropy"}
    assert records[40]["split"] == "test" and records[40]["selection"]["split"] == "val"
    # @best: the highest balanced accuracy on val, ties to the later step, computed here independently
    expected = max(records.values(), key=lambda r: (r["selection"]["metrics"]["balanced_accuracy"], r["step"]))
    shown = json.loads(run_zoo("show", "iris-tv@best", "--format", "json", cwd=pipeline_clone).out)
    assert shown["step"] == expected["step"]
    index = json.loads((pipeline_clone / "zoo/index.json").read_text())
    assert index["tasks"]["flower-species"]["primary_metric"] == "balanced_accuracy"
    assert index["models"]["iris-tv"]["best"] == f"iris-tv@{expected['step']}"
    leaderboard = (pipeline_clone / "zoo/INDEX.md").read_text()
    assert "## flower-species" in leaderboard and "balanced\\_accuracy" in leaderboard
    assert "cross\\_entropy" in (pipeline_clone / "zoo/cards/iris-tiny.md").read_text()
    assert (pipeline_clone / "zoo/metrics/curves/iris-tiny.csv").read_text().splitlines()[0] == \
        "step,primary,balanced_accuracy,cross_entropy"
    summary = json.loads((pipeline_clone / "zoo/metrics/summary.json").read_text())
    assert summary["tasks"]["flower-species"]["metric"] == "balanced_accuracy"
    assert "balanced_accuracy" in (pipeline_clone / "site/data.js").read_text()
    where = run_zoo("ls", "--all-steps", "--where", "balanced_accuracy >= 0", "--format", "json", cwd=pipeline_clone)
    assert where.code == 0 and len(json.loads(where.out)) == 4, where.err
    # both models load: a torchvision module and the zoo's own class, with the stored weights
    from checkpoint_zoo import Zoo

    zoo = Zoo(pipeline_clone)
    assert type(zoo.load_model("iris-tiny@40")).__name__ == "TinyNet"
    assert type(zoo.load_model("iris-tv@best")).__module__.startswith("torchvision")
    assert git("status", "--porcelain", "--", "src", cwd=pipeline_clone) == ""
    assert git("diff", "--stat", "HEAD", "--", "src", cwd=pipeline_clone) == ""


def test_execution_settings_are_not_in_the_memo_key(pipeline_clone, tmp_path):
    """Another batch size re-evaluates nothing, and evaluating with it agrees within the contract."""
    params = pipeline_clone / "conf/run/default.yaml"
    params.write_text(params.read_text().replace("batch_size: 256", "batch_size: 7"))
    sh(sys.executable, "-m", "checkpoint_zoo.pipeline", "compose", cwd=pipeline_clone)
    out = repro(pipeline_clone).stdout
    assert f"evaluated 0, reused {N_REF}" in out, out
    committed = evaluations(pipeline_clone)
    shutil.rmtree(pipeline_clone / "zoo/metrics/evaluations")
    sh(sys.executable, "-m", "checkpoint_zoo.pipeline", "evaluate", cwd=pipeline_clone)  # from nothing, batches of 7
    assert agree_within_contract(committed, evaluations(pipeline_clone)) == []


def test_changing_one_task_re_evaluates_that_task_only(pipeline_clone):
    task = pipeline_clone / "conf/task/tabular-classification.yaml"
    task.write_text(task.read_text().replace("reproducibility: {rel: 1.0e-5, abs: 1.0e-6}",
                                             "reproducibility: {rel: 1.0e-4, abs: 1.0e-6}"))
    out = repro(pipeline_clone).stdout
    tabular = sum(r["task"] == "tabular-classification" for r in reference_rows())
    assert f"evaluated {tabular}, reused {N_REF - tabular}" in out, out
    assert "wine-linear@5 (task, dataset or architecture config changed)" in out
    others = {r["model"] for r in reference_rows() if r["task"] != "tabular-classification"}
    assert others and not any(f"evaluated {m}@" in out for m in others), out
    desc = pipeline_clone / "conf/task/image-classification.yaml"
    desc.write_text(desc.read_text().replace("description: Assign", "description: Please assign"))
    assert f"evaluated 0, reused {N_REF}" in repro(pipeline_clone).stdout  # a description is not semantics


def test_checkpoint_that_does_not_fit_its_arch_is_refused_at_add_and_validate(small_zoo, tmp_path):
    f = write_safetensors(tmp_path / "x.safetensors", shapes={"fc.weight": (3, 4), "fc.bias": (3,)})
    before = snapshot(small_zoo)
    r = run_zoo("add", str(f), "--model", "x", "--step", "1", *ADD_ARGS, cwd=small_zoo)
    assert r.code == 1
    assert r.err.count("\n") == 1 and str(f) in r.err and "does not fit architecture 'linear'" in r.err
    assert "norm.mean" in r.err and "fc.weight: file [3, 4], architecture [3, 13]" in r.err
    assert snapshot(small_zoo) == before
    # a hand-edited table cannot smuggle a mismatch past validate: alpha@10 claimed to be a resmlp
    table = small_zoo / "zoo/checkpoints.csv"
    table.write_text(table.read_text().replace(",linear,tabular-classification,wine,",
                                               ",resmlp,tabular-classification,breast-cancer,", 1))
    v = run_zoo("validate", cwd=small_zoo)
    assert v.code == 1 and "line 2 (alpha@10)" in v.err and "does not fit architecture 'resmlp'" in v.err, v.err
    # and an unregistered name in the table is named with the file to add
    table.write_text(table.read_text().replace(",resmlp,tabular-classification,breast-cancer,",
                                               ",resnet99,tabular-classification,breast-cancer,", 1))
    v = run_zoo("validate", cwd=small_zoo)
    assert v.code == 1 and "architecture 'resnet99' is not registered" in v.err and "conf/arch/resnet99.yaml" in v.err


def test_fit_check_reads_the_header_only(small_zoo, tmp_path):
    """A 'checkpoint' whose header declares 64 GB of tensors it does not hold is judged without reading them."""
    import struct

    header = json.dumps({"weight": {"dtype": "F32", "shape": [4_000_000, 4_000], "data_offsets": [0, 64_000_000_000]}})
    fake = tmp_path / "huge.safetensors"
    fake.write_bytes(struct.pack("<Q", len(header)) + header.encode())
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.formats import tensor_shapes
    from checkpoint_zoo.registry.archs import expected_shapes, fit_problem

    register_arch(small_zoo, "huge", in_features=4_000, out_features=4_000_000, bias=False)
    zoo = Zoo(small_zoo)
    spec = zoo.registry().arch("huge")
    assert fit_problem(spec, tensor_shapes(fake), expected_shapes(spec, zoo.registry())) is None
    small = zoo.registry().arch("linear")
    assert "1 unexpected (weight)" in fit_problem(small, tensor_shapes(fake), expected_shapes(small, zoo.registry()))


@pytest.mark.parametrize("target, extra, says", [
    ("os.system", {"command": "touch MARKER"}, "outside the allowed import roots"),
    ("subprocess.run", {"args": ["touch", "MARKER"]}, "outside the allowed import roots"),
    ("builtins.eval", {}, "outside the allowed import roots"),
    ("checkpoint_zoo.api.init", {"path": "MARKER"}, "outside the allowed import roots"),
    ("torch.load", {"f": "MARKER"}, "reads, writes or runs files"),
    ("torch.hub.load", {}, "reaches hub"),
    ("torch.save", {}, "reads, writes or runs files"),
    ("transformers.AutoModel.from_pretrained", {}, "reads, writes or runs files"),
    ("torchvision.models.resnet18", {"weights": "DEFAULT"}, "weights: fetching weights or remote code is refused"),
    ("timm.create_model", {"model_name": "resnet18", "pretrained": True}, "pretrained: fetching"),
    ("torchvision.models.resnet18", {"norm_layer": {"_target_": "os.system", "command": "touch MARKER"}},
     "key norm_layer: _target_ 'os.system'"),
    ("torch._C._nn.linear", {}, "private member"),
])
def test_unsafe_targets_are_refused_with_one_line(small_zoo, tmp_path, target, extra, says):
    register_arch(small_zoo, "evil", target=target, **extra)
    before = snapshot(small_zoo)
    f = write_safetensors(tmp_path / "x.safetensors")
    r = run_zoo("add", str(f), "--model", "x", "--step", "1", "--arch", "evil", "--task", "tabular-classification",
                "--dataset", "wine", "--license", "MIT", cwd=small_zoo)
    assert r.code == 1 and r.err.count("\n") == 1, r.err
    assert "conf/arch/evil.yaml" in r.err and says in r.err, r.err
    assert snapshot(small_zoo) == before and not (small_zoo / "MARKER").exists()
    listed = run_zoo("archs", cwd=small_zoo)
    assert listed.code == 1 and "conf/arch/evil.yaml" in listed.err and "linear" in listed.out


def test_zoo_code_runs_from_another_revision_only_when_trusted(pipeline_clone, tmp_path):
    declare_flowers(pipeline_clone)
    (f,) = train_flowers(pipeline_clone, "tiny", (30,), tmp_path)
    assert run_zoo("add", str(f), "--model", "iris-tiny", "--step", "30", "--arch", "tiny", "--task", "flower-species",
                   "--dataset", "iris", "--license", "MIT", cwd=pipeline_clone).code == 0
    assert run_zoo("push", "iris-tiny@30", cwd=pipeline_clone).code == 0
    git("add", "-A", cwd=pipeline_clone)
    git("commit", "-qm", "flowers", cwd=pipeline_clone)
    marker = tmp_path / "ran"
    (pipeline_clone / "zoo_code/__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    git("commit", "-qam", "code folder that leaves a marker when imported", cwd=pipeline_clone)
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import UntrustedCodeError

    with pytest.raises(UntrustedCodeError, match="trust_code=True"):
        Zoo(str(pipeline_clone), rev="HEAD").load_model("iris-tiny@30")
    assert not marker.exists()
    r = run_zoo("show", "iris-tiny@30", "--rev", "HEAD", cwd=pipeline_clone)  # reading metadata needs no trust
    assert r.code == 0, r.err
    model = Zoo(str(pipeline_clone), rev="HEAD", trust_code=True).load_model("iris-tiny@30")
    assert type(model).__name__ == "TinyNet" and marker.exists()
