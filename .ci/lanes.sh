#!/usr/bin/env bash
# lanes.sh LANE...: run make targets in lanes side by side.
#
# A LANE is a comma-separated list of make targets run one after another; the lanes run at
# the same time. Used for the host-based tests (and, in `make test`, the unit tests and
# the testbed harness at the ends of the shorter lanes): every Molecule scenario, the local
# cloud test and the end-to-end suite have their own testbed hosts, addresses and service
# ports, and spend much of their time waiting on hosts (boot, package installs, restarts),
# so lanes side by side take under the sum of their times on a 2-core machine (though the
# first minutes keep both cores busy: docs/benchmarks.md, session 20).
# Each target's output goes to .cache/lanes/TARGET.log (its tail is printed if it fails);
# its time goes to .cache/stage-times.log through timed.sh.
#
# The lanes share the testbed's bridge. Each target stops its own hosts, and a teardown
# removes the bridge when no host is left on it (`testbed net-down`): between two targets of
# a lane, that could take the bridge from under another lane starting its moto on the
# controller's address. So the lanes hold the bridge while they run (`testbed hold`, tied
# to this script's PID, so a killed run holds nothing) and give it back at the end.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
logs=$repo/.cache/lanes
mkdir -p "$logs"

run_lane() {
  local target log
  for target in ${1//,/ }; do
    log=$logs/${target//\//-}.log
    echo "lanes: $target started (log: ${log#"$repo"/})"
    if ! (cd "$repo" && .ci/timed.sh "$target" make --no-print-directory "$target" >"$log" 2>&1); then
      echo "lanes: $target FAILED; the end of its log:"
      tail -60 "$log" | sed "s|^|  [$target] |"
      return 1
    fi
    echo "lanes: $target passed in $(tail -1 "$log" | awk '{print $2}')"
    # a pytest target's slowest tests (--durations), so the next one to cut is in plain sight
    sed -n '/slowest .*durations/,/ in [0-9.]*s/p' "$log" | sed "s|^|  [$target] |"
  done
}

testbed=$repo/tests/testbed/testbed
if [ "$(id -u)" -eq 0 ] && command -v systemd-nspawn >/dev/null; then
  # one hold per run (two clones' lanes side by side each keep their own)
  "$testbed" hold "lanes-$$" $$ || exit 1
  trap '"$testbed" release "lanes-$$"; "$testbed" net-down >/dev/null' EXIT
fi

pids=()
for lane in "$@"; do
  run_lane "$lane" &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
exit $failed
