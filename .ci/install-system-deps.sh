#!/usr/bin/env bash
# Debian packages for the testbed hosts, the local environment and the browser tests.
# Idempotent: installs only what is missing. Needs root (CI and the dev machines are root).
set -euo pipefail
packages=(systemd-container debootstrap iptables zstd patchelf nginx-light wrk chromium
  openssh-server  # sshd on loopback: tests/unit/test_ssh_options.py (a changed host key)
  libnss3-tools curl)  # certutil: Chromium trusts the local CA as a user would (tests/browser.py)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "error: missing Debian packages (${missing[*]}) and not root; install them with apt-get." >&2
  exit 1
fi
echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
