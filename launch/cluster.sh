#!/usr/bin/env bash
# Runs `pskd train` across the nodes of a hostfile (default: the top-level `hosts`) under
# mpirun; every argument it does not know goes to `pskd train`. It sets what users should not
# have to know: running as root, `--oversubscribe` only when asked or when there are more ranks
# than slots or cores, the transport (shared memory within a node, TCP between nodes) and the
# network to use, an out-of-band keep-alive so a lost node aborts the job instead of hanging it,
# rank binding with a matching OpenBLAS thread count (each rank's binding is logged at start-up),
# and a hard wall-clock limit.
#
#   launch/cluster.sh [--hostfile FILE] [-n RANKS | --ranks-per-node N] [--threads T]
#                     [--cores-per-node C] [--interface NAME|CIDR] [--transport tcp|auto]
#                     [--launch-agent COMMAND] [--oversubscribe] [--time-limit SECONDS]
#                     [--command SUBCOMMAND] [pskd train args…]
#
# The hostfile has one node per line, `NAME slots=RANKS`, and `#` comments (Open MPI's format).
# The executable (default .build/release/pskd, or $PSKD_BIN) and the run directory (--out) must
# be at the same path on every node: a shared file system, as checkpoints are read by all ranks.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/launch/job-exit.sh"
source "$root/launch/options.sh"
me=launch/cluster.sh
resume="$(resume_command "$0" "$@")"

hostfile="$root/hosts"
ranks=""
ranks_per_node=""
threads=""
cores_per_node=""
interface=""
transport=tcp
agent=""
oversubscribe=false
time_limit=86400
subcommand=train
while [ $# -gt 0 ]; do
    case "$1" in
        --hostfile) need_value "$@"; hostfile="$2"; shift 2 ;;
        -n|--ranks) need_value "$@"; positive_integer "$1" "$2" ranks; ranks="$(( 10#$2 ))"; shift 2 ;;
        --ranks-per-node) need_value "$@"; positive_integer "$1" "$2" "ranks per node"; ranks_per_node="$(( 10#$2 ))"; shift 2 ;;
        --threads) need_value "$@"; positive_integer "$1" "$2" "OpenBLAS threads per rank"; threads="$(( 10#$2 ))"; shift 2 ;;
        --cores-per-node) need_value "$@"; positive_integer "$1" "$2" cores; cores_per_node="$(( 10#$2 ))"; shift 2 ;;
        --interface) need_value "$@"; interface="$2"; shift 2 ;;
        --transport) need_value "$@"; transport="$2"; shift 2 ;;
        --launch-agent) need_value "$@"; agent="$2"; shift 2 ;;
        --oversubscribe) oversubscribe=true; shift ;;
        --time-limit) need_value "$@"; positive_integer "$1" "$2" seconds; time_limit="$(( 10#$2 ))"; shift 2 ;;
        --command) need_value "$@"; subcommand_name "$1" "$2"; subcommand="$2"; shift 2 ;;
        *) break ;;
    esac
done

fail() { echo "launch/cluster.sh: $*" >&2; exit 2; }
case "$transport" in tcp|auto) ;; *) fail "--transport must be tcp or auto, not $transport" ;; esac

binary="${PSKD_BIN:-$root/.build/release/pskd}"
[ -x "$binary" ] || fail "$binary not found: run launch/setup.sh first (or set PSKD_BIN)"
[ -r "$hostfile" ] || fail "hostfile $hostfile not found"
hostfile="$(cd "$(dirname "$hostfile")" && pwd)/$(basename "$hostfile")"

# Cores of a node: as given, else this node's (clusters are usually uniform; say so otherwise).
cores="${cores_per_node:-$(nproc)}"
# The hostfile: node count, total slots and the largest slot count of a node (a node without
# slots= has one per core, as Open MPI counts).
read -r nodes slots max_slots < <(awk -v cores="$cores" '
    { sub(/#.*/, "") } NF == 0 { next }
    { n++; s = cores; for (i = 2; i <= NF; i++) if ($i ~ /^slots=/) { s = substr($i, 7) + 0 }
      total += s; if (s > most) most = s }
    END { print n + 0, total + 0, most + 0 }' "$hostfile")
[ "$nodes" -gt 0 ] || fail "$hostfile lists no node"
[ "$max_slots" -gt 0 ] || fail "$hostfile gives no node a slot (slots=0): give each node slots=RANKS of at least 1"

# Ranks: every slot by default, or N per node, or RANKS in all.
if [ -z "$ranks" ]; then
    if [ -n "$ranks_per_node" ]; then ranks=$(( ranks_per_node * nodes )); else ranks="$slots"; fi
fi
# The most ranks on one node: N per node; or, filling nodes slot by slot, a full node; or, beyond
# the slots, the ranks spread evenly.
per_node="${ranks_per_node:-$(( ranks > slots ? (ranks + nodes - 1) / nodes : ranks < max_slots ? ranks : max_slots ))}"
slots_needed=$(( ranks_per_node ? ranks_per_node * nodes : ranks ))
if [ "$oversubscribe" = false ] && { [ "$slots_needed" -gt "$slots" ] || [ $(( per_node * ${threads:-1} )) -gt "$cores" ]; }; then
    echo "launch/cluster.sh: $ranks rank(s) ($per_node per node × ${threads:-1} thread(s)) exceed the $slots slot(s) of $hostfile or the $cores core(s) of a node: oversubscribing" >&2
    oversubscribe=true
fi

options=(-np "$ranks" --hostfile "$hostfile")
[ "$(id -u)" -eq 0 ] && options+=(--allow-run-as-root)
map="slot"
[ -n "$ranks_per_node" ] && map="ppr:$ranks_per_node:node"
if [ "$oversubscribe" = true ]; then
    # Ranks share cores: no binding, one BLAS thread each unless told otherwise.
    threads="${threads:-1}"
    options+=(--oversubscribe --map-by "$map" --bind-to none)
else
    # Each rank gets cores/ranks-per-node cores of its own, and as many BLAS threads.
    threads="${threads:-$(( cores / per_node > 0 ? cores / per_node : 1 ))}"
    options+=(--map-by "$map:PE=$threads" --bind-to core)
fi
options+=(--report-bindings -x "OPENBLAS_NUM_THREADS=$threads")

# Transport: shared memory inside a node, TCP between nodes ("auto" lets Open MPI choose, e.g.
# UCX on InfiniBand). The interface (a name such as eth1, or a CIDR such as 10.0.0.0/24) is used
# for both MPI traffic and mpirun's own out-of-band channel.
case "$transport" in
    tcp) options+=(--mca pml ob1 --mca btl self,vader,tcp) ;;
    auto) ;;
    *) fail "--transport must be tcp or auto, not $transport" ;;
esac
if [ -n "$interface" ]; then
    options+=(--mca btl_tcp_if_include "$interface" --mca oob_tcp_if_include "$interface")
fi
# Keep-alive on the out-of-band channel: a node that stops answering is declared lost after
# about 5 + 2·3 s and the job aborts (by default TCP would wait for hours).
options+=(--mca oob_tcp_keepalive_time 5 --mca oob_tcp_keepalive_intvl 2 --mca oob_tcp_keepalive_probes 3)
if [ -n "$agent" ]; then
    case "$agent" in
        /*|*" "*) ;;
        *) [ -e "$agent" ] && agent="$(cd "$(dirname "$agent")" && pwd)/$(basename "$agent")" ;;
    esac
    options+=(--mca plm_rsh_agent "$agent")
fi

echo "launch/cluster.sh: $nodes node(s) from $hostfile, $ranks rank(s) ($([ -n "$ranks_per_node" ] && echo "$ranks_per_node per node" || echo "by slots")) × $threads OpenBLAS thread(s), $([ "$oversubscribe" = true ] && echo "oversubscribed, unbound" || echo "bound to $threads core(s) each"), time limit ${time_limit}s" >&2
echo "+ timeout -k 10 $time_limit mpirun ${options[*]} $binary $subcommand $*" >&2
run_job "$resume" timeout -k 10 "$time_limit" mpirun "${options[@]}" "$binary" "$subcommand" "$@"
