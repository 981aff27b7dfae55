//! madvise and prctl(PR_SET_VMA) (Linux: mm/madvise.c).

use crate::addr::{PAGE_SHIFT, is_page_aligned, range_end};
use crate::errno::{Errno, SysResult};
use crate::flags::VmFlags;
use crate::{AddressSpace, Page};

use crate::flags::advice::*;

/// Linux: `madvise_behavior_valid()` for this kernel's configuration (KSM and THP on,
/// `CONFIG_MEMORY_FAILURE` off, so `MADV_HWPOISON` and `MADV_SOFT_OFFLINE` are invalid).
fn behavior_valid(b: u64) -> bool {
    matches!(b, 0..=4 | 8..=25 | GUARD_INSTALL | GUARD_REMOVE)
}

/// Linux: `is_discard()`: what a sealed read-only anonymous VMA refuses.
fn is_discard(b: u64) -> bool {
    matches!(b, FREE | DONTNEED | DONTNEED_LOCKED | REMOVE | DONTFORK | WIPEONFORK | GUARD_INSTALL)
}

impl AddressSpace {
    /// `madvise(start, len, advice)`.
    ///
    /// Linux: `do_madvise()`. VMAs are walked in order; a hole makes the result `ENOMEM` but the
    /// walk goes on; an error on a VMA stops it there.
    pub fn madvise(&mut self, start: u64, len: u64, behavior: u64) -> SysResult {
        // `behavior` is an int.
        let behavior = behavior as u32 as i32 as i64 as u64;
        if !behavior_valid(behavior) || !is_page_aligned(start) {
            return Err(Errno::EINVAL);
        }
        let end = range_end(start, len)?;
        if end == start {
            return Ok(0);
        }
        if behavior == POPULATE_READ || behavior == POPULATE_WRITE {
            return self.faultin_page_range(start, end, behavior == POPULATE_WRITE).map(|()| 0);
        }
        self.madvise_walk_vmas(start, end, behavior).map(|()| 0)
    }

    /// Linux: `madvise_walk_vmas()`.
    fn madvise_walk_vmas(&mut self, mut start: u64, last_end: u64, behavior: u64) -> Result<(), Errno> {
        let mut unmapped = Ok(());
        let mut vma = self.tree.find_vma(start).map(|v| v.start);
        loop {
            let Some(vs) = vma else { return Err(Errno::ENOMEM) };
            let v = self.tree.get(vs).expect("VMA").clone();
            if start < v.start {
                unmapped = Err(Errno::ENOMEM);
                start = v.start;
                if start >= last_end {
                    break;
                }
            }
            let end = v.end.min(last_end);
            let result_end = self.madvise_vma_behavior(vs, start, end, behavior)?;
            let end = end.max(result_end);
            if end >= last_end {
                break;
            }
            vma = self.tree.find_vma(result_end).map(|v| v.start);
            start = end;
        }
        unmapped
    }

    /// Linux: `madvise_vma_behavior()` for `[start, end)` of one VMA. Returns the end of the VMA
    /// that holds the range afterwards.
    fn madvise_vma_behavior(&mut self, vs: u64, start: u64, end: u64, behavior: u64) -> Result<u64, Errno> {
        let vma = self.tree.get(vs).expect("VMA").clone();
        let f = vma.flags;
        // can_madvise_modify(): sealed anonymous memory the process cannot write refuses
        // discards.
        if vma.is_sealed()
            && is_discard(behavior)
            && vma.is_anonymous()
            && !(f.contains(VmFlags::WRITE) && self.pkeys.allows(f.pkey(), true))
        {
            return Err(Errno::EPERM);
        }
        let mut new = f;
        match behavior {
            REMOVE => return self.madvise_remove(vs, start, end).map(|()| vma.end),
            WILLNEED => {
                // vfs_fadvise(POSIX_FADV_WILLNEED) reads a file's pages into its cache; how many
                // depends on the device's largest request, which the model does not know.
                if let Some(file) = vma.file.as_ref().filter(|_| !vma.is_anonymous())
                    && vma.ops.as_ref().and_then(|o| o.cache_fault) == Some(crate::driver::CacheFault::Filemap)
                {
                    file.inode.cache().forget();
                }
                return Ok(vma.end);
            }
            COLD | PAGEOUT => {
                // can_madv_lru_vma()
                if f.intersects(VmFlags::LOCKED | VmFlags::PFNMAP | VmFlags::HUGETLB) {
                    return Err(Errno::EINVAL);
                }
                // Reclaim and the young bits it clears are not modelled (a reclaimed file page
                // leaves its cache).
                self.tree.get_mut(vs).expect("VMA").pages_exact = false;
                if let Some(file) = vma.file.as_ref().filter(|_| behavior == PAGEOUT) {
                    file.inode.cache().forget();
                }
                return Ok(vma.end);
            }
            // Not modelled: collapsing into transparent huge pages. The model answers as Linux
            // does for every VMA that is not THP-eligible (which, with THP in `madvise` mode,
            // is every VMA without MADV_HUGEPAGE).
            COLLAPSE => return Err(Errno::EINVAL),
            FREE | DONTNEED | DONTNEED_LOCKED => {
                return self.madvise_dontneed(vs, start, end, behavior).map(|()| vma.end);
            }
            GUARD_INSTALL => return self.madvise_guard_install(vs, start, end).map(|()| vma.end),
            GUARD_REMOVE => return self.madvise_guard_remove(vs, start, end).map(|()| vma.end),
            NORMAL => new.remove(VmFlags::RAND_READ | VmFlags::SEQ_READ),
            SEQUENTIAL => {
                new.remove(VmFlags::RAND_READ);
                new |= VmFlags::SEQ_READ;
            }
            RANDOM => {
                new.remove(VmFlags::SEQ_READ);
                new |= VmFlags::RAND_READ;
            }
            DONTFORK => new |= VmFlags::DONTCOPY,
            DOFORK => {
                if f.contains(VmFlags::IO) {
                    return Err(Errno::EINVAL);
                }
                new.remove(VmFlags::DONTCOPY);
            }
            WIPEONFORK => {
                if vma.file.is_some() || f.contains(VmFlags::SHARED) {
                    return Err(Errno::EINVAL);
                }
                new |= VmFlags::WIPEONFORK;
            }
            KEEPONFORK => {
                if f.contains(VmFlags::DROPPABLE) {
                    return Err(Errno::EINVAL);
                }
                new.remove(VmFlags::WIPEONFORK);
            }
            DONTDUMP => new |= VmFlags::DONTDUMP,
            DODUMP => {
                if (!f.contains(VmFlags::HUGETLB) && f.intersects(VmFlags::SPECIAL)) || f.contains(VmFlags::DROPPABLE) {
                    return Err(Errno::EINVAL);
                }
                new.remove(VmFlags::DONTDUMP);
            }
            MERGEABLE => {
                // ksmd may merge the pages at any time.
                self.tree.get_mut(vs).expect("VMA").pages_exact = false;
                // ksm_madvise(): silently nothing for memory KSM cannot merge.
                let incompatible =
                    VmFlags::SHARED | VmFlags::MAYSHARE | VmFlags::SPECIAL | VmFlags::HUGETLB | VmFlags::DROPPABLE;
                if !f.intersects(incompatible) {
                    new |= VmFlags::MERGEABLE;
                }
            }
            UNMERGEABLE => new.remove(VmFlags::MERGEABLE),
            HUGEPAGE => {
                // Faults may map huge pages and khugepaged may collapse small ones where the
                // VMA is eligible (see `Vma::thp_fault_possible`, `Vma::may_hold_thp`).
                new.remove(VmFlags::NOHUGEPAGE);
                new |= VmFlags::HUGEPAGE;
            }
            NOHUGEPAGE => {
                new.remove(VmFlags::HUGEPAGE);
                new |= VmFlags::NOHUGEPAGE;
            }
            _ => return Err(Errno::EINVAL),
        }
        self.madvise_update_vma(vs, start, end, new).map_err(|e| if e == Errno::ENOMEM { Errno::EAGAIN } else { e })
    }

    /// Linux: `madvise_update_vma()`: merge or split, then write the flags. Sticky flags of a
    /// VMA merged into (the guard-region mark) are kept.
    fn madvise_update_vma(&mut self, vs: u64, start: u64, end: u64, new: VmFlags) -> Result<u64, Errno> {
        let v = self.tree.get(vs).expect("VMA");
        if new == v.flags {
            return Ok(v.end);
        }
        let target = self.vma_modify(vs, start, end, new)?;
        let t = self.tree.vma_mut(target).expect("modified VMA");
        let sticky = t.flags & VmFlags::STICKY;
        t.flags = new | sticky;
        Ok(t.end)
    }

    /// `MADV_DONTNEED`, `MADV_DONTNEED_LOCKED`, `MADV_FREE`: the pages go (private memory reads
    /// back as zeros or the file's contents); guard markers stay.
    fn madvise_dontneed(&mut self, vs: u64, start: u64, end: u64, behavior: u64) -> Result<(), Errno> {
        let f = self.tree.get(vs).expect("VMA").flags;
        if f.contains(VmFlags::HUGETLB) {
            return self.madvise_dontneed_hugetlb(vs, start, end, behavior);
        }
        let mut forbidden = VmFlags::PFNMAP;
        if behavior != DONTNEED_LOCKED {
            forbidden |= VmFlags::LOCKED;
        }
        if f.intersects(forbidden) {
            return Err(Errno::EINVAL);
        }
        // madvise_free_single_vma(): MADV_FREE is for anonymous memory only.
        if behavior == FREE && !self.tree.get(vs).expect("VMA").is_anonymous() {
            return Err(Errno::EINVAL);
        }
        if behavior == FREE {
            // MADV_FREE leaves lazily freed pages that reclaim may take at any time.
            self.tree.get_mut(vs).expect("VMA").pages_exact = false;
            self.madvise_free_pte_range(start, end);
            return Ok(());
        }
        let recency = self.tree.get(vs).expect("VMA").has_recency();
        self.zap_pages_keeping_guards(start, end, recency);
        Ok(())
    }

    /// Linux: `madvise_free_pte_range()`: every page becomes lazily free
    /// (`folio_mark_lazyfree()`). One only this process maps the model treats as gone (reclaim
    /// may take it at any time); one a fork maps too stays (its entry there is dirty), with its
    /// `PG_referenced` unknown from now on.
    fn madvise_free_pte_range(&mut self, start: u64, end: u64) {
        let mut free = Vec::new();
        for r in self.pages.range(start, end) {
            match r.page {
                crate::Page::Guard => {}
                crate::Page::Anon(a) => {
                    let frames = a.frames.frames();
                    let mut at = r.start;
                    let mut index = a.frames.first() + r.offset;
                    for seg in frames.segments(index, r.pages()) {
                        let end = at + (seg.len << PAGE_SHIFT);
                        if seg.mapcount > 1 {
                            frames.forget_referenced(index, seg.len);
                        } else {
                            free.push((at, end));
                        }
                        (at, index) = (end, index + seg.len);
                    }
                }
                _ => free.push((r.start, r.end)),
            }
        }
        for (s, e) in free {
            self.pages.zap_range(s, e, true, false);
        }
    }

    /// Linux: `madvise_dontneed_free_valid_vma()` for hugetlb: DONTNEED only, from a huge page
    /// boundary, and only whole huge pages (the end is rounded down so no data is lost that the
    /// caller did not name).
    fn madvise_dontneed_hugetlb(&mut self, vs: u64, start: u64, end: u64, behavior: u64) -> Result<(), Errno> {
        let size = crate::fault::vma_page_size(self.tree.get(vs).expect("VMA"));
        if behavior == FREE || start & (size - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        let end = end & !(size - 1);
        if start < end {
            self.hugetlb_zap_private(vs, start, end);
        }
        Ok(())
    }

    /// `MADV_REMOVE`: punches a hole in the file behind a shared writable mapping.
    fn madvise_remove(&mut self, vs: u64, start: u64, end: u64) -> Result<(), Errno> {
        let v = self.tree.get(vs).expect("VMA").clone();
        if v.flags.contains(VmFlags::LOCKED) {
            return Err(Errno::EINVAL);
        }
        let Some(file) = &v.file else { return Err(Errno::EINVAL) };
        if !v.flags.is_shared_maywrite() {
            return Err(Errno::EACCES);
        }
        // vfs_fallocate(PUNCH_HOLE): a range past the file system's largest file is EFBIG; a
        // file without fallocate is EOPNOTSUPP; then the file system's own checks (shmem: no
        // holes in a memfd sealed against writing).
        let offset = (start - v.start).saturating_add(v.pgoff.saturating_mul(crate::addr::PAGE_SIZE));
        if offset.saturating_add(end - start) > file.inode.sb.max_bytes {
            return Err(Errno::EFBIG);
        }
        let punch = file.ops.punch_hole.as_ref().ok_or(Errno::EOPNOTSUPP)?;
        punch(&file.inode, offset, end - start)?;
        // The hole's pages leave the cache and every mapping of them (private copies stay).
        // A hugetlb VMA maps only its file's huge pages, which the punch took out of the file
        // (whole pages only): their entries are forgotten at the next look.
        let first = v.pgoff_at(start);
        file.inode.cache().evict(first, first + ((end - start) >> crate::addr::PAGE_SHIFT));
        if !v.flags.contains(VmFlags::HUGETLB) {
            self.zap_pages_keeping_guards(start, end, v.has_recency());
        }
        Ok(())
    }

    /// Linux: `madvise_guard_install()`: every page becomes a guard marker (present pages are
    /// zapped). The VMA is marked as possibly holding guards (`gu`, a sticky flag) without
    /// splitting, and an anonymous one gets an anon_vma.
    fn madvise_guard_install(&mut self, vs: u64, start: u64, end: u64) -> Result<(), Errno> {
        let f = self.tree.get(vs).expect("VMA").flags;
        if f.intersects(VmFlags::SPECIAL | VmFlags::HUGETLB | VmFlags::LOCKED) {
            return Err(Errno::EINVAL);
        }
        let recency = self.tree.get(vs).expect("VMA").has_recency();
        self.tree.get_mut(vs).expect("VMA").flags |= VmFlags::MAYBE_GUARD;
        // Only anonymous VMAs get an anon_vma for their guard markers (as in 6.19, which the
        // 6.18.44 kernel follows here: a guarded shared mapping still merges after fork).
        if self.tree.get(vs).expect("VMA").is_anonymous() {
            self.anon_vma_prepare(vs);
        }
        self.begin_page_walk();
        if self.run_step((end - start) >> PAGE_SHIFT) {
            // A present page is zapped first: a page-cache entry hands its dirty and accessed
            // bits to the folio (`zap_present_folio_ptes()`).
            self.pages.zap_range(start, end, recency, false);
            self.pages.insert_run(start, end, Page::Guard);
        }
        Ok(())
    }

    /// Linux: `madvise_guard_remove()`: the markers go; the `gu` mark stays.
    fn madvise_guard_remove(&mut self, vs: u64, start: u64, end: u64) -> Result<(), Errno> {
        let f = self.tree.get(vs).expect("VMA").flags;
        if f.intersects(VmFlags::SPECIAL | VmFlags::HUGETLB) {
            return Err(Errno::EINVAL);
        }
        self.pages.remove_guards(start, end);
        Ok(())
    }

    fn zap_pages_keeping_guards(&mut self, start: u64, end: u64, recency: bool) {
        self.pages.zap_range(start, end, recency, true);
    }

    /// `prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, start, len, name)`: `EINVAL`, as on this
    /// project's kernel, which is built without `CONFIG_ANON_VMA_NAME`.
    pub fn prctl_set_vma_anon_name(&mut self, _start: u64, _len: u64, _name: Option<&[u8]>) -> SysResult {
        Err(Errno::EINVAL)
    }
}
