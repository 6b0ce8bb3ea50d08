"""One module per `sysboy` subcommand, each with `add_arguments` and `run`."""
