"""Root conftest: lets ``pytest`` run from the repository root over ``tests/`` and the
example suites alike. The helm-harness plugin itself is loaded through its ``pytest11``
entry point (``pip install -e .``), exactly as users get it."""

from __future__ import annotations
