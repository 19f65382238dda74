#!/usr/bin/env bash
# Controller-side services for Molecule scenarios and tests, listening on the testbed
# bridge's controller address (10.231.0.1) so that testbed hosts reach them.
#
#   services.sh moto start|stop PORT RUNDIR     moto server (S3 etc.); state in memory
#   services.sh git start|stop PORT RUNDIR      git daemon over $CACHE/mirror: serves
#                                               git://ADDR:PORT/pyenv.git, a mirror of the
#                                               controller's pyenv checkout (refreshed at start)
#   services.sh http start|stop PORT RUNDIR     static HTTP server over $CACHE/mirror
#                                               (sources/: CPython source tarballs)
#   services.sh mirror-refresh                  (re)build $CACHE/mirror/pyenv.git only
#
# RUNDIR holds NAME-PORT.pid and NAME-PORT.log. `start` is idempotent (a live pidfile is
# kept), waits until the port answers, and fails with the log's tail otherwise. `stop`
# stops the process from the pidfile (and only that process).
# Needs the bridge: run `tests/testbed/testbed net` first.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${PALPITE_CACHE_DIR:-/var/cache/palpite}
ADDR=${PALPITE_TESTBED_SUBNET:-10.231.0}.1
VENV_BIN=${PALPITE_VENV_BIN:-$REPO/.venv/bin}
MIRROR=$CACHE/mirror

die() { echo "services.sh: $*" >&2; exit 1; }

pyenv_root() {
  if command -v pyenv >/dev/null 2>&1; then pyenv root; else echo "${PYENV_ROOT:-$HOME/.pyenv}"; fi
}

# A bare mirror of the controller's pyenv checkout. That checkout may be shallow, which git's
# dumb HTTP protocol cannot serve: the git daemon (smart protocol) can.
mirror_refresh() {
  local src; src=$(pyenv_root)
  [ -d "$src/.git" ] || die "no pyenv git checkout at $src"
  mkdir -p "$MIRROR/sources"
  (
    flock 9
    if [ -d "$MIRROR/pyenv.git" ]; then
      git -C "$MIRROR/pyenv.git" fetch -q --prune "$src" '+refs/heads/*:refs/heads/*' '+refs/tags/*:refs/tags/*'
    else
      git clone -q --bare --no-local "$src" "$MIRROR/pyenv.git.tmp"
      mv "$MIRROR/pyenv.git.tmp" "$MIRROR/pyenv.git"
    fi
  ) 9>>"$CACHE/.mirror.lock"
}

wait_port() {        # wait_port PORT PID LOG
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/$ADDR/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { tail -20 "$3" >&2; die "process exited; log: $3"; }
    sleep 0.2
  done
  tail -20 "$3" >&2; die "nothing answers on $ADDR:$1 after 20 s; log: $3"
}

start() {            # start NAME PORT RUNDIR CMD...
  local name=$1 port=$2 rundir=$3; shift 3
  local pidf=$rundir/$name-$port.pid log=$rundir/$name-$port.log
  mkdir -p "$rundir"
  if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
    echo "$name already running (pid $(cat "$pidf")) on $ADDR:$port"; return 0
  fi
  ip -4 addr show 2>/dev/null | grep -q "inet $ADDR/" || die "$ADDR is not configured; run 'tests/testbed/testbed net'"
  # Someone else's process on the port would answer wait_port in our stead.
  (exec 3<>"/dev/tcp/$ADDR/$port") 2>/dev/null && die "$ADDR:$port is taken by another process (not $pidf)"
  setsid "$@" </dev/null >"$log" 2>&1 &
  local pid=$!
  echo "$pid" > "$pidf"
  wait_port "$port" "$pid" "$log"
  kill -0 "$pid" 2>/dev/null || { tail -20 "$log" >&2; rm -f "$pidf"; die "$name exited after start; log: $log"; }
  echo "$name started (pid $pid) on $ADDR:$port"
}

stop() {             # stop NAME PORT RUNDIR
  local pidf=$3/$1-$2.pid pid
  [ -f "$pidf" ] || { echo "$1 on port $2: not running"; return 0; }
  pid=$(cat "$pidf")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$pidf"
  echo "$1 on port $2: stopped"
}

[ $# -ge 1 ] || { sed -n '2,16p' "$0"; exit 2; }
case $1 in
  mirror-refresh) mirror_refresh ;;
  moto|git|http)
    [ $# -eq 4 ] || die "usage: services.sh $1 start|stop PORT RUNDIR"
    svc=$1 action=$2 port=$3 rundir=$4
    [[ $port =~ ^[0-9]+$ ]] || die "bad port $port"
    case $svc-$action in
      moto-start) start moto "$port" "$rundir" "$VENV_BIN/moto_server" -H "$ADDR" -p "$port" ;;
      git-start)
        mirror_refresh
        start git "$port" "$rundir" git daemon --reuseaddr --export-all --base-path="$MIRROR" \
          --listen="$ADDR" --port="$port" "$MIRROR" ;;
      http-start)
        mkdir -p "$MIRROR/sources"
        start http "$port" "$rundir" "$VENV_BIN/python" -m http.server --bind "$ADDR" --directory "$MIRROR" "$port" ;;
      moto-stop|git-stop|http-stop) stop "$svc" "$port" "$rundir" ;;
      *) die "unknown action $action" ;;
    esac ;;
  *) die "unknown service $1" ;;
esac
