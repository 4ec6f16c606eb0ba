"""A listing reads an evaluation file checking in full only the records it shows (``records.parse_steps``): a bad
record shown fails exactly as the full read (``parse_results``) fails, a bad record not shown does not stop it."""

from __future__ import annotations

import json

import pytest

from checkpoint_zoo.catalog.records import parse_results, parse_steps
from checkpoint_zoo.errors import ZooError

NAME = "zoo/metrics/evaluations/m.json"


def _record(step: int, **extra) -> dict:
    return {"step": step, "sha256": f"{step:064x}", "metrics": {"accuracy": 0.5}, **extra}


def _doc(*records) -> bytes:
    return json.dumps({"model": "m", "checkpoints": list(records)}).encode()


def _full_error(doc: bytes) -> str:
    with pytest.raises(ZooError) as e:
        parse_results([(NAME, doc)])
    return str(e.value)


def test_the_asked_steps_and_the_last_record_are_returned():
    doc = _doc(_record(0), _record(1), _record(2))
    model, found = parse_steps(NAME, doc, {1})
    assert model == "m" and sorted(found) == ["m@1", "m@2"]
    assert found == {k: v for k, v in parse_results([(NAME, doc)]).items() if k in found}


@pytest.mark.parametrize("bad", [
    {"metrics": {"accuracy": "high"}},
    {"metrics": {"accuracy": float("nan")}},
    {"sha256": "nope"},
    {"status": "failed", "error": "two\nlines", "metrics": {}},
])
def test_a_bad_record_shown_fails_as_the_full_read_does(bad):
    doc = _doc(_record(0), _record(1, **bad))  # step 1 is the last: always shown
    with pytest.raises(ZooError) as e:
        parse_steps(NAME, doc, {1})
    assert str(e.value) == _full_error(doc) and "m, step 1" in str(e.value)


def test_a_bad_record_not_shown_is_left_to_the_full_checks():
    doc = _doc(_record(0, metrics={"accuracy": "high"}), _record(1))
    assert "m, step 0" in _full_error(doc)
    assert sorted(parse_steps(NAME, doc, {1})[1]) == ["m@1"]


@pytest.mark.parametrize("doc", [
    _doc(_record(0), _record(0)),                        # a step twice
    _doc(_record(0), "not a record"),                    # a record that is no object
    _doc({**_record(0), "step": "3"}),                   # a step that is no number
    _doc({**_record(0), "step": True}),
    b'{"model": "m", "checkpoints": {}}',                # the file's shape
    b'{"model": "M!", "checkpoints": []}',
    b"[1, 2",
    b'{"model": "m", "checkpoints": [{"step": NaN}]}',   # not JSON: orjson refuses it, json reads it, the check fails
])
def test_what_finding_the_records_needs_fails_as_the_full_read_does(doc):
    with pytest.raises(ZooError) as e:
        parse_steps(NAME, doc, {0})
    assert str(e.value) == _full_error(doc)


def test_big_integers_read_as_json_reads_them():
    doc = _doc(_record(0, n_examples=2**70))  # past orjson's 64 bits: read by json, then refused by the check
    with pytest.raises(ZooError) as e:
        parse_steps(NAME, doc, {0})
    assert str(e.value) == _full_error(doc) and "n_examples" in str(e.value)


def test_a_byte_order_mark_reads_as_json_reads_it():
    doc = b"\xef\xbb\xbf" + _doc(_record(0))
    assert parse_steps(NAME, doc, {0})[1] == parse_results([(NAME, doc)])
