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

run_lane() {   # run_lane TARGETS CPU_SHARES
  local target log
  if [ -n "$cpu_groups" ]; then   # this lane and all it starts: its hosts, moto, pytest
    mkdir "$cpu_groups/lane-$BASHPID" && echo "$2" > "$cpu_groups/lane-$BASHPID/cpu.shares" &&
      echo "$BASHPID" > "$cpu_groups/lane-$BASHPID/cgroup.procs" ||
      echo "lanes: could not give this lane its CPU share; it runs with an equal one"
  fi
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

# Each lane gets a CPU group of its own (cgroup v1 `cpu`, where the machine has it and this
# runs as root; LANES_CPU_GROUPS=0 turns it off), the first lane (in `make test`, the
# end-to-end suite: the critical path, whose steps wait on one another) with
# LANES_FIRST_SHARES (1024) and the others LANES_OTHER_SHARES (256) each. The others take
# what the first leaves idle (while its hosts boot, drain, bake or serve a paced load)
# rather than slowing each of its steps. A group holds all its lane starts: setsid'd hosts
# and services too, which outside one are each an equal scheduling group of their own (the
# kernel's autogroup). Measured 1,645 s against 1,892 for `make test` (docs/benchmarks.md,
# session 23); on by default since the slowloris test's control samples come from the
# same client as the attacked host's (session 24).
cpu_groups=""
if [ "${LANES_CPU_GROUPS:-1}" = 1 ] && [ "$(id -u)" -eq 0 ] &&
  [ -w /sys/fs/cgroup/cpu/cgroup.procs ] && [ -n "$*" ]; then
  cpu_groups=/sys/fs/cgroup/cpu/palpite-lanes-$$
  mkdir -p "$cpu_groups" || cpu_groups=""
fi
remove_cpu_groups() {   # the lanes' groups are empty once their hosts are down
  [ -n "$cpu_groups" ] || return 0
  rmdir "$cpu_groups"/lane-* "$cpu_groups" 2>/dev/null || true
}

testbed=$repo/tests/testbed/testbed
if [ "$(id -u)" -eq 0 ] && command -v systemd-nspawn >/dev/null; then
  # one hold per run (two clones' lanes side by side each keep their own)
  "$testbed" hold "lanes-$$" $$ || exit 1
  trap '"$testbed" release "lanes-$$"; "$testbed" net-down >/dev/null; remove_cpu_groups' EXIT
else
  trap remove_cpu_groups EXIT
fi

pids=()
shares=${LANES_FIRST_SHARES:-1024}
for lane in "$@"; do
  run_lane "$lane" "$shares" &
  pids+=($!)
  shares=${LANES_OTHER_SHARES:-256}
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
exit $failed
