//! A crash-simulating device for tests: it remembers which writes were made
//! durable by a barrier (`sync`) and which were still in flight, can be
//! told to lose power after a given number of barriers, and can then build
//! the image a real disk might hold after the crash — every barrier-covered
//! write, plus any subset of the in-flight ones, the last of them possibly
//! torn.

use crate::device::Device;
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

const BLK: u64 = 4096;

#[derive(Default)]
struct State {
    /// Blocks as every write so far left them (what reads see).
    current: HashMap<u64, Vec<u8>>,
    /// Blocks as of the last completed barrier.
    durable: HashMap<u64, Vec<u8>>,
    /// Writes since the last barrier, in order.
    pending: Vec<(u64, Vec<u8>)>,
    barriers: usize,
    /// Lose power once this many barriers have completed.
    crash_after: Option<usize>,
    crashed: bool,
}

/// Sparse overlay over a read-only base device.
pub struct CrashDevice {
    base: Arc<dyn Device>,
    st: Mutex<State>,
}

fn apply(map: &mut HashMap<u64, Vec<u8>>, base: &dyn Device, off: u64, data: &[u8]) {
    let mut done = 0usize;
    while done < data.len() {
        let at = off + done as u64;
        let blk = at / BLK;
        let in_blk = (at % BLK) as usize;
        let n = (BLK as usize - in_blk).min(data.len() - done);
        let b = map.entry(blk).or_insert_with(|| {
            let mut v = vec![0u8; BLK as usize];
            let len = (base.size().saturating_sub(blk * BLK)).min(BLK) as usize;
            let _ = base.read_at(&mut v[..len], blk * BLK);
            v
        });
        b[in_blk..in_blk + n].copy_from_slice(&data[done..done + n]);
        done += n;
    }
}

impl CrashDevice {
    pub fn new(base: Arc<dyn Device>) -> CrashDevice {
        CrashDevice {
            base,
            st: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loses power after `n` more barriers have completed (from now).
    pub fn crash_after_barriers(&self, n: usize) {
        let mut s = self.lock();
        s.crash_after = Some(s.barriers + n);
    }

    pub fn barriers(&self) -> usize {
        self.lock().barriers
    }

    pub fn crashed(&self) -> bool {
        self.lock().crashed
    }

    /// Number of writes in flight (not covered by a barrier).
    pub fn pending_writes(&self) -> usize {
        self.lock().pending.len()
    }

    /// The device after the crash: durable blocks, plus the in-flight writes
    /// whose bit is set in `keep` (bit i = write i), and if `tear` the last
    /// kept write only half done.
    pub fn after_crash(&self, keep: u64, tear: bool) -> CrashDevice {
        let s = self.lock();
        let mut map = s.durable.clone();
        let kept: Vec<&(u64, Vec<u8>)> = s
            .pending
            .iter()
            .enumerate()
            .filter(|(i, _)| *i < 64 && keep & (1 << i) != 0)
            .map(|(_, w)| w)
            .collect();
        for (i, (off, data)) in kept.iter().enumerate() {
            let last = i + 1 == kept.len();
            let len = if tear && last {
                (data.len() / 2).max(1)
            } else {
                data.len()
            };
            apply(&mut map, self.base.as_ref(), *off, &data[..len]);
        }
        CrashDevice {
            base: self.base.clone(),
            st: Mutex::new(State {
                current: map.clone(),
                durable: map,
                ..Default::default()
            }),
        }
    }
}

impl Device for CrashDevice {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        if off
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.base.size())
        {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        let s = self.lock();
        let mut done = 0usize;
        while done < buf.len() {
            let at = off + done as u64;
            let blk = at / BLK;
            let in_blk = (at % BLK) as usize;
            let n = (BLK as usize - in_blk).min(buf.len() - done);
            match s.current.get(&blk) {
                Some(b) => buf[done..done + n].copy_from_slice(&b[in_blk..in_blk + n]),
                None => self.base.read_at(&mut buf[done..done + n], at)?,
            }
            done += n;
        }
        Ok(())
    }

    fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        let mut s = self.lock();
        if s.crashed {
            return Err(io::Error::other("simulated power loss"));
        }
        if off
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.base.size())
        {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past end of device",
            ));
        }
        apply(&mut s.current, self.base.as_ref(), off, buf);
        s.pending.push((off, buf.to_vec()));
        Ok(())
    }

    fn size(&self) -> u64 {
        self.base.size()
    }

    fn sync(&self) -> io::Result<()> {
        let mut s = self.lock();
        if s.crashed {
            return Err(io::Error::other("simulated power loss"));
        }
        if s.crash_after == Some(s.barriers) {
            s.crashed = true;
            return Err(io::Error::other("simulated power loss"));
        }
        let pending = std::mem::take(&mut s.pending);
        let State { durable, .. } = &mut *s;
        for (off, data) in pending {
            apply(durable, self.base.as_ref(), off, &data);
        }
        s.barriers += 1;
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "REGFILE"
    }
}
