"""One conformance suite for every CheckpointStore (as DVC's ``dvc/testing/remote_tests.py`` holds each remote
to the same tests): the DVC store on a real git + DVC zoo with a local-folder remote, and the in-memory store.

A harness per implementation knows how to damage its remote and how a killed call looks there; the tests
only use the protocol.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import PROJECT, git, isolate

from checkpoint_zoo.errors import IntegrityError, NotPushedError, RemoteConfigError, StorageError
from checkpoint_zoo.storage import open_store
from checkpoint_zoo.storage.base import Part, Placed

FOLDER = "zoo/checkpoints/m"
# above stamps.MIN_BYTES, so that the stores' sha256 verdicts go through stamps as in real use
SIZE = (1 << 20) + 123


class DvcHarness:
    def __init__(self, store, remote: Path) -> None:
        self.store, self.remote = store, remote

    def damage_remote(self, path: str) -> None:
        folder, rel = path.rsplit("/", 1)
        md5 = self.store.manifest(folder)[rel]
        obj = self.remote / "files" / "md5" / md5[:2] / md5[2:]
        obj.chmod(0o644)
        obj.write_bytes(b"\0" * obj.stat().st_size)

    def kill(self) -> Path:
        """What a DVC call killed while writing its stage lock leaves: ``.dvc/tmp/rwlock`` cut short."""
        rwlock = self.store.root / ".dvc" / "tmp" / "rwlock"
        rwlock.write_text('{"read": {"')
        return rwlock


class MemoryHarness:
    def __init__(self, store) -> None:
        self.store = store

    def damage_remote(self, path: str) -> None:
        objects = self.store.remote_objects[self.store.default_remote()]
        oid = self.store.index[FOLDER][path.rsplit("/", 1)[1]]
        objects[oid] = b"\0" * len(objects[oid])

    def kill(self) -> Path:
        """What a transfer killed mid-way leaves: a partial object in the cache."""
        partial = self.store.cache_dir / ("0" * 64 + ".partial")
        partial.write_bytes(b"half")
        return partial


@pytest.fixture(scope="module")
def dvc_template(tmp_path_factory) -> Path:
    """One empty git + DVC zoo, copied for each test (``init`` costs seconds)."""
    from checkpoint_zoo.api import init

    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, tmp_path_factory.mktemp("home"))
        root = tmp_path_factory.mktemp("template") / "zoo"
        init(root, remote_url=str(root.parent / "remote"), registries_from=PROJECT)
        git("commit", "-qm", "empty zoo", cwd=root)
    return root


@pytest.fixture(params=["dvc", "memory"])
def harness(request, tmp_path):
    root = tmp_path / "zoo"
    if request.param == "dvc":
        shutil.copytree(request.getfixturevalue("dvc_template"), root, symlinks=True)
        store = open_store(root)
        store.modify_remote("local", "url", str(tmp_path / "remote"))
        h = DvcHarness(store, tmp_path / "remote")
    else:
        root.mkdir()
        store = open_store(root, "memory://")
        store.add_remote("local", "memory://remote", {}, default=True)
        h = MemoryHarness(store)
    yield h
    store.close()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_parts(store, *steps: int) -> list[Part]:
    """Checkpoint files in the workspace, tracked; one Part each."""
    parts = []
    for step in steps:
        rel = f"{FOLDER}/step-{step:08d}.safetensors"
        path = store.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(SIZE))
        parts.append(Part(rel, sha(path), "m", str(step)))
    store.track([p.path for p in parts])
    return parts


def drop_local(store, parts: list[Part]) -> None:
    """Delete the parts' workspace files and local cache copies (a fresh clone's state)."""
    for part in parts:
        obj = store.cached(part.path)
        assert obj is not None, part.path
        obj.unlink()
        (store.root / part.path).unlink()


def assert_verified(placed: list[Placed], parts: list[Part]) -> None:
    assert [p.part for p in placed] == parts
    for p in placed:
        assert p.path.is_file() and sha(p.path) == p.part.sha256


def test_push_drop_materialize_downloads_verified_files(harness):
    store = harness.store
    parts = write_parts(store, 1, 2)
    sent, replaced = store.push([p.path for p in parts], folders=[FOLDER])
    assert sent >= 2 and replaced == 0
    drop_local(store, parts)

    placed = store.materialize(parts)
    assert_verified(placed, parts)
    assert [p.status for p in placed] == ["downloaded", "downloaded"]
    assert [p.path for p in placed] == [store.root / p.path for p in parts]

    (store.root / parts[1].path).unlink()  # the cache still holds it
    placed = store.materialize(parts)
    assert [p.status for p in placed] == ["present", "restored"]
    assert_verified(placed, parts)


@pytest.mark.parametrize("stamped", [False, True], ids=["seen", "stamped"])
def test_damaged_cache_object_is_fetched_again(harness, stamped):
    store = harness.store
    [part] = write_parts(store, 3)
    store.push([part.path])
    (store.root / part.path).unlink()
    obj = store.cached(part.path)
    st = obj.stat()
    obj.chmod(0o644)
    obj.write_bytes(b"\xff" * st.st_size)  # bit rot: same size, same mtime
    os.utime(obj, ns=(st.st_atime_ns, st.st_mtime_ns))
    if stamped:  # damage no stat shows: the stamp still vouches for the old bytes
        store.stamps.record(obj, part.sha256)

    [placed] = store.materialize([part])
    assert placed.status == "downloaded"
    assert_verified([placed], [part])
    assert sha(store.cached(part.path)) == part.sha256


def test_wrong_bytes_on_the_remote_are_refused_and_nothing_placed(harness):
    store = harness.store
    [part] = write_parts(store, 4)
    store.push([part.path])
    drop_local(store, [part])
    harness.damage_remote(part.path)

    with pytest.raises(IntegrityError) as err:
        store.materialize([part])
    assert str(err.value).startswith(f"{part.path}: the bytes from remote 'local' do not match sha256 {part.sha256[:12]}")
    assert not (store.root / part.path).exists()
    assert store.cached(part.path) is None  # the wrong object was deleted

    with pytest.raises(IntegrityError, match="the remote's bytes do not match sha256 .*; refused"):
        store.materialize([part], place=False)
    assert not (store.root / part.path).exists() and store.cached(part.path) is None


def test_never_pushed_is_not_pushed_error(harness):
    store = harness.store
    parts = write_parts(store, 5, 6)
    drop_local(store, parts)

    with pytest.raises(NotPushedError) as err:
        store.materialize(parts)
    message = str(err.value)
    assert "m@5 m@6" in message and "not pushed yet" in message and "zoo push m@5 m@6 --remote local" in message
    assert not any((store.root / p.path).exists() for p in parts)

    with pytest.raises(NotPushedError, match=r"^m@5: not in this clone and not on remote 'local'"):
        store.materialize(parts[:1], place=False)


def test_place_false_leaves_the_workspace_untouched(harness):
    store = harness.store
    parts = write_parts(store, 7)
    store.push([p.path for p in parts])
    drop_local(store, parts)

    [placed] = store.materialize(parts, place=False)
    assert placed.status == "downloaded" and placed.path == store.cached(parts[0].path)
    assert_verified([placed], parts)
    assert not (store.root / parts[0].path).exists()
    assert store.materialize(parts, place=False)[0].status == "cached"

    labelled = Part(parts[0].path, parts[0].sha256, "m", "7", label="m@best")
    assert labelled.ref == "m@best" and parts[0].ref == "m@7"
    store.materialize(parts)
    [placed] = store.materialize([labelled], place=False)
    assert placed.status == "present" and placed.path == store.root / parts[0].path


def test_missing_on_remote_names_what_a_pull_would_not_find(harness):
    store = harness.store
    parts = write_parts(store, 11, 12)
    assert store.missing_on_remote(parts) == (parts, [FOLDER] if isinstance(harness, DvcHarness) else [])
    store.push([parts[0].path], folders=[FOLDER])
    assert store.missing_on_remote(parts) == ([parts[1]], [])
    assert store.missing_on_remote(parts[:1]) == ([], [])
    store.push([parts[1].path])
    assert store.missing_on_remote(parts, folders=[FOLDER]) == ([], [])
    drop_local(store, parts)  # a clone with nothing pulled asks the same question and gets the same answer
    assert store.missing_on_remote(parts) == ([], [])
    with pytest.raises(RemoteConfigError, match="'nowhere' is not configured"):
        store.missing_on_remote(parts, remote="nowhere")


def test_missing_on_remote_downloads_no_checkpoint(harness):
    store = harness.store
    [part] = write_parts(store, 13)
    store.push([part.path], folders=[FOLDER])
    drop_local(store, [part])
    manifest = store.manifest_object(FOLDER)
    if manifest is not None:  # a store that keeps a folder record learns the object's name from the remote's
        manifest.unlink()
    assert store.missing_on_remote([part]) == ([], [])
    assert store.cached(part.path) is None and not (store.root / part.path).exists()
    harness.damage_remote(part.path)  # an existence check, not a verification: other bytes still count as there
    assert store.missing_on_remote([part]) == ([], [])


def test_untrack_forgets_the_folder(harness):
    store = harness.store
    [part] = write_parts(store, 8)
    tracking = store.root / store.tracking_file(FOLDER)
    assert tracking.is_file() and store.tracking_file(FOLDER) == store.pointer(FOLDER)
    assert store.cached(part.path) is not None

    store.untrack(FOLDER)
    assert not tracking.exists()
    assert store.cached(part.path) is None


def test_recover_after_a_killed_call(harness):
    store = harness.store
    [part] = write_parts(store, 9)
    left = harness.kill()

    assert store.recover() is True
    assert not left.exists()
    assert store.recover() is False
    store.push([part.path])
    drop_local(store, [part])
    [placed] = store.materialize([part])
    assert placed.status == "downloaded"
    assert_verified([placed], [part])


def test_open_store_names_the_known_schemes():
    with pytest.raises(StorageError, match=r"unknown scheme 'ftp'; use one of dvc://, memory://"):
        open_store(".", "ftp://host/zoo")


def test_memory_tracking_file_is_the_index(tmp_path):
    store = open_store(tmp_path, "memory://")
    [part] = write_parts(store, 1)
    assert json.loads((tmp_path / store.tracking_file(FOLDER)).read_text()) == {
        Path(part.path).name: part.sha256}
