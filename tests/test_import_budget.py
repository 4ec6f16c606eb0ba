"""Each verb imports only what it uses: a budget of heavy packages per command, checked with ``-X importtime``.

A command that starts importing torch, dask or pandera where it does not need them pays for it on every
call (dask.dataframe alone cost 0.4-0.6 s of every first table read, through pandera's DataFrameModel).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import run_zoo, write_safetensors

HEAVY = frozenset({
    "torch", "torchvision", "torchmetrics", "timm", "transformers", "dask", "distributed", "hydra", "omegaconf",
    "pandas", "pandera", "numpy", "safetensors", "dvc", "starlette", "uvicorn", "boto3", "s3fs", "jinja2",
})
# What each command may import of HEAVY; anything else of HEAVY fails the test.
TABLE = frozenset({"pandas", "pandera", "numpy"})
BUDGETS: dict[tuple[str, ...], frozenset[str]] = {
    ("--help",): frozenset(),
    ("ls",): frozenset(),
    ("ls", "alpha"): frozenset(),
    ("show", "alpha@10"): frozenset({"numpy"}),
    ("verify",): frozenset(),
    ("pull", "alpha@10"): frozenset(),
    ("validate",): TABLE | {"safetensors"},
}


def imported(*args: str, cwd) -> tuple[int, set[str]]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "checkpoint_zoo.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    names = {line.rsplit("|", 1)[1].strip().split(".")[0]
             for line in proc.stderr.splitlines() if line.startswith("import time:") and "|" in line}
    return proc.returncode, names


@pytest.mark.parametrize("args", list(BUDGETS), ids=lambda a: " ".join(a))
def test_read_commands_stay_within_their_import_budget(small_zoo, args):
    """Measured on the second run: the first may fill the user cache (an architecture's shapes need torch once)."""
    imported(*args, cwd=small_zoo)
    code, names = imported(*args, cwd=small_zoo)
    assert code == 0
    over = (names & HEAVY) - BUDGETS[args]
    assert not over, f"`zoo {' '.join(args)}` imports {sorted(over)} beyond its budget"


def test_add_imports_neither_torch_nor_dask_once_the_architecture_is_known(small_zoo, tmp_path):
    """The first add fills the user cache with the architecture's shapes; the second is measured."""
    def add(step: int) -> tuple[int, set[str]]:
        f = write_safetensors(tmp_path / f"g{step}.safetensors", seed=step)
        return imported("add", str(f), "--model=gamma", f"--step={step}", "--arch=linear",
                        "--task=tabular-classification", "--dataset=wine", "--license=MIT", cwd=small_zoo)

    assert add(1)[0] == 0
    code, names = add(2)
    assert code == 0
    over = (names & HEAVY) - (TABLE | {"safetensors", "dvc"})
    assert not over, f"`zoo add` imports {sorted(over)}"
    assert run_zoo("ls", "gamma", cwd=small_zoo).code == 0
