//! `VmaTree`: the VMAs of an address space, ordered and non-overlapping, in one gap-augmented
//! B+ tree (Linux keeps them in a maple tree, which tracks the free gaps the same way).
//!
//! Leaves hold the VMAs themselves, in address order, each with the start of the free gap below
//! it (the end of the VMA before, or 0); inner nodes hold, for each child, the lowest start and
//! the largest gap in its subtree. A lookup, an insertion, a removal and the search for the
//! highest or lowest gap that fits a length all walk the one structure, O(log n), and a VMA is
//! resized in place.

use crate::vma::Vma;
use std::cell::Cell;

const NIL: u32 = u32::MAX;
/// No finger: an empty key range.
const NO_FINGER: (u32, u64, u64) = (NIL, 1, 0);
/// No last hit.
const NO_HIT: Pos = Pos { leaf: NIL, idx: 0 };
/// VMAs per leaf, at most (a leaf splits past it). Small, because an insertion moves the
/// VMAs after it within its leaf.
const LEAF_CAP: usize = 16;
/// Children per inner node, at most.
const CAP: usize = 32;

/// A leaf: VMAs in address order, and the gap below each.
#[derive(Debug, Clone)]
struct Leaf {
    vmas: Vec<Vma>,
    /// Each VMA's start, kept beside it so that searching a leaf reads one cache line or two.
    starts: Vec<u64>,
    /// Where the free gap below each VMA starts: the end of the VMA before it, or 0.
    gap_start: Vec<u64>,
    parent: u32,
    prev: u32,
    next: u32,
}

/// An inner node: its children with their lowest start and largest gap.
#[derive(Debug, Clone)]
struct Inner {
    children: Vec<u32>,
    mins: Vec<u64>,
    max_gap: Vec<u64>,
    /// The largest of `max_gap`, kept so that an update need not scan them.
    max: u64,
    parent: u32,
}

impl Inner {
    fn new(children: Vec<u32>, mins: Vec<u64>, max_gap: Vec<u64>) -> Inner {
        let max = largest(&max_gap);
        Inner { children, mins, max_gap, max, parent: NIL }
    }
    /// Recomputes `max` after entries were added or removed.
    fn recount(&mut self) {
        self.max = largest(&self.max_gap);
    }
}

/// The largest of `xs` (0 for none): a plain loop the compiler turns into compares and
/// conditional moves, the hot part of keeping gaps current.
fn largest(xs: &[u64]) -> u64 {
    let mut m = 0;
    for &x in xs {
        m = if x > m { x } else { m };
    }
    m
}

/// The largest gap below the VMAs of a leaf: `starts[k] - gap_start[k]`.
fn largest_gap(starts: &[u64], gap_start: &[u64]) -> u64 {
    let mut m = 0;
    for (&s, &g) in starts.iter().zip(gap_start) {
        // A gap starts at or below its VMA (the tree's invariant): no overflow to check.
        let x = s.wrapping_sub(g);
        m = if x > m { x } else { m };
    }
    m
}

#[derive(Debug, Clone)]
enum Node {
    Leaf(Leaf),
    Inner(Inner),
    Free,
}

/// A place in the tree: a leaf and an index into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    leaf: u32,
    idx: usize,
}

/// A VMA named by its start, with where it was in the tree when the handle was made: while
/// nothing moved it, the tree finds it with one compare; after a change it finds it by its start
/// (a start names one VMA at most, so a handle never names the wrong one). Linux's call paths
/// hold a `vma_iterator` the same way, revalidated after each change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VmaHandle {
    /// The VMA's start.
    pub start: u64,
    pos: Pos,
}

impl From<u64> for VmaHandle {
    /// A handle from a start alone (found by a lookup when first used).
    fn from(start: u64) -> VmaHandle {
        VmaHandle { start, pos: NO_HIT }
    }
}

/// Non-overlapping VMAs ordered by start.
///
/// # Invariants
/// * For consecutive VMAs `a, b`: `a.end <= b.start`.
/// * Every VMA has `start < end`, both page aligned.
/// * Each VMA's recorded gap start is the end of the VMA before it (0 for the first).
/// * Every inner node's `mins` and `max_gap` are its children's lowest start and largest gap;
///   `parent` and the leaves' `prev`/`next` links match the structure; no node is empty.
/// * Every VMA in the tree that maps a file shared and writable counts once in that inode's
///   `writable_mappings` (Linux: `vma_link_file` / `mapping_allow_writable`).
#[derive(Debug)]
pub struct VmaTree {
    nodes: Vec<Node>,
    /// For each node, where it last was among its parent's children: checked before use, so a
    /// stale hint costs only the scan it would have saved.
    slot_hint: Vec<u32>,
    free: Vec<u32>,
    root: u32,
    first: u32,
    last: u32,
    len: usize,
    /// The leaf the last lookup ended in, with the keys it answers for (`lo..hi`): the calls of
    /// one operation mostly look near each other, so a lookup first tries it (as a maple tree
    /// walk reuses its `ma_state`). Its bounds are recomputed after every change.
    finger: Cell<(u32, u64, u64)>,
    /// Where the last VMA found by its start was: the calls of one operation come back to the
    /// same VMA again and again. Checked before use (a start names one VMA at most), so it is
    /// never stale.
    last_hit: Cell<Pos>,
}

impl Default for VmaTree {
    fn default() -> VmaTree {
        VmaTree {
            nodes: Vec::new(),
            slot_hint: Vec::new(),
            free: Vec::new(),
            root: NIL,
            first: NIL,
            last: NIL,
            len: 0,
            finger: Cell::new(NO_FINGER),
            last_hit: Cell::new(NO_HIT),
        }
    }
}

/// Counts a VMA in (or out of) its inode's writable shared mappings.
fn count_writable(v: &Vma, delta: i64) {
    if let Some(f) = &v.file
        && v.flags.is_shared_maywrite()
    {
        let mut st = f.inode.state();
        st.writable_mappings = st.writable_mappings.saturating_add_signed(delta);
    }
}

impl Clone for VmaTree {
    fn clone(&self) -> VmaTree {
        for v in self.iter() {
            count_writable(v, 1);
        }
        VmaTree {
            nodes: self.nodes.clone(),
            slot_hint: self.slot_hint.clone(),
            free: self.free.clone(),
            root: self.root,
            first: self.first,
            last: self.last,
            len: self.len,
            finger: Cell::new(NO_FINGER),
            last_hit: Cell::new(NO_HIT),
        }
    }
}

impl Drop for VmaTree {
    fn drop(&mut self) {
        for v in self.iter() {
            count_writable(v, -1);
        }
    }
}

/// Iterates the VMAs in address order, from both ends, a leaf's slice at a time.
#[derive(Debug)]
pub struct Iter<'a> {
    tree: &'a VmaTree,
    /// The rest of the front leaf, and the leaf after it.
    front: std::slice::Iter<'a, Vma>,
    front_next: u32,
    /// The rest of the back leaf, and the leaf before it.
    back: std::slice::Iter<'a, Vma>,
    back_prev: u32,
    /// VMAs not yet yielded from either end: when the ends meet in one leaf, this stops them.
    remaining: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Vma;
    fn next(&mut self) -> Option<&'a Vma> {
        if self.remaining == 0 {
            return None;
        }
        loop {
            if let Some(v) = self.front.next() {
                self.remaining -= 1;
                return Some(v);
            }
            if self.front_next == NIL {
                return None;
            }
            let l = self.tree.leaf(self.front_next);
            (self.front, self.front_next) = (l.vmas.iter(), l.next);
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        loop {
            if let Some(v) = self.back.next_back() {
                self.remaining -= 1;
                return Some(v);
            }
            if self.back_prev == NIL {
                return None;
            }
            let l = self.tree.leaf(self.back_prev);
            (self.back, self.back_prev) = (l.vmas.iter(), l.prev);
        }
    }
}

/// Iterates forward from a position while the VMAs start below a limit.
#[derive(Debug)]
pub struct RangeIter<'a> {
    tree: &'a VmaTree,
    pos: Option<Pos>,
    end: u64,
}

impl<'a> Iterator for RangeIter<'a> {
    type Item = &'a Vma;
    fn next(&mut self) -> Option<&'a Vma> {
        let p = self.pos?;
        let v = self.tree.at(p);
        if v.start >= self.end {
            self.pos = None;
            return None;
        }
        self.pos = self.tree.next_pos(p);
        Some(v)
    }
}

impl VmaTree {
    fn leaf(&self, i: u32) -> &Leaf {
        match &self.nodes[i as usize] {
            Node::Leaf(l) => l,
            _ => unreachable!("node {i} is not a leaf"),
        }
    }
    fn leaf_mut(&mut self, i: u32) -> &mut Leaf {
        match &mut self.nodes[i as usize] {
            Node::Leaf(l) => l,
            _ => unreachable!("node {i} is not a leaf"),
        }
    }
    fn inner_mut(&mut self, i: u32) -> &mut Inner {
        match &mut self.nodes[i as usize] {
            Node::Inner(n) => n,
            _ => unreachable!("node {i} is not an inner node"),
        }
    }
    fn parent_of(&self, i: u32) -> u32 {
        match &self.nodes[i as usize] {
            Node::Leaf(l) => l.parent,
            Node::Inner(n) => n.parent,
            Node::Free => NIL,
        }
    }
    fn set_parent(&mut self, i: u32, p: u32) {
        match &mut self.nodes[i as usize] {
            Node::Leaf(l) => l.parent = p,
            Node::Inner(n) => n.parent = p,
            Node::Free => {}
        }
    }
    fn alloc(&mut self, n: Node) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = n;
                i
            }
            None => {
                self.nodes.push(n);
                self.slot_hint.push(0);
                (self.nodes.len() - 1) as u32
            }
        }
    }
    fn release(&mut self, i: u32) {
        self.nodes[i as usize] = Node::Free;
        self.free.push(i);
    }

    /// Where child `i` is among the children of its parent `p`.
    fn slot_in(&mut self, p: u32, i: u32) -> usize {
        let hint = self.slot_hint[i as usize] as usize;
        let Node::Inner(n) = &self.nodes[p as usize] else { unreachable!("node {p} is not an inner node") };
        if n.children.get(hint) == Some(&i) {
            return hint;
        }
        let k = n.children.iter().position(|&c| c == i).expect("a child is in its parent");
        self.slot_hint[i as usize] = k as u32;
        k
    }

    /// A node's lowest start and largest gap.
    fn stats(&self, i: u32) -> (u64, u64) {
        match &self.nodes[i as usize] {
            Node::Leaf(l) => (l.starts.first().copied().unwrap_or(u64::MAX), largest_gap(&l.starts, &l.gap_start)),
            Node::Inner(n) => (n.mins.first().copied().unwrap_or(u64::MAX), n.max),
            Node::Free => (u64::MAX, 0),
        }
    }

    /// Brings the entries for `i` in its ancestors up to date.
    fn fix_up(&mut self, mut i: u32) {
        let (mut min, mut max) = self.stats(i);
        loop {
            let p = self.parent_of(i);
            if p == NIL {
                return;
            }
            let k = self.slot_in(p, i);
            let node = self.inner_mut(p);
            let old = node.max_gap[k];
            if node.mins[k] == min && old == max {
                return;
            }
            node.mins[k] = min;
            node.max_gap[k] = max;
            if max >= node.max {
                node.max = max;
            } else if old == node.max {
                node.recount();
            }
            (min, max) = (node.mins[0], node.max);
            i = p;
        }
    }

    /// The leaf whose range holds `key`: the rightmost child whose lowest start is `<= key` at
    /// every level (the first child when none is).
    fn find_leaf(&self, key: u64) -> u32 {
        let (f, lo, hi) = self.finger.get();
        if lo <= key && key < hi {
            return f;
        }
        let mut i = self.root;
        loop {
            match &self.nodes[i as usize] {
                Node::Leaf(l) => {
                    self.finger.set(self.finger_on(i, l));
                    return i;
                }
                Node::Inner(n) => {
                    let k = n.mins.partition_point(|&m| m <= key).saturating_sub(1);
                    i = n.children[k];
                }
                Node::Free => unreachable!("a free node in the tree"),
            }
        }
    }

    fn at(&self, p: Pos) -> &Vma {
        &self.leaf(p.leaf).vmas[p.idx]
    }
    fn next_pos(&self, p: Pos) -> Option<Pos> {
        let l = self.leaf(p.leaf);
        if p.idx + 1 < l.vmas.len() {
            return Some(Pos { leaf: p.leaf, idx: p.idx + 1 });
        }
        (l.next != NIL).then_some(Pos { leaf: l.next, idx: 0 })
    }
    fn prev_pos(&self, p: Pos) -> Option<Pos> {
        if p.idx > 0 {
            return Some(Pos { leaf: p.leaf, idx: p.idx - 1 });
        }
        let prev = self.leaf(p.leaf).prev;
        (prev != NIL).then(|| Pos { leaf: prev, idx: self.leaf(prev).vmas.len() - 1 })
    }
    /// The first VMA with start `>= key`.
    fn lower_bound(&self, key: u64) -> Option<Pos> {
        if self.root == NIL {
            return None;
        }
        let leaf = self.find_leaf(key);
        let l = self.leaf(leaf);
        let idx = l.starts.partition_point(|&s| s < key);
        if idx < l.vmas.len() {
            return Some(Pos { leaf, idx });
        }
        (l.next != NIL).then_some(Pos { leaf: l.next, idx: 0 })
    }
    /// The last VMA with start `< key`.
    fn last_below(&self, key: u64) -> Option<Pos> {
        if self.root == NIL {
            return None;
        }
        let leaf = self.find_leaf(key);
        let idx = self.leaf(leaf).starts.partition_point(|&s| s < key);
        if idx > 0 {
            return Some(Pos { leaf, idx: idx - 1 });
        }
        self.prev_pos(Pos { leaf, idx: 0 })
    }
    fn pos_of(&self, start: u64) -> Option<Pos> {
        let hit = self.last_hit.get();
        if let Some(Node::Leaf(l)) = self.nodes.get(hit.leaf as usize) {
            // The last VMA found, or one beside it in its leaf (a split's other half, the
            // next VMA of a walk).
            let near = hit.idx.saturating_sub(1)..(hit.idx + 2).min(l.starts.len());
            if let Some(k) = l.starts.get(near.clone()).and_then(|s| s.iter().position(|&s| s == start)) {
                let p = Pos { leaf: hit.leaf, idx: near.start + k };
                self.last_hit.set(p);
                return Some(p);
            }
        }
        let p = self.lower_bound(start).filter(|p| self.leaf(p.leaf).starts[p.idx] == start)?;
        self.last_hit.set(p);
        Some(p)
    }

    /// Where the VMA of a handle is now.
    #[inline]
    fn resolve(&self, h: VmaHandle) -> Option<Pos> {
        if let Some(Node::Leaf(l)) = self.nodes.get(h.pos.leaf as usize)
            && l.starts.get(h.pos.idx) == Some(&h.start)
        {
            return Some(h.pos);
        }
        self.pos_of(h.start)
    }

    #[inline]
    fn handle_at(&self, p: Pos) -> VmaHandle {
        VmaHandle { start: self.leaf(p.leaf).starts[p.idx], pos: p }
    }

    /// The VMA a handle names.
    #[inline]
    pub(crate) fn vma(&self, h: VmaHandle) -> Option<&Vma> {
        self.resolve(h).map(|p| self.at(p))
    }

    /// The VMA a handle names, to change anything but its range.
    #[inline]
    pub(crate) fn vma_mut(&mut self, h: VmaHandle) -> Option<&mut Vma> {
        let p = self.resolve(h)?;
        Some(&mut self.leaf_mut(p.leaf).vmas[p.idx])
    }

    /// The VMA before the one a handle names (adjacent or not).
    pub(crate) fn before(&self, h: VmaHandle) -> Option<&Vma> {
        self.resolve(h).and_then(|p| self.prev_pos(p)).map(|q| self.at(q))
    }

    /// The VMA after the one a handle names (adjacent or not).
    pub(crate) fn after(&self, h: VmaHandle) -> Option<&Vma> {
        self.resolve(h).and_then(|p| self.next_pos(p)).map(|q| self.at(q))
    }

    /// The number of VMAs.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether there are no VMAs.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The VMAs in address order.
    pub fn iter(&self) -> Iter<'_> {
        let empty: &[Vma] = &[];
        Iter {
            tree: self,
            front: empty.iter(),
            front_next: self.first,
            back: empty.iter(),
            back_prev: self.last,
            remaining: self.len,
        }
    }
    pub(crate) fn get(&self, start: u64) -> Option<&Vma> {
        self.pos_of(start).map(|p| self.at(p))
    }
    /// The VMA at `start`, to change anything but its range (which `insert`/`remove` own).
    pub(crate) fn get_mut(&mut self, start: u64) -> Option<&mut Vma> {
        let p = self.pos_of(start)?;
        Some(&mut self.leaf_mut(p.leaf).vmas[p.idx])
    }

    /// Sets where the gap below the VMA at `p` starts.
    fn set_gap_start(&mut self, p: Pos, gap_start: u64) {
        self.leaf_mut(p.leaf).gap_start[p.idx] = gap_start;
        self.fix_up(p.leaf);
    }

    /// The VMA at `p` was put there or moved and now ends at `end`: its leaf's summaries are
    /// brought up to date, and the gap below the VMA after it starts at `end` (in this leaf,
    /// or the first of the next).
    fn changed_at(&mut self, p: Pos, end: u64) {
        let l = self.leaf_mut(p.leaf);
        if p.idx + 1 < l.vmas.len() {
            debug_assert!(l.starts[p.idx + 1] >= end, "the VMA ending at {end:#x} overlaps the next");
            l.gap_start[p.idx + 1] = end;
            self.fix_up(p.leaf);
        } else {
            self.fix_up(p.leaf);
            if let Some(n) = self.next_pos(p) {
                debug_assert!(self.at(n).start >= end, "the VMA ending at {end:#x} overlaps the next");
                self.set_gap_start(n, end);
            }
        }
    }

    pub(crate) fn insert(&mut self, vma: Vma) {
        self.insert_vma(vma);
        self.refresh_finger();
    }

    /// Recomputes the finger's bounds from the structure after a change (which may have moved
    /// a leaf's first start, or split, linked or freed leaves).
    fn refresh_finger(&self) {
        let (f, _, _) = self.finger.get();
        let bounds = match self.nodes.get(f as usize) {
            Some(Node::Leaf(l)) if !l.starts.is_empty() => self.finger_on(f, l),
            _ => NO_FINGER,
        };
        self.finger.set(bounds);
    }

    /// A finger on leaf `i`: the keys `find_leaf` would end in it for, from its first start
    /// (0 for the first leaf) to the next leaf's (the top for the last).
    fn finger_on(&self, i: u32, l: &Leaf) -> (u32, u64, u64) {
        let lo = if l.prev == NIL { 0 } else { l.starts[0] };
        let hi = if l.next == NIL { u64::MAX } else { self.leaf(l.next).starts[0] };
        (i, lo, hi)
    }

    fn insert_vma(&mut self, vma: Vma) {
        let (start, end) = (vma.start, vma.end);
        count_writable(&vma, 1);
        self.len += 1;
        if self.root == NIL {
            let mut vmas = Vec::with_capacity(LEAF_CAP + 1);
            vmas.push(vma);
            let mut gap_start = Vec::with_capacity(LEAF_CAP + 1);
            gap_start.push(0);
            let mut starts = Vec::with_capacity(LEAF_CAP + 1);
            starts.push(start);
            let leaf = self.alloc(Node::Leaf(Leaf { vmas, starts, gap_start, parent: NIL, prev: NIL, next: NIL }));
            (self.root, self.first, self.last) = (leaf, leaf, leaf);
            return;
        }
        let at = self.lower_bound(start);
        debug_assert!(at.is_none_or(|p| self.at(p).start != start), "two VMAs at one start");
        let p = at.unwrap_or(Pos { leaf: self.last, idx: self.leaf(self.last).vmas.len() });
        // The gap below the new VMA starts at the end of the one before it: in this leaf, or
        // the last of the leaf before.
        let gap_start = match p.idx {
            0 => self.prev_pos(p).map_or(0, |q| self.at(q).end),
            i => self.leaf(p.leaf).vmas[i - 1].end,
        };
        let l = self.leaf_mut(p.leaf);
        l.vmas.insert(p.idx, vma);
        l.gap_start.insert(p.idx, gap_start);
        l.starts.insert(p.idx, start);
        self.changed_at(p, end);
        if self.leaf(p.leaf).vmas.len() > LEAF_CAP {
            self.split_leaf(p.leaf, p.idx);
        }
    }

    /// Splits an overfull leaf in two, the upper part in a new leaf after it: in halves, or,
    /// when the VMA just added is the last of the last leaf (mappings made in address order),
    /// leaving the leaf full and starting the new one with that VMA alone, so that leaves filled
    /// in order stay full. Every leaf holds room for exactly `LEAF_CAP + 1` VMAs.
    fn split_leaf(&mut self, i: u32, added_at: usize) {
        let is_last = self.leaf(i).next == NIL;
        let l = self.leaf_mut(i);
        let mid = if is_last && added_at + 1 == l.vmas.len() { l.vmas.len() - 1 } else { l.vmas.len() / 2 };
        let mut vmas = Vec::with_capacity(LEAF_CAP + 1);
        vmas.extend(l.vmas.drain(mid..));
        let mut gap_start = Vec::with_capacity(LEAF_CAP + 1);
        gap_start.extend(l.gap_start.drain(mid..));
        let mut starts = Vec::with_capacity(LEAF_CAP + 1);
        starts.extend(l.starts.drain(mid..));
        let (parent, next) = (l.parent, l.next);
        let r = self.alloc(Node::Leaf(Leaf { vmas, starts, gap_start, parent, prev: i, next }));
        self.leaf_mut(i).next = r;
        if next == NIL {
            self.last = r;
        } else {
            self.leaf_mut(next).prev = r;
        }
        self.add_sibling(i, r);
    }

    /// Puts the new node `r` right after `i` in `i`'s parent (a new root above both when `i`
    /// is the root), splitting the parent when it overflows.
    fn add_sibling(&mut self, i: u32, r: u32) {
        let (imin, imax) = self.stats(i);
        let (rmin, rmax) = self.stats(r);
        let p = self.parent_of(i);
        if p == NIL {
            let root = self.alloc(Node::Inner(Inner::new(vec![i, r], vec![imin, rmin], vec![imax, rmax])));
            self.set_parent(i, root);
            self.set_parent(r, root);
            self.root = root;
            return;
        }
        self.set_parent(r, p);
        let k = self.slot_in(p, i);
        let n = self.inner_mut(p);
        n.mins[k] = imin;
        n.max_gap[k] = imax;
        n.children.insert(k + 1, r);
        n.mins.insert(k + 1, rmin);
        n.max_gap.insert(k + 1, rmax);
        n.recount();
        if n.children.len() > CAP {
            let mid = n.children.len() / 2;
            let children = n.children.split_off(mid);
            let mins = n.mins.split_off(mid);
            let max_gap = n.max_gap.split_off(mid);
            n.recount();
            let moved = children.clone();
            let q = self.alloc(Node::Inner(Inner::new(children, mins, max_gap)));
            for c in moved {
                self.set_parent(c, q);
            }
            self.add_sibling(p, q);
        } else {
            self.fix_up(p);
        }
    }

    pub(crate) fn remove(&mut self, start: u64) -> Option<Vma> {
        let v = self.remove_vma(start);
        self.refresh_finger();
        v
    }

    fn remove_vma(&mut self, start: u64) -> Option<Vma> {
        let p = self.pos_of(start)?;
        let l = self.leaf_mut(p.leaf);
        let gap_start = l.gap_start.remove(p.idx);
        let v = l.vmas.remove(p.idx);
        l.starts.remove(p.idx);
        count_writable(&v, -1);
        self.len -= 1;
        // The VMA after it now has the removed one's gap and its own below it: in this leaf,
        // or the first of the next.
        let l = self.leaf_mut(p.leaf);
        if p.idx < l.vmas.len() {
            l.gap_start[p.idx] = gap_start;
            self.fix_up(p.leaf);
            return Some(v);
        }
        let next = l.next;
        if l.vmas.is_empty() {
            self.unlink_leaf(p.leaf);
        } else {
            self.fix_up(p.leaf);
        }
        if next != NIL {
            self.set_gap_start(Pos { leaf: next, idx: 0 }, gap_start);
        }
        Some(v)
    }

    /// Takes an empty leaf out of the list and out of its parent.
    fn unlink_leaf(&mut self, i: u32) {
        let (prev, next) = (self.leaf(i).prev, self.leaf(i).next);
        if prev == NIL {
            self.first = next;
        } else {
            self.leaf_mut(prev).next = next;
        }
        if next == NIL {
            self.last = prev;
        } else {
            self.leaf_mut(next).prev = prev;
        }
        self.remove_node(i);
    }

    /// Removes an empty node from its parent, and the parent if it empties; a root left with
    /// one child hands the root to it.
    fn remove_node(&mut self, i: u32) {
        let p = self.parent_of(i);
        self.release(i);
        if p == NIL {
            self.root = NIL;
            return;
        }
        let k = self.slot_in(p, i);
        let n = self.inner_mut(p);
        n.children.remove(k);
        n.mins.remove(k);
        n.max_gap.remove(k);
        n.recount();
        let (empty, only) = (n.children.is_empty(), (n.children.len() == 1).then(|| n.children[0]));
        if empty {
            self.remove_node(p);
            return;
        }
        if let Some(only) = only.filter(|_| self.root == p) {
            self.release(p);
            self.set_parent(only, NIL);
            self.root = only;
            return;
        }
        self.fix_up(p);
    }

    /// Moves the end of the VMA at `start` (its start stays), keeping the gaps current. The new
    /// range must not overlap the next VMA.
    pub(crate) fn set_end(&mut self, start: u64, end: u64) {
        let p = self.pos_of(start).expect("set_end of a VMA");
        debug_assert!(start < end);
        self.leaf_mut(p.leaf).vmas[p.idx].end = end;
        if let Some(n) = self.next_pos(p) {
            debug_assert!(self.at(n).start >= end, "VMA at {start:#x} overlaps the next");
            self.set_gap_start(n, end);
        }
    }

    /// Linux: `vma_iter_store()` of a split: `vma` ends at `addr`, and a copy of it from `addr`
    /// to where it ended (its `vm_pgoff` moved along) follows it, made in place. Within one leaf
    /// this changes no summary: the new gap between the halves is empty and the VMA after keeps
    /// its gap. Returns the upper half's handle; None, changing nothing, when `vma` names no
    /// VMA.
    pub(crate) fn split(&mut self, vma: impl Into<VmaHandle>, addr: u64) -> Option<VmaHandle> {
        let p = self.resolve(vma.into())?;
        let l = self.leaf_mut(p.leaf);
        debug_assert!(l.vmas[p.idx].start < addr && addr < l.vmas[p.idx].end, "a split inside the VMA");
        let copy = l.vmas[p.idx].clone();
        l.vmas.insert(p.idx + 1, copy);
        let upper = &mut l.vmas[p.idx + 1];
        upper.pgoff = upper.pgoff_at(addr);
        upper.start = addr;
        l.vmas[p.idx].end = addr;
        l.starts.insert(p.idx + 1, addr);
        l.gap_start.insert(p.idx + 1, addr);
        count_writable(&l.vmas[p.idx + 1], 1);
        self.len += 1;
        if self.leaf(p.leaf).vmas.len() > LEAF_CAP {
            self.split_leaf(p.leaf, p.idx + 1);
        }
        self.last_hit.set(NO_HIT);
        self.refresh_finger();
        // A leaf split moves the upper half's position: found by its start then.
        let upper = Pos { leaf: p.leaf, idx: p.idx + 1 };
        Some(match self.leaf(p.leaf).starts.get(upper.idx) {
            Some(&s) if s == addr => self.handle_at(upper),
            _ => VmaHandle::from(addr),
        })
    }

    /// Moves the VMA at `start` to `[new_start, new_end)` in place: the caller keeps it between
    /// its neighbours (no overlap, same order), as a merge or a stack expansion does. Returns
    /// false, changing nothing, when `start` names no VMA.
    pub(crate) fn set_range(&mut self, start: u64, new_start: u64, new_end: u64) -> bool {
        let Some(p) = self.pos_of(start) else { return false };
        debug_assert!(new_start < new_end);
        debug_assert!(self.prev_pos(p).is_none_or(|q| self.at(q).end <= new_start), "moved below the VMA before");
        let l = self.leaf_mut(p.leaf);
        l.vmas[p.idx].start = new_start;
        l.vmas[p.idx].end = new_end;
        l.starts[p.idx] = new_start;
        self.changed_at(p, new_end);
        self.last_hit.set(p);
        self.refresh_finger();
        true
    }

    /// Linux: `vma_iter_store()` of a merge into the VMA at `start`: it grows to the end of
    /// the `count` VMAs after it, which are taken out and dropped; returns how many there were.
    /// They must adjoin it (no gap between any of them), so within one leaf no summary changes.
    pub(crate) fn absorb_next(&mut self, start: u64, count: usize) -> usize {
        let Some(p) = self.pos_of(start) else { return 0 };
        let l = self.leaf(p.leaf);
        if p.idx + count >= l.vmas.len() {
            // They run into the next leaf: take them out one by one.
            let mut end = None;
            let mut gone = 0;
            while gone < count
                && let Some(next) = self.next_pos(p).map(|n| self.at(n).start)
            {
                end = self.remove(next).map(|v| v.end);
                gone += 1;
            }
            if let Some(end) = end {
                self.set_end(start, end);
            }
            return gone;
        }
        let l = self.leaf_mut(p.leaf);
        let mut end = l.vmas[p.idx].end;
        for v in l.vmas.drain(p.idx + 1..=p.idx + count) {
            debug_assert_eq!(v.start, end, "an absorbed VMA adjoins the one before");
            end = v.end;
            count_writable(&v, -1);
        }
        l.starts.drain(p.idx + 1..=p.idx + count);
        l.gap_start.drain(p.idx + 1..=p.idx + count);
        l.vmas[p.idx].end = end;
        self.len -= count;
        self.last_hit.set(p);
        self.refresh_finger();
        count
    }

    /// Checks the structure: the gaps, the inner nodes' summaries, the links, the count.
    pub(crate) fn check_gap_index(&self) -> Result<(), String> {
        let mut prev_end = 0;
        let mut count = 0;
        let mut leaf = self.first;
        let mut prev_leaf = NIL;
        while leaf != NIL {
            let l = self.leaf(leaf);
            let starts_ok = l.starts.len() == l.vmas.len() && l.vmas.iter().zip(&l.starts).all(|(v, s)| v.start == *s);
            if l.vmas.is_empty() || l.vmas.len() != l.gap_start.len() || !starts_ok || l.prev != prev_leaf {
                return Err(format!("leaf {leaf} is empty, uneven or badly linked"));
            }
            for (v, g) in l.vmas.iter().zip(&l.gap_start) {
                if *g != prev_end || v.start < prev_end {
                    return Err(format!(
                        "the VMA at {:#x} records its gap from {g:#x}, the VMA before ends at {prev_end:#x}",
                        v.start
                    ));
                }
                prev_end = v.end;
                count += 1;
            }
            prev_leaf = leaf;
            leaf = l.next;
        }
        if prev_leaf != self.last || count != self.len {
            return Err(format!(
                "{count} VMAs in the leaves, {} counted; last leaf {prev_leaf} vs {}",
                self.len, self.last
            ));
        }
        if self.root != NIL {
            if self.parent_of(self.root) != NIL {
                return Err("the root has a parent".into());
            }
            self.check_node(self.root)?;
        }
        Ok(())
    }

    fn check_node(&self, i: u32) -> Result<(), String> {
        let Node::Inner(n) = &self.nodes[i as usize] else { return Ok(()) };
        if n.children.is_empty() || n.children.len() > CAP {
            return Err(format!("inner node {i} has {} children", n.children.len()));
        }
        if Some(n.max) != n.max_gap.iter().copied().max() {
            return Err(format!("inner node {i} keeps {:#x} as its largest gap", n.max));
        }
        for (k, &c) in n.children.iter().enumerate() {
            if self.parent_of(c) != i {
                return Err(format!("node {c}'s parent is not {i}"));
            }
            if self.stats(c) != (n.mins[k], n.max_gap[k]) {
                return Err(format!(
                    "inner node {i} summarises child {c} as {:?}, it is {:?}",
                    (n.mins[k], n.max_gap[k]),
                    self.stats(c)
                ));
            }
            self.check_node(c)?;
        }
        Ok(())
    }

    /// The end of the VMA before `key` (0 when there is none).
    fn end_before(&self, key: u64) -> u64 {
        self.prev_of(key).map_or(0, |p| p.end)
    }

    fn last_end(&self) -> u64 {
        if self.last == NIL { 0 } else { self.leaf(self.last).vmas.last().map_or(0, |v| v.end) }
    }

    /// The rightmost VMA with start `< below` whose gap is at least `len`: (its start, the
    /// gap's start).
    fn rightmost_gap(&self, below: u64, len: u64) -> Option<(u64, u64)> {
        if self.root == NIL { None } else { self.rightmost_in(self.root, below, len) }
    }

    fn rightmost_in(&self, i: u32, below: u64, len: u64) -> Option<(u64, u64)> {
        match &self.nodes[i as usize] {
            Node::Leaf(l) => l
                .vmas
                .iter()
                .zip(&l.gap_start)
                .rev()
                .find(|(v, g)| v.start < below && v.start - *g >= len)
                .map(|(v, g)| (v.start, *g)),
            Node::Inner(n) => (0..n.children.len())
                .rev()
                .filter(|&k| n.mins[k] < below && n.max_gap[k] >= len)
                .find_map(|k| self.rightmost_in(n.children[k], below, len)),
            Node::Free => None,
        }
    }

    /// The leftmost VMA with start `> above` whose gap is at least `len`.
    fn leftmost_gap(&self, above: u64, len: u64) -> Option<(u64, u64)> {
        if self.root == NIL { None } else { self.leftmost_in(self.root, above, len) }
    }

    fn leftmost_in(&self, i: u32, above: u64, len: u64) -> Option<(u64, u64)> {
        match &self.nodes[i as usize] {
            Node::Leaf(l) => l
                .vmas
                .iter()
                .zip(&l.gap_start)
                .find(|(v, g)| v.start > above && v.start - *g >= len)
                .map(|(v, g)| (v.start, *g)),
            Node::Inner(n) => (0..n.children.len())
                // A child holds starts below the next child's lowest.
                .filter(|&k| n.max_gap[k] >= len && n.mins.get(k + 1).is_none_or(|&m| m > above))
                .find_map(|k| self.leftmost_in(n.children[k], above, len)),
            Node::Free => None,
        }
    }

    /// `mas_empty_area_rev()`: the end of the highest free run of at least `length` bytes inside
    /// `[low, high)`, clipped to `high`. O(log n).
    pub(crate) fn highest_gap_end(&self, low: u64, high: u64, length: u64) -> Option<u64> {
        if high <= low || high - low < length {
            return None;
        }
        // The gap that reaches `high` or above it, clipped.
        let (gs, ge) = match self.next_from(high) {
            Some(v) => (self.end_before(v.start), v.start),
            None => (self.last_end(), u64::MAX),
        };
        let (s, e) = (gs.max(low), ge.min(high));
        if e > s && e - s >= length {
            return Some(e);
        }
        // Gaps that end below `high`: the highest long enough, clipped at `low`.
        let (key, gs) = self.rightmost_gap(high, length)?;
        (key > low && key - gs.max(low) >= length).then_some(key)
    }

    /// `mas_empty_area()`: the start of the lowest free run of at least `length` bytes inside
    /// `[low, high)`. O(log n).
    pub(crate) fn lowest_gap_start(&self, low: u64, high: u64, length: u64) -> Option<u64> {
        if high <= low || high - low < length {
            return None;
        }
        let fits = |s: u64, e: u64| {
            let (s, e) = (s.max(low), e.min(high));
            (e > s && e - s >= length).then_some(s)
        };
        // The gap that reaches `low` or below it, clipped.
        let mut after = low;
        if let Some(v) = low.checked_add(1).and_then(|k| self.next_from(k)) {
            if self.end_before(v.start) <= low {
                if let Some(s) = fits(low, v.start) {
                    return Some(s);
                }
                after = v.start;
            }
        } else {
            return fits(self.last_end(), u64::MAX);
        }
        match self.leftmost_gap(after, length) {
            Some((key, gs)) if gs < high => fits(gs, key),
            Some(_) => None,
            None => fits(self.last_end(), u64::MAX),
        }
    }

    /// Linux: `find_vma()`: the first VMA with `end > addr`.
    pub fn find_vma(&self, addr: u64) -> Option<&Vma> {
        if let Some(p) = self.last_below(addr.saturating_add(1))
            && self.at(p).end > addr
        {
            return Some(self.at(p));
        }
        addr.checked_add(1).and_then(|k| self.lower_bound(k)).map(|p| self.at(p))
    }

    /// Linux: `vma_lookup()`: the VMA containing `addr`.
    pub fn vma_lookup(&self, addr: u64) -> Option<&Vma> {
        self.last_below(addr.saturating_add(1)).map(|p| self.at(p)).filter(|v| v.start <= addr && v.end > addr)
    }

    /// Linux: `find_vma_intersection()`: the first VMA intersecting `[start, end)`.
    pub fn find_intersection(&self, start: u64, end: u64) -> Option<&Vma> {
        self.find_vma(start).filter(|v| v.start < end)
    }

    /// The last VMA that starts below `addr` (`vma_prev` from a gap or VMA at `addr`).
    pub fn prev_of(&self, addr: u64) -> Option<&Vma> {
        self.last_below(addr).map(|p| self.at(p))
    }

    /// The first VMA that starts at or above `addr`.
    pub fn next_from(&self, addr: u64) -> Option<&Vma> {
        self.lower_bound(addr).map(|p| self.at(p))
    }

    /// Starts of the VMAs intersecting `[start, end)`, in order.
    pub fn starts_in(&self, start: u64, end: u64) -> Vec<u64> {
        self.iter_range(start, end).map(|v| v.start).collect()
    }

    /// The VMAs intersecting `[start, end)`.
    pub fn iter_range(&self, start: u64, end: u64) -> RangeIter<'_> {
        let pos = match self.last_below(start.saturating_add(1)) {
            Some(p) if self.at(p).end > start => Some(p),
            Some(p) => self.next_pos(p),
            None => (self.first != NIL).then_some(Pos { leaf: self.first, idx: 0 }),
        };
        RangeIter { tree: self, pos, end }
    }

    /// The free gaps `[gap_start, gap_end)` from the highest down, within `[0, limit)` (a linear
    /// walk, the reference the gap index is tested against).
    #[cfg(test)]
    pub(crate) fn gaps_descending(&self, limit: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        // The VMA straddling `limit`, if any, closes the first gap.
        let mut top = limit;
        if let Some(v) = self.vma_lookup(limit.saturating_sub(1)) {
            top = v.start;
        }
        let below: Vec<(u64, u64)> = self.iter().filter(|v| v.start < top).map(|v| (v.start, v.end)).collect();
        let mut iter = below.into_iter().rev();
        let mut done = false;
        std::iter::from_fn(move || {
            while !done {
                match iter.next() {
                    Some((s, e)) => {
                        let gap = (e, top);
                        top = s;
                        if gap.0 < gap.1 {
                            return Some(gap);
                        }
                    }
                    None => {
                        done = true;
                        if top > 0 {
                            return Some((0, top));
                        }
                    }
                }
            }
            None
        })
    }

    /// The free gaps from the lowest up, within `[limit, u64::MAX)` (linear; test reference).
    #[cfg(test)]
    pub(crate) fn gaps_ascending(&self, limit: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut bottom = limit;
        if let Some(v) = self.vma_lookup(limit) {
            bottom = v.end;
        }
        let above: Vec<(u64, u64)> = self.iter().filter(|v| v.start >= bottom).map(|v| (v.start, v.end)).collect();
        let mut iter = above.into_iter();
        let mut done = false;
        std::iter::from_fn(move || {
            while !done {
                match iter.next() {
                    Some((s, e)) => {
                        let gap = (bottom, s);
                        bottom = e;
                        if gap.0 < gap.1 {
                            return Some(gap);
                        }
                    }
                    None => {
                        done = true;
                        if bottom < u64::MAX {
                            return Some((bottom, u64::MAX));
                        }
                    }
                }
            }
            None
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::VmFlags;

    /// The linear-walk answers the gap index must agree with.
    fn highest_linear(t: &VmaTree, low: u64, high: u64, length: u64) -> Option<u64> {
        if high <= low || high - low < length {
            return None;
        }
        for (gs, ge) in t.gaps_descending(high) {
            let (s, e) = (gs.max(low), ge.min(high));
            if e <= low {
                return None;
            }
            if e > s && e - s >= length {
                return Some(e);
            }
        }
        None
    }

    fn lowest_linear(t: &VmaTree, low: u64, high: u64, length: u64) -> Option<u64> {
        if high <= low || high - low < length {
            return None;
        }
        for (gs, ge) in t.gaps_ascending(low) {
            let (s, e) = (gs.max(low), ge.min(high));
            if s >= high {
                return None;
            }
            if e > s && e - s >= length {
                return Some(s);
            }
        }
        None
    }

    /// Thousands of VMAs (three levels of nodes), inserted, removed and resized at random:
    /// after every change the structure checks itself, and every query agrees with a plain
    /// ordered map and a linear walk.
    #[test]
    fn the_tree_agrees_with_an_ordered_map() {
        use std::collections::BTreeMap;
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rnd = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut t = VmaTree::default();
        let mut reference: BTreeMap<u64, u64> = BTreeMap::new();
        const SLOTS: u64 = 6000;
        for step in 0..30_000 {
            let s = rnd(SLOTS) * 0x2000;
            match rnd(14) {
                0..=4 => {
                    let e = s + (1 + rnd(2)) * 0x1000;
                    if t.find_intersection(s, e).is_none() {
                        t.insert(Vma::new(s, e, 0, VmFlags::READ));
                        reference.insert(s, e);
                    }
                }
                5..=7 => {
                    if let Some(v) = t.find_vma(s).map(|v| v.start) {
                        assert_eq!(t.remove(v).map(|v| v.start), Some(v));
                        reference.remove(&v);
                    }
                }
                10 => {
                    // Split a VMA of two pages or more in two.
                    if let Some((v, e)) = t.find_vma(s).map(|v| (v.start, v.end))
                        && e - v >= 0x2000
                    {
                        let at = v + 0x1000 * (1 + rnd((e - v) / 0x1000 - 1));
                        assert!(t.split(v, at).is_some());
                        reference.insert(v, at);
                        reference.insert(at, e);
                    }
                }
                11 => {
                    // Merge a VMA with the adjoining ones after it.
                    if let Some((v, e)) = t.find_vma(s).map(|v| (v.start, v.end)) {
                        let mut end = e;
                        let mut count = 0;
                        while count < 3
                            && let Some(&n_end) = reference.get(&end)
                        {
                            reference.remove(&end);
                            end = n_end;
                            count += 1;
                        }
                        assert_eq!(t.absorb_next(v, count), count);
                        reference.insert(v, end);
                    }
                }
                12 => {
                    // Move a VMA's range within the gaps beside it.
                    if let Some((v, e)) = t.find_vma(s).map(|v| (v.start, v.end)) {
                        let low = t.prev_of(v).map_or(0, |p| p.end);
                        let high = t.next_from(v + 1).map_or(e + 0x4000, |n| n.start);
                        let ns = low.max(v.saturating_sub(0x1000 * rnd(3)));
                        let ne = (e + 0x1000 * rnd(3)).min(high).max(ns + 0x1000);
                        if ne <= high {
                            assert!(t.set_range(v, ns, ne));
                            reference.remove(&v);
                            reference.insert(ns, ne);
                        }
                    }
                }
                _ => {
                    if let Some(v) = t.find_vma(s).map(|v| v.start) {
                        let next = t.next_from(v + 1).map_or(u64::MAX, |n| n.start);
                        let e = (v + (1 + rnd(2)) * 0x1000).min(next);
                        t.set_end(v, e);
                        reference.insert(v, e);
                    }
                }
            }
            t.check_gap_index().unwrap_or_else(|e| panic!("step {step}: {e}"));
            assert_eq!(t.len(), reference.len());
            if step % 97 == 0 {
                let all: Vec<(u64, u64)> = t.iter().map(|v| (v.start, v.end)).collect();
                let want: Vec<(u64, u64)> = reference.iter().map(|(a, b)| (*a, *b)).collect();
                assert_eq!(all, want);
                let back: Vec<u64> = t.iter().rev().map(|v| v.start).collect();
                assert_eq!(back, reference.keys().rev().copied().collect::<Vec<_>>());
            }
            let q = rnd(SLOTS * 0x2000 + 0x4000);
            assert_eq!(t.get(q & !0xfff).map(|v| v.end), reference.get(&(q & !0xfff)).copied());
            let find =
                reference.range(..=q).next_back().filter(|(_, e)| **e > q).or_else(|| reference.range(q + 1..).next());
            assert_eq!(t.find_vma(q).map(|v| v.start), find.map(|(s, _)| *s));
            assert_eq!(t.prev_of(q).map(|v| v.start), reference.range(..q).next_back().map(|(s, _)| *s));
            assert_eq!(t.next_from(q).map(|v| v.start), reference.range(q..).next().map(|(s, _)| *s));
            let hi = q + rnd(0x40000);
            let range: Vec<u64> = t.iter_range(q, hi).map(|v| v.start).collect();
            let want: Vec<u64> = reference.iter().filter(|(s, e)| **e > q && **s < hi).map(|(s, _)| *s).collect();
            assert_eq!(range, want);
            if step % 13 == 0 {
                let len = (1 + rnd(4)) * 0x1000;
                assert_eq!(t.highest_gap_end(q, hi, len), highest_linear(&t, q, hi, len));
                assert_eq!(t.lowest_gap_start(q, hi, len), lowest_linear(&t, q, hi, len));
            }
        }
    }

    #[test]
    fn gap_index_agrees_with_a_linear_walk() {
        let mut x: u64 = 0x1234_5678;
        let mut rnd = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for _round in 0..200 {
            let mut t = VmaTree::default();
            for _ in 0..rnd(40) {
                let s = rnd(200) * 0x1000;
                let e = s + (1 + rnd(6)) * 0x1000;
                if t.find_intersection(s, e).is_none() {
                    t.insert(Vma::new(s, e, 0, VmFlags::READ));
                }
                if rnd(4) == 0
                    && let Some(v) = t.find_vma(rnd(200) * 0x1000).map(|v| v.start)
                {
                    t.remove(v);
                }
            }
            for _ in 0..50 {
                let low = rnd(220) * 0x1000;
                let high = low + rnd(220) * 0x1000;
                let len = (1 + rnd(12)) * 0x1000;
                assert_eq!(
                    t.highest_gap_end(low, high, len),
                    highest_linear(&t, low, high, len),
                    "{low:#x} {high:#x} {len:#x} {t:?}"
                );
                assert_eq!(
                    t.lowest_gap_start(low, high, len),
                    lowest_linear(&t, low, high, len),
                    "{low:#x} {high:#x} {len:#x} {t:?}"
                );
            }
        }
    }
}
