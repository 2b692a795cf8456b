#!/usr/bin/env bash
# The test command: every test of the workspace, including the golden
# fixture comparisons against DragonFly's own tools' output.
# HAMMERFS_TEST_SCALE (default 1) scales property-test cases and fuzz loops.
set -euo pipefail
cd "$(dirname "$0")/.."
export PROPTEST_CASES=${PROPTEST_CASES:-$((256 * ${HAMMERFS_TEST_SCALE:-1}))}
cargo nextest run --workspace --no-fail-fast "$@"
