#!/usr/bin/env bash
# moto_ctl.sh start|stop|status DIR [HOST PORT MOTO_SERVER]
# Runs the local cloud's moto server in the background with a pidfile (DIR/moto.pid) and a
# log (DIR/moto.log). Prints "started", "running", "stopped" or "absent" (for Ansible's
# changed_when). Only ever signals the process recorded in its own pidfile, and only when
# that process is a moto_server.
set -euo pipefail
cmd=${1:?usage: moto_ctl.sh start|stop|status DIR [HOST PORT MOTO_SERVER]}
dir=${2:?DIR}
pidfile=$dir/moto.pid

ours() {   # the pidfile's process is alive and is a moto server
  local pid; pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q moto_server
}

ready() { curl -fsS -o /dev/null --noproxy '*' --max-time 2 "http://$1:$2/moto-api/" 2>/dev/null; }

case $cmd in
start)
  host=${3:?HOST} port=${4:?PORT} bin=${5:?MOTO_SERVER}
  mkdir -p "$dir"
  if ours; then echo running; exit 0; fi
  if ready "$host" "$port"; then
    echo "something else already answers on $host:$port" >&2; exit 1
  fi
  setsid "$bin" -H "$host" -p "$port" >>"$dir/moto.log" 2>&1 </dev/null &
  echo $! > "$pidfile"
  for _ in $(seq 1 100); do
    ready "$host" "$port" && { echo started; exit 0; }
    ours || { echo "moto exited; see $dir/moto.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "moto did not answer on $host:$port within 20 s; see $dir/moto.log" >&2; exit 1
  ;;
stop)
  if ! ours; then rm -f "$pidfile"; echo absent; exit 0; fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$pidfile"
  echo stopped
  ;;
status)
  if ours; then echo running; else echo absent; fi
  ;;
*) echo "usage: moto_ctl.sh start|stop|status DIR [HOST PORT MOTO_SERVER]" >&2; exit 2 ;;
esac
