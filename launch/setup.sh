#!/usr/bin/env bash
# Installs what pskd needs on Debian (Open MPI, OpenBLAS, zlib, Fashion-MNIST) when it is
# missing, then builds pskd in release mode with the Swift standard library linked statically
# (so other nodes need MPI and OpenBLAS but not the Swift toolchain).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libopenmpi-dev openmpi-bin libopenblas-dev zlib1g-dev dataset-fashion-mnist pkg-config)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

echo "setup: swift build -c release --static-swift-stdlib --product pskd"
swift build -c release --static-swift-stdlib --product pskd
echo "setup: built $(swift build -c release --show-bin-path)/pskd"
