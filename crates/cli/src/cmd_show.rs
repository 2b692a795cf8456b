//! `hammer -f vols show [lo[:objid[:rt[:key[:tid]]]]] [filter,nofilter,obfuscate,indent]`:
//! the offline dump of DragonFly HAMMER's B-tree. This module owns the walk
//! from `vol0_btree_root`, the per-node and per-element sanity flags the
//! DragonFly tool computes (bad CRC, mirror TID, count, child/parent link,
//! key range against the parent's bounds), the big-block fill column taken
//! from the freemap, the decoding of each record's data (inodes, directory
//! entries, PFS, snapshots, config, FIX, hexdumps), the search key with its
//! `*` markers and seek/filter modes, and the `-v` zone statistics. The
//! output is byte-identical to DragonFly's `hammer show` wherever that tool
//! itself completes.
//!
//! Disk data is untrusted. Where DragonFly's tool would dereference a NULL
//! buffer or abort (an unreadable node or record, a node cycle, an element
//! count larger than the node), we print what it would have printed up to
//! that point, then a line containing `** hammerfs:` saying what could not
//! be shown, and carry on with the rest of the tree: a user inspecting a
//! damaged volume wants to see everything that is still readable. Such a run
//! ends with an error (exit 1) so scripts notice the dump is incomplete.

use crate::common::{open_volumes, print_preamble, Opts, ZoneStats};
use crate::{CliError, CliResult};
use hammer_engine::VolumeSet;
use hammer_ondisk::*;
use std::collections::HashSet;
use std::io::{self, Write};
use zerocopy::FromBytes;

/// Deepest B-tree level we descend to. A real HAMMER tree of 2^64 records
/// is about a dozen levels deep, so anything deeper is damage (or a chain
/// built to exhaust the stack).
const MAX_DEPTH: usize = 64;
/// Nested blockmap lookups allowed when the freemap itself is addressed
/// through a zone that needs the freemap (only on damaged headers).
const MAX_LOOKUP_NEST: u32 = 4;
const BUF: usize = HAMMER_BUFSIZE as usize;
/// Record data larger than this is dumped only up to it (the DragonFly
/// tool works in 16 KiB buffers and says `....` for the rest).
const HEXDUMP_MAX: usize = BUF;
/// How far past a record's structure an unterminated C string is followed
/// (DragonFly's tool reads on to the next NUL in its buffer).
const STRING_MARGIN: usize = 256;
/// Marker of every line (or field) that DragonFly's tool never prints.
const OURS: &str = "** hammerfs:";

/// The search key of the first argument; `limit` is how many of its
/// fields were given (1..=5).
#[derive(Clone, Copy, Default)]
struct Search {
    base: HammerBaseElm,
    limit: u32,
}

impl Search {
    /// Compares an element's key with the search key on the first `limit`
    /// fields: negative if the element sorts before it, 0 if they match.
    fn cmp(&self, e: &HammerBaseElm) -> i32 {
        let s = &self.base;
        if e.localization != s.localization {
            return if e.localization < s.localization {
                -5
            } else {
                5
            };
        }
        if self.limit == 1 {
            return 0;
        }
        if e.obj_id != s.obj_id {
            return if e.obj_id < s.obj_id { -4 } else { 4 };
        }
        if self.limit == 2 {
            return 0;
        }
        if e.rec_type != s.rec_type {
            return if e.rec_type < s.rec_type { -3 } else { 3 };
        }
        if self.limit == 3 {
            return 0;
        }
        if e.key != s.key {
            return if e.key < s.key { -2 } else { 2 };
        }
        if self.limit == 4 {
            return 0;
        }
        // create_tid 0 means "+infinity", as in the B-tree order.
        match (e.create_tid, s.create_tid) {
            (0, 0) => 0,
            (0, _) => 1,
            (_, 0) => -1,
            (a, b) => (a > b) as i32 - (a < b) as i32,
        }
    }
}

/// C's `strtoul`/`strtoull` in base 16 on a 64-bit system: leading white
/// space, a sign, an optional `0x`, then hex digits up to the first other
/// character; no digits gives 0. `None` on overflow (ERANGE).
fn strtou64_hex(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let mut neg = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        neg = b[i] == b'-';
        i += 1;
    }
    if i + 1 < b.len() && b[i] == b'0' && (b[i + 1] | 0x20) == b'x' {
        i += 2;
    }
    let mut v: u64 = 0;
    while i < b.len() {
        let d = match (b[i] as char).to_digit(16) {
            Some(d) => d as u64,
            None => break,
        };
        v = v.checked_mul(16)?.checked_add(d)?;
        i += 1;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Parses the search argument. `Ok(None)` means no search (`none`).
fn parse_search(arg: &str) -> CliResult<Option<Search>> {
    if arg == "none" {
        return Ok(None);
    }
    let fields: Vec<&str> = arg.split(':').collect();
    if fields.len() > 5 {
        // DragonFly's tool frees a pointer into the middle of its copy of
        // the argument here and dies in glibc (SIGABRT, no output when
        // piped). We refuse the argument instead.
        return Err(CliError(format!(
            "show: invalid search key \"{arg}\": at most 5 fields (lo:objid:rt:key:tid) are allowed"
        )));
    }
    let mut s = Search {
        limit: fields.len() as u32,
        ..Default::default()
    };
    for (i, f) in fields.iter().enumerate() {
        let name = if i == 0 || i == 2 {
            "strtoul"
        } else {
            "strtoull"
        };
        let v = strtou64_hex(f)
            .ok_or_else(|| CliError(format!("{name}: Numerical result out of range")))?;
        match i {
            0 => s.base.localization = v as u32,
            1 => s.base.obj_id = v as i64,
            2 => s.base.rec_type = v as u16,
            3 => s.base.key = v as i64,
            _ => s.base.create_tid = v,
        }
    }
    Ok(Some(s))
}

pub fn run(opts: &Opts, args: &[String], out: &mut dyn Write) -> CliResult<()> {
    let set = open_volumes(opts)?;
    if args.len() > 2 {
        return Err(CliError("Too many options specified".into()));
    }
    let (mut filter, mut obfuscate, mut indent) = (-1, false, false);
    if let Some(o) = args.get(1) {
        for tok in o.split(',') {
            match tok {
                "filter" => filter = 1,
                "nofilter" => filter = 0,
                "obfuscate" => obfuscate = true,
                "indent" => indent = true,
                _ => {} // unknown words are ignored, as DragonFly does
            }
        }
    }
    print_preamble(out, &set)?;
    // The DragonFly tool parses the key after printing the preamble, so an
    // out-of-range number fails with the preamble already out.
    let search = match args.first() {
        Some(a) => parse_search(a)?,
        None => None,
    };
    if let (Some(s), Some(a)) = (&search, args.first()) {
        let mut line = format!("arg=\"{a}\" lo={:08x}", s.base.localization);
        if s.limit > 1 {
            line += &format!(" objid={:016x}", s.base.obj_id as u64);
        }
        if s.limit > 2 {
            line += &format!(" rt={:02x}", s.base.rec_type);
        }
        if s.limit > 3 {
            line += &format!(" key={:016x}", s.base.key as u64);
        }
        if s.limit > 4 {
            line += &format!(" tid={:016x}", s.base.create_tid);
        }
        writeln!(out, "{line}")?;
    }
    let mut sh = Show {
        set: &set,
        out,
        verbose: opts.verbose,
        quiet: opts.quiet,
        version: set.version(),
        search,
        filter,
        obfuscate,
        indent,
        stats: (opts.verbose > 0).then(ZoneStats::default),
        bad_nodes: 0,
        bad_elms: 0,
        bad_recs: 0,
        incidents: 0,
        visited: HashSet::new(),
    };
    let root = set.header().vol0_btree_root;
    sh.print_node(root, HAMMER_MAX_TID, None, 0)?;
    if let Some(st) = &sh.stats {
        st.print(sh.out)?;
    }
    if sh.bad_nodes != 0 || sh.verbose > 0 {
        writeln!(sh.out, "{} bad nodes", sh.bad_nodes)?;
    }
    if sh.bad_elms != 0 || sh.verbose > 0 {
        writeln!(sh.out, "{} bad elms", sh.bad_elms)?;
    }
    if sh.bad_recs != 0 || sh.verbose > 0 {
        writeln!(sh.out, "{} bad records", sh.bad_recs)?;
    }
    if sh.incidents > 0 {
        return Err(CliError(format!(
            "show: the B-tree could not be shown completely: {} unreadable or skipped item(s), see the lines marked \"{OURS}\"",
            sh.incidents
        )));
    }
    Ok(())
}

/// The left bound of a subtree (the parent's element) and its right bound
/// (the parent's next element, possibly the right boundary).
#[derive(Clone, Copy)]
struct Bounds {
    lbe: HammerBaseElm,
    rbe: HammerBaseElm,
}

struct Show<'a> {
    set: &'a VolumeSet,
    out: &'a mut dyn Write,
    verbose: i32,
    quiet: i32,
    version: u32,
    search: Option<Search>,
    /// -1 seek then show everything, 0 show everything, 1 only in-range.
    filter: i32,
    obfuscate: bool,
    indent: bool,
    stats: Option<ZoneStats>,
    bad_nodes: i32,
    bad_elms: i32,
    bad_recs: i32,
    /// Places where DragonFly's tool would have crashed or looped and we
    /// skipped something instead.
    incidents: u32,
    /// Nodes already shown: a repeat means a cycle (or shared subtree),
    /// which the C tool would follow forever.
    visited: HashSet<u64>,
}

/// Element flag bits, in column order after `B-`.
const F_LEFT: u8 = 1;
const F_RIGHT: u8 = 2;
const F_TYPE: u8 = 4;
const F_CHILD: u8 = 8;
const F_MIRROR: u8 = 16;

fn btype_char(b: u8) -> char {
    match b {
        b'I' | b'L' | b'R' | b'D' => b as char,
        0 => '*',
        _ => '?',
    }
}

/// Bytes up to the first NUL (or the end of the slice).
fn cstr(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(n) => &b[..n],
        None => b,
    }
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8)
        .map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
        .unwrap_or(0)
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
        .unwrap_or(0)
}

fn uuid_at(b: &[u8], off: usize) -> String {
    let mut u = HammerUuid::default();
    if let Some(s) = b.get(off..off + 16) {
        u.uuid.copy_from_slice(s);
    }
    u.to_dfly_string()
}

/// libutil's `hexdump(ptr, len, hdr, 0)`: 16 bytes a line with offset,
/// hex columns and a printable-ASCII column.
fn hexdump(out: &mut dyn Write, data: &[u8], hdr: &str) -> io::Result<()> {
    for (n, chunk) in data.chunks(16).enumerate() {
        let mut line = format!("{hdr}{:04x}  ", n * 16);
        for j in 0..16 {
            match chunk.get(j) {
                Some(b) => line += &format!(" {b:02x}"),
                None => line += "   ",
            }
        }
        line += "  |";
        for j in 0..16 {
            line.push(match chunk.get(j) {
                Some(&b) if (b' '..=b'~').contains(&b) => b as char,
                Some(_) => '.',
                None => ' ',
            });
        }
        line += "|\n";
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

impl Show<'_> {
    fn indent(&self, depth: usize) -> String {
        if self.indent {
            "\t".repeat(depth.min(9))
        } else {
            String::new()
        }
    }

    /// The freemap check DragonFly's tool makes for every address outside
    /// zone 2: translate to zone 2 and confirm, through layer1 and layer2,
    /// that the big-block belongs to the address's zone. Errors are the
    /// tool's codes: -1 zone 0/1, -3 beyond the UNDO FIFO, -4 the zone's
    /// blockmap is mashed, -5/-7 layer1/layer2 unreadable, -6 no layer2,
    /// -8 big-block owned by another zone.
    fn lookup(&self, off: u64, nest: u32) -> Result<(u64, HammerBlockmapLayer2), i32> {
        let zone = zone_of(off);
        if zone <= HAMMER_ZONE_RAW_VOLUME_INDEX {
            return Err(-1);
        }
        let h = self.set.header();
        let bm = &h.vol0_blockmap[zone as usize];
        let result = if is_index_record(zone) {
            xlate_to_zone2(off)
        } else if zone == HAMMER_ZONE_UNDO_INDEX {
            if off >= bm.alloc_offset {
                return Err(-3);
            }
            let i = ((off & HAMMER_OFF_SHORT_MASK) >> HAMMER_BIGBLOCK_BITS) as usize;
            let base = *h.vol0_undo_array.get(i).ok_or(-3)?;
            base.wrapping_add(off & HAMMER_BIGBLOCK_MASK)
        } else {
            off
        };
        if is_index_record(zone) && zone_of(bm.alloc_offset) != zone {
            return Err(-4);
        }
        let fm = &h.vol0_blockmap[HAMMER_ZONE_FREEMAP_INDEX as usize];
        let l1_off = fm.phys_offset.wrapping_add(layer1_offset(result));
        let l1 = self
            .read_exact(l1_off, 32, nest + 1)
            .and_then(|b| HammerBlockmapLayer1::read_from_bytes(&b).ok())
            .ok_or(-5)?;
        if l1.phys_offset == HAMMER_BLOCKMAP_UNAVAIL {
            return Err(-6);
        }
        let l2_off = l1.phys_offset.wrapping_add(layer2_offset(result));
        let l2 = self
            .read_exact(l2_off, 16, nest + 1)
            .and_then(|b| HammerBlockmapLayer2::read_from_bytes(&b).ok())
            .ok_or(-7)?;
        if l2.zone as u32 != zone {
            return Err(-8);
        }
        Ok((result, l2))
    }

    /// The 16 KiB buffer holding `off` and the position of `off` in it, or
    /// the lookup error. Zone-2 addresses are read directly, everything
    /// else after the freemap check, as DragonFly's buffer layer does.
    fn piece(&self, off: u64, nest: u32) -> Result<(hammer_engine::cache::Buffer, usize), i32> {
        if nest > MAX_LOOKUP_NEST {
            return Err(-5);
        }
        let z2 = if zone_of(off) == HAMMER_ZONE_RAW_BUFFER_INDEX {
            off
        } else {
            self.lookup(off, nest)?.0
        };
        if zone_of(z2) != HAMMER_ZONE_RAW_BUFFER_INDEX {
            // The C tool asserts here (a corrupt UNDO array entry).
            return Err(-3);
        }
        // A missing volume, or an address past the volume's end: the C tool
        // would assert or fail the read; we call it unreadable.
        let b = self.set.buffer(z2).map_err(|_| -7)?;
        Ok((b, (z2 & HAMMER_BUFMASK) as usize))
    }

    /// Reads `len` bytes at `off`, one buffer at a time, each piece checked
    /// on its own (records may span big-blocks).
    fn read_exact(&self, off: u64, len: usize, nest: u32) -> Option<Vec<u8>> {
        let (v, err) = self.read_upto(off, len, nest);
        (err.is_none()).then_some(v)
    }

    /// Reads up to `len` bytes, stopping at the first unreadable piece;
    /// returns the bytes and the error that stopped it, if any.
    fn read_upto(&self, off: u64, len: usize, nest: u32) -> (Vec<u8>, Option<i32>) {
        let mut v = Vec::with_capacity(len.min(1 << 20));
        let mut cur = off;
        while v.len() < len {
            match self.piece(cur, nest) {
                Ok((b, i)) => {
                    let n = (BUF - i).min(len - v.len());
                    v.extend_from_slice(&b[i..i + n]);
                    cur = cur.wrapping_add(n as u64);
                }
                Err(e) => return (v, Some(e)),
            }
        }
        (v, None)
    }

    fn read_node(&self, off: u64) -> Result<Box<HammerNodeOndisk>, i32> {
        let (b, err) = self.read_upto(off, HAMMER_NODE_SIZE, 0);
        if let Some(e) = err {
            return Err(e);
        }
        HammerNodeOndisk::read_from_bytes(&b)
            .map(Box::new)
            .map_err(|_| -7)
    }

    /// `z<zone>:v<vol>:<l1>:<l2>:<byte>=<fill>%` or `=B<error>`.
    fn fill(&self, off: u64) -> String {
        let head = format!(
            "z{}:v{}:{}:{}:{}=",
            zone_of(off),
            vol_of(off),
            (off & HAMMER_OFF_LONG_MASK) >> 42,
            (off & ((1u64 << 42) - 1)) >> 23,
            off & HAMMER_BIGBLOCK_MASK
        );
        match self.lookup(off, 0) {
            Err(e) => format!("{head}B{e}"),
            Ok((_, l2)) => {
                // C int arithmetic, truncating.
                let fill = l2.bytes_free.wrapping_mul(100) / HAMMER_BIGBLOCK_SIZE as i32;
                format!("{head}{}%", 100i32.wrapping_sub(fill))
            }
        }
    }

    fn print_node(
        &mut self,
        off: u64,
        mirror_limit: u64,
        bounds: Option<Bounds>,
        depth: usize,
    ) -> io::Result<()> {
        let ind = self.indent(depth);
        self.visited.insert(off);
        let node = match self.read_node(off) {
            Ok(n) => n,
            Err(e) => {
                // The C tool prints "BI   NODE <off> " and then crashes.
                self.bad_nodes += 1;
                self.incidents += 1;
                return writeln!(
                    self.out,
                    "{ind}BI   NODE {off:016x} {OURS} node unreadable (blockmap error {e}, fill={}), subtree not shown",
                    self.fill(off)
                );
            }
        };
        let (mut badc, mut badm) = (' ', ' ');
        if node.crc_ok(self.version).is_none() {
            badc = 'B';
        }
        if node.mirror_tid > mirror_limit {
            badc = 'B';
            badm = 'M';
        }
        match HammerNodeOndisk::max_elements(node.type_) {
            None => {
                badc = 'B';
                badm = 'U';
            }
            Some(max) if node.count > max as i32 => {
                badc = 'B';
                badm = 'C';
            }
            Some(_) if node.count == 0 => {
                // An empty node is only legal as the single child of its
                // parent. The C tool crashes when the parent is unreadable
                // (e.g. parent 0); we count that as a bad count.
                let ok = matches!(self.read_node(node.parent), Ok(p) if p.count == 1);
                if !ok {
                    badc = 'B';
                    badm = 'C';
                }
            }
            Some(_) => {}
        }
        if badc != ' ' || badm != ' ' {
            self.bad_nodes += 1;
        }
        let type_c = if node.type_ != 0 {
            node.type_ as char
        } else {
            '?'
        };
        writeln!(
            self.out,
            "{ind}{badc}{badm}   NODE {off:016x} cnt={:02} p={:016x} type={type_c} depth={depth} mirror={:016x} fill={} {{",
            node.count,
            node.parent,
            node.mirror_tid,
            self.fill(off)
        )?;
        if let Some(st) = &mut self.stats {
            st.add_item(off, HAMMER_NODE_SIZE as i64);
        }

        let internal = node.type_ == HAMMER_BTREE_TYPE_INTERNAL;
        let slots = HAMMER_BTREE_LEAF_ELMS;
        let count = node.count;
        let shown = count.clamp(0, slots as i32) as usize;
        for i in 0..shown {
            let marked = match (&self.search, node.type_) {
                (Some(_), HAMMER_BTREE_TYPE_INTERNAL) => !self.out_of_range(&node, i),
                (Some(s), HAMMER_BTREE_TYPE_LEAF) => s.cmp(&node.elms[i].base) == 0,
                _ => false,
            };
            self.print_elm(&node, off, i, bounds.as_ref(), marked, depth)?;
        }
        let mut missing = count > slots as i32;
        if internal {
            if (0..slots as i32).contains(&count) {
                self.print_elm(&node, off, count as usize, bounds.as_ref(), false, depth)?;
            } else {
                missing = true;
            }
        }
        if missing {
            // The C tool would print whatever memory follows the node as
            // further elements (or crash).
            self.incidents += 1;
            writeln!(
                self.out,
                "{ind}     {OURS} element count {count} does not fit the node's {slots} slots; the rest is not shown"
            )?;
        }
        writeln!(self.out, "{ind}     }}")?;

        if internal {
            // Element i's right bound is element i+1, which must be a slot.
            let children = count.clamp(0, slots as i32 - 1) as usize;
            for i in 0..children {
                let e = node.elms[i].internal();
                if self.search.is_some() && self.filter != 0 && self.out_of_range(&node, i) {
                    continue;
                }
                let child = e.subtree_offset;
                if child == 0 {
                    continue;
                }
                let cind = self.indent(depth + 1);
                if self.visited.contains(&child) {
                    self.incidents += 1;
                    writeln!(
                        self.out,
                        "{cind}     {OURS} node {child:016x} was already shown above (B-tree cycle); not shown again"
                    )?;
                } else if depth + 1 >= MAX_DEPTH {
                    self.incidents += 1;
                    writeln!(
                        self.out,
                        "{cind}     {OURS} node {child:016x} is deeper than {MAX_DEPTH} levels; not shown"
                    )?;
                } else {
                    let b = Bounds {
                        lbe: node.elms[i].base,
                        rbe: node.elms[i + 1].base,
                    };
                    self.print_node(child, e.mirror_tid, Some(b), depth + 1)?;
                }
                // Default mode seeks to the key, then shows everything.
                if self.search.is_some() && self.filter == -1 {
                    self.filter = 0;
                }
            }
        }
        Ok(())
    }

    /// Whether internal element `i`'s subtree cannot hold the search key:
    /// it starts after the key, or the next element starts at/before it.
    fn out_of_range(&self, node: &HammerNodeOndisk, i: usize) -> bool {
        let Some(s) = &self.search else {
            return false;
        };
        if s.cmp(&node.elms[i].base) > 0 {
            return true;
        }
        let Some(next) = node.elms.get(i + 1) else {
            return true;
        };
        let c = s.cmp(&next.base);
        if s.limit >= 5 {
            c <= 0
        } else {
            c < 0
        }
    }

    fn elm_flags(
        &self,
        node: &HammerNodeOndisk,
        node_off: u64,
        i: usize,
        bounds: Option<&Bounds>,
    ) -> u8 {
        let elm = &node.elms[i];
        let b = &elm.base;
        let lr = |rbn: bool| -> u8 {
            let Some(bd) = bounds else { return 0 };
            if btree_cmp(b, &bd.lbe) < 0 {
                F_LEFT
            } else if (rbn && btree_cmp(b, &bd.rbe) > 0) || (!rbn && btree_cmp(b, &bd.rbe) >= 0) {
                F_RIGHT
            } else {
                0
            }
        };
        let mut f = 0;
        match node.type_ {
            HAMMER_BTREE_TYPE_INTERNAL => {
                let ie = elm.internal();
                if ie.mirror_tid > node.mirror_tid {
                    f |= F_MIRROR;
                }
                if i as i64 == node.count as i64 {
                    if ie.subtree_offset != 0 {
                        f |= F_CHILD;
                    }
                    f |= if b.btype == HAMMER_BTREE_TYPE_NONE {
                        lr(true)
                    } else {
                        F_TYPE
                    };
                } else {
                    let linked = ie.subtree_offset != 0
                        && matches!(self.read_node(ie.subtree_offset), Ok(c) if c.parent == node_off);
                    if !linked {
                        f |= F_CHILD;
                    }
                    f |= match b.btype {
                        HAMMER_BTREE_TYPE_INTERNAL | HAMMER_BTREE_TYPE_LEAF => lr(false),
                        _ => F_TYPE,
                    };
                }
            }
            HAMMER_BTREE_TYPE_LEAF => {
                if elm.data_offset == 0 || elm.data_len == 0 {
                    f |= F_CHILD;
                }
                // newfs's root leaf (no parent, two records) has mirror 0.
                if node.mirror_tid == 0 && !(node.parent == 0 && node.count == 2) {
                    f |= F_MIRROR;
                }
                let m = node.mirror_tid;
                if (b.create_tid != 0 && m != 0 && b.create_tid > m)
                    || (b.delete_tid != 0 && m != 0 && b.delete_tid > m)
                {
                    f |= F_MIRROR;
                }
                f |= if b.btype == HAMMER_BTREE_TYPE_RECORD {
                    lr(false)
                } else {
                    F_TYPE
                };
            }
            _ => f |= F_TYPE,
        }
        f
    }

    fn print_elm(
        &mut self,
        node: &HammerNodeOndisk,
        node_off: u64,
        i: usize,
        bounds: Option<&Bounds>,
        marked: bool,
        depth: usize,
    ) -> io::Result<()> {
        let ind = self.indent(depth);
        let elm = node.elms[i];
        let b = elm.base;
        let f = self.elm_flags(node, node_off, i, bounds);
        let col = |bit: u8, c: char| if f & bit != 0 { c } else { '-' };
        let flags = format!(
            "{}-{}{}{}{}{}",
            if f != 0 { 'B' } else { 'G' },
            col(F_LEFT, 'L'),
            col(F_RIGHT, 'R'),
            col(F_TYPE, 'T'),
            col(F_CHILD, 'C'),
            col(F_MIRROR, 'M')
        );
        if f != 0 {
            self.bad_elms += 1;
        }
        let internal = node.type_ == HAMMER_BTREE_TYPE_INTERNAL;
        // Elements left behind by a root split carry the key space's
        // extremes: shown as '>' (left end) and '<' (right end).
        let root_beg = internal
            && i == 0
            && b.localization == 0
            && b.obj_id == i64::MIN
            && b.key == i64::MIN
            && b.create_tid == 1
            && b.delete_tid == 1
            && b.rec_type == 0
            && b.obj_type == 0
            && b.btype != HAMMER_BTREE_TYPE_NONE;
        let root_end = internal
            && i != 0
            && b.localization == u32::MAX
            && b.obj_id == i64::MAX
            && b.key == i64::MAX
            && b.create_tid == u64::MAX
            && b.delete_tid == 0
            && b.rec_type == u16::MAX
            && b.obj_type == 0
            && b.btype == HAMMER_BTREE_TYPE_NONE;
        let mark = if root_beg {
            '>'
        } else if root_end {
            '<'
        } else if b.delete_tid != 0 {
            'd'
        } else {
            ' '
        };
        let label = if internal && node.count as i64 == i as i64 {
            "RBN"
        } else {
            "ELM"
        };
        writeln!(
            self.out,
            "{ind}{flags} {label} {i:2} {} lo={:08x} objid={:016x} rt={:02x} key={:016x} tid={:016x}",
            btype_char(b.btype),
            b.localization,
            b.obj_id as u64,
            b.rec_type,
            b.key as u64,
            b.create_tid
        )?;
        write!(
            self.out,
            "{ind}               {mark} del={:016x} ot={:02x}",
            b.delete_tid, b.obj_type
        )?;
        let star = if marked { " *" } else { "" };
        match node.type_ {
            HAMMER_BTREE_TYPE_INTERNAL => {
                let ie = elm.internal();
                write!(
                    self.out,
                    " suboff={:016x} mirror={:016x}{star}",
                    ie.subtree_offset, ie.mirror_tid
                )?;
            }
            HAMMER_BTREE_TYPE_LEAF => {
                if b.btype == HAMMER_BTREE_TYPE_RECORD {
                    self.print_leaf_record(&elm, depth)?;
                } else {
                    write!(self.out, " badtype={}", b.btype)?;
                }
                write!(self.out, "{star}")?;
            }
            _ => {}
        }
        writeln!(self.out)
    }

    /// Checks a record's data CRC the way the volume's version reads it.
    /// Returns the CRC prefix (`i` CRC-32C, `o` old CRC-32) and the error
    /// code: DragonFly's `ZO` (no data), `BI` (inode not 128 bytes), `Bx`
    /// (mismatch, computed CRC 0), `BX` (mismatch), or our `unreadable`
    /// where the C tool would crash (lookup failure, negative length).
    fn check_data_crc(&self, elm: &HammerBtreeLeafElm) -> (&'static str, Option<String>) {
        if elm.data_offset == 0 || elm.data_len == 0 {
            return ("", Some("ZO".into()));
        }
        let v7 = self.version >= 7;
        let (c32c, c32) = if elm.base.rec_type == HAMMER_RECTYPE_INODE {
            if elm.data_len != 128 {
                return ("", Some("BI".into()));
            }
            match self.read_exact(elm.data_offset, HAMMER_INODE_CRCSIZE, 0) {
                Some(d) => (crc32c(&d), crc32(&d)),
                None => return ("", Some("unreadable".into())),
            }
        } else {
            if elm.data_len < 0 {
                return ("", Some("unreadable".into()));
            }
            // Streamed: a damaged data_len may claim up to 2 GiB.
            let (mut a, mut b) = (0u32, 0u32);
            let mut left = elm.data_len as usize;
            let mut cur = elm.data_offset;
            while left > 0 {
                match self.piece(cur, 0) {
                    Ok((buf, i)) => {
                        let n = (BUF - i).min(left);
                        a = crc32c_ext(&buf[i..i + n], a);
                        b = crc32_ext(&buf[i..i + n], b);
                        left -= n;
                        cur = cur.wrapping_add(n as u64);
                    }
                    Err(_) => return ("", Some("unreadable".into())),
                }
            }
            (a, b)
        };
        if v7 && c32c == elm.data_crc {
            return ("i", None);
        }
        if c32 == elm.data_crc {
            return ("o", None);
        }
        ("", Some(if c32 == 0 { "Bx" } else { "BX" }.into()))
    }

    fn print_leaf_record(&mut self, elm: &HammerBtreeLeafElm, depth: usize) -> io::Result<()> {
        write!(
            self.out,
            " dataoff={:016x}/{}",
            elm.data_offset, elm.data_len
        )?;
        let (prefix, err) = self.check_data_crc(elm);
        write!(self.out, " {prefix}crc={:08x}", elm.data_crc)?;
        let unreadable = err.as_deref() == Some("unreadable");
        if let Some(e) = &err {
            write!(self.out, " error={e}")?;
            self.bad_recs += 1;
        }
        write!(self.out, " fill={}", self.fill(elm.data_offset))?;
        if unreadable {
            // The C tool dereferences the missing buffer here.
            self.incidents += 1;
            let p = format!("{}{:17}", self.indent(depth), "");
            write!(
                self.out,
                "\n{p}{OURS} record data unreadable (offset {:016x}, length {})",
                elm.data_offset, elm.data_len
            )?;
        } else if self.quiet < 2 {
            self.print_record(elm, depth)?;
        }
        if let Some(st) = &mut self.stats {
            st.add_item(elm.data_offset, elm.data_len as i64);
        }
        Ok(())
    }

    /// The decoded record data, appended to the element's second line.
    fn print_record(&mut self, elm: &HammerBtreeLeafElm, depth: usize) -> io::Result<()> {
        if elm.data_offset == 0 || elm.data_len == 0 {
            // `error=ZO` already says it; the C tool asserts here.
            return Ok(());
        }
        let ind = self.indent(depth);
        let p = format!("{ind}{:17}", "");
        let len = elm.data_len;
        let need = match elm.base.rec_type {
            HAMMER_RECTYPE_INODE => 128,
            HAMMER_RECTYPE_DIRENTRY => HAMMER_ENTRY_NAME_OFF + len.max(0) as usize,
            HAMMER_RECTYPE_PFS => HAMMER_PFSD_SIZE,
            HAMMER_RECTYPE_SNAPSHOT => 128,
            HAMMER_RECTYPE_CONFIG => 1024,
            _ => (len.max(0) as usize).min(HEXDUMP_MAX),
        };
        // The C tool sees the rest of the record's first 16 KiB buffer, and
        // an unterminated string runs on past the structure. Read a margin
        // for that (bounded, so a dump stays linear in the records).
        let rest = BUF - (elm.data_offset & HAMMER_BUFMASK) as usize;
        let want = need.max((need + STRING_MARGIN).min(rest));
        let (mut d, err) = self.read_upto(elm.data_offset, want, 0);
        if d.is_empty() {
            self.incidents += 1;
            return write!(
                self.out,
                "\n{p}{OURS} record data unreadable (blockmap error {})",
                err.unwrap_or(0)
            );
        }
        if d.len() < need {
            d.resize(need, 0);
        }
        let out = &mut *self.out;
        match elm.base.rec_type {
            HAMMER_RECTYPE_UNKNOWN => write!(out, "\n{p}unknown")?,
            HAMMER_RECTYPE_INODE => {
                let ino = HammerInodeData::read_from_bytes(&d[..128]).expect("128 bytes");
                write!(
                    out,
                    "\n{p}inode size={} nlinks={} mode={:05o} uflags={:08x} caps={:02x} pobjid={:016x} ot={:02x}\n",
                    ino.size as i64,
                    ino.nlinks as i64,
                    ino.mode,
                    ino.uflags,
                    ino.cap_flags,
                    ino.parent_obj_id as u64,
                    ino.obj_type
                )?;
                write!(
                    out,
                    "{p}      ctime={:016x} mtime={:016x} atime={:016x}",
                    ino.ctime, ino.mtime, ino.atime
                )?;
                if ino.ext[0] != 0 {
                    // Unterminated targets run on into mtime, as in C.
                    out.write_all(b" symlink=\"")?;
                    out.write_all(cstr(&d[88..]))?;
                    out.write_all(b"\"")?;
                }
            }
            HAMMER_RECTYPE_DIRENTRY => {
                write!(
                    out,
                    "\n{p}dir-entry objid={:016x} lo={:08x}",
                    u64_at(&d, 0),
                    u32_at(&d, 8)
                )?;
                if !self.obfuscate {
                    // printf("%*.*s", n, n, name): at most n bytes, right
                    // aligned to n; a negative n left-aligns to -n and
                    // drops the precision.
                    let n = len as i64 - HAMMER_ENTRY_NAME_OFF as i64;
                    let tail = &d[HAMMER_ENTRY_NAME_OFF..];
                    out.write_all(b" name=\"")?;
                    if n >= 0 {
                        let name = cstr(&tail[..(n as usize).min(tail.len())]);
                        let pad = n as usize - name.len();
                        out.write_all(&vec![b' '; pad])?;
                        out.write_all(name)?;
                    } else {
                        let name = cstr(tail);
                        out.write_all(name)?;
                        let pad = ((-n) as usize).saturating_sub(name.len());
                        out.write_all(&vec![b' '; pad])?;
                    }
                    out.write_all(b"\"")?;
                }
            }
            HAMMER_RECTYPE_FIX => {
                if elm.base.key == HAMMER_FIXKEY_SYMLINK {
                    let n = len.max(0) as usize;
                    let name = cstr(&d[..n.min(d.len())]);
                    write!(out, "\n{p}fix-symlink name=\"")?;
                    out.write_all(&vec![b' '; n - name.len()])?;
                    out.write_all(name)?;
                    out.write_all(b"\"")?;
                }
            }
            HAMMER_RECTYPE_PFS => {
                write!(
                    out,
                    "\n{p}pfs sync_beg_tid={:016x} sync_end_tid={:016x}\n",
                    u64_at(&d, 8),
                    u64_at(&d, 16)
                )?;
                // These continuation lines are not indented, as in C.
                writeln!(out, "{:17}    shared_uuid={}", "", uuid_at(&d, 40))?;
                writeln!(out, "{:17}    unique_uuid={}", "", uuid_at(&d, 56))?;
                write!(
                    out,
                    "{:17}    mirror_flags={:08x} label=\"",
                    "",
                    u32_at(&d, 76)
                )?;
                out.write_all(cstr(&d[80..]))?;
                out.write_all(b"\"")?;
                if d[144] != 0 {
                    out.write_all(b" snapshots=\"")?;
                    out.write_all(cstr(&d[144..]))?;
                    out.write_all(b"\"")?;
                }
            }
            HAMMER_RECTYPE_SNAPSHOT => {
                write!(out, "\n{p}snapshot tid={:016x} label=\"", u64_at(&d, 0))?;
                out.write_all(cstr(&d[32..]))?;
                out.write_all(b"\"")?;
            }
            HAMMER_RECTYPE_CONFIG => {
                if self.verbose > 2 {
                    write!(out, "\n{p}config text=\"\n")?;
                    for tok in cstr(&d).split(|&c| c == b'\r' || c == b'\n') {
                        if !tok.is_empty() {
                            write!(out, "{p}            ")?;
                            out.write_all(tok)?;
                            out.write_all(b"\n")?;
                        }
                    }
                    write!(out, "{p}            \"")?;
                }
            }
            HAMMER_RECTYPE_DATA | HAMMER_RECTYPE_DB | HAMMER_RECTYPE_EXT => {
                let level = if elm.base.rec_type == HAMMER_RECTYPE_DATA {
                    3
                } else {
                    2
                };
                if self.verbose > level {
                    out.write_all(b"\n")?;
                    let n = (len.max(0) as usize).min(HEXDUMP_MAX);
                    hexdump(out, &d[..n], "\t\t  ")?;
                    if len as usize > HEXDUMP_MAX {
                        out.write_all(b"\t\t  ....\n")?;
                    }
                }
            }
            rt => {
                // The C tool aborts on a record type it does not know.
                write!(
                    out,
                    "\n{p}{OURS} unknown record type {rt:04x}, data not decoded"
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtoul_like_c() {
        assert_eq!(strtou64_hex("zz"), Some(0));
        assert_eq!(strtou64_hex(" 5"), Some(5));
        assert_eq!(strtou64_hex("0x10"), Some(16));
        assert_eq!(strtou64_hex("-1"), Some(u64::MAX));
        assert_eq!(strtou64_hex("-0x2"), Some(u64::MAX - 1));
        assert_eq!(strtou64_hex("ffffffffffffffff"), Some(u64::MAX));
        assert_eq!(strtou64_hex("1ffffffffffffffff"), None);
        assert_eq!(strtou64_hex(""), Some(0));
        assert_eq!(strtou64_hex("0x"), Some(0));
    }

    #[test]
    fn search_args() {
        let s = parse_search("zz:-1:0x10: 5:0").unwrap().unwrap();
        assert_eq!(s.limit, 5);
        assert_eq!(s.base.obj_id, -1);
        assert_eq!(s.base.rec_type, 0x10);
        assert_eq!(s.base.key, 5);
        assert_eq!(parse_search("").unwrap().unwrap().limit, 1);
        assert_eq!(parse_search("::").unwrap().unwrap().limit, 3);
        assert!(parse_search("none").unwrap().is_none());
        assert!(parse_search("1:2:3:4:5:").is_err());
        assert!(parse_search("1:2:3:4:5").is_ok());
    }

    #[test]
    fn hexdump_format() {
        let mut v = Vec::new();
        hexdump(&mut v, &(0u8..40).collect::<Vec<_>>(), "\t\t  ").unwrap();
        let s = String::from_utf8(v).unwrap();
        let last = s.lines().last().unwrap();
        assert_eq!(
            last,
            "\t\t  0020   20 21 22 23 24 25 26 27                          | !\"#$%&'        |"
        );
    }
}
