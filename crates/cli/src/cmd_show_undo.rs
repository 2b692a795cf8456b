//! `hammer -f vols show-undo`: one line per record head of the UNDO/REDO
//! FIFO (zone 3), from the FIFO's start to its allocation limit, marking
//! where the live part begins (`>`, `first_offset`) and where the next
//! record will go (`<`, `next_offset`), as DragonFly's show-undo does.
//! Payloads, tails and CRCs are not examined; an impossible record size is
//! reported and the scan resumes at the next 512-byte boundary (see
//! `cmd_checkmap::walk_fifo`, shared with checkmap).

use crate::cmd_blockmap::Zone2Reader;
use crate::cmd_checkmap::{walk_fifo, FifoEvent};
use crate::common::{open_volumes, print_preamble, Opts, ZoneStats};
use crate::{CliError, CliResult};
use hammer_ondisk::*;
use std::io::{BufWriter, Write};

fn u32_at(raw: &[u8; 48], at: usize) -> u32 {
    u32::from_le_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]])
}

fn u64_at(raw: &[u8; 48], at: usize) -> u64 {
    u64::from(u32_at(raw, at)) | (u64::from(u32_at(raw, at + 4)) << 32)
}

/// Writes the text of one record line (without the markers and newline).
fn record_line(w: &mut dyn Write, head: &HammerFifoHead, raw: &[u8; 48]) -> std::io::Result<()> {
    let size = head.hdr_size;
    let seq = head.hdr_seq;
    match head.hdr_type {
        HAMMER_HEAD_TYPE_PAD => write!(w, "PAD({})", size as i32),
        HAMMER_HEAD_TYPE_DUMMY => write!(w, "DUMMY({})\tseq={seq:08x}", size as i32),
        // struct hammer_fifo_undo: undo_offset @16, undo_data_bytes @24.
        HAMMER_HEAD_TYPE_UNDO => write!(
            w,
            "UNDO({size})\tseq={seq:08x} offset={:016x} bytes={}",
            u64_at(raw, 16),
            u32_at(raw, 24) as i32
        ),
        // struct hammer_fifo_redo: objid @16, offset @24, data_bytes @32,
        // flags @36, localization @40.
        HAMMER_HEAD_TYPE_REDO => write!(
            w,
            "REDO({size})\tseq={seq:08x} offset={:016x} bytes={} objid={:016x} flags={:08x} lo={:08x}",
            u64_at(raw, 24),
            u32_at(raw, 32) as i32,
            u64_at(raw, 16),
            u32_at(raw, 36),
            u32_at(raw, 40)
        ),
        t => write!(w, "{t:04x}({})\tseq={seq:08x}", size as i32),
    }
}

pub fn run(opts: &Opts, _args: &[String], out: &mut dyn Write) -> CliResult<()> {
    let set = open_volumes(opts)?;
    let mut w = BufWriter::with_capacity(1 << 16, out);
    print_preamble(&mut w, &set)?;
    let undo = set.header().vol0_blockmap[HAMMER_ZONE_UNDO_INDEX as usize];
    let mut stats = (opts.verbose >= 1).then(ZoneStats::default);
    let mut reader = Zone2Reader::new(&set);
    let mut result: std::io::Result<()> = Ok(());
    let mut failed: Option<CliError> = None;
    walk_fifo(&set, &mut reader, |ev| {
        if result.is_err() || failed.is_some() {
            return;
        }
        result = (|| -> std::io::Result<()> {
            match ev {
                FifoEvent::Record { offset, head, raw } => {
                    write!(w, "{offset:016x} ")?;
                    record_line(&mut w, &head, raw)?;
                    if offset == undo.first_offset {
                        w.write_all(b" >")?;
                    }
                    if offset == undo.next_offset {
                        w.write_all(b" <")?;
                    }
                    w.write_all(b"\n")?;
                    if let Some(s) = stats.as_mut() {
                        s.add_item(offset, head.hdr_size as i32 as i64);
                    }
                }
                FifoEvent::IllegalSize { .. } => {
                    w.write_all(b"Illegal size field, skipping to next boundary\n")?;
                }
                FifoEvent::Unreadable { offset, reason } => {
                    // DragonFly gives up on an unreadable FIFO buffer; so do we.
                    failed = Some(CliError(format!(
                        "Failed to read the UNDO FIFO at {offset:016x}: {reason}"
                    )));
                }
            }
            Ok(())
        })();
    });
    result?;
    if let Some(e) = failed {
        w.flush()?;
        return Err(e);
    }
    if let Some(s) = &stats {
        s.print(&mut w)?;
    }
    w.flush()?;
    Ok(())
}
