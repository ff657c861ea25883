#!/usr/bin/env bash
# An experiment: one recipe (data set, model, budget) trained under several target policies and
# seeds with the same data and budget, each run in its own directory under the experiment
# folder (POLICY-seedS), then `pskd report` on all of them (report.html and the Markdown table
# in report.md).
#
#   launch/experiment.sh [--recipe NAME] [--policies "ce ls pskd"] [--out DIR] [--seeds "1 2 3"]
#                        [--epochs N] [--train-samples K|all] [--model M] [--data-dir DIR]
#                        [--ranks R] [--time-limit SECONDS] [--full] [--dry-run] [-- extra pskd train flags…]
#
# Recipes (--recipe NAME; each is one block of the `case "$recipe"` below):
#   fashion-mnist       the default: cnn, 30 epochs of the first 4 000 Fashion-MNIST training images (so that
#                       cross-entropy has time to grow overconfident), cosine schedule, crop padding 2 + flip,
#                       ECE with 15 bins; policies ce ls pskd. ~32 minutes on an idle 2-core machine.
#   fashion-mnist-full  (also --full) the paper's budget on Fashion-MNIST: PreAct ResNet-18, 200 epochs, all data,
#                       lr divided by 10 at 50 % and 75 % of training, crop padding 4 + flip; for a cluster.
#   fashion-mnist-noisy where self-distillation matters: 40 % symmetric label noise on the first 4 000 Fashion-MNIST
#                       training images (the test set clean), mlp, 100 epochs, cosine schedule, flip only (no crop,
#                       so that cross-entropy can memorise the noise), ECE with 15 bins; policies
#                       ce ls cs-kd tf-kd-reg tf-kd-self pskd. ~50 minutes on a 2-core machine.
#   fashion-mnist-clean the same with clean labels, for contrast.
#   cifar100-paper      the PS-KD paper's CIFAR-100 setting: PreAct ResNet-18, 300 epochs, batch 128, SGD with
#                       Nesterov momentum 0.9, weight decay 5e-4, lr 0.1 divided by 10 after epochs 150 and 225,
#                       crop padding 4 + flip, α_T = 0.8, ε = 0.1, ECE with 10 bins (the official code's); the
#                       paper's five columns ce ls cs-kd tf-kd-self pskd. Needs --data-dir with the CIFAR-100
#                       binary version (train.bin, test.bin). 1.5 to 3 months on a 2-core machine (--dry-run): a cluster.
#
# Every run is `pskd train` with the recipe's settings, then the flags after -- (and unknown flags), which
# override them, then --policy P --seed S. --policies replaces the recipe's list; a policy name goes to
# `pskd train --policy` as it is. For each seed the ce run comes first: a tf-kd-self run (Tf-KD's self-training,
# teacher = a model of the same architecture trained with cross-entropy) gets --teacher-checkpoint OUT/ce-seedS,
# so a list with tf-kd-self must hold ce (checked before anything starts).
#
# ECE with another bin count: the report's ECE uses the bins the runs were trained with (the reliability bins
# of metrics.jsonl cannot be re-binned). A recipe with `also_ece_bins` (cifar100-paper: 15, torchmetrics'
# default) runs `pskd evaluate --checkpoint RUN --ece-bins 15 --json` on each finished run, saves it as
# RUN/ece-15bins.json, and adds a table of it (mean ± std over seeds) to report.md and report.html.
#
# --dry-run prints every run's command line, in order, and an estimated time from one step measured on THIS
# machine (`pskd bench` with the recipe's model, data set shape and batch, the same ranks and threads); it needs
# neither the data files nor the experiment folder and writes nothing.
# Runs already complete are skipped and interrupted ones resume from their last checkpoint, so the same
# command continues an interrupted experiment. A run that fails (a policy that diverges, say) does not stop
# the others: the report covers the finished runs, the failed ones are named, and the exit status is 1. Each run has a wall-clock limit (--time-limit, default 30 days;
# a hung job is ended sooner by pskd's stall watchdog, exit code 75).
#
# On a cluster: PSKD_LAUNCH names the launcher of each run (default launch/local.sh on this node; it gets
# -n RANKS --time-limit SECONDS, then the `pskd train` arguments), e.g. on the nodes of a hostfile, with the
# data, the experiment folder and the pskd checkout on a file system all nodes share:
#   PSKD_LAUNCH="launch/cluster.sh --hostfile hosts" launch/experiment.sh --recipe cifar100-paper \
#       --ranks 16 --data-dir /shared/cifar-100-binary --out /shared/runs/cifar100-paper
set -euo pipefail
# One { … } group: bash reads it whole before running, so editing this file during an hour-long
# experiment cannot change what the running one does.
{
root="$(cd "$(dirname "$0")/.." && pwd)"
me="launch/experiment.sh"
source "$root/launch/options.sh"

recipe=fashion-mnist
out="$root/runs/experiment"
seeds="1 2 3"
ranks=2
time_limit=$(( 30 * 24 * 3600 ))
dry_run=false
data_dir=""
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --recipe) need_value "$@"; recipe="$2"; shift 2 ;;
        --full) recipe=fashion-mnist-full; shift ;;
        --policies)
            # An empty list is refused below, with its own message.
            [ $# -ge 2 ] || need_value "$1"
            policies_given="$2"; shift 2 ;;
        --out) need_value "$@"; out="$2"; shift 2 ;;
        --seeds)
            need_value "$@"
            [[ "$2" =~ ^[[:space:]]*[0-9]+([[:space:]]+[0-9]+)*[[:space:]]*$ ]] ||
                { echo "$me: --seeds takes whole numbers separated by spaces (\"1 2 3\"), not '$2'" >&2; exit 2; }
            seeds="$2"; shift 2 ;;
        --epochs) need_value "$@"; positive_integer "$1" "$2" epochs; epochs_given="$(( 10#$2 ))"; shift 2 ;;
        --train-samples)
            need_value "$@"
            samples_given=all
            [ "$2" = all ] || { positive_integer "$1" "$2" "training images (or all)"; samples_given="$(( 10#$2 ))"; }
            shift 2 ;;
        --model) need_value "$@"; model_given="$2"; shift 2 ;;
        --data-dir) need_value "$@"; data_dir="$2"; shift 2 ;;
        --ranks|-n) need_value "$@"; positive_integer "$1" "$2" ranks; ranks="$(( 10#$2 ))"; shift 2 ;;
        --time-limit) need_value "$@"; positive_integer "$1" "$2" seconds; time_limit="$(( 10#$2 ))"; shift 2 ;;
        --dry-run) dry_run=true; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        --) shift; extra+=("$@"); break ;;
        *) extra+=("$1"); shift ;;
    esac
done

# The experiment folder as an absolute path: a run's settings name files in it (tf-kd-self's
# --teacher-checkpoint), and --resume refuses a setting spelled otherwise than when the run began.
out="$(realpath -m "$out")"

# The recipes. Milestones are epochs, or percentages of the epochs ("50%,75%"). data_files: the
# files --data-dir must hold (checked before anything starts; empty: pskd's default location).
# train_total and test_total are the data set's sizes (for the estimate).
also_ece_bins=""
data_files=""
case "$recipe" in
    fashion-mnist)
        dataset=fashion-mnist; model=cnn; epochs=30; train_samples=4000
        lr=0.1; schedule=cosine; milestones=""; crop_padding=2; flip=true; batch_size=128
        ece_bins=15; label_noise=0; policies="ce ls pskd"
        train_total=60000; test_total=10000 ;;
    fashion-mnist-full)
        dataset=fashion-mnist; model=preact-resnet18; epochs=200; train_samples=all
        lr=0.1; schedule=step; milestones="50%,75%"; crop_padding=4; flip=true; batch_size=128
        ece_bins=15; label_noise=0; policies="ce ls pskd"
        train_total=60000; test_total=10000 ;;
    fashion-mnist-noisy|fashion-mnist-clean)
        dataset=fashion-mnist; model=mlp; epochs=100; train_samples=4000
        lr=0.1; schedule=cosine; milestones=""; crop_padding=0; flip=true; batch_size=128
        ece_bins=15; policies="ce ls cs-kd tf-kd-reg tf-kd-self pskd"
        label_noise=$([ "$recipe" = fashion-mnist-noisy ] && echo 0.4 || echo 0)
        train_total=60000; test_total=10000 ;;
    cifar100-paper)
        dataset=cifar100; model=preact-resnet18; epochs=300; train_samples=all
        lr=0.1; schedule=step; milestones="150,225"; crop_padding=4; flip=true; batch_size=128
        ece_bins=10; also_ece_bins=15; label_noise=0; policies="ce ls cs-kd tf-kd-self pskd"
        data_files="train.bin test.bin"; train_total=50000; test_total=10000 ;;
    *)
        echo "$me: unknown recipe '$recipe': choose one of fashion-mnist, fashion-mnist-full, fashion-mnist-noisy, fashion-mnist-clean, cifar100-paper" >&2
        exit 2 ;;
esac
epochs="${epochs_given:-$epochs}"
train_samples="${samples_given:-$train_samples}"
model="${model_given:-$model}"
policies="${policies_given:-$policies}"

# Percentages of the epochs become epochs.
if [[ "$milestones" == *%* ]]; then
    converted=""
    for m in ${milestones//,/ }; do converted+="${converted:+,}$(( epochs * ${m%\%} / 100 ))"; done
    milestones="$converted"
fi

# The policies in run order: ce first (a tf-kd-self run reads ce's model), each once.
ordered=()
for policy in $policies; do
    if ! [[ "$policy" =~ ^[a-z0-9][a-z0-9-]*$ ]]; then
        echo "$me: '$policy' is not a policy name (lower-case letters, digits and -)" >&2
        exit 2
    fi
    [[ " ${ordered[*]:-} " == *" $policy "* ]] || ordered+=("$policy")
done
if [ ${#ordered[@]} -eq 0 ]; then
    echo "$me: no policies to run (--policies is empty)" >&2
    exit 2
fi
if [[ " ${ordered[*]} " == *" ce "* ]]; then
    rest=()
    for policy in "${ordered[@]}"; do [ "$policy" = ce ] || rest+=("$policy"); done
    ordered=(ce ${rest[@]+"${rest[@]}"})
fi
# A policy that distils a teacher trained with cross-entropy: its run's extra arguments.
policy_arguments() {  # policy seed
    case "$1" in
        tf-kd-self) echo "--teacher-checkpoint"; echo "$out/ce-seed$2" ;;
    esac
}
for policy in "${ordered[@]}"; do
    if [ "$policy" = tf-kd-self ] && [ "${ordered[0]}" != ce ]; then
        echo "$me: the policy tf-kd-self distils the same seed's ce run (--teacher-checkpoint OUT/ce-seedS)," \
             "but the policies (${ordered[*]}) do not include ce: add ce" >&2
        exit 2
    fi
done

# The settings every run shares (in this order, so the plan of the default recipe reads as before).
common=(--dataset "$dataset" --batch-size "$batch_size" --lr "$lr" --optimizer sgd --momentum 0.9 --nesterov true
        --weight-decay 5e-4 --flip "$flip" --ece-bins "$ece_bins" --alpha-t 0.8 --label-smoothing 0.1 --keep-checkpoints 1)
[ "$label_noise" = 0 ] || common+=(--label-noise "$label_noise")
common+=(--lr-schedule "$schedule")
[ -z "$milestones" ] || common+=(--milestones "$milestones")
common+=(--crop-padding "$crop_padding" --model "$model" --epochs "$epochs")
[ "$train_samples" = all ] || common+=(--max-train-samples "$train_samples")
# The data folder is not part of the plan: pskd lets a resumed run read its data from elsewhere.
# (Given after -- instead, it stays there and is only looked at for the check of the data files.)
data_arguments=()
data_files_dir="$data_dir"
for (( i = 0; i < ${#extra[@]}; i++ )); do
    case "${extra[i]}" in
        --data-dir) data_files_dir="${extra[i + 1]:-}" ;;
        --data-dir=*) data_files_dir="${extra[i]#--data-dir=}" ;;
    esac
done
if [ -n "$data_dir" ]; then
    [ -d "$data_dir" ] && data_dir="$(cd "$data_dir" && pwd)"
    data_arguments=(--data-dir "$data_dir")
fi

seed_list=($seeds)
run_count=$(( ${#ordered[@]} * ${#seed_list[@]} ))
samples=$([ "$train_samples" = all ] && echo "$train_total" || echo "$train_samples")
launch_command=(${PSKD_LAUNCH:-$root/launch/local.sh})
# A launcher named relative to the checkout (launch/cluster.sh) works from any directory.
[[ "${launch_command[0]}" == /* || -e "${launch_command[0]}" || ! -e "$root/${launch_command[0]}" ]] ||
    launch_command[0]="$root/${launch_command[0]}"
binary="${PSKD_BIN:-$root/.build/release/pskd}"

# The command lines, in order: each run, and after it its evaluation with other ECE bins.
run_command() {  # policy seed
    local run="$out/$1-seed$2"
    local more=()
    mapfile -t more < <(policy_arguments "$1" "$2")
    command_line=("${launch_command[@]}" -n "$ranks" --time-limit "$time_limit"
        "${common[@]}" ${data_arguments[@]+"${data_arguments[@]}"} ${extra[@]+"${extra[@]}"}
        --policy "$1" ${more[@]+"${more[@]}"} --seed "$2" --out "$run" --resume)
}
evaluate_command() {  # run
    command_line=("${launch_command[@]}" -n "$ranks" --time-limit "$time_limit" --command evaluate
        --checkpoint "$1" --ece-bins "$also_ece_bins" --json)
}
ece_file() { echo "$1/ece-${also_ece_bins}bins.json"; }

# A command line as a shell would read it back (words that need it quoted).
quoted() {
    local word line=""
    for word in "$@"; do
        if [[ "$word" =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then line+=" $word"; else line+=" $(printf '%q' "$word")"; fi
    done
    echo "${line# }"
}

echo "experiment: recipe $recipe: ${ordered[*]} × seeds ${seeds} = $run_count runs of $model on $dataset, $epochs epochs,"
echo "            $samples training images (all $test_total test images), $ranks ranks each, into $out"
echo "            every run: pskd train $(quoted "${common[@]}" ${data_arguments[@]+"${data_arguments[@]}"} ${extra[@]+"${extra[@]}"}) --policy P --seed S"
[ -z "$also_ece_bins" ] || echo "            and, on each finished run, pskd evaluate --ece-bins $also_ece_bins (ECE with $also_ece_bins bins as well as $ece_bins)"

if $dry_run; then
    echo "plan (every command, in order):"
    index=0
    for seed in "${seed_list[@]}"; do
        for policy in "${ordered[@]}"; do
            index=$(( index + 1 ))
            run_command "$policy" "$seed"
            echo "  [$index/$run_count] $(quoted "${command_line[@]}")"
            if [ -n "$also_ece_bins" ]; then
                evaluate_command "$out/$policy-seed$seed"
                echo "  [$index/$run_count] $(quoted "${command_line[@]}") > $(quoted "$(ece_file "$out/$policy-seed$seed")")"
            fi
        done
    done
    echo "  then: $(quoted "$binary" report "$out" --output "$out/report.html")"

    # The estimate: one training step measured on this machine with the runs' ranks and threads.
    if [ ! -x "$binary" ]; then
        echo "estimate:   unavailable: $binary not found (run launch/setup.sh, or set PSKD_BIN)"
        exit 0
    fi
    load="$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo unknown) on $(nproc) cores"
    per_rank=$(( batch_size / ranks ))
    [ "$per_rank" -ge 2 ] || per_rank=2
    bench=(--command bench --model "$model" --dataset "$dataset" --batch-size "$per_rank" --steps 3 --warmup 1 --json)
    if ! measured="$("$root/launch/local.sh" -n "$ranks" --time-limit 600 "${bench[@]}" 2>/dev/null | grep '^{' | tail -n 1)" \
            || [ -z "$measured" ]; then
        echo "estimate:   unavailable: launch/local.sh -n $ranks ${bench[*]} failed"
        exit 0
    fi
    field() { echo "$measured" | grep -o "\"$1\":[-0-9.eE+]*" | cut -d: -f2; }
    ce_ms=$(field milliseconds_per_step); pskd_ms=$(field pskd_milliseconds_per_step); threads=$(field threads)
    steps_per_epoch=$(( (samples + batch_size - 1) / batch_size ))
    # Evaluating a test image is a forward pass: assumed 1/3 of training one (forward + backward +
    # update); cnn on Fashion-MNIST measured 0.33 (an epoch's seconds minus its training time).
    # tf-kd-self adds its teacher's forward pass to each step; cs-kd, tf-kd-reg, ls: as ce.
    step_counts=""
    for policy in "${ordered[@]}"; do
        case "$policy" in
            pskd) step_counts+=" pskd" ;;
            tf-kd-self) step_counts+=" teacher" ;;
            *) step_counts+=" ce" ;;
        esac
    done
    seeds_count=${#seed_list[@]}
    evaluations=$([ -n "$also_ece_bins" ] && echo 1 || echo 0)
    awk -v ce="$ce_ms" -v pskd="$pskd_ms" -v steps="$steps_per_epoch" -v epochs="$epochs" -v seeds="$seeds_count" \
        -v kinds="$step_counts" -v tests="$test_total" -v batch="$batch_size" -v evaluations="$evaluations" \
        -v runs="$run_count" -v ranks="$ranks" -v threads="$threads" -v model="$model" -v dataset="$dataset" \
        -v per_rank="$per_rank" -v load="$load" 'BEGIN {
        eval_step = ce / 3                                   # ms per batch of test images
        test_batches = (tests + batch - 1) / batch
        n = split(kinds, kind, " ")
        total = 0
        for (i = 1; i <= n; i++) {
            step = kind[i] == "pskd" ? pskd : (kind[i] == "teacher" ? ce + eval_step : ce)
            run = epochs * (steps * step + test_batches * eval_step) + evaluations * test_batches * eval_step + 3000
            total += seeds * run / 1000
        }
        if (total < 7200) span = sprintf("%.0f minutes", total / 60)
        else if (total < 172800) span = sprintf("%.1f hours", total / 3600)
        else span = sprintf("%.1f days (%.0f hours)", total / 86400, total / 3600)
        printf "estimate:   ~%s for the %d runs on THIS machine with %d rank(s) × %d thread(s), from one\n", span, runs, ranks, threads
        printf "            measured step (pskd bench, %s on %s-shaped samples, batch %d per rank): cross-entropy %.0f ms,\n", model, dataset, per_rank, ce
        printf "            PS-KD %.0f ms; %d steps per epoch × %d epochs per run, plus the %d test images every epoch, assumed\n", pskd, steps, epochs, tests
        printf "            to cost 1/3 of training as many (forward only); tf-kd-self steps add that forward pass for the teacher;\n"
        printf "            other policies cost as cross-entropy. Flags after -- are not in the estimate. Load average\n"
        printf "            before the measurement: %s (other jobs slow the step and so raise the estimate).\n", load
    }'
    exit 0
fi

if [ -n "$data_files" ]; then
    missing=()
    for name in $data_files; do
        [ -n "$data_files_dir" ] && [ -r "$data_files_dir/$name" ] || missing+=("$name")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "$me: the recipe $recipe reads $dataset from --data-dir DIR with $(echo "$data_files" | sed 's/ / and /g');" >&2
        if [ -z "$data_files_dir" ]; then
            echo "  no --data-dir was given" >&2
        else
            echo "  missing in $data_files_dir: ${missing[*]}" >&2
        fi
        [ "$dataset" != cifar100 ] ||
            echo "  (cifar-100-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html unpacks to a folder with them)" >&2
        exit 2
    fi
fi

if [ ! -x "$binary" ]; then
    echo "$me: $binary not found: run launch/setup.sh first (or set PSKD_BIN)" >&2
    exit 2
fi
echo "estimate:   see --dry-run (it measures a training step on this machine)"

# The folder records its plan; continuing it with other settings would mix two budgets.
mkdir -p "$out"
plan="pskd train ${common[*]} ${extra[*]:-} --policy P --seed S; ranks $ranks"
if [ -f "$out/plan.txt" ] && [ "$(cat "$out/plan.txt")" != "$plan" ]; then
    echo "$me: $out holds an experiment with other settings:" >&2
    echo "  $(cat "$out/plan.txt")" >&2
    echo "choose another --out (or remove that folder)" >&2
    exit 2
fi
echo "$plan" > "$out/plan.txt"
start=$(date +%s)
done_runs=0
failed=()
for seed in "${seed_list[@]}"; do
    for policy in "${ordered[@]}"; do
        run="$out/$policy-seed$seed"
        done_runs=$(( done_runs + 1 ))
        if [ -f "$run/metrics.jsonl" ] && [ "$(grep -c . "$run/metrics.jsonl")" -ge "$epochs" ]; then
            echo "[$done_runs/$run_count] $run is complete: skipped"
        else
            mkdir -p "$run"
            echo "[$done_runs/$run_count] $policy, seed $seed → $run (log: $run/train.log)"
            run_start=$(date +%s)
            run_command "$policy" "$seed"
            # --resume: an interrupted run continues from its newest checkpoint (a new one starts at epoch 1).
            if ! "${command_line[@]}" >> "$run/train.log" 2>&1; then
                # One failed run (a policy that diverges, say) does not stop the others: the report
                # covers the runs that finished and names the ones that did not.
                echo "$me: the run $run failed; the end of its log:" >&2
                tail -n 20 "$run/train.log" >&2
                failed+=("$run")
                continue
            fi
            now=$(date +%s)
            grep '^epoch [0-9]*: ' "$run/train.log" | tail -n 1 | sed 's/^/    /'
            echo "    $(( now - run_start )) s; $(( (now - start) / 60 )) min since the start"
        fi
        if [ -n "$also_ece_bins" ]; then
            ece="$(ece_file "$run")"
            if ! grep -q "\"epoch\":$epochs[,}]" "$ece" 2>/dev/null; then
                evaluate_command "$run"
                if ! "${command_line[@]}" 2>> "$run/train.log" | grep '^{' | tail -n 1 > "$ece.partial" || [ ! -s "$ece.partial" ]; then
                    echo "$me: pskd evaluate --ece-bins $also_ece_bins failed on $run; the end of its log:" >&2
                    tail -n 20 "$run/train.log" >&2
                    exit 1
                fi
                mv "$ece.partial" "$ece"
            fi
            echo "    ECE with $also_ece_bins bins: $(grep -o '"test_ece":[-0-9.eE+]*' "$ece" | cut -d: -f2 | xargs printf '%.2f') % ($ece)"
        fi
    done
done

finished=()
for seed in "${seed_list[@]}"; do
    for policy in "${ordered[@]}"; do
        run="$out/$policy-seed$seed"
        [[ " ${failed[*]:-} " == *" $run "* ]] || finished+=("$run")
    done
done
if [ ${#finished[@]} -eq 0 ]; then
    echo "$me: every run failed (${failed[*]}); no report" >&2
    exit 1
fi
"$binary" report "${finished[@]}" --output "$out/report.html" | tee "$out/report.md"
if [ -n "$also_ece_bins" ]; then
    # ECE with the other bin count, per policy (mean ± sample std over the seeds, as pskd report).
    rows=""
    for policy in "${ordered[@]}"; do
        values=""
        for seed in "${seed_list[@]}"; do
            [ -f "$(ece_file "$out/$policy-seed$seed")" ] || continue
            values+=" $(grep -o '"test_ece":[-0-9.eE+]*' "$(ece_file "$out/$policy-seed$seed")" | cut -d: -f2)"
        done
        [ -z "$values" ] || rows+="$policy$values"$'\n'
    done
    # policy mean std count, one line per policy
    stats="$(printf '%s' "$rows" | awk '{
            n = NF - 1; sum = 0; for (i = 2; i <= NF; i++) sum += $i; mean = sum / n
            squares = 0; for (i = 2; i <= NF; i++) squares += ($i - mean) ^ 2
            printf "%s %.2f %.2f %d\n", $1, mean, (n > 1 ? sqrt(squares / (n - 1)) : 0), n
        }')"
    caption="ECE (%) with $also_ece_bins equal-width bins (pskd evaluate --ece-bins $also_ece_bins on each run's final checkpoint; the tables above use $ece_bins), mean ± std over seeds:"
    {
        printf '\n%s\n\n| Policy | ECE (%%), %s bins | Runs |\n|---|---|---|\n' "$caption" "$also_ece_bins"
        printf '%s\n' "$stats" | awk '{ printf "| %s | %s ± %s | %s |\n", $1, $2, $3, $4 }'
    } | tee -a "$out/report.md"
    # The same table in the HTML page, as its last section.
    html="<section id=\"ece-$also_ece_bins-bins\"><h2>ECE with $also_ece_bins bins</h2><p>$caption</p>"
    html+="<table class=\"metrics\"><thead><tr><th>policy</th><th>ECE (%), $also_ece_bins bins</th><th>runs</th></tr></thead><tbody>"
    html+="$(printf '%s\n' "$stats" | awk '{ printf "<tr><th scope=\"row\">%s</th><td>%s ± %s</td><td>%s</td></tr>", $1, $2, $3, $4 }')"
    html+="</tbody></table></section>"
    for mark in '<footer' '</main>' '</body>'; do
        grep -q "$mark" "$out/report.html" || continue
        INSERT="$html" MARK="$mark" awk '{
                i = index($0, ENVIRON["MARK"])
                if (i && !done) { $0 = substr($0, 1, i - 1) ENVIRON["INSERT"] substr($0, i); done = 1 }
                print
            }' "$out/report.html" > "$out/report.html.partial" && mv "$out/report.html.partial" "$out/report.html"
        break
    done
fi
echo "experiment: $(( ($(date +%s) - start) / 60 )) minutes; open $out/report.html"
if [ ${#failed[@]} -gt 0 ]; then
    echo "$me: ${#failed[@]} of $run_count runs failed and are not in the report: ${failed[*]}" >&2
    echo "  (their logs: RUN/train.log; the same command retries them and skips the finished ones)" >&2
    exit 1
fi
exit 0
}
