"""A team's daily loop without surprises (issue 28, items 1-4): `zoo commit` commits only what teammates can
pull, the in-repo remote takes no large checkpoint by accident, `zoo serve` caches truthfully, and `zoo verify`
in a partial clone reads as success. Real git + DVC zoos, the real `zoo` entry point."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import add_args, git, register_arch, run_zoo, snapshot, write_safetensors


def _head(root: Path) -> str:
    return git("rev-parse", "HEAD", cwd=root).strip()


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


# ---- 1. zoo commit commits only what teammates can pull -------------------------------------------------


def test_commit_refuses_checkpoints_not_on_the_remote_and_push_fixes_it(empty_zoo, tmp_path):
    for step in (1, 2):
        src = write_safetensors(tmp_path / f"g{step}.safetensors", seed=step)
        assert run_zoo(*add_args(src, "gamma", str(step)), cwd=empty_zoo).code == 0
    head = _head(empty_zoo)
    r = run_zoo("commit", "-m", "Add gamma", cwd=empty_zoo)
    assert r.code == 1, r
    line = _one_line(r.err)
    assert "gamma@1, gamma@2: not on remote 'local'" in line and "zoo commit --push" in line, line
    assert _head(empty_zoo) == head, "a refused commit committed"

    r = run_zoo("commit", "--push", "-m", "Add gamma", cwd=empty_zoo)
    assert r.code == 0, r.err
    assert _head(empty_zoo) != head and git("status", "--porcelain", cwd=empty_zoo) == ""

    # zoo rm writes a new folder manifest: teammates pulling gamma@2 need it on the remote too
    assert run_zoo("rm", "gamma@1", cwd=empty_zoo).code == 0
    r = run_zoo("commit", "-m", "Remove gamma@1", cwd=empty_zoo)
    assert r.code == 1 and "gamma (folder manifest): not on remote 'local'" in _one_line(r.err), r
    assert run_zoo("commit", "--push", "-m", "Remove gamma@1", cwd=empty_zoo).code == 0

    clone = tmp_path / "teammate"
    subprocess.run(["git", "clone", "-q", str(empty_zoo), str(clone)], check=True)
    r = run_zoo("pull", "gamma@2", cwd=clone)
    assert r.code == 0 and "sha256 verified" in r.out, r


def test_commit_checks_only_what_it_adds(empty_zoo, tmp_path):
    """A checkpoint committed earlier without its bytes (--no-check) is not this commit's business; a new one is."""
    src = write_safetensors(tmp_path / "a.safetensors", seed=1)
    assert run_zoo(*add_args(src, "alpha", "1"), cwd=empty_zoo).code == 0
    assert run_zoo("commit", "--no-check", "-m", "Add alpha, not pushed", cwd=empty_zoo).code == 0
    src = write_safetensors(tmp_path / "b.safetensors", seed=2)
    assert run_zoo(*add_args(src, "beta", "1"), cwd=empty_zoo).code == 0
    r = run_zoo("commit", "-m", "Add beta", cwd=empty_zoo)
    assert r.code == 1 and "beta@1: not on remote" in r.err and "alpha" not in r.err, r
    assert run_zoo("push", "beta@1", cwd=empty_zoo).code == 0
    assert run_zoo("commit", "-m", "Add beta", cwd=empty_zoo).code == 0
    # --replace: other bytes at the same step are a new upload
    src = write_safetensors(tmp_path / "b2.safetensors", seed=3)
    assert run_zoo(*add_args(src, "beta", "1", "--replace"), cwd=empty_zoo).code == 0
    r = run_zoo("commit", "-m", "Replace beta@1", cwd=empty_zoo)
    assert r.code == 1 and "beta@1: not on remote" in r.err, r
    assert run_zoo("commit", "--push", "-m", "Replace beta@1", cwd=empty_zoo).code == 0


def test_commit_names_the_first_few_and_counts(empty_zoo, tmp_path):
    for step in range(1, 6):
        src = write_safetensors(tmp_path / f"d{step}.safetensors", seed=step)
        assert run_zoo(*add_args(src, "delta", str(step)), cwd=empty_zoo).code == 0
    r = run_zoo("commit", "-m", "Add delta", cwd=empty_zoo)
    line = _one_line(r.err)
    assert r.code == 1 and "delta@1, delta@2, delta@3 and 2 more (5 in all): not on remote" in line, line


# ---- 2. no git bloat from the in-repo remote ---------------------------------------------------------------

BIG = 1_500_000  # floats: a 6 MB checkpoint, above the in-repo remote's default 5 MB


@pytest.fixture
def in_repo_zoo(empty_zoo, tmp_path) -> tuple[Path, Path]:
    """empty_zoo whose default remote is a folder inside the work tree, and a 6 MB checkpoint to add."""
    assert run_zoo("remote", "add", "intree", ".dvc-remote", "--default", cwd=empty_zoo).code == 0
    register_arch(empty_zoo, "wide", in_features=BIG, out_features=1, bias=False)
    git("add", "conf", cwd=empty_zoo)
    git("commit", "-qm", "in-repo remote, wide arch", cwd=empty_zoo)
    src = tmp_path / "big.safetensors"
    from safetensors.numpy import save_file

    save_file({"weight": np.random.default_rng(0).standard_normal((1, BIG)).astype(np.float32)}, str(src))
    return empty_zoo, src


def _add_big(root: Path, src: Path, step: int) -> None:
    r = run_zoo("add", str(src), "--model", "big", "--step", str(step), "--arch", "wide", "--task",
                "tabular-classification", "--dataset", "wine", "--license", "MIT", cwd=root)
    assert r.code == 0, r.err


def test_in_repo_remote_refuses_a_large_checkpoint_without_allow(in_repo_zoo):
    root, src = in_repo_zoo
    _add_big(root, src, 1)
    before = snapshot(root)
    for args in (("push",), ("push", "big@1"), ("commit", "--push", "-m", "Add big")):
        r = run_zoo(*args, cwd=root)
        assert r.code == 1, (args, r)
        line = _one_line(r.err)
        assert "big@1 (6.0 MB): above the 5 MB limit of remote 'intree'" in line, line
        assert "zoo remote add" in line and "--allow-in-repo" in line and "storage.in_repo_max_mb" in line, line
        assert snapshot(root) == before, args
        assert not (root / ".dvc-remote").exists()
    r = run_zoo("commit", "--push", "--allow-in-repo", "-m", "Add big", cwd=root)
    assert r.code == 0, r.err
    assert any(f.startswith(".dvc-remote/") for f in git("show", "--name-only", "HEAD", cwd=root).split())
    # once stored there, it no longer blocks a plain push
    assert run_zoo("push", cwd=root).code == 0


def test_in_repo_limit_is_read_from_params(in_repo_zoo):
    root, src = in_repo_zoo
    _add_big(root, src, 1)
    params = root / "params.yaml"
    params.write_text("storage:\n  in_repo_max_mb: 10\n")
    r = run_zoo("push", cwd=root)
    assert r.code == 0, r.err
    params.write_text("storage:\n  in_repo_max_mb: lots\n")
    r = run_zoo("push", cwd=root)
    assert r.code == 1 and "params.yaml storage.in_repo_max_mb: 'lots' is not a number" in _one_line(r.err), r


def test_a_remote_outside_the_tree_takes_any_size(in_repo_zoo, tmp_path):
    root, src = in_repo_zoo
    _add_big(root, src, 1)
    assert run_zoo("remote", "default", "local", cwd=root).code == 0
    r = run_zoo("commit", "--push", "-m", "Add big", cwd=root)
    assert r.code == 0, r.err
    assert not (root / ".dvc-remote").exists()
    assert json.loads(json.dumps(r.out)) and "committed" in r.out


# ---- 4. zoo verify in a partial clone -----------------------------------------------------------------------


def test_verify_in_a_partial_clone_reports_not_pulled_as_information(fresh_clone):
    assert run_zoo("pull", "beta", cwd=fresh_clone).code == 0
    r = run_zoo("verify", cwd=fresh_clone)
    assert r.code == 0, r
    line = _one_line(r.out)  # no line per file not pulled: only the count
    assert line.startswith("1 ok, 0 mismatched, 2 missing (not pulled here: 2 checkpoint(s)") and "--all" in line, line

    r = run_zoo("verify", "--all", cwd=fresh_clone)
    assert r.code == 1 and "alpha@10" in r.out and "alpha@20" in r.out and "2 missing" in r.out, r
    assert "not pulled here" not in r.out
    r = run_zoo("verify", "--present-only", cwd=fresh_clone)
    assert r.code == 0 and r.out.strip() == "1 ok, 0 mismatched, 0 missing", r
    r = run_zoo("verify", "alpha@10", cwd=fresh_clone)  # a checkpoint named must be here
    assert r.code == 1 and "not pulled: zoo pull alpha@10" in r.out, r
    r = run_zoo("verify", "-v", cwd=fresh_clone)
    assert r.code == 0 and sum(line.startswith("missing ") for line in r.out.splitlines()) == 2, r

    beta = next((fresh_clone / "zoo/checkpoints/beta").glob("*.safetensors"))
    beta.chmod(0o644)
    beta.write_bytes(b"\0" * beta.stat().st_size)
    r = run_zoo("verify", cwd=fresh_clone)  # a damaged file is still a failure
    assert r.code == 1 and "mismatch" in r.out and "beta@5" in r.out, r


# ---- 3. true HTTP caching in zoo serve -------------------------------------------------------------------------


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_serve_caches_content_addressed_urls_for_good_and_revalidates_the_others(small_zoo, tmp_path):
    import time

    from test_serve import Server

    rows = {f"{r['model']}@{r['step']}": r for r in _table(small_zoo)}
    old = rows["alpha@10"]["sha256"]
    s = Server(small_zoo)
    try:
        [entry] = s.json("/api/models/alpha/checkpoints/10")["files"]
        assert entry["url"] == f"/files/by-sha256/{old}/step-00000010.safetensors", entry
        code, headers, body = s.get(entry["url"])
        assert code == 200 and _sha(body) == old, body[:200]
        assert headers["cache-control"] == "public, max-age=31536000, immutable" and headers["etag"] == f'"{old}"'
        assert "last-modified" not in headers
        assert s.get(f"/files/by-sha256/{old}")[2] == body
        for etag in (f'"{old}"', f'W/"{old}"', f'"{"0" * 64}", "{old}"', "*"):
            code, headers, body304 = s.get(entry["url"], {"If-None-Match": etag})
            assert code == 304 and body304 == b"" and headers["etag"] == f'"{old}"', (etag, code)
        code, headers, tail = s.get(entry["url"], {"Range": "bytes=10-", "If-Range": f'"{old}"'})
        assert code == 206 and tail == body[10:], code
        code, _, whole = s.get(entry["url"], {"Range": "bytes=10-", "If-Range": f'"{"0" * 64}"'})
        assert code == 200 and whole == body  # the client's copy is of other bytes: the whole file
        for bad in (f"/files/by-sha256/{'0' * 64}", f"/files/by-sha256/{old}/other.safetensors",
                    "/files/by-sha256/not-a-sha", f"/files/by-sha256/{old.upper()}"):
            assert s.get(bad)[0] == 404, bad

        # /files/MODEL/STEP names whatever the table says now: revalidated on every use
        code, headers, body = s.get("/files/alpha/10")
        assert code == 200 and headers["cache-control"] == "no-cache" and headers["etag"] == f'"{old}"'
        assert s.get("/files/alpha/10", {"If-None-Match": f'"{old}"'})[0] == 304
        code, headers, tail = s.get("/files/alpha/10", {"Range": "bytes=5-", "If-Range": f'"{old}"'})
        assert code == 206 and tail == body[5:]

        src = write_safetensors(tmp_path / "new.safetensors", seed=99)
        assert run_zoo(*add_args(src, "alpha", "10", "--replace"), cwd=small_zoo).code == 0
        new = _sha(src.read_bytes())
        time.sleep(2.5)  # the server reuses an open zoo for 2 s
        code, headers, body = s.get("/files/alpha/10", {"If-None-Match": f'"{old}"'})
        assert code == 200 and _sha(body) == new and headers["etag"] == f'"{new}"', code
        code, _, _ = s.get("/files/alpha/10", {"Range": "bytes=5-", "If-Range": f'"{old}"'})
        assert code == 200  # a resume of the old bytes gets the new file whole, never a splice
        [entry] = s.json("/api/models/alpha/checkpoints/10")["files"]
        assert entry["url"] == f"/files/by-sha256/{new}/step-00000010.safetensors"
        assert s.get(f"/files/by-sha256/{old}")[0] == 404  # never other bytes: gone from the table, gone here
        r = s.request("HEAD", entry["url"])
        assert r.status == 200 and r.read() == b"" and r.getheader("etag") == f'"{new}"'
    finally:
        s.stop()


def _table(root: Path) -> list[dict[str, str]]:
    import csv
    import io

    return list(csv.DictReader(io.StringIO((root / "zoo/checkpoints.csv").read_text())))


def test_readme_recipe_add_repro_commit_push_reaches_a_teammate(tmp_path):
    """README's recipe, verbatim, in a clone of this repository (whose default remote is the in-repo one)."""
    from conftest import PROJECT, repro

    root = tmp_path / "me"
    subprocess.run(["git", "clone", "-q", str(PROJECT), str(root)], check=True)
    src = write_safetensors(tmp_path / "wine.safetensors", seed=42)
    assert run_zoo(*add_args(src, "wine-recipe", "3"), cwd=root).code == 0
    repro(root)
    r = run_zoo("commit", "--push", "-m", "Add wine-recipe@3", cwd=root)
    assert r.code == 0, r.err
    assert any(f.startswith(".dvc-remote/") for f in r.out.split()), r.out  # the objects travel in git
    assert git("status", "--porcelain", cwd=root) == ""
    mate = tmp_path / "mate"
    subprocess.run(["git", "clone", "-q", str(root), str(mate)], check=True)
    r = run_zoo("pull", "wine-recipe@3", cwd=mate)
    assert r.code == 0 and "sha256 verified" in r.out, r
    r = run_zoo("verify", cwd=mate)
    assert r.code == 0 and "not pulled here" in r.out, r


def test_commit_asks_an_s3_remote_without_downloading(empty_zoo, tmp_path):
    """On S3 the check is one HEAD per new object (no GET of any object); --push uploads exactly those."""
    from s3_server import MotoServer

    s3 = MotoServer(tmp_path / "moto")
    try:
        env = s3.env
        r = run_zoo("remote", "add", "s3", "s3://zoo/daily", "--endpoint", s3.endpoint, "--default", cwd=empty_zoo,
                    env=env)
        assert r.code == 0, r.err
        for step in (1, 2):
            src = write_safetensors(tmp_path / f"s{step}.safetensors", seed=step)
            assert run_zoo(*add_args(src, "sigma", str(step)), cwd=empty_zoo).code == 0
        s3.clear_log()
        r = run_zoo("commit", "-m", "Add sigma", cwd=empty_zoo, env=env)
        assert r.code == 1 and "sigma@1, sigma@2: not on remote 's3'" in _one_line(r.err), r
        asked = s3.requests()
        assert asked and not any(q.is_object_get or q.is_object_put for q in asked), asked
        r = run_zoo("commit", "--push", "-m", "Add sigma", cwd=empty_zoo, env=env)
        assert r.code == 0, r.err
        assert len(s3.keys("daily/")) == 3  # two checkpoints and the folder manifest
    finally:
        s3.stop()
