#!/usr/bin/env bash
# bench/pipeline.sh: the pipeline benchmark of docs/benchmarks.md, as one
# command. For each case it starts a fresh `evbus run` on a new log (on
# loopback ports 25570-25573), drives it with `evbus bench`, prints the
# bench's figures and the CPU each thread of the bus used per durable
# event, then stops the bus (SIGTERM, by PID) and removes its log.
#
#   bench/pipeline.sh [-b BUILD] [-d SECONDS] [-p PAUSE] [-x 'RUN FLAGS']
#                     [-m GIB] [-- CASE...]
#
# A CASE is the bench flags in one word with commas for spaces, e.g.
# "--producers,2,--batch,64" (after "--"). Without cases, the standard
# set of docs/benchmarks.md runs (about 3 minutes at 8 s per case).
# -x passes flags to `evbus run` (e.g. -x --no-compactor). Between cases
# it runs sync(1) and waits PAUSE seconds (default 3), so that one case's
# writeback does not land in the next.
# -m GIB first writes to GIB of fresh memory once and frees it. On a VM
# whose kernel pages out cold memory (DAMON's "pageout" scheme) and hands
# freed pages back to the host (virtio-balloon), the bus's page cache and
# buffers otherwise land on pages the host must fault in again, which
# cost 30-50% more CPU per event (docs/benchmarks.md).
set -euo pipefail

build=build
secs=8
pause=3
runflags=()
touch_gib=0
while getopts "b:d:p:x:m:" opt; do
	case $opt in
	b) build=$OPTARG ;;
	d) secs=$OPTARG ;;
	p) pause=$OPTARG ;;
	x) read -r -a runflags <<<"$OPTARG" ;;
	m) touch_gib=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))

if [ "$touch_gib" -gt 0 ]; then
	python3 -c '
import mmap, sys
n = int(sys.argv[1]) << 30
m = mmap.mmap(-1, n)
for o in range(0, n, 4096):
    m[o] = 1
' "$touch_gib"
fi

evbus=$build/cli/evbus
[ -x "$evbus" ] || { echo "pipeline.sh: no $evbus (run make build)" >&2; exit 2; }

if [ $# -eq 0 ]; then
	set -- \
	    --producers,1,--batch,64 --producers,2,--batch,64 \
	    --producers,4,--batch,64 \
	    --producers,2,--batch,64,--rate,500000 \
	    --producers,1,--batch,1 --producers,4,--batch,1 \
	    --producers,1,--batch,1,--rate,10000 \
	    --producers,2,--batch,1,--rate,10000 \
	    --producers,1,--batch,1,--confirm \
	    --producers,1,--batch,64,--confirm \
	    --producers,4,--batch,64,--confirm
fi

P=tcp://127.0.0.1
pid=
dir=
cleanup() {
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	[ -n "$dir" ] && rm -rf "$dir" "$dir.log"
	pid= dir=
}
trap cleanup EXIT

# threadcpu PID: "name ticks" per thread of PID (utime + stime).
threadcpu() {
	local t
	for t in /proc/"$1"/task/*; do
		# comm may hold spaces; the fields after it start at ") ".
		awk '{ s = $0; sub(/^[^(]*\(/, "", s); n = s; sub(/\).*$/, "", n);
		       sub(/^.*\) /, "", s); split(s, f, " ");
		       gsub(/ /, "_", n); print n, f[12] + f[13] }' "$t/stat" 2>/dev/null || true
	done | awk '{ c[$1] += $2 } END { for (n in c) print n, c[n] }'
}

hz=$(getconf CLK_TCK)
for c in "$@"; do
	read -r -a flags <<<"${c//,/ }"
	dir=$(mktemp -d)
	"$evbus" run --data "$dir" --pub $P:25570 --ingest $P:25571 \
	    --confirm $P:25572 --ctl $P:25573 --stats-log 0 \
	    ${runflags[@]+"${runflags[@]}"} 2>"$dir.log" &
	pid=$!
	for _ in $(seq 100); do
		grep -q EVB-RUN-READY "$dir.log" 2>/dev/null && break
		sleep 0.1
	done
	grep -q EVB-RUN-READY "$dir.log" || { cat "$dir.log" >&2; exit 1; }
	before=$(threadcpu "$pid")
	out=$("$evbus" bench --ingest $P:25571 --confirm-url $P:25572 \
	    --data "$dir" --duration "$secs" --json "${flags[@]}") || true
	after=$(threadcpu "$pid")
	durable=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["durable"])' "$out" 2>/dev/null || echo 0)
	echo "== ${flags[*]} ${runflags[*]+${runflags[*]}}"
	python3 -c '
import json, sys
try:
    d = json.loads(sys.argv[1])
except ValueError:
    print("   bench failed:", sys.argv[1]); sys.exit(0)
def lat(k, name):
    l = d.get(k)
    if not l: return ""
    return " %s p50 %.2f p99 %.2f p99.9 %.2f max %.2f ms" % (name,
        l["p50"] / 1e3, l["p99"] / 1e3, l["p999"] / 1e3, l["max"] / 1e3)
print("   offered %.0f/s durable %.0f/s lost %d" % (d["offered_per_s"],
      d["durable_per_s"], d["lost"]))
print("  " + lat("durable_latency_us", "durable") + lat("confirm_latency_us", "reply"))
if "cpu_us_per_event" in d:
    print("   bench process CPU %.2f us/event sent (the figures below: the bus)"
          % d["cpu_us_per_event"])
' "$out"
	# CPU per durable event, per thread name, in microseconds.
	join -a1 <(sort <<<"$after") <(sort <<<"$before") |
	    awk -v n="$durable" -v hz="$hz" '
	    { d = $2 - ($3 == "" ? 0 : $3); if (d > 0 && n > 0) {
	        printf "   %-16s %6.2f us/event\n", $1, d / hz * 1e6 / n; t += d } }
	    END { if (n > 0) printf "   %-16s %6.2f us/event\n", "TOTAL", t / hz * 1e6 / n }'
	cleanup
	sync
	sleep "$pause"
done
