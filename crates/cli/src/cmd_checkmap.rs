//! `hammer -f vols checkmap`: recomputes how full every big-block should be
//! from what references it, and compares that with the freemap's layer2
//! entries (DragonFly's checkmap). Three sources are collected, in this
//! order: the freemap itself (its layer1 and layer2 big-blocks), the B-tree
//! (nodes, and the data of leaf records), and the UNDO FIFO (its records).
//!
//! [`collect`] does the recomputation and returns a [`CheckmapReport`]; it
//! prints nothing, so it can also serve as a consistency checker. [`run`]
//! prints the report the way DragonFly does.
//!
//! DragonFly's rules, kept here because they decide the output:
//! * the first reference to a big-block fixes the zone it should belong to
//!   and snapshots its layer2 entry; later references only subtract bytes;
//! * an address that does not translate (wrong zone in its layer2 entry,
//!   layer1 UNAVAIL, …) is still accounted, against a zeroed layer2 entry
//!   (and a zero layer2 big-block address when the layer1 entry was not
//!   usable), which then shows up as a mismatch;
//! * freemap big-blocks are tracked under their zone-4 address, all others
//!   under their zone-2 address.
//!
//! Where DragonFly would loop or crash on damage we stay bounded: each
//! B-tree node is descended into once (a cycle or shared child is not
//! walked again), element counts are clamped to the node's capacity, and an
//! illegal FIFO record size at a 512-byte boundary steps a whole sector.

use crate::cmd_blockmap::Zone2Reader;
use crate::common::{open_volumes, print_preamble, Opts, ZoneStats};
use crate::CliResult;
use hammer_engine::VolumeSet;
use hammer_ondisk::*;
use std::collections::{BTreeMap, HashSet};
use std::io::{BufWriter, Write};

const BB: u64 = HAMMER_BIGBLOCK_SIZE;

/// What the references say about one big-block, next to its layer2 entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockUsage {
    /// Zone-2 address of the layer2 big-block holding the entry (from the
    /// layer1 entry; 0 when the layer1 entry could not be used).
    pub layer2_block: u64,
    /// Index of the entry in that layer2 big-block.
    pub index: u32,
    /// The big-block, as first referenced (zone 4 for the freemap's own
    /// big-blocks, zone 2 otherwise).
    pub address: u64,
    /// Zone of the first reference.
    pub expected_zone: u8,
    /// 8 MiB minus every referenced length (DragonFly's `int` arithmetic).
    pub expected_free: i32,
    /// The layer2 entry as read when first referenced, zeroed if the lookup
    /// failed.
    pub ondisk: HammerBlockmapLayer2,
}

/// A disagreement between the recomputed usage and the freemap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// `BZ`: the layer2 entry names another zone.
    Zone { calc: u8, got: u8 },
    /// `BM`: same zone, different free byte count.
    Free { calc: i32, got: i32 },
}

impl BlockUsage {
    pub fn mismatch(&self) -> Option<Mismatch> {
        if self.expected_zone != self.ondisk.zone {
            Some(Mismatch::Zone {
                calc: self.expected_zone,
                got: self.ondisk.zone,
            })
        } else if self.expected_free != self.ondisk.bytes_free {
            Some(Mismatch::Free {
                calc: self.expected_free,
                got: self.ondisk.bytes_free,
            })
        } else {
            None
        }
    }
}

/// A B-tree node that could not be read or failed its CRC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadNode {
    pub offset: u64,
    pub depth: i32,
    /// The node's header fields when it could be read (bad CRC); `None`
    /// when its address did not translate or could not be read.
    pub header: Option<NodeHeader>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeHeader {
    pub count: i32,
    pub parent: u64,
    pub type_: u8,
    pub mirror_tid: u64,
}

/// Something wrong met while scanning the UNDO FIFO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UndoProblem {
    /// A record head whose size is impossible at its position.
    IllegalSize { offset: u64 },
    /// The FIFO big-block holding `offset` could not be read; the scan went
    /// on at the next big-block.
    Unreadable { offset: u64, reason: String },
}

/// Everything `checkmap` found.
#[derive(Clone, Debug, Default)]
pub struct CheckmapReport {
    /// Every referenced big-block, ordered by layer2 big-block address then
    /// entry index (the order DragonFly prints them in).
    pub blocks: Vec<BlockUsage>,
    pub bad_nodes: Vec<BadNode>,
    pub undo_problems: Vec<UndoProblem>,
}

impl CheckmapReport {
    pub fn mismatches(&self) -> impl Iterator<Item = (&BlockUsage, Mismatch)> {
        self.blocks
            .iter()
            .filter_map(|b| b.mismatch().map(|m| (b, m)))
    }

    pub fn error_count(&self) -> usize {
        self.mismatches().count()
    }
}

/// The outcome of DragonFly's `blockmap_lookup_save`.
struct Lookup {
    /// The translated address (zone 2, or zone 4 for freemap addresses).
    result: u64,
    layer1: HammerBlockmapLayer1,
    layer2: HammerBlockmapLayer2,
    ok: bool,
}

struct Collector<'a> {
    set: &'a VolumeSet,
    version: u32,
    freemap_phys: u64,
    r1: Zone2Reader<'a>,
    r2: Zone2Reader<'a>,
    data: Zone2Reader<'a>,
    tracks: BTreeMap<(u64, u32), BlockUsage>,
    report: CheckmapReport,
}

impl<'a> Collector<'a> {
    /// Translates `addr` and fetches its freemap entries, validating that
    /// the big-block belongs to the address's zone.
    fn lookup(&mut self, addr: u64) -> Lookup {
        let mut lk = Lookup {
            result: HAMMER_OFF_BAD,
            layer1: HammerBlockmapLayer1::default(),
            layer2: HammerBlockmapLayer2::default(),
            ok: false,
        };
        let zone = zone_of(addr);
        if zone <= HAMMER_ZONE_RAW_VOLUME_INDEX {
            return lk;
        }
        let hdr = self.set.header();
        if zone >= HAMMER_ZONE_BTREE_INDEX {
            lk.result = xlate_to_zone2(addr);
            if zone_of(hdr.vol0_blockmap[zone as usize].alloc_offset) != zone {
                return lk;
            }
        } else if zone == HAMMER_ZONE_UNDO_INDEX {
            let undo = &hdr.vol0_blockmap[HAMMER_ZONE_UNDO_INDEX as usize];
            if addr >= undo.alloc_offset {
                return lk;
            }
            let i = (short_of(addr) / BB) as usize;
            let Some(&base) = hdr.vol0_undo_array.get(i) else {
                return lk;
            };
            lk.result = base.wrapping_add(addr & HAMMER_BIGBLOCK_MASK);
        } else {
            lk.result = addr;
        }
        let l1_addr = self.freemap_phys.wrapping_add(layer1_index(lk.result) * 32);
        let Ok(l1) = self.r1.read_struct::<HammerBlockmapLayer1>(l1_addr) else {
            return lk;
        };
        if l1.phys_offset == HAMMER_BLOCKMAP_UNAVAIL {
            return lk;
        }
        lk.layer1 = l1;
        let l2_addr = l1.phys_offset.wrapping_add(layer2_index(lk.result) * 16);
        let Ok(l2) = self.r2.read_struct::<HammerBlockmapLayer2>(l2_addr) else {
            return lk;
        };
        if l2.zone as u32 != zone {
            return lk;
        }
        lk.layer2 = l2;
        lk.ok = true;
        lk
    }

    /// Charges `length` bytes at `addr` to its big-block, which should
    /// belong to `zone`.
    fn account(&mut self, addr: u64, length: i32, zone: u32) {
        let lk = self.lookup(addr);
        let key = lk.layer1.phys_offset;
        let index = layer2_index(lk.result) as u32;
        let t = self.tracks.entry((key, index)).or_insert(BlockUsage {
            layer2_block: key,
            index,
            address: lk.result & !HAMMER_BIGBLOCK_MASK,
            expected_zone: zone as u8,
            expected_free: BB as i32,
            ondisk: lk.layer2,
        });
        t.expected_free = t.expected_free.wrapping_sub(length);
    }

    /// Phase 1: the layer1 big-block and every layer2 big-block in use.
    fn freemap(&mut self) -> hammer_engine::Result<()> {
        let fm = self.freemap_phys;
        self.account(
            xlate_to_zone_x(HAMMER_ZONE_FREEMAP_INDEX, fm),
            BB as i32,
            HAMMER_ZONE_FREEMAP_INDEX,
        );
        for i in 0..HAMMER_BLOCKMAP_RADIX1 {
            let a = fm.wrapping_add(i * 32);
            let l1: HammerBlockmapLayer1 = self.r1.read_struct(a).map_err(|e| {
                hammer_engine::Error::Invalid(format!(
                    "Failed to read freemap layer1 entry at {a:016x}: {e}"
                ))
            })?;
            if l1.phys_offset != HAMMER_BLOCKMAP_UNAVAIL {
                self.account(
                    xlate_to_zone_x(HAMMER_ZONE_FREEMAP_INDEX, l1.phys_offset),
                    BB as i32,
                    HAMMER_ZONE_FREEMAP_INDEX,
                );
            }
        }
        Ok(())
    }

    /// Reads a B-tree node the way DragonFly does: zone-2 addresses
    /// directly, anything else only if its freemap lookup succeeds.
    fn read_node(&mut self, addr: u64) -> Option<HammerNodeOndisk> {
        let z2 = if zone_of(addr) == HAMMER_ZONE_RAW_BUFFER_INDEX {
            addr
        } else {
            let lk = self.lookup(addr);
            if !lk.ok || zone_of(lk.result) != HAMMER_ZONE_RAW_BUFFER_INDEX {
                return None;
            }
            lk.result
        };
        self.data.read_struct::<HammerNodeOndisk>(z2).ok()
    }

    /// Phase 2: depth-first over the B-tree, in DragonFly's order (each
    /// child is charged, then descended into, before the next element).
    /// An explicit stack keeps deep or cyclic trees from exhausting ours.
    fn btree(&mut self) {
        let root = self.set.header().vol0_btree_root;
        self.account(root, HAMMER_NODE_SIZE as i32, HAMMER_ZONE_BTREE_INDEX);
        let mut entered: HashSet<u64> = HashSet::new();
        // (node, depth, next element)
        let mut stack: Vec<(Box<HammerNodeOndisk>, i32, usize)> = Vec::new();
        let mut pending = Some((root, 0i32));
        loop {
            if let Some((addr, depth)) = pending.take() {
                entered.insert(addr);
                let node = self.read_node(addr);
                let bad_crc = node
                    .as_ref()
                    .is_some_and(|n| n.crc_ok(self.version).is_none());
                if node.is_none() || bad_crc {
                    self.report.bad_nodes.push(BadNode {
                        offset: addr,
                        depth,
                        header: node.as_ref().map(|n| NodeHeader {
                            count: n.count,
                            parent: n.parent,
                            type_: n.type_,
                            mirror_tid: n.mirror_tid,
                        }),
                    });
                }
                if let Some(n) = node {
                    stack.push((Box::new(n), depth, 0));
                }
            }
            let Some((node, depth, next)) = stack.last_mut() else {
                break;
            };
            let count = node.count.clamp(0, HAMMER_BTREE_LEAF_ELMS as i32) as usize;
            if *next >= count {
                stack.pop();
                continue;
            }
            let elm = node.elms[*next];
            *next += 1;
            let depth = *depth;
            match node.type_ {
                HAMMER_BTREE_TYPE_INTERNAL => {
                    let sub = elm.internal().subtree_offset;
                    if sub != 0 {
                        self.account(sub, HAMMER_NODE_SIZE as i32, HAMMER_ZONE_BTREE_INDEX);
                        if !entered.contains(&sub) {
                            pending = Some((sub, depth + 1));
                        }
                    }
                }
                HAMMER_BTREE_TYPE_LEAF if elm.data_offset != 0 => {
                    let zone = match elm.base.rec_type {
                        HAMMER_RECTYPE_INODE
                        | HAMMER_RECTYPE_DIRENTRY
                        | HAMMER_RECTYPE_EXT
                        | HAMMER_RECTYPE_FIX
                        | HAMMER_RECTYPE_PFS
                        | HAMMER_RECTYPE_SNAPSHOT
                        | HAMMER_RECTYPE_CONFIG => HAMMER_ZONE_META_INDEX,
                        HAMMER_RECTYPE_DATA | HAMMER_RECTYPE_DB => {
                            if elm.data_len >= HAMMER_BUFSIZE as i32 {
                                HAMMER_ZONE_LARGE_DATA_INDEX
                            } else {
                                HAMMER_ZONE_SMALL_DATA_INDEX
                            }
                        }
                        _ => HAMMER_ZONE_UNAVAIL_INDEX,
                    };
                    let len = elm.data_len.wrapping_add(15) & !15;
                    self.account(elm.data_offset, len, zone);
                }
                _ => {}
            }
        }
    }

    /// Phase 3: every record head of the FIFO, first to last big-block,
    /// whatever the first/next pointers say.
    fn undo(&mut self) {
        let mut reader = Zone2Reader::new(self.set);
        walk_fifo(self.set, &mut reader, |ev| match ev {
            FifoEvent::Record { offset, head, .. } => {
                if matches!(
                    head.hdr_type,
                    HAMMER_HEAD_TYPE_PAD
                        | HAMMER_HEAD_TYPE_DUMMY
                        | HAMMER_HEAD_TYPE_UNDO
                        | HAMMER_HEAD_TYPE_REDO
                ) {
                    self.account(offset, head.hdr_size as i32, HAMMER_ZONE_UNDO_INDEX);
                }
            }
            FifoEvent::IllegalSize { offset } => {
                self.report
                    .undo_problems
                    .push(UndoProblem::IllegalSize { offset });
            }
            FifoEvent::Unreadable { offset, reason } => {
                self.report
                    .undo_problems
                    .push(UndoProblem::Unreadable { offset, reason });
            }
        });
    }
}

/// One step of a FIFO scan.
pub(crate) enum FifoEvent<'b> {
    /// A record head at `offset`; `raw` holds the first bytes of the record
    /// (zero-filled where they could not be read).
    Record {
        offset: u64,
        head: HammerFifoHead,
        raw: &'b [u8; 48],
    },
    /// The record just reported has an impossible size; the scan moves to
    /// the next 512-byte boundary.
    IllegalSize { offset: u64 },
    /// The FIFO could not be read at `offset`; the scan moves to the next
    /// big-block.
    Unreadable { offset: u64, reason: String },
}

/// Walks the UNDO FIFO from its start to `alloc_offset` the way DragonFly's
/// tools do: record by record by `hdr_size`, jumping to the next 512-byte
/// boundary after an impossible size. Unlike DragonFly, an impossible size
/// at a boundary moves one sector on instead of looping forever.
pub(crate) fn walk_fifo(set: &VolumeSet, reader: &mut Zone2Reader, mut f: impl FnMut(FifoEvent)) {
    let hdr = set.header();
    let end = hdr.vol0_blockmap[HAMMER_ZONE_UNDO_INDEX as usize].alloc_offset;
    let mut off = HAMMER_ZONE_UNDO;
    let mut raw = [0u8; 48];
    while off < end {
        let z2 = hdr
            .vol0_undo_array
            .get((short_of(off) / BB) as usize)
            .map(|&base| base.wrapping_add(off & HAMMER_BIGBLOCK_MASK));
        let head = match z2.map(|z| reader.read_struct::<HammerFifoHead>(z)) {
            Some(Ok(h)) => h,
            Some(Err(e)) => {
                f(FifoEvent::Unreadable {
                    offset: off,
                    reason: e.to_string(),
                });
                off = (off & !HAMMER_BIGBLOCK_MASK).saturating_add(BB);
                continue;
            }
            None => {
                f(FifoEvent::Unreadable {
                    offset: off,
                    reason: "outside the UNDO array".into(),
                });
                off = (off & !HAMMER_BIGBLOCK_MASK).saturating_add(BB);
                continue;
            }
        };
        let z2 = z2.unwrap_or_default();
        // The rest of the record head, as far as its 16 KiB buffer goes
        // (DragonFly reads inside the one buffer holding the head).
        raw.fill(0);
        raw[..16].copy_from_slice(zerocopy::IntoBytes::as_bytes(&head));
        let room = (HAMMER_BUFSIZE - (z2 & HAMMER_BUFMASK)).min(48) as usize;
        if room > 16 {
            let _ = reader.read_into(z2 + 16, &mut raw[16..room]);
        }
        f(FifoEvent::Record {
            offset: off,
            head,
            raw: &raw,
        });
        let size = head.hdr_size as u64;
        let room = HAMMER_UNDO_ALIGN - (off & HAMMER_UNDO_MASK);
        if size & (HAMMER_HEAD_ALIGN - 1) != 0 || size == 0 || size > room {
            f(FifoEvent::IllegalSize { offset: off });
            let next = off.saturating_add(HAMMER_UNDO_MASK) & !HAMMER_UNDO_MASK;
            off = if next == off {
                off.saturating_add(HAMMER_UNDO_ALIGN)
            } else {
                next
            };
        } else {
            off += size;
        }
    }
}

/// Recomputes the usage of every referenced big-block. Fails only when the
/// freemap's layer1 table itself cannot be read.
pub fn collect(set: &VolumeSet) -> hammer_engine::Result<CheckmapReport> {
    let mut c = Collector {
        set,
        version: set.version(),
        freemap_phys: set.header().vol0_blockmap[HAMMER_ZONE_FREEMAP_INDEX as usize].phys_offset,
        r1: Zone2Reader::new(set),
        r2: Zone2Reader::new(set),
        data: Zone2Reader::new(set),
        tracks: BTreeMap::new(),
        report: CheckmapReport::default(),
    };
    c.freemap()?;
    c.btree();
    c.undo();
    let mut report = c.report;
    report.blocks = c.tracks.into_values().collect();
    Ok(report)
}

pub fn run(opts: &Opts, _args: &[String], out: &mut dyn Write) -> CliResult<()> {
    let set = open_volumes(opts)?;
    let mut w = BufWriter::with_capacity(1 << 16, out);
    print_preamble(&mut w, &set)?;
    w.flush()?;
    let report = collect(&set)?;
    print_report(&mut w, &report, opts.verbose)?;
    w.flush()?;
    Ok(())
}

/// Prints a report as DragonFly's checkmap does: each phase's problems are
/// glued to its "Collecting …: " prefix, then one line per mismatch (and
/// per correct big-block with `-v`), statistics and counters.
pub fn print_report(w: &mut dyn Write, r: &CheckmapReport, verbose: i32) -> std::io::Result<()> {
    writeln!(w, "Collecting allocation info from freemap: done")?;
    write!(w, "Collecting allocation info from B-Tree: ")?;
    for b in &r.bad_nodes {
        match &b.header {
            None => writeln!(w, "BI   NODE {:016x} (IO ERROR)", b.offset)?,
            Some(h) => {
                write!(
                    w,
                    "B    NODE {:016x} cnt={:02} p={:016x} type=",
                    b.offset, h.count, h.parent
                )?;
                // The type is printed as a raw byte, whatever it is.
                w.write_all(&[if h.type_ == 0 { b'?' } else { h.type_ }])?;
                writeln!(w, " depth={} mirror={:016x}", b.depth, h.mirror_tid)?;
            }
        }
    }
    writeln!(w, "done")?;
    write!(w, "Collecting allocation info from UNDO: ")?;
    for p in &r.undo_problems {
        match p {
            UndoProblem::IllegalSize { .. } => {
                writeln!(w, "Illegal size, skipping to next boundary")?
            }
            UndoProblem::Unreadable { offset, reason } => writeln!(
                w,
                "Unreadable UNDO at {offset:016x} ({reason}), skipping to next big-block"
            )?,
        }
    }
    writeln!(w, "done")?;

    let mut stats = (verbose >= 1).then(ZoneStats::default);
    let mut errors = 0;
    for b in &r.blocks {
        if let Some(s) = stats.as_mut() {
            s.add_layer2(b.ondisk.zone, b.ondisk.bytes_free);
        }
        match b.mismatch() {
            Some(Mismatch::Zone { calc, got }) => {
                errors += 1;
                writeln!(
                    w,
                    "BZ\tblock={:016x} calc zone={:<2}, got zone={:<2}",
                    b.address, calc, got
                )?;
            }
            Some(Mismatch::Free { calc, got }) => {
                errors += 1;
                writeln!(
                    w,
                    "BM\tblock={:016x} zone={:<2} calc {} free, got {}",
                    b.address, b.ondisk.zone, calc, got
                )?;
            }
            None if verbose >= 1 => writeln!(
                w,
                "\tblock={:016x} zone={:<2} {} free (correct)",
                b.address, b.ondisk.zone, b.expected_free
            )?,
            None => {}
        }
    }
    if let Some(s) = &stats {
        s.print(w)?;
    }
    if !r.bad_nodes.is_empty() || verbose >= 1 {
        writeln!(w, "{} bad nodes", r.bad_nodes.len())?;
    }
    if errors != 0 || verbose >= 1 {
        writeln!(w, "{errors} errors")?;
    }
    Ok(())
}
