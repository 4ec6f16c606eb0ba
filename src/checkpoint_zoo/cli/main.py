"""The ``zoo`` entry points: parse, open the zoo, run one command, and the one exit ladder.

Error boundary: a known ZooError prints one line (or the validation list) on stderr and exits 1;
usage errors exit 2; ``--traceback`` shows the full trace of anything else. Heavy imports (dvc,
pandas, torch) happen only inside the commands that need them, so ``zoo --help`` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from . import errors
from .output import echo
from .parser import build_parser, check_global_flags


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``zoo`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["merge-driver"]:
        from .merge_driver import merge_driver

        return merge_driver(argv[1:])
    parser = build_parser()
    check_global_flags(parser, argv)
    args = parser.parse_args(argv)
    from ..errors import ZooError

    zoo = None
    try:
        if args.verb in ("init", "token"):  # no zoo to open: a new one, or a token file outside any
            return args.run(None, args)
        from ..api import Zoo

        zoo = Zoo(args.repo, rev=getattr(args, "rev", None), remote=getattr(args, "remote", None),
                  trust_code=args.trust_code)
        return args.run(zoo, args)
    except ZooError as e:
        echo(errors.message(args.verb, e), file=sys.stderr)
        return errors.exit_code(e)
    except BrokenPipeError:
        # the reader (e.g. `| head`) has gone; say nothing more
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        echo(errors.INTERRUPTED, file=sys.stderr)
        return 130
    except Exception as e:
        if args.traceback:
            raise
        echo(errors.message(args.verb, e), file=sys.stderr)
        return errors.exit_code(e)
    finally:
        if zoo is not None:
            zoo.close()


def console_main() -> None:
    """The ``zoo`` console script: ``main``, then exit without tearing the interpreter down.

    After a command that loaded DVC, botocore and s3fs, Python's own finalisation (freeing every
    module and object) takes about 0.4 s, a third of pulling one checkpoint (measured with
    scripts/bench_s3.py). Output is flushed and atexit handlers run first; only the teardown is skipped.
    Exceptions (``--traceback``) and usage errors exit the normal way."""
    import atexit
    import os

    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = code or 1
    try:
        sys.stderr.flush()
    except OSError:
        pass
    atexit._run_exitfuncs()
    os._exit(code if isinstance(code, int) else 1)
