//! History paths and the inode numbers of past states. A name ending in
//! `@@0x<16 hex digits>` means that name as of the TID (an empty name, as
//! in `dir/@@0x…`, means the directory itself). Objects of the mount's own
//! view keep their HAMMER object id as inode number; an object seen as of
//! another TID gets a synthetic number with the top bit set (object ids are
//! positive, so the two never meet), derived from a hash of (object, TID)
//! and kept in a table until the kernel forgets it, so that each as-of view
//! has inode numbers of its own and the page cache never mixes versions.

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

/// What an inode number stands for: an object as of a TID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    pub obj_id: i64,
    pub asof: u64,
}

struct Slot {
    node: Node,
    /// Lookups the kernel holds (entry replies minus forgets).
    refs: u64,
}

/// Inode numbers of one mount: the view at `base_asof` maps to object ids,
/// any other TID to synthetic numbers.
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
        if node.asof == self.base_asof {
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
            obj_id: 5,
            asof: u64::MAX,
        };
        assert_eq!(t.acquire(cur), 5);
        let a = Node {
            obj_id: 5,
            asof: 100,
        };
        let b = Node {
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
    }
}
