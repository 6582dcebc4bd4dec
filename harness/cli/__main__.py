"""``python -m harness.cli``: the helm-harness command."""

from harness.cli.main import main

raise SystemExit(main())
