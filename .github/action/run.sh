#!/usr/bin/env bash
# `helm-harness run` with the action's inputs (checked by prepare.sh). Records, in
# $GITHUB_OUTPUT, the outcome (passed, failed, or nothing-to-run when CHANGED_SINCE left no
# item to run), the exit code (0 for nothing-to-run) and the report dir, and exits 0 so that
# the summary, annotation, sweep and upload steps run; the action's last step exits with
# the recorded code.
# Environment: SUITES, CLUSTER, K8S_VERSION, UPGRADE, UPGRADE_FROM_GIT_BASE, SHARD,
# CHANGED_SINCE, PYTEST_ARGS, REPORT_DIR, NOTIFY_URL, HISTORY, LINT, GITHUB_OUTPUT.
# With LINT=true, `helm-harness lint` runs first on the same provider; when it fails, the
# suites do not run and its outcome (and report) is the run's.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

paths=() extra=()
split_words suites "$SUITES" paths
split_words pytest-args "$PYTEST_ARGS" extra

# Every value joined to its option: a value is never taken for a path.
args=(run "${paths[@]}" "--cluster=$CLUSTER")
if [[ -n $K8S_VERSION ]]; then
  args+=("--k8s-version=$K8S_VERSION")
fi
if [[ $UPGRADE == true ]]; then
  args+=(--upgrade)
fi
if [[ -n $UPGRADE_FROM_GIT_BASE ]]; then
  args+=("--upgrade-from-git-base=$UPGRADE_FROM_GIT_BASE")
fi
if [[ -n $SHARD ]]; then
  args+=("--shard=$SHARD")
fi
if [[ -n $CHANGED_SINCE ]]; then
  args+=("--changed-since=$CHANGED_SINCE")
fi
args+=("--report-dir=$REPORT_DIR" "${extra[@]}")
shown=("${args[@]}")
if [[ -n $NOTIFY_URL ]]; then
  args+=("--notify=$NOTIFY_URL")
  shown+=("--notify=***") # a webhook URL is often a secret in itself
fi
if [[ -n $HISTORY ]]; then
  args+=("--history=$HISTORY")
  if [[ $HISTORY == *://* ]]; then
    shown+=("--history=***") # a database URL may carry a password
  else
    shown+=("--history=$HISTORY")
  fi
fi

# Reports of an earlier run in this workspace would pass for this one's.
for name in junit.xml results.json report.html report.md; do
  rm -f -- "$REPORT_DIR/$name"
done

code=0
if [[ ${LINT:-false} == true ]]; then
  lint_args=(lint "${paths[@]}" "--cluster=$CLUSTER")
  if [[ -n $K8S_VERSION ]]; then
    lint_args+=("--k8s-version=$K8S_VERSION")
  fi
  if [[ -n $CHANGED_SINCE ]]; then
    lint_args+=("--changed-since=$CHANGED_SINCE")
  fi
  lint_args+=("--report-dir=$REPORT_DIR" "${extra[@]}")
  echo "helm-harness ${lint_args[*]}"
  helm-harness "${lint_args[@]}" || code=$?
fi
if ((code == 0)); then
  echo "helm-harness ${shown[*]}"
  helm-harness "${args[@]}" || code=$?
fi

# With CHANGED_SINCE, no record means pytest never started (no suite uses a changed chart,
# exit 0) or what it chose was all deselected by PYTEST_ARGS (exit 5, no tests collected).
if [[ -n $CHANGED_SINCE && ! -f $REPORT_DIR/results.json ]] && ((code == 0 || code == 5)); then
  outcome=nothing-to-run
  code=0
elif ((code != 0)); then
  outcome=failed
else
  outcome=passed
fi
echo "outcome: $outcome (exit code $code)"
set_output outcome "$outcome"
set_output exit-code "$code"
set_output report-dir "$REPORT_DIR"
