#!/usr/bin/env bash
# What HTTPS costs at the front door: requests/s and p99 of GET /health/ready through the
# local environment's front door over HTTPS and over plain HTTP, side by side in one run
# (wrk -t2 -c32, 15 s after a 3 s warm-up, rounds interleaved), with kept-alive
# connections and with a new connection (a new TLS handshake) per request.
# Needs `make demo` up. Plain HTTP normally only redirects: the front door is reconfigured
# to serve on both for the run (front_door_http_redirect=false), then put back.
#   bench/front_door_tls.sh [ROUNDS]        # default 2
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
log=.cache/bench/front_door_tls-provision.log
mkdir -p .cache/bench
address=10.231.0.${PALPITE_LOCAL_FRONT_DOOR_INDEX:-2}
export ANSIBLE_CONFIG=$PWD/ansible.cfg PATH=$PWD/.venv/bin:$PATH
command -v wrk >/dev/null || { echo "wrk is not installed (make system-deps)" >&2; exit 1; }
curl -fsS --noproxy '*' --cacert .local-ca/ca.crt -o /dev/null "https://$address/health/ready" ||
  { echo "no environment answers at https://$address (make demo)" >&2; exit 1; }

front_door() {  # the front door's configuration with plain HTTP redirecting or not
  ansible-playbook playbooks/provision.yml -e "front_door_http_redirect=$1" >"$log" 2>&1 ||
    { echo "provision.yml with front_door_http_redirect=$1 failed; see $log" >&2; exit 1; }
}
trap 'front_door true' EXIT
front_door false

run() {  # scheme, connection header or "", label
  local extra=() out rps p99
  [ -n "$2" ] && extra=(-H "Connection: $2")
  wrk -t2 -c32 -d3s "${extra[@]}" "$1://$address/health/ready" >/dev/null
  out=$(wrk -t2 -c32 -d15s --latency "${extra[@]}" "$1://$address/health/ready")
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
    echo "$3: errors: $(grep 'Non-2xx\|Socket errors' <<<"$out" | tr -s ' ')" >&2
  fi
  printf '%-28s round %s  %10s req/s  p99 %s\n' "$3" "$round" "$rps" "$p99"
}

for round in $(seq 1 "$rounds"); do
  run https "" "HTTPS, kept alive"
  run http "" "HTTP, kept alive"
  run https close "HTTPS, new connection each"
  run http close "HTTP, new connection each"
done
