#!/usr/bin/env bash
# Installs what pskd needs on Debian (Open MPI, OpenBLAS, zlib, Fashion-MNIST) when it is
# missing, then builds pskd in release mode with the Swift standard library linked statically
# (so other nodes need MPI and OpenBLAS but not the Swift toolchain).
set -euo pipefail
cd "$(dirname "$0")/.."

launch/install-packages.sh libopenmpi-dev openmpi-bin libopenblas-dev zlib1g-dev dataset-fashion-mnist pkg-config

echo "setup: swift build -c release --static-swift-stdlib --product pskd"
swift build -c release --static-swift-stdlib --product pskd
echo "setup: built $(swift build -c release --show-bin-path)/pskd"
