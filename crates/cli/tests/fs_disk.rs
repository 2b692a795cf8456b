//! The filesystem API under stress: a full volume (ENOSPC must be clean,
//! the volume consistent, earlier data intact, and space reusable without
//! history), and crashes at every write barrier of a file-level workload
//! (the recovered tree must be the one of the last completed sync or of the
//! sync in progress, never a mix).

mod support;

use hammer_engine::btree::BTree;
use hammer_engine::crashdev::CrashDevice;
use hammer_engine::error::{Error, FsError};
use hammer_engine::fs::{Fs, NewObject};
use hammer_engine::{Device, FileDevice, OpenOptions, VolumeSet};
use hammer_ondisk::*;
use std::sync::Arc;
use support::*;

fn check_volume(set: &mut VolumeSet) {
    let report = hammer_cli::cmd_checkmap::collect(set).unwrap();
    assert_eq!(report.error_count(), 0, "checkmap mismatches");
    assert!(report.bad_nodes.is_empty(), "bad nodes");
    let root = set.header().vol0_btree_root;
    BTree::new(set, root).check().unwrap();
}

fn small_volume(dir: &std::path::Path, size: u64) -> String {
    newfs(
        &dir.join("small.img"),
        size,
        &["-f", "-u", "8M", "-L", "SMALL"],
    )
}

/// A 400 MiB volume in `dir`, opened read-write, and its path.
fn open_small(dir: &std::path::Path) -> (Fs, String) {
    let path = small_volume(dir, 400 << 20);
    let fs = Fs::open(std::slice::from_ref(&path), false).unwrap();
    (fs, path)
}

/// A new empty file `name` in the root directory.
fn new_file(fs: &mut Fs, name: &[u8]) -> i64 {
    fs.create(1, name, NewObject::File, 0o644, 0, 0)
        .unwrap()
        .ino
}

fn is_enospc(e: &Error) -> bool {
    matches!(e, Error::Fs(FsError::NoSpace))
}

/// Writes 1 MiB files until the volume is full; returns how many fit.
/// Each file's bytes are its own (a read served stale bytes shows).
fn fill(fs: &mut Fs, prefix: &str) -> usize {
    let seed = prefix.bytes().map(usize::from).sum::<usize>();
    for i in 0.. {
        let chunk: Vec<u8> = (0..1 << 20)
            .map(|j| ((j + 7 * i + 13 * seed) % 251) as u8)
            .collect();
        let name = format!("{prefix}{i:04}");
        let ino = match fs.create(1, name.as_bytes(), NewObject::File, 0o644, 0, 0) {
            Ok(a) => a.ino,
            Err(e) if is_enospc(&e) => return i,
            Err(e) => panic!("create: {e}"),
        };
        match fs.write(ino, 0, &chunk) {
            Ok(_) => {}
            Err(e) if is_enospc(&e) => {
                fs.unlink(1, name.as_bytes()).unwrap();
                return i;
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    unreachable!()
}

#[test]
fn full_volume_without_history() {
    let t = tempfile::tempdir().unwrap();
    let path = small_volume(t.path(), 200 << 20);
    let mut fs = Fs::open(std::slice::from_ref(&path), true).unwrap();
    let n = fill(&mut fs, "f");
    assert!(n > 10, "only {n} MiB fit");
    fs.sync().expect("a flush never fails for lack of space");
    let before = dump(&fs, HAMMER_MAX_TID);
    drop(fs);
    let mut fs = Fs::open(std::slice::from_ref(&path), true).unwrap();
    assert_eq!(
        dump(&fs, HAMMER_MAX_TID),
        before,
        "synced data intact after ENOSPC"
    );
    // Free the oldest half (whole big-blocks empty out), then write again.
    for i in 0..n / 2 {
        fs.unlink(1, format!("f{i:04}").as_bytes()).unwrap();
    }
    fs.sync().unwrap();
    fs.sync().unwrap();
    let m = fill(&mut fs, "g");
    assert!(
        m >= n / 2 - 8,
        "after deleting {} MiB only {m} MiB fit again",
        n / 2
    );
    fs.sync().unwrap();
    // The new files took the freed files' space: what this process reads
    // (its caches held the old bytes there) is what the disk holds.
    let live = dump(&fs, HAMMER_MAX_TID);
    drop(fs);
    let fs = Fs::open(std::slice::from_ref(&path), true).unwrap();
    assert_eq!(dump(&fs, HAMMER_MAX_TID), live, "reads after reusing space");
    let mut set = fs.into_volumes();
    check_volume(&mut set);
}

#[test]
fn full_volume_with_history() {
    let t = tempfile::tempdir().unwrap();
    let path = small_volume(t.path(), 200 << 20);
    let mut fs = Fs::open(std::slice::from_ref(&path), false).unwrap();
    let n = fill(&mut fs, "f");
    fs.sync().unwrap();
    let tid = fs.last_tid();
    let before = dump(&fs, HAMMER_MAX_TID);
    // Deleting does not free space while history is kept.
    for i in 0..n / 2 {
        fs.unlink(1, format!("f{i:04}").as_bytes()).unwrap();
    }
    fs.sync().unwrap();
    assert!(fill(&mut fs, "g") <= 1);
    fs.sync().unwrap();
    drop(fs);
    let fs = Fs::open(std::slice::from_ref(&path), false).unwrap();
    assert_eq!(
        dump(&fs, tid),
        before,
        "the full volume's history is intact"
    );
    let mut set = fs.into_volumes();
    check_volume(&mut set);
}

fn open_crash(dev: Arc<dyn Device>) -> hammer_engine::Result<Fs> {
    let set = VolumeSet::open_devices(
        vec![("crash.img".into(), dev)],
        &OpenOptions {
            writable: true,
            recover: true,
            cache_bytes: 8 << 20,
        },
    )?;
    Fs::from_set(set, 0, false)
}

/// A file-level workload: returns the tree after each completed sync, and
/// the index of the sync that failed.
fn workload(dev: Arc<dyn Device>, rounds: usize) -> (Vec<Tree>, Option<usize>) {
    let mut fs = open_crash(dev).unwrap();
    let mut states = vec![dump(&fs, HAMMER_MAX_TID)];
    for r in 0..rounds {
        let res: hammer_engine::Result<()> = (|| {
            let d = fs
                .create(1, format!("d{r}").as_bytes(), NewObject::Dir, 0o755, 0, 0)?
                .ino;
            for i in 0..6 {
                let f = fs
                    .create(d, format!("f{i}").as_bytes(), NewObject::File, 0o644, 0, 0)?
                    .ino;
                fs.write(
                    f,
                    (i * 5000) as u64,
                    &vec![(r * 10 + i) as u8; 3000 + i * 7000],
                )?;
            }
            if r > 0 {
                fs.unlink(1, b"log").or_else(|e| {
                    if matches!(e, Error::Fs(FsError::NotFound)) {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })?;
                fs.rename(
                    1,
                    format!("d{}", r - 1).as_bytes(),
                    1,
                    format!("old{}", r - 1).as_bytes(),
                )?;
            }
            let l = fs.create(1, b"log", NewObject::File, 0o600, 0, 0)?.ino;
            fs.write(l, 0, format!("round {r}\n").as_bytes())?;
            fs.sync()?;
            Ok(())
        })();
        if res.is_err() {
            return (states, Some(r));
        }
        states.push(dump(&fs, HAMMER_MAX_TID));
    }
    (states, None)
}

#[test]
fn crash_during_file_workload() {
    let img = materialize("v7-longlabel").unwrap();
    let base: Arc<dyn Device> =
        Arc::new(FileDevice::open(img.path("vol0.img").to_str().unwrap(), false).unwrap());
    let rounds = 5;
    let clean = Arc::new(CrashDevice::new(base.clone()));
    let (states, failed) = workload(clean.clone(), rounds);
    assert_eq!(failed, None);
    let total = clean.barriers();
    let mut images = 0;
    let mut rng = Rng(7);
    for c in 0..total {
        let dev = Arc::new(CrashDevice::new(base.clone()));
        dev.crash_after_barriers(c);
        let (_, failed) = workload(dev.clone(), rounds);
        let k = failed.expect("the crash stops the workload");
        let all = (1u64 << dev.pending_writes().min(63)) - 1;
        let mut subsets = vec![
            (0, false),
            (all, false),
            (all, true),
            (all & 0x5555_5555_5555_5555, false),
        ];
        for _ in 0..12 * scale() {
            subsets.push((rng.next() & all, rng.next() & 1 == 1));
        }
        for (keep, tear) in subsets {
            let fs = open_crash(Arc::new(dev.after_crash(keep, tear)))
                .unwrap_or_else(|e| panic!("crash point {c}: recovery failed: {e}"));
            let got = dump(&fs, HAMMER_MAX_TID);
            assert!(got == states[k] || got == states[k + 1], "crash point {c} (round {k}) keep {keep:x} tear {tear}: a half-applied sync is visible");
            let mut set = fs.into_volumes();
            check_volume(&mut set);
            images += 1;
        }
    }
    eprintln!("{images} crash images over {total} barriers");
}

#[test]
fn a_writer_excludes_other_users() {
    let img = materialize("v7-longlabel").unwrap();
    let path = img.path("vol0.img").to_string_lossy().into_owned();
    let fs = Fs::open(std::slice::from_ref(&path), false).unwrap();
    let second = Fs::open(std::slice::from_ref(&path), false)
        .err()
        .expect("a second writer is refused");
    assert!(second.to_string().contains("volume is in use"), "{second}");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = hammer_cli::hammer::main(
        "hammer",
        &["-f".into(), path.clone(), "show".into()],
        &mut out,
        &mut err,
    );
    assert_eq!(code, 1);
    assert!(String::from_utf8_lossy(&err).contains("locked for writing"));
    drop(fs);
    let code = hammer_cli::hammer::main(
        "hammer",
        &["-f".into(), path.clone(), "show".into()],
        &mut out,
        &mut err,
    );
    assert_eq!(code, 0, "the lock goes with the writer");
    // Volumes older than version 6 open read-only only.
    let old = materialize("v5-1g").unwrap();
    let e = Fs::open(
        &[old.path("vol0.img").to_string_lossy().into_owned()],
        false,
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("version-upgrade"), "{e}");
}

/// fsync logs REDO records only; a crash afterwards loses nothing that was
/// fsynced: recovery replays it (stage 2), also when the crash hits the
/// next flush at any barrier.
#[test]
fn fsync_survives_crashes_through_redo() {
    let img = materialize("v7-longlabel").unwrap();
    let base: Arc<dyn Device> =
        Arc::new(FileDevice::open(img.path("vol0.img").to_str().unwrap(), false).unwrap());
    let v1: Vec<u8> = (0..50_000u32).map(|i| (i % 200) as u8).collect();
    let mut v2 = v1.clone();
    v2[100..5000].fill(0xEE);
    v2.extend(std::iter::repeat_n(0x42u8, 70_000));
    v2.truncate(110_000);
    let v3 = b"after the flush".to_vec();

    let run = |crash_after: Option<usize>| -> (Arc<CrashDevice>, i64, usize, usize) {
        let dev = Arc::new(CrashDevice::new(base.clone()));
        let mut fs = open_crash(dev.clone()).unwrap();
        let ino = new_file(&mut fs, b"f");
        fs.write(ino, 0, &v1).unwrap();
        fs.sync().unwrap();
        fs.write(ino, 100, &v2[100..5000]).unwrap();
        fs.write(ino, 50_000, &v2[50_000..]).unwrap();
        fs.truncate(ino, 200_000).unwrap();
        fs.truncate(ino, 110_000).unwrap();
        let before_fsync = dev.barriers();
        fs.fsync(ino).unwrap();
        let after_fsync = dev.barriers();
        if let Some(c) = crash_after {
            dev.crash_after_barriers(c);
        }
        let _ = (|| -> hammer_engine::Result<()> {
            fs.create(1, b"other", NewObject::File, 0o644, 0, 0)?;
            fs.truncate(ino, 0)?;
            fs.write(ino, 0, &v3)?;
            fs.sync()?;
            Ok(())
        })();
        (dev, ino, before_fsync, after_fsync)
    };

    let (dev, ino, b0, b1) = run(Some(0));
    assert!(
        b1 - b0 <= 2,
        "fsync by REDO costs at most two barriers, took {}",
        b1 - b0
    );
    // Right after fsync: metadata still says v1; REDO says v2.
    let crashed: Arc<dyn Device> = Arc::new(dev.after_crash(0, false));
    {
        let ro = VolumeSet::open_devices(
            vec![("c".into(), crashed.clone())],
            &OpenOptions {
                writable: false,
                recover: true,
                cache_bytes: 8 << 20,
            },
        )
        .unwrap();
        let r = hammer_engine::fsread::FsReader::new(&ro, 0);
        assert_eq!(
            r.read_file(ino, HAMMER_MAX_TID).unwrap(),
            v1,
            "a read-only open does not replay REDO"
        );
    }
    let fs = open_crash(crashed).unwrap();
    assert_eq!(
        fs.read(ino, 0, 1 << 20, HAMMER_MAX_TID).unwrap(),
        v2,
        "fsynced data replayed"
    );
    let mut set = fs.into_volumes();
    check_volume(&mut set);

    // A crash at each barrier of the flush that follows.
    let (clean, ..) = run(None);
    let total = clean.barriers();
    for c in 0..total.saturating_sub(b1) {
        let (dev, ino, ..) = run(Some(c));
        let all = (1u64 << dev.pending_writes().min(63)) - 1;
        for (keep, tear) in [(0, false), (all, false), (all, true)] {
            let fs = open_crash(Arc::new(dev.after_crash(keep, tear))).unwrap();
            let got = fs.read(ino, 0, 1 << 20, HAMMER_MAX_TID).unwrap();
            assert!(
                got == v2 || got == v3,
                "crash {c} keep {keep:x} tear {tear}: fsynced data lost ({} bytes)",
                got.len()
            );
            let mut set = fs.into_volumes();
            check_volume(&mut set);
        }
    }
}

/// A 400 MiB volume in `dir` holding one synced 1 MiB file of ones: the
/// filesystem, the file, and the free big-blocks after that sync.
fn synced_mib_file(dir: &std::path::Path) -> (Fs, i64, i64) {
    let (mut fs, _) = open_small(dir);
    let ino = new_file(&mut fs, b"f");
    fs.write(ino, 0, &vec![1u8; 1 << 20]).unwrap();
    fs.sync().unwrap();
    let free = fs.volumes().header().vol0_stat_freebigblocks;
    (fs, ino, free)
}

/// Rewriting blocks many times between flushes costs one new record per
/// block at the flush, not one per write (random 4 KiB writes used to leave
/// a freed 16 KiB fragment behind each time).
#[test]
fn rewrites_between_flushes_take_one_record_per_block() {
    let t = tempfile::tempdir().unwrap();
    let (mut fs, ino, free_before) = synced_mib_file(t.path());
    let mut rng = support::Rng(7);
    let mut model = vec![1u8; 1 << 20];
    for _ in 0..5000 {
        let off = rng.below((1 << 20) - 4096);
        let b = rng.next() as u8;
        fs.write(ino, off as u64, &[b; 4096]).unwrap();
        model[off..off + 4096].fill(b);
    }
    fs.sync().unwrap();
    let used = free_before - fs.volumes().header().vol0_stat_freebigblocks;
    assert!(
        used <= 1,
        "5000 rewrites of a 1 MiB file took {used} big-blocks"
    );
    assert!(fs.read(ino, 0, 1 << 20, HAMMER_MAX_TID).unwrap() == model);
    let mut set = fs.into_volumes();
    check_volume(&mut set);
}

/// The `Device` methods a test device takes from its in-memory `inner`
/// as they are (its barrier is a no-op: nothing here is about crashes).
macro_rules! inner_device {
    () => {
        fn read_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<()> {
            self.inner.read_at(buf, off)
        }
        fn write_at(&self, buf: &[u8], off: u64) -> std::io::Result<()> {
            self.inner.write_at(buf, off)
        }
        fn size(&self) -> u64 {
            self.inner.size()
        }
        fn sync(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn kind(&self) -> &'static str {
            "REGFILE"
        }
    };
}

/// A device whose write-behind holds blocks until `drain`, and whose next
/// drain can be told to lose them and fail (a write error reported late).
struct LaggingDevice {
    inner: hammer_engine::MemDevice,
    queued: std::sync::Mutex<Vec<(Arc<hammer_engine::device::DataBlock>, u64)>>,
    fail_next_drain: std::sync::atomic::AtomicBool,
}

impl Device for LaggingDevice {
    inner_device!();
    fn write_behind(
        &self,
        block: Arc<hammer_engine::device::DataBlock>,
        off: u64,
    ) -> std::io::Result<()> {
        self.queued.lock().unwrap().push((block, off));
        Ok(())
    }
    fn drain(&self) -> std::io::Result<()> {
        let queued = std::mem::take(&mut *self.queued.lock().unwrap());
        if self
            .fail_next_drain
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(std::io::Error::from_raw_os_error(libc::EIO));
        }
        for (b, off) in queued {
            self.inner.write_at(b.bytes(), off)?;
        }
        Ok(())
    }
}

/// Whole blocks go to the device's write-behind as they are written: they
/// read back before the flush (from memory, the device has nothing yet),
/// a write-behind that fails is written again by the flush, and after it
/// every byte is on the device.
#[test]
fn write_behind_reads_back_and_survives_a_lost_write() {
    let t = tempfile::tempdir().unwrap();
    let path = small_volume(t.path(), 256 << 20);
    let dev = Arc::new(LaggingDevice {
        inner: hammer_engine::MemDevice::from_vec(std::fs::read(&path).unwrap()),
        queued: Default::default(),
        fail_next_drain: Default::default(),
    });
    let mut fs = open_crash(dev.clone()).unwrap();
    let ino = new_file(&mut fs, b"f");
    // 16 KiB blocks below 1 MiB, 64 KiB blocks above; the last one in part.
    let mut rng = Rng(11);
    let data: Vec<u8> = (0..(3 << 20) + 5000).map(|_| rng.next() as u8).collect();
    for c in data.chunks(128 << 10) {
        let off = (c.as_ptr() as usize - data.as_ptr() as usize) as u64;
        assert_eq!(fs.write(ino, off, c).unwrap(), c.len());
    }
    assert!(
        !dev.queued.lock().unwrap().is_empty(),
        "whole blocks were handed to the write-behind"
    );
    let len = data.len();
    assert!(fs.read(ino, 0, len, HAMMER_MAX_TID).unwrap() == data);
    dev.fail_next_drain
        .store(true, std::sync::atomic::Ordering::SeqCst);
    fs.sync().unwrap();
    assert!(fs.read(ino, 0, len, HAMMER_MAX_TID).unwrap() == data);
    drop(fs);
    let copy: Arc<dyn Device> = Arc::new(hammer_engine::MemDevice::from_vec(dev.inner.snapshot()));
    let fs = open_crash(copy).unwrap();
    assert!(
        fs.read(ino, 0, len, HAMMER_MAX_TID).unwrap() == data,
        "every byte on the device after the flush"
    );
    let mut set = fs.into_volumes();
    check_volume(&mut set);
}

/// A file rewritten whole many times between flushes: only its first
/// rewrite is stored at once, the rest wait in memory, so the transaction
/// takes the file's size in new space, not one copy per rewrite.
#[test]
fn whole_rewrites_between_flushes_take_space_once() {
    let t = tempfile::tempdir().unwrap();
    let (mut fs, ino, free_before) = synced_mib_file(t.path());
    for i in 0..100u8 {
        fs.write(ino, 0, &vec![i; 1 << 20]).unwrap();
    }
    fs.sync().unwrap();
    let used = free_before - fs.volumes().header().vol0_stat_freebigblocks;
    assert!(
        used <= 1,
        "100 whole rewrites of a 1 MiB file took {used} big-blocks"
    );
    assert!(fs.read(ino, 0, 1 << 20, HAMMER_MAX_TID).unwrap() == vec![99u8; 1 << 20]);
    let mut set = fs.into_volumes();
    check_volume(&mut set);
}

/// A block rewritten in part takes its old record out of the record cache
/// and later reads skip the record under a rewritten block: the current
/// bytes must still read back before and after the flush, and the old
/// version as of the earlier TID (whose record is then read from disk).
#[test]
fn partial_rewrites_read_back_now_and_as_of_before() {
    let t = tempfile::tempdir().unwrap();
    let (mut fs, _) = open_small(t.path());
    let ino = new_file(&mut fs, b"f");
    // 3 MiB and a bit: 16 KiB records below 1 MiB, 64 KiB records above,
    // and a last block that the end of the file cuts.
    let len = (3usize << 20) + 5000;
    let old: Vec<u8> = (0..len).map(|i| (i / 4096 % 251) as u8).collect();
    fs.write(ino, 0, &old).unwrap();
    let t0 = fs.sync().unwrap();
    // Every record is in the record cache now.
    assert!(fs.read(ino, 0, len, HAMMER_MAX_TID).unwrap() == old);
    let mut model = old.clone();
    let mut rng = support::Rng(11);
    for round in 0..3u8 {
        for i in 0..200 {
            // Now and then a write at the end, which grows the file.
            let off = if i % 50 == 49 {
                model.len() - rng.below(3000)
            } else {
                rng.below(len - 4096)
            };
            let n = 1 + rng.below(4096);
            if off + n > model.len() {
                model.resize(off + n, 0);
            }
            let b = round.wrapping_mul(50).wrapping_add(rng.next() as u8) | 1;
            fs.write(ino, off as u64, &vec![b; n]).unwrap();
            model[off..off + n].fill(b);
            // Reads inside, across and around the rewritten block.
            let a = off.saturating_sub(70_000);
            let e = (off + n + 70_000).min(model.len());
            assert!(
                fs.read(ino, a as u64, e - a, HAMMER_MAX_TID).unwrap() == model[a..e],
                "round {round}: read of {a}..{e} before the flush"
            );
            // The mount's reads (a share of one record where they can):
            // small ones inside, on and next to the rewritten block.
            for (ra, rn) in [(off, n), (off.saturating_sub(4096), 4096), (off + n, 4096)] {
                let re = (ra + rn).min(model.len());
                let got = fs
                    .read_shared(ino, ra as u64, rn, HAMMER_MAX_TID, true)
                    .unwrap();
                assert!(
                    *got == model[ra.min(re)..re],
                    "round {round}: shared read of {ra}..{re} before the flush"
                );
            }
        }
        fs.sync().unwrap();
        // After the flush every small read is a share of a record.
        for _ in 0..100 {
            let ra = rng.below(model.len());
            let rn = 1 + rng.below(8192);
            let re = (ra + rn).min(model.len());
            let got = fs
                .read_shared(ino, ra as u64, rn, HAMMER_MAX_TID, false)
                .unwrap();
            assert!(
                *got == model[ra..re],
                "round {round}: shared read of {ra}..{re} after the flush"
            );
            let old_got = fs.read_shared(ino, ra as u64, rn, t0, false).unwrap();
            let oe = (ra + rn).min(old.len());
            assert!(
                *old_got == old[ra.min(oe)..oe],
                "round {round}: shared read of {ra}..{oe} as of the first flush"
            );
        }
        assert!(
            fs.read(ino, 0, model.len() + 10, HAMMER_MAX_TID).unwrap() == model,
            "round {round}: after the flush"
        );
        assert!(
            fs.read(ino, 0, len, t0).unwrap() == old,
            "round {round}: as of the first flush"
        );
    }
    let mut set = fs.into_volumes();
    check_volume(&mut set);
}

/// A flipped byte in file data on disk is an error naming the record,
/// never wrong bytes: whether the read takes the whole record (straight
/// from the disk into the answer) or a part of it (through the record
/// cache). The records next to it still read.
#[test]
fn corrupt_file_data_is_an_error_not_bytes() {
    let t = tempfile::tempdir().unwrap();
    let path = small_volume(t.path(), 400 << 20);
    let len = 512usize << 10;
    // 16 KiB records; each 4 KiB page starts with a marker naming it.
    let data: Vec<u8> = (0..len)
        .map(|i| {
            let page = i / 4096;
            let marker = format!("PAGE-MARKER-{page:06}-");
            match marker.as_bytes().get(i % 4096) {
                Some(&b) => b,
                None => (i % 253) as u8,
            }
        })
        .collect();
    {
        let mut fs = Fs::open(std::slice::from_ref(&path), false).unwrap();
        let ino = new_file(&mut fs, b"f");
        assert_eq!(
            ino,
            fs.lookup(1, b"f", HAMMER_MAX_TID).unwrap().unwrap().obj_id
        );
        fs.write(ino, 0, &data).unwrap();
        fs.sync().unwrap();
    }
    // Page 40 (inside the record of bytes 160..176 KiB) loses a byte.
    let mut img = std::fs::read(&path).unwrap();
    let marker = b"PAGE-MARKER-000040-";
    let at = img
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("the page is on disk");
    img[at + 100] ^= 0x5a;
    std::fs::write(&path, &img).unwrap();
    drop(img);

    let fs = Fs::open(std::slice::from_ref(&path), false).unwrap();
    let ino = fs.lookup(1, b"f", HAMMER_MAX_TID).unwrap().unwrap().obj_id;
    let whole = fs.read(ino, 0, len, HAMMER_MAX_TID).unwrap_err();
    assert!(whole.to_string().contains("CRC"), "{whole}");
    let part = fs
        .read(ino, 40 * 4096 + 50, 100, HAMMER_MAX_TID)
        .unwrap_err();
    assert!(part.to_string().contains("CRC"), "{part}");
    let one_record = fs
        .read(ino, 160 << 10, 16 << 10, HAMMER_MAX_TID)
        .unwrap_err();
    assert!(one_record.to_string().contains("CRC"), "{one_record}");
    // The records around it are intact.
    let before = fs.read(ino, 0, 160 << 10, HAMMER_MAX_TID).unwrap();
    assert!(before == data[..160 << 10]);
    let after = fs
        .read(ino, 176 << 10, len - (176 << 10), HAMMER_MAX_TID)
        .unwrap();
    assert!(after == data[176 << 10..]);
}

/// Small reads find their record through the record index once a read has
/// put it there; every change that moves, replaces or cuts records must be
/// seen by the next read all the same, and no read of one file may take a
/// record of another.
#[test]
fn record_index_follows_every_change() {
    let t = tempfile::tempdir().unwrap();
    let (mut fs, _) = open_small(t.path());
    let a = new_file(&mut fs, b"a");
    let b = new_file(&mut fs, b"b");
    // 16 KiB records below 1 MiB, 64 KiB records above.
    let len = (1usize << 20) + 4 * 65536;
    let mut model_a: Vec<u8> = (0..len).map(|i| (i / 4096 % 241) as u8).collect();
    let model_b: Vec<u8> = (0..len).map(|i| (i / 4096 % 13) as u8 ^ 0x5a).collect();
    fs.write(a, 0, &model_a).unwrap();
    fs.write(b, 0, &model_b).unwrap();
    let t0 = fs.sync().unwrap();
    let old_a = model_a.clone();
    let check = |fs: &mut Fs, ino: i64, model: &[u8], when: &str| {
        for off in (0..model.len() + 8192).step_by(3000) {
            let end = (off + 4096).min(model.len());
            let got = fs
                .read_shared(ino, off as u64, 4096, HAMMER_MAX_TID, false)
                .unwrap();
            assert!(
                *got == model[off.min(end)..end],
                "{when}: inode {ino}, read of {off}..{end}"
            );
        }
    };
    // Twice: the first pass fills the index, the second reads through it.
    for _ in 0..2 {
        check(&mut fs, a, &model_a, "after the first sync");
        check(&mut fs, b, &model_b, "after the first sync");
    }
    // A whole 64 KiB block written again becomes a new record at once.
    let at = (1usize << 20) + 65536;
    model_a[at..at + 65536].fill(0xee);
    fs.write(a, at as u64, &model_a[at..at + 65536]).unwrap();
    check(
        &mut fs,
        a,
        &model_a,
        "whole block rewritten, before the flush",
    );
    fs.sync().unwrap();
    check(
        &mut fs,
        a,
        &model_a,
        "whole block rewritten, after the flush",
    );
    // A 16 KiB block written in part.
    model_a[20_000..21_000].fill(0x11);
    fs.write(a, 20_000, &model_a[20_000..21_000]).unwrap();
    check(
        &mut fs,
        a,
        &model_a,
        "block written in part, before the flush",
    );
    fs.sync().unwrap();
    check(
        &mut fs,
        a,
        &model_a,
        "block written in part, after the flush",
    );
    // Cut inside a record, then grown again over a hole.
    let cut = (1usize << 20) + 10_000;
    fs.truncate(a, cut as u64).unwrap();
    model_a.truncate(cut);
    check(&mut fs, a, &model_a, "after truncate");
    let far = (1usize << 20) + 300_000;
    fs.write(a, far as u64, b"end").unwrap();
    model_a.resize(far, 0);
    model_a.extend_from_slice(b"end");
    check(&mut fs, a, &model_a, "grown over a hole");
    fs.sync().unwrap();
    check(&mut fs, a, &model_a, "grown over a hole, after the flush");
    // The other file and the old state are untouched.
    check(&mut fs, b, &model_b, "other file");
    let got = fs.read(a, 0, len, t0).unwrap();
    assert!(got == old_a, "as of the first sync");
}

/// A block past the end of its file holds pages only as far as it is
/// written until its flush; the rest of it reads as zeros, before and
/// after the flush, through writes that grow it, truncates that cut it
/// and an fsync's REDO.
#[test]
fn short_dirty_blocks_read_as_whole_blocks() {
    let t = tempfile::tempdir().unwrap();
    let (mut fs, path) = open_small(t.path());
    let mut files = Vec::new();
    for (name, steps) in [
        // 1 KiB: one small record.
        (&b"small"[..], &[(0u64, 1024usize, 1u8)][..]),
        // Grown page by page inside one 16 KiB block, then into the next.
        (
            b"grown",
            &[(0, 100, 2), (10_000, 10, 3), (15_000, 3_000, 4)],
        ),
        // Written first far out (a hole before it), then at the start.
        (b"sparse", &[(200_000, 500, 5), (5, 5, 6)]),
        // Above 1 MiB (64 KiB blocks).
        (b"big", &[(0, 1 << 20, 7), ((1 << 20) + 70_000, 9, 8)]),
    ] {
        let ino = new_file(&mut fs, name);
        let mut model = Vec::new();
        for &(off, n, b) in steps {
            fs.write(ino, off, &vec![b; n]).unwrap();
            let end = off as usize + n;
            if model.len() < end {
                model.resize(end, 0);
            }
            model[off as usize..end].fill(b);
            let got = fs.read(ino, 0, model.len() + 100, HAMMER_MAX_TID).unwrap();
            assert!(got == model, "{name:?} after writing {n} at {off}");
        }
        files.push((ino, model));
    }
    // Cut inside the written pages of one, then grown past them again.
    let (ino, model) = &mut files[1];
    fs.truncate(*ino, 10_005).unwrap();
    model.truncate(10_005);
    fs.truncate(*ino, 16_000).unwrap();
    model.resize(16_000, 0);
    fs.write(*ino, 15_990, b"x").unwrap();
    model[15_990] = b'x';
    let check = |fs: &mut Fs, files: &[(i64, Vec<u8>)], asof: u64, when: &str| {
        for (ino, model) in files {
            let got = fs.read(*ino, 0, model.len() + 100, asof).unwrap();
            assert!(got == *model, "inode {ino} {when}");
            let got = fs.read_shared(*ino, 10_000, 8, asof, false).unwrap();
            let end = model.len().min(10_008);
            assert!(*got == model[10_000.min(end)..end], "inode {ino} {when}");
        }
    };
    check(&mut fs, &files, HAMMER_MAX_TID, "before the flush");
    // An fsync writes REDO for them; the flush makes records of them.
    fs.fsync(files[0].0).unwrap();
    let tid = fs.sync().unwrap();
    check(&mut fs, &files, HAMMER_MAX_TID, "after the flush");
    check(&mut fs, &files, tid, "as of the flush");
    drop(fs);
    let mut fs = Fs::open(std::slice::from_ref(&path), false).unwrap();
    check(&mut fs, &files, HAMMER_MAX_TID, "after a remount");
}

/// A device whose write-behind writes at once until `ok` writes have been
/// made, then loses every block it is handed and says so.
struct FailingBehind {
    inner: hammer_engine::MemDevice,
    ok: std::sync::atomic::AtomicUsize,
    failed: std::sync::atomic::AtomicBool,
}

impl Device for FailingBehind {
    inner_device!();
    fn write_behind(
        &self,
        block: Arc<hammer_engine::device::DataBlock>,
        off: u64,
    ) -> std::io::Result<()> {
        use std::sync::atomic::Ordering::SeqCst;
        if self.ok.load(SeqCst) > 0 && !self.failed.load(SeqCst) {
            self.ok.fetch_sub(1, SeqCst);
            return self.inner.write_at(block.bytes(), off);
        }
        self.failed.store(true, SeqCst);
        Ok(())
    }
    fn drain(&self) -> std::io::Result<()> {
        if self.failed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(())
    }
    fn behind_failed(&self) -> bool {
        self.failed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Blocks whose write-behind is done leave memory before the flush (the
/// reads that follow find them on the device), but once a write-behind
/// has failed every block is kept, and the flush writes them all again.
#[test]
fn write_behind_lets_done_blocks_go_but_keeps_them_after_a_failure() {
    let t = tempfile::tempdir().unwrap();
    let path = small_volume(t.path(), 256 << 20);
    let dev = Arc::new(FailingBehind {
        inner: hammer_engine::MemDevice::from_vec(std::fs::read(&path).unwrap()),
        ok: 20.into(),
        failed: false.into(),
    });
    let mut fs = open_crash(dev.clone()).unwrap();
    let ino = new_file(&mut fs, b"f");
    let mut rng = Rng(5);
    let data: Vec<u8> = (0..(3 << 20) + 5000).map(|_| rng.next() as u8).collect();
    let mut held = Vec::new();
    for c in data.chunks(128 << 10) {
        let off = (c.as_ptr() as usize - data.as_ptr() as usize) as u64;
        assert_eq!(fs.write(ino, off, c).unwrap(), c.len());
        held.push(fs.volumes().behind_bytes());
        let end = off as usize + c.len();
        assert!(fs.read(ino, 0, end, HAMMER_MAX_TID).unwrap() == data[..end]);
    }
    // While writes succeed nothing waits in memory; after the failure
    // everything does.
    assert_eq!(held[0], 0, "{held:?}");
    assert!(held.last().unwrap() > &(1 << 20), "{held:?}");
    assert!(dev.failed.load(std::sync::atomic::Ordering::SeqCst));
    fs.sync().unwrap();
    drop(fs);
    let copy: Arc<dyn Device> = Arc::new(hammer_engine::MemDevice::from_vec(dev.inner.snapshot()));
    let fs = open_crash(copy).unwrap();
    assert!(
        fs.read(ino, 0, data.len(), HAMMER_MAX_TID).unwrap() == data,
        "every byte on the device after the flush"
    );
    let mut set = fs.into_volumes();
    check_volume(&mut set);
}
