//! Page faults: the trace's `touch` (a write per page) and `peek` (a read per page), and the
//! population `MAP_POPULATE` and `mlock` do (Linux: `handle_mm_fault` and friends).

use crate::addr::{PAGE_MASK, PAGE_SHIFT, PAGE_SIZE};
use crate::errno::Errno;
use crate::flags::VmFlags;
use crate::vma::AnonVmaRef;
use crate::{AddressSpace, Page};

pub use crate::driver::{Access, FaultSignal};

/// Linux: `vma_kernel_pagesize()`: the huge page size of a hugetlb VMA, else a page.
pub(crate) fn vma_page_size(vma: &crate::Vma) -> u64 {
    crate::hugetlb::hugetlb_inode(vma).map_or(PAGE_SIZE, |h| h.size.bytes())
}

impl AddressSpace {
    /// Writes one byte on every page of `[addr, addr+len)`, lowest first; stops at the first
    /// page that raises a signal.
    pub fn touch(&mut self, addr: u64, len: u64) -> Result<(), FaultSignal> {
        self.access_pages(addr, len, Access::Write)
    }

    /// Reads one byte on every page of `[addr, addr+len)`, lowest first.
    pub fn peek(&mut self, addr: u64, len: u64) -> Result<(), FaultSignal> {
        self.access_pages(addr, len, Access::Read)
    }

    fn access_pages(&mut self, addr: u64, len: u64, access: Access) -> Result<(), FaultSignal> {
        let end = addr.saturating_add(len);
        let mut p = addr;
        self.begin_page_walk();
        while p < end && !self.pages.budget().is_exceeded() {
            // Private anonymous memory goes a run at a time.
            let next = self.access_anon_run(p, end, access)?;
            if next != p {
                p = next;
                continue;
            }
            if !self.page_step() {
                break;
            }
            self.handle_fault(p, access)?;
            match (p & PAGE_MASK).checked_add(PAGE_SIZE) {
                Some(n) => p = n,
                None => break,
            }
        }
        Ok(())
    }

    /// A user access to `addr` (Linux: x86's `do_user_addr_fault` → `handle_mm_fault`).
    pub fn handle_fault(&mut self, addr: u64, access: Access) -> Result<(), FaultSignal> {
        let page = addr & PAGE_MASK;
        let Some(vma) = self.tree.find_vma(addr) else {
            return Err(FaultSignal::Sigsegv);
        };
        let vma_start = if vma.start > addr {
            if !vma.flags.contains(VmFlags::GROWSDOWN) {
                return Err(FaultSignal::Sigsegv);
            }
            let s = vma.start;
            self.expand_downwards(s, page).map_err(|_| FaultSignal::Sigsegv)?
        } else {
            vma.start
        };
        let vma = self.tree.get(vma_start).expect("faulting VMA");
        // access_error()
        let write = access == Access::Write;
        if (write && !vma.flags.contains(VmFlags::WRITE)) || (!write && !vma.flags.is_accessible()) {
            return Err(FaultSignal::Sigsegv);
        }
        if !self.pkeys.allows(vma.flags.pkey(), write) || self.pages.get(&page) == Some(&Page::Guard) {
            return Err(FaultSignal::Sigsegv);
        }
        if crate::hugetlb::hugetlb_inode(vma).is_some() {
            return self.hugetlb_fault(vma_start, addr, access);
        }
        let locked = vma.flags.contains(VmFlags::LOCKED);
        self.drop_if_truncated(vma_start, page);
        self.access_present(page, access, locked);
        if !self.needs_fault(vma_start, page, access) {
            return Ok(());
        }
        self.fault_in(vma_start, page, access)
    }

    /// A file page past the end of its file was truncated away, by whichever process shrank
    /// the file (`truncate_pagecache` unmaps it from every mapping, private copies included):
    /// forget it, so the access faults again.
    fn drop_if_truncated(&mut self, vma_start: u64, page: u64) {
        let vma = self.tree.get(vma_start).expect("VMA");
        let Some(f) = vma.file.as_ref().filter(|_| !vma.is_anonymous()) else { return };
        if !f.inode.is_regular() {
            return;
        }
        let past_eof = vma.pgoff_at(page) >= f.inode.state().size.div_ceil(PAGE_SIZE);
        let gone = match self.pages.get(&page) {
            Some(Page::File(fp)) => past_eof || fp.folio.is_evicted(),
            Some(p @ Page::Anon(_)) => past_eof || vma.copy_truncated(page, p),
            _ => false,
        };
        if gone {
            let recency = self.tree.get(vma_start).is_some_and(|v| v.has_recency());
            self.pages.zap(&page, recency);
        }
    }

    /// An access to a present page sets its entry's accessed bit (the CPU does, on x86: a
    /// fork's child starts with old entries); a write to an anonymous frame that another page
    /// table maps too gets a copy of its own (Linux: `do_wp_page()` → `wp_page_copy()`; with
    /// the last mapping left, `wp_can_reuse_anon_folio()` reuses it).
    fn access_present(&mut self, page: u64, access: Access, locked: bool) {
        // Nothing to change (so no run to split): young already, and a read or a write that
        // needs no copy.
        if let Some((a, k)) = self.pages.anon_at(page)
            && a.young == Some(true)
            && (access == Access::Read || (!a.wrprotected && a.frames.mapcount(k) == 1))
        {
            return;
        }
        match self.pages.get_mut(&page) {
            Some(Page::Anon(a)) => {
                a.young = Some(true);
                if access == Access::Write {
                    wp_anon(a, locked);
                }
            }
            Some(Page::File(f)) => f.young = Some(true),
            _ => {}
        }
    }

    /// get_user_pages on a present anonymous page: a write to a write-protected entry faults
    /// (`do_wp_page()`, which makes the entry young); anything else follows the entry as it is
    /// (`follow_page_pte()` does not touch the accessed bit of a small page).
    fn gup_anon(&mut self, page: u64, access: Access, locked: bool) {
        let wrprotected = self.pages.anon_at(page).is_some_and(|(a, _)| a.wrprotected);
        if access == Access::Write
            && wrprotected
            && let Some(Page::Anon(a)) = self.pages.get_mut(&page)
        {
            a.young = Some(true);
            wp_anon(a, locked);
        }
    }

    /// Whether an access to `page` has anything to fault in: a missing page, a copy-on-write
    /// of a file page in a private VMA, or the first write to a clean shared page.
    fn needs_fault(&self, vma_start: u64, page: u64, access: Access) -> bool {
        let private = !self.tree.get(vma_start).expect("VMA").flags.contains(VmFlags::SHARED);
        match self.pages.get(&page) {
            None => true,
            Some(Page::Anon(_) | Page::Guard | Page::Pfn | Page::Huge(_)) => false,
            Some(Page::File(fp)) => access == Access::Write && (private || !(fp.dirty || fp.folio.is_dirty())),
        }
    }

    /// Linux: `check_vma_flags()`: may get_user_pages touch this VMA this way?
    fn gup_vma_allowed(&self, vma: &crate::Vma, write: bool, force: bool) -> bool {
        let f = vma.flags;
        if f.intersects(VmFlags::IO | VmFlags::PFNMAP) || crate::drivers::secretmem::vma_is_secretmem(vma.ops.as_ref())
        {
            return false;
        }
        let allowed = if write {
            f.contains(VmFlags::WRITE) || (force && !f.contains(VmFlags::SHARED) && f.contains(VmFlags::MAYWRITE))
        } else {
            f.contains(VmFlags::READ) || (force && f.contains(VmFlags::MAYREAD))
        };
        allowed && self.pkeys.allows(f.pkey(), write)
    }

    /// One page of get_user_pages: a fault without the user-access checks. Guard markers and
    /// faults that would raise a signal are `EFAULT`.
    fn gup_page(&mut self, vma_start: u64, page: u64, access: Access) -> Result<(), Errno> {
        if self.tree.get(vma_start).and_then(crate::hugetlb::hugetlb_inode).is_some() {
            return self.hugetlb_fault(vma_start, page, access).map_err(|_| Errno::EFAULT);
        }
        self.drop_if_truncated(vma_start, page);
        let locked = self.tree.get(vma_start).is_some_and(|v| v.flags.contains(VmFlags::LOCKED));
        self.gup_anon(page, access, locked);
        // follow_page_pte(): a write through get_user_pages to a page a shared mapping maps
        // dirties the folio, unless its entry is dirty already (`!pte_dirty()`).
        let shared = self.tree.get(vma_start).is_some_and(|v| v.flags.contains(VmFlags::SHARED));
        if let (Some(Page::File(f)), Access::Write, true) = (self.pages.get(&page), access, shared)
            && !f.dirty
        {
            f.folio.mark_dirty();
        }
        match self.pages.get(&page) {
            Some(Page::Guard) => return Err(Errno::EFAULT),
            _ if !self.needs_fault(vma_start, page, access) => {
                self.gup_touch(page);
                return Ok(());
            }
            _ => {}
        }
        self.fault_in(vma_start, page, access).map_err(|_| Errno::EFAULT)?;
        self.gup_touch(page);
        Ok(())
    }

    /// `FOLL_TOUCH`: get_user_pages marks the page it returns accessed.
    fn gup_touch(&self, page: u64) {
        if let Some((a, k)) = self.pages.anon_at(page) {
            a.frames.frames().mark_accessed(a.frames.first() + k, 1);
        } else if let Some(Page::File(f)) = self.pages.get(&page) {
            f.folio.referenced.mark_accessed();
        }
    }

    /// Linux: `__mm_populate()`: faults in the VMAs of `[start, start+len)` as `MAP_POPULATE`,
    /// `MAP_LOCKED` and `mlock` do (holes are skipped). With `ignore_errors` a VMA that fails is
    /// left and the next one done; otherwise the first error is returned (`EFAULT`).
    pub(crate) fn mm_populate(&mut self, start: u64, len: u64, ignore_errors: bool) -> Result<(), Errno> {
        let end = start.saturating_add(len);
        let mut cursor = start;
        self.begin_page_walk();
        while cursor < end
            && let Some(vma) = self.tree.find_intersection(cursor, end).cloned()
        {
            cursor = vma.end;
            let (from, to) = (start.max(vma.start), end.min(vma.end));
            if vma.flags.intersects(VmFlags::IO | VmFlags::PFNMAP) || vma.flags.contains(VmFlags::LOCKONFAULT) {
                continue;
            }
            let r = self.populate_vma_page_range(&vma, from, to);
            if let Err(e) = r
                && !ignore_errors
            {
                return Err(e);
            }
            if cursor >= end {
                break;
            }
        }
        Ok(())
    }

    /// Linux: `populate_vma_page_range()`.
    fn populate_vma_page_range(&mut self, vma: &crate::Vma, from: u64, to: u64) -> Result<(), Errno> {
        if !vma.flags.is_accessible() {
            return Err(Errno::EFAULT);
        }
        let write = vma.flags.0 & (VmFlags::WRITE | VmFlags::SHARED).0 == VmFlags::WRITE.0;
        if !self.gup_vma_allowed(vma, write, !write) {
            return Err(Errno::EFAULT);
        }
        let access = if write { Access::Write } else { Access::Read };
        self.gup_pages(vma, from, to, access)
    }

    /// get_user_pages over `[from, to)` of `vma`: private anonymous memory a run at a time,
    /// anything else page by page (huge pages by the huge page).
    fn gup_pages(&mut self, vma: &crate::Vma, from: u64, to: u64, access: Access) -> Result<(), Errno> {
        let step = vma_page_size(vma);
        let mut page = from;
        while page < to && !self.pages.budget().is_exceeded() {
            let next = self.gup_anon_run(vma.start, page, to, access)?;
            if next != page {
                page = next;
                continue;
            }
            if !self.page_step() {
                break;
            }
            self.gup_page(vma.start, page, access)?;
            page = (page & !(step - 1)) + step;
        }
        Ok(())
    }

    /// Linux: `faultin_page_range()` for `MADV_POPULATE_READ` / `MADV_POPULATE_WRITE`:
    /// `ENOMEM` at a hole, `EINVAL` for a VMA that does not allow the access, `EFAULT` for a
    /// fault that would raise a signal.
    pub(crate) fn faultin_page_range(&mut self, start: u64, end: u64, write: bool) -> Result<(), Errno> {
        let access = if write { Access::Write } else { Access::Read };
        let mut page = start;
        self.begin_page_walk();
        while page < end && !self.pages.budget().is_exceeded() {
            let vma = self.tree.vma_lookup(page).ok_or(Errno::ENOMEM)?.clone();
            if !self.gup_vma_allowed(&vma, write, false) {
                return Err(Errno::EINVAL);
            }
            let to = end.min(vma.end);
            self.gup_pages(&vma, page, to, access)?;
            page = page.max(to);
        }
        Ok(())
    }

    /// Makes `page` present in the VMA at `vma_start` (Linux: `do_anonymous_page`,
    /// `do_read_fault`, `do_cow_fault`, `do_shared_fault`).
    fn fault_in(&mut self, vma_start: u64, page: u64, access: Access) -> Result<(), FaultSignal> {
        let vma = self.tree.get(vma_start).expect("faulting VMA").clone();
        // create_huge_pmd(): the fault may map a huge page (or the huge zero page) for the
        // whole 2 MiB around it, which the model does not follow.
        if vma.thp_fault_possible(page) {
            self.tree.get_mut(vma_start).expect("faulting VMA").pages_exact = false;
        }
        let write = access == Access::Write;
        let shared = vma.flags.contains(VmFlags::SHARED) || vma.flags.contains(VmFlags::MAYSHARE);
        if let Some(fault) = vma.ops.as_ref().and_then(|o| o.fault.clone()) {
            match fault(&vma.view(), page) {
                crate::driver::VmFault::Sigbus => return Err(FaultSignal::Sigbus),
                crate::driver::VmFault::Sigsegv => return Err(FaultSignal::Sigsegv),
                crate::driver::VmFault::Mapped => {}
            }
        }
        // A PFN mapping without a fault handler has nothing to fault in.
        if vma.flags.contains(VmFlags::PFNMAP) && vma.ops.as_ref().is_none_or(|o| o.fault.is_none()) {
            return Err(FaultSignal::Sigbus);
        }
        if vma.is_anonymous() {
            // Private anonymous memory (and private /dev/zero): a read maps the zero page,
            // which is neither counted nor needs an anon_vma.
            if write {
                self.anon_vma_prepare(vma_start);
                self.pages.insert(page, crate::AnonPage::fresh());
            }
            return Ok(());
        }
        if let (Some(kind), Some(file)) = (vma.ops.as_ref().and_then(|o| o.cache_fault), &vma.file) {
            return self.do_cache_fault(&vma, file, kind, page, write);
        }
        // do_read_fault() maps what the page cache has around the page first (fault-around,
        // even when the page itself is past the end of the file), and the model does not follow
        // the page cache of a VMA whose operations do not say how it fills: the VMA's page
        // counters are unknown from now on.
        if !write {
            self.tree.get_mut(vma_start).expect("faulting VMA").pages_exact = false;
        }
        // do_cow_fault() prepares the anon_vma before it reads the file page, so a private
        // write fault that ends in SIGBUS still leaves the VMA with an anon_vma.
        let cow = write && !shared;
        if cow {
            self.anon_vma_prepare(vma_start);
        }
        if let Some(f) = &vma.file {
            let size = f.inode.state().size;
            let index = vma.pgoff_at(page);
            if index >= size.div_ceil(PAGE_SIZE) {
                return Err(FaultSignal::Sigbus);
            }
        }
        if cow {
            self.pages.insert(page, crate::AnonPage::copy_of_file_page(vma.file.as_deref()));
        } else {
            self.pages.insert(page, crate::filemap::FilePage::detached(write));
        }
        Ok(())
    }

    /// Linux: `anon_vma_prepare()`: gives the VMA an anon_vma, reusing a neighbour's when
    /// `find_mergeable_anon_vma()` allows.
    pub(crate) fn anon_vma_prepare(&mut self, vma_start: u64) {
        let vma = self.tree.get(vma_start).expect("VMA");
        if vma.anon_vma.is_some() {
            return;
        }
        let reuse = self.find_mergeable_anon_vma(vma_start);
        let id = reuse.unwrap_or_else(|| {
            self.next_anon_vma += 1;
            self.next_anon_vma
        });
        self.tree.get_mut(vma_start).expect("VMA").anon_vma = Some(AnonVmaRef::new(id, false));
    }

    /// Linux: `find_mergeable_anon_vma()`: next first, then prev.
    fn find_mergeable_anon_vma(&self, vma_start: u64) -> Option<u64> {
        let vma = self.tree.get(vma_start)?;
        let next = self.tree.next_from(vma.end);
        let prev = self.tree.prev_of(vma.start);
        let compatible = |a: &crate::Vma, b: &crate::Vma| {
            a.end == b.start
                && a.same_file(b.file.as_ref())
                && (a.flags.0 ^ b.flags.0) & !(VmFlags::ACCESS_FLAGS | VmFlags::IGNORE_MERGE).0 == 0
                && b.pgoff == a.pgoff.wrapping_add((b.start - a.start) >> PAGE_SHIFT)
        };
        let reusable = |old: &crate::Vma| old.anon_vma.filter(|a| !a.forked()).map(|a| a.id());
        if let Some(n) = next.filter(|n| compatible(vma, n)).and_then(reusable) {
            return Some(n);
        }
        prev.filter(|p| compatible(p, vma)).and_then(reusable)
    }

    /// Linux: `expand_downwards()`: grows a `VM_GROWSDOWN` VMA down to `addr`. Returns the
    /// VMA's new start.
    pub(crate) fn expand_downwards(&mut self, vma_start: u64, addr: u64) -> Result<u64, Errno> {
        if addr < self.settings.effective_mmap_min_addr() {
            return Err(Errno::EPERM);
        }
        let guard = self.settings.stack_guard_gap;
        if let Some(prev) = self.tree.prev_of(vma_start)
            && !prev.flags.contains(VmFlags::GROWSDOWN)
            && prev.flags.is_accessible()
            && addr - prev.end < guard
        {
            return Err(Errno::ENOMEM);
        }
        self.anon_vma_prepare(vma_start);
        let vma = self.tree.get(vma_start).expect("stack VMA").clone();
        let grow = (vma.start - addr) >> PAGE_SHIFT;
        let size = vma.end - addr;
        if grow > vma.pgoff
            || size > self.settings.rlimit_stack
            || !self.may_expand_vm(vma.flags, grow)
            || !self.mm_info().mlock_future_ok(vma.flags, grow)
        {
            return Err(Errno::ENOMEM);
        }
        let v = self.tree.get_mut(vma_start).expect("stack VMA");
        v.pgoff -= grow;
        let (flags, end) = (v.flags, v.end);
        self.tree.set_range(vma_start, addr, end);
        if flags.contains(VmFlags::LOCKED) {
            self.counters.locked_vm += grow;
        }
        self.counters.account(flags, grow as i64);
        Ok(addr)
    }
}

/// Linux: `do_wp_page()` on an anonymous entry: a frame another entry maps too is copied
/// (`wp_page_copy()`), one mapped only here is reused (`wp_page_reuse()`); either way the entry
/// is writable again. A copy in a locked VMA unmaps the old frame from it, which munlocks it
/// (`folio_remove_rmap_pte()` → `munlock_vma_folio()`): its `PG_referenced` is then up to the
/// mlock batch's drain (see [`crate::frames::AnonFrames::forget_referenced`]). `a` maps one
/// page.
fn wp_anon(a: &mut crate::AnonPage, locked: bool) {
    if a.frames.mapcount(0) > 1 {
        if locked {
            a.frames.forget_referenced();
        }
        // A copy of a private copy of a file page is one too, as old as the truncations go:
        // a truncated one was dropped before the fault got here.
        let generation = a.frames.frames().file_generation;
        a.frames = crate::frames::FrameRef::fresh(1, generation);
    }
    a.wrprotected = false;
}
