#!/usr/bin/env bash
# Print the path of a working CPython 3.12 interpreter: PATH first, then pyenv's versions.
# Exit 1 with a clear message when there is none.
set -u
candidates=(python3.12)
root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
for d in "$root"/versions/3.12*/bin/python3.12 /opt/pyenv/versions/3.12*/bin/python3.12; do
  [ -x "$d" ] && candidates+=("$d")
done
for c in "${candidates[@]}"; do
  # a pyenv shim is on PATH even when 3.12 is not the active version: run it to be sure
  if v=$("$c" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) && [ "$v" = "3.12" ]; then
    command -v "$c"
    exit 0
  fi
done
echo "error: palpite needs CPython 3.12 (python3.12 on PATH or under pyenv's versions/3.12.*); none found." >&2
echo "       Install it (e.g. 'pyenv install 3.12') and run make again." >&2
exit 1
