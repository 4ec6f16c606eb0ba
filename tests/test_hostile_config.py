"""Hostile configs (issue 25, classes 1, 2, 3 and 5): a config names code only by what it resolves to,
a checkpoint folder's config.json is data, a scheduler address never comes from the repository, and
configs cannot read the environment.

Each code-execution payload would create a marker file under the test's temp folder if it ever ran;
every case asserts the marker is absent and the refusal is one line naming the file and the key.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT, git, run_zoo, snapshot, write_safetensors

LINEAR = "conf/arch/linear.yaml"


def _edit_yaml(root: Path, rel: str, **changes: object) -> None:
    path = root / rel
    data = yaml.safe_load(path.read_text())
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _payloads(tmp: Path) -> list[tuple[str, dict, Path | None]]:
    """(case id, a nested node, the marker it would create) of the issue's class-1 examples."""
    marker = tmp / "MARKER"
    code = tmp / "remote_code"
    code.mkdir(exist_ok=True)
    (code / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Evil: pass\n")
    secret = tmp / "secret.txt"
    secret.write_text("the secret\n")
    shell = {"command": f"touch {marker}"}
    return [
        ("collect-env-run", {"_target_": "torch.utils.collect_env.run", **shell}, marker),
        ("through-package", {"_target_": "checkpoint_zoo.nets.torch.utils.collect_env.run", **shell}, marker),
        ("dynamic-module", {"_target_": "transformers.dynamic_module_utils.get_class_from_dynamic_module",
                            "class_reference": "evil.Evil", "pretrained_model_name_or_path": str(code)}, marker),
        ("torch-os-makedirs", {"_target_": "torch.os.makedirs", "name": str(marker)}, marker),
        ("torch-os-symlink", {"_target_": "torch.os.symlink", "src": str(secret), "dst": str(marker)}, marker),
        ("torch-os-mkfifo", {"_target_": "torch.os.mkfifo", "path": str(marker)}, marker),
        ("storage-from-file", {"_target_": "torch.UntypedStorage.from_file", "filename": str(marker),
                               "shared": True, "nbytes": 8}, marker),
        ("package-np-memmap", {"_target_": "checkpoint_zoo.datasets.np.memmap", "filename": str(marker),
                               "mode": "w+", "shape": [4]}, marker),
        ("torchvision-read-file", {"_target_": "torchvision.io.read_file", "path": str(secret)}, None),
        ("cached-file", {"_target_": "transformers.utils.cached_file", "path_or_repo_id": "bert-base-uncased",
                         "filename": "config.json"}, None),
        ("timm-pretrained-positional", {"_target_": "timm.create_model", "_args_": ["resnet18", True]}, None),
        ("timm-hf-hub", {"_target_": "timm.create_model", "model_name": "hf-hub:timm/resnet18.a1_in1k"}, None),
        ("timm-local-dir", {"_target_": "timm.create_model", "model_name": f"local-dir:{code}"}, None),
        ("timm-pretrained-cfg", {"_target_": "timm.create_model", "model_name": "resnet18",
                                 "pretrained_cfg": {"file": str(secret)}}, None),
        ("factory-partial", {"_target_": "torchvision.models.resnet18", "_partial_": True}, None),
    ]


CASES = [
    "collect-env-run", "through-package", "dynamic-module", "torch-os-makedirs", "torch-os-symlink",
    "torch-os-mkfifo", "storage-from-file", "package-np-memmap", "torchvision-read-file", "cached-file",
    "timm-pretrained-positional", "timm-hf-hub", "timm-local-dir", "timm-pretrained-cfg", "factory-partial"]


@pytest.mark.parametrize("case", CASES)
def test_a_nested_target_is_judged_by_what_it_resolves_to(small_zoo, tmp_path, monkeypatch, case):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import ZooError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    node, marker = {c: (n, m) for c, n, m in _payloads(tmp_path)}[case]
    _edit_yaml(small_zoo, LINEAR, extra=node)
    with pytest.raises(ZooError) as e:
        Zoo(small_zoo).load_model("alpha@10")
    message = str(e.value)
    assert "\n" not in message and LINEAR in message and "key extra" in message and "refused" in message, message
    if marker is not None:
        assert not marker.exists() and not marker.is_symlink()


def test_a_payload_in_an_arch_file_does_not_run_on_zoo_add(small_zoo, tmp_path):
    marker = tmp_path / "MARKER"
    _edit_yaml(small_zoo, LINEAR, extra={"_target_": "torch.utils.collect_env.run", "command": f"touch {marker}"})
    before = snapshot(small_zoo)
    f = write_safetensors(tmp_path / "x.safetensors", seed=9)
    r = run_zoo("add", str(f), "--model", "x", "--step", "1", "--arch", "linear", "--task", "tabular-classification",
                "--dataset", "wine", "--license", "MIT", cwd=small_zoo)
    assert r.code == 1 and r.err.count("\n") == 1, r.err
    assert LINEAR in r.err and "key extra" in r.err and "torch.utils.collect_env.run" in r.err, r.err
    assert not marker.exists() and snapshot(small_zoo) == before


def test_a_dataset_loader_and_a_metric_are_judged_too(small_zoo, tmp_path):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import UnsafeTargetError
    from checkpoint_zoo.registry.datasets import load_splits
    from checkpoint_zoo.registry.targets import instantiate

    marker = tmp_path / "MARKER"
    payload = {"_target_": "checkpoint_zoo.nets.torch.utils.collect_env.run", "command": f"touch {marker}"}
    wine = yaml.safe_load((small_zoo / "conf/dataset/wine.yaml").read_text())
    wine["loader"]["seed"] = payload
    (small_zoo / "conf/dataset/wine.yaml").write_text(yaml.safe_dump(wine))
    registry = Zoo(small_zoo).registry()
    with pytest.raises(UnsafeTargetError, match=r"conf/dataset/wine.yaml: loader: key seed: "):
        load_splits(registry.dataset("wine"), registry)
    metric = {"_target_": "torchmetrics.classification.MulticlassAccuracy", "num_classes": payload}
    with pytest.raises(UnsafeTargetError, match="key num_classes"):
        instantiate(metric, "conf/task/t.yaml: metrics.accuracy", code_allowed=True)
    assert not marker.exists()


def test_the_reference_configs_are_all_accepted(tmp_path):
    from checkpoint_zoo.registry import workspace_registry
    from checkpoint_zoo.registry.targets import check_identities

    registry = workspace_registry(PROJECT)
    for spec in registry.archs.values():
        check_identities(spec.config, spec.file, code_allowed=True)
    for task in registry.tasks.values():
        check_identities(task.evaluator, task.file, code_allowed=True)
        for m in task.metrics.values():
            check_identities(m.config, task.file, code_allowed=True)
    for ds in registry.datasets.values():
        check_identities(ds.loader, ds.file, code_allowed=True)


def test_a_zoo_at_a_revision_without_trust_builds_classes_never_functions(small_zoo):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import UntrustedCodeError
    from checkpoint_zoo.registry.archs import build

    (small_zoo / "conf/arch/tv.yaml").write_text("_target_: torchvision.models.shufflenet_v2_x0_5\nnum_classes: 3\n")
    git("add", "conf/arch/tv.yaml", cwd=small_zoo)
    git("commit", "-qm", "an arch built by a function", cwd=small_zoo)
    untrusted = Zoo(str(small_zoo), rev="HEAD").registry()
    with pytest.raises(UntrustedCodeError, match=r"conf/arch/tv.yaml: key _target_: .*trust_code"):
        build(untrusted.arch("tv"), untrusted, device="meta")
    assert type(build(untrusted.arch("linear"), untrusted, device="meta")).__name__ == "LinearNet"  # a class
    trusted = Zoo(str(small_zoo), rev="HEAD", trust_code=True).registry()
    assert type(build(trusted.arch("tv"), trusted, device="meta")).__name__ == "ShuffleNetV2"


# ---- class 2: a checkpoint folder's config.json is data ----------------------------------------------------------

@pytest.mark.parametrize("key_path, node", [
    ("id2label.0", {"_target_": "torch.utils.collect_env.run", "command": "touch {marker}"}),
    ("extra", {"_target_": "torch.utils.collect_env.run", "command": "touch {marker}"}),
    ("layers[1]", {"_target_": "torch.utils.collect_env.run", "_args_": ["touch {marker}"]}),
    ("nested", {"deeper": {"_recursive_": False, "x": 1}}),
])
def test_a_config_json_key_starting_with_underscore_is_refused(small_zoo, tmp_path, key_path, node):
    marker = tmp_path / "MARKER"
    folder = tmp_path / "hf-model"
    folder.mkdir()
    write_safetensors(folder / "model.safetensors", seed=4)
    node = json.loads(json.dumps(node).replace("{marker}", str(marker)))
    config: dict = {"architectures": ["BertForSequenceClassification"], "model_type": "bert", "vocab_size": 32,
                    "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8}
    head, _, _rest = key_path.partition(".")
    if key_path == "id2label.0":
        config["id2label"] = {"0": node, "1": "b"}
    elif key_path.startswith("layers"):
        config["layers"] = [1, node]
    else:
        config[head] = node
    (folder / "config.json").write_text(json.dumps(config))
    before = snapshot(small_zoo)
    r = run_zoo("add", str(folder), "--model", "hf-evil", "--step", "1", "--task", "tabular-classification",
                "--dataset", "wine", "--license", "MIT", cwd=small_zoo)
    assert r.code == 1 and r.err.count("\n") == 1, r.err
    assert "config.json" in r.err and f"key {key_path}" in r.err, r.err
    assert not marker.exists() and snapshot(small_zoo) == before
    assert not (small_zoo / "conf/arch/hf-evil.yaml").exists()


# ---- class 3: the scheduler address ------------------------------------------------------------------------------

def _conf_zoo(tmp_path: Path) -> Path:
    """A folder with this repository's conf/ (what the pipeline composes params.yaml from)."""
    root = tmp_path / "z"
    shutil.copytree(PROJECT / "conf", root / "conf")
    return root


def test_a_committed_scheduler_address_is_refused(tmp_path, monkeypatch):
    from checkpoint_zoo.errors import ZooError
    from checkpoint_zoo.evaluation.executors import ExecutorSpec
    from checkpoint_zoo.pipeline import PARAMS_FILE, load_params, write_params

    monkeypatch.delenv("ZOO_DASK_SCHEDULER", raising=False)
    root = _conf_zoo(tmp_path)
    _edit_yaml(root, "conf/executor/dask.yaml", address="tcp://203.0.113.9:8786")
    with pytest.raises(ZooError, match=r"executor.address 'tcp://203.0.113.9:8786': .*never taken from conf/"):
        write_params(root, ["executor=dask"])
    assert not (root / PARAMS_FILE).exists()
    params = {"eval": {"max_examples": None}, "run": {"batch_size": 8, "threads": 1, "device": "cpu"},
              "index": {"title": "t"}, "executor": {"kind": "dask", "address": "tcp://203.0.113.9:8786"}}
    (root / PARAMS_FILE).write_text(yaml.safe_dump(params))
    with pytest.raises(ZooError, match=r"params.yaml executor.address .*ZOO_DASK_SCHEDULER"):
        load_params(root)
    with pytest.raises(ZooError, match="never taken from conf/"):
        ExecutorSpec.from_params(params["executor"])
    monkeypatch.setenv("ZOO_DASK_SCHEDULER", "tcp://127.0.0.1:8786")
    assert ExecutorSpec.from_params({"kind": "dask"}).address == "tcp://127.0.0.1:8786"


def test_a_scheduler_that_accepts_and_never_answers_fails_within_the_timeout(monkeypatch):
    from checkpoint_zoo.errors import ZooError
    from checkpoint_zoo.evaluation.executors import ExecutorSpec, open_executor

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])  # and never a byte back
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    monkeypatch.setenv("ZOO_DASK_SCHEDULER", address)
    spec = ExecutorSpec.from_params({"kind": "dask", "connect_timeout": 2})
    outcome: dict[str, BaseException | str] = {}

    def run() -> None:
        try:
            with open_executor(spec):
                outcome["result"] = "connected"
        except BaseException as e:  # noqa: BLE001
            outcome["result"] = e

    started = time.monotonic()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(20)
    took = time.monotonic() - started
    listener.close()
    assert not worker.is_alive(), "the connection hung past connect_timeout"
    error = outcome["result"]
    assert isinstance(error, ZooError) and took < 10, (error, took)
    assert "\n" not in str(error) and address in str(error) and "within 2 s" in str(error), error


# ---- class 5: configs cannot read the environment ----------------------------------------------------------------

SECRET = "s3cr3t-value-4242"


@pytest.mark.parametrize("value", ["${oc.env:ZOO_TEST_SECRET}", "${oc.decode:${oc.env:ZOO_TEST_SECRET}}",
                                   "prefix-${oc.env:ZOO_TEST_SECRET,3}", "${oc.create:{a: 1}}"])
def test_a_resolver_in_an_arch_file_is_refused_at_load(small_zoo, tmp_path, monkeypatch, value):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import RegistryError

    monkeypatch.setenv("ZOO_TEST_SECRET", SECRET)
    _edit_yaml(small_zoo, LINEAR, description=value)
    with pytest.raises(RegistryError, match=r"conf/arch/linear.yaml: key description: .* calls a resolver"):
        Zoo(small_zoo).registry()
    r = run_zoo("export", "alpha@10", str(tmp_path / "out"), cwd=small_zoo)
    assert r.code == 1 and LINEAR in r.err and SECRET not in r.err + r.out, r.err
    assert not (tmp_path / "out").exists()


def test_a_resolver_in_conf_never_reaches_params_yaml(tmp_path, monkeypatch):
    from checkpoint_zoo.errors import ZooError
    from checkpoint_zoo.pipeline import PARAMS_FILE, load_params, write_params

    monkeypatch.setenv("ZOO_TEST_SECRET", SECRET)
    root = _conf_zoo(tmp_path)
    write_params(root)  # the reference conf/ composes
    good = (root / PARAMS_FILE).read_bytes()
    _edit_yaml(root, "conf/index/default.yaml", title="${oc.env:ZOO_TEST_SECRET}")
    with pytest.raises(ZooError, match=r"conf/index/default.yaml: key title: \$\{oc.env:ZOO_TEST_SECRET\} calls"):
        write_params(root)
    with pytest.raises(ZooError, match="conf/index/default.yaml: key title"):
        load_params(root)
    assert (root / PARAMS_FILE).read_bytes() == good and SECRET.encode() not in good
    _edit_yaml(root, "conf/index/default.yaml", title="Checkpoint Zoo")
    with pytest.raises(ZooError, match=r"key index.title: \$\{oc.env"):
        write_params(root, ["index.title=${oc.env:ZOO_TEST_SECRET}"])
    assert (root / PARAMS_FILE).read_bytes() == good
