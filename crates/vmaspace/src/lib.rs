//! vmaspace: Linux 6.18's memory-mapping subsystem as a library.
//!
//! An [`AddressSpace`] holds VMAs and behaves as a Linux 6.18 process's `mm` does: its calls take
//! Linux's arguments and return Linux's results, split and merge VMAs by Linux's rules, and print
//! `/proc/PID/maps` and `smaps` text byte for byte. The calls come twice: typed ([`typed`]:
//! `map`, `protect`, ... with flag types, `Result<(), Errno>`, [`typed::Addr`], [`typed::Fd`])
//! and raw, as the syscalls are (`mmap`, `mprotect`, ... with numbers, `Result<u64, Errno>`).
//! Drivers and file systems plug in through the driver API ([`driver`]): `mmap_prepare` (Linux
//! 6.16's interface) or the legacy `.mmap`, and the rest of `file_operations`; the built-in ones
//! ([`drivers`]) use nothing else.
//!
//! ```
//! use vmaspace::{AddressSpace, flags::{map, prot}};
//! let mut mm = AddressSpace::new();
//! let rw = prot::READ | prot::WRITE;
//! let anon = map::PRIVATE | map::ANONYMOUS | map::FIXED;
//! mm.mmap(0x1000_0000_0000, 0x4000, rw, anon, -1, 0).unwrap();
//! mm.mmap(0x1000_0000_4000, 0x4000, rw, anon, -1, 0).unwrap();
//! assert_eq!(mm.map_count(), 1); // the two merged
//! assert_eq!(mm.maps(), "100000000000-100000008000 rw-p 00000000 00:00 0 \n");
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod addr;
mod brk;
pub mod driver;
pub mod drivers;
pub mod errno;
pub mod explain;
pub mod fault;
mod fault_runs;
mod fd;
mod filemap;
pub mod flags;
mod fork;
mod frames;

pub mod hugetlb;
mod madvise;
mod merge;
mod mlock;
mod mmap;
mod mprotect;
mod mremap;
pub use flags::{MLOCK_ONFAULT, advice, mcl, mremap as mremap_flags};
mod mseal;
mod munmap;
pub mod pages;
mod placement;
mod procfs;
mod seed;
mod thp;
pub mod tree;
pub mod typed;
pub mod vfs;
pub mod vma;

#[cfg(test)]
mod kernel_vma_tests;

pub use driver::{DriverBug, MmapHook, VmAreaDesc, VmOperations};
pub use errno::{Errno, SysResult};
pub use fault::Access;
pub use flags::VmFlags;
pub use procfs::UNKNOWN as SMAPS_UNKNOWN;
pub use seed::SeedError;
pub use vfs::Vfs;
pub use vma::Vma;

use std::collections::BTreeMap;
use std::sync::Arc;
use tree::VmaTree;

/// Limits and credentials of the process an address space models. The defaults are this
/// project's machines: Linux 6.18 on x86_64, 4-level paging, ASLR off, RLIMIT_STACK 8 MiB, root.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `vm.max_map_count`.
    pub max_map_count: usize,
    /// `vm.mmap_min_addr` (`dac_mmap_min_addr`): below it, `MAP_FIXED` needs CAP_SYS_RAWIO
    /// (`cap_mmap_addr()`).
    pub mmap_min_addr: u64,
    /// `CONFIG_LSM_MMAP_MIN_ADDR` (0 without `CONFIG_SECURITY`): the kernel's global
    /// `mmap_min_addr` is the larger of it and `vm.mmap_min_addr` (`update_mmap_min_addr()`),
    /// and that is what hints are raised to and searches and stack growth stop at, even for
    /// root. 65536 in this machine kind's kernel.
    pub lsm_mmap_min_addr: u64,
    /// `TASK_SIZE` (= `DEFAULT_MAP_WINDOW` without 5-level paging).
    pub task_size: u64,
    /// `mm->mmap_base`: where top-down placement starts.
    pub mmap_base: u64,
    /// `mm->mmap_legacy_base`: where the bottom-up fallback starts.
    pub mmap_legacy_base: u64,
    /// `stack_guard_gap` in bytes.
    pub stack_guard_gap: u64,
    /// RLIMIT_AS, RLIMIT_DATA, RLIMIT_MEMLOCK, RLIMIT_STACK in bytes (`u64::MAX`: unlimited).
    pub rlimit_as: u64,
    /// RLIMIT_DATA in bytes: the most private writable memory (`data_vm`).
    pub rlimit_data: u64,
    /// RLIMIT_MEMLOCK in bytes: the most locked memory without CAP_IPC_LOCK.
    pub rlimit_memlock: u64,
    /// RLIMIT_STACK in bytes: how far the stack may grow.
    pub rlimit_stack: u64,
    /// RLIMIT_NOFILE.
    pub rlimit_nofile: u64,
    /// CAP_IPC_LOCK: mlock is not limited by RLIMIT_MEMLOCK.
    pub cap_ipc_lock: bool,
    /// CAP_SYS_RAWIO: `MAP_FIXED` below `mmap_min_addr` is allowed.
    pub cap_sys_rawio: bool,
    /// `vm.overcommit_memory`.
    pub overcommit: Overcommit,
    /// The CPU has memory protection keys and the kernel uses them (x86's `OSPKE`). Without
    /// them `pkey_alloc` fails (`EINVAL`), no key is allocated (not even 0), `PROT_EXEC` alone stays readable and smaps
    /// has no `ProtectionKey` line.
    pub pkeys: bool,
    /// The most runs of page state the model holds for a process and its forks together (its
    /// own memory; see [`pages`]): past it, calls stop and [`AddressSpace::limit_exceeded`]
    /// says so.
    pub max_page_entries: u64,
    /// The most pages one call may handle one by one (its own time: a `touch` or populate of
    /// file pages, which the page cache keeps a page at a time; a run of anonymous memory
    /// handled at once counts once): past it, the call stops and
    /// [`AddressSpace::limit_exceeded`] says so.
    pub max_pages_per_call: u64,
    /// The most pages that may be present in a process and its forks together, counting every
    /// page of a run: the memory the kernel would need. Unlimited by default; a caller that
    /// will run the same trace on the kernel sets it, so that the model refuses first.
    pub max_present_pages: u64,
    /// The most pages one call may make the kernel walk (fault in, populate, lock, guard),
    /// counting every page of a run. Unlimited by default, as [`Settings::max_present_pages`].
    pub max_call_pages: u64,
    /// Whether every access to memory is a call the model sees (`touch`, `peek`, populate).
    /// A recording of a real program infers faults from pagemap, and a read of a page already
    /// present leaves no trace there: with `false`, the accessed bit of a page table entry a fork
    /// copied (which decides smaps' `Referenced`) is unknown rather than assumed clear.
    pub accesses_visible: bool,
}

/// `vm.overcommit_memory` and what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overcommit {
    /// Mode 0: one request may not exceed RAM + swap (`totalram_pages + total_swap_pages`).
    Guess {
        /// RAM plus swap, in pages.
        ram_and_swap_pages: u64,
    },
    /// Mode 1: never refuse.
    Always,
}

impl Settings {
    /// The kernel's global `mmap_min_addr` (security/min_addr.c): the larger of
    /// `vm.mmap_min_addr` and `CONFIG_LSM_MMAP_MIN_ADDR`.
    pub fn effective_mmap_min_addr(&self) -> u64 {
        self.mmap_min_addr.max(self.lsm_mmap_min_addr)
    }
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_map_count: 65530,
            mmap_min_addr: 0x1000,
            lsm_mmap_min_addr: 0x10000,
            task_size: 0x7fff_ffff_f000,
            mmap_base: 0x7fff_f7ff_f000,
            mmap_legacy_base: 0x2aaa_aaaa_b000,
            stack_guard_gap: 256 << addr::PAGE_SHIFT,
            rlimit_as: u64::MAX,
            rlimit_data: u64::MAX,
            rlimit_memlock: 8 << 20,
            rlimit_stack: 8 << 20,
            rlimit_nofile: 1024,
            cap_ipc_lock: true,
            cap_sys_rawio: true,
            overcommit: Overcommit::Guess { ram_and_swap_pages: (24u64 << 30) >> addr::PAGE_SHIFT },
            pkeys: true,
            // About 100 MB of model memory and a second of work at most.
            max_page_entries: 1 << 20,
            max_pages_per_call: 1 << 20,
            max_present_pages: u64::MAX,
            max_call_pages: u64::MAX,
            accesses_visible: true,
        }
    }
}

/// The per-mm page counters Linux keeps (`total_vm`, `locked_vm`, ...), in pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// `mm->total_vm`: pages mapped.
    pub total_vm: u64,
    /// `mm->locked_vm`: pages of `VM_LOCKED` mappings.
    pub locked_vm: u64,
    /// `mm->data_vm`: pages of private writable mappings (not stacks).
    pub data_vm: u64,
    /// `mm->exec_vm`: pages of executable, not writable mappings.
    pub exec_vm: u64,
    /// `mm->stack_vm`: pages of stack mappings (`VM_STACK`).
    pub stack_vm: u64,
}

impl Counters {
    /// Linux: `vm_stat_account()`.
    pub(crate) fn account(&mut self, flags: VmFlags, pages: i64) {
        let add = |c: &mut u64| *c = c.wrapping_add_signed(pages);
        add(&mut self.total_vm);
        if flags.is_exec() {
            add(&mut self.exec_vm);
        } else if flags.is_stack() {
            add(&mut self.stack_vm);
        } else if flags.is_data() {
            add(&mut self.data_vm);
        }
    }
}

/// What is in a page the process touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Page {
    /// A private anonymous page (written: zero-fill on demand or copy-on-write).
    Anon(AnonPage),
    /// A page of the mapped file or shmem object (read, or written through a shared mapping).
    File(filemap::FilePage),
    /// A guard region marker (`MADV_GUARD_INSTALL`): any access raises SIGSEGV.
    Guard,
    /// A physical frame mapped by `remap_pfn_range` (not a page the memory manager owns).
    Pfn,
    /// A private huge page (kept at the huge page's first address), shared with forks until
    /// one of them writes; it goes back to its pool with the last reference.
    Huge(Arc<hugetlb::HugePage>),
}

/// One page table entry, or a run of like entries, mapping anonymous frames (see
/// [`crate::frames`]).
#[derive(Debug, Clone)]
pub(crate) struct AnonPage {
    /// The frames mapped, one a page.
    pub frames: frames::FrameRef,
    /// The entries' accessed bit (`pte_young`): set by every access, cleared in a fork's child
    /// (`pte_mkold()` in `__copy_present_ptes()`); `None` when accesses may have happened that
    /// the model did not see ([`Settings::accesses_visible`]).
    pub young: Option<bool>,
    /// Write-protected for copy on write: fork wrprotects both sides' entries, and the next
    /// write goes through `do_wp_page()` even when no other process maps the frame any more.
    pub wrprotected: bool,
}

impl PartialEq for AnonPage {
    fn eq(&self, o: &AnonPage) -> bool {
        self.frames.same_frames(&o.frames) && self.young == o.young && self.wrprotected == o.wrprotected
    }
}

impl Eq for AnonPage {}

impl AnonPage {
    /// A newly faulted page: its own frame, just accessed.
    pub(crate) fn fresh() -> Page {
        AnonPage::fresh_run(1)
    }

    /// Newly faulted pages, `pages` of them: their own frames, just accessed (one fault a page,
    /// made at once).
    pub(crate) fn fresh_run(pages: u64) -> Page {
        Page::Anon(AnonPage { frames: frames::FrameRef::fresh(pages, 0), young: Some(true), wrprotected: false })
    }

    /// Whether this private copy of page `index` of `file` was unmapped by a truncation since
    /// it was made (in whichever process truncated).
    pub(crate) fn copy_truncated(&self, file: &driver::OpenFile, index: u64) -> bool {
        file.inode.cache().truncated_since(self.frames.frames().file_generation, index)
    }

    /// A private copy of a page of `file`, made now (it remembers the file's truncation
    /// generation: see [`AnonPage::copy_truncated`]).
    pub(crate) fn copy_of_file_page(file: Option<&driver::OpenFile>) -> Page {
        let generation = file.map_or(0, |f| f.inode.cache().generation());
        Page::Anon(AnonPage { frames: frames::FrameRef::fresh(1, generation), young: Some(true), wrprotected: false })
    }
}

/// `[vsyscall]`: the gate area, printed after the VMAs but not one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GateArea {
    pub start: u64,
    pub end: u64,
}

/// A process's address space (`struct mm_struct`).
///
/// # Invariants
/// * The VMA tree's invariants (ordered, non-overlapping, page aligned).
/// * `map_count()` equals the number of VMAs.
/// * `counters` equal what the VMAs add up to (`vm_stat_account` of each).
/// * Every present page lies inside a VMA.
#[derive(Debug, Clone)]
pub struct AddressSpace {
    pub(crate) tree: VmaTree,
    pub(crate) settings: Settings,
    pub(crate) counters: Counters,
    /// `mm->def_flags` (mlockall(MCL_FUTURE) sets VM_LOCKED here).
    pub(crate) def_flags: VmFlags,
    pub(crate) start_brk: u64,
    pub(crate) brk: u64,
    pub(crate) start_stack: u64,
    pub(crate) gate: Option<GateArea>,
    pub(crate) vfs: Arc<Vfs>,
    pub(crate) fds: BTreeMap<i32, Arc<driver::OpenFile>>,
    pub(crate) pages: pages::PageMap,
    /// Pages walked one by one by the call in progress (see [`Settings::max_pages_per_call`]).
    pub(crate) page_steps: u64,
    /// Pages the call in progress made the kernel walk (see [`Settings::max_call_pages`]).
    pub(crate) call_pages: u64,
    pub(crate) bugs: Vec<DriverBug>,
    pub(crate) pkeys: Pkeys,
    /// Labels of anon_vmas handed out (`anon_vma_alloc`).
    pub(crate) next_anon_vma: u64,
    /// The placement code's decisions, while `explain` asks for them.
    pub(crate) placement_log: explain::PlacementLog,
}

/// x86 protection keys: which are allocated and what PKRU denies (`mm->context.pkey_allocation_map`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pkeys {
    pub allocated: u16,
    pub execute_only: Option<u32>,
    pub access_denied: u16,
    pub write_denied: u16,
}

impl Default for Pkeys {
    fn default() -> Pkeys {
        Pkeys { allocated: 1, execute_only: None, access_denied: 0, write_denied: 0 }
    }
}

impl Pkeys {
    /// Linux: `mm_pkey_alloc()`: the lowest free key.
    pub fn alloc(&mut self) -> Option<u32> {
        let k = (!self.allocated).trailing_zeros();
        if k >= 16 {
            return None;
        }
        self.allocated |= 1 << k;
        Some(k)
    }
    pub fn deny_access(&mut self, k: u32) {
        self.access_denied |= 1 << k;
    }
    /// Whether PKRU lets the access through for key `k`.
    pub fn allows(&self, k: u32, write: bool) -> bool {
        let bit = 1u16 << (k & 0xf);
        self.access_denied & bit == 0 && !(write && self.write_denied & bit != 0)
    }
}

impl Default for AddressSpace {
    fn default() -> Self {
        AddressSpace::new()
    }
}

impl AddressSpace {
    /// An empty address space with the default [`Settings`] and its own [`Vfs`].
    pub fn new() -> AddressSpace {
        AddressSpace::with_settings(Settings::default(), Arc::new(Vfs::default()))
    }

    /// An empty address space with the given settings, whose files live in `vfs`.
    pub fn with_settings(settings: Settings, vfs: Arc<Vfs>) -> AddressSpace {
        let mut mm = AddressSpace::bare(settings, vfs);
        mm.open_stdio();
        mm
    }

    pub(crate) fn bare(settings: Settings, vfs: Arc<Vfs>) -> AddressSpace {
        // init_new_context() sets up the key allocation map only with protection keys.
        let pkeys = if settings.pkeys { Pkeys::default() } else { Pkeys { allocated: 0, ..Pkeys::default() } };
        let limits =
            pages::PageLimits { entries: settings.max_page_entries, present_pages: settings.max_present_pages };
        let pages = pages::PageMap::new(vfs.page_budget().clone(), limits);
        AddressSpace {
            tree: VmaTree::default(),
            settings,
            counters: Counters::default(),
            def_flags: VmFlags::NONE,
            start_brk: 0,
            brk: 0,
            start_stack: 0,
            gate: None,
            vfs,
            fds: BTreeMap::new(),
            pages,
            page_steps: 0,
            call_pages: 0,
            bugs: Vec::new(),
            pkeys,
            next_anon_vma: 0,
            placement_log: explain::PlacementLog::default(),
        }
    }

    /// The machine settings this address space follows.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
    /// The settings, to change (as a sysctl write or `setrlimit` would).
    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }
    /// The per-mm page counters (`total_vm`, `locked_vm`, ...).
    pub fn counters(&self) -> Counters {
        self.counters
    }
    /// The file systems this address space opens files in.
    pub fn vfs(&self) -> &Arc<Vfs> {
        &self.vfs
    }
    /// `mm->map_count`: the number of VMAs.
    pub fn map_count(&self) -> usize {
        self.tree.len()
    }
    /// The VMAs in address order.
    pub fn vmas(&self) -> impl DoubleEndedIterator<Item = &Vma> {
        self.tree.iter()
    }
    /// Linux: `find_vma()`.
    pub fn find_vma(&self, addr: u64) -> Option<&Vma> {
        self.tree.find_vma(addr)
    }
    /// Driver misbehaviour Linux reports with WARN and tolerates.
    pub fn driver_bugs(&self) -> &[DriverBug] {
        &self.bugs
    }
    /// `mm->def_flags`: flags every new mapping gets (`mlockall(MCL_FUTURE)` sets `VM_LOCKED`).
    pub fn def_flags(&self) -> VmFlags {
        self.def_flags
    }
    /// The program break.
    pub fn current_brk(&self) -> u64 {
        self.brk
    }
    /// Sets the program break (an empty address space has no program image).
    pub fn set_brk(&mut self, brk: u64) {
        self.start_brk = brk;
        self.brk = brk;
    }
    /// The file open as `fd`, if any.
    pub fn file(&self, fd: i32) -> Option<&Arc<driver::OpenFile>> {
        self.fds.get(&fd)
    }

    pub(crate) fn mm_info(&self) -> driver::MmInfo {
        driver::MmInfo {
            map_count: self.map_count(),
            locked_vm: self.counters.locked_vm,
            memlock_limit_pages: self.settings.rlimit_memlock >> addr::PAGE_SHIFT,
            cap_ipc_lock: self.settings.cap_ipc_lock,
            commit_limit_pages: match self.settings.overcommit {
                Overcommit::Always => None,
                Overcommit::Guess { ram_and_swap_pages } => Some(ram_and_swap_pages),
            },
        }
    }

    /// Checks every invariant; the error says which one fails.
    pub fn validate(&self) -> Result<(), String> {
        self.vfs.hugepages().validate()?;
        let mut prev_end = 0u64;
        let mut sum = Counters { locked_vm: self.counters.locked_vm, ..Counters::default() };
        for v in self.tree.iter() {
            if v.start >= v.end || !addr::is_page_aligned(v.start) || !addr::is_page_aligned(v.end) {
                return Err(format!("bad range {v:?}"));
            }
            if v.start < prev_end {
                return Err(format!("{v:?} overlaps the VMA before it"));
            }
            if self.tree.get(v.start).map(|x| x.end) != Some(v.end) {
                return Err(format!("{v:?} is not stored under its start"));
            }
            prev_end = v.end;
            sum.account(v.flags, v.pages() as i64);
        }
        self.tree.check_gap_index()?;
        if sum != self.counters {
            return Err(format!("counters {:?} but the VMAs add up to {sum:?}", self.counters));
        }
        // locked_vm is not checked against the VM_LOCKED VMAs: Linux itself lets them part (an
        // mremap with MREMAP_DONTUNMAP unlocks the source without uncounting it).
        self.pages.check()?;
        for r in self.pages.iter() {
            // The run's pages lie in VMAs from its start to its end, with no hole between.
            let mut at = r.start;
            while at < r.end {
                match self.tree.vma_lookup(at) {
                    Some(v) => at = v.end,
                    None => return Err(format!("page {at:#x} is present outside every VMA")),
                }
            }
        }
        Ok(())
    }
}
