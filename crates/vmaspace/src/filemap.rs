//! The page cache of files and shmem objects (Linux: `mm/filemap.c`, `mm/readahead.c`,
//! `shmem_fault()`): which pages of an inode are cached, which page tables map them, and the
//! two ways a read fault brings more than its page: fault-around (`filemap_map_pages()` maps
//! what the cache holds around the faulting page) and mmap read-around
//! (`do_sync_mmap_readahead()` reads the file's read-ahead window around a missing page).
//!
//! # Invariants
//!
//! - A folio is in its inode's cache exactly when it is not evicted; an evicted folio is
//!   mapped nowhere (every entry that still holds it is forgotten at its next look).

use crate::addr::{PAGE_SHIFT, PAGE_SIZE};
use crate::driver::mapping::{CacheFolio, PageCache};
use crate::driver::{CacheFault, OpenFile};
use crate::flags::VmFlags;
use crate::vma::Vma;
use crate::{AddressSpace, Page};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Linux: `fault_around_bytes` (64 KiB) in pages.
const FAULT_AROUND_PAGES: u64 = 16;
/// Linux: `PTRS_PER_PTE`: fault-around stays within one page table.
const PTRS_PER_PTE: u64 = 512;
/// Linux: `MMAP_LOTSAMISS`: past this many misses a file is not read around any more.
const MMAP_LOTSAMISS: u32 = 100;

/// One page table entry mapping a page-cache folio.
#[derive(Debug, Clone)]
pub(crate) struct FilePage {
    pub folio: Arc<CacheFolio>,
    /// `pte_young`, as [`crate::AnonPage::young`].
    pub young: Option<bool>,
    /// `pte_dirty`: written through this entry without a write fault (shmem maps its pages
    /// writable at once: no `page_mkwrite`, no write-back to notify), so the folio itself may
    /// still be clean for its other mappings.
    pub dirty: bool,
}

impl PartialEq for FilePage {
    fn eq(&self, o: &FilePage) -> bool {
        Arc::ptr_eq(&self.folio, &o.folio) && self.young == o.young && self.dirty == o.dirty
    }
}
impl Eq for FilePage {}

impl FilePage {
    /// An entry for a folio no cache the model follows holds (a page of a VMA whose counters
    /// are unknown anyway).
    pub(crate) fn detached(dirty: bool) -> Page {
        let folio = CacheFolio::default();
        if dirty {
            folio.mark_dirty();
        }
        FilePage::mapped(Arc::new(folio))
    }

    /// The entry a fault (or fault-around) makes for `folio`: accessed, clean.
    pub(crate) fn mapped(folio: Arc<CacheFolio>) -> Page {
        Page::File(FilePage { folio, young: Some(true), dirty: false })
    }

    /// How many page table entries map the folio (the cache holds one more reference).
    pub(crate) fn mapcount(&self) -> usize {
        Arc::strong_count(&self.folio).saturating_sub(usize::from(!self.folio.is_evicted()))
    }
}

impl AddressSpace {
    /// The page-cache fault of a file VMA whose operations say how its pages come in (Linux:
    /// `do_read_fault()`, `do_cow_fault()`, `do_shared_fault()`, and `do_wp_page()` on a
    /// mapped file page).
    pub(crate) fn do_cache_fault(
        &mut self,
        vma: &Vma,
        file: &Arc<OpenFile>,
        kind: CacheFault,
        page: u64,
        write: bool,
    ) -> Result<(), crate::driver::FaultSignal> {
        let shared = vma.flags.contains(VmFlags::SHARED);
        let index = vma.pgoff_at(page);
        if let Some(Page::File(fp)) = self.pages.get_mut(&page) {
            // A write to a mapped page: a private mapping copies it (`wp_page_copy()`). A shared
            // one: a file system that allocates its pages (shmem) mapped it writable, so the
            // write only dirties the entry; one that reads them write-protects clean pages
            // (`vma_wants_writenotify()`: `page_mkwrite`, write-back), and the write fault
            // dirties the folio (`wp_page_shared()`).
            if shared && kind == CacheFault::Allocate {
                fp.dirty = true;
                return Ok(());
            }
            if shared {
                fp.folio.mark_dirty();
                return Ok(());
            }
            self.anon_vma_prepare(vma.start);
            self.pages.insert(page, crate::AnonPage::copy_of_file_page(Some(file)));
            return Ok(());
        }
        if !write {
            let fault_around = vma.ops.as_ref().is_some_and(|o| o.map_pages);
            if fault_around && self.fault_around_maps(vma, file, page) {
                return Ok(());
            }
            let (folio, retried) = self.cache_get_folio(vma, file, kind, index)?;
            // The fault dropped the lock for the read and is retried: the retry's fault-around
            // maps the window, this page with it.
            if retried && fault_around && self.fault_around_maps(vma, file, page) {
                return Ok(());
            }
            self.pages.insert(page, FilePage::mapped(folio));
            return Ok(());
        }
        if !shared {
            // do_cow_fault(): the anon_vma first, then the file's page, copied.
            self.anon_vma_prepare(vma.start);
            self.cache_get_folio(vma, file, kind, index)?;
            self.pages.insert(page, crate::AnonPage::copy_of_file_page(Some(file)));
            return Ok(());
        }
        let (folio, _) = self.cache_get_folio(vma, file, kind, index)?;
        folio.mark_dirty();
        self.pages.insert(page, FilePage::mapped(folio));
        Ok(())
    }

    /// Fault-around, then whether it mapped `page` itself (`VM_FAULT_NOPAGE`).
    fn fault_around_maps(&mut self, vma: &Vma, file: &Arc<OpenFile>, page: u64) -> bool {
        self.do_fault_around(vma, file, page);
        self.pages.get(&page).is_some()
    }

    /// The faulting VMA's page counters are unknown from now on: its file's cache is.
    fn forget_vma_pages(&mut self, vma: &Vma) {
        self.tree.get_mut(vma.start).expect("faulting VMA").pages_exact = false;
    }

    /// Linux: `do_fault_around()` → `filemap_map_pages()`: maps the cached pages of the
    /// 16-page window around `page` (within the VMA, its page table and the file) whose
    /// entries are empty, except pages marked for read-ahead.
    fn do_fault_around(&mut self, vma: &Vma, file: &Arc<OpenFile>, page: u64) {
        let cache = file.inode.cache();
        if cache.is_unknown() {
            drop(cache);
            self.forget_vma_pages(vma);
            return;
        }
        let pte_off = (page >> PAGE_SHIFT) % PTRS_PER_PTE;
        let vma_off = (page - vma.start) >> PAGE_SHIFT;
        let from_pte = (pte_off - pte_off % FAULT_AROUND_PAGES).max(pte_off - pte_off.min(vma_off));
        let to_pte = (from_pte + FAULT_AROUND_PAGES).min(PTRS_PER_PTE).min(pte_off + vma.pages() - vma_off) - 1;
        let index = vma.pgoff_at(page);
        let (first, last) = (index + from_pte - pte_off, index + to_pte - pte_off);
        let eof_pages = file.inode.state().size.div_ceil(PAGE_SIZE);
        let mut mapped: Vec<(u64, Arc<CacheFolio>)> = Vec::new();
        let mut seen = 0u32;
        let mappable = |i: u64, f: &CacheFolio| {
            i < eof_pages && !f.readahead.load(Ordering::Relaxed) && !f.not_uptodate.load(Ordering::Relaxed)
        };
        // filemap_map_pages(): when the first page it would map is the file's last, it installs
        // no page table (filemap_map_pmd() is skipped "to preserve SIGBUS semantics", shmem
        // excepted), so where the region has none yet it maps nothing.
        let first_is_last =
            cache.pages.range(first..=last).find(|(i, f)| mappable(**i, f)).is_some_and(|(i, _)| i + 1 >= eof_pages);
        if first_is_last && !cache.allocates && !self.pages.has_page_table(page) {
            return;
        }
        for (i, f) in cache.pages.range(first..=last) {
            if !mappable(*i, f) {
                continue;
            }
            seen += 1;
            // Within the window, so within the VMA.
            let addr = (page - ((index - first) << PAGE_SHIFT)) + ((i - first) << PAGE_SHIFT);
            let empty = match self.pages.get(&addr) {
                None => true,
                // Punched out or truncated (and forgotten lazily).
                Some(Page::File(old)) => old.folio.is_evicted(),
                Some(_) => false,
            };
            if empty {
                mapped.push((addr, f.clone()));
            }
        }
        drop(cache);
        for (addr, folio) in mapped {
            self.pages.insert(addr, FilePage::mapped(folio));
        }
        let ra = &file.ra;
        ra.set_miss(ra.miss().saturating_sub(seen));
    }

    /// Linux: `filemap_fault()` / `shmem_fault()`: the folio at `index`, read (with
    /// read-around) or allocated when missing. Also says whether the fault would be retried
    /// (a read dropped the lock). SIGBUS past the end of the file.
    fn cache_get_folio(
        &mut self,
        vma: &Vma,
        file: &Arc<OpenFile>,
        kind: CacheFault,
        index: u64,
    ) -> Result<(Arc<CacheFolio>, bool), crate::driver::FaultSignal> {
        let eof_pages = file.inode.state().size.div_ceil(PAGE_SIZE);
        if index >= eof_pages {
            return Err(crate::driver::FaultSignal::Sigbus);
        }
        let mut cache = file.inode.cache();
        if cache.is_unknown() {
            self.forget_vma_pages(vma);
        }
        if let Some(f) = cache.pages.get(&index).cloned() {
            if kind == CacheFault::Filemap {
                // do_async_mmap_readahead(): a marked page starts the next window, which the
                // model does not follow.
                let ra = &file.ra;
                if !vma.flags.contains(VmFlags::RAND_READ) && file.inode.sb.ra_pages != 0 {
                    ra.set_miss(ra.miss().saturating_sub(1));
                    if f.readahead.swap(false, Ordering::Relaxed) {
                        cache.forget();
                        self.forget_vma_pages(vma);
                    }
                }
            }
            // page_not_uptodate: the fault reads the page, dropping the lock, and is retried.
            let retried = f.not_uptodate.swap(false, Ordering::Relaxed);
            return Ok((f, retried));
        }
        let retried = match kind {
            CacheFault::Allocate => {
                cache.allocates = true;
                false
            }
            CacheFault::Filemap => {
                if !self.sync_mmap_readahead(vma, file, &mut cache, index, eof_pages) {
                    self.forget_vma_pages(vma);
                }
                true
            }
        };
        cache.add(index, false);
        let f = cache.pages.get(&index).cloned().expect("page just added");
        Ok((f, retried))
    }

    /// Linux: `do_sync_mmap_readahead()`. False where the model does not follow what it reads
    /// (the cache is then unknown).
    fn sync_mmap_readahead(
        &self,
        vma: &Vma,
        file: &Arc<OpenFile>,
        cache: &mut PageCache,
        index: u64,
        eof_pages: u64,
    ) -> bool {
        let f = vma.flags;
        let ra_pages = file.inode.sb.ra_pages;
        // VM_HUGEPAGE reads PMD-sized folios; VM_SEQ_READ the on-demand window.
        if f.contains(VmFlags::HUGEPAGE) || (f.contains(VmFlags::SEQ_READ) && ra_pages != 0) {
            cache.forget();
            return false;
        }
        if (f.contains(VmFlags::RAND_READ) && !f.contains(VmFlags::EXEC)) || ra_pages == 0 {
            return true;
        }
        let ra = &file.ra;
        let miss = ra.miss();
        if miss < MMAP_LOTSAMISS * 10 {
            ra.set_miss(miss + 1);
        }
        if ra.miss() > MMAP_LOTSAMISS {
            return true;
        }
        if f.contains(VmFlags::EXEC) {
            // exec_folio_order() is 0 on x86: the window from the page, within the VMA.
            let start = index.max(vma.pgoff);
            let end = (start + ra_pages).min(vma.pgoff + vma.pages());
            if end > start {
                cache.ra_order0(start, end - start, 0, eof_pages);
            }
        } else {
            let start = index.saturating_sub(ra_pages / 2);
            cache.ra_order0(start, ra_pages, ra_pages / 4, eof_pages);
        }
        true
    }
}
