//! The model's page-level state (which pages were faulted, guard markers, PFN pages) as runs,
//! and the budget that bounds it.
//!
//! A run is a stretch of pages in one state: anonymous frames made together (see
//! `crate::frames`), guard markers, PFN pages; a page-cache page or a huge page is a run of
//! its own. Touching, populating, locking or guarding a huge range of anonymous memory makes
//! one run, so it costs about what a page costs; a later change to part of a run splits it.
//!
//! So that a short trace cannot make the model take the host's memory or time, every address
//! space sharing a [`crate::Vfs`] draws on one [`PageBudget`]:
//!
//! - the model's own memory: at most [`crate::Settings::max_page_entries`] runs held;
//! - the model's own time: at most [`crate::Settings::max_pages_per_call`] pages handled one by
//!   one in a call (a run handled at once counts once);
//! - the work the kernel would do, for callers that will run the same trace on it: at most
//!   [`crate::Settings::max_present_pages`] pages present and
//!   [`crate::Settings::max_call_pages`] pages walked by one call, counting every page of a
//!   run (unlimited by default).
//!
//! Past any of them, the call stops where it is and the budget says why
//! ([`crate::AddressSpace::limit_exceeded`]): the address space is then no longer a faithful
//! model and must not be used further, and the trace runner refuses the trace (exit 2) naming
//! the limit.
//!
//! # Invariants
//!
//! - Runs do not overlap; each is page aligned and non-empty.
//! - An anonymous run of `n` pages holds exactly `n` frames; a page-cache or huge page run is
//!   one page long (a huge page is kept at its first address).
//! - `PageBudget::entries` and `PageBudget::pages` equal the sums over the live page maps
//!   drawing on it.

use crate::addr::{PAGE_SHIFT, PAGE_SIZE, PMD_SHIFT};
use crate::{AddressSpace, Page};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The page budget shared by the address spaces of one [`crate::Vfs`] (a process and its forks).
#[derive(Debug, Default)]
pub struct PageBudget {
    /// Runs held.
    entries: AtomicU64,
    /// Pages present (every page of every run).
    pages: AtomicU64,
    /// Set with `exceeded`, read on every page step.
    is_exceeded: AtomicBool,
    exceeded: Mutex<Option<String>>,
}

impl PageBudget {
    /// Runs of page state held by all the address spaces drawing on this budget.
    pub fn entries(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }

    /// Pages present in all the address spaces drawing on this budget.
    pub fn pages(&self) -> u64 {
        self.pages.load(Ordering::Relaxed)
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

/// The limits of a [`PageMap`], from the settings when it was made.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageLimits {
    pub entries: u64,
    pub present_pages: u64,
}

/// A stretch of pages in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Run {
    /// The address after the last page.
    pub end: u64,
    pub page: Page,
}

impl Run {
    fn pages(&self, start: u64) -> u64 {
        (self.end - start) >> PAGE_SHIFT
    }
}

/// One run as a range query sees it: clipped to the range asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunRef<'a> {
    /// The first address in the range.
    pub start: u64,
    /// The address after the last one in the range.
    pub end: u64,
    pub page: &'a Page,
    /// Pages of the run before `start` (the frame index offset of an anonymous run).
    pub offset: u64,
}

impl RunRef<'_> {
    /// Pages in the clipped stretch.
    pub fn pages(&self) -> u64 {
        (self.end - self.start) >> PAGE_SHIFT
    }
}

/// The present pages of one address space, as runs by start address, counted in its budget.
#[derive(Debug)]
pub(crate) struct PageMap {
    runs: BTreeMap<u64, Run>,
    budget: Arc<PageBudget>,
    limits: PageLimits,
    /// Pages present in this map (for the budget when it goes).
    present: u64,
    /// The 2 MiB regions (by `addr >> PMD_SHIFT`) that have a page table, as runs of regions
    /// (`first -> after the last`): made when an entry is first put there, kept when entries go
    /// (`MADV_DONTNEED` frees no page table), freed by [`PageMap::free_pgtables`] when an unmap
    /// leaves the region without VMAs.
    page_tables: BTreeMap<u64, u64>,
}

impl PageMap {
    pub fn new(budget: Arc<PageBudget>, limits: PageLimits) -> PageMap {
        PageMap { runs: BTreeMap::new(), budget, limits, present: 0, page_tables: BTreeMap::new() }
    }

    /// Counts runs and pages coming (positive) or going (negative); past a limit, the budget
    /// is exceeded.
    fn count(&mut self, entries: i64, pages: i64) {
        self.present = self.present.wrapping_add_signed(pages);
        let e = self.budget.entries.fetch_add(entries as u64, Ordering::Relaxed).wrapping_add(entries as u64);
        let p = self.budget.pages.fetch_add(pages as u64, Ordering::Relaxed).wrapping_add(pages as u64);
        if entries > 0 && e > self.limits.entries {
            self.budget.exceed(format!(
                "the model holds at most {} runs of page state (Settings::max_page_entries)",
                self.limits.entries
            ));
        }
        if pages > 0 && p > self.limits.present_pages {
            self.budget.exceed(format!(
                "at most {} pages ({} MiB) may be present at once (Settings::max_present_pages)",
                self.limits.present_pages,
                self.limits.present_pages >> 8
            ));
        }
    }

    /// Whether the 2 MiB region holding `addr` has a page table (`!pmd_none()`).
    pub fn has_page_table(&self, addr: u64) -> bool {
        let r = addr >> PMD_SHIFT;
        self.page_tables.range(..=r).next_back().is_some_and(|(_, &e)| e > r)
    }

    /// Whether any 2 MiB region that `[start, end)` touches has a page table: when none does,
    /// [`PageMap::free_pgtables`] has nothing to free there.
    pub fn has_page_tables_near(&self, start: u64, end: u64) -> bool {
        let (first, last) = (start >> PMD_SHIFT, end.saturating_sub(1) >> PMD_SHIFT);
        !self.page_tables.is_empty()
            && (self.has_page_table(start) || self.page_tables.range(first..=last).next().is_some())
    }

    /// Page tables for the 2 MiB regions of `[start, end)` (an entry put there, or a seeded
    /// VMA's pages known to be faulted).
    pub fn add_page_tables(&mut self, start: u64, end: u64) {
        let (mut first, mut last) = (start >> PMD_SHIFT, ((end - 1) >> PMD_SHIFT) + 1);
        if let Some((&s, &e)) = self.page_tables.range(..=first).next_back()
            && e >= first
        {
            if e >= last {
                return;
            }
            first = s;
        }
        let inside: Vec<(u64, u64)> = self.page_tables.range(first..=last).map(|(&s, &e)| (s, e)).collect();
        for (s, e) in inside {
            self.page_tables.remove(&s);
            last = last.max(e);
        }
        self.page_tables.insert(first, last);
    }

    /// Page tables for the 2 MiB regions of `[start, end)` that have one in `from`: what
    /// `copy_page_range()` makes in a fork's child for a VMA it copies (`copy_pmd_range()`
    /// allocates a table under every parent's one, entries or not).
    pub fn copy_page_tables(&mut self, from: &PageMap, start: u64, end: u64) {
        let (first, after) = (start >> PMD_SHIFT, ((end - 1) >> PMD_SHIFT) + 1);
        let lead = from.page_tables.range(..first).next_back().map(|(&s, &e)| (s, e));
        let runs: Vec<(u64, u64)> =
            lead.into_iter().chain(from.page_tables.range(first..after).map(|(&s, &e)| (s, e))).collect();
        for (s, e) in runs {
            let (s, e) = (s.max(first), e.min(after));
            if s < e {
                self.add_page_tables(s << PMD_SHIFT, e << PMD_SHIFT);
            }
        }
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
        let (first, after) = (addr >> PMD_SHIFT, ((end - 1) >> PMD_SHIFT) + 1);
        let touched: Vec<(u64, u64)> =
            self.page_tables.range(..after).rev().take_while(|(_, e)| **e > first).map(|(&s, &e)| (s, e)).collect();
        for (s, e) in touched {
            self.page_tables.remove(&s);
            if s < first {
                self.page_tables.insert(s, first);
            }
            if e > after {
                self.page_tables.insert(after, e);
            }
        }
    }

    /// The run holding `addr`: its start and the run.
    fn run_at(&self, addr: u64) -> Option<(u64, &Run)> {
        self.runs.range(..=addr).next_back().filter(|(_, r)| r.end > addr).map(|(&s, r)| (s, r))
    }

    /// Splits the run holding `at` (if it starts below it) in two at `at`.
    fn split(&mut self, at: u64) {
        let Some((&s, r)) = self.runs.range_mut(..at).next_back() else { return };
        if r.end <= at {
            return;
        }
        let tail = match &mut r.page {
            Page::Anon(a) => Page::Anon(crate::AnonPage {
                frames: a.frames.split_off((at - s) >> PAGE_SHIFT),
                young: a.young,
                wrprotected: a.wrprotected,
            }),
            Page::Guard => Page::Guard,
            Page::Pfn => Page::Pfn,
            Page::File(_) | Page::Huge(_) => unreachable!("a one-page run split inside"),
        };
        let end = r.end;
        r.end = at;
        self.runs.insert(at, Run { end, page: tail });
        self.count(1, 0);
    }

    /// Makes `[addr, addr+PAGE)` a run of its own (where something is present).
    fn isolate(&mut self, addr: u64) {
        self.split(addr);
        self.split(addr + PAGE_SIZE);
    }

    /// The state of the page at `addr`: for an anonymous run, the whole run's (use
    /// [`PageMap::get_mut`] to act on one of its frames).
    pub fn get(&self, page: &u64) -> Option<&Page> {
        self.run_at(*page).map(|(_, r)| &r.page)
    }

    /// The anonymous run holding `addr` and the index of `addr`'s frame among the run's.
    pub fn anon_at(&self, addr: u64) -> Option<(&crate::AnonPage, u64)> {
        match self.run_at(addr) {
            Some((s, Run { page: Page::Anon(a), .. })) => Some((a, (addr - s) >> PAGE_SHIFT)),
            _ => None,
        }
    }

    /// The page at `addr` alone, to change (its run is split around it).
    pub fn get_mut(&mut self, page: &u64) -> Option<&mut Page> {
        self.run_at(*page)?;
        self.isolate(*page);
        self.runs.get_mut(page).map(|r| &mut r.page)
    }

    /// Puts one page's state at `addr` (an anonymous one holds one frame), replacing what was
    /// there; a new entry counts in the budget.
    pub fn insert(&mut self, page: u64, p: Page) -> Option<Page> {
        debug_assert!(!matches!(&p, Page::Anon(a) if a.frames.len() != 1), "one frame a page");
        let old = self.take(&page);
        self.add_page_tables(page, page + PAGE_SIZE);
        self.runs.insert(page, Run { end: page + PAGE_SIZE, page: p });
        self.count(1, 1);
        old
    }

    /// Puts a run over `[start, end)`, where nothing is present (an anonymous one holds one frame
    /// a page; a page-cache or huge page is not put this way).
    pub fn insert_run(&mut self, start: u64, end: u64, p: Page) {
        debug_assert!(start < end && self.range(start, end).next().is_none(), "a run over present pages");
        debug_assert!(match &p {
            Page::Anon(a) => a.frames.len() == (end - start) >> PAGE_SHIFT,
            Page::Guard | Page::Pfn => true,
            Page::File(_) | Page::Huge(_) => end - start == PAGE_SIZE,
        });
        self.add_page_tables(start, end);
        self.runs.insert(start, Run { end, page: p });
        self.count(1, ((end - start) >> PAGE_SHIFT) as i64);
    }

    /// Takes a page's entry to move it elsewhere (`move_ptes()`: the bits go with it).
    pub fn take(&mut self, page: &u64) -> Option<Page> {
        self.run_at(*page)?;
        self.isolate(*page);
        let old = self.runs.remove(page)?;
        self.count(-1, -1);
        Some(old.page)
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
        if let Some(p) = &old {
            zap_effects(p, recency);
        }
        old
    }

    /// Removes the runs of `[start, end)` as [`PageMap::zap`] does each page, keeping guard
    /// markers when `keep_guards` (what `MADV_DONTNEED` and truncation leave).
    pub fn zap_range(&mut self, start: u64, end: u64, recency: bool, keep_guards: bool) {
        for (_, r) in self.take_runs(start, end, |r| keep_guards && r.page == Page::Guard) {
            zap_effects(&r.page, recency);
        }
    }

    /// Removes the guard markers of `[start, end)` (`MADV_GUARD_REMOVE`).
    pub fn remove_guards(&mut self, start: u64, end: u64) {
        self.take_runs(start, end, |r| r.page != Page::Guard);
    }

    /// Takes the runs of `[start, end)` out (split at the edges), in order.
    pub fn take_range(&mut self, start: u64, end: u64) -> Vec<(u64, Run)> {
        self.take_runs(start, end, |_| false)
    }

    /// Splits the runs at `start` and `end` where something is present between them; false
    /// when nothing is.
    fn split_around(&mut self, start: u64, end: u64) -> bool {
        if start >= end || self.range(start, end).next().is_none() {
            return false;
        }
        self.split(start);
        self.split(end);
        true
    }

    /// Takes the runs of `[start, end)` that `keep` does not keep out of the map, in order.
    fn take_runs(&mut self, start: u64, end: u64, keep: impl Fn(&Run) -> bool) -> Vec<(u64, Run)> {
        if !self.split_around(start, end) {
            return Vec::new();
        }
        let keys: Vec<u64> = self.runs.range(start..end).filter(|(_, r)| !keep(r)).map(|(&s, _)| s).collect();
        let mut out = Vec::with_capacity(keys.len());
        for s in keys {
            if let Some(r) = self.runs.remove(&s) {
                self.count(-1, -(r.pages(s) as i64));
                out.push((s, r));
            }
        }
        out
    }

    /// Puts back runs taken by [`PageMap::take_range`], each moved by `shift` bytes (wrapping:
    /// a move down is a shift by its two's complement), where nothing is present.
    pub fn put_runs(&mut self, runs: Vec<(u64, Run)>, shift: u64) {
        for (s, r) in runs {
            let (s, end) = (s.wrapping_add(shift), r.end.wrapping_add(shift));
            self.insert_run(s, end, r.page);
        }
    }

    /// Applies `f` to every run in `[start, end)` (split at the edges first), in order.
    pub fn update_range(&mut self, start: u64, end: u64, mut f: impl FnMut(u64, &mut Run)) {
        if !self.split_around(start, end) {
            return;
        }
        for (&s, r) in self.runs.range_mut(start..end) {
            f(s, r);
        }
    }

    /// The runs that meet `[start, end)`, clipped to it, in order.
    pub fn range(&self, start: u64, end: u64) -> impl Iterator<Item = RunRef<'_>> + '_ {
        let first = self.run_at(start).map_or(start, |(s, _)| s);
        self.runs.range(first..end.max(first)).filter_map(move |(&s, r)| {
            let (a, b) = (s.max(start), r.end.min(end));
            (a < b).then_some(RunRef { start: a, end: b, page: &r.page, offset: (a - s) >> PAGE_SHIFT })
        })
    }

    /// Every run, in order.
    pub fn iter(&self) -> impl Iterator<Item = RunRef<'_>> + '_ {
        self.runs.iter().map(|(&s, r)| RunRef { start: s, end: r.end, page: &r.page, offset: 0 })
    }

    /// Checks the runs: ordered, not overlapping, page aligned, non-empty; an anonymous run
    /// holds a frame a page; a page-cache or huge page run is one page.
    pub fn check(&self) -> Result<(), String> {
        let mut prev_end = 0;
        let mut pages = 0;
        for (&s, r) in &self.runs {
            if s < prev_end || s >= r.end || s % PAGE_SIZE != 0 || r.end % PAGE_SIZE != 0 {
                return Err(format!("page run {s:#x}-{:#x} is empty, unaligned or overlaps the one before", r.end));
            }
            let n = r.pages(s);
            let fits = match &r.page {
                Page::Anon(a) => a.frames.len() == n,
                Page::Guard | Page::Pfn => true,
                Page::File(_) | Page::Huge(_) => n == 1,
            };
            if !fits {
                return Err(format!("page run {s:#x}-{:#x} holds a state of another size", r.end));
            }
            prev_end = r.end;
            pages += n;
        }
        if pages != self.present {
            return Err(format!("the page map counts {} pages present, its runs hold {pages}", self.present));
        }
        Ok(())
    }

    /// The budget this map draws on.
    pub fn budget(&self) -> &Arc<PageBudget> {
        &self.budget
    }
}

/// What a zap does beyond removing an entry: a page-cache entry's bits go to its folio.
fn zap_effects(p: &Page, recency: bool) {
    if let Page::File(f) = p {
        if f.dirty {
            f.folio.mark_dirty();
        }
        match f.young {
            Some(true) if recency => f.folio.referenced.mark_accessed(),
            None if recency => f.folio.referenced.forget_referenced(),
            _ => {}
        }
    }
}

impl Clone for PageMap {
    fn clone(&self) -> PageMap {
        let mut m = PageMap {
            runs: self.runs.clone(),
            budget: self.budget.clone(),
            limits: self.limits,
            present: 0,
            page_tables: self.page_tables.clone(),
        };
        m.count(self.runs.len() as i64, self.present as i64);
        m
    }
}

impl Drop for PageMap {
    fn drop(&mut self) {
        self.budget.entries.fetch_sub(self.runs.len() as u64, Ordering::Relaxed);
        self.budget.pages.fetch_sub(self.present, Ordering::Relaxed);
    }
}

impl AddressSpace {
    /// Starts the page walk of a call (see [`crate::Settings::max_pages_per_call`] and
    /// [`crate::Settings::max_call_pages`]).
    pub(crate) fn begin_page_walk(&mut self) {
        self.page_steps = 0;
        self.call_pages = 0;
    }

    /// One page of a page-by-page walk; false when the walk must stop because a limit of the
    /// page budget is exceeded.
    pub(crate) fn page_step(&mut self) -> bool {
        self.page_steps += 1;
        if self.page_steps > self.settings.max_pages_per_call {
            let n = self.settings.max_pages_per_call;
            self.pages.budget().exceed(format!(
                "one call handles at most {n} pages ({} MiB) one by one in the model (Settings::max_pages_per_call)",
                n >> 8
            ));
        }
        self.run_step(1)
    }

    /// A run of `pages` pages handled at once (one step of the model's walk, but every page
    /// of the kernel's); false when the walk must stop.
    pub(crate) fn run_step(&mut self, pages: u64) -> bool {
        self.call_pages = self.call_pages.saturating_add(pages);
        if self.call_pages > self.settings.max_call_pages {
            let n = self.settings.max_call_pages;
            self.pages
                .budget()
                .exceed(format!("one call may walk at most {n} pages ({} MiB) (Settings::max_call_pages)", n >> 8));
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
