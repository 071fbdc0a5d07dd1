#!/usr/bin/env bash
# format-check.sh: fail when a C file differs from what .clang-format
# makes of it, and list those files. `make format` fixes them.
#
# Checks every *.c and *.h that git tracks or would track (untracked but
# not ignored), so a new file is checked before its first commit.
# CLANG_FORMAT names the binary (default clang-format; the style is
# checked against Debian 12's clang-format 14).
#
# With --fix it rewrites the same files in place instead (`make format`),
# so the check and the fix always agree on which files count.
set -euo pipefail
cd "$(dirname "$0")/.."

CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
fix=0
if [ "${1:-}" = --fix ]; then
	fix=1
fi

list_sources() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files -co --exclude-standard -z -- '*.c' '*.h'
	else
		find . \( -path ./.git -o -path './build*' \) -prune -o \
		    \( -name '*.c' -o -name '*.h' \) -printf '%P\0'
	fi
}

bad=()
checked=0
while IFS= read -r -d '' f; do
	# ls-files -c still lists a tracked file deleted from the tree.
	[ -f "$f" ] || continue
	checked=$((checked + 1))
	if [ $fix = 1 ]; then
		"$CLANG_FORMAT" -i "$f"
	elif ! "$CLANG_FORMAT" --dry-run --Werror "$f" >/dev/null 2>&1; then
		bad+=("$f")
	fi
done < <(list_sources)

if [ ${#bad[@]} -ne 0 ]; then
	echo "format-check: ${#bad[@]} of $checked files differ from .clang-format:" >&2
	printf '  %s\n' "${bad[@]}" >&2
	echo "format-check: run 'make format', or '$CLANG_FORMAT --dry-run FILE' to see the diff." >&2
	exit 1
fi
