//! History paths and the inode numbers of past states. A name ending in
//! `@@0x<16 hex digits>` means that name as of the TID (an empty name, as
//! in `dir/@@0x…`, means the directory itself). Objects of the mount's own
//! view keep their HAMMER object id as inode number; an object seen as of
//! another TID gets a synthetic number with the top bit set (object ids are
//! positive, so the two never meet), derived from a hash of (object, TID)
//! and kept in a table until the kernel forgets it, so that each as-of view
//! has inode numbers of its own and the page cache never mixes versions.
//! `name@@YYYY-MM-DDTHH:MM:SS` (local time) means the name as of the newest
//! transaction committed by then (`Fs::tid_at`).

use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// Top bit of a synthetic inode number.
const SYNTHETIC: u64 = 1 << 63;

/// Splits `name@@0x<16 hex digits>` into the name and the TID; `None` for
/// any other name (which is then an ordinary name, `@@` and all).
pub fn split_history_name(name: &[u8]) -> Option<(&[u8], u64)> {
    const SUFFIX: usize = 4 + 16; // "@@0x" and the digits
    if name.len() < SUFFIX {
        return None;
    }
    let (base, ext) = name.split_at(name.len() - SUFFIX);
    let digits = ext.strip_prefix(b"@@0x")?;
    if !digits.iter().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let tid = u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()?;
    Some((base, tid))
}

/// What a history name asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsOf {
    /// `@@0x<16 hex digits>`.
    Tid(u64),
    /// `@@YYYY-MM-DDTHH:MM:SS`, local time, as Unix seconds: the state at
    /// the newest transaction committed by then.
    Time(u64),
    /// `@@-1:NNNNN` or `@@0x<tid>:NNNNN` (what PFS softlinks point at): the
    /// root of PFS `NNNNN`, now (`HAMMER_MAX_TID`) or as of the TID.
    PfsRoot { tid: u64, pfs: u32 },
}

/// Splits `name@@0x<tid>` or `name@@YYYY-MM-DDTHH:MM:SS` (local time) into
/// the name and what it asks for; `None` for any other name.
pub fn split_asof_name(name: &[u8]) -> Option<(&[u8], AsOf)> {
    if let Some(pfs_root) = split_pfs_name(name) {
        return Some((&name[..0], pfs_root));
    }
    if let Some((base, tid)) = split_history_name(name) {
        return Some((base, AsOf::Tid(tid)));
    }
    const DATE: usize = 2 + 19; // "@@" and YYYY-MM-DDTHH:MM:SS
    if name.len() < DATE {
        return None;
    }
    let (base, ext) = name.split_at(name.len() - DATE);
    let d = ext.strip_prefix(b"@@")?;
    let shape_ok = d.iter().enumerate().all(|(i, &c)| match i {
        4 | 7 => c == b'-',
        10 => c == b'T',
        13 | 16 => c == b':',
        _ => c.is_ascii_digit(),
    });
    if !shape_ok {
        return None;
    }
    let num = |a: usize, b: usize| -> i32 {
        std::str::from_utf8(&d[a..b])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(-1)
    };
    let (year, mon, day, hour, min, sec) = (
        num(0, 4),
        num(5, 7),
        num(8, 10),
        num(11, 13),
        num(14, 16),
        num(17, 19),
    );
    if !(1..=12).contains(&mon) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    // SAFETY: `tm` is a plain C struct, zeroed then filled; mktime only
    // reads and normalises it.
    let t = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        tm.tm_year = year - 1900;
        tm.tm_mon = mon - 1;
        tm.tm_mday = day;
        tm.tm_hour = hour;
        tm.tm_min = min;
        tm.tm_sec = sec;
        tm.tm_isdst = -1;
        libc::mktime(&mut tm)
    };
    if t < 0 {
        return None;
    }
    Some((base, AsOf::Time(t as u64)))
}

/// `@@-1:NNNNN` / `@@0x<16 hex>:NNNNN` as a whole name (five decimal digits).
fn split_pfs_name(name: &[u8]) -> Option<AsOf> {
    let rest = name.strip_prefix(b"@@")?;
    let (tid_part, pfs_part) = rest.split_at(rest.len().checked_sub(6)?);
    let digits = pfs_part.strip_prefix(b":")?;
    if digits.len() != 5 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let pfs: u32 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let tid = if tid_part == b"-1" {
        u64::MAX
    } else {
        let hex = tid_part.strip_prefix(b"0x")?;
        if hex.len() != 16 || !hex.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u64::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?
    };
    Some(AsOf::PfsRoot { tid, pfs })
}

/// What an inode number stands for: an object of a PFS as of a TID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    pub pfs: u32,
    pub obj_id: i64,
    pub asof: u64,
}

struct Slot {
    node: Node,
    /// Lookups the kernel holds (entry replies minus forgets).
    refs: u64,
}

/// Inode numbers of one mount: the mounted PFS's view at `base_asof` maps
/// to object ids, any other TID or PFS to synthetic numbers.
pub struct InodeTable {
    base_asof: u64,
    synthetic: HashMap<u64, Slot>,
    by_node: HashMap<Node, u64>,
}

impl InodeTable {
    pub fn new(base_asof: u64) -> Self {
        InodeTable {
            base_asof,
            synthetic: HashMap::new(),
            by_node: HashMap::new(),
        }
    }

    pub fn base_asof(&self) -> u64 {
        self.base_asof
    }

    /// The node behind an inode number; `None` for a synthetic number the
    /// kernel has already forgotten.
    pub fn node(&self, ino: u64) -> Option<Node> {
        if ino & SYNTHETIC == 0 {
            return Some(Node {
                pfs: 0,
                obj_id: ino as i64,
                asof: self.base_asof,
            });
        }
        self.synthetic.get(&ino).map(|s| s.node)
    }

    /// The first candidate number for a node: its hash with the top bit
    /// set; collisions probe upwards.
    fn home(node: Node) -> u64 {
        let mut h = DefaultHasher::new();
        node.hash(&mut h);
        // Never 0 or the root's number, even with the top bit masked.
        SYNTHETIC | (h.finish() & !SYNTHETIC).max(2)
    }

    /// The number a node has, or would get from [`InodeTable::acquire`];
    /// takes no reference (for readdir, whose entries the kernel does not
    /// count).
    pub fn peek(&self, node: Node) -> u64 {
        if node.asof == self.base_asof && node.pfs == 0 {
            return node.obj_id as u64;
        }
        if let Some(&ino) = self.by_node.get(&node) {
            return ino;
        }
        let mut ino = Self::home(node);
        while self.synthetic.contains_key(&ino) {
            ino = SYNTHETIC | (ino.wrapping_add(1) & !SYNTHETIC).max(2);
        }
        ino
    }

    /// The number of a node for an entry reply, counting the kernel's
    /// reference.
    pub fn acquire(&mut self, node: Node) -> u64 {
        let ino = self.peek(node);
        if ino & SYNTHETIC == 0 {
            return ino;
        }
        match self.synthetic.entry(ino) {
            Entry::Occupied(mut o) => o.get_mut().refs += 1,
            Entry::Vacant(v) => {
                v.insert(Slot { node, refs: 1 });
                self.by_node.insert(node, ino);
            }
        }
        ino
    }

    /// The kernel dropped `n` references to `ino`.
    pub fn forget(&mut self, ino: u64, n: u64) {
        if let Entry::Occupied(mut o) = self.synthetic.entry(ino) {
            let s = o.get_mut();
            s.refs = s.refs.saturating_sub(n);
            if s.refs == 0 {
                let node = o.remove().node;
                self.by_node.remove(&node);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_names() {
        let (base, what) = split_asof_name(b"f.txt@@2026-11-25T10:15:00").unwrap();
        assert_eq!(base, b"f.txt");
        let AsOf::Time(t) = what else {
            panic!("a time")
        };
        let (_, later) = split_asof_name(b"f.txt@@2026-11-25T10:15:01").unwrap();
        assert_eq!(later, AsOf::Time(t + 1));
        assert_eq!(
            split_asof_name(b"@@0x0000000100000002"),
            Some((&b""[..], AsOf::Tid(0x1_0000_0002)))
        );
        assert_eq!(split_asof_name(b"f@@2026-13-25T10:15:00"), None);
        assert_eq!(split_asof_name(b"f@@2026-11-25 10:15:00"), None);
        assert_eq!(split_asof_name(b"plain"), None);
        assert_eq!(
            split_asof_name(b"@@-1:00000"),
            Some((
                &b""[..],
                AsOf::PfsRoot {
                    tid: u64::MAX,
                    pfs: 0
                }
            ))
        );
        assert_eq!(
            split_asof_name(b"@@0x0000000100000002:00003"),
            Some((
                &b""[..],
                AsOf::PfsRoot {
                    tid: 0x1_0000_0002,
                    pfs: 3
                }
            ))
        );
        assert_eq!(split_asof_name(b"@@-1:0000"), None);
    }

    #[test]
    fn history_names() {
        assert_eq!(
            split_history_name(b"a.txt@@0x0000000106e55da0"),
            Some((&b"a.txt"[..], 0x106e55da0))
        );
        assert_eq!(
            split_history_name(b"@@0xFFFFFFFFFFFFFFFF"),
            Some((&b""[..], u64::MAX))
        );
        assert_eq!(split_history_name(b"a@@0x106e55da0"), None);
        assert_eq!(split_history_name(b"a@@0x0000000106e55dag"), None);
        assert_eq!(split_history_name(b"a@0x0000000106e55da00"), None);
        assert_eq!(split_history_name(b"plain"), None);
    }

    #[test]
    fn synthetic_numbers() {
        let mut t = InodeTable::new(u64::MAX);
        let cur = Node {
            pfs: 0,
            obj_id: 5,
            asof: u64::MAX,
        };
        assert_eq!(t.acquire(cur), 5);
        let a = Node {
            pfs: 0,
            obj_id: 5,
            asof: 100,
        };
        let b = Node {
            pfs: 0,
            obj_id: 5,
            asof: 200,
        };
        let ia = t.acquire(a);
        let ib = t.acquire(b);
        assert!(ia & SYNTHETIC != 0 && ib & SYNTHETIC != 0 && ia != ib);
        assert_eq!(t.peek(a), ia);
        assert_eq!(t.acquire(a), ia);
        assert_eq!(t.node(ia), Some(a));
        t.forget(ia, 1);
        assert_eq!(t.node(ia), Some(a));
        t.forget(ia, 1);
        assert_eq!(t.node(ia), None);
        // Numbers are stable across forget and lookup again.
        assert_eq!(t.acquire(a), ia);
        // The same object in another PFS, live, is another inode.
        let other = Node { pfs: 8, ..cur };
        let io = t.acquire(other);
        assert!(io & SYNTHETIC != 0 && io != 5);
        assert_eq!(t.node(io), Some(other));
    }
}
