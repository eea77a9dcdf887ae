#!/usr/bin/env bash
# scripts/fuzz.sh: run every Go fuzz target of the module for a bounded time.
#
# Usage (from anywhere in the repository):
#   scripts/fuzz.sh                 # every target, 20s each
#   FUZZTIME=2m scripts/fuzz.sh     # longer (any `go test -fuzztime` value: 30s, 5m, 10000x)
#   scripts/fuzz.sh ./capi          # only the targets of these packages
#
# Targets are discovered, not listed: `go test -list '^Fuzz'` over the given
# packages (default ./...), so a Fuzz function added in any package is run
# without editing this script. Each runs alone (`-run '^$' -fuzz '^Name$'`)
# for FUZZTIME (default 20s) with FUZZPROCS workers (default 1: the machine
# is shared; the fuzzer's default is GOMAXPROCS). Each target's seed corpus
# (f.Add and testdata/fuzz/<Name>/) also runs in every plain `go test`.
#
# What the targets check: no panic, no hang (a run that outlives FUZZTIME
# by FUZZGRACE seconds, default 120, is killed and counted as a failure),
# and, where the target measures it, no large allocation from a small
# input. A failing input is written to the package's testdata/fuzz/<Name>/
# by the fuzzer: commit it with the fix as a regression seed.
#
# Exit status: 0 when every target passed, 1 otherwise (the failures are
# listed at the end).
set -u
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-20s}"
# How long each new interesting input is minimised: go test's 60s default
# spends a short run minimising instead of exploring (seen on the data readers).
FUZZMINIMIZE="${FUZZMINIMIZE:-2s}"
FUZZPROCS="${FUZZPROCS:-1}"
FUZZGRACE="${FUZZGRACE:-120}"
pkgs=("$@")
[ ${#pkgs[@]} -eq 0 ] && pkgs=(./...)

# seconds in FUZZTIME, for the hang guard (an iteration count "Nx" gets 10 minutes)
case "$FUZZTIME" in
  *x) limit=600 ;;
  *) limit=$(go run - "$FUZZTIME" <<'GO' 2>/dev/null || echo 600
package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	d, err := time.ParseDuration(os.Args[1])
	if err != nil {
		os.Exit(1)
	}
	fmt.Println(int(d.Seconds()) + 1)
}
GO
) ;;
esac
limit=$((limit + FUZZGRACE))

# "package<TAB>Target" lines: `go test -list` prints the names, then "ok <pkg>".
list=$(go test -list '^Fuzz' "${pkgs[@]}" 2>&1 | awk '
  /^Fuzz/ { names[n++] = $1; next }
  /^ok / { for (i = 0; i < n; i++) print $2 "\t" names[i]; n = 0; next }
  /^(FAIL|---|#)/ { print "LISTFAIL\t" $0 > "/dev/stderr" }')
if [ -z "$list" ]; then
  echo "fuzz.sh: no fuzz targets found in ${pkgs[*]}" >&2
  exit 1
fi
n=$(printf '%s\n' "$list" | wc -l)
echo "fuzz.sh: $n targets, $FUZZTIME each, $FUZZPROCS worker(s)"
failed=()
while IFS=$'\t' read -r pkg name; do
  echo "== $pkg $name"
  out=$(mktemp)
  timeout --kill-after=10 "$limit" go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" \
    -fuzzminimizetime "$FUZZMINIMIZE" -parallel "$FUZZPROCS" "$pkg" </dev/null >"$out" 2>&1
  rc=$?
  tail -n 5 "$out"
  rm -f "$out"
  if [ "$rc" -ne 0 ]; then
    [ "$rc" -ge 124 ] && echo "   (killed after ${limit}s: a hang)"
    failed+=("$pkg $name")
  fi
done <<<"$list"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: ${#failed[@]} of $n targets FAILED:"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "fuzz.sh: all $n targets passed"
