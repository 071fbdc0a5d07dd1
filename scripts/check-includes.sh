#!/usr/bin/env bash
# check-includes.sh: enforce the include rules of STYLE.md section 1.
#
#   1. A component's private header X/X_int.h is included only by files
#      inside X/. Components: common proto wal broker collector compactor
#      client cli (and any folder added later: the rule is by name).
#   2. Includes are rooted at the repo top: no "../" anywhere in a path.
#
# Prints "file:line: problem" for each violation and exits 1 if any.
set -euo pipefail
cd "$(dirname "$0")/.."

list_sources() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files -co --exclude-standard -z -- '*.c' '*.h'
	else
		find . \( -path ./.git -o -path './build*' \) -prune -o \
		    \( -name '*.c' -o -name '*.h' \) -printf '%P\0'
	fi
}

status=0
while IFS= read -r -d '' f; do
	[ -f "$f" ] || continue
	# awk prints one line per violation; the include path is the text
	# between the quotes or angle brackets.
	out=$(awk -v file="$f" '
	/^[ \t]*#[ \t]*include[ \t]*[<"]/ {
		line = $0
		sub(/^[ \t]*#[ \t]*include[ \t]*[<"]/, "", line)
		sub(/[>"].*$/, "", line)
		path = line
		if (path ~ /(^|\/)\.\.\//) {
			printf "%s:%d: \"%s\": no ../ in includes; root the path at the repo top\n", file, FNR, path
		}
		if (path ~ /_int\.h$/) {
			n = split(path, seg, "/")
			if (n > 1) {
				owner = seg[1]
			} else {
				owner = path
				sub(/_int\.h$/, "", owner)
				sub(/_.*$/, "", owner)
			}
			if (index(file, owner "/") != 1) {
				printf "%s:%d: \"%s\" is private to %s/; use %s/%s.h\n", file, FNR, path, owner, owner, owner
			}
		}
	}' "$f")
	if [ -n "$out" ]; then
		echo "$out" >&2
		status=1
	fi
done < <(list_sources)

if [ $status -ne 0 ]; then
	echo "check-includes: see the rules at the top of $0" >&2
fi
exit $status
