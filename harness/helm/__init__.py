"""Helm: every invocation through one runner (argv lists, chart flags, redacted log
line, typed errors) and the synchronous client the harness uses."""
