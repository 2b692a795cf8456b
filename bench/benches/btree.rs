//! B-tree benchmark: lookups/s and inserts/s of `hammer_engine::btree::BTree`
//! over an in-memory (`MemNodeStore`, fully cached) tree of 1,000,000
//! records (× `HAMMERFS_BENCH_SCALE`), on one core, against `std`'s
//! `BTreeMap` holding the same keys and records, measured in the same run.
//!
//! Records look like file data: (PFS 0 misc localization, obj_id, DATA,
//! key = end offset of a 16 KiB block, create_tid). Keys are inserted in a
//! deterministic random order; lookups are `BTree::lookup` (as of "now") of
//! random existing keys; the timed inserts add 20% new keys, spread through
//! the whole key space, to the full tree. Targets (engine issue): at least
//! 1M lookups/s and 200k inserts/s. Nothing here asserts on time.

use hammer_bench::*;
use hammer_engine::btree::{create_empty, BTree, MemNodeStore};
use hammer_engine::store::ReadOnlyStore;
use hammer_engine::volume::{OpenOptions, VolumeSet};
use hammer_ondisk::*;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

const TID: u64 = 0x1_0000_0002;
const LOOKUP_TARGET: f64 = 1_000_000.0;
const INSERT_TARGET: f64 = 200_000.0;

type Key = (u32, i64, u16, i64, u64);

fn leaf(k: Key) -> HammerBtreeLeafElm {
    HammerBtreeLeafElm {
        base: HammerBaseElm {
            localization: k.0,
            obj_id: k.1,
            rec_type: k.2,
            key: k.3,
            create_tid: k.4,
            delete_tid: 0,
            obj_type: HAMMER_OBJTYPE_REGFILE,
            btype: HAMMER_BTREE_TYPE_RECORD,
        },
        create_ts: 1,
        delete_ts: 0,
        data_offset: HAMMER_ZONE_LARGE_DATA | ((k.1 as u64 & 0xffff) << 20) | (k.3 as u64),
        data_len: 16384,
        data_crc: k.3 as u32,
    }
}

fn main() {
    let n = scaled(1_000_000, 10_000, 1) as usize;
    let m = (n / 5).max(1);
    let lookups = n.max(100_000);
    let mut rng = Rng::new(1);

    // N + M distinct keys: objects of 64 blocks each, shuffled; the first N
    // build the tree, the last M are the timed inserts.
    let per_obj = 64usize;
    let objs = (n + m).div_ceil(per_obj);
    let mut keys: Vec<Key> = (0..objs * per_obj)
        .map(|i| {
            let obj = 0x1_0000_0100 + (i / per_obj) as i64;
            let key = ((i % per_obj) as i64 + 1) * 16384;
            (HAMMER_LOCALIZE_MISC, obj, HAMMER_RECTYPE_DATA, key, TID)
        })
        .collect();
    rng.shuffle(&mut keys);
    keys.truncate(n + m);
    let (build, extra) = keys.split_at(n);
    let probe: Vec<Key> = (0..lookups)
        .map(|_| build[rng.below(n as u64) as usize])
        .collect();

    println!("== B-tree: {n} records in memory, {lookups} lookups, {m} inserts, one thread ==");

    // ---- ours -------------------------------------------------------------
    let mut store = MemNodeStore::default();
    let root = create_empty(&mut store).expect("empty tree");
    let mut tree = BTree::new(&mut store, root);
    let t = Instant::now();
    for k in build {
        tree.insert(&leaf(*k)).expect("insert");
    }
    let our_build = t.elapsed();

    let t = Instant::now();
    let mut found = 0u64;
    for k in &probe {
        if black_box(
            tree.lookup(k.0, k.1, k.2, k.3, HAMMER_MAX_TID)
                .expect("lookup"),
        )
        .is_some()
        {
            found += 1;
        }
    }
    let our_lookup = t.elapsed();
    let our_missing = lookups as u64 - found;

    let t = Instant::now();
    for k in extra {
        tree.insert(&leaf(*k)).expect("insert");
    }
    let our_insert = t.elapsed();
    let records = tree.check().expect("tree check");
    let nodes = tree.store.nodes.len();

    // ---- ours, through a real volume's buffer cache -------------------------
    // The same records in the B-tree of a fresh volume (newfs_hammer), made
    // durable by one flush; the lookups then go through `VolumeSet`'s node
    // access (address translation, buffer cache lookup), as the mounted
    // filesystem's do, with every node cached (the default 256 MiB cache
    // holds the whole tree).
    let vol_lookup = volume_lookups(build, &probe);

    // ---- baseline: std BTreeMap -------------------------------------------
    let mut map: BTreeMap<Key, HammerBtreeLeafElm> = BTreeMap::new();
    let t = Instant::now();
    for k in build {
        map.insert(*k, leaf(*k));
    }
    let std_build = t.elapsed();

    let t = Instant::now();
    let mut sfound = 0u64;
    for k in &probe {
        // The same question BTree::lookup answers: the newest version of
        // the key visible as of "now".
        let hit = map
            .range((k.0, k.1, k.2, k.3, 1)..=(k.0, k.1, k.2, k.3, u64::MAX))
            .rev()
            .find(|(_, e)| visible_at(e.base.create_tid, e.base.delete_tid, HAMMER_MAX_TID));
        if black_box(hit).is_some() {
            sfound += 1;
        }
    }
    let std_lookup = t.elapsed();

    let t = Instant::now();
    for k in extra {
        map.insert(*k, leaf(*k));
    }
    let std_insert = t.elapsed();
    let std_len = map.len();
    drop(map);

    // ---- report -----------------------------------------------------------
    let row = |what: &str, ops: usize, ours: Duration, base: Duration| {
        let (o, b) = (rate(ops as u64, ours), rate(ops as u64, base));
        println!(
            "{what:<28} hammer {:>9}/s ({:>7.0} ns/op)   BTreeMap {:>9}/s ({:>6.0} ns/op)   ratio {:.3}",
            human(o),
            1e9 / o,
            human(b),
            1e9 / b,
            o / b
        );
        (o, b)
    };
    let _ = row("build 0 -> N (random order)", n, our_build, std_build);
    let (lo, lb) = row(
        "lookup (random, as-of now)",
        lookups,
        our_lookup,
        std_lookup,
    );
    if let Some(d) = vol_lookup {
        let _ = row("lookup, volume buffer cache", lookups, d, std_lookup);
    }
    let (io, ib) = row("insert into N-record tree", m, our_insert, std_insert);
    println!(
        "tree: {records} records in {nodes} nodes ({} MiB of 4 KiB nodes); BTreeMap: {std_len} entries",
        nodes as u64 * HAMMER_NODE_SIZE as u64 / MIB
    );
    if our_missing != 0 || sfound != lookups as u64 || records != (n + m) as u64 {
        println!(
            "ERROR: results differ: hammer missed {our_missing} lookups, BTreeMap missed {}, tree holds {records} of {} records",
            lookups as u64 - sfound,
            n + m
        );
    }

    let lookup_ok = lo >= LOOKUP_TARGET;
    let insert_ok = io >= INSERT_TARGET;
    println!(
        "target lookups >= 1M/s: {}; target inserts >= 200k/s: {}",
        if lookup_ok { "met" } else { "MISSED" },
        if insert_ok { "met" } else { "MISSED" }
    );
    if !lookup_ok || !insert_ok {
        println!(
            "a target was missed: see bench/README.md for the latest profile and what it points at"
        );
    }
    Summary {
        bench: "btree",
        metric: "lookups/s",
        ours: human(lo),
        baseline_name: "std BTreeMap",
        baseline: human(lb),
        ratio: format!("{:.3}", lo / lb),
        target: ">= 1M/s",
        verdict: verdict(lookup_ok),
    }
    .print();
    Summary {
        bench: "btree",
        metric: "inserts/s",
        ours: human(io),
        baseline_name: "std BTreeMap",
        baseline: human(ib),
        ratio: format!("{:.3}", io / ib),
        target: ">= 200k/s",
        verdict: verdict(insert_ok),
    }
    .print();
}

/// Times `probe` lookups through a flushed, fully cached volume B-tree
/// holding `build`; None (with the reason printed) when the volume cannot
/// be made, e.g. without a release `newfs_hammer`.
fn volume_lookups(build: &[Key], probe: &[Key]) -> Option<Duration> {
    let img = work_dir().join("btree-bench.img");
    sparse_file(&img, 8 << 30);
    let made = std::process::Command::new(release_bin("newfs_hammer"))
        .args(["-f", "-L", "BENCH"])
        .arg(&img)
        .stdout(std::process::Stdio::null())
        .status();
    if !matches!(made, Ok(s) if s.success()) {
        println!("volume lookups skipped: newfs_hammer failed ({made:?}); run bench/run.sh");
        let _ = std::fs::remove_file(&img);
        return None;
    }
    let run = || -> hammer_engine::error::Result<Duration> {
        let opts = OpenOptions {
            writable: true,
            ..Default::default()
        };
        let mut set = VolumeSet::open_paths(&[img.to_string_lossy().into_owned()], &opts)?;
        let root = set.header().vol0_btree_root;
        let mut tree = BTree::new(&mut set, root);
        for k in build {
            tree.insert(&leaf(*k))?;
        }
        let root = tree.root;
        set.flush()?;
        let ro = ReadOnlyStore(&set);
        let mut ro_store = ro;
        let tree = BTree::new(&mut ro_store, root);
        // One untimed pass brings every node into the cache.
        for k in build {
            tree.lookup(k.0, k.1, k.2, k.3, HAMMER_MAX_TID)?;
        }
        let t = Instant::now();
        let mut found = 0usize;
        for k in probe {
            if black_box(tree.lookup(k.0, k.1, k.2, k.3, HAMMER_MAX_TID)?).is_some() {
                found += 1;
            }
        }
        let d = t.elapsed();
        if found != probe.len() {
            println!(
                "ERROR: volume lookups found {found} of {} records",
                probe.len()
            );
        }
        Ok(d)
    };
    let r = run();
    if !keep_files() {
        let _ = std::fs::remove_file(&img);
    }
    match r {
        Ok(d) => Some(d),
        Err(e) => {
            println!("volume lookups FAILED: {e}");
            None
        }
    }
}
