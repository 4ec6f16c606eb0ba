"""Zoo versions (git branches and tags) and the semantic diff between two of them, read from git alone."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import layout
from ..catalog import contract, rules, table
from ..catalog.records import parse_results
from ..catalog.releases import tag_kind
from ..errors import ZooError
from ..utils.gitcmd import run as git
from ..workspace.revision import RevisionSource
from ..workspace.source import WorkTree

# Columns compared as metadata; the computed ones change only with the bytes (reported as "replaced").
_META = tuple(c for c in rules.COLUMNS if c not in rules.COMPUTED_COLUMNS)


def _side(root: Path | str, rev: str | None):
    return WorkTree(Path(root)) if rev is None else RevisionSource(str(root), rev)


def _load(side) -> tuple[dict[str, dict[str, str]], dict[str, dict]]:
    data = side.read_bytes(layout.TABLE_PATH)
    if data is None:
        raise ZooError(f"{side.rev}: no {layout.TABLE_PATH} there")
    rows = table.load(data, f"{layout.TABLE_PATH} at {side.rev}")  # an invalid table is refused, not diffed
    by_ref = {f"{r['model']}@{r['step']}": r for r in rows}
    names = side.list_dir(layout.EVALUATIONS_DIR)
    results = parse_results((f"{layout.EVALUATIONS_DIR}/{n} at {side.rev}",
                             side.read_bytes(f"{layout.EVALUATIONS_DIR}/{n}")) for n in names if n.endswith(".json"))
    return by_ref, results


@dataclass(frozen=True)
class ZooDiff:
    """What changed from ``a`` to ``b``; refs are ``MODEL@STEP``."""

    a: str
    b: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    replaced: tuple[str, ...]                       # same ref, other bytes
    changed: dict[str, dict[str, tuple[str, str]]]  # ref -> column -> (old, new)
    # ref -> metric -> a, b, delta and changed (beyond the metric's reproducibility tolerance)
    metrics: dict[str, dict[str, dict[str, float | bool]]] = field(default_factory=dict)
    # a replaced folder checkpoint: file name -> added, removed or changed
    files: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {"a": self.a, "b": self.b, "added": list(self.added), "removed": list(self.removed),
                "replaced": list(self.replaced),
                "changed": {r: {c: list(v) for c, v in cols.items()} for r, cols in self.changed.items()},
                "metrics": self.metrics, "files": self.files}


def file_changes(a: dict[str, str], b: dict[str, str]) -> dict[str, str]:
    """Per file of a folder checkpoint (name -> sha256 on each side): added, removed or changed."""
    out = {n: "added" for n in set(b) - set(a)} | {n: "removed" for n in set(a) - set(b)}
    out |= {n: "changed" for n in set(a) & set(b) if a[n] != b[n]}
    return dict(sorted(out.items()))


def diff(root: Path | str, a: str | None = "HEAD", b: str | None = None) -> ZooDiff:
    """Checkpoints added, removed, replaced, metadata changed and metric deltas from ``a`` to ``b``
    (revisions; None is the working tree). No checkpoint bytes are read."""
    side_a, side_b = _side(root, a), _side(root, b)
    rows_a, res_a = _load(side_a)
    rows_b, res_b = _load(side_b)
    common = sorted(set(rows_a) & set(rows_b), key=lambda r: table.sort_key(rows_a[r]))
    changed, metrics = {}, {}
    for ref in common:
        ra, rb = rows_a[ref], rows_b[ref]
        cols = {c: (ra[c], rb[c]) for c in _META if ra.get(c, "") != rb.get(c, "")}
        if cols:
            changed[ref] = cols
        ma, mb = res_a.get(ref, {}), res_b.get(ref, {})
        if ma.get("sha256") == ra["sha256"] and mb.get("sha256") == rb["sha256"]:
            m = {}
            for k in sorted(set(ma.get("metrics", {})) & set(mb.get("metrics", {}))):
                va, vb = ma["metrics"][k], mb["metrics"][k]
                # each side's record states its tolerance; the looser of the two decides
                tol_a, tol_b = contract.record_tolerance(ma, k), contract.record_tolerance(mb, k)
                m[k] = {"a": va, "b": vb, "delta": float(f"{vb - va:.8g}"),
                        "changed": not (tol_a.agrees(va, vb) or tol_b.agrees(va, vb))}
            if m:
                metrics[ref] = m

    def order(refs, rows):
        return tuple(sorted(refs, key=lambda r: table.sort_key(rows[r])))

    replaced = tuple(r for r in common if rows_a[r]["sha256"] != rows_b[r]["sha256"])
    files = {r: file_changes(rules.parse_files(rows_a[r].get("files")), rules.parse_files(rows_b[r].get("files")))
             for r in replaced if rows_a[r].get("files") or rows_b[r].get("files")}
    return ZooDiff(
        a=side_a.rev if a is not None else "working tree", b=side_b.rev if b is not None else "working tree",
        added=order(set(rows_b) - set(rows_a), rows_b), removed=order(set(rows_a) - set(rows_b), rows_a),
        replaced=replaced, changed=changed, metrics=metrics, files=files,
    )


@dataclass(frozen=True)
class ZooVersion:
    """A branch or tag holding a zoo."""

    name: str
    kind: str          # branch, tag, or release (a GTO tag MODEL@vX.Y.Z: one model's release, `zoo release`)
    commit: str
    date: str          # committer date, ISO-8601
    models: int
    checkpoints: int
    # task/dataset/split -> {"ref", "task", "dataset", "split", metric: value}: one best per leaderboard (a summary
    # written before leaderboards were per dataset gives task -> {"ref", "task", metric: value})
    best: dict[str, dict[str, object]]

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {"name": self.name, "kind": self.kind, "commit": self.commit, "date": self.date,
                "models": self.models, "checkpoints": self.checkpoints, "best": self.best}


def versions(root: Path) -> list[ZooVersion]:
    """Every local branch and tag whose commit holds a zoo, newest first. GTO's stage tags (``MODEL#prod#3``)
    are not versions of the zoo (``zoo history MODEL`` lists them); its release tags are, of kind ``release``."""
    fmt = "%(refname)%00%(objectname)%00%(*objectname)%00%(committerdate:iso-strict)%00%(*committerdate:iso-strict)"
    out = git(root, "for-each-ref", f"--format={fmt}", operands=("refs/heads", "refs/tags")).stdout.decode()
    found = []
    for line in out.splitlines():
        ref, obj, peeled, date, peeled_date = line.split("\0")
        commit, date = (peeled, peeled_date) if peeled else (obj, date)
        kind = "tag" if ref.startswith("refs/tags/") else "branch"
        name = ref.split("/", 2)[2]
        gto = tag_kind(name) if kind == "tag" else None
        if gto is not None and gto != "release":
            continue
        kind = "release" if gto is not None else kind
        data = git(root, "cat-file", "blob", operands=(f"{commit}:{layout.TABLE_PATH}",), end="--end-of-options",
                   check=False)
        if data.returncode != 0:
            continue
        try:
            rows = table.parse_csv(data.stdout, f"{layout.TABLE_PATH}@{name}")
        except ZooError:
            rows = []
        summary = git(root, "cat-file", "blob", operands=(f"{commit}:{layout.METRICS_DIR}/summary.json",),
                      end="--end-of-options", check=False)
        best = _best_per_board(summary.stdout) if summary.returncode == 0 else {}
        found.append(ZooVersion(name, kind, commit, date, len({r["model"] for r in rows}), len(rows), best))
    return sorted(found, key=lambda v: (v.date, v.name), reverse=True)


def _best_per_board(summary: bytes) -> dict[str, dict[str, object]]:
    """The best checkpoint of each leaderboard a ``summary.json`` names: ``leaderboards`` (task, dataset and split),
    or in an older summary its ``tasks`` (then one best per task, its dataset unknown); {} if it is not JSON."""
    best: dict[str, dict[str, object]] = {}
    try:
        data = json.loads(summary)
        boards = data.get("leaderboards")
        if isinstance(boards, dict):
            for name, rec in boards.items():
                metric = str(rec.get("metric") or "accuracy")
                best[name] = {"ref": rec.get("best"), "task": rec.get("task"), "dataset": rec.get("dataset"),
                              "split": rec.get("split"), metric: rec.get(metric)}
            return best
        for task, rec in data.get("tasks", {}).items():
            metric = str(rec.get("metric") or "accuracy")  # older summaries ranked by accuracy
            best[task] = {"ref": rec.get("best"), "task": task, metric: rec.get(metric)}
    except (ValueError, AttributeError):
        return {}
    return best
