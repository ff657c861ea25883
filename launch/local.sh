#!/usr/bin/env bash
# Runs `pskd train` on this node with N ranks under mpirun; every other argument goes to
# `pskd train`. Handles what users should not have to know: running as root, oversubscription
# when there are more ranks than cores, one core per rank with a matching OpenBLAS thread
# count, and a hard wall-clock limit.
#
#   launch/local.sh [-n RANKS] [--threads T] [--time-limit SECONDS] [--command SUBCOMMAND] [pskd train args…]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/launch/job-exit.sh"
source "$root/launch/options.sh"
me=launch/local.sh
resume="$(resume_command "$0" "$@")"

ranks=2
threads=""
time_limit=86400
subcommand=train
while [ $# -gt 0 ]; do
    case "$1" in
        -n|--ranks) need_value "$@"; positive_integer "$1" "$2" ranks; ranks="$(( 10#$2 ))"; shift 2 ;;
        --threads) need_value "$@"; positive_integer "$1" "$2" "OpenBLAS threads per rank"; threads="$(( 10#$2 ))"; shift 2 ;;
        --time-limit) need_value "$@"; positive_integer "$1" "$2" seconds; time_limit="$(( 10#$2 ))"; shift 2 ;;
        --command) need_value "$@"; subcommand_name "$1" "$2"; subcommand="$2"; shift 2 ;;
        *) break ;;
    esac
done

binary="${PSKD_BIN:-$root/.build/release/pskd}"
if [ ! -x "$binary" ]; then
    echo "launch/local.sh: $binary not found: run launch/setup.sh first (or set PSKD_BIN)" >&2
    exit 2
fi

cores=$(nproc)
options=(-np "$ranks")
[ "$(id -u)" -eq 0 ] && options+=(--allow-run-as-root)
if [ "$ranks" -gt "$cores" ]; then
    # More ranks than cores: share the cores, one BLAS thread each.
    options+=(--oversubscribe --bind-to none)
    threads="${threads:-1}"
else
    # Each rank gets cores/ranks cores of its own, and as many BLAS threads.
    threads="${threads:-$(( cores / ranks ))}"
    options+=(--map-by "slot:PE=$threads" --bind-to core)
fi
options+=(-x "OPENBLAS_NUM_THREADS=$threads")

echo "launch/local.sh: $ranks rank(s) × $threads OpenBLAS thread(s), time limit ${time_limit}s" >&2
echo "+ timeout -k 10 $time_limit mpirun ${options[*]} $binary $subcommand $*" >&2
run_job "$resume" timeout -k 10 "$time_limit" mpirun "${options[@]}" "$binary" "$subcommand" "$@"
