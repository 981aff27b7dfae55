//! hugetlb: the huge page pools, the reservations and page cache of hugetlbfs inodes, the
//! reservations of private mappings, and huge page faults (Linux: `mm/hugetlb.c`,
//! `fs/hugetlbfs/inode.c`).
//!
//! What is modelled is what a process can observe: whether `mmap` finds enough pages to reserve
//! (`ENOMEM`), whether a fault finds a page (`SIGBUS`), and the shape of the mappings. The pools
//! are global ([`HugePools`], shared by every process of a [`crate::Vfs`]); pages and
//! reservations go back to them when the last user goes, as Linux's reference counts make them.
//!
//! Reservations follow Linux's rules:
//! * a shared mapping reserves, in the inode's reservation map, the huge pages of its range
//!   that no earlier mapping or fault covered (`region_chg`); they stay with the inode until it
//!   is truncated or freed;
//! * a private mapping reserves its whole range in a map of its own (`HPAGE_RESV_OWNER`),
//!   shared by the pieces it is split into; a fault consumes the page's reservation; unmapping
//!   returns what was not consumed; a fork child has none;
//! * `MAP_NORESERVE` reserves nothing: its faults take unreserved free pages or raise SIGBUS.
//!
//! When a copy on write finds the pool empty, the mapping that owns the reservations keeps the
//! page and takes it away from its forks (`unmap_ref_private`); a fork's mapping of that file
//! then raises SIGBUS on every fault that needs a page (`HPAGE_RESV_UNMAPPED`).
//!
//! Not modelled: surplus pages (`nr_overcommit_hugepages` is 0 here), subpools (hugetlbfs
//! `size=` mount options), cgroups.

use crate::addr::PAGE_SHIFT;
use crate::driver::PrivateData;
use crate::driver::mapping::CacheFolio;
use crate::driver::{Access, FaultSignal};
use crate::errno::Errno;
use crate::filemap::FilePage;
use crate::flags::VmFlags;
use crate::{AddressSpace, Page};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// A huge page size (`struct hstate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HugeSize {
    /// 2 MiB (PMD), the default.
    Pmd,
    /// 1 GiB (PUD).
    Pud,
}

impl HugeSize {
    /// Linux: `hstate_sizelog()`: the size whose log2 is `log`, 0 meaning the default.
    pub fn from_log(log: u64) -> Option<HugeSize> {
        match log {
            0 | 21 => Some(HugeSize::Pmd),
            30 => Some(HugeSize::Pud),
            _ => None,
        }
    }
    /// log2 of the size in bytes.
    pub fn shift(self) -> u32 {
        match self {
            HugeSize::Pmd => 21,
            HugeSize::Pud => 30,
        }
    }
    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        1 << self.shift()
    }
    /// Small pages per huge page.
    pub fn small_pages(self) -> u64 {
        self.bytes() >> PAGE_SHIFT
    }
    /// `ALIGN(len, huge_page_size)`, None when it overflows.
    pub fn align_up(self, len: u64) -> Option<u64> {
        Some(len.checked_add(self.bytes() - 1)? & !(self.bytes() - 1))
    }
    /// Whether `x` is a multiple of the size.
    pub fn is_aligned(self, x: u64) -> bool {
        x & (self.bytes() - 1) == 0
    }
    fn index(self) -> usize {
        match self {
            HugeSize::Pmd => 0,
            HugeSize::Pud => 1,
        }
    }
}

/// One pool's counters (`struct hstate`'s `nr_huge_pages`, `free_huge_pages`,
/// `resv_huge_pages`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HugePool {
    /// `nr_hugepages`: pages in the pool.
    pub total: u64,
    /// Pages no mapping holds (reserved ones included).
    pub free: u64,
    /// Free pages promised to mappings.
    pub resv: u64,
}

/// The huge page pools of the machine.
///
/// # Invariants
/// * `resv <= free <= total` in each pool.
#[derive(Debug, Default)]
pub struct HugePools {
    pools: Mutex<[HugePool; 2]>,
}

impl HugePools {
    fn lock(&self) -> MutexGuard<'_, [HugePool; 2]> {
        self.pools.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the pool of `size`, locked.
    fn with<R>(&self, size: HugeSize, f: impl FnOnce(&mut HugePool) -> R) -> R {
        f(&mut self.lock()[size.index()])
    }

    /// Sets `nr_hugepages` of a pool: pages in use stay, the free count follows.
    pub fn set_nr_hugepages(&self, size: HugeSize, n: u64) {
        self.with(size, |p| {
            let in_use = p.total - p.free;
            let keep_free = n.saturating_sub(in_use).max(p.resv);
            p.free = keep_free;
            p.total = in_use + keep_free;
        })
    }

    /// A pool's counters.
    pub fn pool(&self, size: HugeSize) -> HugePool {
        self.lock()[size.index()]
    }

    /// Linux: `hugetlb_acct_memory(h, n)` with no surplus pages: promises `n` free pages.
    fn reserve(&self, size: HugeSize, n: u64) -> Result<(), Errno> {
        self.with(size, |p| {
            if p.resv + n > p.free {
                return Err(Errno::ENOMEM);
            }
            p.resv += n;
            Ok(())
        })
    }

    /// Linux: `hugetlb_acct_memory(h, -n)`.
    fn unreserve(&self, size: HugeSize, n: u64) {
        self.with(size, |p| p.resv = p.resv.saturating_sub(n));
    }

    /// Linux: `dequeue_hugetlb_folio_vma()`: a free page, from a reservation or from the pages
    /// nobody was promised.
    fn take(&self, size: HugeSize, reserved: bool) -> bool {
        self.with(size, |p| {
            if reserved && p.resv > 0 {
                p.resv -= 1;
            } else if p.free == p.resv {
                return false;
            }
            p.free -= 1;
            true
        })
    }

    /// Linux: `free_huge_folio()`.
    fn give_back(&self, size: HugeSize) {
        self.with(size, |p| p.free = (p.free + 1).min(p.total));
    }

    /// Checks the pool invariants.
    pub fn validate(&self) -> Result<(), String> {
        for p in self.lock().iter() {
            if p.resv > p.free || p.free > p.total {
                return Err(format!("huge page pool out of balance: {p:?}"));
            }
        }
        Ok(())
    }
}

/// A huge page taken from a pool by a private mapping; it goes back when the last process
/// mapping it lets go (forks share it until one of them writes).
pub(crate) struct HugePage {
    size: HugeSize,
    pools: Arc<HugePools>,
    /// Taken away from this handle's holders by the reservation owner (`unmap_ref_private`):
    /// the page lives on in the owner's new handle.
    taken_away: AtomicBool,
}

impl HugePage {
    /// Takes a page from the pool (with or without a reservation).
    fn take(pools: &Arc<HugePools>, size: HugeSize, reserved: bool) -> Option<Arc<HugePage>> {
        pools.take(size, reserved).then(|| HugePage::handle(pools, size))
    }

    fn handle(pools: &Arc<HugePools>, size: HugeSize) -> Arc<HugePage> {
        Arc::new(HugePage { size, pools: pools.clone(), taken_away: AtomicBool::new(false) })
    }

    /// Linux: `unmap_ref_private()`: the page becomes the caller's alone; every other holder's
    /// handle goes dead.
    fn take_away(&self) -> Arc<HugePage> {
        self.taken_away.store(true, Ordering::Relaxed);
        HugePage::handle(&self.pools, self.size)
    }

    pub(crate) fn is_taken_away(&self) -> bool {
        self.taken_away.load(Ordering::Relaxed)
    }
}

impl Drop for HugePage {
    fn drop(&mut self) {
        if !self.is_taken_away() {
            self.pools.give_back(self.size);
        }
    }
}

/// What a fork's private hugetlb mapping keeps in `vm_private_data` (where Linux keeps its
/// `HPAGE_RESV_*` flags): whether the reservation owner took a page away from it
/// (`HPAGE_RESV_UNMAPPED`), after which its faults raise SIGBUS. The file's inode lists the
/// marks of its forks' mappings, as Linux finds them through the file's `i_mmap`.
#[derive(Debug, Default)]
pub(crate) struct ForkMark {
    unmapped: AtomicBool,
}

impl ForkMark {
    fn of(data: Option<&PrivateData>) -> Option<&ForkMark> {
        data.and_then(|d| d.downcast_ref::<ForkMark>())
    }
    fn is_unmapped(data: Option<&PrivateData>) -> bool {
        ForkMark::of(data).is_some_and(|m| m.unmapped.load(Ordering::Relaxed))
    }
}

impl fmt::Debug for HugePage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HugePage({:?})", self.size)
    }
}

/// Pages are the same page only if they are one object.
impl PartialEq for HugePage {
    fn eq(&self, other: &HugePage) -> bool {
        std::ptr::eq(self, other)
    }
}
impl Eq for HugePage {}

/// The huge-page state of a hugetlbfs inode: its reservation map (`resv_map` regions: pages
/// reserved, or faulted in without a reservation) and its page cache, whose folios the page
/// tables of shared mappings (and private ones that read them) map: their mapcount is what
/// smaps tells `Shared_Hugetlb` from `Private_Hugetlb` by.
#[derive(Debug, Default)]
struct InodeCache {
    regions: BTreeSet<u64>,
    pages: BTreeMap<u64, Arc<CacheFolio>>,
}

/// What makes an inode a hugetlbfs one.
#[derive(Debug)]
pub struct HugetlbInode {
    /// The page size of the file system the inode is on.
    pub size: HugeSize,
    pools: Arc<HugePools>,
    cache: Mutex<InodeCache>,
    /// The marks of forks' private mappings of the file.
    forks: Mutex<Vec<Weak<ForkMark>>>,
}

impl HugetlbInode {
    /// Linux: `HUGETLBFS_I()`: the huge-page state of a hugetlbfs inode, kept in its driver
    /// state (None for every other inode).
    pub fn of(inode: &crate::driver::Inode) -> Option<&HugetlbInode> {
        inode.private_as::<HugetlbInode>()
    }

    /// Linux: `hstate_file()`: the huge page size of a hugetlbfs file (`is_file_hugepages()`).
    pub fn page_size_of(file: &crate::driver::OpenFile) -> Option<HugeSize> {
        HugetlbInode::of(&file.inode).map(|h| h.size)
    }

    /// The huge-page state of a new, empty hugetlbfs inode whose pages come from `pools`.
    pub fn new(size: HugeSize, pools: Arc<HugePools>) -> HugetlbInode {
        HugetlbInode { size, pools, cache: Mutex::new(InodeCache::default()), forks: Mutex::default() }
    }

    /// Linux: `hugetlb_dup_vma_private()`: a fork's private mapping has no reservations; it
    /// gets a mark the owner can set.
    pub(crate) fn fork_mark(&self) -> PrivateData {
        let mark = Arc::new(ForkMark::default());
        let mut forks = self.forks.lock().unwrap_or_else(|p| p.into_inner());
        forks.retain(|w| w.strong_count() > 0);
        forks.push(Arc::downgrade(&mark));
        mark
    }

    /// Linux: `unmap_ref_private()`'s `HPAGE_RESV_UNMAPPED` on the forks' mappings.
    fn unmap_forks(&self) {
        let forks = self.forks.lock().unwrap_or_else(|p| p.into_inner());
        for mark in forks.iter().filter_map(Weak::upgrade) {
            mark.unmapped.store(true, Ordering::Relaxed);
        }
    }

    fn cache(&self) -> MutexGuard<'_, InodeCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Linux: `hugetlb_reserve_pages()` for a shared mapping: reserves the pages of
    /// `[from, to)` no region covers yet.
    fn reserve_shared(&self, from: u64, to: u64) -> Result<(), Errno> {
        let mut c = self.cache();
        let missing: Vec<u64> = (from..to).filter(|i| !c.regions.contains(i)).collect();
        self.pools.reserve(self.size, missing.len() as u64)?;
        c.regions.extend(missing);
        Ok(())
    }

    /// Linux: `remove_inode_hugepages()` + `hugetlb_unreserve_pages()` from huge page `from`
    /// on: frees the cached pages and returns the reservations no page consumed.
    pub fn truncate(&self, from: u64) {
        self.remove_pages(from, u64::MAX);
    }

    /// Linux: `hugetlb_vmdelete_list()`, `remove_inode_hugepages()` and
    /// `hugetlb_unreserve_pages()` over huge pages `[from, to)` (a truncation, or a hole
    /// punched): the cached pages leave every mapping (their entries are forgotten at the next
    /// look) and go back to the pool, and the reservations no page consumed are returned.
    pub fn remove_pages(&self, from: u64, to: u64) {
        if from >= to {
            return;
        }
        let mut c = self.cache();
        let mut pages = c.pages.split_off(&from);
        let mut kept = pages.split_off(&to);
        c.pages.append(&mut kept);
        let mut regions = c.regions.split_off(&from);
        let mut kept = regions.split_off(&to);
        c.regions.append(&mut kept);
        for folio in pages.values() {
            folio.evicted.store(true, Ordering::Relaxed);
            self.pools.give_back(self.size);
        }
        self.pools.unreserve(self.size, regions.iter().filter(|i| !pages.contains_key(i)).count() as u64);
    }
}

impl Drop for HugetlbInode {
    /// Linux: `hugetlbfs_evict_inode()`.
    fn drop(&mut self) {
        self.truncate(0);
    }
}

/// The reservation map of a private mapping (`HPAGE_RESV_OWNER`): the file's huge pages still
/// reserved for it. Kept in the VMA's `vm_private_data`, shared by the pieces of a split.
#[derive(Debug)]
pub struct ResvMap {
    size: HugeSize,
    pools: Arc<HugePools>,
    reserved: Mutex<BTreeSet<u64>>,
}

impl ResvMap {
    fn reserved(&self) -> MutexGuard<'_, BTreeSet<u64>> {
        self.reserved.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The map a private VMA's private data holds, if any.
    pub fn of(data: Option<&PrivateData>) -> Option<&ResvMap> {
        data.and_then(|d| d.downcast_ref::<ResvMap>())
    }

    /// Linux: `hugetlb_reserve_pages()` for a private mapping: the whole range, in a new map.
    fn reserve_private(inode: &HugetlbInode, from: u64, to: u64) -> Result<ResvMap, Errno> {
        inode.pools.reserve(inode.size, to - from)?;
        Ok(ResvMap { size: inode.size, pools: inode.pools.clone(), reserved: Mutex::new((from..to).collect()) })
    }

    /// Linux: `hugetlb_vm_op_close()`: returns the reservations no fault consumed in the
    /// file's huge pages `[from, to)`.
    pub fn release(&self, from: u64, to: u64) {
        let mut r = self.reserved();
        let gone: Vec<u64> = r.range(from..to).copied().collect();
        for i in &gone {
            r.remove(i);
        }
        self.pools.unreserve(self.size, gone.len() as u64);
    }

    /// Reserves one page again (after `MADV_DONTNEED` freed it).
    fn restore(&self, index: u64) {
        if self.pools.reserve(self.size, 1).is_ok() {
            self.reserved().insert(index);
        }
    }
}

/// Linux: `hugetlb_reserve_pages()`: reserves what a new mapping of huge pages `[from, to)`
/// needs. Returns the private reservation map to keep in the VMA, if it is one.
pub fn hugetlb_reserve_pages(
    inode: &HugetlbInode,
    from: u64,
    to: u64,
    flags: VmFlags,
) -> Result<Option<PrivateData>, Errno> {
    if flags.contains(VmFlags::NORESERVE) {
        return Ok(None);
    }
    if flags.contains(VmFlags::MAYSHARE) {
        inode.reserve_shared(from, to)?;
        return Ok(None);
    }
    Ok(Some(Arc::new(ResvMap::reserve_private(inode, from, to)?)))
}

impl AddressSpace {
    /// Linux: `hugetlb_fault()`: makes the huge page holding `addr` present for `access`. The
    /// VMA maps a hugetlbfs file (see [`hugetlb_inode`]).
    pub(crate) fn hugetlb_fault(&mut self, vma_start: u64, addr: u64, access: Access) -> Result<(), FaultSignal> {
        let vma = self.tree.get(vma_start).ok_or(FaultSignal::Sigsegv)?.clone();
        let file = vma.file.clone().ok_or(FaultSignal::Sigbus)?;
        let inode = HugetlbInode::of(&file.inode).ok_or(FaultSignal::Sigbus)?;
        let base = addr & !(inode.size.bytes() - 1);
        let index = vma.pgoff_at(base) / inode.size.small_pages();
        let beyond_eof = index >= inode_size_pages(&file.inode, inode.size);
        // A truncation or a hole unmapped the file's page from every mapping
        // (hugetlb_vmdelete_list()); past the new end, private copies too.
        if beyond_eof || matches!(self.pages.get(&base), Some(Page::File(f)) if f.folio.is_evicted()) {
            self.pages.remove(&base);
        }
        if vma.flags.contains(VmFlags::MAYSHARE) {
            if self.pages.get(&base).is_none() {
                let folio = hugetlb_fault_shared(inode, index, beyond_eof)?;
                self.pages.insert(base, FilePage::mapped(folio));
            }
            return Ok(());
        }
        let write = access == Access::Write;
        // A read of a page the file has maps the file's page.
        let cached = if write { None } else { inode.cache().pages.get(&index).cloned() };
        match self.private_huge_page(base) {
            Present::TakenAway => {
                self.pages.remove(&base);
                Err(FaultSignal::Sigbus)
            }
            // Reads of anything present, and writes to a page of its own, fault nothing in.
            Present::Own => Ok(()),
            Present::SharedWithFork | Present::FileCache if !write => Ok(()),
            Present::Nothing if beyond_eof || ForkMark::is_unmapped(vma.private_data()) => Err(FaultSignal::Sigbus),
            Present::Nothing if cached.is_some() => {
                self.pages.insert(base, FilePage::mapped(cached.expect("checked by the guard")));
                Ok(())
            }
            present => {
                self.anon_vma_prepare(vma_start);
                let page = self.new_private_huge_page(&vma, inode, base, index, present)?;
                self.pages.insert(base, Page::Huge(page));
                Ok(())
            }
        }
    }

    /// What a private hugetlb mapping has at the huge page at `base`.
    fn private_huge_page(&self, base: u64) -> Present {
        match self.pages.get(&base) {
            None => Present::Nothing,
            Some(Page::Huge(p)) if p.is_taken_away() => Present::TakenAway,
            Some(Page::Huge(p)) if Arc::strong_count(p) == 1 => Present::Own,
            Some(Page::Huge(_)) => Present::SharedWithFork,
            Some(_) => Present::FileCache,
        }
    }

    /// Linux: `alloc_hugetlb_folio()` for a private mapping's new page or copy on write. A copy
    /// of a page shared with a fork is made outside the reservation, which the original page
    /// consumed (`hugetlb_wp()`'s `outside_reserve`); when the pool has nothing, the reservation
    /// owner keeps the page it shares and takes it away from its forks.
    fn new_private_huge_page(
        &self,
        vma: &crate::Vma,
        inode: &HugetlbInode,
        base: u64,
        index: u64,
        present: Present,
    ) -> Result<Arc<HugePage>, FaultSignal> {
        let owner = ResvMap::of(vma.private_data());
        let consumed =
            owner.filter(|_| present != Present::SharedWithFork).is_some_and(|r| r.reserved().remove(&index));
        if let Some(page) = HugePage::take(&inode.pools, inode.size, consumed) {
            return Ok(page);
        }
        match self.pages.get(&base) {
            Some(Page::Huge(shared)) if owner.is_some() => {
                inode.unmap_forks();
                Ok(shared.take_away())
            }
            _ => Err(FaultSignal::Sigbus),
        }
    }

    /// `MADV_DONTNEED` on a private hugetlb page: the page goes, and an owner gets its
    /// reservation back (Linux: `__unmap_hugepage_range`'s `restore_reserve`).
    pub(crate) fn hugetlb_zap_private(&mut self, vma_start: u64, start: u64, end: u64) {
        let vma = self.tree.get(vma_start).expect("VMA").clone();
        let Some(inode) = vma.file.as_ref().and_then(|f| HugetlbInode::of(&f.inode)) else { return };
        let keys: Vec<u64> = self.pages.range(start, end).map(|r| r.start).collect();
        for a in keys {
            let own = matches!(self.pages.remove(&a), Some(Page::Huge(_)));
            if let Some(r) = ResvMap::of(vma.private_data()).filter(|_| own) {
                r.restore(vma.pgoff_at(a) / inode.size.small_pages());
            }
        }
    }
}

/// A fault in a shared mapping: the page cache's page, or a new one for it.
fn hugetlb_fault_shared(inode: &HugetlbInode, index: u64, beyond_eof: bool) -> Result<Arc<CacheFolio>, FaultSignal> {
    let mut c = inode.cache();
    if let Some(folio) = c.pages.get(&index) {
        return Ok(folio.clone());
    }
    let reserved = c.regions.contains(&index);
    if beyond_eof || !inode.pools.take(inode.size, reserved) {
        return Err(FaultSignal::Sigbus);
    }
    c.regions.insert(index);
    let folio = Arc::new(CacheFolio::default());
    c.pages.insert(index, folio.clone());
    Ok(folio)
}

/// What a private hugetlb mapping has at a huge page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Present {
    Nothing,
    /// A page of its own.
    Own,
    /// A page a fork shares (copy on write).
    SharedWithFork,
    /// A page the reservation owner took away from this fork.
    TakenAway,
    /// The file's page, read.
    FileCache,
}

/// The hugetlbfs inode of a `VM_HUGETLB` VMA (None if a driver set the flag on another file:
/// such a VMA faults as an ordinary one).
pub(crate) fn hugetlb_inode(vma: &crate::Vma) -> Option<&HugetlbInode> {
    vma.file.as_ref().and_then(|f| HugetlbInode::of(&f.inode)).filter(|_| vma.flags.contains(VmFlags::HUGETLB))
}

/// The file's size in huge pages (faults at or past it raise SIGBUS).
fn inode_size_pages(inode: &crate::driver::Inode, size: HugeSize) -> u64 {
    inode.state().size >> size.shift()
}
