#!/usr/bin/env python3
"""Link the CLKs clkeval wrote with anonlink 0.15.3 and compare the groups.

Not run by CI. Usage (bench/README.md, "CLK linkage", has the full sequence):

    GOMAXPROCS=1 taskset -c 1 go run ./psi/clk/internal/clkeval anonlink \
        -data ../shared/data/linkage/anonlink_5party -out /tmp/clkout
    PYTHONPATH=/tmp/clk16/anonlink-src taskset -c 1 python3 \
        psi/clk/testdata/anonlink_compare.py /tmp/clkout 0.7,0.75,0.8,0.85,0.9

/tmp/clk16/anonlink-src is anonlink's source at tag v0.15.3 with its C++
extensions built in place (`python3 setup.py build_ext --inplace`; Debian
12's python3-numpy, cython3, python3-bitarray and g++).

For each threshold it runs anonlink.candidate_generation.find_candidate_pairs
with anonlink.similarities.dice_coefficient_accelerated (no blocking) and
anonlink.solving.greedy_solve, and compares the groups with
groups-<threshold>.json from clkeval.
"""
import json
import os
import sys
import time

from bitarray import bitarray

import anonlink


def load(path, nbytes=128):
    data = open(path, "rb").read()
    out = []
    for i in range(0, len(data), nbytes):
        b = bitarray()
        b.frombytes(data[i:i + nbytes])
        out.append(b)
    return out


def main():
    d = sys.argv[1]
    thresholds = sys.argv[2].split(",")
    datasets = [load(os.path.join(d, f"clks-{p}.bin")) for p in range(1, 6)]
    pairs = sum(len(a) * len(b) for i, a in enumerate(datasets) for b in datasets[i + 1:])
    print("| threshold | anonlink candidates | candidate CPU | pairs/s | solve CPU | groups (anonlink / ours) | identical groups | groups only in one |")
    print("|---|---|---|---|---|---|---|---|")
    for ts in thresholds:
        t = float(ts)
        t0 = time.process_time()
        cands = anonlink.candidate_generation.find_candidate_pairs(
            datasets, anonlink.similarities.dice_coefficient_accelerated, t)
        t1 = time.process_time()
        groups = anonlink.solving.greedy_solve(cands)
        t2 = time.process_time()
        theirs = {tuple(sorted(tuple(r) for r in g)) for g in groups}
        ours = {tuple(sorted((r["Party"], r["Index"]) for r in g))
                for g in json.load(open(os.path.join(d, f"groups-{ts}.json"))) or []}
        print(f"| {t:.2f} | {len(cands[0])} | {t1 - t0:.3f}s | {pairs / (t1 - t0):.3g} | {t2 - t1:.3f}s "
              f"| {len(theirs)} / {len(ours)} | {len(theirs & ours)} | {len(theirs ^ ours)} |")


if __name__ == "__main__":
    main()
