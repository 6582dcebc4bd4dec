#!/usr/bin/env bash
# The binaries a run needs, one subcommand each:
#   missing    which of kind (for cluster kind), the kwok cluster's binaries (for cluster
#              kwok) and helm are not on PATH at the wanted version: kind, kwok, helm and
#              any, each true or false, into $GITHUB_OUTPUT
#   kind       go install sigs.k8s.io/kind@KIND_VERSION into BIN_DIR
#   kwok       helm-harness tools install: the kwok cluster's binaries, built with Go
#   keep-helm  the helm on PATH (azure/setup-helm's) copied into BIN_DIR, for the cache
# Environment: CLUSTER, KIND_VERSION, HELM_VERSION (missing); BIN_DIR, KIND_VERSION (kind);
# BIN_DIR (keep-helm); GITHUB_OUTPUT.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

kind_is() { # kind_is VERSION: `kind version` says "kind VERSION ..."
  command -v kind >/dev/null && [[ $(kind version 2>/dev/null) == "kind $1 "* ]]
}

helm_is() { # helm_is VERSION
  command -v helm >/dev/null && [[ $(helm version --template '{{.Version}}' 2>/dev/null) == "$1" ]]
}

kwok_binaries_present() {
  python -c 'from harness import tools; tools.require_binaries(tools.KWOK_BINARIES)' 2>/dev/null
}

missing() {
  local kind=false kwok=false helm=false
  if [[ $CLUSTER == kind ]] && ! kind_is "$KIND_VERSION"; then
    kind=true
  fi
  if [[ $CLUSTER == kwok ]] && ! kwok_binaries_present; then
    kwok=true
  fi
  if ! helm_is "$HELM_VERSION"; then
    helm=true
  fi
  local any=false
  if [[ $kind == true || $kwok == true || $helm == true ]]; then
    any=true
  fi
  echo "to install: kind $kind, kwok binaries $kwok, helm $HELM_VERSION $helm"
  set_output kind "$kind"
  set_output kwok "$kwok"
  set_output helm "$helm"
  set_output any "$any"
}

keep_helm() {
  local helm
  helm=$(command -v helm) || fail "there is no helm on PATH to keep"
  if [[ ! $helm -ef $BIN_DIR/helm ]]; then
    cp -- "$helm" "$BIN_DIR/helm"
  fi
}

case ${1:-} in
  missing) missing ;;
  kind) GOBIN=$BIN_DIR go install "sigs.k8s.io/kind@$KIND_VERSION" ;;
  kwok) helm-harness tools install ;;
  keep-helm) keep_helm ;;
  *) fail "tools.sh: unknown subcommand '${1:-}' (missing, kind, kwok, keep-helm)" ;;
esac
