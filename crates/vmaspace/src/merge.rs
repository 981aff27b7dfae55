//! Merging and splitting VMAs (Linux: mm/vma.c).
//!
//! Merging happens only where Linux attempts it: when a new range is mapped
//! ([`AddressSpace::vma_merge_new_range`]), when part of a VMA changes attributes
//! ([`AddressSpace::vma_modify`]), and when mremap grows or moves a VMA. Two compatible
//! neighbours may otherwise stay apart, as in Linux.

use crate::AddressSpace;
use crate::addr::{PAGE_SHIFT, pages};
use crate::driver::OpenFile;
use crate::errno::Errno;
use crate::flags::VmFlags;
use crate::tree::VmaHandle;
use crate::vma::{AnonVmaRef, Vma};
use std::sync::Arc;

/// The proposal a merge examines (`struct vma_merge_struct`).
#[derive(Debug, Clone)]
pub(crate) struct Vmg {
    pub start: u64,
    pub end: u64,
    pub pgoff: u64,
    pub flags: VmFlags,
    pub file: Option<Arc<OpenFile>>,
    pub anon_vma: Option<AnonVmaRef>,
    pub anon_name: Option<Arc<str>>,
    /// The VMA whose range changes (existing-range merges).
    pub middle: Option<VmaHandle>,
    /// Whether `middle` is a fork child (`vma_had_uncowed_parents(middle)`).
    pub middle_forked: bool,
    /// Only extend `prev`; never merge with `next` (brk).
    pub just_expand: bool,
}

impl Vmg {
    /// A proposal for a new range (`VMG_STATE`).
    pub fn new_range(start: u64, end: u64, pgoff: u64, flags: VmFlags, file: Option<Arc<OpenFile>>) -> Vmg {
        Vmg {
            start,
            end,
            pgoff,
            flags,
            file,
            anon_vma: None,
            anon_name: None,
            middle: None,
            middle_forked: false,
            just_expand: false,
        }
    }

    /// A proposal to change `[start, end)` of `vma` (`VMG_VMA_STATE`).
    pub fn modify(vma: &Vma, start: u64, end: u64, flags: VmFlags) -> Vmg {
        Vmg {
            start,
            end,
            pgoff: vma.pgoff_at(start),
            flags,
            file: vma.file.clone(),
            anon_vma: vma.anon_vma,
            anon_name: vma.anon_name().cloned(),
            middle: Some(VmaHandle::from(vma.start)),
            middle_forked: vma.anon_vma.is_some_and(|a| a.forked()),
            just_expand: false,
        }
    }

    /// Linux: `is_mergeable_vma()`, saying which of its conditions fails.
    fn is_mergeable_vma(&self, other: &Vma) -> Result<(), MergeBlocker> {
        let differ = VmFlags((other.flags.0 ^ self.flags.0) & !VmFlags::IGNORE_MERGE.0);
        if differ != VmFlags::NONE {
            return Err(MergeBlocker::FlagsDiffer(differ));
        }
        if !other.same_file(self.file.as_ref()) {
            return Err(MergeBlocker::FileDiffers);
        }
        if other.anon_name() != self.anon_name.as_ref() {
            return Err(MergeBlocker::AnonNameDiffers);
        }
        Ok(())
    }

    /// Linux: `is_mergeable_anon_vma()`, saying which of its conditions fails.
    fn is_mergeable_anon_vma(&self, tgt: &Vma) -> Result<(), MergeBlocker> {
        let ok = match (tgt.anon_vma, self.anon_vma) {
            // Case 1: src's anon_vma will be duplicated into tgt.
            (None, Some(_)) => !self.middle_forked,
            // Case 2: tgt's anon_vma will be used.
            (Some(t), None) => !t.forked(),
            // Case 3: both or neither.
            (t, s) => t.map(|a| a.id()) == s.map(|a| a.id()),
        };
        if ok { Ok(()) } else { Err(MergeBlocker::AnonVmaDiffers { target: tgt.anon_vma, range: self.anon_vma }) }
    }

    /// Linux: `can_vma_merge_before()`: can the range go in front of `next`?
    fn can_merge_before(&self, next: &Vma) -> bool {
        self.is_mergeable_vma(next).is_ok()
            && self.is_mergeable_anon_vma(next).is_ok()
            && next.pgoff == self.pgoff.wrapping_add(pages(self.start, self.end))
    }

    /// Linux: `can_vma_merge_after()`: can the range follow `prev`?
    fn can_merge_after(&self, prev: &Vma) -> bool {
        self.why_not_after(prev).is_ok()
    }

    /// `can_vma_merge_after()`'s conditions in their order, the first that fails.
    pub(crate) fn why_not_after(&self, prev: &Vma) -> Result<(), MergeBlocker> {
        self.is_mergeable_vma(prev)?;
        self.is_mergeable_anon_vma(prev)?;
        let expected = prev.pgoff.wrapping_add(prev.pages());
        if expected != self.pgoff {
            return Err(MergeBlocker::PgoffNotContiguous { expected, found: self.pgoff });
        }
        Ok(())
    }

    fn can_merge_left(&self, prev: Option<&Vma>) -> bool {
        prev.is_some_and(|p| p.end == self.start && self.can_merge_after(p))
    }

    fn can_merge_right(&self, prev: Option<&Vma>, next: Option<&Vma>, merge_left: bool) -> bool {
        let Some(next) = next else { return false };
        if self.end != next.start || !self.can_merge_before(next) {
            return false;
        }
        if !merge_left {
            return true;
        }
        let (pa, na) = (prev.and_then(|p| p.anon_vma), next.anon_vma);
        pa.is_none() || na.is_none() || pa.map(|a| a.id()) == na.map(|a| a.id())
    }
}

/// The first condition of Linux's merge code that keeps two adjacent VMAs apart (see
/// [`AddressSpace::why_not_merged`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeBlocker {
    /// The upper VMA has `VM_SPECIAL` flags (`VM_IO`, `VM_DONTEXPAND`, `VM_PFNMAP`,
    /// `VM_MIXEDMAP`): `vma_merge_existing_range()` and `vma_merge_new_range()` never merge
    /// such a range.
    Special(VmFlags),
    /// `is_mergeable_vma()`: these `vm_flags` differ (beyond `VM_IGNORE_MERGE`).
    FlagsDiffer(VmFlags),
    /// `is_mergeable_vma()`: another `vm_file` (another open file description, even of the
    /// same inode).
    FileDiffers,
    /// `is_mergeable_vma()`: another `anon_vma_name`.
    AnonNameDiffers,
    /// `is_mergeable_anon_vma()`: different anon_vmas, or one of a fork child that still
    /// shares its parent's (`vma_had_uncowed_parents()`).
    AnonVmaDiffers {
        /// The lower VMA's (the merge target's).
        target: Option<AnonVmaRef>,
        /// The upper VMA's (the range's).
        range: Option<AnonVmaRef>,
    },
    /// `can_vma_merge_after()`: the upper VMA's `vm_pgoff` does not continue the lower one's.
    PgoffNotContiguous {
        /// The lower VMA's `vm_pgoff` plus its pages.
        expected: u64,
        /// The upper VMA's `vm_pgoff`.
        found: u64,
    },
    /// `can_merge_remove_vma()`: merging would remove the upper VMA, whose `vm_ops->close`
    /// forbids that.
    CloseOp,
    /// Nothing keeps them apart: Linux merges only when a call maps, changes or moves a range
    /// beside a VMA, and no call since they met did.
    NotAttempted,
}

/// What a merge of existing VMAs needs to know of one taking part, copied out so that the tree
/// can change under it.
#[derive(Debug, Clone, Copy)]
struct MergePart {
    start: u64,
    end: u64,
    flags: VmFlags,
    anon_vma: Option<AnonVmaRef>,
    pages_exact: bool,
}

impl MergePart {
    fn of(v: &Vma) -> MergePart {
        MergePart { start: v.start, end: v.end, flags: v.flags, anon_vma: v.anon_vma, pages_exact: v.pages_exact }
    }
}

/// Linux: `dup_anon_vma()`: `dst` takes `src`'s anon_vma (and chain) when it has none.
fn dup_anon_vma(dst: &mut Vma, src: Option<AnonVmaRef>) {
    if dst.anon_vma.is_none() && src.is_some() {
        dst.anon_vma = src;
    }
}

impl AddressSpace {
    /// Linux: `vma_merge_new_range()`: merges a new range `[start, end)` that lies in a gap with
    /// the VMAs on either side. Returns the start of the VMA that now covers the range.
    pub(crate) fn vma_merge_new_range(&mut self, vmg: &Vmg) -> Option<u64> {
        if vmg.flags.intersects(VmFlags::SPECIAL) {
            return None;
        }
        let prev = self.tree.prev_of(vmg.start);
        let next = self.tree.next_from(vmg.end);
        if prev.is_none() && next.is_none() {
            return None;
        }
        let left = vmg.can_merge_left(prev);
        let right = !vmg.just_expand && vmg.can_merge_right(prev, next, left);
        let (mut start, mut end, mut pgoff) = (vmg.start, vmg.end, vmg.pgoff);
        let mut target = None;
        if right {
            let n = next?;
            end = n.end;
            target = Some(n.start);
        }
        if left {
            let p = prev?;
            start = p.start;
            pgoff = p.pgoff;
            target = Some(p.start);
            if right && !next.is_some_and(|n| n.can_merge_remove()) {
                end = vmg.end;
            }
        }
        let target = target?;
        let next = next.map(|n| (n.start, n.end));
        let sticky = vmg.flags & VmFlags::STICKY;
        Some(self.vma_expand(target, start, end, pgoff, next, sticky))
    }

    /// Why the adjacent VMAs starting at `prev` and `next` (`prev`'s end is `next`'s start) are
    /// two VMAs: the first condition that fails when Linux's merge code proposes `next`'s
    /// whole range, with its own attributes, for a merge into `prev` (as an mprotect of `next`
    /// to what it has would, `vma_merge_existing_range()`), in the code's own order.
    pub fn why_not_merged(&self, prev: u64, next: u64) -> Option<MergeBlocker> {
        let (p, n) = (self.tree.get(prev)?, self.tree.get(next)?);
        if p.end != n.start {
            return None;
        }
        if n.flags.intersects(VmFlags::SPECIAL) {
            return Some(MergeBlocker::Special(n.flags & VmFlags::SPECIAL));
        }
        let vmg = Vmg::modify(n, n.start, n.end, n.flags);
        if let Err(why) = vmg.why_not_after(p) {
            return Some(why);
        }
        if !n.can_merge_remove() {
            return Some(MergeBlocker::CloseOp);
        }
        Some(MergeBlocker::NotAttempted)
    }

    /// Linux: `vma_expand()`: grows `target` to `[start, end)`, removing `next` (given by its
    /// start and end) when the new range swallows it. Returns the target's new start.
    ///
    /// The target keeps the sticky flags of every VMA taking part and `sticky` (the proposal's).
    pub(crate) fn vma_expand(
        &mut self,
        target: u64,
        start: u64,
        end: u64,
        pgoff: u64,
        next: Option<(u64, u64)>,
        sticky: VmFlags,
    ) -> u64 {
        let removed = next
            .filter(|&(n_start, n_end)| n_start != target && n_end == end)
            .map(|(n_start, _)| self.tree.remove(n_start).expect("merged next exists"));
        let update = |t: &mut Vma| {
            t.flags |= sticky;
            if let Some(r) = &removed {
                dup_anon_vma(t, r.anon_vma);
                t.flags |= r.flags & VmFlags::STICKY;
                t.pages_exact &= r.pages_exact;
            }
            t.pgoff = pgoff;
        };
        if start == target {
            // The target keeps its start: grow it in place.
            update(self.tree.get_mut(target).expect("merge target exists"));
            self.tree.set_end(target, end);
        } else {
            update(self.tree.get_mut(target).expect("merge target exists"));
            self.tree.set_range(target, start, end);
        }
        start
    }

    /// Linux: `vma_merge_existing_range()`: `[vmg.start, vmg.end)` of `vmg.middle` is to take
    /// `vmg.flags`; merges it into the neighbours where possible. Returns the VMA that now
    /// covers the range (still carrying its old flags), or None when nothing merged.
    pub(crate) fn vma_merge_existing_range(&mut self, vmg: &Vmg) -> Option<VmaHandle> {
        let (start, end) = (vmg.start, vmg.end);
        let h = vmg.middle?;
        let m = self.tree.vma(h)?;
        let left_side = start == m.start;
        let right_side = end == m.end;
        if vmg.flags.intersects(VmFlags::SPECIAL) || (!left_side && !right_side) {
            return None;
        }
        let prev_vma = if left_side { self.tree.before(h) } else { None };
        let merge_left = left_side && vmg.can_merge_left(prev_vma);
        let next_vma = if right_side { self.tree.after(h).filter(|n| n.start == m.end) } else { None };
        let mut merge_right = right_side && vmg.can_merge_right(prev_vma, next_vma, merge_left);
        if !merge_left && !merge_right {
            return None;
        }
        let remove_middle = left_side && right_side;
        if remove_middle && !m.can_merge_remove() {
            return None;
        }
        if merge_left && merge_right && !next_vma.is_some_and(|n| n.can_merge_remove()) {
            merge_right = false;
        }
        // What the merge needs of the three, so that the tree can change under it.
        let (middle, prev, next) = (MergePart::of(m), prev_vma.map(MergePart::of), next_vma.map(MergePart::of));
        // Sticky flags of every VMA taking part end up on the target.
        let sticky = |other: &MergePart| (vmg.flags | middle.flags | other.flags) & VmFlags::STICKY;
        if merge_left && merge_right {
            let (p, n) = (prev?, next?);
            self.tree.absorb_next(p.start, 2);
            let t = self.tree.get_mut(p.start)?;
            dup_anon_vma(t, if n.anon_vma.is_some() { n.anon_vma } else { middle.anon_vma });
            t.flags |= sticky(&p) | sticky(&n);
            t.pages_exact &= middle.pages_exact && n.pages_exact;
            return Some(p.start.into());
        }
        if merge_left {
            let p = prev?;
            if remove_middle {
                self.tree.absorb_next(p.start, 1);
            } else {
                // The middle gives up its lower part first, so that the two never overlap.
                let m = self.tree.get_mut(middle.start)?;
                m.pgoff = m.pgoff_at(end);
                self.tree.set_range(middle.start, end, middle.end);
                self.tree.set_end(p.start, end);
            }
            let t = self.tree.get_mut(p.start)?;
            dup_anon_vma(t, middle.anon_vma);
            t.flags |= sticky(&p);
            t.pages_exact &= middle.pages_exact;
            return Some(p.start.into());
        }
        // Merge right: next grows down over the range (a new start, so it is re-keyed).
        let n = next?;
        let t = self.tree.get_mut(n.start)?;
        dup_anon_vma(t, middle.anon_vma);
        t.flags |= sticky(&n);
        t.pages_exact &= middle.pages_exact;
        t.pgoff = t.pgoff.wrapping_sub((n.start - start) >> PAGE_SHIFT);
        if remove_middle {
            self.tree.remove(middle.start);
        } else {
            self.tree.set_end(middle.start, start);
        }
        self.tree.set_range(n.start, start, n.end);
        Some(start.into())
    }

    /// Linux: `vma_merge_extend()`: grows the VMA at `vma_start` by `delta` bytes into the gap
    /// above it, merging with the next VMA when the new end meets it. Returns the expanded VMA.
    pub(crate) fn vma_merge_extend(&mut self, vma_start: u64, delta: u64) -> Option<u64> {
        let vma = self.tree.get(vma_start)?.clone();
        let mut vmg = Vmg::modify(&vma, vma.end, vma.end + delta, vma.flags);
        vmg.middle = None;
        vmg.middle_forked = false;
        self.vma_merge_new_range(&vmg)
    }

    /// Linux: `vma_shrink()`: the VMA at `vma_start` becomes `[start, end)` with `pgoff`; the
    /// pages outside are dropped.
    #[cfg_attr(not(test), allow(dead_code))] // mremap's shrink (not modelled yet)
    pub(crate) fn vma_shrink(&mut self, vma_start: u64, start: u64, end: u64, pgoff: u64) -> u64 {
        let v = self.tree.get_mut(vma_start).expect("shrink of a VMA");
        debug_assert!(v.start <= start && end <= v.end && start < end);
        v.pgoff = pgoff;
        let (old_end, recency) = (v.end, v.has_recency());
        self.tree.set_range(vma_start, start, end);
        self.zap_pages(vma_start, start, recency);
        self.zap_pages(end, old_end, recency);
        start
    }

    /// Linux: `vma_modify()`: makes `[start, end)` of `vma` a VMA of its own that can take
    /// `flags`: merged into a neighbour, or split out. Returns it; the caller writes the new
    /// attributes.
    pub(crate) fn vma_modify(
        &mut self,
        vma: impl Into<VmaHandle>,
        start: u64,
        end: u64,
        flags: VmFlags,
    ) -> Result<VmaHandle, Errno> {
        let h = vma.into();
        let v = self.tree.vma(h).expect("vma_modify of a VMA");
        let (vma_start, vma_end) = (v.start, v.end);
        let mut vmg = Vmg::modify(v, start, end, flags);
        vmg.middle = Some(h);
        if let Some(merged) = self.vma_merge_existing_range(&vmg) {
            return Ok(merged);
        }
        let mut cur = h;
        if vma_start < start {
            cur = self.split_vma(cur, start, SplitKeep::Upper)?;
        }
        if vma_end > end {
            self.split_vma(cur, end, SplitKeep::Lower)?;
        }
        Ok(cur)
    }

    /// Linux: `split_vma()`: refuses at `max_map_count`, then [`Self::__split_vma`].
    pub(crate) fn split_vma(&mut self, vma: VmaHandle, addr: u64, keep: SplitKeep) -> Result<VmaHandle, Errno> {
        if self.map_count() >= self.settings.max_map_count {
            return Err(Errno::ENOMEM);
        }
        self.__split_vma(vma, addr, keep)
    }

    /// Linux: `__split_vma()`: splits `vma` at `addr`. Both halves keep every attribute; the
    /// upper half's pgoff moves with its start. `keep` says which half is the original VMA
    /// (only matters to callers that hold on to it; the model names VMAs by start). Returns
    /// the upper half.
    #[allow(non_snake_case)]
    pub(crate) fn __split_vma(
        &mut self,
        vma: impl Into<VmaHandle>,
        addr: u64,
        _keep: SplitKeep,
    ) -> Result<VmaHandle, Errno> {
        let h = vma.into();
        let vma = self.tree.vma(h).expect("split of a VMA");
        debug_assert!(vma.start < addr && addr < vma.end);
        if let Some(may_split) = vma.ops.as_ref().and_then(|o| o.may_split.clone()) {
            may_split(&vma.view(), addr)?;
        }
        // The lower half is the VMA itself, shortened in place; the upper half is a copy.
        let upper = self.tree.split(h, addr).expect("split of a VMA");
        let new = self.tree.vma(upper).expect("the upper half");
        if let Some(open) = new.ops.as_ref().and_then(|o| o.open.clone()) {
            open(&new.view());
        }
        Ok(upper)
    }
}

/// Which half of a split is the original VMA (`new_below`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SplitKeep {
    /// `new_below = 1`: the new VMA is the lower part.
    Upper,
    /// `new_below = 0`: the new VMA is the upper part.
    Lower,
}
