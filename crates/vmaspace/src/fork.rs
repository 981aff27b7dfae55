//! fork (Linux: `dup_mmap()`).

use crate::errno::Errno;
use crate::flags::VmFlags;
use crate::vma::AnonVmaRef;
use crate::{AddressSpace, Counters};

impl AddressSpace {
    /// The address space of a child made by `fork()`: every VMA copied except `VM_DONTCOPY`
    /// ones, none of them locked; a VMA with an anon_vma gets its own, chained to the parent's
    /// (which keeps it from merging with its neighbours); `VM_WIPEONFORK` VMAs start empty.
    /// The descriptor table is shared file by file, as fork shares open file descriptions.
    ///
    /// Linux: `dup_mmap()`.
    pub fn fork(&mut self) -> Result<AddressSpace, Errno> {
        let mut child = AddressSpace::bare(self.settings.clone(), self.vfs.clone());
        child.fds = self.fds.clone();
        child.def_flags = self.def_flags & VmFlags::INIT_DEF_MASK;
        child.start_brk = self.start_brk;
        child.brk = self.brk;
        child.start_stack = self.start_stack;
        child.gate = self.gate;
        child.pkeys = self.pkeys.clone();
        child.next_anon_vma = self.next_anon_vma;
        let mut counters = Counters::default();
        for v in self.tree.iter() {
            if v.flags.contains(VmFlags::DONTCOPY) {
                continue;
            }
            if v.flags.contains(VmFlags::ACCOUNT) && !self.vm_enough_memory(v.pages()) {
                return Err(Errno::ENOMEM);
            }
            let mut c = v.clone();
            c.flags.remove(VmFlags::LOCKED_MASK);
            // hugetlb_dup_vma_private(): a private mapping's reservations stay the parent's.
            if !c.flags.contains(VmFlags::MAYSHARE)
                && let Some(h) = crate::hugetlb::hugetlb_inode(&c)
            {
                c.set_private_data(Some(h.fork_mark()));
            }
            let wipe = v.flags.contains(VmFlags::WIPEONFORK);
            c.anon_vma = match (wipe, v.anon_vma) {
                (false, Some(_)) => {
                    child.next_anon_vma += 1;
                    Some(AnonVmaRef::new(child.next_anon_vma, true))
                }
                _ => None,
            };
            // copy_page_range(): only anonymous memory is copied; shared pages fault back in.
            // VM_COPY_ON_FORK: PFN maps and VMAs that may hold guard markers copy their page
            // tables whatever they map.
            let copy_on_fork = VmFlags::PFNMAP | VmFlags::MIXEDMAP | VmFlags::MAYBE_GUARD;
            if !wipe && (c.anon_vma.is_some() || c.flags.intersects(copy_on_fork)) {
                child.pages.copy_page_tables(&self.pages, v.start, v.end);
                for r in self.pages.range(v.start, v.end) {
                    if child.pages.budget().is_exceeded() {
                        break;
                    }
                    // Gone from the file's cache, so from every mapping; a private copy a truncation
                    // unmapped is gone too (such pages are runs of one page: only anonymous
                    // VMAs fault in runs).
                    if matches!(r.page, crate::Page::File(f) if f.folio.is_evicted())
                        || v.copy_truncated(r.start, r.page)
                    {
                        continue;
                    }
                    let shared = c.flags.contains(VmFlags::SHARED);
                    let copy = copy_present_pte(&r, &mut c.pages_exact, self.settings.accesses_visible, shared);
                    child.pages.insert_run(r.start, r.end, copy);
                }
                // The parent's entries are write-protected too (`ptep_set_wrprotect()`).
                self.pages.update_range(v.start, v.end, |_, run| {
                    if let crate::Page::Anon(p) = &mut run.page {
                        p.wrprotected = true;
                    }
                });
            }
            if let Some(open) = c.ops.as_ref().and_then(|o| o.open.clone()) {
                open(&c.view());
            }
            counters.account(c.flags, c.pages() as i64);
            child.tree.insert(c);
        }
        child.counters = counters;
        let shared: Vec<u64> = child.tree.iter().filter(|v| !v.pages_exact).map(|v| v.start).collect();
        for s in shared {
            if let Some(v) = self.tree.get_mut(s) {
                v.pages_exact = false;
            }
        }
        Ok(child)
    }
}

/// The child's entry for one of the parent's (Linux: `__copy_present_ptes()`): an anonymous
/// frame (or private huge page) is shared, the child's entry not accessed yet (`pte_mkold()`),
/// so both sides' smaps count it as shared. Other pages are copied as they are; the model does not track their
/// sharing, so the child's VMA stops claiming exact page counters (`pages_exact`).
fn copy_present_pte(
    r: &crate::pages::RunRef<'_>,
    pages_exact: &mut bool,
    accesses_visible: bool,
    vm_shared: bool,
) -> crate::Page {
    match r.page {
        crate::Page::Anon(a) => {
            let young = accesses_visible.then_some(false);
            let frames = a.frames.sub(r.offset, r.pages());
            crate::Page::Anon(crate::AnonPage { frames, young, wrprotected: true })
        }
        crate::Page::Guard => crate::Page::Guard,
        // A private huge page is shared the same way (hugetlb's copy_hugetlb_page_range()).
        crate::Page::Huge(h) => crate::Page::Huge(h.clone()),
        // A page-cache page gets one more mapping, old in the child, and clean there when the
        // mapping is shared (`pte_mkclean()`).
        crate::Page::File(f) => {
            let young = accesses_visible.then_some(false);
            crate::Page::File(crate::filemap::FilePage { folio: f.folio.clone(), young, dirty: f.dirty && !vm_shared })
        }
        other => {
            *pages_exact = false;
            other.clone()
        }
    }
}
