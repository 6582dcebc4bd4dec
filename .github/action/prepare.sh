#!/usr/bin/env bash
# The action's inputs checked, before anything is installed or run, and what the later
# steps need worked out into $GITHUB_OUTPUT:
#   artifact   the report artifact's name: ARTIFACT_NAME, with -shard-K-of-N for SHARD K/N
#   bin-dir    where kind and helm are kept; put on PATH (through $GITHUB_PATH)
#   kwok-dir   for cluster kwok, the harness's own binary folder (`helm-harness tools path`)
#   cache-key  what the cached folders hold: the runner's OS and architecture, the versions
# Environment: CLUSTER, SHARD, UPGRADE, SUITES, PYTEST_ARGS, REPORT_DIR, ARTIFACT_NAME,
# KIND_VERSION, HELM_VERSION, RUNNER_OS, RUNNER_ARCH, GITHUB_OUTPUT, GITHUB_PATH.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

version='^v[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$'
[[ -n $CLUSTER ]] || fail "the input cluster is empty: name a provider (kind, k3d, k3s, kwok, existing)"
[[ $HELM_VERSION =~ $version ]] || fail "the input helm-version is '$HELM_VERSION': give a release, e.g. v3.22.0"
[[ $KIND_VERSION =~ $version ]] || fail "the input kind-version is '$KIND_VERSION': give a release, e.g. v0.33.0"
[[ $UPGRADE == true || $UPGRADE == false ]] || fail "the input upgrade is '$UPGRADE': it must be true or false"
[[ ${LINT:-false} == true || ${LINT:-false} == false ]] || fail "the input lint is '$LINT': it must be true or false"
[[ -n $REPORT_DIR ]] || fail "the input report-dir is empty"
[[ -n $ARTIFACT_NAME ]] || fail "the input artifact-name is empty"
artifact=$ARTIFACT_NAME
if [[ -n $SHARD ]]; then
  [[ $SHARD =~ ^([0-9]+)/([0-9]+)$ ]] || fail "the input shard is '$SHARD': it must be K/N, e.g. 2/4"
  artifact+="-shard-${BASH_REMATCH[1]}-of-${BASH_REMATCH[2]}"
fi
paths=() extra=()
split_words suites "$SUITES" paths
split_words pytest-args "$PYTEST_ARGS" extra
echo "suites: ${paths[*]:-./suites}; more options: ${#extra[@]}"

harness_bin=$(helm-harness tools path) # versioned: .../bin/k8s-<version>-kwok-<version>
bin_dir="$(dirname "$harness_bin")/action-helm-$HELM_VERSION-kind-$KIND_VERSION"
key="helm-harness-$RUNNER_OS-$RUNNER_ARCH-helm-$HELM_VERSION"
kwok_dir=""
case $CLUSTER in
  kind) key+="-kind-$KIND_VERSION" ;;
  kwok)
    key+="-$(basename "$harness_bin")"
    kwok_dir=$harness_bin
    ;;
esac
mkdir -p -- "$bin_dir"
echo "$bin_dir" >>"$GITHUB_PATH"
set_output artifact "$artifact"
set_output bin-dir "$bin_dir"
set_output kwok-dir "$kwok_dir"
set_output cache-key "$key"
echo "binaries: $bin_dir${kwok_dir:+ and $kwok_dir}, cached as $key"
