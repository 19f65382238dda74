#!/usr/bin/env bash
# lanes.sh LANE...: run make targets in lanes side by side.
#
# A LANE is a comma-separated list of make targets run one after another; the lanes run at
# the same time. Used for the host-based tests: every Molecule scenario, the local cloud
# test and the end-to-end suite have their own testbed hosts, addresses and service ports,
# and spend much of their time waiting on hosts (boot, package installs, restarts), so
# lanes side by side take well under the sum of their times on a 2-core machine.
# Each target's output goes to .cache/lanes/TARGET.log (its tail is printed if it fails);
# its time goes to .cache/stage-times.log through timed.sh.
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
  done
}

pids=()
for lane in "$@"; do
  run_lane "$lane" &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
exit $failed
