#!/bin/bash
# Cost of issue 12's noise and privacy ledger end to end: 3 hospitals ×
# 100k records, keyed, masked aggregation, a coordinator and three party
# processes on 127.0.0.1; RUNS sessions without privacy and RUNS with
# privacy (ε = 1, δ = 1e-6) and every party's ledger (--policy with a
# privacy_budget, --ledger), alternating, back to back. Prints the wall time
# of each session (create → all three parties done), in seconds.
# Usage: bash bench/privacy_cost.sh [RUNS]   (from the repository root)
set -euo pipefail
RUNS=${1:-5}
W=$(mktemp -d)
trap 'kill $CP 2>/dev/null || true; rm -rf "$W"' EXIT
go build -o "$W/mpsi" ./cmd/mpsi
cd "$W"
./mpsi gen-cohorts --out coh --parties 3 --records 100000 --mode keyed --seed 5 > /dev/null
./mpsi dev-certs --out certs --names coordinator,admin,hospital-a,hospital-b,hospital-c > /dev/null
echo '{"privacy_budget":{"epsilon":1000,"delta":1e-6}}' > policy.json
python3 - "$RUNS" <<'PY'
import json, sys
s = json.load(open('coh/spec.json'))
for k in range(int(sys.argv[1])):
    for tag, priv in (('plain', None), ('dp', {'epsilon': 1, 'delta': 1e-6})):
        t = dict(s, id=f'{tag}-{k}')
        if priv:
            t['privacy'] = priv
        json.dump(t, open(f'{tag}-{k}.json', 'w'))
PY
./mpsi coordinator --listen 127.0.0.1:0 --certs certs --db coord.db --addr-file addr > coord.log 2>&1 &
CP=$!
for _ in $(seq 100); do [ -s addr ] && break; sleep 0.1; done
A=$(cat addr)
run() { # id [dp]
  ./mpsi session create --coordinator "$A" --certs certs --spec "$1.json" > /dev/null
  local s pids=() extra=()
  s=$(date +%s.%N)
  for p in hospital-a hospital-b hospital-c; do
    [ "${2:-}" = dp ] && extra=(--policy policy.json --ledger "ledger-$p.db")
    ./mpsi party --coordinator "$A" --certs certs --name $p --session "$1" --data coh/$p.csv \
      --map coh/$p.map.json --out "$1-$p.json" "${extra[@]}" 2> "$1-$p.log" &
    pids+=($!)
  done
  wait "${pids[@]}"
  echo "$1 $(echo "$(date +%s.%N) - $s" | bc)"
}
for k in $(seq 0 $((RUNS - 1))); do
  run plain-$k
  run dp-$k dp
done
