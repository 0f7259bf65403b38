"""One module per `streamhealth` subcommand: each has `add_parser(subparsers, common)` and `run(args)`."""
