#!/usr/bin/env bash
# Runs the whole pskd test suite: unit tests, gradient checks, and the tests that launch the
# built executable under mpirun, across network-namespace "nodes" and in a one-node Slurm
# cluster, and render the HTML report in headless Chromium. Installs what those tests need
# (Debian packages) when it is missing, then runs `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."

launch/install-packages.sh libopenmpi-dev openmpi-bin libopenblas-dev zlib1g-dev dataset-fashion-mnist pkg-config iproute2 slurm-wlm chromium

exec swift test "$@"
