#!/usr/bin/env bash
# Installs what pskd needs on Debian (Open MPI, OpenBLAS, zlib, libjpeg-turbo, libspng,
# Fashion-MNIST) when it is missing, then builds pskd in release mode with the Swift standard
# library linked statically (so other nodes need MPI, OpenBLAS and the C libraries but not the
# Swift toolchain). With PSKD_BIN set to a
# pskd executable built elsewhere (a cluster node given the binary, a test), it installs the
# packages and builds nothing; launch/local.sh and launch/cluster.sh then run PSKD_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."

launch/install-packages.sh libopenmpi-dev openmpi-bin libopenblas-dev zlib1g-dev libturbojpeg0-dev libspng-dev dataset-fashion-mnist pkg-config

if [ -n "${PSKD_BIN:-}" ]; then
    [ -x "$PSKD_BIN" ] || { echo "setup: PSKD_BIN=$PSKD_BIN is not an executable: unset it to build pskd here" >&2; exit 2; }
    echo "setup: PSKD_BIN is set: using $PSKD_BIN, nothing to build"
    exit 0
fi
echo "setup: swift build -c release --static-swift-stdlib --product pskd"
swift build -c release --static-swift-stdlib --product pskd
echo "setup: built $(swift build -c release --show-bin-path)/pskd"
