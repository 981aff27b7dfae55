//! What a VMA carries for its driver: `vm_operations_struct`, the view a callback gets, the
//! page protection, the private data, and the address space facts a hook may consult.

use crate::errno::Errno;
use crate::flags::VmFlags;
use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// `struct vm_area_desc`'s view of the address space: read-only facts a hook may consult.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmInfo {
    /// `mm->map_count`: the VMAs the address space has.
    pub map_count: usize,
    /// `mm->locked_vm` in pages.
    pub locked_vm: u64,
    /// RLIMIT_MEMLOCK in pages (`u64::MAX` for unlimited).
    pub memlock_limit_pages: u64,
    /// CAP_IPC_LOCK: locked memory is not limited.
    pub cap_ipc_lock: bool,
    /// The most pages one request may commit (`vm.overcommit_memory` 0); None: unlimited.
    pub commit_limit_pages: Option<u64>,
}

impl MmInfo {
    /// Linux: `mlock_future_ok()`: may `pages` more be locked?
    pub fn mlock_future_ok(&self, flags: VmFlags, pages: u64) -> bool {
        !flags.contains(VmFlags::LOCKED)
            || self.cap_ipc_lock
            || self.locked_vm.saturating_add(pages) <= self.memlock_limit_pages
    }

    /// Linux: `security_vm_enough_memory_mm()`: may `pages` more be committed?
    pub fn vm_enough_memory(&self, pages: u64) -> bool {
        self.commit_limit_pages.is_none_or(|limit| pages <= limit)
    }
}

/// The hardware page protection of a VMA (`vm_page_prot`): on x86_64 a function of the access
/// and shared bits (`vm_get_page_prot`), which the model keeps as those bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PageProt(pub u64);

impl PageProt {
    /// Linux: `vm_get_page_prot()`.
    pub fn from_flags(flags: VmFlags) -> PageProt {
        PageProt(flags.bits() & (VmFlags::ACCESS_FLAGS | VmFlags::SHARED).bits())
    }
}

/// Opaque per-VMA driver data (`vm_private_data`).
pub type PrivateData = Arc<dyn Any + Send + Sync>;

/// What a VMA looks like to a [`VmOperations`] callback.
#[derive(Clone)]
pub struct VmaView {
    /// The VMA's first address.
    pub start: u64,
    /// The address after the VMA's last byte.
    pub end: u64,
    /// The file page at `start` (`vm_pgoff`).
    pub pgoff: u64,
    /// The VMA's flags (`vm_flags`).
    pub flags: VmFlags,
    /// What the driver keeps in `vm_private_data`.
    pub private_data: Option<PrivateData>,
}

impl fmt::Debug for VmaView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VmaView({:#x}-{:#x} pgoff {:#x} {:?})", self.start, self.end, self.pgoff, self.flags)
    }
}

/// How a fault on a page of a VMA with a `fault` operation ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmFault {
    /// The page is mapped.
    Mapped,
    /// `VM_FAULT_SIGBUS`.
    Sigbus,
    /// `VM_FAULT_SIGSEGV`.
    Sigsegv,
}

type Callback = Arc<dyn Fn(&VmaView) + Send + Sync>;
type MaySplit = Arc<dyn Fn(&VmaView, u64) -> Result<(), Errno> + Send + Sync>;
type Fault = Arc<dyn Fn(&VmaView, u64) -> VmFault + Send + Sync>;
type Name = Arc<dyn Fn(&VmaView) -> Option<String> + Send + Sync>;

/// `struct vm_operations_struct`: the operations a VMA carries. Every operation is optional,
/// as in C, so whether one exists is known without calling it: a VMA with a `close` operation is
/// never removed by a merge.
#[derive(Clone, Default)]
pub struct VmOperations {
    /// A name for debugging output only.
    pub label: &'static str,
    /// Called for every new VMA copied from one with these operations (split, fork).
    pub open: Option<Callback>,
    /// Called when a VMA is unmapped.
    pub close: Option<Callback>,
    /// May the VMA be split at this address?
    pub may_split: Option<MaySplit>,
    /// Resolves a fault on the page at the address.
    pub fault: Option<Fault>,
    /// The name maps shows for the VMA (`[vdso]`).
    pub name: Option<Name>,
    /// `->map_pages` is `filemap_map_pages()`: a read fault first maps the pages around it that
    /// the file's page cache already holds (fault-around).
    pub map_pages: bool,
    /// How the missing page of a file VMA comes into the file's page cache (`->fault` of a file
    /// system); None for a VMA whose pages the model does not follow (its counters unknown).
    pub cache_fault: Option<CacheFault>,
}

/// The page-cache side of a file system's `->fault`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheFault {
    /// `filemap_fault()`: a missing page is read with mmap read-around (the file's read-ahead
    /// window centred on it, `do_sync_mmap_readahead()`), and the fault retried.
    Filemap,
    /// `shmem_fault()`, `secretmem_fault()`: the missing page is allocated, alone.
    Allocate,
}

impl VmOperations {
    /// Operations with nothing set but a label (like `generic_file_vm_ops` for the model).
    pub fn labelled(label: &'static str) -> VmOperations {
        VmOperations { label, ..VmOperations::default() }
    }
    /// Whether the operations have a `close` (which keeps VMAs from being merged away).
    pub fn has_close(&self) -> bool {
        self.close.is_some()
    }
}

/// `vma_dummy_vm_ops`: the operations every new VMA starts with (none set), so a file VMA whose
/// driver sets none is still not anonymous.
pub fn dummy_vm_ops() -> Arc<VmOperations> {
    static OPS: std::sync::OnceLock<Arc<VmOperations>> = std::sync::OnceLock::new();
    OPS.get_or_init(|| Arc::new(VmOperations::labelled("vma_dummy_vm_ops"))).clone()
}

impl fmt::Debug for VmOperations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VmOperations")
            .field("label", &self.label)
            .field("open", &self.open.is_some())
            .field("close", &self.close.is_some())
            .field("may_split", &self.may_split.is_some())
            .field("fault", &self.fault.is_some())
            .field("name", &self.name.is_some())
            .field("map_pages", &self.map_pages)
            .field("cache_fault", &self.cache_fault)
            .finish()
    }
}

/// The kind of access that faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
}

/// The signal a faulting access raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultSignal {
    /// `SIGSEGV`: no mapping, or one that does not allow the access.
    Sigsegv,
    /// `SIGBUS`: the mapping exists but has no page to give (past the end of its file, no huge page).
    Sigbus,
}
