"""One module per command group. Each has ``add_parser(subparsers)``, which adds its subcommand(s), and
``run(zoo, args) -> int``, which runs them; ``cli.parser.COMMANDS`` lists the modules in help order."""
