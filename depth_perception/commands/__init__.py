"""One module per `depth-perception` subcommand: add_arguments(parser) and run(args)."""
