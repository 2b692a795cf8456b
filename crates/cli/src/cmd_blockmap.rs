//! `hammer -f vols blockmap`: a dump of the freemap (zone 4), DragonFly's
//! two-level table of big-block owners. Every layer1 entry that is in use
//! (or fails its CRC) is listed with the layer2 entries of its layer2
//! big-block, each flagged for a bad CRC (`B`), an impossible append offset
//! (`A`) or an impossible free count (`F`). This module also owns the small
//! zone-2 reader that `checkmap` and `show-undo` share: freemap and FIFO
//! walks touch millions of tiny entries, so they read through one held
//! 16 KiB buffer instead of asking the cache for every entry.

use crate::common::{open_volumes, print_preamble, Opts, ZoneStats};
use crate::{CliError, CliResult};
use hammer_engine::cache::{Buffer, BUFSIZE};
use hammer_engine::{Error, VolumeSet};
use hammer_ondisk::*;
use std::io::{BufWriter, Write};
use zerocopy::{FromBytes, IntoBytes};

/// Bytes of zone-2 address space one layer1 entry covers (4 TiB).
const L2_SPAN: u64 = HAMMER_BLOCKMAP_LAYER2;
/// Layer2 entries in one layer2 big-block.
const L2_ENTRIES: u64 = HAMMER_BLOCKMAP_RADIX2;
const BB: u64 = HAMMER_BIGBLOCK_SIZE;

/// Reads raw-buffer (zone-2) addresses, keeping the last 16 KiB buffer it
/// used. Only zone 2 is accepted: the freemap and the UNDO array store
/// zone-2 pointers, and anything else there is damage we refuse to chase.
pub struct Zone2Reader<'a> {
    set: &'a VolumeSet,
    held: Option<(u64, Buffer)>,
}

impl<'a> Zone2Reader<'a> {
    pub fn new(set: &'a VolumeSet) -> Self {
        Zone2Reader { set, held: None }
    }

    fn buffer(&mut self, aligned: u64) -> Result<&Buffer, Error> {
        let hit = matches!(&self.held, Some((a, _)) if *a == aligned);
        if !hit {
            let b = self.set.buffer(aligned)?;
            self.held = Some((aligned, b));
        }
        Ok(&self.held.as_ref().expect("just filled").1)
    }

    /// Fills `out` from zone-2 address `z2`; the range may cross buffers.
    pub fn read_into(&mut self, z2: u64, out: &mut [u8]) -> Result<(), Error> {
        let mut done = 0;
        while done < out.len() {
            let cur = z2.checked_add(done as u64).ok_or(Error::BadAddress {
                what: "address overflow",
                offset: z2,
            })?;
            if zone_of(cur) != HAMMER_ZONE_RAW_BUFFER_INDEX {
                return Err(Error::BadAddress {
                    what: "not a raw-buffer (zone-2) address",
                    offset: cur,
                });
            }
            let within = (cur & HAMMER_BUFMASK) as usize;
            let b = self.buffer(cur & !HAMMER_BUFMASK)?;
            let n = (BUFSIZE - within).min(out.len() - done);
            out[done..done + n].copy_from_slice(&b[within..within + n]);
            done += n;
        }
        Ok(())
    }

    /// Reads one on-disk structure at zone-2 address `z2`.
    pub fn read_struct<T: FromBytes + IntoBytes>(&mut self, z2: u64) -> Result<T, Error> {
        let mut v = T::new_zeroed();
        self.read_into(z2, v.as_mut_bytes())?;
        Ok(v)
    }
}

/// The three per-entry flag characters of a layer2 line and how many of
/// them are set.
fn layer2_flags(l2: &HammerBlockmapLayer2, version: u32) -> ([u8; 3], i32) {
    let mut f = [b' '; 3];
    let mut bad = 0;
    if l2.crc_ok(version).is_none() {
        f[0] = b'B';
        bad += 1;
    }
    if l2.append_off as u64 > BB {
        f[1] = b'A';
        bad += 1;
    }
    if l2.bytes_free < 0 || l2.bytes_free as i64 > BB as i64 {
        f[2] = b'F';
        bad += 1;
    }
    (f, bad)
}

pub fn run(opts: &Opts, _args: &[String], out: &mut dyn Write) -> CliResult<()> {
    let set = open_volumes(opts)?;
    let mut w = BufWriter::with_capacity(1 << 16, out);
    print_preamble(&mut w, &set)?;
    let verbose = opts.verbose;
    let version = set.version();
    let freemap = set.header().vol0_blockmap[HAMMER_ZONE_FREEMAP_INDEX as usize];
    let mut stats = (verbose >= 1).then(ZoneStats::default);
    let mut bad_layer1 = 0i32;
    let mut bad_layer2 = 0i32;
    let mut r1 = Zone2Reader::new(&set);
    let mut r2 = Zone2Reader::new(&set);

    for i1 in 0..HAMMER_BLOCKMAP_RADIX1 {
        let zaddr = HAMMER_ZONE_FREEMAP + i1 * L2_SPAN;
        let l1_addr = freemap.phys_offset.wrapping_add(i1 * 32);
        // Without the layer1 table nothing below can be listed: fail like
        // DragonFly does on an unreadable buffer.
        let l1: HammerBlockmapLayer1 = r1.read_struct(l1_addr).map_err(|e| {
            CliError(format!(
                "Failed to read freemap layer1 entry at {l1_addr:016x}: {e}"
            ))
        })?;
        let mut l1_bad = l1.crc_ok(version).is_none();
        if l1_bad {
            bad_layer1 += 1;
        } else if l1.phys_offset == HAMMER_BLOCKMAP_UNAVAIL {
            continue;
        }
        writeln!(
            w,
            "{} layer1 {:016x} @{:016x} blocks-free {}",
            if l1_bad { 'B' } else { ' ' },
            zaddr,
            l1.phys_offset,
            l1.blocks_free
        )?;

        for j in 0..L2_ENTRIES {
            let zoff = zaddr + j * BB;
            // A layer1 entry leading nowhere (UNAVAIL behind a bad CRC, a
            // missing volume, past the end): DragonFly crashes or exits;
            // we count the layer1 entry as bad and go on with the next one.
            let l2 = l1
                .phys_offset
                .checked_add(j * 16)
                .filter(|_| l1.phys_offset != HAMMER_BLOCKMAP_UNAVAIL)
                .and_then(|a| r2.read_struct::<HammerBlockmapLayer2>(a).ok());
            let Some(l2) = l2 else {
                if !l1_bad {
                    l1_bad = true;
                    bad_layer1 += 1;
                }
                break;
            };
            let (flags, nbad) = layer2_flags(&l2, version);
            bad_layer2 += nbad;
            if verbose < 2 && nbad == 0 && l2.zone as u32 == HAMMER_ZONE_UNAVAIL_INDEX {
                break;
            }
            w.write_all(&flags)?;
            write!(w, "     {:016x} zone={:<2} ", zoff, l2.zone)?;
            if verbose >= 1 {
                let l1i = (zoff & HAMMER_BLOCKMAP_LAYER1_MASK) / L2_SPAN;
                let l2i = (zoff & HAMMER_BLOCKMAP_LAYER2_MASK) / BB;
                write!(
                    w,
                    "vol={:<3} L1#={:<6} L2#={:<6} L1={:<7} L2={:<7} ",
                    vol_of(zoff),
                    l1i,
                    l2i,
                    l1i * 32,
                    l2i * 16
                )?;
            }
            write!(
                w,
                "app={:<7} free={:<7}",
                l2.append_off as i32, l2.bytes_free
            )?;
            if verbose >= 1 {
                // C computes the used bytes in int arithmetic.
                let used = (BB as i32).wrapping_sub(l2.bytes_free) as f64;
                writeln!(
                    w,
                    " fill={:<5.1} crc={:08x}-{:08x}",
                    used * 100.0 / BB as f64,
                    l1.layer1_crc,
                    l2.entry_crc
                )?;
            } else {
                w.write_all(b"\n")?;
            }
            if let Some(s) = stats.as_mut() {
                s.add_layer2(l2.zone, l2.bytes_free);
            }
        }
    }

    if let Some(s) = &stats {
        s.print(&mut w)?;
    }
    if bad_layer1 != 0 || verbose >= 1 {
        writeln!(w, "{bad_layer1} bad layer1")?;
    }
    if bad_layer2 != 0 || verbose >= 1 {
        // DragonFly prints the layer1 counter here; kept for identical output.
        writeln!(w, "{bad_layer1} bad layer2")?;
    }
    w.flush()?;
    Ok(())
}
