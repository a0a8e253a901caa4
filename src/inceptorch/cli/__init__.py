"""The `inceptorch` command: one thin module per subcommand over library functions."""
