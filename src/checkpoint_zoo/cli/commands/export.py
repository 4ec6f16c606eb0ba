"""``zoo export``: a checkpoint as a folder that loads without the zoo."""

from __future__ import annotations

from ...utils.redact import printable
from ..output import echo


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("export", help="write a checkpoint to a folder that loads without the zoo (transformers' "
                                             "from_pretrained, or safetensors + config.json)")
    s.add_argument("ref", metavar="REF")
    s.add_argument("dir", metavar="DIR", help="a new (or empty) folder")
    s.add_argument("--format", choices=("hf", "safetensors"),
                   help="hf: what transformers' from_pretrained loads (transformers architectures); safetensors: the "
                        "weights as stored with a config.json describing the architecture (default: hf for "
                        "transformers architectures, else safetensors)")


def run(zoo, args) -> int:
    out = zoo.export(args.ref, args.dir, format=args.format)
    echo(printable(f"exported {out.ref} ({out.format}) to {out.path}: {', '.join(out.files)}"))
    echo(printable(f"load it: {out.how_to_load}"))
    return 0
