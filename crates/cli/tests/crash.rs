//! Crash safety of the flusher: a workload of B-tree changes with record
//! data, flushed in transactions, is cut off at every write barrier; the
//! in-flight writes are then kept, dropped, kept in part, or torn. After
//! recovery the volume must hold exactly the state of the last completed
//! flush or of the one in progress — never a mix — with the B-tree's
//! invariants intact and the freemap agreeing with what the tree uses.
//! `HAMMERFS_TEST_SCALE` multiplies the number of flushes and write subsets.

mod support;

use hammer_engine::btree::BTree;
use hammer_engine::crashdev::CrashDevice;
use hammer_engine::{Device, FileDevice, OpenOptions, VolumeSet};
use hammer_ondisk::*;
use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::Arc;
use support::*;

type Key = (i64, i64);
type Model = BTreeMap<Key, Vec<u8>>;

fn open(dev: Arc<dyn Device>, writable: bool) -> hammer_engine::Result<VolumeSet> {
    VolumeSet::open_devices(
        vec![("crash.img".into(), dev)],
        &OpenOptions {
            writable,
            recover: true,
            cache_bytes: 8 << 20,
        },
    )
}

fn elm(k: Key, tid: u64) -> HammerBtreeLeafElm {
    HammerBtreeLeafElm {
        base: HammerBaseElm {
            obj_id: k.0,
            key: k.1,
            rec_type: HAMMER_RECTYPE_DATA,
            localization: HAMMER_LOCALIZE_MISC,
            create_tid: tid,
            obj_type: HAMMER_OBJTYPE_REGFILE,
            btype: b'R',
            ..Default::default()
        },
        ..Default::default()
    }
}

/// One transaction: inserts and removals, then a flush. Updates `model`
/// only when everything succeeded.
fn transaction(
    set: &mut VolumeSet,
    model: &mut Model,
    tids: &mut HashMap<Key, u64>,
    rng: &mut Rng,
    tid: u64,
) -> hammer_engine::Result<()> {
    let root = set.header().vol0_btree_root;
    let mut next = model.clone();
    let mut next_tids = tids.clone();
    for _ in 0..40 {
        let k = (rng.below(400) as i64 + 2, rng.below(20) as i64);
        if next.contains_key(&k) {
            continue;
        }
        let len = 16 + rng.below(200);
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let off = set.alloc(HAMMER_ZONE_SMALL_DATA_INDEX, len as u64)?;
        set.write(off, &data)?;
        let mut e = elm(k, tid);
        e.data_offset = off;
        e.data_len = len as i32;
        e.data_crc = leaf_data_crc(set.crc_kind(), HAMMER_RECTYPE_DATA, &data);
        BTree::new(set, root).insert(&e)?;
        next.insert(k, data);
        next_tids.insert(k, tid);
    }
    for _ in 0..12 {
        if next.is_empty() {
            break;
        }
        let i = rng.below(next.len());
        let k = *next.keys().nth(i).unwrap();
        let t = next_tids[&k];
        let old = BTree::new(set, root)
            .remove(&elm(k, t).base)?
            .expect("model and tree agree");
        set.free(old.data_offset, old.data_len as u64)?;
        next.remove(&k);
        next_tids.remove(&k);
    }
    set.header_mut().vol0_next_tid = tid;
    set.flush()?;
    *model = next;
    *tids = next_tids;
    Ok(())
}

/// Runs the workload; returns the models after each completed flush and
/// the index of the flush that failed, if one did.
fn workload(dev: Arc<dyn Device>, flushes: usize) -> (Vec<Model>, Option<usize>) {
    let mut set = open(dev, true).unwrap();
    let mut model = Model::new();
    let mut tids = HashMap::new();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut states = vec![model.clone()];
    for k in 0..flushes {
        let tid = 0x1_0000_0010 + k as u64;
        if transaction(&mut set, &mut model, &mut tids, &mut rng, tid).is_err() {
            return (states, Some(k));
        }
        states.push(model.clone());
    }
    (states, None)
}

fn read_model(set: &VolumeSet) -> Result<Model, String> {
    read_model_checked(set, true)
}

/// The records of the workload's key range, after checking the B-tree and,
/// with `checkmap`, the freemap against it.
fn read_model_checked(set: &VolumeSet, checkmap: bool) -> Result<Model, String> {
    let mut set_ro = set;
    let _ = &mut set_ro;
    let mut out = Model::new();
    let mut elms = Vec::new();
    let from = HammerBaseElm {
        localization: HAMMER_LOCALIZE_MISC,
        obj_id: 2,
        rec_type: HAMMER_RECTYPE_DATA,
        key: i64::MIN,
        create_tid: 1,
        ..Default::default()
    };
    let to = HammerBaseElm {
        obj_id: 1000,
        ..from
    };
    let reader = hammer_engine::fsread::FsReader::new(set, 0);
    let _ = reader;
    let mut ro = hammer_engine::store::ReadOnlyStore(set);
    let root = set.header().vol0_btree_root;
    let t = BTree::new(&mut ro, root);
    t.check()
        .map_err(|e| format!("B-tree invariants after recovery: {e}"))?;
    let report = if checkmap {
        hammer_cli::cmd_checkmap::collect(set).map_err(|e| format!("checkmap: {e}"))?
    } else {
        Default::default()
    };
    if report.error_count() != 0 || !report.bad_nodes.is_empty() {
        return Err(format!(
            "checkmap after recovery: {} mismatches, {} bad nodes",
            report.error_count(),
            report.bad_nodes.len()
        ));
    }
    t.scan(&from, &to, &mut |e| {
        elms.push(*e);
        ControlFlow::Continue(())
    })
    .unwrap();
    for e in elms {
        let d = set.read(e.data_offset, e.data_len as usize).unwrap();
        assert!(
            leaf_data_crc_ok(set.version(), HAMMER_RECTYPE_DATA, &d, e.data_crc).is_some(),
            "data CRC after recovery"
        );
        out.insert((e.base.obj_id, e.base.key), d);
    }
    Ok(out)
}

#[test]
fn crash_at_every_barrier() {
    let img = materialize("v7-longlabel").unwrap();
    let base: Arc<dyn Device> =
        Arc::new(FileDevice::open(img.path("vol0.img").to_str().unwrap(), false).unwrap());
    let flushes = 10 * scale();
    // A clean run gives the barrier count and the expected states.
    let clean = Arc::new(CrashDevice::new(base.clone()));
    let (states, failed) = workload(clean.clone(), flushes);
    assert_eq!(failed, None);
    let total = clean.barriers();
    assert!(total >= 4 * flushes, "{total} barriers");
    // The clean result itself.
    let reopened = open(Arc::new(clean.after_crash(0, false)), false).unwrap();
    assert_eq!(&read_model(&reopened).unwrap(), states.last().unwrap());

    let mut rng = Rng(42);
    let mut points = 0;
    for c in 0..total {
        let dev = Arc::new(CrashDevice::new(base.clone()));
        dev.crash_after_barriers(c);
        let (_, failed) = workload(dev.clone(), flushes);
        let k = failed.expect("the crash stops the workload");
        let pending = dev.pending_writes().min(63);
        let all = (1u64 << pending) - 1;
        let mut subsets = vec![(0u64, false), (all, false), (all, true)];
        // Random subsets of the writes in flight, torn or not: with the
        // three above, 49 images per barrier (thousands per run).
        for _ in 0..46 * scale() {
            subsets.push((rng.next() & all, rng.next() & 1 == 1));
        }
        for (keep, tear) in subsets {
            let crashed: Arc<dyn Device> = Arc::new(dev.after_crash(keep, tear));
            let set = open(crashed.clone(), true).unwrap_or_else(|e| {
                panic!("crash point {c} keep {keep:x} tear {tear}: recovery failed: {e}")
            });
            let got = read_model(&set).unwrap_or_else(|e| {
                panic!(
                    "crash point {c} (flush {k}) keep {keep:x} tear {tear} pending {pending}: {e}"
                )
            });
            assert!(got == states[k] || got == states[k + 1], "crash point {c} (flush {k}) keep {keep:x} tear {tear}: state is neither before nor after the flush");
            // Recovery is idempotent and leaves a clean FIFO.
            drop(set);
            let again = open(crashed, false).unwrap();
            assert_eq!(read_model_checked(&again, false).unwrap(), got);
            let st = again.fifo_state().unwrap();
            assert!(st.records.is_empty(), "FIFO still active after recovery");
            points += 1;
        }
    }
    eprintln!("{points} crash images recovered over {total} barriers");
}

/// A flush that empties a big-block must not hand it back to the free pool
/// before the flush is final; the next flush does.
#[test]
fn emptied_big_block_released_only_after_the_flush() {
    let img = materialize("v7-longlabel").unwrap();
    let base: Arc<dyn Device> =
        Arc::new(FileDevice::open(img.path("vol0.img").to_str().unwrap(), false).unwrap());
    let dev = Arc::new(CrashDevice::new(base));
    let mut set = open(dev.clone(), true).unwrap();
    let root = set.header().vol0_btree_root;
    let data = vec![0x5Au8; 65536];
    let mut elms = Vec::new();
    for i in 0..200i64 {
        let off = set.alloc(HAMMER_ZONE_LARGE_DATA_INDEX, 65536).unwrap();
        set.write(off, &data).unwrap();
        let mut e = elm((7, (i + 1) * 65536), 0x1_0000_0010);
        e.data_offset = off;
        e.data_len = 65536;
        e.data_crc = leaf_data_crc(set.crc_kind(), HAMMER_RECTYPE_DATA, &data);
        BTree::new(&mut set, root).insert(&e).unwrap();
        elms.push(e);
    }
    set.flush().unwrap();
    let free0 = set.header().vol0_stat_freebigblocks;
    let first_block = xlate_to_zone2(elms[0].data_offset) & !HAMMER_BIGBLOCK_MASK;
    for e in &elms {
        BTree::new(&mut set, root).remove(&e.base).unwrap().unwrap();
        set.free(e.data_offset, 65536).unwrap();
    }
    // Still owned while the flush that empties it is being written.
    let (l2, ..) = set.layer2(first_block).unwrap().unwrap();
    assert_eq!((l2.zone, l2.bytes_free), (10, 8 << 20));
    set.flush().unwrap();
    // Final now: released in memory, durable after the next flush.
    let (l2, ..) = set.layer2(first_block).unwrap().unwrap();
    assert_eq!((l2.zone, l2.append_off), (0, 0));
    assert_eq!(set.header().vol0_stat_freebigblocks, free0 + 1);
    set.flush().unwrap();
    let re = open(Arc::new(dev.after_crash(0, false)), false).unwrap();
    let (l2, ..) = re.layer2(first_block).unwrap().unwrap();
    assert_eq!(l2.zone, 0);
    assert!(read_model(&re).unwrap().is_empty());
}
