#!/usr/bin/env bash
# Formats the Swift sources with the toolchain's swift-format and the repository's .swift-format.
#   launch/format.sh          rewrite Package.swift, Sources/ and Tests/ in place
#   launch/format.sh --check  change nothing; list every difference and exit nonzero if there is one
set -euo pipefail
cd "$(dirname "$0")/.."

mode=apply
case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    *) echo "usage: launch/format.sh [--check]" >&2; exit 2 ;;
esac

files=(Package.swift)
while IFS= read -r -d '' file; do files+=("$file"); done < <(find Sources Tests -name '*.swift' -print0 | sort -z)

if [[ $mode == check ]]; then
    # --strict makes every finding (formatting or rule) an error, so the exit status is nonzero.
    exec swift format lint --strict --parallel --configuration .swift-format "${files[@]}"
else
    exec swift format format --in-place --parallel --configuration .swift-format "${files[@]}"
fi
