"""Clusters: the provider protocol (``base``), the one provider registry and run
lifecycle (``registry``), the providers (kind, k3d, k3s, kwok, existing), ownership
records and the sweep of leftovers."""
