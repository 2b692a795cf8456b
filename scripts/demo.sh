#!/usr/bin/env bash
# The main job: build the tools, make a demo HAMMER volume in a file if
# there is none yet (holding a copy of the sources), mount it, and say what
# to try.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p hammer-cli
bin=$PWD/target/release
img=${HAMMERFS_DEMO_IMG:-demo/demo.img}
mnt=${HAMMERFS_DEMO_MNT:-demo/mnt}
mkdir -p "$(dirname "$img")" "$mnt"

if mountpoint -q "$mnt"; then
    echo "== $mnt is already mounted"
else
    if [[ ! -e $img ]]; then
        echo "== creating a 2 GiB demo volume in $img (sparse), holding a copy of crates/"
        truncate -s 2G "$img"
        "$bin/newfs_hammer" -f -L DEMO --from crates "$img" | tail -1 | tee demo/import.txt
    else
        echo "== using the existing demo volume $img"
        echo "== hammer -f $img checkmap"
        "$bin/hammer" -f "$img" checkmap | tail -3
    fi
    echo "== mounting $img on $mnt"
    "$bin/mount_hammer" "$img" "$mnt"
fi
tid=$(grep -o 'transaction 0x[0-9a-f]*' demo/import.txt 2>/dev/null | awk '{print $2}' || true)

echo
echo "== ls $mnt"
ls "$mnt"
cat <<MSG

The volume is mounted read-write at $mnt. Try:
  echo one > $mnt/note.txt                    # write; the mount flushes every 5 s, or on fsync
  ls $mnt
  ls $mnt/@@${tid:-0x<tid>}                   # the root directory as of the import transaction
  rm -r $mnt/ondisk && ls $mnt/@@${tid:-0x<tid>}/ondisk   # removed, yet still there in the past
  echo two >> $mnt/note.txt && $bin/hammer synctid $mnt   # a flush: prints its TID
  $bin/hammer history $mnt/note.txt           # the TIDs at which note.txt changed
  $bin/undo -a $mnt/note.txt                  # every version of it
  $bin/hammer snap $mnt "my first snapshot" && $bin/hammer snapls $mnt
  $bin/hammer prune-everything $mnt           # drop all history (space comes back)
  umount $mnt                                 # flushes and releases the volume
  $bin/hammer -f $img show | less             # then look at the B-tree offline
  $bin/hammer -f $img checkmap                # and check the free-space accounting
MSG
