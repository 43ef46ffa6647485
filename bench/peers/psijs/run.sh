#!/usr/bin/env bash
# Peer benchmark: OpenMined PSI (psi.js, WebAssembly) two-party protocol,
# single-threaded and pinned to one core. See bench/peers/README.md.
#
#   bench/peers/psijs/run.sh [options]
#
# Options:
#   --sizes "4096 65536 262144 1048576"  set sizes per party (default: these four)
#   --skip-1m                            leave out 2^20 (1048576)
#   --max-n N                            leave out sizes above N
#   --modes "intersection cardinality"   revealIntersection true / false (default: both)
#   --ds gcs|raw|bloom                   server setup data structure (default gcs)
#   --fpr F                              false-positive rate for the setup (default 1e-9; bench.mjs raises it
#                                        where psi.js would overflow, see bench.mjs)
#   --reps-small R                       runs per size for sizes <= --small-max; the table keeps the best (default 3)
#   --small-max N                        (default 4096)
#   --timeout S                          per-run time limit in seconds (default 900); a size that
#                                        times out is recorded and the larger sizes of that mode skipped
#   --core C                             CPU to pin to with taskset (default 0)
#   --out FILE                           JSON lines (default bench/peers/psijs/results-<date>.jsonl)
#   --mpsi                               afterwards run mpsi's BenchmarkTwoParty on the same core
#   --mpsi-maxn N                        largest size for it (default 65536)
#
# Each run prints one JSON line (also appended to --out); a table follows.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
sizes="4096 65536 262144 1048576"
modes="intersection cardinality"
ds=gcs
fpr=1e-9
reps_small=3
small_max=4096
timeout_s=900
core=0
max_n=0
out=""
run_mpsi=0
mpsi_maxn=65536

while [ $# -gt 0 ]; do
	case "$1" in
	--sizes) sizes=$2; shift 2 ;;
	--skip-1m) max_n=524288; shift ;;
	--max-n) max_n=$2; shift 2 ;;
	--modes) modes=$2; shift 2 ;;
	--ds) ds=$2; shift 2 ;;
	--fpr) fpr=$2; shift 2 ;;
	--reps-small) reps_small=$2; shift 2 ;;
	--small-max) small_max=$2; shift 2 ;;
	--timeout) timeout_s=$2; shift 2 ;;
	--core) core=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--mpsi) run_mpsi=1; shift ;;
	--mpsi-maxn) mpsi_maxn=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/{/^#/p}' "$0"; exit 0 ;;
	*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
[ -n "$out" ] || out="$here/results-$(date -u +%Y%m%dT%H%M%SZ).jsonl"

cd "$here"
if [ ! -d node_modules/@openmined/psi.js ]; then
	# --ignore-scripts: a transitive dependency (protoc-gen-js) downloads a
	# protoc plugin from GitHub in its postinstall; psi.js does not use it at run time.
	npm ci --ignore-scripts --no-audit --no-fund
fi

echo "# machine: nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')\" node=$(node --version) core=$core"
echo "# start: $(date -u +%FT%TZ) $(uptime)"
for mode in $modes; do
	for n in $sizes; do
		if [ "$max_n" -gt 0 ] && [ "$n" -gt "$max_n" ]; then
			continue
		fi
		reps=1
		[ "$n" -le "$small_max" ] && reps=$reps_small
		status=ok
		for ((r = 0; r < reps; r++)); do
			set +e
			timeout "$timeout_s" taskset -c "$core" node bench.mjs --n "$n" --mode "$mode" --ds "$ds" --fpr "$fpr" | tee -a "$out"
			rc=${PIPESTATUS[0]}
			set -e
			if [ "$rc" -eq 124 ]; then
				status=timeout
				line="{\"peer\":\"openmined-psi.js\",\"mode\":\"$mode\",\"ds\":\"$ds\",\"n\":$n,\"rep\":$r,\"status\":\"timeout\",\"timeout_s\":$timeout_s,\"date\":\"$(date -u +%FT%TZ)\"}"
				echo "$line" | tee -a "$out"
				break
			elif [ "$rc" -ne 0 ]; then
				status=failed
				echo "{\"peer\":\"openmined-psi.js\",\"mode\":\"$mode\",\"ds\":\"$ds\",\"n\":$n,\"rep\":$r,\"status\":\"failed\",\"exit\":$rc}" | tee -a "$out"
				break
			fi
		done
		echo "# $(date -u +%FT%TZ) $(uptime)"
		if [ "$status" != ok ]; then
			echo "# $mode n=$n: $status; skipping the larger sizes of this mode"
			break
		fi
	done
done
echo "# end: $(date -u +%FT%TZ) $(uptime)"
echo
node bench.mjs --table "$out"
echo "# results: $out"

if [ "$run_mpsi" -eq 1 ]; then
	echo
	echo "# mpsi BenchmarkTwoParty, GOMAXPROCS=1, core $core, sizes up to $mpsi_maxn"
	echo "# $(uptime)"
	cd "$repo"
	GOMAXPROCS=1 taskset -c "$core" go test -run XXX -bench TwoParty -benchtime 1x ./bench/peers/ -args -maxn "$mpsi_maxn"
	echo "# $(uptime)"
fi
