#!/usr/bin/env bash
# Runs the hammerfs benchmarks (B-tree, sequential write, tree import; see
# bench/README.md) in release mode and prints a summary table: each result
# next to its same-run baseline (std BTreeMap, dd oflag=direct,
# mkfs.btrfs --rootdir), their ratio, the issue's target and whether it was
# met. Numbers only; nothing here fails on time.
#
#   bench/run.sh                         # full sizes (1M records, 1 GiB write, 1 GiB tree)
#   HAMMERFS_BENCH_SCALE=0.05 bench/run.sh   # quick run, under a minute after the build
#   bench/run.sh btree                   # only some: btree, seqwrite, import, history
#
# Other knobs: HAMMERFS_BENCH_DIR (scratch directory, default
# target/bench-tmp, must be on the disk you want to measure),
# HAMMERFS_BENCH_REPEAT (import rounds, best kept), HAMMERFS_BENCH_KEEP=1
# (keep images and the generated tree).
set -euo pipefail
cd "$(dirname "$0")/.."
export HAMMERFS_BENCH_SCALE=${HAMMERFS_BENCH_SCALE:-1}
benches=("$@")
[ ${#benches[@]} -eq 0 ] && benches=(btree seqwrite import history)

cargo build --release -p hammer-cli
cargo bench -p hammer-bench --no-run

log=$(mktemp)
trap 'rm -f "$log"; [ "${HAMMERFS_BENCH_KEEP:-0}" = 1 ] || rm -rf "${HAMMERFS_BENCH_DIR:-target/bench-tmp}"' EXIT
for b in "${benches[@]}"; do
    echo
    # A benchmark that dies still leaves the others to run.
    cargo bench -q -p hammer-bench --bench "$b" 2>&1 | tee -a "$log" | grep -v '^SUMMARY' \
        || echo "SUMMARY	$b	-	-	-	-	-	-	FAILED: exited with an error" >> "$log"
done

echo
echo "== summary (HAMMERFS_BENCH_SCALE=$HAMMERFS_BENCH_SCALE) =="
{
    printf 'bench\tmetric\thammerfs\tbaseline\tbaseline value\tratio\ttarget\tverdict\n'
    grep '^SUMMARY' "$log" | cut -f2-
} | column -t -s $'\t'
