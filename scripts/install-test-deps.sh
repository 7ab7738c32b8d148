#!/usr/bin/env bash
# Installs the real peers the end-to-end tests run against (Debian packages).
# Idempotent; needs root (or sudo) only when something is missing.
set -euo pipefail

# binary -> Debian package. promtool ships in `prometheus` on Debian 12.
declare -A NEED=(
  [prometheus]=prometheus
  [promtool]=prometheus
  [prometheus-node-exporter]=prometheus-node-exporter
  [prometheus-process-exporter]=prometheus-process-exporter
  [prometheus-alertmanager]=prometheus-alertmanager
  [victoria-metrics]=victoria-metrics
)

missing=()
for bin in "${!NEED[@]}"; do
  if ! command -v "$bin" >/dev/null 2>&1; then
    missing+=("${NEED[$bin]}")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-test-deps: all peers present"
  exit 0
fi

# Deduplicate package names.
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "install-test-deps: installing ${pkgs[*]}"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# Debian's packaging starts the services on install; the tests start their own
# instances on free ports, so keep the packaged services from starting.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null

for bin in "${!NEED[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || { echo "install-test-deps: $bin still missing" >&2; exit 1; }
done
echo "install-test-deps: done"
