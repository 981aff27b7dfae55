//! `VmaTree`: the VMAs of an address space, ordered and non-overlapping.

use crate::gap_index::GapIndex;
use crate::vma::Vma;
use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Included, Unbounded};

/// Non-overlapping VMAs ordered by start (Linux keeps them in a maple tree).
///
/// # Invariants
/// * For consecutive VMAs `a, b`: `a.end <= b.start`.
/// * Every VMA has `start < end`, both page aligned, and is stored under its start.
/// * `gaps` holds, for every VMA, the gap between it and the VMA before it.
/// * Every VMA in the tree that maps a file shared and writable counts once in that inode's
///   `writable_mappings` (Linux: `vma_link_file` / `mapping_allow_writable`).
#[derive(Default, Debug)]
pub struct VmaTree {
    by_start: BTreeMap<u64, Vma>,
    gaps: GapIndex,
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
        for v in self.by_start.values() {
            count_writable(v, 1);
        }
        VmaTree { by_start: self.by_start.clone(), gaps: self.gaps.clone() }
    }
}

impl Drop for VmaTree {
    fn drop(&mut self) {
        for v in self.by_start.values() {
            count_writable(v, -1);
        }
    }
}

impl VmaTree {
    /// The number of VMAs.
    pub fn len(&self) -> usize {
        self.by_start.len()
    }
    /// Whether there are no VMAs.
    pub fn is_empty(&self) -> bool {
        self.by_start.is_empty()
    }
    /// The VMAs in address order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Vma> {
        self.by_start.values()
    }
    pub(crate) fn get(&self, start: u64) -> Option<&Vma> {
        self.by_start.get(&start)
    }
    /// The VMA at `start`, to change anything but its range (which `insert`/`remove` own).
    pub(crate) fn get_mut(&mut self, start: u64) -> Option<&mut Vma> {
        self.by_start.get_mut(&start)
    }
    pub(crate) fn insert(&mut self, vma: Vma) {
        let (start, end) = (vma.start, vma.end);
        let gap_start = self.end_before(start);
        count_writable(&vma, 1);
        let old = self.by_start.insert(start, vma);
        debug_assert!(old.is_none(), "two VMAs at one start");
        self.gaps.insert(start, gap_start);
        self.set_next_gap_start(start, end);
    }
    pub(crate) fn remove(&mut self, start: u64) -> Option<Vma> {
        let v = self.by_start.remove(&start)?;
        count_writable(&v, -1);
        self.gaps.remove(start);
        if let Some(n) = self.next_from(start).map(|n| n.start) {
            let gap_start = self.end_before(start);
            self.gaps.set_gap_start(n, gap_start);
        }
        Some(v)
    }

    /// Moves the end of the VMA at `start` (its start stays), keeping the gap index current.
    /// The new range must not overlap the next VMA.
    pub(crate) fn set_end(&mut self, start: u64, end: u64) {
        let v = self.by_start.get_mut(&start).expect("set_end of a VMA");
        debug_assert!(start < end);
        v.end = end;
        self.set_next_gap_start(start, end);
    }

    /// The gap below the VMA after the one at `start` now begins at `end`.
    fn set_next_gap_start(&mut self, start: u64, end: u64) {
        use std::ops::Bound::{Excluded, Unbounded};
        if let Some(&n) = self.by_start.range((Excluded(start), Unbounded)).next().map(|(k, _)| k) {
            debug_assert!(n >= end, "VMA at {start:#x} overlaps the next at {n:#x}");
            self.gaps.set_gap_start(n, end);
        }
    }

    /// Checks that the gap index holds exactly the VMAs, each with the end of the one before.
    pub(crate) fn check_gap_index(&self) -> Result<(), String> {
        let mut prev_end = 0;
        let expected: Vec<(u64, u64)> = self
            .by_start
            .values()
            .map(|v| {
                let e = (v.start, prev_end);
                prev_end = v.end;
                e
            })
            .collect();
        let got = self.gaps.entries();
        if got != expected {
            return Err(format!("gap index {got:x?} but the VMAs say {expected:x?}"));
        }
        Ok(())
    }

    /// The end of the VMA before `key` (0 when there is none).
    fn end_before(&self, key: u64) -> u64 {
        self.prev_of(key).map_or(0, |p| p.end)
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
            None => (self.by_start.values().next_back().map_or(0, |v| v.end), u64::MAX),
        };
        let (s, e) = (gs.max(low), ge.min(high));
        if e > s && e - s >= length {
            return Some(e);
        }
        // Gaps that end below `high`: the highest long enough, clipped at `low`.
        let (key, gs) = self.gaps.rightmost_gap(high, length)?;
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
            let last_end = self.by_start.values().next_back().map_or(0, |v| v.end);
            return fits(last_end, u64::MAX);
        }
        match self.gaps.leftmost_gap(after, length) {
            Some((key, gs)) if gs < high => fits(gs, key),
            Some(_) => None,
            None => {
                let last_end = self.by_start.values().next_back().map_or(0, |v| v.end);
                fits(last_end, u64::MAX)
            }
        }
    }

    /// Linux: `find_vma()`: the first VMA with `end > addr`.
    pub fn find_vma(&self, addr: u64) -> Option<&Vma> {
        if let Some((_, v)) = self.by_start.range(..=addr).next_back()
            && v.end > addr
        {
            return Some(v);
        }
        self.by_start.range((Excluded(addr), Unbounded)).next().map(|(_, v)| v)
    }

    /// Linux: `vma_lookup()`: the VMA containing `addr`.
    pub fn vma_lookup(&self, addr: u64) -> Option<&Vma> {
        self.by_start.range(..=addr).next_back().map(|(_, v)| v).filter(|v| v.end > addr)
    }

    /// Linux: `find_vma_intersection()`: the first VMA intersecting `[start, end)`.
    pub fn find_intersection(&self, start: u64, end: u64) -> Option<&Vma> {
        self.find_vma(start).filter(|v| v.start < end)
    }

    /// The last VMA that starts below `addr` (`vma_prev` from a gap or VMA at `addr`).
    pub fn prev_of(&self, addr: u64) -> Option<&Vma> {
        self.by_start.range(..addr).next_back().map(|(_, v)| v)
    }

    /// The first VMA that starts at or above `addr`.
    pub fn next_from(&self, addr: u64) -> Option<&Vma> {
        self.by_start.range(addr..).next().map(|(_, v)| v)
    }

    /// Starts of the VMAs intersecting `[start, end)`, in order.
    pub fn starts_in(&self, start: u64, end: u64) -> Vec<u64> {
        let first = self.find_vma(start).map(|v| v.start);
        match first {
            Some(f) if f < end => self.by_start.range((Included(f), Excluded(end))).map(|(s, _)| *s).collect(),
            _ => Vec::new(),
        }
    }

    /// The VMAs intersecting `[start, end)`.
    pub fn iter_range(&self, start: u64, end: u64) -> impl Iterator<Item = &Vma> {
        let first = self.find_vma(start).map_or(u64::MAX, |v| v.start);
        let lo = first.min(end);
        self.by_start.range(lo..end).map(|(_, v)| v)
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
        let mut iter = self.by_start.range(..top).rev().map(|(_, v)| (v.start, v.end));
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
        let mut iter = self.by_start.range(bottom..).map(|(_, v)| (v.start, v.end));
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
