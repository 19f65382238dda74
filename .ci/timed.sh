#!/usr/bin/env bash
# timed.sh STAGE CMD...: run CMD, then print how long the stage took (and append it to
# .cache/stage-times.log so `make test` can print a summary at the end).
set -u
stage=$1; shift
start=$(date +%s)
echo "==> [$stage] $*"
"$@"
rc=$?
secs=$(( $(date +%s) - start ))
mkdir -p .cache
printf '%-14s %5ss  %s\n' "$stage" "$secs" "$([ $rc -eq 0 ] && echo ok || echo "FAILED ($rc)")" | tee -a .cache/stage-times.log
exit $rc
