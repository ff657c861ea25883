#!/usr/bin/env bash
# An experiment: one recipe (data set, model, budget) trained under several target policies and
# seeds with the same data and budget, each run in its own directory under the experiment
# folder (POLICY-seedS), then `pskd report` on all of them (report.html and report.md).
#
#   launch/experiment.sh [--recipe NAME|FILE] [--policies "ce ls pskd"] [--out DIR] [--seeds "1 2 3"]
#                        [--epochs N] [--train-samples K|all] [--model M] [--data-dir DIR] [--ranks R]
#                        [--time-limit SECONDS] [--full] [--dry-run] [--no-estimate] [-- extra pskd train flags…]
#
# Recipes are files, launch/recipes/NAME.yaml (fashion-mnist, the default; fashion-mnist-full, also
# --full; fashion-mnist-noisy; fashion-mnist-clean; cifar100-paper), or --recipe PATH: a `train:`
# section that `pskd train --config` reads as it stands, and an `experiment:` section (policies,
# seeds, per-policy settings, also-ece-bins, data files; `pskd recipe --help`). This script reads
# them only through `pskd recipe`; tables, statistics and failed runs come from `pskd report`.
# Every run is `pskd train` with the train settings as flags, --data-dir, the flags after -- (and
# unknown flags, which override them), --policy P with the recipe's settings for P, --seed S. Per
# seed, ce runs first, and a run reading another's model ({run:ce}: tf-kd-self's teacher) after it.
# --dry-run prints every command and an estimate from one step measured on THIS machine with
# `pskd bench` (--no-estimate: none); it writes nothing. The same command skips complete runs and
# resumes interrupted ones (plan.txt refuses other settings); a failed run does not stop the others
# and makes the exit status 1. --time-limit: each run's wall-clock limit (default 30 days).
# PSKD_LAUNCH names the launcher of each run (default launch/local.sh; it gets -n RANKS
# --time-limit SECONDS, then the pskd arguments), e.g. on a shared file system:
#   PSKD_LAUNCH="launch/cluster.sh --hostfile hosts" launch/experiment.sh --recipe cifar100-paper \
#       --ranks 16 --data-dir /shared/cifar-100-binary --out /shared/runs/cifar100-paper
set -euo pipefail
# One { … } group: bash reads it whole before running, so editing this file during an hour-long
# experiment cannot change what the running one does.
{
root="$(cd "$(dirname "$0")/.." && pwd)"
me="launch/experiment.sh"
source "$root/launch/options.sh"

recipe=fashion-mnist out="$root/runs/experiment" ranks=2 time_limit=$(( 30 * 24 * 3600 )) dry_run=false estimate=true
given=() extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --recipe) need_value "$@"; recipe="$2"; shift 2 ;;
        --full) recipe=fashion-mnist-full; shift ;;
        --policies) [ $# -ge 2 ] || need_value "$1"; given+=(--policies "$2"); shift 2 ;;  # "": refused by pskd
        --out) need_value "$@"; out="$2"; shift 2 ;;
        --seeds)
            need_value "$@"
            [[ "$2" =~ ^[[:space:]]*[0-9]+([[:space:]]+[0-9]+)*[[:space:]]*$ ]] ||
                { echo "$me: --seeds takes whole numbers separated by spaces (\"1 2 3\"), not '$2'" >&2; exit 2; }
            given+=(--seeds "$(echo $2)"); shift 2 ;;
        --epochs) need_value "$@"; positive_integer "$1" "$2" epochs; given+=(--epochs "$(( 10#$2 ))"); shift 2 ;;
        --train-samples)
            need_value "$@"
            [ "$2" = all ] || positive_integer "$1" "$2" "training images (or all)"
            given+=(--train-samples "$([ "$2" = all ] && echo all || echo $(( 10#$2 )))"); shift 2 ;;
        --model) need_value "$@"; given+=(--model "$2"); shift 2 ;;
        --data-dir) need_value "$@"; given+=(--data-dir "$2"); shift 2 ;;
        --ranks|-n) need_value "$@"; positive_integer "$1" "$2" ranks; ranks="$(( 10#$2 ))"; shift 2 ;;
        --time-limit) need_value "$@"; positive_integer "$1" "$2" seconds; time_limit="$(( 10#$2 ))"; shift 2 ;;
        --dry-run) dry_run=true; shift ;;
        --no-estimate) estimate=false; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        --) shift; extra+=("$@"); break ;;
        *) extra+=("$1"); shift ;;
    esac
done

# Absolute: runs name files in it (--teacher-checkpoint), and --resume refuses another spelling.
out="$(realpath -m "$out")"
file="$recipe"
[[ "$recipe" == */* || "$recipe" == *.yaml ]] || file="$root/launch/recipes/$recipe.yaml"
if [ ! -f "$file" ]; then
    names="$(cd "$root/launch/recipes" && ls -- *.yaml | sed 's/\.yaml$//' | LC_ALL=C sort | paste -sd' ')"
    echo "$me: unknown recipe '$recipe': choose one of ${names// /, } (or give a recipe file's path)" >&2
    exit 2
fi
binary="${PSKD_BIN:-$root/.build/release/pskd}"
[ -x "$binary" ] || { echo "$me: $binary not found: run launch/setup.sh first (or set PSKD_BIN)" >&2; exit 2; }
launch_command=(${PSKD_LAUNCH:-$root/launch/local.sh})
# A launcher named relative to the checkout (launch/cluster.sh) works from any directory.
[[ "${launch_command[0]}" == /* || -e "${launch_command[0]}" || ! -e "$root/${launch_command[0]}" ]] ||
    launch_command[0]="$root/${launch_command[0]}"
arguments=(recipe "$file" ${given[@]+"${given[@]}"} --out "$out" --ranks "$ranks" --time-limit "$time_limit")
for word in "${launch_command[@]}"; do arguments+=(--launcher "$word"); done
recipe() { "$binary" "${arguments[@]}" "$@" -- ${extra[@]+"${extra[@]}"}; }

recipe --print summary || exit 2   # also refuses a bad recipe or policy list, before anything starts
if $dry_run; then
    recipe --print plan
    $estimate || { echo "estimate:   not measured (--no-estimate)"; exit 0; }
    mapfile -t bench < <(recipe --print bench)
    load="$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo unknown) on $(nproc) cores"
    if ! measured="$("$root/launch/local.sh" -n "$ranks" --time-limit 600 "${bench[@]}" 2>/dev/null)" ||
        ! printf '%s\n' "$measured" | recipe --print estimate --load "$load"; then
        echo "estimate:   unavailable: launch/local.sh -n $ranks ${bench[*]} failed"
    fi
    exit 0
fi
recipe --print check-data || exit 2
echo "estimate:   see --dry-run (it measures a training step on this machine)"
commands="$(recipe --print runs)" || exit 2

# The folder records its plan; continuing it with other settings would mix two budgets.
mkdir -p "$out"
plan="${commands%%$'\n'*}" plan="${plan#plan$'\t'}"
if [ -f "$out/plan.txt" ] && [ "$(cat "$out/plan.txt")" != "$plan" ]; then
    printf '%s\n' "$me: $out holds an experiment with other settings:" "  $(cat "$out/plan.txt")" \
        "choose another --out (or remove that folder)" >&2
    exit 2
fi
echo "$plan" > "$out/plan.txt"
start=$(date +%s) failed=() finished=()
# Each line: run COUNT POLICY SEED DIR complete|incomplete COMMAND…, or evaluate DIR FILE current|missing COMMAND….
while IFS=$'\t' read -r -u 3 -a line; do
    case "${line[0]}" in
        run)
            run="${line[4]}"
            if [ "${line[5]}" = complete ]; then
                echo "[${line[1]}] $run is complete: skipped"
            else
                mkdir -p "$run"; run_start=$(date +%s)
                echo "[${line[1]}] ${line[2]}, seed ${line[3]} → $run (log: $run/train.log)"
                # --resume: an interrupted run continues from its newest checkpoint (a new one starts at epoch 1).
                if ! "${line[@]:6}" >> "$run/train.log" 2>&1; then
                    echo "$me: the run $run failed; the end of its log:" >&2
                    tail -n 20 "$run/train.log" >&2
                    failed+=(--failed "$run")
                    continue
                fi
                grep '^epoch [0-9]*: ' "$run/train.log" | tail -n 1 | sed 's/^/    /'
                echo "    $(( $(date +%s) - run_start )) s; $(( ($(date +%s) - start) / 60 )) min since the start"
            fi
            finished+=("$run") ;;
        evaluate)
            [[ " ${finished[*]:-} " == *" ${line[1]} "* && "${line[3]}" != current ]] || continue
            if ! "${line[@]:4}" 2>> "${line[1]}/train.log" > "${line[2]}.partial"; then
                echo "$me: pskd evaluate failed on ${line[1]}; the end of its log:" >&2
                tail -n 20 "${line[1]}/train.log" >&2
                exit 1
            fi
            mv "${line[2]}.partial" "${line[2]}"
            echo "    evaluated: ${line[2]}" ;;
    esac
done 3<<< "${commands#*$'\n'}"

# The tables (mean ± std over seeds, best epochs, ECE with other bins) and the failed runs: pskd report.
status=0
"$binary" report ${finished[@]+"${finished[@]}"} ${failed[@]+"${failed[@]}"} --output "$out/report.html" |
    tee "$out/report.md" || status=$?
[ ${#failed[@]} -eq 0 ] || echo "  (the same command retries the failed runs and skips the finished ones)" >&2
[ ${#finished[@]} -eq 0 ] || echo "experiment: $(( ($(date +%s) - start) / 60 )) minutes; open $out/report.html"
exit $status
}
