#!/usr/bin/env bash
# pyenv-pack-python.sh SRC_DIR DEST_PREFIX OUT.tar.zst
#
# Pack an installed CPython (a pyenv `versions/X.Y.Z` directory) for the prebuilt cache.
# The tarball holds one top-level directory, basename(DEST_PREFIX), to be unpacked into
# dirname(DEST_PREFIX) on hosts; OUT.sha256 gets the tarball's sha256 (the hex digest only).
#
# When SRC_DIR differs from DEST_PREFIX (e.g. the controller's own build, feeding the cache),
# the copy is made relocatable first: ELF files whose RUNPATH/RPATH points into SRC_DIR get
# a $ORIGIN-relative one (patchelf), and text files (script shebangs, sysconfig data,
# python-config, pkg-config files) get SRC_DIR replaced by DEST_PREFIX.
# Left out: the test suite and anything in site-packages but pip/setuptools (a fresh build's
# contents), so a controller's locally installed packages never travel.
set -euo pipefail
[ $# -eq 3 ] || { sed -n '2,13p' "$0"; exit 2; }
SRC=$(cd "$1" && pwd -P)
DEST=${2%/}
OUT=$3
NAME=$(basename "$DEST")
command -v zstd >/dev/null || { echo "pyenv-pack-python.sh: zstd is missing" >&2; exit 1; }
[ -x "$SRC/bin/python3" ] || { echo "pyenv-pack-python.sh: no bin/python3 in $SRC" >&2; exit 1; }

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/pyenv-pack.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
T=$STAGE/$NAME
mkdir -p "$T"
tar -C "$SRC" \
  --exclude='./lib/python3*/test' --exclude='./lib/python3*/idlelib/idle_test' \
  --exclude='./lib/python3*/tkinter/test' --exclude='./lib/python3*/lib2to3/tests' \
  --exclude=./.pyenv-role.json -cf - . | tar -C "$T" -xf -
for sp in "$T"/lib/python3*/site-packages; do
  [ -d "$sp" ] || continue
  find "$sp" -mindepth 1 -maxdepth 1 \
    ! -name 'pip' ! -name 'pip-*' ! -name 'setuptools' ! -name 'setuptools-*' \
    ! -name '_distutils_hack' ! -name 'distutils-precedence.pth' ! -name 'pkg_resources' \
    ! -name 'README.txt' -exec rm -rf {} +
done

if [ "$SRC" != "$DEST" ]; then
  command -v patchelf >/dev/null || { echo "pyenv-pack-python.sh: relocating needs patchelf" >&2; exit 1; }
  while IFS= read -r -d '' f; do
    head -c4 "$f" 2>/dev/null | grep -q $'\x7fELF' || continue
    rp=$(patchelf --print-rpath "$f" 2>/dev/null) || continue
    case $rp in *"$SRC"*) ;; *) continue ;; esac
    rel=$(realpath --relative-to="$(dirname "$f")" "$T/lib")
    patchelf --set-rpath "\$ORIGIN/$rel" "$f"
  done < <(find "$T" -type f \( -perm -u+x -o -name '*.so*' \) -print0)
  esc_src=$(printf '%s' "$SRC" | sed 's/[.[\*^$|]/\\&/g')
  esc_dest=$(printf '%s' "$DEST" | sed 's/[&|\\]/\\&/g')
  grep -rlIZ -F -- "$SRC" "$T" | while IFS= read -r -d '' f; do
    sed -i "s|$esc_src|$esc_dest|g" "$f"
  done
fi

tar -C "$STAGE" --zstd -cf "$OUT.tmp" "$NAME"
mv "$OUT.tmp" "$OUT"
sha256sum "$OUT" | cut -d' ' -f1 > "$OUT.sha256"
echo "$OUT $(cat "$OUT.sha256") $(du -h "$OUT" | cut -f1)"
