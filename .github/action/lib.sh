# shellcheck shell=bash
# What the action's scripts share; sourced, not run.

# The words of a text split as a POSIX shell splits them (quotes and backslashes), with
# nothing expanded or run; written NUL-terminated, or, when the text does not split, the
# reason and exit status 2.
SPLIT_WORDS='
import shlex, sys
try:
    words = shlex.split(sys.argv[1])
except ValueError as exc:
    sys.stdout.write(str(exc))
    sys.exit(2)
sys.stdout.write("".join(word + "\0" for word in words))
'

# fail MESSAGE: an error annotation, and exit status 2 (a usage error, as helm-harness's).
fail() {
  echo "::error title=helm-harness action::$*"
  exit 2
}

# split_words INPUT TEXT ARRAY: the words of TEXT into the array named ARRAY; a TEXT that
# does not split (an unclosed quote) fails, naming the input it came from.
split_words() {
  local words
  words=$(mktemp)
  if ! python -c "$SPLIT_WORDS" "$2" >"$words"; then
    local reason
    reason=$(<"$words")
    rm -f -- "$words"
    fail "the input $1 does not split as a shell would split it: $reason"
  fi
  mapfile -d '' -t "$3" <"$words"
  rm -f -- "$words"
}

# set_output NAME VALUE: NAME=VALUE into $GITHUB_OUTPUT. A line break in VALUE would let it
# set other outputs: refused.
set_output() {
  if [[ $2 == *$'\n'* || $2 == *$'\r'* ]]; then
    fail "the output $1 would hold a line break"
  fi
  printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
}
