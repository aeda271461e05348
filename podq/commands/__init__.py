"""One module per `podq` subcommand."""
