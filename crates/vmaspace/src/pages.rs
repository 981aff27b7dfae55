//! The model's page-level state (which pages were faulted, guard markers, PFN pages) and the
//! budget that bounds it.
//!
//! Linux does per-page work where a process touches, populates, locks or guards memory, and so
//! does the model: its cost follows the pages a trace makes present, not the VMAs. So that a
//! short trace cannot make the model take the host's memory or time (a `touch` over 64 TiB),
//! every address space sharing a [`crate::Vfs`] draws on one [`PageBudget`]: at most
//! [`crate::Settings::max_tracked_pages`] pages held, at most
//! [`crate::Settings::max_pages_per_call`] pages walked by one call. Past either, the call stops
//! where it is and the budget says why ([`crate::AddressSpace::limit_exceeded`]): the address
//! space is then no longer a faithful model and must not be used further, and the trace runner
//! refuses the trace (exit 2) naming the limit.
//!
//! # Invariants
//!
//! - `PageBudget::tracked` equals the sum of the sizes of the live page maps drawing on it.

use crate::addr::PMD_SHIFT;
use crate::{AddressSpace, Page};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeBounds;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The page budget shared by the address spaces of one [`crate::Vfs`] (a process and its forks).
#[derive(Debug, Default)]
pub struct PageBudget {
    tracked: AtomicU64,
    /// Set with `exceeded`, read on every page step.
    is_exceeded: AtomicBool,
    exceeded: Mutex<Option<String>>,
}

impl PageBudget {
    /// Pages held by all the address spaces drawing on this budget.
    pub fn tracked(&self) -> u64 {
        self.tracked.load(Ordering::Relaxed)
    }

    /// Why the budget was exceeded, if it was.
    pub fn exceeded(&self) -> Option<String> {
        self.exceeded.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn is_exceeded(&self) -> bool {
        self.is_exceeded.load(Ordering::Relaxed)
    }

    pub(crate) fn exceed(&self, why: String) {
        self.exceeded.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(why);
        self.is_exceeded.store(true, Ordering::Relaxed);
    }
}

/// The present pages of one address space, by page address, counted in its budget.
#[derive(Debug)]
pub(crate) struct PageMap {
    map: BTreeMap<u64, Page>,
    budget: Arc<PageBudget>,
    /// `Settings::max_tracked_pages` when the map was made.
    limit: u64,
    /// The 2 MiB regions (by `addr >> PMD_SHIFT`) that have a page table: made when an entry
    /// is first put there, kept when entries go (`MADV_DONTNEED` frees no page table), freed by
    /// [`PageMap::free_pgtables`] when an unmap leaves the region without VMAs.
    page_tables: BTreeSet<u64>,
}

impl PageMap {
    pub fn new(budget: Arc<PageBudget>, limit: u64) -> PageMap {
        PageMap { map: BTreeMap::new(), budget, limit, page_tables: BTreeSet::new() }
    }

    /// Whether the 2 MiB region holding `addr` has a page table (`!pmd_none()`).
    pub fn has_page_table(&self, addr: u64) -> bool {
        self.page_tables.contains(&(addr >> PMD_SHIFT))
    }

    /// Whether any 2 MiB region that `[start, end)` touches has a page table: when none does,
    /// [`PageMap::free_pgtables`] has nothing to free there.
    pub fn has_page_tables_near(&self, start: u64, end: u64) -> bool {
        !self.page_tables.is_empty()
            && self.page_tables.range(start >> PMD_SHIFT..=(end.saturating_sub(1) >> PMD_SHIFT)).next().is_some()
    }

    /// Linux: `free_pgd_range()` at the page-table level, as `free_pgtables()` calls it for an
    /// unmapped range `[start, end)` between the VMA ending at `floor` and the one starting at
    /// `ceiling` (0: none above): the page tables of the 2 MiB regions no remaining VMA shares.
    pub fn free_pgtables(&mut self, start: u64, end: u64, floor: u64, ceiling: u64) {
        let pmd = crate::addr::PMD_SIZE;
        let mut addr = start & !(pmd - 1);
        if addr < floor {
            addr += pmd;
        }
        let ceiling = ceiling & !(pmd - 1);
        let mut end = end;
        if end.wrapping_sub(1) > ceiling.wrapping_sub(1) {
            end = end.wrapping_sub(pmd);
        }
        if addr > end.wrapping_sub(1) || end == 0 {
            return;
        }
        let (first, last) = (addr >> PMD_SHIFT, (end - 1) >> PMD_SHIFT);
        let gone: Vec<u64> = self.page_tables.range(first..=last).copied().collect();
        for r in gone {
            self.page_tables.remove(&r);
        }
    }

    pub fn get(&self, page: &u64) -> Option<&Page> {
        self.map.get(page)
    }

    /// Inserts a page; a new one counts in the budget (past its limit, the budget is exceeded).
    pub fn insert(&mut self, page: u64, p: Page) -> Option<Page> {
        self.page_tables.insert(page >> PMD_SHIFT);
        let old = self.map.insert(page, p);
        if old.is_none() {
            let n = self.budget.tracked.fetch_add(1, Ordering::Relaxed) + 1;
            if n > self.limit {
                self.budget.exceed(format!(
                    "the model holds at most {} pages ({} MiB) of page state (Settings::max_tracked_pages)",
                    self.limit,
                    self.limit >> 8
                ));
            }
        }
        old
    }

    pub fn get_mut(&mut self, page: &u64) -> Option<&mut Page> {
        self.map.get_mut(page)
    }

    /// Takes a page's entry to move it elsewhere (`move_ptes()`: the bits go with it).
    pub fn take(&mut self, page: &u64) -> Option<Page> {
        let old = self.map.remove(page);
        if old.is_some() {
            self.budget.tracked.fetch_sub(1, Ordering::Relaxed);
        }
        old
    }

    /// Removes a page's entry as a zap does in a VMA with recency (see [`PageMap::zap`]).
    pub fn remove(&mut self, page: &u64) -> Option<Page> {
        self.zap(page, true)
    }

    /// Removes a page's entry; an entry of a page-cache page passes its dirty bit to the folio,
    /// and its accessed bit too where the VMA keeps recency (`zap_present_folio_ptes()`:
    /// `folio_mark_dirty()`, and `folio_mark_accessed()` only if `vma_has_recency()`, which
    /// `VM_SEQ_READ`/`VM_RAND_READ` VMAs do not).
    pub fn zap(&mut self, page: &u64, recency: bool) -> Option<Page> {
        let old = self.take(page);
        if let Some(Page::File(f)) = &old {
            if f.dirty {
                f.folio.mark_dirty();
            }
            match f.young {
                Some(true) if recency => f.folio.referenced.mark_accessed(),
                None if recency => f.folio.referenced.forget_referenced(),
                _ => {}
            }
        }
        old
    }

    pub fn range<R: RangeBounds<u64>>(&self, r: R) -> std::collections::btree_map::Range<'_, u64, Page> {
        self.map.range(r)
    }

    pub fn iter(&self) -> std::collections::btree_map::Iter<'_, u64, Page> {
        self.map.iter()
    }

    /// The budget this map draws on.
    pub fn budget(&self) -> &Arc<PageBudget> {
        &self.budget
    }
}

impl Clone for PageMap {
    fn clone(&self) -> PageMap {
        self.budget.tracked.fetch_add(self.map.len() as u64, Ordering::Relaxed);
        PageMap {
            map: self.map.clone(),
            budget: self.budget.clone(),
            limit: self.limit,
            page_tables: self.page_tables.clone(),
        }
    }
}

impl Drop for PageMap {
    fn drop(&mut self) {
        self.budget.tracked.fetch_sub(self.map.len() as u64, Ordering::Relaxed);
    }
}

impl AddressSpace {
    /// Starts the per-page walk of a call (see [`crate::Settings::max_pages_per_call`]).
    pub(crate) fn begin_page_walk(&mut self) {
        self.page_steps = 0;
    }

    /// One page of a per-page walk; false when the walk must stop because a limit of the page
    /// budget is exceeded.
    pub(crate) fn page_step(&mut self) -> bool {
        self.page_steps += 1;
        if self.page_steps > self.settings.max_pages_per_call {
            let n = self.settings.max_pages_per_call;
            self.pages.budget().exceed(format!(
                "one call walks at most {n} pages ({} MiB) in the model (Settings::max_pages_per_call)",
                n >> 8
            ));
        }
        !self.pages.budget().is_exceeded()
    }

    /// Why this address space stopped being a faithful model, if it did: a call went past one
    /// of the page budget's limits ([`crate::pages`]) and stopped part way. The address space
    /// (and every one sharing its [`crate::Vfs`]) should then be dropped.
    pub fn limit_exceeded(&self) -> Option<String> {
        self.pages.budget().exceeded()
    }
}
