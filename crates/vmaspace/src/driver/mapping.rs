//! An inode's page cache and an open file's read-ahead state (Linux: `struct address_space`'s
//! pages, `struct file_ra_state`): the data; what faults do with it is `crate::filemap`'s.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// `PG_referenced` of a frame as far as the model knows it.
pub(crate) const UNREFERENCED: u8 = 0;
pub(crate) const REFERENCED: u8 = 1;
pub(crate) const REFERENCED_UNKNOWN: u8 = 2;

/// Linux: `folio_mark_accessed()`: the first call sets `PG_referenced`; a later one activates
/// the folio and clears it, unless the folio is unevictable (mlocked, which depends on when the
/// mlock batch drains), so from then on the model does not know.
pub(crate) fn accessed(r: u8) -> u8 {
    if r == UNREFERENCED { REFERENCED } else { REFERENCED_UNKNOWN }
}

pub(crate) fn known(r: u8) -> Option<bool> {
    match r {
        UNREFERENCED => Some(false),
        REFERENCED => Some(true),
        _ => None,
    }
}

/// One folio's `PG_referenced`, as far as the model knows it (a page-cache page's).
#[derive(Debug, Default)]
pub(crate) struct ReferencedBit(std::sync::atomic::AtomicU8);

impl ReferencedBit {
    /// Linux: `folio_mark_accessed()` (see `crate::frames::AnonFrames::mark_accessed`).
    pub fn mark_accessed(&self) {
        let r = self.0.load(std::sync::atomic::Ordering::Relaxed);
        self.0.store(accessed(r), std::sync::atomic::Ordering::Relaxed);
    }

    /// A move between LRU lists through a per-CPU batch (see
    /// `crate::frames::AnonFrames::forget_referenced`).
    pub fn forget_referenced(&self) {
        self.0.store(REFERENCED_UNKNOWN, std::sync::atomic::Ordering::Relaxed);
    }

    /// `Some(PG_referenced)` where the model knows it.
    pub fn referenced(&self) -> Option<bool> {
        known(self.0.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// A page of an inode's page cache (a small folio).
#[derive(Debug, Default)]
pub(crate) struct CacheFolio {
    /// `PG_referenced`.
    pub referenced: ReferencedBit,
    /// `PG_dirty`: written through a shared mapping (shmem pages stay dirty: nothing writes
    /// them back).
    pub(crate) dirty: AtomicBool,
    /// `PG_readahead`: fault-around passes it by, so that the fault on it reads ahead.
    pub(crate) readahead: AtomicBool,
    /// Removed from the cache (truncated, hole punched), so unmapped from every mapping.
    pub(crate) evicted: AtomicBool,
    /// Not `PG_uptodate`: a page a file system put in the cache without reading it (ext4
    /// zeroing the end of a block that is a hole). Fault-around passes it by
    /// (`next_uptodate_folio()`); a fault on it reads it and is retried (`page_not_uptodate`).
    pub(crate) not_uptodate: AtomicBool,
}

impl CacheFolio {
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Relaxed)
    }
    pub(crate) fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }
    pub(crate) fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Relaxed)
    }
}

/// An inode's cached pages (Linux: `struct address_space`'s `i_pages`).
#[derive(Debug, Default)]
pub(crate) struct PageCache {
    pub(crate) pages: BTreeMap<u64, Arc<CacheFolio>>,
    /// The cache holds pages the model did not see arrive, or lost track of (asynchronous
    /// read-ahead, reclaim): fault-around and counters over it are unknown.
    pub(crate) unknown: bool,
    /// The file system allocates its pages (shmem: `CacheFault::Allocate`) rather than reading
    /// them from a disk.
    pub(crate) allocates: bool,
    /// Every shrink of the file, numbered from 1, with the size in pages it left: a truncation
    /// unmaps private copies of the pages past it from every process (`unmap_mapping_range()`
    /// with `even_cows`), which the model applies lazily, each copy knowing which truncations
    /// came after it ([`PageCache::truncated_since`]).
    pub(crate) truncations: Vec<(u64, u64)>,
    /// ext4's `EXT4_STATE_DA_ALLOC_CLOSE`: truncated to nothing, so the next release of a file
    /// description writes the dirty pages back ([`crate::driver::SuperBlock::auto_da_alloc`]).
    pub(crate) write_back_on_release: bool,
}

impl PageCache {
    /// The number of truncations so far (what a private copy made now remembers).
    pub(crate) fn generation(&self) -> u64 {
        self.truncations.last().map_or(0, |t| t.0)
    }

    /// Whether a truncation after generation `since` cut the file at or below page `index`.
    pub(crate) fn truncated_since(&self, since: u64, index: u64) -> bool {
        self.truncations.iter().rev().take_while(|t| t.0 > since).any(|t| t.1 <= index)
    }

    /// `filemap_flush()` as far as the mappings see it: every dirty page is written back, and
    /// `folio_mkclean()` write-protects and cleans the entries that map it (the next write
    /// through a shared mapping faults and dirties it again).
    pub(crate) fn write_back(&mut self) {
        for f in self.pages.values() {
            f.dirty.store(false, Ordering::Relaxed);
        }
    }

    pub(crate) fn forget(&mut self) {
        self.unknown = true;
    }
    pub(crate) fn is_unknown(&self) -> bool {
        self.unknown
    }

    /// Linux: `truncate_setsize()` to `size` bytes: the pages past the new end leave the cache;
    /// shmem zeroes the tail of the page that holds the new end, dirtying it
    /// (`shmem_undo_range()`; ext4 zeroes only blocks it has on disk, which a hole is not).
    pub(crate) fn truncate(&mut self, size: u64) {
        let page = crate::addr::PAGE_SIZE;
        self.truncations.push((self.generation() + 1, size.div_ceil(page)));
        self.evict(size.div_ceil(page), u64::MAX);
        if self.allocates
            && !size.is_multiple_of(page)
            && let Some(f) = self.pages.get(&(size / page))
        {
            f.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// The page holding byte `at` is read into the cache (or found there) by a file system
    /// that zeroes the end of a block (`SuperBlock::zeroes_eof_block`).
    pub(crate) fn zero_eof_block(&mut self, at: u64) {
        let page = crate::addr::PAGE_SIZE;
        // `__ext4_block_zero_page_range()` grabs the page (`FGP_CREAT`) and leaves a hole's
        // block alone: a page it had to create is not read, so not uptodate. (In a trace a
        // block is on disk only while its page is cached.) It asks for it `FGP_ACCESSED`: a
        // new folio starts referenced (`__folio_set_referenced()`), a cached one is marked
        // accessed (`folio_mark_accessed()`), which is the same step from where each starts.
        if at.is_multiple_of(page) {
            return;
        }
        let index = at / page;
        if self.add(index, false) {
            self.pages[&index].not_uptodate.store(true, Ordering::Relaxed);
        }
        self.pages[&index].referenced.mark_accessed();
    }

    /// Linux: `truncate_inode_pages_range()`: pages `[from, to)` leave the cache (and every
    /// mapping: `unmap_mapping_range()`).
    pub(crate) fn evict(&mut self, from: u64, to: u64) {
        let gone: Vec<u64> = self.pages.range(from..to).map(|(i, _)| *i).collect();
        for i in gone {
            if let Some(f) = self.pages.remove(&i) {
                f.evicted.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Adds a new page at `index` unless one is there (`filemap_add_folio()`); true if added.
    pub(crate) fn add(&mut self, index: u64, readahead: bool) -> bool {
        if self.pages.contains_key(&index) {
            return false;
        }
        let f = CacheFolio::default();
        f.readahead.store(readahead, Ordering::Relaxed);
        self.pages.insert(index, Arc::new(f));
        true
    }

    /// Linux: `page_cache_ra_order()` with order 0 (mmap read-around asks for small folios):
    /// new pages from `start` up to the first one already cached, then the rest of the window
    /// through `do_page_cache_ra()`, whose mark is placed from where it starts.
    pub(crate) fn ra_order0(&mut self, start: u64, size: u64, async_size: u64, eof_pages: u64) {
        let limit = (eof_pages - 1).min(start + size - 1);
        let mark = start + size - async_size;
        let mut index = start;
        while index <= limit {
            if !self.add(index, index == mark) {
                if size > index - start {
                    self.do_page_cache_ra(index, size - (index - start), async_size, eof_pages);
                }
                return;
            }
            index += 1;
        }
    }

    /// Linux: `do_page_cache_ra()` → `page_cache_ra_unbounded()`: pages not cached yet are
    /// added, the one `lookahead` before the end marked.
    fn do_page_cache_ra(&mut self, index: u64, nr: u64, lookahead: u64, eof_pages: u64) {
        if eof_pages == 0 || index > eof_pages - 1 {
            return;
        }
        let nr = nr.min(eof_pages - 1 - index + 1);
        let mark = (lookahead <= nr).then(|| index + nr - lookahead);
        for i in index..index + nr {
            self.add(i, Some(i) == mark);
        }
    }
}

/// A file's read-ahead state (Linux: `struct file_ra_state`, the part mmap faults use).
#[derive(Debug, Default)]
pub struct FileRaState {
    mmap_miss: AtomicU32,
}

impl FileRaState {
    pub(crate) fn miss(&self) -> u32 {
        self.mmap_miss.load(Ordering::Relaxed)
    }
    pub(crate) fn set_miss(&self, v: u32) {
        self.mmap_miss.store(v, Ordering::Relaxed);
    }
}
