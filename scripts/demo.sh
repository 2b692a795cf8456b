#!/usr/bin/env bash
# The main job: build the tools, make a demo HAMMER volume in a file if
# there is none yet, show what is on it, and say what to try next.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p hammer-cli
bin=target/release
img=${HAMMERFS_DEMO_IMG:-demo/demo.img}
mkdir -p "$(dirname "$img")"

if [[ ! -e $img ]]; then
    echo "== creating a 2 GiB demo volume in $img (sparse), holding a copy of crates/"
    truncate -s 2G "$img"
    "$bin/newfs_hammer" -f -L DEMO --from crates "$img"
else
    echo "== using the existing demo volume $img"
fi

echo
echo "== hammer -f $img show | head -60"
"$bin/hammer" -f "$img" show | head -60
echo
echo "== hammer -f $img checkmap"
"$bin/hammer" -f "$img" checkmap

cat <<MSG

Try next:
  $bin/hammer -f $img blockmap          # the freemap, one line per big-block
  $bin/hammer -v -f $img show           # B-tree dump with zone statistics
  $bin/hammer -f $img show-undo | head  # the UNDO/REDO FIFO
  $bin/hammer namekey1 hello.txt        # directory hash of a name
  $bin/newfs_hammer -h                  # make your own volumes
MSG
