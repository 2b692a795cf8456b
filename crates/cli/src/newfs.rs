//! `newfs_hammer`: formats one or more volumes as a new HAMMER (v1)
//! filesystem, reproducing DragonFly BSD's `newfs_hammer(8)` (the Linux
//! userland port) byte for byte: its option parsing (glibc `getopt` with
//! argument permutation, options acted upon as they are parsed), its
//! messages and exit codes, and the image it writes. That image holds the
//! volume headers, the two-level freemap (a layer1 big-block on the root
//! volume and one layer2 big-block per 4 TiB of each volume), the UNDO/REDO
//! FIFO filled with sequenced 512-byte DUMMY records, and the root directory:
//! one B-Tree leaf with the root inode and the root PFS records.
//!
//! The whole layout is planned in memory first and only written at the end,
//! in large chunks, so a run that fails part way leaves the volumes
//! untouched. Regions the real tool never writes (the header junk past the
//! first 16 KiB, the boot area, the memory log, free big-blocks) are left
//! alone, so sparse image files stay sparse.

use crate::common::sizetostr;
use hammer_engine::{Device, FileDevice};
use hammer_ondisk::*;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};
use zerocopy::{FromZeros, IntoBytes};

/// The short program name of `err(3)`-style messages.
const PROG: &str = "newfs_hammer";

const USAGE: &str = "usage: newfs_hammer -L label [-Efh] [-b bootsize] [-m savesize] [-u undosize]\n                    [-C cachesize[:readahead]] [-V version] special ...\n";

/// The option string given to `getopt`.
const OPTSTRING: &[u8] = b"dfEL:j:b:m:u:hC:V:";

const KIB: i64 = 1024;
const MIB: i64 = 1024 * KIB;
const GIB: i64 = 1024 * MIB;
const BB: u64 = HAMMER_BIGBLOCK_SIZE;
const BUF: u64 = HAMMER_BUFSIZE;
/// Bytes of zone-2 space one layer2 big-block describes (4 TiB).
const LAYER2_SPAN: u64 = HAMMER_BLOCKMAP_LAYER2;
/// Layer1 entries per volume: a volume's 2^52 bytes over 4 TiB each.
const REGIONS_PER_VOLUME: u64 = 1 << (52 - 42);
const HEADER_SIZE: i64 = core::mem::size_of::<HammerVolumeOndisk>() as i64;
/// The first transaction id of a new filesystem; the root records get the next.
const FIRST_TID: u64 = 0x0000_0001_0000_0000;
const UNDO_RECORD: usize = 512;
/// The UNDO FIFO is written this many bytes at a time.
const UNDO_CHUNK: usize = 1 << 20;

/// How a run ends early: the messages are already printed, this is the
/// exit status.
struct Exit(i32);

type Res<T> = Result<T, Exit>;

/// Output sinks plus the `err`/`errx`/`warnx` helpers of the C tool.
struct Io<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
}

impl Io<'_> {
    fn warnx(&mut self, msg: &str) {
        let _ = writeln!(self.err, "{PROG}: {msg}");
    }
    fn errx(&mut self, msg: &str) -> Exit {
        self.warnx(msg);
        Exit(1)
    }
    fn usage(&mut self, code: i32) -> Exit {
        let _ = self.err.write_all(USAGE.as_bytes());
        Exit(code)
    }
    /// A stdout line. Write failures are ignored, as printf's are.
    fn line(&mut self, s: &str) {
        let _ = writeln!(self.out, "{s}");
    }
}

/// `strerror` text of an I/O error, without Rust's " (os error N)" suffix.
fn strerror(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s,
    }
}

// ---------------------------------------------------------------------------
// Command line

/// glibc `getopt` over `args` (argv without argv[0]): GNU argument
/// permutation unless `POSIXLY_CORRECT` is set, `--` ends the options.
struct Getopt<'a> {
    args: &'a [String],
    idx: usize,
    /// Position inside a cluster of short options (`-fd`); 0 when between
    /// arguments.
    pos: usize,
    posix: bool,
    operands: Vec<String>,
    done: bool,
}

enum Opt {
    /// An option character and its argument, if it takes one.
    Opt(u8, Option<String>),
    /// getopt's `?`: the message is already printed.
    Bad,
}

impl<'a> Getopt<'a> {
    fn new(args: &'a [String]) -> Self {
        Getopt {
            args,
            idx: 0,
            pos: 0,
            posix: std::env::var_os("POSIXLY_CORRECT").is_some(),
            operands: Vec::new(),
            done: false,
        }
    }

    fn rest_are_operands(&mut self) {
        self.operands.extend(self.args[self.idx..].iter().cloned());
        self.idx = self.args.len();
        self.done = true;
    }

    fn next(&mut self, argv0: &str, io: &mut Io<'_>) -> Option<Opt> {
        loop {
            if self.done {
                return None;
            }
            if self.pos == 0 {
                let Some(arg) = self.args.get(self.idx) else {
                    self.done = true;
                    return None;
                };
                if arg == "--" {
                    self.idx += 1;
                    self.rest_are_operands();
                    return None;
                }
                if arg.len() > 1 && arg.starts_with('-') {
                    self.pos = 1;
                } else if self.posix {
                    self.rest_are_operands();
                    return None;
                } else {
                    self.operands.push(arg.clone());
                    self.idx += 1;
                    continue;
                }
            }
            let arg = self.args[self.idx].as_bytes();
            let c = arg[self.pos];
            self.pos += 1;
            let at_end = self.pos >= arg.len();
            let spec = OPTSTRING.iter().position(|&o| o == c && c != b':');
            let Some(i) = spec else {
                if at_end {
                    self.pos = 0;
                    self.idx += 1;
                }
                let _ = io.err.write_all(argv0.as_bytes());
                let _ = io.err.write_all(b": invalid option -- '");
                let _ = io.err.write_all(&[c]);
                let _ = io.err.write_all(b"'\n");
                return Some(Opt::Bad);
            };
            let takes_arg = OPTSTRING.get(i + 1) == Some(&b':');
            if !takes_arg {
                if at_end {
                    self.pos = 0;
                    self.idx += 1;
                }
                return Some(Opt::Opt(c, None));
            }
            let optarg = if !at_end {
                // Attached argument (`-LX`); the cluster may split a UTF-8
                // character, so rebuild it lossily from bytes.
                Some(String::from_utf8_lossy(&arg[self.pos..]).into_owned())
            } else {
                self.args.get(self.idx + 1).cloned()
            };
            let used = if at_end { 2 } else { 1 };
            self.pos = 0;
            match optarg {
                Some(a) => {
                    self.idx += used;
                    return Some(Opt::Opt(c, Some(a)));
                }
                None => {
                    self.idx += 1;
                    let _ = io.err.write_all(argv0.as_bytes());
                    let _ = io.err.write_all(b": option requires an argument -- '");
                    let _ = io.err.write_all(&[c]);
                    let _ = io.err.write_all(b"'\n");
                    return Some(Opt::Bad);
                }
            }
        }
    }
}

/// C `strtoll(s, &end, 0)`: returns the value (saturated on overflow) and
/// the index of the first unparsed byte.
fn strtoll(s: &str) -> (i64, usize) {
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
    let mut base = 10u32;
    if i < b.len() && b[i] == b'0' {
        if matches!(b.get(i + 1), Some(b'x') | Some(b'X'))
            && b.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit())
        {
            base = 16;
            i += 2;
        } else {
            base = 8;
        }
    }
    let start = i;
    let mut mag: u128 = 0;
    while let Some(d) = b.get(i).and_then(|&c| (c as char).to_digit(base)) {
        mag = (mag * base as u128 + d as u128).min(1 << 64);
        i += 1;
    }
    if i == start && base != 8 {
        // No digits at all: nothing is consumed, not even the sign.
        return (0, 0);
    }
    let v = if neg {
        if mag > 1 << 63 {
            i64::MIN
        } else {
            (mag as i128).wrapping_neg() as i64
        }
    } else if mag > i64::MAX as u128 {
        i64::MAX
    } else {
        mag as i64
    };
    (v, i)
}

/// `getsize`: a number with a mandatory `k`/`m`/`g`/`t` suffix, which must
/// be a multiple of 16 KiB.
fn getsize(io: &mut Io<'_>, s: &str) -> Res<i64> {
    let (v, end) = strtoll(s);
    let mult: i64 = match s.as_bytes().get(end) {
        Some(b't' | b'T') => 1 << 40,
        Some(b'g' | b'G') => 1 << 30,
        Some(b'm' | b'M') => 1 << 20,
        Some(b'k' | b'K') => 1 << 10,
        _ => return Err(io.errx(&format!("Unknown suffix in number '{s}'"))),
    };
    if end + 1 != s.len() {
        return Err(io.errx(&format!("Unknown suffix in number '{s}'")));
    }
    let v = v.wrapping_mul(mult);
    if v & (BUF as i64 - 1) != 0 {
        return Err(io.errx(&format!("Value not an integral multiple of 16K: {s}")));
    }
    Ok(v)
}

/// `-C cachesize[:readahead]`. The values only tune the C tool's buffer
/// cache, so they are validated and dropped.
fn cache_arg_ok(s: &str) -> bool {
    let (_, mut i) = strtoll(s);
    let b = s.as_bytes();
    match b.get(i) {
        Some(b'm' | b'M' | b'k' | b'K') => i += 1,
        None | Some(b':') => {}
        Some(_) => return false,
    }
    if b.get(i) == Some(&b':') {
        let (ra, _) = strtoll(&s[i + 1..]);
        if ra < 0 {
            return false;
        }
    }
    true
}

/// A size option's limits and its messages.
struct Limit {
    min: i64,
    max: i64,
    too_small: &'static str,
    warn_small: &'static str,
    warn_suffix: &'static str,
    too_big: &'static str,
}

const JUNK_LIMIT: Limit = Limit {
    min: HAMMER_MIN_VOL_JUNK as i64,
    max: HAMMER_MAX_VOL_JUNK as i64,
    too_small: "The minimum header junk size is",
    warn_small: "WARNING: You have specified header junk size less than",
    warn_suffix: "",
    too_big: "The maximum header junk size is",
};
const BOOT_LIMIT: Limit = Limit {
    min: HAMMER_BOOT_MINBYTES as i64,
    max: HAMMER_BOOT_MAXBYTES as i64,
    too_small: "The minimum boot area size is",
    warn_small: "WARNING: You have specified boot area size less than",
    warn_suffix: "",
    too_big: "The maximum boot area size is",
};
const MEM_LIMIT: Limit = Limit {
    min: HAMMER_MEM_MINBYTES as i64,
    max: HAMMER_MEM_MAXBYTES as i64,
    too_small: "The minimum memory log size is",
    warn_small: "WARNING: You have specified memory log size less than",
    warn_suffix: "",
    too_big: "The maximum memory log size is",
};
const UNDO_LIMIT: Limit = Limit {
    min: (HAMMER_MIN_UNDO_BIGBLOCKS * BB) as i64,
    max: (HAMMER_MAX_UNDO_BIGBLOCKS * BB) as i64,
    too_small: "The minimum UNDO/REDO FIFO size is",
    warn_small: "WARNING: You have specified an UNDO/REDO FIFO size less than",
    warn_suffix: ", which may lead to VFS panics",
    too_big: "The maximum UNDO/REDO FIFO size is",
};

/// Parses a size option and applies its range check with the force flag as
/// it stands at this point of the command line.
fn sized_option(io: &mut Io<'_>, arg: &str, lim: &Limit, force: bool) -> Res<i64> {
    let v = getsize(io, arg)?;
    if v < lim.min {
        if !force {
            return Err(io.errx(&format!("{} {}", lim.too_small, sizetostr(lim.min))));
        }
        io.warnx(&format!(
            "{} {}{}",
            lim.warn_small,
            sizetostr(lim.min),
            lim.warn_suffix
        ));
    }
    if v > lim.max {
        return Err(io.errx(&format!("{} {}", lim.too_big, sizetostr(lim.max))));
    }
    Ok(v)
}

#[derive(Default)]
struct Options {
    debug: u32,
    force: bool,
    trim: bool,
    label: Option<String>,
    junk: Option<i64>,
    boot: Option<i64>,
    mem: Option<i64>,
    undo: Option<i64>,
    version: Option<u32>,
    volumes: Vec<String>,
}

fn parse_options(argv0: &str, args: &[String], io: &mut Io<'_>) -> Res<Options> {
    let mut o = Options::default();
    let mut g = Getopt::new(args);
    while let Some(opt) = g.next(argv0, io) {
        let (c, arg) = match opt {
            Opt::Opt(c, a) => (c, a.unwrap_or_default()),
            Opt::Bad => return Err(io.usage(1)),
        };
        match c {
            b'd' => o.debug += 1,
            b'f' => o.force = true,
            b'E' => o.trim = true,
            b'L' => o.label = Some(arg),
            b'j' => o.junk = Some(sized_option(io, &arg, &JUNK_LIMIT, o.force)?),
            b'b' => o.boot = Some(sized_option(io, &arg, &BOOT_LIMIT, o.force)?),
            b'm' => o.mem = Some(sized_option(io, &arg, &MEM_LIMIT, o.force)?),
            b'u' => o.undo = Some(sized_option(io, &arg, &UNDO_LIMIT, o.force)?),
            b'h' => return Err(io.usage(0)),
            b'C' => {
                if !cache_arg_ok(&arg) {
                    return Err(io.usage(1));
                }
            }
            b'V' => {
                // strtol, then stored in a 32-bit unsigned field.
                let v = strtoll(&arg).0 as i32;
                if !(HAMMER_VOL_VERSION_MIN..HAMMER_VOL_VERSION_WIP).contains(&(v as u32)) {
                    return Err(io.errx(&format!(
                        "I don't understand how to format HAMMER version {v}"
                    )));
                }
                o.version = Some(v as u32);
            }
            _ => return Err(io.usage(1)),
        }
    }
    o.volumes = g.operands;
    Ok(o)
}

// ---------------------------------------------------------------------------
// Volumes and the in-memory plan of the image

struct Volume {
    name: String,
    dev: FileDevice,
    size: u64,
    vol_no: u32,
    bot_beg: i64,
    mem_beg: i64,
    buf_beg: i64,
    buf_end: i64,
    /// Next bootstrap big-block, as a zone-2 offset inside this volume.
    free_off: u64,
    /// End of the whole big-blocks of this volume's zone-2 space.
    free_end: u64,
    /// `free_off` once the freemap's own big-blocks were taken: layer2
    /// entries below it describe freemap (zone 4) big-blocks.
    freemap_end: u64,
    /// Layer2 big-blocks, one per 4 TiB region, as zone-2 offsets.
    layer2_blocks: Vec<u64>,
}

impl Volume {
    fn zone2_base(&self) -> u64 {
        HAMMER_ZONE_RAW_BUFFER | ((self.vol_no as u64) << 52)
    }
    /// File offset of a zone-2 offset inside this volume.
    fn file_off(&self, short: u64) -> u64 {
        (self.buf_beg as u64).wrapping_add(short)
    }
    fn regions(&self) -> u64 {
        self.free_end.div_ceil(LAYER2_SPAN)
    }
}

/// Everything newfs decides before it writes a byte.
struct Plan {
    version: u32,
    crc: CrcKind,
    fsid: HammerUuid,
    label: [u8; 64],
    vols: Vec<Volume>,
    /// Layer1 entries that differ from "unavailable", by index
    /// (`vol_no * 1024 + region`), without their CRC.
    layer1: BTreeMap<u64, HammerBlockmapLayer1>,
    /// Layer2 entries changed after the freemap was laid out, keyed by
    /// (volume, zone-2 offset), without their CRC.
    layer2: HashMap<(u32, u64), HammerBlockmapLayer2>,
    blockmap: [HammerBlockmap; HAMMER_MAX_ZONES],
    undo_array: [u64; HAMMER_UNDO_LAYER2],
    undo_size: u64,
    stat_bigblocks: i64,
    stat_freebigblocks: i64,
    btree_root: u64,
    node: HammerNodeOndisk,
    inode: HammerInodeData,
    pfs: HammerPseudofsData,
    inode_off: u64,
    pfs_off: u64,
}

fn l1_index(vol_no: u32, short: u64) -> u64 {
    vol_no as u64 * REGIONS_PER_VOLUME + short / LAYER2_SPAN
}

impl Plan {
    /// Takes the next big-block of a volume for the freemap or the UNDO.
    fn bootstrap(&mut self, io: &mut Io<'_>, v: usize) -> Res<u64> {
        let vol = &mut self.vols[v];
        if vol.free_off >= vol.free_end {
            return Err(io.errx("Ran out of room, filesystem too small"));
        }
        let b = vol.free_off;
        vol.free_off += BB;
        Ok(b)
    }

    /// The layer2 entry of a big-block as laid out, before later changes.
    fn layer2_default(vol: &Volume, short: u64) -> HammerBlockmapLayer2 {
        if short < vol.freemap_end {
            layer2_full(HAMMER_ZONE_FREEMAP_INDEX as u8)
        } else if short < vol.free_end {
            HammerBlockmapLayer2 {
                bytes_free: BB as i32,
                ..Default::default()
            }
        } else {
            layer2_full(HAMMER_ZONE_UNAVAIL_INDEX as u8)
        }
    }

    fn layer2_get(&self, v: usize, short: u64) -> HammerBlockmapLayer2 {
        let vol = &self.vols[v];
        self.layer2
            .get(&(vol.vol_no, short))
            .copied()
            .unwrap_or_else(|| Self::layer2_default(vol, short))
    }

    /// Lays out a volume's freemap: its layer2 big-blocks, their layer1
    /// entries, and the free count. Returns the number of free big-blocks.
    fn init_freemap(&mut self, io: &mut Io<'_>, v: usize) -> Res<i64> {
        {
            let vol = &self.vols[v];
            if vol.free_off >= vol.free_end {
                return Err(io.errx("Ran out of room, filesystem too small"));
            }
            io.line(&format!("initialize freemap volume {}", vol.vol_no));
        }
        let regions = self.vols[v].regions();
        for r in 0..regions {
            let b = self.bootstrap(io, v)?;
            let vol = &mut self.vols[v];
            vol.layer2_blocks.push(b);
            let phys = vol.zone2_base() | b;
            self.layer1.insert(
                vol.vol_no as u64 * REGIONS_PER_VOLUME + r,
                HammerBlockmapLayer1 {
                    phys_offset: phys,
                    ..Default::default()
                },
            );
        }
        let vol = &mut self.vols[v];
        vol.freemap_end = vol.free_off;
        let mut total = 0i64;
        for r in 0..regions {
            let lo = (r * LAYER2_SPAN).max(vol.free_off);
            let hi = ((r + 1) * LAYER2_SPAN).min(vol.free_end);
            let free = hi.saturating_sub(lo) / BB;
            let e = self
                .layer1
                .get_mut(&(vol.vol_no as u64 * REGIONS_PER_VOLUME + r))
                .expect("layer1 entry was just inserted");
            e.blocks_free += free as i64;
            total += free as i64;
        }
        Ok(total)
    }

    /// The zone allocator, for the root directory's B-Tree node and data.
    fn alloc_zone(&mut self, io: &mut Io<'_>, zone: u32, bytes: u64) -> Res<u64> {
        let bytes = data_doalign(bytes);
        let z = zone as usize;
        loop {
            let mut next = self.blockmap[z].next_offset;
            // Allocations never straddle a 16 KiB buffer.
            let last = next + bytes - 1;
            if (next ^ last) & !HAMMER_BUFMASK != 0 {
                next = last & !HAMMER_BUFMASK;
            }
            self.blockmap[z].next_offset = next;
            let zone2 = next & HAMMER_OFF_LONG_MASK;
            let vol_no = vol_of(zone2);
            let short = zone2 & HAMMER_OFF_SHORT_MASK;
            // Layer2 entries are keyed by their big-block.
            let block = short & !HAMMER_BIGBLOCK_MASK;
            let l1_free = self
                .layer1
                .get(&l1_index(vol_no, short))
                .map_or(0, |e| e.blocks_free);
            let v = self.vols.iter().position(|x| x.vol_no == vol_no);
            let (Some(v), false) = (v, next & HAMMER_BIGBLOCK_MASK == 0 && l1_free == 0) else {
                // DragonFly asserts here and dies of SIGABRT: the volume has
                // room for the freemap and the UNDO FIFO but not for the root
                // directory. We say so and exit 1 instead.
                let what = if zone == HAMMER_ZONE_BTREE_INDEX {
                    "B-Tree node"
                } else {
                    "meta data"
                };
                return Err(io.errx(&format!(
                    "Ran out of room for the root directory's {what}, filesystem too small"
                )));
            };
            let mut l2 = self.layer2_get(v, block);
            if l2.zone == HAMMER_ZONE_UNAVAIL_INDEX as u8 {
                return Err(io.errx("alloc_blockmap: layer2 ran out of space!"));
            }
            if l2.zone == 0 {
                if let Some(e) = self.layer1.get_mut(&l1_index(vol_no, short)) {
                    e.blocks_free -= 1;
                }
                l2.zone = zone as u8;
                self.stat_freebigblocks -= 1;
            }
            if l2.zone != zone as u8 {
                self.layer2.insert((vol_no, block), l2);
                self.blockmap[z].next_offset = (next + BB) & !HAMMER_BIGBLOCK_MASK;
                continue;
            }
            l2.bytes_free -= bytes as i32;
            self.blockmap[z].next_offset = next + bytes;
            l2.append_off = ((next + bytes) & HAMMER_BIGBLOCK_MASK) as u32;
            self.layer2.insert((vol_no, block), l2);
            return Ok(next);
        }
    }
}

/// A layer2 entry for a big-block owned whole by `zone`.
fn layer2_full(zone: u8) -> HammerBlockmapLayer2 {
    HammerBlockmapLayer2 {
        zone,
        append_off: BB as u32,
        ..Default::default()
    }
}

fn blockmap_entry(crc: CrcKind, phys: u64, first: u64, next: u64, alloc: u64) -> HammerBlockmap {
    let mut e = HammerBlockmap {
        phys_offset: phys,
        first_offset: first,
        next_offset: next,
        alloc_offset: alloc,
        ..Default::default()
    };
    e.set_crc(crc);
    e
}

/// A random RFC 4122 version-4 UUID, raw bytes as libuuid makes them.
fn random_fsid(io: &mut Io<'_>) -> Res<HammerUuid> {
    let mut b = [0u8; 16];
    if let Err(e) = getrandom::fill(&mut b) {
        return Err(io.errx(&format!("Cannot generate a filesystem id: {e}")));
    }
    b[6] = (b[6] & 0x0F) | 0x40;
    b[8] = (b[8] & 0x3F) | 0x80;
    Ok(HammerUuid { uuid: b })
}

/// Opens, classifies and sizes one volume (the C tool's `init_volume`).
fn open_volume(io: &mut Io<'_>, name: &str, vol_no: u32) -> Res<Volume> {
    let dev = match FileDevice::open(name, true) {
        Ok(d) => d,
        Err(e) if e.raw_os_error().is_some() => {
            return Err(io.errx(&format!(
                "alloc_volume: Failed to open {name}: {}",
                strerror(&e)
            )))
        }
        Err(_) => return Err(io.errx(&format!("Unsupported file type for {name}"))),
    };
    match dev.kind() {
        "REGFILE" => {}
        "BLKDEV" => check_sector_size(io, &dev)?,
        _ => return Err(io.errx(&format!("Unsupported file type for {name}"))),
    }
    let size = dev.size();
    Ok(Volume {
        name: name.to_string(),
        dev,
        size,
        vol_no,
        bot_beg: 0,
        mem_beg: 0,
        buf_beg: 0,
        buf_end: 0,
        free_off: 0,
        free_end: 0,
        freemap_end: 0,
        layer2_blocks: Vec::new(),
    })
}

/// Devices whose sectors do not tile a 16 KiB buffer cannot hold HAMMER.
fn check_sector_size(io: &mut Io<'_>, dev: &FileDevice) -> Res<()> {
    use std::os::fd::AsRawFd;
    const BLKSSZGET: libc::c_ulong = 0x1268;
    let mut ss: libc::c_int = 0;
    // SAFETY: BLKSSZGET writes one int through the pointer we pass.
    let rc = unsafe { libc::ioctl(dev.file().as_raw_fd(), BLKSSZGET as _, &mut ss) };
    if rc < 0 {
        return Err(io.errx("Failed to get media sector size"));
    }
    if ss <= 0 || ss as u64 > BUF || BUF.checked_rem(ss as u64) != Some(0) {
        return Err(io.errx(&format!("A media sector size of {ss} is not supported")));
    }
    Ok(())
}

/// Discards a whole block device (`-E`).
fn trim_device(io: &mut Io<'_>, vol: &Volume) -> Res<()> {
    use std::os::fd::AsRawFd;
    const BLKDISCARD: libc::c_ulong = 0x1277;
    io.line(&format!(
        "Trimming DEVICE {}, sectors {}-{}",
        vol.name,
        0,
        vol.size / 512
    ));
    let range: [u64; 2] = [0, vol.size];
    // SAFETY: BLKDISCARD reads two u64s (start, length) from the pointer.
    let rc = unsafe { libc::ioctl(vol.dev.file().as_raw_fd(), BLKDISCARD as _, range.as_ptr()) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return Err(io.errx(&format!("Trimming {} failed: {}", vol.name, strerror(&e))));
    }
    Ok(())
}

/// Sets the layout fields of a volume and checks its size.
fn layout_volume(io: &mut Io<'_>, vol: &mut Volume, junk: i64, boot: i64, mem: i64) -> Res<()> {
    vol.bot_beg = junk;
    vol.mem_beg = junk.wrapping_add(boot);
    vol.buf_beg = vol.mem_beg.wrapping_add(mem);
    vol.buf_end = (vol.size & !HAMMER_BUFMASK) as i64;
    let vsz = vol.buf_end.wrapping_sub(vol.buf_beg);
    if vsz < HEADER_SIZE {
        return Err(io.errx(&format!(
            "volume {} {} is too small to hold the volume header",
            vol.vol_no, vol.name
        )));
    }
    if vsz >= 1 << 52 {
        return Err(io.errx(&format!("volume {} {} is too large", vol.vol_no, vol.name)));
    }
    vol.free_off = 0;
    vol.free_end = vsz as u64 & !HAMMER_BIGBLOCK_MASK;
    Ok(())
}

// ---------------------------------------------------------------------------
// The run

/// Takes `--from DIR` (or `--from=DIR`) out of the arguments: our one
/// addition to DragonFly's options, so it is handled before their parser.
fn take_from(args: &[String]) -> Result<(Vec<String>, Option<String>), String> {
    let mut rest = Vec::new();
    let mut from = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            rest.extend(args[i..].iter().cloned());
            break;
        }
        if a == "--from" {
            let Some(d) = args.get(i + 1) else {
                return Err("option '--from' requires a directory".into());
            };
            from = Some(d.clone());
            i += 2;
            continue;
        }
        if let Some(d) = a.strip_prefix("--from=") {
            from = Some(d.to_string());
        } else {
            rest.push(a.clone());
        }
        i += 1;
    }
    Ok((rest, from))
}

pub fn main(argv0: &str, args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let mut io = Io { out, err };
    let (args, from) = match take_from(args) {
        Ok(x) => x,
        Err(m) => {
            let _ = writeln!(io.err, "newfs_hammer: {m}");
            return 1;
        }
    };
    if let Some(dir) = &from {
        // Refuse before formatting anything.
        if !std::path::Path::new(dir).is_dir() {
            let _ = writeln!(io.err, "newfs_hammer: --from {dir}: not a directory");
            return 1;
        }
    }
    let code = match run(argv0, &args, &mut io) {
        Ok(volumes) => match &from {
            Some(dir) => populate(&volumes, dir, &mut io),
            None => 0,
        },
        Err(Exit(c)) => c,
    };
    let _ = io.out.flush();
    let _ = io.err.flush();
    code
}

/// Copies `dir` into the volumes newfs just made (`--from`).
fn populate(volumes: &[String], dir: &str, io: &mut Io<'_>) -> i32 {
    let opts = hammer_engine::OpenOptions {
        writable: true,
        ..Default::default()
    };
    let result = hammer_engine::VolumeSet::open_paths(volumes, &opts).and_then(|mut set| {
        hammer_engine::import::import_tree(&mut set, std::path::Path::new(dir))
    });
    match result {
        Ok(st) => {
            io.line(&format!(
                "Copied {dir}: {} directories, {} files, {} symlinks, {} other, {} hard links, {} bytes of file data, transaction 0x{:016x}",
                st.directories, st.files, st.symlinks, st.other, st.hardlinks, st.data_bytes, st.tid
            ));
            0
        }
        Err(e) => {
            let _ = writeln!(io.err, "newfs_hammer: --from {dir}: {e}");
            1
        }
    }
}

fn run(argv0: &str, args: &[String], io: &mut Io<'_>) -> Res<Vec<String>> {
    let o = parse_options(argv0, args, io)?;

    // The Linux port cannot ask a kernel which HAMMER version it runs, so it
    // always warns when no -V was given; the warning is kept so that stderr
    // matches DragonFly's tool byte for byte.
    let version = match o.version {
        Some(v) => v,
        None => {
            io.warnx(
                "WARNING: HAMMER VFS not loaded, cannot get version info, using version 7: Operation not supported",
            );
            HAMMER_VOL_VERSION_DEFAULT
        }
    };
    if o.volumes.is_empty() {
        return Err(io.errx("You must specify at least one special file (volume)"));
    }
    if o.volumes.len() > HAMMER_MAX_VOLUMES {
        return Err(io.errx(&format!(
            "The maximum number of volumes is {HAMMER_MAX_VOLUMES}"
        )));
    }
    let Some(label_str) = o.label.as_deref() else {
        io.warnx("WARNING: A filesystem label must be specified");
        return Err(io.usage(1));
    };
    // The label is cut to 63 bytes (plus NUL), without a warning.
    let mut label = [0u8; 64];
    let lb = label_str.as_bytes();
    let n = lb.len().min(63);
    label[..n].copy_from_slice(&lb[..n]);
    let fsid = random_fsid(io)?;

    let mut vols: Vec<Volume> = Vec::new();
    let mut ids: Vec<(u64, u64)> = Vec::new();
    for (i, name) in o.volumes.iter().enumerate() {
        let vol = open_volume(io, name, i as u32)?;
        let id = {
            use std::os::unix::fs::MetadataExt;
            match vol.dev.file().metadata() {
                Ok(m) => (m.dev(), m.ino()),
                Err(e) => return Err(io.errx(&format!("Unable to stat {name}: {}", strerror(&e)))),
            }
        };
        if ids.contains(&id) {
            return Err(io.errx(&format!("add_volume: {name}: Specified more than once")));
        }
        ids.push(id);
        let kind = if vol.dev.kind() == "BLKDEV" {
            "DEVICE"
        } else {
            "REGFILE"
        };
        io.line(&format!(
            "Volume {} {} {:<15} size {}",
            i,
            kind,
            name,
            sizetostr(vol.size as i64)
        ));
        if o.trim {
            if kind == "REGFILE" {
                io.warnx(&format!("WARNING: Cannot TRIM regular file {name}"));
                if !o.force {
                    return Err(io.errx("Use -f option to proceed"));
                }
            } else {
                trim_device(io, &vol)?;
            }
        }
        vols.push(vol);
    }

    let junk = match o.junk {
        None => HAMMER_MIN_VOL_JUNK as i64,
        Some(j) => j.max(HEADER_SIZE),
    };
    let junk = junk.wrapping_add(BUF as i64 - 1) & !(BUF as i64 - 1);
    let boot = o.boot.unwrap_or(HAMMER_BOOT_MINBYTES as i64);
    let mem = o.mem.unwrap_or(HAMMER_MEM_MINBYTES as i64);

    let crc = CrcKind::for_version(version);
    let mut plan = Plan {
        version,
        crc,
        fsid,
        label,
        vols,
        layer1: BTreeMap::new(),
        layer2: HashMap::new(),
        blockmap: [HammerBlockmap::default(); HAMMER_MAX_ZONES],
        undo_array: [HAMMER_BLOCKMAP_UNAVAIL; HAMMER_UNDO_LAYER2],
        undo_size: 0,
        stat_bigblocks: 0,
        stat_freebigblocks: 0,
        btree_root: 0,
        node: HammerNodeOndisk::new_zeroed(),
        inode: HammerInodeData::default(),
        pfs: HammerPseudofsData::default(),
        inode_off: 0,
        pfs_off: 0,
    };

    format_root_volume(io, &mut plan, &o, junk, boot, mem)?;
    let pre_allocated = plan.vols[0].free_off;
    for v in 1..plan.vols.len() {
        layout_volume(io, &mut plan.vols[v], junk, boot, mem)?;
        let free = plan.init_freemap(io, v)?;
        plan.stat_bigblocks += free;
        plan.stat_freebigblocks += free;
    }

    print_summary(io, &plan, o.debug > 0, pre_allocated);
    write_all(io, &plan)?;
    Ok(o.volumes.clone())
}

fn format_root_volume(
    io: &mut Io<'_>,
    plan: &mut Plan,
    o: &Options,
    junk: i64,
    boot: i64,
    mem: i64,
) -> Res<()> {
    let crc = plan.crc;
    layout_volume(io, &mut plan.vols[0], junk, boot, mem)?;

    // Refuse small filesystems unless forced: only the root volume's free
    // big-blocks, after the freemap's own, count.
    {
        let v0 = &plan.vols[0];
        if v0.free_off >= v0.free_end {
            return Err(io.errx("Ran out of room, filesystem too small"));
        }
        let reserved = 1 + v0.regions();
        let free = (v0.free_end / BB).saturating_sub(reserved);
        if !o.force && free.saturating_mul(BB) < 10 * GIB as u64 {
            return Err(io.errx(
                "Cannot create a HAMMER filesystem less than 10GB unless you use -f\n(for the size of Volume 0).  HAMMER filesystems less than 50GB are not recommended.",
            ));
        }
    }

    // Freemap layer1, then the freemap proper.
    let l1 = plan.bootstrap(io, 0)?;
    plan.blockmap[HAMMER_ZONE_FREEMAP_INDEX as usize] = blockmap_entry(
        crc,
        HAMMER_ZONE_RAW_BUFFER | l1,
        0,
        HAMMER_ZONE_RAW_BUFFER,
        HAMMER_ZONE_RAW_BUFFER | HAMMER_OFF_LONG_MASK,
    );
    let free = plan.init_freemap(io, 0)?;
    plan.stat_freebigblocks = free;

    // The data zones' blockmaps. Zones 8 and 9 keep this CRC although their
    // next_offset moves below: DragonFly never refreshes it.
    for z in HAMMER_ZONE_BTREE_INDEX as u64..HAMMER_MAX_ZONES as u64 {
        plan.blockmap[z as usize] =
            blockmap_entry(crc, 0, z << 60, z << 60, (z << 60) | HAMMER_OFF_LONG_MASK);
    }

    // UNDO/REDO FIFO: 0.1% of the root volume by default, within 8 MiB..1 GiB.
    let v0 = &plan.vols[0];
    let mut u = o.undo.unwrap_or(0) as u64;
    if u == 0 {
        let vsz = (v0.buf_end - v0.buf_beg) as u64;
        u = (vsz / 1000).max(HAMMER_MIN_UNDO_BIGBLOCKS * BB);
    }
    u = u.wrapping_add(BB - 1) & !HAMMER_BIGBLOCK_MASK;
    u = u.clamp(BB, HAMMER_MAX_UNDO_BIGBLOCKS * BB);
    plan.undo_size = u;
    plan.blockmap[HAMMER_ZONE_UNDO_INDEX as usize] = blockmap_entry(
        crc,
        HAMMER_BLOCKMAP_UNAVAIL,
        HAMMER_ZONE_UNDO,
        HAMMER_ZONE_UNDO,
        HAMMER_ZONE_UNDO + u,
    );
    for k in 0..(u / BB) as usize {
        let b = plan.bootstrap(io, 0)?;
        if let Some(e) = plan.layer1.get_mut(&l1_index(0, b)) {
            e.blocks_free -= 1;
        }
        plan.layer2
            .insert((0, b), layer2_full(HAMMER_ZONE_UNDO_INDEX as u8));
        plan.stat_freebigblocks -= 1;
        plan.undo_array[k] = HAMMER_ZONE_RAW_BUFFER | b;
    }
    io.line(&format!("initializing the undo map ({} MB)", u >> 20));
    plan.stat_bigblocks = plan.stat_freebigblocks;

    create_root_directory(io, plan)
}

/// The root directory: one B-Tree leaf holding the root inode record and
/// the root PFS record, their data in the meta zone.
fn create_root_directory(io: &mut Io<'_>, plan: &mut Plan) -> Res<()> {
    let node_off = plan.alloc_zone(io, HAMMER_ZONE_BTREE_INDEX, HAMMER_NODE_SIZE as u64)?;
    let inode_off = plan.alloc_zone(
        io,
        HAMMER_ZONE_META_INDEX,
        core::mem::size_of::<HammerInodeData>() as u64,
    )?;
    let pfs_off = plan.alloc_zone(io, HAMMER_ZONE_META_INDEX, HAMMER_PFSD_SIZE as u64)?;

    let crc = plan.crc;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let micros = now.as_micros() as u64;
    let version = plan.version;

    let mut inode = HammerInodeData {
        version: HAMMER_INODE_DATA_VERSION,
        mode: 0o755,
        ctime: micros,
        mtime: micros,
        atime: micros,
        obj_type: HAMMER_OBJTYPE_DIRECTORY,
        nlinks: 1,
        ..Default::default()
    };
    if version >= 2 {
        inode.cap_flags |= HAMMER_INODE_CAP_DIR_LOCAL_INO;
    }
    if version >= 6 {
        inode.cap_flags |= HAMMER_INODE_CAP_DIRHASH_ALG1;
    }

    let mut pfs = HammerPseudofsData {
        sync_low_tid: 1,
        shared_uuid: plan.fsid,
        unique_uuid: plan.fsid,
        ..Default::default()
    };
    pfs.label = plan.label;

    let mut node = HammerNodeOndisk::new_zeroed();
    node.count = 2;
    node.type_ = HAMMER_BTREE_TYPE_LEAF;
    let records = [
        (
            HAMMER_RECTYPE_INODE,
            HAMMER_LOCALIZE_INODE,
            inode_off,
            core::mem::size_of::<HammerInodeData>(),
            inode.compute_crc(crc),
        ),
        (
            HAMMER_RECTYPE_PFS,
            HAMMER_LOCALIZE_MISC,
            pfs_off,
            HAMMER_PFSD_SIZE,
            crc.compute(pfs.as_bytes()),
        ),
    ];
    for (elm, (rec_type, loc, off, len, dcrc)) in node.elms.iter_mut().zip(records) {
        *elm = HammerBtreeLeafElm {
            base: HammerBaseElm {
                obj_id: HAMMER_OBJID_ROOT,
                key: 0,
                create_tid: FIRST_TID + 1,
                delete_tid: 0,
                rec_type,
                obj_type: HAMMER_OBJTYPE_DIRECTORY,
                btype: HAMMER_BTREE_TYPE_RECORD,
                localization: loc,
            },
            // Each record takes its own reading of the clock.
            create_ts: unix_seconds(),
            delete_ts: 0,
            data_offset: off,
            data_len: len as i32,
            data_crc: dcrc,
        };
    }
    node.crc = crc.compute(&node.as_bytes()[4..]);

    plan.node = node;
    plan.inode = inode;
    plan.pfs = pfs;
    plan.btree_root = node_off;
    plan.inode_off = inode_off;
    plan.pfs_off = pfs_off;
    Ok(())
}

fn unix_seconds() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

fn print_summary(io: &mut Io<'_>, plan: &Plan, debug: bool, pre_allocated: u64) {
    let v0 = &plan.vols[0];
    let total: i64 = plan
        .vols
        .iter()
        .fold(0i64, |a, v| a.wrapping_add(v.size as i64));
    let n = plan.vols.len();
    io.line("---------------------------------------------");
    io.line(&format!("HAMMER version {}", plan.version));
    io.line(&format!(
        "{} volume{} total size {}",
        n,
        if n == 1 { "" } else { "s" },
        sizetostr(total)
    ));
    io.line(&format!("root-volume:         {}", v0.name));
    if debug {
        io.line(&format!("header-junk-size:    {}", sizetostr(v0.bot_beg)));
    }
    io.line(&format!(
        "boot-area-size:      {}",
        sizetostr(v0.mem_beg.wrapping_sub(v0.bot_beg))
    ));
    io.line(&format!(
        "memory-log-size:     {}",
        sizetostr(v0.buf_beg.wrapping_sub(v0.mem_beg))
    ));
    io.line(&format!(
        "undo-buffer-size:    {}",
        sizetostr(plan.undo_size as i64)
    ));
    io.line(&format!(
        "total-pre-allocated: {}",
        sizetostr(pre_allocated as i64)
    ));
    io.line(&format!(
        "fsid:                {}",
        plan.fsid.to_dfly_string()
    ));
    io.line("");
    io.line("NOTE: Please remember that you may have to manually set up a\ncron(8) job to prune and reblock the filesystem regularly.\nBy default, the system automatically runs 'hammer cleanup'\non a nightly basis.  The periodic.conf(5) variable\n'daily_clean_hammer_enable' can be unset to disable this.\nAlso see 'man hammer' and 'man HAMMER' for more information.");
    if total < 10 * GIB {
        io.line(&format!(
            "\nWARNING: The minimum UNDO/REDO FIFO is {}, you really should not\ntry to format a HAMMER filesystem this small.",
            sizetostr(UNDO_LIMIT.min)
        ));
    }
    if total < 50 * GIB {
        io.line("\nWARNING: HAMMER filesystems less than 50GB are not recommended!\nYou may have to run 'hammer prune-everything' and 'hammer reblock'\nquite often, even if using a nohistory mount.");
    }
}

// ---------------------------------------------------------------------------
// Writing

fn write_at(io: &mut Io<'_>, vol: &Volume, buf: &[u8], off: u64) -> Res<()> {
    vol.dev.write_at(buf, off).map_err(|e| {
        io.errx(&format!(
            "Write volume {} ({}): {}",
            vol.vol_no,
            vol.name,
            strerror(&e)
        ))
    })
}

/// Writes every planned region, volume by volume, each volume's header last.
fn write_all(io: &mut Io<'_>, plan: &Plan) -> Res<()> {
    let mut big = vec![0u8; BB as usize];
    for (v, vol) in plan.vols.iter().enumerate() {
        if v == 0 {
            write_layer1(io, plan, &mut big)?;
        }
        for (r, &b) in vol.layer2_blocks.iter().enumerate() {
            fill_layer2(plan, v, r as u64, &mut big);
            write_at(io, vol, &big, vol.file_off(b))?;
        }
        if v == 0 {
            write_undo(io, plan)?;
            write_root_directory(io, plan)?;
        }
        let header = build_header(plan, vol);
        let mut hbuf = vec![0u8; BUF as usize];
        hbuf[..header.as_bytes().len()].copy_from_slice(header.as_bytes());
        write_at(io, vol, &hbuf, 0)?;
    }
    Ok(())
}

fn write_layer1(io: &mut Io<'_>, plan: &Plan, big: &mut [u8]) -> Res<()> {
    let crc = plan.crc;
    let mut unavail = HammerBlockmapLayer1 {
        phys_offset: HAMMER_BLOCKMAP_UNAVAIL,
        ..Default::default()
    };
    unavail.set_crc(crc);
    for e in big.chunks_exact_mut(32) {
        e.copy_from_slice(unavail.as_bytes());
    }
    for (&idx, e) in &plan.layer1 {
        let mut e = *e;
        e.set_crc(crc);
        let at = idx as usize * 32;
        big[at..at + 32].copy_from_slice(e.as_bytes());
    }
    let phys = plan.blockmap[HAMMER_ZONE_FREEMAP_INDEX as usize].phys_offset;
    let v0 = &plan.vols[0];
    write_at(io, v0, big, v0.file_off(phys & HAMMER_OFF_SHORT_MASK))
}

/// Builds the layer2 big-block of region `r` of volume `v`.
fn fill_layer2(plan: &Plan, v: usize, r: u64, big: &mut [u8]) {
    let crc = plan.crc;
    let vol = &plan.vols[v];
    let with_crc = |mut e: HammerBlockmapLayer2| {
        e.set_crc(crc);
        e
    };
    let base = r * LAYER2_SPAN;
    // Runs of identical entries: freemap, free, beyond the volume.
    let per = LAYER2_SPAN / BB;
    let idx = |off: u64| (off.saturating_sub(base) / BB).min(per) as usize * 16;
    let freemap_to = idx(vol.freemap_end);
    let free_to = idx(vol.free_end).max(freemap_to);
    let runs = [
        (0, freemap_to, Plan::layer2_default(vol, 0)),
        (
            freemap_to,
            free_to,
            HammerBlockmapLayer2 {
                bytes_free: BB as i32,
                ..Default::default()
            },
        ),
        (
            free_to,
            big.len(),
            layer2_full(HAMMER_ZONE_UNAVAIL_INDEX as u8),
        ),
    ];
    for (lo, hi, e) in runs {
        let e = with_crc(e);
        for c in big[lo..hi].chunks_exact_mut(16) {
            c.copy_from_slice(e.as_bytes());
        }
    }
    for (&(vol_no, short), e) in &plan.layer2 {
        if vol_no == vol.vol_no && short / LAYER2_SPAN == r {
            let at = ((short % LAYER2_SPAN) / BB) as usize * 16;
            big[at..at + 16].copy_from_slice(with_crc(*e).as_bytes());
        }
    }
}

/// Fills the whole UNDO FIFO with DUMMY records numbered from 0.
fn write_undo(io: &mut Io<'_>, plan: &Plan) -> Res<()> {
    let crc = plan.crc;
    let v0 = &plan.vols[0];
    let template = dummy_record(crc, 0);
    // A record's CRC is that of its first 12 bytes XOR that of bytes 16..,
    // and only the sequence number (in the first 12) changes.
    let body_crc = crc.compute(&template[HAMMER_FIFO_HEAD_CRCOFF + 4..]);
    let mut chunk = vec![0u8; UNDO_CHUNK];
    for rec in chunk.chunks_exact_mut(UNDO_RECORD) {
        rec.copy_from_slice(&template);
    }
    let mut seq: u32 = 0;
    let nblocks = (plan.undo_size / BB) as usize;
    for &blk in &plan.undo_array[..nblocks] {
        let base = v0.file_off(blk & HAMMER_OFF_SHORT_MASK);
        for c in 0..BB / UNDO_CHUNK as u64 {
            for rec in chunk.chunks_exact_mut(UNDO_RECORD) {
                rec[8..12].copy_from_slice(&seq.to_le_bytes());
                let hcrc = crc.compute(&rec[..HAMMER_FIFO_HEAD_CRCOFF]) ^ body_crc;
                rec[12..16].copy_from_slice(&hcrc.to_le_bytes());
                seq = seq.wrapping_add(1);
            }
            write_at(io, v0, &chunk, base + c * UNDO_CHUNK as u64)?;
        }
    }
    Ok(())
}

/// Writes the node and the inode/PFS data into the 16 KiB buffers holding
/// them. The rest of those buffers is kept as it is on the device, as
/// DragonFly's buffer cache reads it before changing it.
fn write_root_directory(io: &mut Io<'_>, plan: &Plan) -> Res<()> {
    let v0 = &plan.vols[0];
    let mut pieces: Vec<(u64, &[u8])> = vec![
        (plan.btree_root, plan.node.as_bytes()),
        (plan.inode_off, plan.inode.as_bytes()),
        (plan.pfs_off, plan.pfs.as_bytes()),
    ];
    pieces.sort_by_key(|p| p.0);
    let mut buf = vec![0u8; BUF as usize];
    let mut i = 0;
    while i < pieces.len() {
        let short = pieces[i].0 & HAMMER_OFF_SHORT_MASK;
        let bufbase = short & !HAMMER_BUFMASK;
        let file_off = v0.file_off(bufbase);
        if let Err(e) = v0.dev.read_at(&mut buf, file_off) {
            return Err(io.errx(&format!(
                "Failed to read {}:{:016x} at {:016x}: {}",
                v0.name,
                HAMMER_ZONE_RAW_BUFFER | bufbase,
                file_off,
                strerror(&e)
            )));
        }
        while i < pieces.len() && pieces[i].0 & HAMMER_OFF_SHORT_MASK & !HAMMER_BUFMASK == bufbase {
            let at = (pieces[i].0 & HAMMER_BUFMASK) as usize;
            buf[at..at + pieces[i].1.len()].copy_from_slice(pieces[i].1);
            i += 1;
        }
        write_at(io, v0, &buf, file_off)?;
    }
    Ok(())
}

fn build_header(plan: &Plan, vol: &Volume) -> HammerVolumeOndisk {
    let mut h = HammerVolumeOndisk::new_zeroed();
    h.vol_signature = HAMMER_FSBUF_VOLUME;
    h.vol_bot_beg = vol.bot_beg;
    h.vol_mem_beg = vol.mem_beg;
    h.vol_buf_beg = vol.buf_beg;
    h.vol_buf_end = vol.buf_end;
    h.vol_fsid = plan.fsid;
    h.vol_fstype = HAMMER_FSTYPE_UUID;
    h.vol_label = plan.label;
    h.vol_no = vol.vol_no as i32;
    h.vol_count = plan.vols.len() as i32;
    h.vol_version = plan.version;
    h.vol_rootvol = HAMMER_ROOT_VOLNO;
    if vol.vol_no == HAMMER_ROOT_VOLNO {
        h.vol0_stat_bigblocks = plan.stat_bigblocks;
        h.vol0_stat_freebigblocks = plan.stat_freebigblocks;
        h.vol0_stat_inodes = 1;
        h.vol0_btree_root = plan.btree_root;
        h.vol0_next_tid = FIRST_TID;
        h.vol0_blockmap = plan.blockmap;
        h.vol0_undo_array = plan.undo_array;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(args: &[&str]) -> (i32, String, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = main("newfs_hammer", &args, &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn strtoll_like_c() {
        assert_eq!(strtoll("16"), (16, 2));
        assert_eq!(strtoll("0x10k"), (16, 4));
        assert_eq!(strtoll("010K"), (8, 3));
        assert_eq!(strtoll("0"), (0, 1));
        assert_eq!(strtoll("0xg"), (0, 1));
        assert_eq!(strtoll("K"), (0, 0));
        assert_eq!(strtoll("-"), (0, 0));
        assert_eq!(strtoll("  -16K"), (-16, 5));
        assert_eq!(strtoll("99999999999999999999").0, i64::MAX);
        assert_eq!(strtoll("-99999999999999999999").0, i64::MIN);
        assert_eq!(strtoll("abc"), (0, 0));
    }

    #[test]
    fn getsize_rules() {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let mut io = Io {
            out: &mut o,
            err: &mut e,
        };
        assert_eq!(getsize(&mut io, "16K").ok(), Some(16384));
        assert_eq!(getsize(&mut io, "0x10k").ok(), Some(16384));
        assert_eq!(getsize(&mut io, "1G").ok(), Some(1 << 30));
        assert_eq!(getsize(&mut io, "0K").ok(), Some(0));
        assert_eq!(getsize(&mut io, "-16K").ok(), Some(-16384));
        assert!(getsize(&mut io, "010K").is_err());
        assert!(getsize(&mut io, "8MB").is_err());
        assert!(getsize(&mut io, "8").is_err());
    }

    #[test]
    fn cache_option() {
        assert!(cache_arg_ok("32m"));
        assert!(cache_arg_ok("32"));
        assert!(cache_arg_ok("32M:4"));
        assert!(cache_arg_ok("32k:"));
        assert!(!cache_arg_ok("32M:-1"));
        assert!(!cache_arg_ok("1g"));
    }

    #[test]
    fn getopt_permutes_and_clusters() {
        let (code, out, err) = run_args(&["-h", "-Z"]);
        assert_eq!((code, out.as_str()), (0, ""));
        assert!(err.starts_with("usage: newfs_hammer"));
        let (code, _, err) = run_args(&["x", "-fZ"]);
        assert_eq!(code, 1);
        assert!(err.starts_with("newfs_hammer: invalid option -- 'Z'\nusage:"));
        let (code, _, err) = run_args(&["-f", "-L"]);
        assert_eq!(code, 1);
        assert!(err.starts_with("newfs_hammer: option requires an argument -- 'L'\n"));
        // Options after operands are still options; `--` stops that.
        let (code, _, err) = run_args(&["-f", "-LX", "--", "-u"]);
        assert_eq!(code, 1);
        assert!(err.contains("Failed to open -u: No such file"), "{err}");
    }

    #[test]
    fn version_messages() {
        for (v, shown) in [
            ("-1", "-1"),
            ("abc", "0"),
            ("0x8", "8"),
            ("4294967297", "1"),
        ] {
            let (code, _, err) = run_args(&["-V", v, "-L", "X"]);
            if shown == "1" {
                assert!(err.contains("at least one special file"), "{err}");
            } else {
                assert_eq!(code, 1);
                assert_eq!(
                    err,
                    format!(
                        "newfs_hammer: I don't understand how to format HAMMER version {shown}\n"
                    )
                );
            }
        }
    }
}
