# Sourced by launch/local.sh, launch/cluster.sh and launch/experiment.sh: the checks of their own
# options. Each failure names the script ($me), the option, what it needs and what it got, and
# exits with status 2 (nothing was started).

# At an option that takes a value ("$@" from the option on): fails when none follows.
need_value() {
    if [ $# -lt 2 ] || [ -z "$2" ]; then
        echo "$me: $1 needs a value (see the usage at the top of $me)" >&2
        exit 2
    fi
}

# OPTION VALUE WHAT: fails unless VALUE is a whole number from 1 to 999999999 (a count of WHAT).
positive_integer() {
    if ! [[ "$2" =~ ^[0-9]{1,9}$ ]] || [ "$(( 10#$2 ))" -lt 1 ]; then
        echo "$me: $1 takes a whole number of $3 from 1 to 999999999, not '$2'" >&2
        exit 2
    fi
}

# OPTION VALUE: fails unless VALUE names a pskd subcommand (lower-case letters), not another option.
subcommand_name() {
    if ! [[ "$2" =~ ^[a-z]+$ ]]; then
        echo "$me: $1 takes a pskd subcommand (train, evaluate, bench, info, report), not '$2'" >&2
        exit 2
    fi
}
