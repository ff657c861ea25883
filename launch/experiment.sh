#!/usr/bin/env bash
# PS-KD against cross-entropy and label smoothing on Fashion-MNIST: the same model, data and
# budget for the policies ce, ls (ε = 0.1) and pskd (α_T = 0.8), over several seeds, each run with
# 2 ranks (launch/local.sh -n 2) in its own directory under the experiment folder; then
# `pskd report` on all of them (report.html and the Markdown table in report.md).
#
#   launch/experiment.sh [--out DIR] [--seeds "1 2 3"] [--epochs N] [--train-samples K|all]
#                        [--model M] [--ranks R] [--full] [--dry-run] [-- extra pskd train flags…]
#
# The default budget (cnn, 30 epochs of the first 4 000 training images, so that cross-entropy
# has time to grow overconfident, all 10 000 test images, 3 seeds) takes ~32 minutes on an idle
# 2-core machine and stays under 60 down to ~440 training images/s. --full is the paper's budget (PreAct ResNet-18, 200 epochs, step schedule at 50 % / 75 %, all data), for a
# cluster. Unknown flags (and anything after --) go to every `pskd train`, after the
# experiment's own, so they override them.
# Runs already complete are skipped and interrupted ones resume from their last checkpoint, so
# the same command continues an interrupted experiment.
set -euo pipefail
# One { … } group: bash reads it whole before running, so editing this file during an hour-long
# experiment cannot change what the running one does.
{
root="$(cd "$(dirname "$0")/.." && pwd)"

# Measured on the 2-core development machine (launch/local.sh -n 2, one core per rank), cnn with
# Winograd convolutions: training images per second over both ranks when the machine is idle
# (the shared-machine rate is the idle one scaled by the ratio measured with the earlier build),
# the rest of an epoch (evaluating the 10 000 test images, BatchNorm agreement, checkpoint), and
# the start-up of one run (mpirun, data loading).
cnn_rate_idle=1650
cnn_rate_busy=700
cnn_epoch_overhead_seconds=2
run_startup_seconds=3

out="$root/runs/experiment"
seeds="1 2 3"
epochs=30
train_samples=4000
model=cnn
ranks=2
full=false
dry_run=false
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --seeds) seeds="$2"; shift 2 ;;
        --epochs) epochs="$2"; epochs_given=1; shift 2 ;;
        --train-samples) train_samples="$2"; samples_given=1; shift 2 ;;
        --model) model="$2"; model_given=1; shift 2 ;;
        --ranks|-n) ranks="$2"; shift 2 ;;
        --full) full=true; shift ;;
        --dry-run) dry_run=true; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        --) shift; extra+=("$@"); break ;;
        *) extra+=("$1"); shift ;;
    esac
done

policies=(ce ls pskd)
common=(--dataset fashion-mnist --batch-size 128 --lr 0.1 --optimizer sgd --momentum 0.9 --nesterov true
        --weight-decay 5e-4 --flip true --ece-bins 15 --alpha-t 0.8 --label-smoothing 0.1 --keep-checkpoints 1)
if $full; then
    # The paper's CIFAR-100 recipe on Fashion-MNIST: PreAct ResNet-18, 200 epochs (the paper: 300),
    # lr 0.1 divided by 10 at 50 % and 75 % of training, crop with padding 4 and flip, all data.
    [ -n "${model_given:-}" ] || model=preact-resnet18
    [ -n "${epochs_given:-}" ] || epochs=200
    [ -n "${samples_given:-}" ] || train_samples=all
    common+=(--lr-schedule step --milestones "$(( epochs / 2 )),$(( epochs * 3 / 4 ))" --crop-padding 4)
else
    common+=(--lr-schedule cosine --crop-padding 2)
fi
common+=(--model "$model" --epochs "$epochs")
[ "$train_samples" = all ] || common+=(--max-train-samples "$train_samples")

seed_list=($seeds)
run_count=$(( ${#policies[@]} * ${#seed_list[@]} ))
samples=$([ "$train_samples" = all ] && echo 60000 || echo "$train_samples")

echo "experiment: ${policies[*]} × seeds ${seeds} = $run_count runs of $model, $epochs epochs, $samples training images"
echo "            (all 10 000 test images), $ranks ranks each, into $out"
echo "            every run: pskd train ${common[*]} ${extra[*]:-} --policy P --seed S"
if [ "$model" = cnn ]; then
    minutes() {  # total minutes at $1 training images per second
        local epoch_seconds=$(( (samples + $1 - 1) / $1 + cnn_epoch_overhead_seconds ))
        echo $(( (run_count * (epochs * epoch_seconds + run_startup_seconds) + 59) / 60 ))
    }
    echo "estimate:   ~$(minutes $cnn_rate_idle) minutes on an idle 2-core machine (~${cnn_rate_idle} training images/s over 2 ranks)," \
         "~$(minutes $cnn_rate_busy) minutes if other jobs share it (~${cnn_rate_busy}/s)"
    time_limit=$(( 4 * (epochs * (samples / cnn_rate_busy + cnn_epoch_overhead_seconds) + run_startup_seconds) + 300 ))
else
    echo "estimate:   $model is for a cluster: days on a 2-core machine"
    time_limit=$(( 30 * 24 * 3600 ))
fi
$dry_run && exit 0

binary="${PSKD_BIN:-$root/.build/release/pskd}"
if [ ! -x "$binary" ]; then
    echo "launch/experiment.sh: $binary not found: run launch/setup.sh first (or set PSKD_BIN)" >&2
    exit 2
fi

# The folder records its plan; continuing it with other settings would mix two budgets.
mkdir -p "$out"
plan="pskd train ${common[*]} ${extra[*]:-} --policy P --seed S; ranks $ranks"
if [ -f "$out/plan.txt" ] && [ "$(cat "$out/plan.txt")" != "$plan" ]; then
    echo "launch/experiment.sh: $out holds an experiment with other settings:" >&2
    echo "  $(cat "$out/plan.txt")" >&2
    echo "choose another --out (or remove that folder)" >&2
    exit 2
fi
echo "$plan" > "$out/plan.txt"
start=$(date +%s)
done_runs=0
for seed in "${seed_list[@]}"; do
    for policy in "${policies[@]}"; do
        run="$out/$policy-seed$seed"
        done_runs=$(( done_runs + 1 ))
        if [ -f "$run/metrics.jsonl" ] && [ "$(grep -c . "$run/metrics.jsonl")" -ge "$epochs" ]; then
            echo "[$done_runs/$run_count] $run is complete: skipped"
            continue
        fi
        mkdir -p "$run"
        echo "[$done_runs/$run_count] $policy, seed $seed → $run (log: $run/train.log)"
        run_start=$(date +%s)
        # --resume: an interrupted run continues from its newest checkpoint (a new one starts at epoch 1).
        if ! "$root/launch/local.sh" -n "$ranks" --time-limit "$time_limit" \
                "${common[@]}" "${extra[@]}" --policy "$policy" --seed "$seed" --out "$run" --resume \
                >> "$run/train.log" 2>&1; then
            echo "launch/experiment.sh: the run $run failed; the end of its log:" >&2
            tail -n 20 "$run/train.log" >&2
            exit 1
        fi
        now=$(date +%s)
        grep '^epoch [0-9]*: ' "$run/train.log" | tail -n 1 | sed 's/^/    /'
        echo "    $(( now - run_start )) s; $(( (now - start) / 60 )) min since the start"
    done
done

"$binary" report "$out" --output "$out/report.html" | tee "$out/report.md"
echo "experiment: $(( ($(date +%s) - start) / 60 )) minutes; open $out/report.html"
exit 0
}
