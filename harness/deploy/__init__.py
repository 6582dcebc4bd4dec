"""The Helm lifecycle of an app on the run's cluster: install, upgrade, roll back,
uninstall; images loaded first; apps that clash over cluster-scoped objects."""
