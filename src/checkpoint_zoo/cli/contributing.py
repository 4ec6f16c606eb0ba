"""What a writing command (add, rm) does after it succeeded: name the rest of the contributor recipe
(README: Contributing) and make sure this clone has the merge drivers."""

from __future__ import annotations


def recipe(message: str, push: bool = True) -> str:
    """The contributor recipe's remaining steps (README: Contributing), as one command line."""
    quoted = "'" + message.replace("'", "'\\''") + "'"
    return f"dvc repro && zoo commit {'--push ' if push else ''}-m {quoted}"


def merge_drivers(zoo) -> None:
    """Configure the merge drivers in a clone that lacks them (git never takes them from the repo), so a
    contributor's later `git merge` just works."""
    from ..workspace.merge import ensure

    if zoo.revision is None:
        ensure(zoo.root)
