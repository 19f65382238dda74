#!/usr/bin/env bash
# molecule-lanes.sh LANE...: run Molecule scenarios, lanes side by side.
#
# A LANE is a comma-separated list of role/scenario run one after another; the lanes run
# at the same time. Every scenario has its own testbed hosts, addresses and service ports,
# and most of a scenario's time is spent waiting on hosts (boot, package installs, service
# restarts), so two lanes take little more than the longer one on a 2-core machine.
# Each scenario's output goes to .cache/molecule/ROLE-SCENARIO.log (its tail is printed if
# it fails); its time goes to .cache/stage-times.log through timed.sh.
# Environment: MOLECULE (the molecule executable), and what Ansible needs (PATH,
# ANSIBLE_CONFIG, ANSIBLE_ROLES_PATH), as the Makefile sets them.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
logs=$repo/.cache/molecule
mkdir -p "$logs"
: "${MOLECULE:?set MOLECULE to the molecule executable}"

run_lane() {
  local rs role scenario log
  for rs in ${1//,/ }; do
    role=${rs%%/*} scenario=${rs#*/} log=$logs/$role-$scenario.log
    echo "molecule: $rs started (log: ${log#"$repo"/})"
    if ! (cd "$repo" && .ci/timed.sh "molecule:$rs" \
        bash -c "cd roles/$role && '$MOLECULE' test -s $scenario" >"$log" 2>&1); then
      echo "molecule: $rs FAILED; the end of its log:"
      tail -60 "$log" | sed "s|^|  [$rs] |"
      return 1
    fi
    echo "molecule: $rs passed, $(tail -1 "$log" | awk '{print $2}')"
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
