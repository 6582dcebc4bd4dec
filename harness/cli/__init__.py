"""The ``helm-harness`` command: one module per subcommand."""
