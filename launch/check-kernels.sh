#!/usr/bin/env bash
# Checks pskd's exactness promises under several OpenBLAS kernels on this machine, by hand (not
# part of the test suite or CI, which leave OPENBLAS_CORETYPE as the environment has it).
#
# pskd's results must not depend on the thread count or the rank count on any CPU: every split
# of work is a function of the shapes alone (see Sources/Tensors/Parallel.swift). OpenBLAS's
# DYNAMIC_ARCH build honours OPENBLAS_CORETYPE, so one machine can run the kernels of others.
# For each kernel this runs the exactness tests: products, convolutions (im2col and Winograd),
# BatchNorm and whole training steps on 1/2/3 threads; `pskd train --threads 1|2|3` byte for
# byte; `pskd evaluate --predictions` on 1/2/3 ranks byte for byte. One line per kernel.
#
# Usage: launch/check-kernels.sh [KERNEL…]   (default: native Haswell Prescott, and SkylakeX
#        when the CPU has AVX-512). Exit status 0 when every kernel passed.
set -uo pipefail
cd "$(dirname "$0")/.."

tests='BLASExactnessTests|ParallelTests|LayerExactnessTests|TrainCommandExactnessTests|EvaluateCommandTests'

if [ -n "${OPENBLAS_CORETYPE+set}" ] || [ -n "${OPENBLAS_L2_SIZE+set}" ]; then
    echo "check-kernels: the environment presets OPENBLAS_CORETYPE='${OPENBLAS_CORETYPE-}' OPENBLAS_L2_SIZE='${OPENBLAS_L2_SIZE-}'"
    echo "check-kernels: (older OpenBLAS builds crash or compute wrong results on some CPUs); leaving them alone: only the preset kernel is checked"
    kernels=(native)
elif [ $# -gt 0 ]; then
    kernels=("$@")
else
    kernels=(native Haswell Prescott)
    if grep -q -w avx512f /proc/cpuinfo; then
        kernels+=(SkylakeX)
    else
        echo "check-kernels: this CPU has no AVX-512: skipping the SkylakeX kernel"
    fi
fi

echo "check-kernels: building the tests"
swift build --build-tests >/tmp/pskd-check-kernels-build.log 2>&1 || {
    cat /tmp/pskd-check-kernels-build.log
    exit 1
}
pskd="$(swift build --show-bin-path)/pskd"

# Runs its arguments with the kernel forced, or as the environment has it for "native".
with_kernel() {
    local kernel=$1
    shift
    if [ "$kernel" = native ]; then "$@"; else OPENBLAS_CORETYPE=$kernel "$@"; fi
}

failed=0
summary=()
for kernel in "${kernels[@]}"; do
    core=$(with_kernel "$kernel" "$pskd" info 2>/dev/null | sed -n 's/^BLAS core: *//p')
    log=/tmp/pskd-check-kernels-$kernel.log
    start=$(date +%s)
    with_kernel "$kernel" swift test --skip-build --filter "$tests" >"$log" 2>&1
    status=$?
    seconds=$(($(date +%s) - start))
    counts=$(grep -E "Executed [0-9]+ tests?, with" "$log" | tail -1 |
        sed -E 's/.*Executed ([0-9]+) tests?, with ([0-9]+) failures?.*/\1 \2/')
    read -r executed failures <<<"${counts:-0 0}"
    if [ "$status" -eq 0 ] && [ "$executed" -gt 0 ] && [ "$failures" -eq 0 ]; then
        verdict="pass"
    else
        verdict="FAIL (log: $log)"
        failed=1
        grep -E "error:" "$log" | cut -c1-400 | head -5
    fi
    line=$(printf '%-9s OpenBLAS core %-11s %3d tests, %d failures, %4d s: %s' \
        "$kernel" "${core:-?}" "$executed" "$failures" "$seconds" "$verdict")
    echo "$line"
    summary+=("$line")
done

echo
echo "check-kernels: summary"
printf '  %s\n' "${summary[@]}"
exit $failed
