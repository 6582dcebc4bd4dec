"""Kubernetes primitives on the API: clients and API errors, resources by kind, waits,
readiness predicates, JSONPath, port-forward, and the YAML reader for manifests."""
