"""`dvc repro` for real on clones of this repository: validate -> evaluate -> index.

Incrementality is asserted by what the evaluate stage says it evaluated; determinism by comparing
bytes of two runs on this machine, and agreement within the stated reproducibility contract against
the committed metrics and against a run on other CPU kernels.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT, evaluations, git, ran_stages, reference_rows, repro, run_zoo, sh

N_REF = len(reference_rows())


@pytest.fixture
def base(pipeline_base) -> Path:
    return pipeline_base


@pytest.fixture
def clone(pipeline_clone) -> Path:
    return pipeline_clone


def finetune(zoo_root: Path, ref: str, out: Path, steps: int = 5) -> Path:
    """A real checkpoint: a few more Adam steps on the training split from an existing one."""
    import torch
    from safetensors.torch import save_file

    from checkpoint_zoo import Zoo
    from checkpoint_zoo.registry.datasets import load_splits

    zoo = Zoo(zoo_root)
    c = zoo.get(ref)
    model = zoo.load_model(ref).train()
    data = load_splits(zoo.registry().dataset(c.dataset), zoo.registry()).train
    torch.manual_seed(1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(out))
    return out


# Another CPU's kernels, forced on this one: ATen's generic (non-SIMD) kernels and MKL/numpy without
# AVX-512. On an AMD EPYC this moved NLL in its 8th digit, as an Intel Xeon with AVX-512 does.
OTHER_KERNELS = {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
                 "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512_SKX"}


def agree_within_contract(a: dict, b: dict) -> list[str]:
    """Every way records ``b`` break records ``a``'s stated contract (computed here, not by the package)."""
    import math

    problems = []
    assert a.keys() == b.keys()
    for name in a:
        ra, rb = json.loads(a[name])["checkpoints"], json.loads(b[name])["checkpoints"]
        for x, y in zip(ra, rb, strict=True):
            assert x["sha256"] == y["sha256"] and x["provenance"] == y["provenance"]
            assert x["metrics"].keys() == y["metrics"].keys() == x["reproducibility"].keys()
            for metric, rule in x["reproducibility"].items():
                va, vb = x["metrics"][metric], y["metrics"][metric]
                if rule["kind"] == "exact":
                    ok = va == vb
                else:
                    # float scores: a relative tolerance, or an absolute one for ranked metrics such as mAP
                    assert rule["kind"] == "close" and 0 <= rule["rel"] <= 1e-4 and rule["rel"] + rule["abs"] > 0, rule
                    ok = math.isclose(va, vb, rel_tol=rule["rel"], abs_tol=rule["abs"])
                if not ok:
                    problems.append(f"{name} step {x['step']} {metric}: {va} vs {vb} under {rule}")
    return problems


def test_fresh_clone_repro_keeps_committed_metrics(base):
    """The metrics in git were computed on some other machine; `dvc repro` here rewrites none of them."""
    assert git("status", "--porcelain", "--", "zoo", "dvc.lock", cwd=base) == ""
    again = repro(base)
    assert ran_stages(again.stdout) == ["registry"], again.stdout  # only the always-changed tag reader
    assert git("status", "--porcelain", "--", "zoo", "dvc.lock", cwd=base) == ""
    assert (base / "site/index.html").is_file()


def test_same_machine_same_settings_is_bitwise_identical(clone):
    folder = clone / "zoo/metrics/evaluations"
    runs = []
    for _ in range(2):
        shutil.rmtree(folder)
        out = sh(sys.executable, "-m", "checkpoint_zoo.pipeline", "evaluate", cwd=clone).stdout
        assert f"evaluated {N_REF}, reused 0" in out
        runs.append(evaluations(clone))
    assert runs[0] == runs[1]


def test_other_cpu_kernels_agree_within_the_contract_and_leave_git_clean(clone):
    committed = evaluations(clone)
    for name, body in committed.items():  # every record states its contract: counts exact, NLL and mAP close
        for rec in json.loads(body)["checkpoints"]:
            if rec["task"] == "object-detection":
                assert rec["reproducibility"]["map"]["kind"] == "close", name
                continue
            assert rec["reproducibility"]["accuracy"] == {"kind": "exact"}
            assert rec["reproducibility"]["nll"]["kind"] == "close", name
    env = {**os.environ, **OTHER_KERNELS}
    # a forced re-evaluation on those kernels compares every metric with the committed one under its
    # contract (test_forced_re_evaluation_... shows it catches a real disagreement) and keeps every byte
    proc = subprocess.run([sys.executable, "-m", "checkpoint_zoo.pipeline", "evaluate", "--force"], cwd=clone,
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"{N_REF} agree with the stored result within the reproducibility contract" in proc.stdout
    assert git("status", "--porcelain", "--", "zoo", cwd=clone) == ""


def test_forced_re_evaluation_keeps_agreeing_bytes_and_fails_on_real_disagreement(clone):
    path = clone / "zoo/metrics/evaluations/wine-linear.json"
    body = json.loads(path.read_text())
    first, second = body["checkpoints"][0], body["checkpoints"][1]
    first["metrics"]["nll"] = float(f"{first['metrics']['nll'] * (1 + 2e-7):.8g}")  # another CPU's last bits
    second["metrics"]["nll"] = round(second["metrics"]["nll"] * 1.05, 8)             # not the same model any more
    path.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n")
    proc = sh(sys.executable, "-m", "checkpoint_zoo.pipeline", "evaluate", "--force", cwd=clone, check=False)
    assert proc.returncode == 1
    ref = f"wine-linear@{second['step']}"
    assert f"NOT REPRODUCED {ref}: same checkpoint, code, config, params and data, but nll" in proc.stdout
    assert "1 checkpoint(s) did not reproduce their stored metrics" in proc.stderr
    after = json.loads(path.read_text())["checkpoints"]
    assert after[0]["metrics"]["nll"] == first["metrics"]["nll"]       # within the contract: kept as stored
    assert after[1]["metrics"]["nll"] != second["metrics"]["nll"]      # beyond it: the reproduced value
    committed = json.loads(git("show", "HEAD:zoo/metrics/evaluations/wine-linear.json", cwd=clone))
    assert after[1]["metrics"]["nll"] == committed["checkpoints"][1]["metrics"]["nll"]


def test_add_one_checkpoint_evaluates_exactly_one(clone, tmp_path):
    f = finetune(clone, "wine-linear@80", tmp_path / "w90.safetensors")
    r = run_zoo("add", str(f), "--model", "wine-linear", "--step", "90", "--arch", "linear", "--task",
                "tabular-classification", "--dataset", "wine", "--license", "CC0-1.0",
                "--parent", "wine-linear@80", "--source", "tests/test_pipeline.py finetune", cwd=clone)
    assert r.code == 0, r.err
    out = repro(clone).stdout
    assert "evaluated wine-linear@90 (new checkpoint)" in out
    assert f"evaluated 1, reused {N_REF}" in out
    index = json.loads((clone / "zoo/index.json").read_text())
    assert len(index["checkpoints"]) == N_REF + 1
    entry = next(e for e in index["checkpoints"] if e["ref"] == "wine-linear@90")
    assert entry["pull_command"] == "zoo pull wine-linear@90" and 0 <= entry["metrics"]["accuracy"] <= 1
    assert "| 90" in (clone / "zoo/cards/wine-linear.md").read_text()
    assert (clone / "zoo/metrics/curves/wine-linear.csv").read_text().splitlines()[-1].startswith("90,")
    assert "wine-linear@90" in (clone / "site/data.js").read_text()
    # the memoised result equals a full run from nothing: byte for byte for what this machine evaluated,
    # within the contract for the committed results (made on whichever CPU committed them)
    memoised = evaluations(clone)
    shutil.rmtree(clone / "zoo/metrics/evaluations")
    sh(sys.executable, "-m", "checkpoint_zoo.pipeline", "evaluate", cwd=clone)
    full = evaluations(clone)
    assert agree_within_contract(memoised, full) == []

    def record(files, step):
        return next(r for r in json.loads(files["wine-linear.json"])["checkpoints"] if r["step"] == step)

    assert record(memoised, 90) == record(full, 90)
    for name, body in memoised.items():
        (clone / "zoo/metrics/evaluations" / name).write_bytes(body)
    # removing it removes its metrics and index entries
    assert run_zoo("rm", "wine-linear@90", cwd=clone).code == 0
    repro(clone)
    assert "wine-linear@90" not in (clone / "zoo/metrics/evaluations/wine-linear.json").read_text()
    assert len(json.loads((clone / "zoo/index.json").read_text())["checkpoints"]) == N_REF


def test_conf_edit_without_recompose_fails_then_recompose_reevaluates_all(clone):
    conf = clone / "conf/eval/default.yaml"
    conf.write_text(conf.read_text().replace("max_examples: null", "max_examples: 200"))
    before = (clone / "zoo/index.json").read_bytes()
    r = repro(clone, check=False)
    assert r.returncode != 0
    assert "params.yaml differs from what conf/ composes to" in r.stderr + r.stdout
    assert (clone / "zoo/index.json").read_bytes() == before
    sh(sys.executable, "-m", "checkpoint_zoo.pipeline", "compose", cwd=clone)
    out = repro(clone).stdout
    assert f"evaluated {N_REF}, reused 0" in out and "(eval params changed)" in out


def test_dvc_exp_run_with_hydra_override(clone):
    git("add", "-A", cwd=clone)
    git("commit", "-qm", "state before the experiment", "--allow-empty", cwd=clone)
    r = sh(sys.executable, "-m", "dvc", "exp", "run", "-S", "eval.max_examples=40", cwd=clone)
    assert f"evaluated {N_REF}, reused 0" in r.stdout
    params = (clone / "params.yaml").read_text()
    assert "max_examples: 40" in params
    # mnist-shufflenet: 500 val and 500 test digits, so the cap of 40 is what limits both splits
    recs = json.loads((clone / "zoo/metrics/evaluations/mnist-shufflenet.json").read_text())["checkpoints"]
    assert all(rec["n_examples"] == 40 and rec["selection"]["n_examples"] == 40 for rec in recs)
    # back in plain `dvc repro`, the experiment's override is not silently kept
    r = repro(clone, "-f", "validate", check=False)
    assert r.returncode != 0 and "overrides" in r.stderr + r.stdout


def test_code_change_reevaluates_all(clone, monkeypatch):
    from checkpoint_zoo.api import Zoo
    from checkpoint_zoo.evaluation import run
    from checkpoint_zoo.pipeline import load_params

    params = load_params(clone)
    logs: list[str] = []
    folder = clone / "zoo/metrics/evaluations"
    report = run.evaluate_zoo(Zoo(clone), params["eval"], params["run"], folder, log=logs.append)
    assert len(report.evaluated) == 0 and len(report.reused) == N_REF
    monkeypatch.setattr(run, "package_code_hash", lambda: "0" * 64)
    report = run.evaluate_zoo(Zoo(clone), params["eval"], params["run"], folder, log=logs.append)
    assert len(report.evaluated) == N_REF and {why for _, why in report.evaluated} == {"evaluation code changed"}


def test_partial_clone_indexes_correctly_without_re_evaluating(base, tmp_path):
    dest = tmp_path / "partial"
    subprocess.run(["git", "clone", "-q", str(base), str(dest)], check=True)
    shutil.rmtree(dest / ".dvc-remote")  # the clone still reads bytes from base's remote below
    shutil.copytree(base / ".dvc-remote", dest / ".dvc-remote")
    assert run_zoo("pull", "wine-linear@80", cwd=dest).code == 0
    f = finetune(dest, "wine-linear@80", tmp_path / "w85.safetensors")
    assert run_zoo("add", str(f), "--model", "wine-linear", "--step", "85", "--arch", "linear", "--task",
                   "tabular-classification", "--dataset", "wine", "--license", "CC0-1.0", cwd=dest).code == 0
    out = repro(dest, "--allow-missing").stdout
    assert f"evaluated 1, reused {N_REF}" in out
    index = json.loads((dest / "zoo/index.json").read_text())
    assert len(index["checkpoints"]) == N_REF + 1
    base_index = json.loads((base / "zoo/index.json").read_text())
    same = {e["ref"]: e["metrics"] for e in base_index["checkpoints"]}
    assert all(e["metrics"] == same[e["ref"]] for e in index["checkpoints"] if e["ref"] in same)


def test_index_refuses_when_evaluations_do_not_match_table(clone):
    (clone / "zoo/metrics/evaluations/wine-linear.json").unlink()
    before = (clone / "zoo/index.json").read_bytes()
    r = sh(sys.executable, "-m", "checkpoint_zoo.pipeline", "index", cwd=clone, check=False)
    assert r.returncode == 1
    assert "do not match the table one to one" in r.stderr and "wine-linear@" in r.stderr
    assert (clone / "zoo/index.json").read_bytes() == before


def test_invalid_table_stops_at_validate(clone):
    table = clone / "zoo/checkpoints.csv"
    lines = table.read_text().splitlines(keepends=True)
    line = next(i for i, text in enumerate(lines, 1) if ",CC0-1.0," in text)
    lines[line - 1] = lines[line - 1].replace(",CC0-1.0,", ",NOT-A-LICENSE,", 1)
    table.write_text("".join(lines))
    before = (clone / "zoo/index.json").read_bytes(), evaluations(clone)
    r = repro(clone, check=False)
    assert r.returncode != 0
    text = r.stdout + r.stderr
    assert f"line {line}" in text and "'license'" in text and "NOT-A-LICENSE" in text
    assert "Running stage 'evaluate'" not in text
    assert ((clone / "zoo/index.json").read_bytes(), evaluations(clone)) == before


def test_corrupt_checkpoint_fails_evaluation_others_kept(clone):
    # one stage of a model is damaged; its last stage and another model (every split of both: 500 digits)
    # are re-evaluated under max_examples 100
    model, other = "mnist-shufflenet", "mnist-mobilenetv3"
    *_, step, last = sorted(int(r["step"]) for r in reference_rows() if r["model"] == model)
    ref = f"{model}@{step}"
    victim = clone / "zoo/checkpoints" / model / f"step-{step:08d}.safetensors"
    data = bytearray(victim.read_bytes())
    data[-3] ^= 0x55
    os.chmod(victim, 0o644)
    victim.write_bytes(bytes(data))
    conf = clone / "conf/eval/default.yaml"
    conf.write_text(conf.read_text().replace("max_examples: null", "max_examples: 100"))
    sh(sys.executable, "-m", "checkpoint_zoo.pipeline", "compose", cwd=clone)
    before = {f: json.loads((clone / "zoo/metrics/evaluations" / f).read_text())["checkpoints"]
              for f in (f"{other}.json", f"{model}.json")}
    r = repro(clone, check=False)  # the validate stage sees the damage first: nothing is evaluated
    assert r.returncode != 0
    text = r.stdout + r.stderr
    assert ref in text and "sha256" in text and "Running stage 'evaluate'" not in text
    # the evaluate stage alone: the damaged one fails (its old result kept), the others are re-evaluated
    r = sh(sys.executable, "-m", "checkpoint_zoo.pipeline", "evaluate", cwd=clone, check=False)
    assert r.returncode == 1 and f"FAILED {ref}" in r.stdout and "sha256" in r.stdout
    recs = json.loads((clone / f"zoo/metrics/evaluations/{other}.json").read_text())["checkpoints"]
    assert all(rec["n_examples"] == 100 for rec in recs)  # re-evaluated under the new params and kept
    assert all(a["provenance"]["params_hash"] != b["provenance"]["params_hash"]
               for a, b in zip(before[f"{other}.json"], recs))
    mine = {rec["step"]: rec for rec in json.loads((clone / f"zoo/metrics/evaluations/{model}.json").read_text())["checkpoints"]}
    assert mine[step] == next(rec for rec in before[f"{model}.json"] if rec["step"] == step)
    assert mine[last]["n_examples"] == 100


def test_metrics_and_plots_commands(clone):
    shown = sh(sys.executable, "-m", "dvc", "metrics", "show", "--json", cwd=clone).stdout
    assert "tabular-classification" in shown
    diff = sh(sys.executable, "-m", "dvc", "metrics", "diff", "HEAD", cwd=clone)
    assert diff.returncode == 0
    sh(sys.executable, str(PROJECT / "scripts/build_plots_template.py"), "--repo", str(clone), cwd=clone)
    sh(sys.executable, "-m", "dvc", "plots", "show", "-o", "plots_out", cwd=clone)
    html = (clone / "plots_out/index.html").read_text()
    assert all(model in html for model in {r["model"] for r in reference_rows()}) and "accuracy" in html
    assert "cdn.jsdelivr" not in html and "<script src=" not in html  # offline: Vega is inlined
    assert "/* vega-lite@5" in html
