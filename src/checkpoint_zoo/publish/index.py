"""The index stage: from the table and the evaluations, every browsable output.

``zoo/index.json`` (machine-readable), ``zoo/INDEX.md`` (a leaderboard per task and dataset), ``zoo/cards/<model>.md``
(Hugging Face model cards), ``zoo/metrics/summary.json`` (``dvc metrics``), ``zoo/metrics/curves/<model>.csv``
(``dvc plots``) and ``site/`` (the browse page of ``publish.page`` with its ``data.js``). Nothing is written
unless every table row has an up-to-date evaluation, so a partial clone can never publish a partial index. All outputs are
deterministic (no timestamps), and every text field is escaped for the format it lands in.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..catalog import contract, rules
from ..catalog.table import atomic_write
from ..errors import ZooError
from . import page
from . import registry as registry_out

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_MD_LINE_START = re.compile(r"^(\s*)(?:([#>+-])|(\d+)\.)")
# Hugging Face model cards use lower-case SPDX-like ids; a LicenseRef- (terms of its own) is their "other".
_HF_LICENSE = {lic: lic.lower() for lic in rules.LICENSES if not lic.startswith("LicenseRef-")}


def md_escape(text: object) -> str:
    """Text safe inside Markdown (and the HTML it renders to): entities first, then Markdown syntax."""
    s = html.escape("" if text is None else str(text), quote=True)
    s = s.replace("\r", " ").replace("\n", " ")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return _MD_LINE_START.sub(
        lambda m: m.group(1) + ("\\" + m.group(2) if m.group(2) else m.group(3) + "\\."), s)


def dump_index_json(index: dict) -> bytes:
    """``zoo/index.json``: sorted keys, indented (one field per line, so git diffs read well), written
    by orjson: 0.2 s at 100,000 checkpoints where ``json.dumps(indent=...)`` takes 3 s."""
    import orjson

    return orjson.dumps(index, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def _fmt(v: object) -> str:
    return "" if v is None else f"{v + 0.0:.4f}".replace("-0.0000", "0.0000") if isinstance(v, float) else str(v)


def build_entries(rows: list[dict[str, str]], results: Mapping[str, dict]) -> list[dict]:
    """One entry per table row with its metrics and ``status`` (``evaluated``, or ``failed`` with the
    ``error`` its evaluation raised); raise if any row lacks an up-to-date record."""
    from ..catalog.records import is_failed
    from ..entities import Checkpoint

    missing, stale = [], []
    entries = []
    for row in rows:
        ref = f"{row['model']}@{row['step']}"
        rec = results.get(ref)
        if rec is None:
            missing.append(ref)
            continue
        if rec.get("sha256") != row["sha256"]:
            stale.append(ref)
            continue
        d = Checkpoint.dict_from_row(row)
        if is_failed(rec):
            entries.append(failed_entry(d, rec))
            continue
        d["status"] = "evaluated"
        d["metrics"] = dict(rec["metrics"])
        d["selection"] = dict(rec.get("selection") or {})
        d["evaluation"] = dict(rec["provenance"], n_examples=rec.get("n_examples"), split=rec.get("split"))
        if d["reported_metric"] and d["reported_metric"] in d["metrics"]:
            d["reproduced_value"] = d["metrics"][d["reported_metric"]]
            d["delta"] = float(f"{d['reproduced_value'] - d['reported_value']:.8g}")
            # a claim counts as reproduced only within the metric's cross-machine tolerance
            d["reproduced_agrees"] = contract.record_tolerance(rec, d["reported_metric"]).agrees(
                d["reproduced_value"], d["reported_value"])
        else:
            d["reproduced_value"] = d["delta"] = d["reproduced_agrees"] = None
        entries.append(d)
    extra = sorted(set(results) - {f"{r['model']}@{r['step']}" for r in rows})
    if missing or stale or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} row(s) never evaluated (e.g. {missing[0]})")
        if stale:
            parts.append(f"{len(stale)} row(s) evaluated for other bytes (e.g. {stale[0]})")
        if extra:
            parts.append(f"{len(extra)} evaluation(s) of checkpoints not in the table (e.g. {extra[0]})")
        raise ZooError("index: the evaluations do not match the table one to one: " + "; ".join(parts)
                       + "; run the evaluate stage (`dvc repro`) first; nothing was written")
    return entries


def failed_entry(d: dict, rec: Mapping[str, Any]) -> dict:
    """The entry of a checkpoint whose evaluation failed: no metrics, the reason in ``error``."""
    d.update(status="failed", error=rec["error"], metrics={}, selection={},
             evaluation=dict(rec.get("provenance") or {}, n_examples=None, split=None),
             reproduced_value=None, delta=None, reproduced_agrees=None)
    return d


def evaluated(entries: Sequence[dict]) -> list[dict]:
    """The entries with metrics (what rankings, task summaries and curves are made of)."""
    return [e for e in entries if e.get("status", "evaluated") == "evaluated"]


def mark_best(entries: list[dict]) -> dict[str, dict]:
    """Flag each model's best (``selection.best``) and latest; return model summaries. A summary's ``split``
    (the split its best value is on) and ``dataset`` are what its leaderboard is grouped by (``board_key``);
    ``licenses`` counts its checkpoints per license, since a model may carry several (``--relicense``)."""
    from ..catalog.selection import best as best_of

    models: dict[str, list[dict]] = {}
    for e in entries:
        models.setdefault(e["model"], []).append(e)
    summary = {}
    for model, es in models.items():
        best = best_of(es) or max(es, key=lambda e: e["step"])
        latest = max(es, key=lambda e: e["step"])
        for e in es:
            e["is_best"] = e is best
            e["is_latest"] = e is latest
        sel = best.get("selection") or {}
        metric = str(sel.get("metric") or next(iter(best["metrics"]), ""))
        summary[model] = {
            "task": best["task"], "arch": best["arch"], "dataset": best["dataset"], "license": best["license"],
            "licenses": license_counts(es), "split": (best.get("evaluation") or {}).get("split"),
            "checkpoints": len(es), "best": best["ref"], "latest": latest["ref"],
            "primary_metric": metric, "higher_is_better": bool(sel.get("higher_is_better", True)),
            "best_value": best["metrics"].get(metric), "selection_split": sel.get("split"),
            "selection_value": sel.get("value"),
        }
    return summary


def license_counts(entries: Sequence[dict]) -> dict[str, int]:
    """License -> how many of these checkpoints carry it, most first (then by name): a model's every license."""
    counts: dict[str, int] = {}
    for e in entries:
        counts[e["license"]] = counts.get(e["license"], 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def describe_licenses(counts: Mapping[str, int]) -> str:
    """``MIT`` for one license; ``MIT (50 checkpoints), CC0-1.0 (5 checkpoints)`` for a mixed model."""
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{lic} ({n} checkpoint{'s' if n != 1 else ''})" for lic, n in counts.items())


def board_key(summary: Mapping[str, Any]) -> tuple[str, str, str]:
    """What a model's leaderboard is: its task, its dataset and the split its best value is on. Values on
    different datasets (2 classes or 10) or splits are not comparable, so no board ranks them together."""
    return str(summary["task"]), str(summary["dataset"]), str(summary.get("split") or "")


def leaderboards(models: Mapping[str, dict]) -> dict[tuple[str, str, str], list[dict]]:
    """Model summaries grouped by ``board_key``, sorted by key; each board best first (its own direction),
    models without a value last, ties by checkpoint ref."""
    boards: dict[tuple[str, str, str], list[dict]] = {}
    for m in models.values():
        boards.setdefault(board_key(m), []).append(m)
    for ms in boards.values():
        ms.sort(key=lambda m: (m["best_value"] is None,
                               -(m["best_value"] or 0) if m["higher_is_better"] else (m["best_value"] or 0), m["best"]))
    return dict(sorted(boards.items()))


def board_name(key: tuple[str, str, str]) -> str:
    """``task/dataset/split``: a board's key in ``summary.json`` and ``zoo versions`` (slugs hold no ``/``)."""
    return "/".join(key)


def task_summaries(entries: list[dict], results: Mapping[str, dict]) -> dict[str, dict]:
    """What the evaluation records say about each task: its metrics, ranking rule, splits, contract and the
    datasets its checkpoints are on (one leaderboard each)."""
    return finish_tasks(fold_tasks({}, entries, results))


def _new_task() -> dict:
    return {"metrics": [], "reproducibility": {}, "higher_is_better_by_metric": {}, "datasets": []}


def fold_tasks(tasks: dict[str, dict], entries: Sequence[dict], results: Mapping[str, dict]) -> dict[str, dict]:
    """``task_summaries`` before ``finish_tasks``: these entries folded into ``tasks`` in order (a first entry
    sets a task's rule), so that one model's fold can be computed alone and merged (``merge_tasks``) later."""
    for e in entries:
        rec = results[e["ref"]]
        t = tasks.setdefault(e["task"], _new_task())
        if e["dataset"] not in t["datasets"]:
            t["datasets"].append(e["dataset"])
        t["higher_is_better_by_metric"].update(rec.get("higher_is_better") or {})
        sel = e.get("selection") or {}
        t.setdefault("primary_metric", sel.get("metric"))
        t.setdefault("higher_is_better", sel.get("higher_is_better", True))
        t.setdefault("select_split", sel.get("split"))
        t.setdefault("report_split", e["evaluation"].get("split"))
        for name in e["metrics"]:
            if name not in t["metrics"]:
                t["metrics"].append(name)
        t["reproducibility"].update(rec.get("reproducibility") or {})
    return tasks


def merge_tasks(tasks: dict[str, dict], later: Mapping[str, dict]) -> dict[str, dict]:
    """``tasks`` folded on with a fold of the entries that come after them: the same as one fold of both."""
    for name, p in later.items():
        t = tasks.setdefault(name, _new_task())
        t["datasets"] += [d for d in p["datasets"] if d not in t["datasets"]]
        t["higher_is_better_by_metric"].update(p["higher_is_better_by_metric"])
        for key in ("primary_metric", "higher_is_better", "select_split", "report_split"):
            t.setdefault(key, p[key])
        t["metrics"] += [m for m in p["metrics"] if m not in t["metrics"]]
        t["reproducibility"].update(p["reproducibility"])
    return tasks


def finish_tasks(tasks: dict[str, dict]) -> dict[str, dict]:
    """A fold's tasks as published: datasets sorted, the primary metric first and the others by name."""
    for t in tasks.values():
        t["datasets"].sort()
        primary = t.get("primary_metric")
        t["metrics"] = ([primary] if primary in t["metrics"] else []) + sorted(m for m in t["metrics"] if m != primary)
    return tasks


def render_index_md(entries: list[dict], models: dict[str, dict], tasks: dict[str, dict]) -> str:
    """Leaderboards: per task, one per dataset (and split), each model's best checkpoint, reported vs reproduced."""
    lines = ["# Checkpoint Zoo leaderboard", "",
             f"{len(models)} models, {len(entries)} checkpoints. Generated by `dvc repro` from "
             "`zoo/checkpoints.csv` and `zoo/metrics/evaluations/`; do not edit.", "",
             "Reproducibility: on one machine every metric is bitwise identical; across machines each agrees "
             "within the tolerance its task states (below). Models are ranked only against models of the same "
             "task, dataset and split: one leaderboard each.", ""]
    by_ref = {e["ref"]: e for e in entries}
    boards = leaderboards(models)
    for task in sorted(tasks):
        info = tasks[task]
        metric, higher = info["primary_metric"], info["higher_is_better"]
        names = info["metrics"]
        contract_text = ", ".join(
            f"{md_escape(k)} {contract.Tolerance.from_dict(info['reproducibility'].get(k)).describe()}" for k in names)
        lines += [f"## {md_escape(task)}", "",
                  f"Each model's best checkpoint ({md_escape(metric)} on the {md_escape(info['select_split'])} split, "
                  f"{'higher' if higher else 'lower'} is better), ranked by its {md_escape(metric)} on the "
                  f"{md_escape(info['report_split'])} split, which is what the table shows. "
                  f"Across machines: {contract_text}.", ""]
        for (_, dataset, split), ranked in ((k, v) for k, v in boards.items() if k[0] == task):
            lines += [f"### {md_escape(task)} on {md_escape(dataset)} ({md_escape(split or '?')} split)", "",
                      "| # | checkpoint | arch | dataset | " + " | ".join(md_escape(n) for n in names)
                      + " | reported | reproduced | delta | pull |",
                      "|---|---|---|---|" + "---|" * len(names) + "---|---|---|---|"]
            for i, m in enumerate(ranked, 1):
                e = by_ref[m["best"]]
                reported = f"{md_escape(e['reported_metric'])} {_fmt(e['reported_value'])}" if e["reported_metric"] else ""
                lines.append("| " + " | ".join([
                    str(i), md_escape(e["ref"]), md_escape(e["arch"]), md_escape(e["dataset"]),
                    *[_fmt(e["metrics"].get(n)) for n in names],
                    reported, _fmt(e["reproduced_value"]), _fmt(e["delta"]), f"`zoo pull {e['ref']}`",
                ]) + " |")
            lines.append("")
    return "\n".join(lines + registry_out.index_md_lines(models, md_escape))


def render_summary(entries: list[dict], models: dict[str, dict], tasks: dict[str, dict]) -> dict[str, Any]:
    """``summary.json`` (what ``dvc metrics`` shows): ``leaderboards``, keyed ``task/dataset/split``, each with its
    best checkpoint and that checkpoint's metrics. ``tasks`` keeps its older shape (one best per task) only for
    tasks whose models are all on one dataset and split: elsewhere one best per task would rank across datasets."""
    by_ref = {e["ref"]: e for e in entries}
    out: dict[str, Any] = {"checkpoints": len(entries), "models": len(models), "tasks": {}, "leaderboards": {}}
    boards = leaderboards(models)
    for key, ranked in boards.items():
        task, dataset, split = key
        best = by_ref[ranked[0]["best"]]
        out["leaderboards"][board_name(key)] = {"task": task, "dataset": dataset, "split": split, "best": best["ref"],
                                                "metric": tasks[task]["primary_metric"], **best["metrics"]}
    for task in tasks:
        keys = [k for k in boards if k[0] == task]
        if len(keys) == 1:
            board = out["leaderboards"][board_name(keys[0])]
            out["tasks"][task] = {k: v for k, v in board.items() if k not in ("task", "split")}
    return out


def children_by_model(entries: Sequence[dict]) -> dict[str, list[str]]:
    """model -> refs of other models' checkpoints whose parent is one of its checkpoints (by step)."""
    out: dict[str, list[str]] = {}
    for e in sorted(entries, key=lambda e: (e["model"], e["step"])):
        parent = e.get("parent")
        if parent and parent.split("@", 1)[0] != e["model"]:
            out.setdefault(parent.split("@", 1)[0], []).append(e["ref"])
    return out


def library_of(arch_config: Mapping[str, Any]) -> str:
    """``transformers``, ``timm`` or ``pytorch``: what the Hub's ``library_name`` says loads the architecture."""
    target = str(arch_config.get("_target_", ""))
    if target.startswith("transformers."):
        return "transformers"
    if target.startswith("timm."):
        return "timm"
    return "pytorch"


def render_card(model: str, entries: list[dict], summary: dict, children: Sequence[str] = (),
                library: str = "pytorch") -> str:
    """A Hugging Face-style model card: YAML front matter with model-index results (and ``base_model``, the
    checkpoint of another model it was fine-tuned from, ``pipeline_tag`` its task, ``library_name`` what loads
    its architecture), then lineage and usage; ``children``: the other models' checkpoints fine-tuned from
    this one's."""
    import yaml

    best = next(e for e in entries if e["is_best"])
    split = (best.get("evaluation") or {}).get("split")  # None: no checkpoint of the model evaluated yet
    # the nearest checkpoint of another model in this model's history: what it was fine-tuned from
    base = next((e["parent"] for e in sorted(entries, key=lambda e: e["step"])
                 if e.get("parent") and e["parent"].split("@", 1)[0] != model), None)
    names = sorted({k for e in entries for k in e["metrics"]})
    front = {
        **card_license(license_counts(entries)),
        "library_name": library,
        "pipeline_tag": best["task"],
        "tags": sorted({t for e in entries for t in e["tags"]} | {best["arch"], "checkpoint-zoo"}),
        "datasets": [best["dataset"]],
        **({"base_model": base} if base else {}),
        **_model_index(model, best),
    }
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: the same text, 4× faster
    lines = ["---", yaml.dump(front, Dumper=dumper, sort_keys=False, allow_unicode=False).rstrip(), "---", "",
             f"# {md_escape(model)}", "", md_escape(best["description"]) or "(no description)", "",
             f"- task: {md_escape(best['task'])}; architecture: {md_escape(best['arch'])}; "
             f"dataset: {md_escape(best['dataset'])}; license: {md_escape(describe_licenses(license_counts(entries)))}",
             f"- best: {md_escape(summary['best'])} by {md_escape(summary['primary_metric'])} on the "
             f"{md_escape(summary['selection_split'])} split; latest: {md_escape(summary['latest'])}; the other "
             f"metrics below are on the {md_escape(split)} split" if split else
             f"- best: none yet (no checkpoint of this model is evaluated); latest: {md_escape(summary['latest'])}",
             f"- how it was made: {md_escape(best['source'])}",
             *([f"- fine-tuned from: [{md_escape(base)}]({quote(base.split('@', 1)[0])}.md)"] if base else []),
             *(["- fine-tuned into: " + ", ".join(f"[{md_escape(c)}]({quote(c.split('@', 1)[0])}.md)"
                                                  for c in children)] if children else []),
             "",
             "## Checkpoints", "",
             # the value @best is chosen by comes first, so the choice can be read off the table
             f"| step | epoch | {md_escape(summary['primary_metric'])} ({md_escape(summary['selection_split'])}) | "
             + " | ".join(md_escape(n) for n in names) + " | reported | size | sha256 |",
             "|---|---|---|" + "---|" * len(names) + "---|---|---|"]
    for e in sorted(entries, key=lambda e: e["step"]):
        flag = " (best)" if e["is_best"] else ""
        reported = f"{md_escape(e['reported_metric'])} {_fmt(e['reported_value'])}" if e["reported_metric"] else ""
        lines.append(f"| {e['step']}{flag} | {_fmt(e['epoch'])} | {_fmt((e.get('selection') or {}).get('value'))} | "
                     + "".join(f"{_fmt(e['metrics'].get(n))} | " for n in names)
                     + f"{reported} | {e['size_bytes']} | `{e['sha256'][:16]}` |")
    lines += _state_lines(entries) + _claim_lines(entries) + registry_out.card_lines(model, summary, md_escape)
    ref = summary["best"]
    lines += ["", "## Usage", "", "Pull just this checkpoint into a clone of the zoo (sha256-checked):", "",
              "```sh", f"zoo pull {ref}", "```", "", "Use it on raw inputs, or load it:", "", "```python",
              "from checkpoint_zoo import Zoo", "", "zoo = Zoo()",
              f'pipe = zoo.pipeline("{ref}")          # checks inputs against the dataset\'s contract',
              f"print(pipe(x))                        # x: one {best['dataset']} example or a batch "
              "(`zoo datasets` shows the input) -> label(s) with scores",
              f'model = zoo.load_model("{ref}")        # torch.nn.Module, eval mode',
              f'state = zoo.load_state_dict("{ref}")   # or the raw tensors', "```", "",
              "Or export it to a folder that loads without the zoo (transformers models: `from_pretrained(DIR)`; "
              "the others: safetensors weights with a `config.json` naming the architecture):", "", "```sh",
              f"zoo export {ref} DIR", "```", "",
              *_folder_lines(next((e for e in entries if e["ref"] == ref), {})),
              "Fine-tune it on another dataset or task, each stage registered with its lineage (`--parent`):",
              "", "```sh",
              f"python scripts/finetune_reference.py --from {ref} --model {model}-ft --arch ARCH --dataset DATASET "
              "--steps 100 200 400 800", "```", ""]
    return "\n".join(lines)


def card_license(counts: Mapping[str, int]) -> dict[str, Any]:
    """A card's license metadata, the Hub's way: ``license: <id>``, or ``other`` with a ``license_name`` for
    terms the Hub has no id for. A model whose checkpoints carry several licenses is ``other`` named ``mixed``,
    with ``licenses``: each license and how many checkpoints carry it, so no reader takes one for all."""
    if len(counts) == 1:
        lic = next(iter(counts))
        return {"license": _HF_LICENSE.get(lic, "other"),
                **({"license_name": lic.lower()} if lic not in _HF_LICENSE else {})}
    return {"license": "other", "license_name": "mixed",
            "licenses": [{"license": _HF_LICENSE.get(lic, lic.lower()), "checkpoints": n} for lic, n in counts.items()]}


def _model_index(model: str, best: dict) -> dict:
    """The card's ``model-index`` (the Hub's results block): only when the best checkpoint has results."""
    if not best["metrics"]:
        return {}
    return {"model-index": [{
        "name": model,
        "results": [{
            "task": {"type": best["task"]},
            "dataset": {"name": best["dataset"], "type": best["dataset"],
                        "split": best["evaluation"].get("split") or "test"},
            "metrics": [{"type": k, "value": v, "name": f"{k} ({best['ref']})"}
                        for k, v in sorted(best["metrics"].items())],
        }],
    }]}


# what a card says of a checkpoint without results, by its ``status`` (``zoo serve`` shows all of them)
_STATE_TEXT = {
    "failed": "evaluation failed: {error}; fix it (`zoo add --replace`, or its conf/) and run `dvc repro`, "
              "or remove it with `zoo rm {ref}`",
    "unevaluated": "not evaluated yet; run `dvc repro`",
    "replaced": "its evaluation is of other bytes (replaced since); run `dvc repro`",
    "stale": "evaluated under an older key ({stale}); run `dvc repro`",
}


def _state_lines(entries: Sequence[dict]) -> list[str]:
    """One line per checkpoint that has no results, saying why (nothing when every one is evaluated)."""
    pending = [e for e in sorted(entries, key=lambda e: e["step"]) if e.get("status", "evaluated") != "evaluated"]
    if not pending:
        return []
    return ["", "## Evaluation state", "",
            *(f"- {md_escape(e['ref'])}: " + _STATE_TEXT.get(e["status"], md_escape(e["status"])).format(
                error=md_escape(e.get("error") or ""), stale=md_escape(e.get("stale") or ""), ref=e["ref"])
              for e in pending)]


def _claim_lines(entries: Sequence[dict]) -> list[str]:
    """One sentence per checkpoint whose reported value is not what the zoo reproduces on its report split,
    naming both splits (nothing when every claim agrees)."""
    notes = [note for e in sorted(entries, key=lambda e: e["step"]) if (note := _claim_note(e))]
    return ["", "## Reported and reproduced", "", *(f"- {n}" for n in notes)] if notes else []


def _claim_note(e: dict) -> str | None:
    """Where a reported value that differs from the report split's comes from: the selection split, or the
    selection and report splits together (a per-example mean such as accuracy, weighted by their sizes), when
    it matches one to the decimals it was reported with; else that the table does not say."""
    metric, claimed = e.get("reported_metric"), e.get("reported_value")
    reproduced = e["metrics"].get(metric) if metric else None
    if claimed is None or reproduced is None:
        return None
    decimals = len(repr(float(claimed)).partition(".")[2].rstrip("0")) if "e" not in repr(float(claimed)) else 8
    tolerance = 0.5 * 10 ** -decimals + 1e-9
    if abs(reproduced - claimed) <= tolerance:
        return None
    ev, sel = e.get("evaluation") or {}, e.get("selection") or {}
    split, n = ev.get("split"), ev.get("n_examples")
    other, m, value = sel.get("split"), sel.get("n_examples"), (sel.get("metrics") or {}).get(metric)
    candidates = []
    if value is not None:
        candidates.append((f"the {other} split ({m} examples)", value))
        if n and m:
            candidates.append((f"the {other} and {split} splits together ({m + n} examples)",
                               (value * m + reproduced * n) / (m + n)))
    where = next((w for w, v in candidates if abs(v - claimed) <= tolerance), None)
    said = f"{md_escape(e['ref'])} reports {md_escape(metric)} {claimed:g}"
    here = f"the zoo reproduces it on the {md_escape(split)} split ({n} examples): {_fmt(reproduced)}"
    if where:
        return f"{said}, which is its value on {md_escape(where)}; {here}."
    return f"{said}; {here}, and the table does not record the split the claim was measured on."


def _folder_lines(entry: dict) -> list[str]:
    """A folder checkpoint's files with their sha256, as ``sha256sum -c`` reads them (nothing for one file)."""
    files = entry.get("files") or {}
    if not files:
        return []
    return [f"{md_escape(entry['ref'])} is a folder of {len(files)} files (`{md_escape(entry['path'])}`), each "
            "checked by its sha256 (`sha256sum -c` reads these lines in that folder):", "", "```text",
            *(f"{files[name]}  {name}" for name in sorted(files)), "```", ""]


def render_curves(entries: list[dict], models: dict[str, dict]) -> dict[str, str]:
    """Per-model CSV of metrics by step: ``primary`` (the task's primary metric, what ``dvc plots`` draws)
    then every metric by name."""
    out: dict[str, list[dict]] = {}
    for e in entries:
        out.setdefault(e["model"], []).append(e)
    files = {}
    for model, es in out.items():
        names = sorted({k for e in es for k in e["metrics"]})
        primary = models[model]["primary_metric"]
        buf = io.StringIO(newline="")
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["step", "primary", *names])
        for e in sorted(es, key=lambda e: e["step"]):
            w.writerow([e["step"], e["metrics"].get(primary, ""), *[e["metrics"].get(n, "") for n in names]])
        files[model] = buf.getvalue()
    return files


def libraries(zoo, archs: set[str]) -> dict[str, str]:
    """arch -> ``library_of`` its registered config (an architecture the registry cannot give: ``pytorch``)."""
    from ..errors import ZooError

    out = {}
    for arch in archs:
        try:
            out[arch] = library_of(dict(zoo.registry().arch(arch).config))
        except ZooError:
            out[arch] = "pytorch"
    return out


def build(zoo, results: Mapping[str, dict], params: Mapping[str, object], site_dir: Path) -> dict:
    """Write every index output of ``zoo``; returns the index dict."""
    rows = zoo.rows()
    entries = build_entries(rows, results)
    models = mark_best(entries)
    registry_out.attach(models, registry_out.load(zoo.root))
    table_sha = hashlib.sha256(zoo.table_path.read_bytes()).hexdigest()
    tasks = task_summaries(evaluated(entries), results)
    boards = [{"task": t, "dataset": d, "split": sp, "models": [m["best"] for m in ranked]}
              for (t, d, sp), ranked in leaderboards(models).items()]
    index = {"format": 2, "table_sha256": table_sha, "tasks": tasks, "models": models, "leaderboards": boards,
             "checkpoints": entries}
    root = zoo.root
    atomic_write(root / "zoo/index.json", dump_index_json(index))
    atomic_write(root / "zoo/INDEX.md", render_index_md(entries, models, tasks).encode())
    cards, curves = root / "zoo/cards", root / "zoo/metrics/curves"
    by_model: dict[str, list[dict]] = {}
    for e in entries:
        by_model.setdefault(e["model"], []).append(e)
    kids = children_by_model(entries)
    libs = libraries(zoo, {summary["arch"] for summary in models.values()})
    cards_md = {m: render_card(m, by_model[m], summary, kids.get(m, ()), libs.get(summary["arch"], "pytorch"))
                for m, summary in models.items()}
    per_model = {cards / f"{m}.md": text.encode() for m, text in cards_md.items()}
    per_model |= {curves / f"{m}.csv": text.encode() for m, text in render_curves(evaluated(entries), models).items()}
    for folder in (cards, curves):
        folder.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=4) as pool:  # a file each, each fsynced: overlap the waits
        list(pool.map(lambda item: atomic_write(*item), per_model.items()))
    for f in [*cards.glob("*.md"), *curves.glob("*.csv")]:
        if f not in per_model:
            f.unlink()
    summary = render_summary(entries, models, tasks)
    atomic_write(root / "zoo/metrics/summary.json", (json.dumps(summary, indent=1, sort_keys=True) + "\n").encode())
    page.write_site(site_dir, page.site_data(index, cards_md, title=str(params.get("title", "Checkpoint Zoo")),
                                             downloads=False, registry=registry_out.page_shape(models)))
    return index
