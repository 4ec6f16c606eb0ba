"""Hostile inputs, round three, class 7: every command that stages in git names a held ``index.lock``."""

from __future__ import annotations

from conftest import run_zoo


def test_every_staging_command_names_a_held_index_lock(small_zoo):
    r = run_zoo("remote", "add", "intree", ".dvc-remote", "--default", cwd=small_zoo)  # push stages its objects
    assert r.code == 0, r.err
    lock = small_zoo / ".git" / "index.lock"
    lock.write_bytes(b"")  # what a killed git command leaves
    for args in (("push",), ("commit", "-m", "x", "--no-check"), ("remote", "add", "other", "/tmp/elsewhere")):
        r = run_zoo(*args, cwd=small_zoo)
        assert r.code != 0, (args, r)
        assert str(lock) in r.err and "s old" in r.err, (args, r.err)
        assert "manually" not in r.err, r.err
    lock.unlink()
    r = run_zoo("push", cwd=small_zoo)
    assert r.code == 0, r.err
    assert (small_zoo / ".dvc-remote").is_dir()
