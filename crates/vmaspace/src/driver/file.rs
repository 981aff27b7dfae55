//! Files as the memory-mapping code sees them: the open file description ([`OpenFile`]), its
//! operations ([`FileOperations`]: the mapping hook, placement, `MAP_SYNC`, hole punching) and
//! the hooks a driver implements ([`MmapPrepare`], [`LegacyMmap`], [`GetUnmappedArea`]).

use super::desc::{LegacyVma, VmAreaDesc};
use super::inode::Inode;
use crate::errno::Errno;
use crate::flags::VmFlags;
use std::fmt;
use std::sync::Arc;

/// A driver's `mmap_prepare`.
pub trait MmapPrepare: Send + Sync {
    /// Inspects and adjusts the mapping before it exists. An error fails the `mmap` with it.
    fn mmap_prepare(&self, desc: &mut VmAreaDesc<'_>) -> Result<(), Errno>;
}

/// A driver's legacy `.mmap`.
pub trait LegacyMmap: Send + Sync {
    /// Sets up the freshly allocated VMA. An error fails the `mmap` with it.
    fn mmap(&self, vma: &mut LegacyVma<'_>) -> Result<(), Errno>;
}

/// The one way a file can be mapped.
#[derive(Clone)]
pub enum MmapHook {
    /// `mmap_prepare` (Linux 6.16).
    Prepare(Arc<dyn MmapPrepare>),
    /// The legacy `.mmap`.
    Legacy(Arc<dyn LegacyMmap>),
}

impl fmt::Debug for MmapHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MmapHook::Prepare(_) => "MmapHook::Prepare",
            MmapHook::Legacy(_) => "MmapHook::Legacy",
        })
    }
}

/// Why a C-style operations table cannot be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookTableError {
    /// Both `.mmap` and `.mmap_prepare` are set: a driver bug (Linux WARNs once), `ENODEV`.
    Both,
    /// Neither is set: the file cannot be mapped, `ENODEV`.
    Neither,
}

impl From<HookTableError> for Errno {
    fn from(_: HookTableError) -> Errno {
        Errno::ENODEV
    }
}

/// `struct file_operations` as C builds it: two optional hooks.
#[derive(Clone, Default)]
pub struct CFileOperations {
    /// The legacy `.mmap` hook.
    pub mmap: Option<Arc<dyn LegacyMmap>>,
    /// The `.mmap_prepare` hook.
    pub mmap_prepare: Option<Arc<dyn MmapPrepare>>,
}

impl fmt::Debug for CFileOperations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CFileOperations {{ mmap: {}, mmap_prepare: {} }}", self.mmap.is_some(), self.mmap_prepare.is_some())
    }
}

impl TryFrom<CFileOperations> for MmapHook {
    type Error = HookTableError;
    /// Linux: `can_mmap_file()`: exactly one hook.
    fn try_from(t: CFileOperations) -> Result<MmapHook, HookTableError> {
        match (t.mmap, t.mmap_prepare) {
            (Some(_), Some(_)) => Err(HookTableError::Both),
            (None, None) => Err(HookTableError::Neither),
            (Some(m), None) => Ok(MmapHook::Legacy(m)),
            (None, Some(p)) => Ok(MmapHook::Prepare(p)),
        }
    }
}

/// The arguments of a `get_unmapped_area` (Linux passes them one by one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AreaRequest {
    /// The hint, or the fixed address with `MAP_FIXED`.
    pub addr: u64,
    /// The length, page aligned.
    pub len: u64,
    /// The file page the mapping starts at (0 for anonymous memory).
    pub pgoff: u64,
    /// The `MAP_*` flags of the call.
    pub flags: u64,
    /// The flags the VMA will have (`vm_flags`: a shadow stack keeps a guard page below it).
    pub vm_flags: VmFlags,
}

impl AreaRequest {
    /// The request without its VMA flags (what `get_unmapped_area` implementations that do not
    /// take `vm_flags` pass on, as `thp_get_unmapped_area` and `shmem_get_unmapped_area` do).
    pub fn without_vm_flags(self) -> AreaRequest {
        AreaRequest { vm_flags: VmFlags::NONE, ..self }
    }
}

/// The searches the address space lends a `get_unmapped_area` (Linux's exported helpers).
pub trait UnmappedAreaSearch {
    /// Linux: `mm_get_unmapped_area_vmflags()`: the plain search (top-down from `mmap_base`,
    /// the hint first).
    fn mm_get_unmapped_area(&self, req: AreaRequest) -> Result<u64, Errno>;
    /// Linux: `thp_get_unmapped_area_vmflags()`: aligned so that 2 MiB chunks of the file map
    /// to 2 MiB pages, falling back to the plain search.
    fn thp_get_unmapped_area(&self, req: AreaRequest) -> Result<u64, Errno>;
    /// The plain search with the result aligned to `align` bytes (a power of two) and no
    /// file-offset colouring (x86's `get_align_mask()` for hugetlbfs files).
    fn aligned_get_unmapped_area(&self, req: AreaRequest, align: u64) -> Result<u64, Errno>;
}

/// `f_op->get_unmapped_area`: where a file's mappings go when the address is not fixed. A file
/// without one gets the plain search with its VMA flags (`mm_get_unmapped_area_vmflags`).
pub trait GetUnmappedArea: std::any::Any + Send + Sync {
    /// Chooses the address (or checks a fixed one: `req.flags` has `MAP_FIXED`).
    fn get_unmapped_area(&self, mm: &dyn UnmappedAreaSearch, req: AreaRequest) -> Result<u64, Errno>;
}

/// `thp_get_unmapped_area`, as ext4 and `/dev/zero`'s private mappings use it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThpPlacement;

impl GetUnmappedArea for ThpPlacement {
    fn get_unmapped_area(&self, mm: &dyn UnmappedAreaSearch, req: AreaRequest) -> Result<u64, Errno> {
        mm.thp_get_unmapped_area(req.without_vm_flags())
    }
}

/// `f_op->fallocate(FALLOC_FL_PUNCH_HOLE)` as `MADV_REMOVE` uses it, for the `len` bytes at
/// byte `offset` of the file: may the hole be punched, and what it does to the file system's
/// own state (hugetlbfs frees the whole huge pages in the hole). The model drops the hole's
/// small pages from the page cache itself; the hook may refuse, as shmem does for sealed memfds.
pub type PunchHole = Arc<dyn Fn(&Inode, u64, u64) -> Result<(), Errno> + Send + Sync>;

/// `struct file_operations`: what the memory-mapping code asks of a file. Build one with
/// [`FileOperations::new`] and the `with_*` methods.
#[derive(Clone)]
pub struct FileOperations {
    /// A name for debugging output.
    pub label: &'static str,
    /// The mapping hook, or why there is none.
    pub hook: Result<MmapHook, HookTableError>,
    /// Where the file's mappings go (`get_unmapped_area`); None: the plain search.
    pub get_unmapped_area: Option<Arc<dyn GetUnmappedArea>>,
    /// `FOP_MMAP_SYNC`: `MAP_SYNC` is accepted.
    pub mmap_sync: bool,
    /// `fallocate` with `FALLOC_FL_PUNCH_HOLE` (`MADV_REMOVE`); None: `EOPNOTSUPP`.
    pub punch_hole: Option<PunchHole>,
}

impl fmt::Debug for FileOperations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileOperations")
            .field("label", &self.label)
            .field("hook", &self.hook)
            .field("get_unmapped_area", &self.get_unmapped_area.is_some())
            .field("mmap_sync", &self.mmap_sync)
            .field("punch_hole", &self.punch_hole.is_some())
            .finish()
    }
}

impl FileOperations {
    /// Operations with a mapping hook and nothing else (the plain placement, no `MAP_SYNC`,
    /// no hole punching).
    pub fn new(label: &'static str, hook: MmapHook) -> FileOperations {
        FileOperations { label, hook: Ok(hook), get_unmapped_area: None, mmap_sync: false, punch_hole: None }
    }
    /// Operations from a C-style table (both hooks or neither: the file cannot be mapped).
    pub fn from_c_table(label: &'static str, table: CFileOperations) -> FileOperations {
        FileOperations {
            label,
            hook: MmapHook::try_from(table),
            get_unmapped_area: None,
            mmap_sync: false,
            punch_hole: None,
        }
    }
    /// With a `get_unmapped_area`.
    pub fn with_get_unmapped_area(mut self, g: Arc<dyn GetUnmappedArea>) -> FileOperations {
        self.get_unmapped_area = Some(g);
        self
    }
    /// With `FOP_MMAP_SYNC`.
    pub fn with_mmap_sync(mut self) -> FileOperations {
        self.mmap_sync = true;
        self
    }
    /// With hole punching.
    pub fn with_punch_hole(mut self, p: PunchHole) -> FileOperations {
        self.punch_hole = Some(p);
        self
    }
}

/// `FMODE_READ` / `FMODE_WRITE` of an open file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FMode {
    /// `FMODE_READ`.
    pub read: bool,
    /// `FMODE_WRITE`.
    pub write: bool,
}

/// An open file description (`struct file`): the identity merging compares. Two `open()`s of one
/// file are two descriptions and never merge; `dup()` shares one.
#[derive(Debug)]
pub struct OpenFile {
    id: u64,
    /// The inode opened.
    pub inode: Arc<Inode>,
    /// Opened for reading, writing, or both.
    pub mode: FMode,
    /// The file's operations (`f_op`).
    pub ops: Arc<FileOperations>,
    /// `f_ra`: what mmap faults keep of the file's read-ahead.
    pub(crate) ra: super::mapping::FileRaState,
}

/// Linux: `__fput()` → `f_op->release`: ext4's `ext4_release_file()` writes back a file that
/// was truncated to nothing since (`auto_da_alloc`).
impl Drop for OpenFile {
    fn drop(&mut self) {
        if self.inode.sb.auto_da_alloc {
            let mut cache = self.inode.cache();
            if std::mem::take(&mut cache.write_back_on_release) {
                cache.write_back();
            }
        }
    }
}

impl OpenFile {
    /// An open file description; `id` is its identity for merging (distinct per `open`).
    pub fn new(id: u64, inode: Arc<Inode>, mode: FMode, ops: Arc<FileOperations>) -> OpenFile {
        OpenFile { id, inode, mode, ops, ra: Default::default() }
    }
    /// A number identifying this open file description within its [`crate::Vfs`].
    pub fn id(&self) -> u64 {
        self.id
    }
}
