"""The CLI's structure: one module per command group in ``cli/commands``, each registered in
``cli.parser.COMMANDS``, each subcommand run by the module that added it, every command in ``zoo --help``."""

from __future__ import annotations

import argparse
import pkgutil
import re

from conftest import run_zoo

from checkpoint_zoo.cli import build_parser, commands
from checkpoint_zoo.cli.parser import COMMANDS, ZooParser


def _command_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(commands.__path__))


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_command_module_is_registered_and_has_add_parser_and_run():
    registered = sorted(m.__name__.rpartition(".")[2] for m in COMMANDS)
    assert registered == _command_modules(), "a module in cli/commands is missing from cli.parser.COMMANDS (or listed twice)"
    for module in COMMANDS:
        assert callable(getattr(module, "add_parser", None)), f"{module.__name__} has no add_parser(subparsers)"
        assert callable(getattr(module, "run", None)), f"{module.__name__} has no run(zoo, args)"


def test_every_subcommand_maps_to_exactly_one_module():
    owners: dict[str, list[str]] = {}
    for module in COMMANDS:  # each module alone, on a parser of its own: which names does it add?
        sub = ZooParser(prog="zoo").add_subparsers(dest="verb")
        module.add_parser(sub)
        assert sub.choices, f"{module.__name__} adds no subcommand"
        for name in sub.choices:
            owners.setdefault(name, []).append(module.__name__)
    shared = {name: mods for name, mods in owners.items() if len(mods) > 1}
    assert not shared, f"subcommands added by more than one module: {shared}"

    built = _subcommands(build_parser())
    assert sorted(built) == sorted(owners)
    for name, parser in built.items():
        run = parser.get_default("run")
        assert run is not None and run.__module__ == owners[name][0], (name, run)


def test_zoo_help_lists_every_command(tmp_path):
    r = run_zoo("--help", cwd=tmp_path)
    assert r.code == 0, r.err
    listed = re.findall(r"^    (\S+)", r.out, flags=re.M)
    assert listed == list(_subcommands(build_parser())), listed
    for module in COMMANDS:
        sub = ZooParser(prog="zoo").add_subparsers(dest="verb")
        module.add_parser(sub)
        for name in sub.choices:
            assert name in listed, f"zoo --help does not list {name} ({module.__name__})"
