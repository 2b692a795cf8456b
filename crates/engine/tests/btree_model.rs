//! Model-based test of the B-tree against a `BTreeMap`: random inserts,
//! history-keeping updates (delete_tid) and physical removals, with the
//! tree's structural invariants checked after every batch, and as-of
//! lookups compared with the model.

use hammer_engine::btree::{create_empty, BTree, MemNodeStore};
use hammer_ondisk::*;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::ops::ControlFlow;

type Key = (u32, i64, u16, i64, u64);

fn base(k: Key) -> HammerBaseElm {
    HammerBaseElm {
        localization: k.0,
        obj_id: k.1,
        rec_type: k.2,
        key: k.3,
        create_tid: k.4,
        ..Default::default()
    }
}

fn model_key(b: &HammerBaseElm) -> Key {
    // The model orders like btree_cmp (create_tid 0 never occurs here).
    (b.localization, b.obj_id, b.rec_type, b.key, b.create_tid)
}

#[derive(Clone, Debug)]
enum Op {
    Insert(Key, u32),
    Delete(usize, u64),
    Remove(usize),
}

fn key_strategy() -> impl Strategy<Value = Key> {
    (
        1u32..3,
        -40i64..40,
        prop_oneof![Just(1u16), Just(0x10u16), Just(0x11u16)],
        -30i64..30,
        1u64..6,
    )
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (key_strategy(), any::<u32>()).prop_map(|(k, d)| Op::Insert(k, d)),
        2 => (any::<usize>(), 6u64..10).prop_map(|(i, t)| Op::Delete(i, t)),
        3 => any::<usize>().prop_map(Op::Remove),
    ]
}

fn all(tree: &BTree<MemNodeStore>) -> Vec<HammerBtreeLeafElm> {
    let mut v = Vec::new();
    let from = HammerBaseElm {
        localization: 0,
        obj_id: i64::MIN,
        rec_type: 0,
        key: i64::MIN,
        create_tid: 1,
        ..Default::default()
    };
    let to = HammerBaseElm {
        localization: u32::MAX,
        obj_id: i64::MAX,
        rec_type: u16::MAX,
        key: i64::MAX,
        create_tid: 0,
        ..Default::default()
    };
    tree.scan(&from, &to, &mut |e| {
        v.push(*e);
        ControlFlow::Continue(())
    })
    .unwrap();
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn btree_matches_model(ops in proptest::collection::vec(op_strategy(), 1..1500)) {
        let mut store = MemNodeStore::default();
        let root = create_empty(&mut store).unwrap();
        let mut tree = BTree::new(&mut store, root);
        let mut model: BTreeMap<Key, HammerBtreeLeafElm> = BTreeMap::new();
        for (n, op) in ops.iter().enumerate() {
            match op {
                Op::Insert(k, d) => {
                    let e = HammerBtreeLeafElm { base: base(*k), data_crc: *d, ..Default::default() };
                    let r = tree.insert(&e);
                    if model.contains_key(k) {
                        prop_assert!(r.is_err(), "duplicate key accepted");
                    } else {
                        r.unwrap();
                        let mut e = e;
                        e.base.btype = HAMMER_BTREE_TYPE_RECORD;
                        model.insert(*k, e);
                    }
                }
                Op::Delete(i, t) => {
                    if model.is_empty() { continue; }
                    let k = *model.keys().nth(i % model.len()).unwrap();
                    let mut e = model[&k];
                    e.base.delete_tid = *t;
                    prop_assert!(tree.update(&e).unwrap());
                    model.insert(k, e);
                }
                Op::Remove(i) => {
                    if model.is_empty() { continue; }
                    let k = *model.keys().nth(i % model.len()).unwrap();
                    let got = tree.remove(&base(k)).unwrap();
                    prop_assert_eq!(got.map(|e| model_key(&e.base)), Some(k));
                    model.remove(&k);
                }
            }
            if n % 97 == 0 {
                prop_assert_eq!(tree.check().unwrap(), model.len() as u64);
            }
        }
        prop_assert_eq!(tree.check().unwrap(), model.len() as u64);
        let got = all(&tree);
        let want: Vec<_> = model.values().copied().collect();
        prop_assert_eq!(got, want);
        // As-of lookups, as HAMMER defines them: the newest version created
        // at or before asof, if it is not deleted by then (a key's versions
        // have disjoint lifetimes on a valid volume, so an older one cannot
        // be visible when the newest is not).
        for k in model.keys().take(50) {
            for asof in [1u64, 3, 5, 7, 9, u64::MAX] {
                let want = model
                    .range((k.0, k.1, k.2, k.3, 0)..=(k.0, k.1, k.2, k.3, asof))
                    .next_back()
                    .map(|(_, e)| *e)
                    .filter(|e| visible_at(e.base.create_tid, e.base.delete_tid, asof));
                prop_assert_eq!(tree.lookup(k.0, k.1, k.2, k.3, asof).unwrap(), want);
            }
        }
    }
}

#[test]
fn many_sequential_inserts_then_remove_all() {
    let mut store = MemNodeStore::default();
    let root = create_empty(&mut store).unwrap();
    let mut tree = BTree::new(&mut store, root);
    let n = 20_000;
    for i in 0..n {
        let e = HammerBtreeLeafElm {
            base: base((1, i / 7, 0x10, (i % 7) * 100, 1 + (i as u64 % 3))),
            ..Default::default()
        };
        tree.insert(&e).unwrap();
    }
    assert_eq!(tree.check().unwrap(), n as u64);
    for i in (0..n).rev() {
        assert!(tree
            .remove(&base((1, i / 7, 0x10, (i % 7) * 100, 1 + (i as u64 % 3))))
            .unwrap()
            .is_some());
        if i % 5000 == 0 {
            assert_eq!(tree.check().unwrap(), i as u64);
        }
    }
    assert_eq!(tree.check().unwrap(), 0);
    let root = tree.root;
    // Everything but the root went back to the store.
    assert_eq!(store.nodes.len(), 1, "only the root remains");
    assert!(store.nodes.contains_key(&root));
}

/// As-of range scans over keys with long histories (a block rewritten in
/// hundreds of flushes) give what a version-by-version reading gives.
#[test]
fn visible_scans_with_long_histories() {
    let mut store = MemNodeStore::default();
    let root = create_empty(&mut store).unwrap();
    let mut tree = BTree::new(&mut store, root);
    let mut model: Vec<HammerBtreeLeafElm> = Vec::new();
    // Keys 1..=8 of object 5; key k has k*k*3 versions with disjoint
    // lifetimes (each deleted when the next is created), the last alive.
    for k in 1i64..=8 {
        let n = (k * k * 3) as u64;
        for v in 0..n {
            let create = 10 + v * 10 + k as u64;
            let delete = if v + 1 == n { 0 } else { create + 10 };
            let e = HammerBtreeLeafElm {
                base: HammerBaseElm {
                    delete_tid: delete,
                    btype: HAMMER_BTREE_TYPE_RECORD,
                    ..base((1, 5, 0x10, k * 100, create))
                },
                data_crc: v as u32,
                ..Default::default()
            };
            tree.insert(&e).unwrap();
            model.push(e);
        }
    }
    tree.check().unwrap();
    let from = base((1, 5, 0x10, i64::MIN, 1));
    let to = HammerBaseElm { obj_id: 6, ..from };
    for asof in [1u64, 11, 25, 100, 455, 1000, 1931, 5000, u64::MAX] {
        let mut want: Vec<_> = model
            .iter()
            .filter(|e| visible_at(e.base.create_tid, e.base.delete_tid, asof))
            .copied()
            .collect();
        want.sort_by(|a, b| btree_cmp(&a.base, &b.base).cmp(&0));
        assert_eq!(
            tree.visible(&from, &to, asof).unwrap(),
            want,
            "as of {asof}"
        );
        // A range starting and ending inside the long histories.
        let f2 = base((1, 5, 0x10, 300, 1));
        let t2 = base((1, 5, 0x10, 700, 1));
        let w2: Vec<_> = want
            .iter()
            .filter(|e| e.base.key >= 300 && e.base.key < 700)
            .copied()
            .collect();
        assert_eq!(
            tree.visible(&f2, &t2, asof).unwrap(),
            w2,
            "sub-range as of {asof}"
        );
    }
}

/// Rebalancing a big sparse tree (three levels and more, most records
/// removed) packs leaves and internal nodes and keeps every record, in
/// order, with the structural invariants.
#[test]
fn rebalance_packs_every_level() {
    let mut store = MemNodeStore::default();
    let root = create_empty(&mut store).unwrap();
    let mut tree = BTree::new(&mut store, root);
    let mut keys: Vec<Key> = (0..60_000i64)
        .map(|i| (1, i / 100, 0x10, i % 100, 7))
        .collect();
    // Insert in a scattered order so splits leave half-full nodes.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in (1..keys.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        keys.swap(i, (x % (i as u64 + 1)) as usize);
    }
    for k in &keys {
        let e = HammerBtreeLeafElm {
            base: HammerBaseElm {
                btype: HAMMER_BTREE_TYPE_RECORD,
                ..base(*k)
            },
            ..Default::default()
        };
        tree.insert(&e).unwrap();
    }
    // Remove 95%.
    let mut kept: Vec<Key> = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        if i % 20 == 0 {
            kept.push(*k);
        } else {
            tree.remove(&base(*k)).unwrap().unwrap();
        }
    }
    kept.sort();
    let levels_before = tree.upper_levels().unwrap();
    assert!(
        !levels_before.is_empty(),
        "the tree should have upper levels"
    );
    let nodes_before = tree.all_nodes().unwrap().len();
    let (parents, _) = tree.leaf_parents().unwrap();
    for p in parents {
        tree.rebalance_leaves(p, 52).unwrap();
    }
    tree.check().unwrap();
    let after_leaves = tree.all_nodes().unwrap().len();
    let mut freed = 0;
    for level in tree.upper_levels().unwrap() {
        for p in level {
            freed += tree.rebalance_internal(p, 52, usize::MAX).unwrap().1;
        }
        tree.check().unwrap();
    }
    assert!(freed > 0, "internal nodes should have been packed too");
    assert_eq!(
        tree.all_nodes().unwrap().len() as u64,
        after_leaves as u64 - freed
    );
    let nodes_after = tree.all_nodes().unwrap().len();
    assert!(
        nodes_after * 4 < nodes_before,
        "{nodes_before} nodes before, {nodes_after} after"
    );
    assert_eq!(tree.check().unwrap(), kept.len() as u64);
    let got: Vec<Key> = all(&tree).iter().map(|e| model_key(&e.base)).collect();
    assert_eq!(got, kept);
    for k in kept.iter().step_by(37) {
        assert!(tree.lookup(k.0, k.1, k.2, k.3, u64::MAX).unwrap().is_some());
    }
}
