#!/usr/bin/env bash
# Mount benchmarks (issue 4, "Performance"): the same fio / metadata / untar
# workloads on four filesystems, each on a fresh sparse image file of the
# same size, in the same run:
#
#   ext4      mkfs.ext4 on a loop device
#   btrfs     mkfs.btrfs on a loop device
#   bindfs    a FUSE passthrough (bindfs) over an ext4 loop mount: the
#             ceiling of FUSE itself
#   hammerfs  newfs_hammer + mount_hammer (release build)
#
# Every workload runs twice, "pinned" (the tools and the FUSE daemon all on
# CPU 0) and "unpinned" (no affinity), because FUSE figures swing with where
# the daemon runs relative to the caller. Prints a table with the ratios the
# issue sets targets for (hammerfs/bindfs >= 1.0 everywhere, sequential
# write hammerfs/btrfs >= 0.5), then the daemon's resident memory with
# 100,000 files against "cache size + 64 MiB". Numbers only: nothing fails
# on time. Must run as root (loop devices, mounts, drop_caches).
#
#   bench/fuse.sh                              # full size (about 17 minutes on the dev VM)
#   HAMMERFS_BENCH_SCALE=0.05 bench/fuse.sh    # quick run
#
# Knobs (see bench/README.md, "Mount benchmarks"):
#   HAMMERFS_BENCH_SCALE       multiplies sizes, counts and durations (default 1)
#   HAMMERFS_BENCH_DIR         scratch directory (default target/bench-fuse)
#   HAMMERFS_BENCH_FS          filesystems to run (default "ext4 btrfs bindfs hammerfs")
#   HAMMERFS_BENCH_PLACEMENTS  default "pinned unpinned"
#   HAMMERFS_BENCH_WORKLOADS   default "seq rand meta untar"
#   HAMMERFS_BENCH_ROUNDS      runs of each workload per filesystem, the
#                              filesystems taking turns (default 1); the
#                              table shows the median, every run is listed
#   HAMMERFS_BENCH_TREE        directories to tar for the untar workload
#   HAMMERFS_BENCH_MEMORY=0    skips the memory measurement
#   HAMMERFS_BIN_DIR           where the release binaries are (default target/release)
set -Eeuo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ "$(id -u)" != 0 ]; then
    echo "bench/fuse.sh: must run as root (loop devices, mounts, drop_caches)" >&2
    exit 1
fi

SCALE=${HAMMERFS_BENCH_SCALE:-1}
WORK=$(realpath -m "${HAMMERFS_BENCH_DIR:-$ROOT/target/bench-fuse}")
BIN=$(realpath -m "${HAMMERFS_BIN_DIR:-$ROOT/target/release}")
FSLIST=${HAMMERFS_BENCH_FS:-ext4 btrfs bindfs hammerfs}
PLACEMENTS=${HAMMERFS_BENCH_PLACEMENTS:-pinned unpinned}
WORKLOADS=${HAMMERFS_BENCH_WORKLOADS:-seq rand meta untar}
ROUNDS=${HAMMERFS_BENCH_ROUNDS:-1}
case $ROUNDS in ''|*[!0-9]*|0) echo "bench/fuse.sh: HAMMERFS_BENCH_ROUNDS must be a positive number" >&2; exit 1 ;; esac
NCPU=$(nproc)
case $WORK in *[[:space:]]*) echo "bench/fuse.sh: HAMMERFS_BENCH_DIR must not contain spaces" >&2; exit 1 ;; esac

# scaled VALUE MIN: round(VALUE * SCALE), at least MIN.
scaled() { awk -v v="$1" -v s="$SCALE" -v m="$2" 'BEGIN { x = int(v * s + 0.5); if (x < m) x = m; print x }'; }
IMG_MIB=$(scaled 32768 4096)   # every image, sparse (room for the history random writes leave)
SEQ_MIB=$(scaled 1024 16)       # sequential write / read
RAND_MIB=$(scaled 256 8)        # random 4 KiB read / write file
RAND_SECS=$(scaled 20 2)        # each random run
META_DIRS=$(scaled 200 1)
META_PER_DIR=$(( $(scaled 20000 100) / META_DIRS ))
META_FILES=$((META_DIRS * META_PER_DIR))
MEM_FILES=$(scaled 100000 1000) # memory measurement, 100 per directory
# The engine's default cache budget (volume::default_cache_bytes), what
# mount_hammer uses without -o cache=: a sixteenth of memory, 256 MiB to 1 GiB.
CACHE_MIB=$(awk '/^MemTotal:/ { m = int($2 / 1024 / 16); if (m < 256) m = 256; if (m > 1024) m = 1024; print m }' /proc/meminfo)

# ---------------------------------------------------------------- setup

need=()
command -v fio >/dev/null || need+=(fio)
command -v mkfs.btrfs >/dev/null || need+=(btrfs-progs)
command -v bindfs >/dev/null || need+=(bindfs)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v fusermount3 >/dev/null || command -v fusermount >/dev/null || need+=(fuse3)
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "== building release binaries"
cargo build --release -p hammer-cli
for b in newfs_hammer mount_hammer hammer; do
    [ -x "$BIN/$b" ] || { echo "bench/fuse.sh: $BIN/$b missing" >&2; exit 1; }
done

RESULTS=$WORK/results.tsv   # workload  placement  fs  value
LOG=$WORK/log.txt           # fio output and errors

# All our mounts are under $WORK; the daemons are found by their images'
# and mount points' paths, so other mounts on the machine are never touched.
mounts_under_work() { tac /proc/self/mounts | awk -v w="$WORK/" 'index($2, w) == 1 { print $2, $3 }'; }
hammer_pids() { pgrep -f -- "mount_hammer .*$WORK/" || true; }
bindfs_pids() { pgrep -f -- "bindfs .*$WORK/" || true; }

# Waits until none of the given pids is alive; 1 on timeout.
wait_gone() {
    local secs=$1; shift
    local deadline=$((SECONDS + secs)) p alive
    while :; do
        alive=0
        for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && return 0
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.2
    done
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    local mp type pids
    while read -r mp type; do
        [ -n "$mp" ] || continue
        umount "$mp" 2>/dev/null || { sleep 1; umount "$mp" 2>/dev/null; } || umount -l "$mp"
    done < <(mounts_under_work)
    # The daemons end once their last write is on disk.
    pids=$(hammer_pids; bindfs_pids)
    if [ -n "$pids" ] && ! wait_gone 300 $pids; then
        echo "cleanup: daemons still running after 300 s: $pids; sending SIGTERM" >&2
        kill $pids 2>/dev/null
        wait_gone 60 $pids || echo "cleanup: daemons $pids did not exit" >&2
    fi
    local img dev
    for img in "$WORK"/*.img; do
        [ -e "$img" ] || continue
        for dev in $(losetup -j "$img" -O NAME -n 2>/dev/null); do losetup -d "$dev"; done
    done
    if [ "${HAMMERFS_BENCH_KEEP:-0}" = 1 ]; then
        echo "kept $WORK (results.tsv, log.txt; images are deleted anyway)"
        rm -f "$WORK"/*.img
    else
        rm -rf "$WORK"
    fi
    local left
    left=$(mounts_under_work)
    [ -z "$left" ] || echo "cleanup: still mounted: $left" >&2
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -n "$(mounts_under_work)" ]; then
    echo "bench/fuse.sh: something is mounted under $WORK already" >&2
    exit 1
fi
rm -rf "$WORK"
mkdir -p "$WORK"
: > "$RESULTS"
: > "$LOG"

# The untar workload's tarball: this repo's crates/ and docs/ plus the
# Rust sources cargo downloaded for it (a real source tree of a few
# thousand files), or /usr/share/doc when there is no registry.
if [ -n "${HAMMERFS_BENCH_TREE:-}" ]; then
    read -r -a TREE <<< "$HAMMERFS_BENCH_TREE"
else
    TREE=("$ROOT/crates" "$ROOT/docs")
    reg=${CARGO_HOME:-$HOME/.cargo}/registry/src
    if [ -d "$reg" ] && [ "$(find "$reg" -type f | head -n 1000 | wc -l)" -ge 1000 ]; then
        TREE+=("$reg")
    else
        TREE+=(/usr/share/doc)
    fi
fi
TARBALL=$WORK/tree.tar
find "${TREE[@]}" \( -type f -o -type l \) | sed 's|^/||' | sort > "$WORK/tree.all"
TREE_TOTAL=$(wc -l < "$WORK/tree.all")
TREE_FILES=$(scaled "$TREE_TOTAL" 100)
[ "$TREE_FILES" -le "$TREE_TOTAL" ] || TREE_FILES=$TREE_TOTAL
head -n "$TREE_FILES" "$WORK/tree.all" > "$WORK/tree.list"
tar -C / -cf "$TARBALL" -T "$WORK/tree.list"
TREE_MIB=$(du -m --apparent-size "$TARBALL" | cut -f1)

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
rec() {
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$RESULTS"
    printf '      %-12s %s\n' "$1" "$4"
}

# --------------------------------------------------- filesystems up / down
# State of the filesystem under test (set by fs_up, used by the workloads).
FS= PLACE= MNT= IMG= DEV= LOWER= LOWER_DEV=

# Runs a tool with the current placement's CPU affinity.
run() {
    if [ "$PLACE" = pinned ]; then taskset -c 0 "$@"; else "$@"; fi
}

daemon_pid() {
    case $FS in
        hammerfs) pgrep -f -- "mount_hammer .*$IMG" | head -n 1 ;;
        bindfs) pgrep -f -- "bindfs .*$MNT" | head -n 1 ;;
    esac
}

# Pins every thread of the FUSE daemon as the placement says.
place_daemon() {
    local pid
    pid=$(daemon_pid)
    [ -n "$pid" ] || { echo "no daemon for $MNT" >&2; return 1; }
    if [ "$PLACE" = pinned ]; then
        taskset -a -p -c 0 "$pid" >/dev/null
    else
        taskset -a -p -c "0-$((NCPU - 1))" "$pid" >/dev/null
    fi
}

hammer_mount() {
    "$BIN/mount_hammer" "$IMG" "$MNT" || return 1
    place_daemon
}

# umount, then wait for the daemon: the volume is only settled once it exits.
hammer_umount() {
    local pid
    pid=$(daemon_pid)
    umount "$MNT" || return 1
    if [ -n "$pid" ] && ! wait_gone 300 "$pid"; then
        echo "mount_hammer for $IMG still running 300 s after umount" >&2
        return 1
    fi
}

new_image() { rm -f "$1"; truncate -s "${IMG_MIB}M" "$1"; }

fs_up() {
    FS=$1 PLACE=$2
    MNT=$WORK/$FS.mnt IMG=$WORK/$FS.img DEV= LOWER= LOWER_DEV=
    mkdir -p "$MNT" || return 1
    case $FS in
        ext4|btrfs)
            new_image "$IMG" || return 1
            DEV=$(losetup -f --show "$IMG") || return 1
            if [ "$FS" = ext4 ]; then
                mkfs.ext4 -q "$DEV" || return 1
            else
                mkfs.btrfs -q -f "$DEV" >/dev/null || return 1
            fi
            mount "$DEV" "$MNT" || return 1
            ;;
        bindfs)
            IMG=$WORK/bindfs-ext4.img LOWER=$WORK/bindfs-ext4.mnt
            mkdir -p "$LOWER" || return 1
            new_image "$IMG" || return 1
            LOWER_DEV=$(losetup -f --show "$IMG") || return 1
            mkfs.ext4 -q "$LOWER_DEV" || return 1
            mount "$LOWER_DEV" "$LOWER" || return 1
            bindfs "$LOWER" "$MNT" || return 1
            place_daemon || return 1
            ;;
        hammerfs)
            new_image "$IMG" || return 1
            "$BIN/newfs_hammer" -f -L B "$IMG" >/dev/null 2>>"$LOG" || return 1
            hammer_mount || return 1
            ;;
    esac
}

fs_down() {
    local pid
    case $FS in
        ext4|btrfs)
            umount "$MNT" || return 1
            losetup -d "$DEV" || return 1
            ;;
        bindfs)
            pid=$(daemon_pid)
            umount "$MNT" || return 1
            [ -z "$pid" ] || wait_gone 60 "$pid" || return 1
            umount "$LOWER" || return 1
            losetup -d "$LOWER_DEV" || return 1
            ;;
        hammerfs)
            hammer_umount || return 1
            ;;
    esac
    rm -f "$IMG"
}

# sync, and for hammerfs also a flush of the mount (synctid first pushes
# the kernel's dirty pages, then commits a transaction).
fs_sync() {
    run sync
    if [ "$FS" = hammerfs ]; then run "$BIN/hammer" synctid "$MNT" >/dev/null; fi
}

# Cold caches: drop the kernel's (page cache, dentries, inodes — those of
# the loop images' backing files too) and remount hammerfs to drop its own
# buffer cache.
cold() {
    if [ "$FS" = hammerfs ]; then
        hammer_umount
        sync
        echo 3 > /proc/sys/vm/drop_caches
        hammer_mount
    else
        sync
        echo 3 > /proc/sys/vm/drop_caches
    fi
}

# ------------------------------------------------------------- workloads
FIO=(fio --ioengine=psync --iodepth=1 --numjobs=1 --fallocate=none)

w_seq() {
    local t0 t
    t0=$(now)
    run "${FIO[@]}" --name=seqwrite --rw=write --bs=1M --size="${SEQ_MIB}M" --end_fsync=1 \
        --filename="$MNT/seq.dat" >> "$LOG"
    t=$(since "$t0")
    rec seqwrite "$PLACE" "$FS" "$(awk -v m="$SEQ_MIB" -v t="$t" 'BEGIN { printf "%.1f", m / t }')"
    cold
    t0=$(now)
    run "${FIO[@]}" --name=seqread --rw=read --bs=1M --size="${SEQ_MIB}M" \
        --filename="$MNT/seq.dat" >> "$LOG"
    t=$(since "$t0")
    rec seqread "$PLACE" "$FS" "$(awk -v m="$SEQ_MIB" -v t="$t" 'BEGIN { printf "%.1f", m / t }')"
    rm -f "$MNT/seq.dat"
    fs_sync
}

w_rand() {
    local out t0
    run "${FIO[@]}" --name=layout --rw=write --bs=1M --size="${RAND_MIB}M" --end_fsync=1 \
        --filename="$MNT/rand.dat" >> "$LOG"
    fs_sync
    out=$(run "${FIO[@]}" --minimal --name=randread --rw=randread --bs=4k --size="${RAND_MIB}M" \
        --time_based --runtime="$RAND_SECS" --filename="$MNT/rand.dat")
    echo "$out" >> "$LOG"
    rec randread "$PLACE" "$FS" "$(echo "$out" | awk -F';' '{ print $8 }')"
    t0=$(now)
    out=$(run "${FIO[@]}" --minimal --name=randwrite --rw=randwrite --bs=4k --size="${RAND_MIB}M" \
        --time_based --runtime="$RAND_SECS" --filename="$MNT/rand.dat") || {
        echo "$out" >> "$LOG"
        rec randwrite "$PLACE" "$FS" FAILED
        echo "randwrite: fio failed after $(since "$t0") s" >&2
        return 1
    }
    echo "$out" >> "$LOG"
    rec randwrite "$PLACE" "$FS" "$(echo "$out" | awk -F';' '{ print $49 }')"
    rm -f "$MNT/rand.dat"
    fs_sync
}

# DIRS directories of PER files of 1 KiB under DIR (bash builtins: one
# open/write/close per file, no process per file).
make_files() {
    run bash -c '
        payload=$(head -c 1024 /dev/zero | tr "\0" x)
        for ((d = 0; d < $2; d++)); do
            mkdir "$1/d$d"
            for ((f = 0; f < $3; f++)); do printf "%s" "$payload" > "$1/d$d/f$f"; done
        done' _ "$1" "$2" "$3"
}

w_meta() {
    local t0 n
    mkdir "$MNT/meta"
    fs_sync
    t0=$(now)
    make_files "$MNT/meta" "$META_DIRS" "$META_PER_DIR"
    fs_sync
    rec meta-create "$PLACE" "$FS" "$(since "$t0")"
    cold
    t0=$(now)
    n=$(run find "$MNT/meta" -printf '%s\n' | wc -l)
    rec meta-stat "$PLACE" "$FS" "$(since "$t0")"
    if [ "$n" != $((META_FILES + META_DIRS + 1)) ]; then
        echo "$FS: find saw $n entries, expected $((META_FILES + META_DIRS + 1))" >&2
        return 1
    fi
    t0=$(now)
    run rm -rf "$MNT/meta"
    fs_sync
    rec meta-delete "$PLACE" "$FS" "$(since "$t0")"
}

w_untar() {
    local t0 n
    cat "$TARBALL" > /dev/null   # the source comes from the page cache
    mkdir "$MNT/untar"
    fs_sync
    t0=$(now)
    run tar -xf "$TARBALL" -C "$MNT/untar"
    fs_sync
    rec untar "$PLACE" "$FS" "$(since "$t0")"
    n=$(find "$MNT/untar" \( -type f -o -type l \) | wc -l)
    if [ "$n" != "$TREE_FILES" ]; then
        echo "$FS: untar left $n files, the tarball has $TREE_FILES" >&2
        return 1
    fi
    rm -rf "$MNT/untar"
    fs_sync
}

# Runs one workload in a subshell with errexit; a failure is logged and
# marks its figures FAILED, and the next workloads still run.
workload() {
    local name=$1 rc msg
    set +e
    ( set -e; "w_$name" ) 2> "$WORK/err"
    rc=$?
    set -e
    cat "$WORK/err" >> "$LOG"
    if [ $rc != 0 ]; then
        # The first error and the last line (often the same kind, repeated).
        msg=$( (head -n 1 "$WORK/err"; tail -n 1 "$WORK/err") | uniq | paste -sd '|' | sed 's/|/ ... /')
        echo "!! $FS $PLACE $name failed (exit $rc): $msg" >&2
        printf '%s %s %s: %s\n' "$FS" "$PLACE" "$name" "$msg" >> "$WORK/failed"
    fi
}

# ------------------------------------------------------------------ main
echo "== scale $SCALE: images ${IMG_MIB} MiB; seq ${SEQ_MIB} MiB; random 4 KiB on ${RAND_MIB} MiB," \
     "${RAND_SECS} s each; metadata ${META_FILES} files in ${META_DIRS} dirs;" \
     "untar ${TREE_FILES} files (${TREE_MIB} MiB); ${NCPU} CPUs"
echo "== scratch: $WORK ($(df -h --output=source "$WORK" | tail -n 1))"

# Each workload on a fresh filesystem, so none inherits another's
# leftovers (or its failure), the filesystems taking turns.
# With several rounds, each round runs every filesystem once more, so
# drift in the machine's speed (this VM's disk and CPU vary from minute to
# minute) falls on all of them alike.
for PLACE in $PLACEMENTS; do
    for w in $WORKLOADS; do
        for round in $(seq "$ROUNDS"); do
            for fs in $FSLIST; do
                echo "== $w, $fs, $PLACE$([ "$ROUNDS" = 1 ] || echo ", round $round")"
                if ! fs_up "$fs" "$PLACE"; then
                    echo "!! $fs: setup failed" | tee -a "$LOG" >&2
                    echo "$fs $PLACE $w: setup failed" >> "$WORK/failed"
                    continue
                fi
                workload "$w"
                fs_down || echo "!! $fs $PLACE: teardown failed" | tee -a "$LOG" >&2
            done
        done
    done
done

MEMLINE=
if [ "${HAMMERFS_BENCH_MEMORY:-1}" != 0 ] && [[ " $FSLIST " == *" hammerfs "* ]]; then
    echo "== hammerfs memory: $MEM_FILES files of 1 KiB"
    w_mem() {
        local t0 pid rss1 rss2 hwm
        pid=$(daemon_pid)
        mkdir "$MNT/mem"
        t0=$(now)
        make_files "$MNT/mem" $((MEM_FILES / 100)) 100
        fs_sync
        echo "   created and synced in $(since "$t0") s"
        rss1=$(awk '/^VmRSS/ { print int($2 / 1024) }' "/proc/$pid/status")
        sync
        echo 3 > /proc/sys/vm/drop_caches   # every lookup goes to the daemon again
        find "$MNT/mem" -printf '%s\n' > /dev/null
        rss2=$(awk '/^VmRSS/ { print int($2 / 1024) }' "/proc/$pid/status")
        hwm=$(awk '/^VmHWM/ { print int($2 / 1024) }' "/proc/$pid/status")
        echo "$rss1 $rss2 $hwm" > "$WORK/mem"
    }
    if fs_up hammerfs unpinned; then
        set +e
        ( set -e; w_mem ) 2> "$WORK/err"
        set -e
        cat "$WORK/err" >> "$LOG"
        head -n 3 "$WORK/err" >&2
        fs_down || echo "!! hammerfs memory: teardown failed" | tee -a "$LOG" >&2
    fi
    if [ -s "$WORK/mem" ]; then
        read -r rss1 rss2 hwm < "$WORK/mem"
        limit=$((CACHE_MIB + 64))
        verdict=met
        for v in $rss1 $rss2 $hwm; do [ "$v" -le $limit ] || verdict=MISSED; done
        MEMLINE="daemon VmRSS with $MEM_FILES files: ${rss1} MiB after create+sync, ${rss2} MiB after a cold stat of all, peak (VmHWM) ${hwm} MiB; target <= cache ${CACHE_MIB} MiB (default) + 64 = ${limit} MiB: $verdict"
    else
        MEMLINE="daemon memory: FAILED (see $LOG)"
    fi
fi

# ----------------------------------------------------------------- table
echo
echo "== results (HAMMERFS_BENCH_SCALE=$SCALE; MiB/s and IOPS: higher is better; seconds: lower is better)"
[ ! -s "$WORK/failed" ] || sed 's/^/   FAILED: /' "$WORK/failed"
{
    printf 'workload\tunit\tplacement\text4\tbtrfs\tbindfs\thammerfs\thammerfs/bindfs\ttarget\thammerfs/btrfs\ttarget\n'
    awk -F'\t' -v places="$PLACEMENTS" '
        # Every run of a (workload, placement, fs); the table shows the median.
        $4 != "" { k = $1 FS $2 FS $3; cnt[k]++; runs[k, cnt[k]] = $4 }
        function median(k,   i, j, t, m, a) {
            m = cnt[k]
            for (i = 1; i <= m; i++) a[i] = runs[k, i] + 0
            for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
            return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
        }
        function get(w, p, f) { k = w FS p FS f; return (k in cnt) ? median(k) : "-" }
        # Speed ratio of hammerfs over a baseline: >= 1 means hammerfs is no slower.
        function ratio(w, h, b, u) {
            if (h == "-" || b == "-" || h + 0 == 0 || b + 0 == 0) return "-"
            return sprintf("%.3f", u == "s" ? b / h : h / b)
        }
        function verdict(r, t) { return r == "-" ? "-" : ">= " t (r + 0 >= t + 0 ? " met" : " MISSED") }
        END {
            n = split("seqwrite seqread randread randwrite meta-create meta-stat meta-delete untar", ws, " ")
            split("MiB/s MiB/s IOPS IOPS s s s s", us, " ")
            np = split(places, ps, " ")
            for (i = 1; i <= n; i++) for (j = 1; j <= np; j++) {
                w = ws[i]; p = ps[j]; u = us[i]
                e = get(w, p, "ext4"); b = get(w, p, "btrfs"); f = get(w, p, "bindfs"); h = get(w, p, "hammerfs")
                r1 = ratio(w, h, f, u)
                r2 = w == "seqwrite" ? ratio(w, h, b, u) : "-"
                printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", w, u, p, e, b, f, h,
                    r1, verdict(r1, "1.0"), r2, w == "seqwrite" ? verdict(r2, "0.5") : "-"
            }
        }' "$RESULTS"
} | column -t -s $'\t'
if [ "$ROUNDS" != 1 ]; then
    echo
    echo "== every run (the table above shows their median)"
    awk -F'\t' '{ k = $1 " " $2 " " $3; if (!(k in s)) o[++m] = k; s[k] = s[k] " " $4 }
        END { for (i = 1; i <= m; i++) print o[i] ":" s[o[i]] }' "$RESULTS" | column -t
fi
[ -z "$MEMLINE" ] || { echo; echo "$MEMLINE"; }
