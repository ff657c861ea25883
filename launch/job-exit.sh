# Sourced by launch/local.sh and launch/cluster.sh: runs the job and explains how it ended.
#
#   resume=$(resume_command "$0" "$@")   # at the top, before the arguments are consumed
#   run_job "$resume" COMMAND…
#
# Runs COMMAND (timeout … mpirun …) in the background and waits for it, forwarding SIGINT,
# SIGTERM and SIGHUP to it (so the script can speak after the job ends, as `exec` could not).
# When the job ended with pskd's stall exit code (75: the stall watchdog found a rank without
# progress and ended the job), it says where the diagnosis is and what to run to continue:
# the launcher's own command line with --resume. Returns the job's exit status.

# The command line given, quoted for a shell, with --resume added unless it is there, and
# without --overwrite (or --overwrite=…): pskd refuses --resume with --overwrite, and replacing
# the run is not what continuing it means.
resume_command() {
    local word quoted="" resumes=false
    for word in "$@"; do
        case "$word" in
            --overwrite|--overwrite=*) continue ;;
            --resume) resumes=true ;;
        esac
        quoted+="$(printf '%q' "$word") "
    done
    if $resumes; then echo "${quoted% }"; else echo "${quoted}--resume"; fi
}

# The exit status of a job ended by pskd's stall watchdog (Watchdog/StallWatchdog.swift).
readonly PSKD_STALL_EXIT=75

run_job() {
    local resume="$1"
    shift
    "$@" &
    local child=$!
    trap 'kill -INT $child 2>/dev/null' INT
    trap 'kill -TERM $child 2>/dev/null' TERM
    trap 'kill -HUP $child 2>/dev/null' HUP
    local status=0
    while :; do
        wait "$child" && status=0 || status=$?
        kill -0 "$child" 2>/dev/null || break  # wait returned for a trapped signal: the job still runs
    done
    trap - INT TERM HUP
    if [ "$status" -eq "$PSKD_STALL_EXIT" ]; then
        echo "${resume%% *}: the stall watchdog ended the job (exit code $PSKD_STALL_EXIT): a rank made no progress;" \
             "the run directory's stall.json has every rank's last heartbeat. Continue from the newest complete checkpoint with:" >&2
        echo "  $resume" >&2
    fi
    return "$status"
}
