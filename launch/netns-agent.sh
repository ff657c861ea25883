#!/bin/sh
# A launch agent for Open MPI (its `plm_rsh_agent`, used in place of ssh) that treats local
# network namespaces as nodes: the "host" is the name of a namespace (`ip netns add NAME`), and
# the command runs inside it, in its own UTS namespace whose host name is NAME, so MPI sees one
# node per namespace. This is how the tests run multi-node jobs on one machine; on a real
# cluster use ssh (the default).
#
#   mpirun --mca plm_rsh_agent "$PWD/launch/netns-agent.sh" --hostfile HOSTS …
#   (or launch/cluster.sh --launch-agent launch/netns-agent.sh …)
#
# mpirun calls it as `netns-agent.sh [ssh options…] HOST COMMAND…`; like sshd, it evaluates the
# command words joined by spaces as one shell command line. Needs root (ip netns exec, unshare).
set -eu
while [ $# -gt 0 ]; do
    case "$1" in
        -*) shift ;;  # options meant for ssh (-x, …) mean nothing here
        *) break ;;
    esac
done
if [ $# -lt 2 ]; then
    echo "netns-agent.sh: usage: netns-agent.sh HOST COMMAND…" >&2
    exit 255
fi
host="$1"
shift
if ! ip netns list | awk '{print $1}' | grep -qx -- "$host"; then
    echo "netns-agent.sh: no network namespace '$host' (create it with 'ip netns add $host')" >&2
    exit 255
fi
exec ip netns exec "$host" unshare --uts sh -c 'hostname "$0" && eval "$*"' "$host" "$@"
