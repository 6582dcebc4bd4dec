#!/usr/bin/env bash
# The run's Markdown summary (REPORT_DIR/report.md) appended to the job summary, or a line
# saying why there is none. Used by the action, and by the nightly's merged report.
# Environment: REPORT_DIR, OUTCOME and CHANGED_SINCE (both optional), GITHUB_STEP_SUMMARY.
set -euo pipefail

report=$REPORT_DIR/report.md
if [[ -f $report ]]; then
  cat -- "$report" >>"$GITHUB_STEP_SUMMARY"
  echo "the job summary has $report"
  exit 0
fi
if [[ ${OUTCOME:-} == nothing-to-run ]]; then
  since=${CHANGED_SINCE:-}
  line="helm-harness: nothing to run: no suite uses a chart changed since \`${since//\`/}\`."
else
  line="helm-harness: no report: \`${report//\`/}\` is missing (the run stopped before writing it; see the job's log)."
fi
printf '%s\n' "$line" | tee -a "$GITHUB_STEP_SUMMARY"
