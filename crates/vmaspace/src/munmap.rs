//! munmap, and the unmapping half of `MAP_FIXED` (Linux: `do_vmi_munmap`,
//! `vms_gather_munmap_vmas`, `vms_complete_munmap_vmas`).

use crate::AddressSpace;
use crate::addr::{PAGE_SIZE, is_page_aligned, page_align};
use crate::errno::{Errno, SysResult};
use crate::flags::VmFlags;
use crate::merge::SplitKeep;
use crate::vma::Vma;

/// VMAs taken out of the tree to be unmapped (`struct vma_munmap_struct` and its side tree).
#[derive(Debug, Default)]
pub(crate) struct Detached {
    pub vmas: Vec<Vma>,
    /// Pages gathered (`nr_pages`).
    pub nr_pages: u64,
    /// Pages of VM_ACCOUNT VMAs (`nr_accounted`); an mmap over them takes these over.
    pub nr_accounted: u64,
    /// Page tables were cleared and close() called: the VMAs can no longer be put back.
    pub cleaned_up: bool,
}

impl AddressSpace {
    /// `munmap(addr, len)`.
    ///
    /// Linux: `__vm_munmap()` → `do_vmi_munmap()`.
    pub fn munmap(&mut self, start: u64, len: u64) -> SysResult {
        let task_size = self.settings.task_size;
        if !is_page_aligned(start) || start > task_size || len > task_size - start {
            return Err(Errno::EINVAL);
        }
        let end = start + page_align(len).ok_or(Errno::EINVAL)?;
        if end == start {
            return Err(Errno::EINVAL);
        }
        if self.tree.find_intersection(start, end).is_none() {
            return Ok(0);
        }
        let detached = self.gather_munmap_vmas(start, end)?;
        self.complete_munmap_vmas(detached);
        Ok(0)
    }

    /// Linux: `vms_gather_munmap_vmas()`: splits the VMAs at the edges of `[start, end)` and
    /// takes those inside out of the tree. On error the VMAs are put back, but a split already
    /// made at `start` stays (as in Linux).
    pub(crate) fn gather_munmap_vmas(&mut self, start: u64, end: u64) -> Result<Detached, Errno> {
        let (first_start, first_end, first_sealed) = self.edges_of_first(start, end).expect("gather of a mapped range");
        if start > first_start {
            if end < first_end && self.map_count() >= self.settings.max_map_count {
                return Err(Errno::ENOMEM);
            }
            if first_sealed {
                return Err(Errno::EPERM);
            }
            self.__split_vma(first_start, start, SplitKeep::Upper)?;
        }
        let mut d = Detached::default();
        let mut cursor = start;
        while cursor < end
            && let Some((vs, ve, sealed)) = self.edges_of_first(cursor, end)
        {
            if sealed {
                self.reattach(d);
                return Err(Errno::EPERM);
            }
            if ve > end
                && let Err(e) = self.__split_vma(vs, end, SplitKeep::Lower)
            {
                self.reattach(d);
                return Err(e);
            }
            let vma = self.tree.remove(vs).expect("listed VMA");
            cursor = vma.end;
            d.nr_pages += vma.pages();
            if vma.flags.contains(VmFlags::ACCOUNT) {
                d.nr_accounted += vma.pages();
            }
            d.vmas.push(vma);
        }
        Ok(d)
    }

    /// The first VMA intersecting `[start, end)`: its start, its end, whether it is sealed.
    fn edges_of_first(&self, start: u64, end: u64) -> Option<(u64, u64, bool)> {
        self.tree.find_intersection(start, end).map(|v| (v.start, v.end, v.is_sealed()))
    }

    /// Linux: `reattach_vmas()`.
    pub(crate) fn reattach(&mut self, d: Detached) {
        debug_assert!(!d.cleaned_up);
        for v in d.vmas {
            self.tree.insert(v);
        }
    }

    /// Linux: `vms_clean_up_area()`: clears the pages of the gathered VMAs and calls their
    /// close operations. After this they cannot be put back.
    pub(crate) fn clean_up_area(&mut self, d: &mut Detached) {
        if d.nr_pages == 0 || d.cleaned_up {
            return;
        }
        for v in &mut d.vmas {
            if v.flags.contains(crate::flags::VmFlags::LOCKED) {
                self.munlock_frames(v.start, v.end);
            }
            self.zap_pages(v.start, v.end, v.has_recency());
            if let Some(close) = v.ops.as_ref().and_then(|o| o.close.clone()) {
                close(&v.view());
            }
            // vma_close() leaves the dummy operations behind: close runs once.
            v.ops = None;
        }
        // vms_clear_ptes() → free_pgtables(): between the VMAs left on either side.
        if let (Some(first), Some(last)) = (d.vmas.first().map(|v| v.start), d.vmas.last().map(|v| v.end))
            && self.pages.has_page_tables_near(first, last)
        {
            let floor = self.tree.prev_of(first).map_or(0, |v| v.end.min(first));
            let ceiling = self.tree.next_from(last).map_or(0, |v| v.start);
            self.pages.free_pgtables(first, last, floor, ceiling);
        }
        d.cleaned_up = true;
    }

    /// Linux: `vms_complete_munmap_vmas()`: the point of no return. Updates the counters and
    /// frees the gathered VMAs.
    pub(crate) fn complete_munmap_vmas(&mut self, mut d: Detached) {
        self.clean_up_area(&mut d);
        for v in &d.vmas {
            if v.flags.contains(VmFlags::LOCKED) {
                self.counters.locked_vm -= v.pages();
            }
            self.counters.account(v.flags, -(v.pages() as i64));
        }
    }

    /// Linux: `exit_mmap()` (and the file table's release at exit): every VMA goes, sealed or
    /// not, its pages are freed and its close operation runs; the descriptors are closed.
    pub fn exit_mmap(&mut self) {
        let starts: Vec<u64> = self.tree.iter().map(|v| v.start).collect();
        for start in starts {
            let Some(v) = self.tree.remove(start) else { continue };
            if v.flags.contains(crate::flags::VmFlags::LOCKED) {
                self.munlock_frames(v.start, v.end);
            }
            self.zap_pages(v.start, v.end, v.has_recency());
            if let Some(close) = v.ops.as_ref().and_then(|o| o.close.clone()) {
                close(&v.view());
            }
        }
        self.counters = crate::Counters::default();
        self.fds.clear();
    }

    /// Linux: `munlock_folio()` on the anonymous frames of `[start, end)` as a locked range is
    /// unmapped or unlocked: the folios go back from the unevictable list through the CPU's
    /// mlock batch, and after that drains their `PG_referenced` has been seen cleared (a
    /// fork's copy then shows them not referenced); when it drains, the model does not know.
    pub(crate) fn munlock_frames(&self, start: u64, end: u64) {
        for r in self.pages.range(start, end) {
            if let crate::Page::Anon(a) = r.page {
                a.frames.frames().forget_referenced(a.frames.first() + r.offset, r.pages());
            }
        }
    }

    /// Forgets the pages of `[start, end)` of a VMA that has `recency` or not (page tables
    /// cleared: see [`crate::pages`]'s `PageMap::zap`).
    pub(crate) fn zap_pages(&mut self, start: u64, end: u64, recency: bool) {
        debug_assert!(start.is_multiple_of(PAGE_SIZE));
        self.pages.zap_range(start, end, recency, false);
    }
}
