//! `GapIndex`: the free gaps between VMAs, augmented so that the highest (or lowest) gap of at
//! least a given length is found in O(log n), as Linux's maple tree does with its gap tracking
//! (`mas_empty_area_rev`, `mas_empty_area`).
//!
//! A treap keyed by VMA start; each node holds the gap below its VMA (`gap_start..key`, where
//! `gap_start` is the end of the VMA before it, or 0) and the largest such gap in its subtree.

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Node {
    key: u64,
    gap_start: u64,
    max_gap: u64,
    prio: u32,
    left: u32,
    right: u32,
}

impl Node {
    fn gap(&self) -> u64 {
        self.key - self.gap_start
    }
}

/// The gaps below every VMA.
///
/// # Invariants
/// * In-order keys are the VMA starts, ascending; each node's `gap_start` is the previous
///   VMA's end (0 for the first), so `gap_start <= key`.
/// * `max_gap` of a node is the largest `gap()` in its subtree; priorities form a max-heap.
#[derive(Debug, Clone)]
pub(crate) struct GapIndex {
    nodes: Vec<Node>,
    free: Vec<u32>,
    root: u32,
    seed: u32,
}

impl Default for GapIndex {
    fn default() -> GapIndex {
        GapIndex { nodes: Vec::new(), free: Vec::new(), root: NIL, seed: 0x9e37_79b9 }
    }
}

impl GapIndex {
    fn n(&self, i: u32) -> &Node {
        &self.nodes[i as usize]
    }
    fn nm(&mut self, i: u32) -> &mut Node {
        &mut self.nodes[i as usize]
    }
    fn max_of(&self, i: u32) -> u64 {
        if i == NIL { 0 } else { self.n(i).max_gap }
    }
    fn update(&mut self, i: u32) {
        let (l, r) = (self.n(i).left, self.n(i).right);
        let m = self.n(i).gap().max(self.max_of(l)).max(self.max_of(r));
        self.nm(i).max_gap = m;
    }
    fn next_prio(&mut self) -> u32 {
        // xorshift32
        let mut x = self.seed;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.seed = x;
        x
    }

    /// Splits the subtree at `t` into keys `< key` and keys `>= key`.
    fn split(&mut self, t: u32, key: u64) -> (u32, u32) {
        if t == NIL {
            return (NIL, NIL);
        }
        if self.n(t).key < key {
            let (a, b) = self.split(self.n(t).right, key);
            self.nm(t).right = a;
            self.update(t);
            (t, b)
        } else {
            let (a, b) = self.split(self.n(t).left, key);
            self.nm(t).left = b;
            self.update(t);
            (a, t)
        }
    }

    /// Joins two subtrees whose keys are all below / above each other.
    fn join(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.n(a).prio > self.n(b).prio {
            let r = self.join(self.n(a).right, b);
            self.nm(a).right = r;
            self.update(a);
            a
        } else {
            let l = self.join(a, self.n(b).left);
            self.nm(b).left = l;
            self.update(b);
            b
        }
    }

    /// Adds the VMA starting at `key` with the gap below it starting at `gap_start`.
    pub fn insert(&mut self, key: u64, gap_start: u64) {
        let prio = self.next_prio();
        let node = Node { key, gap_start, max_gap: key - gap_start, prio, left: NIL, right: NIL };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        let (a, b) = self.split(self.root, key);
        let a = self.join(a, i);
        self.root = self.join(a, b);
    }

    /// Removes the VMA starting at `key`.
    pub fn remove(&mut self, key: u64) {
        let (a, b) = self.split(self.root, key);
        let (mid, c) = self.split(b, key + 1);
        if mid != NIL {
            self.free.push(mid);
        }
        self.root = self.join(a, c);
    }

    /// Sets the start of the gap below the VMA at `key`.
    pub fn set_gap_start(&mut self, key: u64, gap_start: u64) {
        self.set_gap_in(self.root, key, gap_start);
    }

    fn set_gap_in(&mut self, t: u32, key: u64, gap_start: u64) {
        if t == NIL {
            return;
        }
        let k = self.n(t).key;
        if key < k {
            self.set_gap_in(self.n(t).left, key, gap_start);
        } else if key > k {
            self.set_gap_in(self.n(t).right, key, gap_start);
        } else {
            self.nm(t).gap_start = gap_start;
        }
        self.update(t);
    }

    /// The rightmost VMA with start `< below` whose gap is at least `len`: (its start, the
    /// gap's start).
    pub fn rightmost_gap(&self, below: u64, len: u64) -> Option<(u64, u64)> {
        self.rightmost_in(self.root, below, len)
    }

    fn rightmost_in(&self, t: u32, below: u64, len: u64) -> Option<(u64, u64)> {
        if t == NIL || self.n(t).max_gap < len {
            return None;
        }
        let n = *self.n(t);
        if n.key < below {
            if let Some(r) = self.rightmost_in(n.right, below, len) {
                return Some(r);
            }
            if n.gap() >= len {
                return Some((n.key, n.gap_start));
            }
        }
        self.rightmost_in(n.left, below, len)
    }

    /// The leftmost VMA with start `> above` whose gap is at least `len`.
    pub fn leftmost_gap(&self, above: u64, len: u64) -> Option<(u64, u64)> {
        self.leftmost_in(self.root, above, len)
    }

    fn leftmost_in(&self, t: u32, above: u64, len: u64) -> Option<(u64, u64)> {
        if t == NIL || self.n(t).max_gap < len {
            return None;
        }
        let n = *self.n(t);
        if n.key > above {
            if let Some(r) = self.leftmost_in(n.left, above, len) {
                return Some(r);
            }
            if n.gap() >= len {
                return Some((n.key, n.gap_start));
            }
        }
        self.leftmost_in(n.right, above, len)
    }

    /// Every (VMA start, gap start) in key order (for invariant checks).
    pub fn entries(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut stack = Vec::new();
        let mut t = self.root;
        while t != NIL || !stack.is_empty() {
            while t != NIL {
                stack.push(t);
                t = self.n(t).left;
            }
            if let Some(i) = stack.pop() {
                out.push((self.n(i).key, self.n(i).gap_start));
                t = self.n(i).right;
            }
        }
        out
    }
}
