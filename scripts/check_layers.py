"""Print where today's package breaks the layers contract of pyproject.toml ([tool.importlinter]).

The contract names the layers as the package is being reshaped to (docs/architecture.md, "Layers"); several
of today's modules still live elsewhere under other names. This script prints two things:

1. ``lint-imports`` on the contract as written (what ``scripts/test.sh`` runs): the modules that already have
   their layer's name;
2. every import (lazy and type-only ones included) that points up or sideways once each of today's modules is
   placed in the layer it is moving to (``TODAY`` below), one line per import with its file and line, so the
   moves can be checked before they are made.

Exit status: 0 when both are clean, 1 otherwise. Run from the repository root:
``.venv/bin/python scripts/check_layers.py [--no-lint-imports]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "checkpoint_zoo"
CONTRACT_ID = "layers"

# Today's module (or package) -> the layer it moves to; the longest matching prefix wins. Modules neither here
# nor under a layer's own name (the package's __init__, the public `_target_` roots nets and datasets) are
# not placed.
TODAY = {
    "publish.server": "server",
    "constants": "layout",
    "model": "entities",
    "gitcmd": "utils",
    "stamps": "utils",
    "progress": "utils",
    "safety": "utils",
    "text": "inference",
    "versions": "workspace",
    "revision": "workspace",
    "merge": "catalog",
    "evaluation.results": "catalog",       # catalog/records: the stored evaluation records
    "evaluation.contract": "registry",     # registry/contract: a task's reproducibility contract
    "_convert": "formats",
}


def contract_layers(pyproject: Path = ROOT / "pyproject.toml") -> list[tuple[list[str], bool]]:
    """The contract's layers, top first: (names without the optional-layer parentheses, independent)."""
    config = tomllib.loads(pyproject.read_text())["tool"]["importlinter"]
    contract = next(c for c in config["contracts"] if c.get("id") == CONTRACT_ID)
    layers = []
    for line in contract["layers"]:
        independent = ":" not in line
        names = [n.strip().strip("()") for n in line.replace(":", "|").split("|")]
        layers.append((names, independent))
    return layers


def layer_of(module: str, known: dict[str, tuple[int, bool]]) -> str | None:
    """The layer name of a module of today's tree, or None when it is not placed."""
    tail = module[len(PACKAGE) + 1:] if module.startswith(PACKAGE + ".") else ""
    if not tail:
        return None
    parts = tail.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in TODAY:
            return TODAY[prefix]
    return parts[0] if parts[0] in known else None


def upward_imports() -> list[str]:
    """One line per import of today's tree that breaks the layering once modules are placed by ``TODAY``."""
    import grimp

    known = {name: (level, independent)
             for level, (names, independent) in enumerate(contract_layers()) for name in names}
    graph = grimp.build_graph(PACKAGE, exclude_type_checking_imports=False, cache_dir=None)
    found = []
    for importer in sorted(graph.modules):
        mine = layer_of(importer, known)
        if mine is None:
            continue
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            theirs = layer_of(imported, known)
            if theirs is None or theirs == mine:
                continue
            (my_level, independent), their_level = known[mine], known[theirs][0]
            if their_level > my_level or (their_level == my_level and not independent):
                continue
            why = "a layer above" if their_level < my_level else "an independent sibling"
            for detail in graph.get_import_details(importer=importer, imported=imported):
                lazy = " (lazy)" if detail.get("is_lazy") else ""
                found.append(f"{_file_of(importer, graph)}:{detail['line_number']}: {mine} -> {theirs} ({why}){lazy}: "
                             f"{detail['line_contents']}")
    return found


def _file_of(module: str, graph) -> str:
    path = "src/" + module.replace(".", "/")
    is_package = any(m.startswith(module + ".") for m in graph.modules)
    return path + ("/__init__.py" if is_package else ".py")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-lint-imports", action="store_true", help="print only the imports of part 2")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    status = 0
    if not args.no_lint_imports:
        lint = Path(sys.executable).with_name("lint-imports")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
        proc = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True)
        print("== lint-imports (the contract as written) ==")
        print(proc.stdout.split("Contracts\n---------", 1)[-1].strip() or proc.stderr.strip())
        status |= proc.returncode != 0
    found = upward_imports()
    print(f"\n== imports that break the layers once today's modules sit where they move to: {len(found)} ==")
    for line in found:
        print(line)
    return int(status or bool(found))


if __name__ == "__main__":
    sys.exit(main())
