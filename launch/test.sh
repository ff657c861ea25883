#!/usr/bin/env bash
# Runs the whole pskd test suite: unit tests, gradient checks, and the tests that launch the
# built executable under mpirun, across network-namespace "nodes" and in a one-node Slurm
# cluster, and render the HTML report in headless Chromium. Runs launch/setup.sh first (the
# packages pskd needs and its release build, which QuickStartTests runs as README's quick start
# does), installs what the tests need (Debian packages) when it is missing, then runs `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."

launch/setup.sh
launch/install-packages.sh libopenmpi-dev openmpi-bin libopenblas-dev zlib1g-dev libturbojpeg0-dev libspng-dev dataset-fashion-mnist pkg-config iproute2 slurm-wlm chromium

exec swift test "$@"
