//! `VmaTree`: the VMAs of an address space, ordered and non-overlapping.

use crate::vma::Vma;
use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Included, Unbounded};

/// Non-overlapping VMAs ordered by start (Linux keeps them in a maple tree).
///
/// # Invariants
/// * For consecutive VMAs `a, b`: `a.end <= b.start`.
/// * Every VMA has `start < end`, both page aligned, and is stored under its start.
#[derive(Clone, Default, Debug)]
pub struct VmaTree {
    by_start: BTreeMap<u64, Vma>,
}

impl VmaTree {
    pub fn len(&self) -> usize {
        self.by_start.len()
    }
    pub fn is_empty(&self) -> bool {
        self.by_start.is_empty()
    }
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Vma> {
        self.by_start.values()
    }
    pub(crate) fn get(&self, start: u64) -> Option<&Vma> {
        self.by_start.get(&start)
    }
    pub(crate) fn get_mut(&mut self, start: u64) -> Option<&mut Vma> {
        self.by_start.get_mut(&start)
    }
    pub(crate) fn insert(&mut self, vma: Vma) {
        let old = self.by_start.insert(vma.start, vma);
        debug_assert!(old.is_none(), "two VMAs at one start");
    }
    pub(crate) fn remove(&mut self, start: u64) -> Option<Vma> {
        self.by_start.remove(&start)
    }

    /// Linux: `find_vma()`: the first VMA with `end > addr`.
    pub fn find_vma(&self, addr: u64) -> Option<&Vma> {
        if let Some((_, v)) = self.by_start.range(..=addr).next_back()
            && v.end > addr
        {
            return Some(v);
        }
        self.by_start
            .range((Excluded(addr), Unbounded))
            .next()
            .map(|(_, v)| v)
    }

    /// Linux: `vma_lookup()`: the VMA containing `addr`.
    pub fn vma_lookup(&self, addr: u64) -> Option<&Vma> {
        self.by_start
            .range(..=addr)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| v.end > addr)
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
            Some(f) if f < end => self
                .by_start
                .range((Included(f), Excluded(end)))
                .map(|(s, _)| *s)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The VMAs intersecting `[start, end)`.
    pub fn iter_range(&self, start: u64, end: u64) -> impl Iterator<Item = &Vma> {
        let first = self.find_vma(start).map_or(u64::MAX, |v| v.start);
        let lo = first.min(end);
        self.by_start.range(lo..end).map(|(_, v)| v)
    }

    /// The free gaps `[gap_start, gap_end)` from the highest down, within `[0, limit)`.
    pub(crate) fn gaps_descending(&self, limit: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        // The VMA straddling `limit`, if any, closes the first gap.
        let mut top = limit;
        if let Some(v) = self.vma_lookup(limit.saturating_sub(1)) {
            top = v.start;
        }
        let mut iter = self
            .by_start
            .range(..top)
            .rev()
            .map(|(_, v)| (v.start, v.end));
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

    /// The free gaps from the lowest up, within `[limit, u64::MAX)`.
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
