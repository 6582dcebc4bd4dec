"""Example suites shipped with helm-harness.

``pytest suites/`` runs every suite here except those under ``broken/``: that folder holds a
deliberately failing suite (crash-looping pods, a failing helm test, a privileged container,
a ServiceAccount that may create Secrets) that shows what failures, their evidence and
runbooks look like. Run it on its own, expecting failures::

    pytest suites/broken

``operator/`` holds a scenario that needs a running operator process (kind, not kwok)::

    pytest suites/operator --cluster kind
"""

# Paths relative to this folder; pytest skips them when collecting `pytest suites/`, but
# collects them when they are named on the command line (`pytest suites/broken`).
collect_ignore = ["broken", "operator"]
