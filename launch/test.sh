#!/usr/bin/env bash
# Runs the whole pskd test suite: unit tests, gradient checks, and the tests that launch the
# built executable under mpirun, across network-namespace "nodes" and in a one-node Slurm
# cluster, and render the HTML report in headless Chromium. Installs what those tests need
# (Debian packages) when it is missing, then runs `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libopenmpi-dev openmpi-bin libopenblas-dev zlib1g-dev dataset-fashion-mnist pkg-config
          iproute2 slurm-wlm chromium)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "test: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

exec swift test "$@"
