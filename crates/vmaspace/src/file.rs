//! Files and the mapping hooks: what a driver or file system sees when it is mapped.
//!
//! A file offers exactly one way to be mapped ([`MmapHook`]):
//! * [`MmapHook::Prepare`] (Linux 6.16's `mmap_prepare`): the driver fills in a
//!   [`VmAreaDesc`] before anything in the address space changes. The descriptor's fields come
//!   in three kinds, enforced by its methods: read-only (the address space, the file whose hook
//!   runs, `start`, `end`), read-write (`pgoff`, `vm_file`, `vm_flags`, `page_prot`) and
//!   write-only (`vm_ops`, `private_data`). The merge attempt sees the flags the hook chose.
//! * [`MmapHook::Legacy`] (`.mmap`): the driver gets the new VMA ([`LegacyVma`]) after it was
//!   allocated and may change anything; the kernel's post-checks report what it must not change
//!   as [`DriverBug`]s and the mapping goes on. No merge is attempted after the hook.
//!
//! A table built the C way ([`CFileOperations`], two optional hooks) converts into an
//! [`MmapHook`] with Linux's check: both or neither set cannot be mapped (`ENODEV`).

use crate::errno::Errno;
use crate::flags::VmFlags;
use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

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
            .finish()
    }
}

/// Which file system or driver an inode belongs to; decides placement and fault behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InodeKind {
    /// A regular file on a disk file system (ext4).
    Regular,
    /// A shmem object: tmpfs file, memfd, shared anonymous memory.
    Shmem,
    /// A character device (`/dev/zero`, `/dev/null`).
    CharDevice,
    /// `memfd_secret` memory.
    Secretmem,
    /// A hugetlbfs file: on a hugetlbfs mount, an `MFD_HUGETLB` memfd, or the file behind
    /// `MAP_ANONYMOUS|MAP_HUGETLB`.
    Hugetlb,
}

impl InodeKind {
    /// Whether the file keeps memfd seals (`memfd_file_seals_ptr()`: shmem and hugetlbfs).
    pub fn has_seals(self) -> bool {
        matches!(self, InodeKind::Shmem | InodeKind::Hugetlb)
    }
}

/// The mutable part of an inode.
#[derive(Debug, Clone)]
pub struct InodeState {
    /// The path maps shows (without ` (deleted)`).
    pub path: Vec<u8>,
    /// False once unlinked (or for internal objects that never had a name).
    pub linked: bool,
    /// The file size in bytes (`i_size`).
    pub size: u64,
    /// `F_SEAL_*` bits.
    pub seals: u64,
    /// Any execute permission bit in the mode (memfds without `MFD_NOEXEC_SEAL` are 0777).
    pub executable: bool,
    /// VMAs of any process that map the inode shared and may write it (`i_mmap_writable`);
    /// `F_SEAL_WRITE` is refused while there are any.
    pub writable_mappings: u64,
}

/// An inode: the object a mapping shows as `dev inode name`.
#[derive(Debug)]
pub struct Inode {
    /// The inode number maps shows.
    pub ino: u64,
    /// `(major, minor)` of the file system.
    pub dev: (u32, u32),
    /// The file system or driver the inode belongs to.
    pub kind: InodeKind,
    state: Mutex<InodeState>,
    /// The huge page size, reservations and page cache of a hugetlbfs inode.
    pub hugetlb: Option<crate::hugetlb::HugetlbInode>,
}

impl Inode {
    /// An inode of a driver or file system other than hugetlbfs.
    pub fn new(ino: u64, dev: (u32, u32), kind: InodeKind, state: InodeState) -> Inode {
        Inode { ino, dev, kind, state: Mutex::new(state), hugetlb: None }
    }

    /// A hugetlbfs inode.
    pub fn new_hugetlb(ino: u64, dev: (u32, u32), state: InodeState, huge: crate::hugetlb::HugetlbInode) -> Inode {
        Inode { ino, dev, kind: InodeKind::Hugetlb, state: Mutex::new(state), hugetlb: Some(huge) }
    }
    /// Whether the inode's mount is `noexec` (secretmem's internal mount is): mappings get no
    /// `VM_MAYEXEC`, and `PROT_EXEC` is refused.
    pub fn noexec(&self) -> bool {
        self.kind == InodeKind::Secretmem
    }
    /// The inode's mutable state. (A poisoned lock only means a driver callback panicked; the
    /// state itself is still consistent, so it is used as it is.)
    pub fn state(&self) -> MutexGuard<'_, InodeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where a file's mappings go when no address is fixed (`f_op->get_unmapped_area`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// `mm_get_unmapped_area`: the plain top-down search.
    Default,
    /// `thp_get_unmapped_area`: aligned so that 2 MiB chunks of the file map to 2 MiB pages.
    Thp,
    /// `shmem_get_unmapped_area` with huge pages off: the plain search.
    Shmem,
    /// `/dev/zero`: shmem's for shared mappings, THP's for private ones.
    Zero,
    /// `hugetlb_get_unmapped_area`: lengths and fixed addresses huge-page aligned, the search
    /// aligned to the huge page size.
    Hugetlb(crate::hugetlb::HugeSize),
}

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

/// `struct file_operations`: what the memory-mapping code needs of a file.
#[derive(Clone, Debug)]
pub struct FileOperations {
    /// A name for debugging output.
    pub label: &'static str,
    /// The mapping hook, or why there is none.
    pub hook: Result<MmapHook, HookTableError>,
    /// Where the file's mappings go (`get_unmapped_area`).
    pub placement: Placement,
    /// `FOP_MMAP_SYNC`: `MAP_SYNC` is accepted.
    pub mmap_sync: bool,
}

impl FileOperations {
    /// Operations from a C-style table.
    pub fn from_c_table(label: &'static str, table: CFileOperations, placement: Placement) -> FileOperations {
        FileOperations { label, hook: MmapHook::try_from(table), placement, mmap_sync: false }
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
    pub(crate) id: u64,
    /// The inode opened.
    pub inode: Arc<Inode>,
    /// Opened for reading, writing, or both.
    pub mode: FMode,
    /// The file's operations (`f_op`).
    pub ops: Arc<FileOperations>,
}

impl OpenFile {
    /// An open file description; `id` is its identity for merging (distinct per `open`).
    pub fn new(id: u64, inode: Arc<Inode>, mode: FMode, ops: Arc<FileOperations>) -> OpenFile {
        OpenFile { id, inode, mode, ops }
    }
    /// A number identifying this open file description within its [`crate::Vfs`].
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// What an [`MmapAction`] does once the VMA exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MmapActionKind {
    /// `MMAP_NOTHING`.
    #[default]
    Nothing,
    /// `MMAP_REMAP_PFN`: map physical frames from `pfn` at `[start, start+size)`.
    RemapPfn {
        /// The first address to map.
        start: u64,
        /// The first frame.
        pfn: u64,
        /// Bytes to map.
        size: u64,
    },
    /// `MMAP_IO_REMAP_PFN` (the same as `RemapPfn` on x86).
    IoRemapPfn {
        /// The first address to map.
        start: u64,
        /// The first frame.
        pfn: u64,
        /// Bytes to map.
        size: u64,
    },
}

type SuccessHook = Arc<dyn Fn(&VmaView) -> Result<(), Errno> + Send + Sync>;
type ErrorHook = Arc<dyn Fn(Errno) -> Errno + Send + Sync>;

/// `struct mmap_action` (Linux 6.19, offered here as an extension of 6.18): work a
/// `mmap_prepare` hook defers until the VMA exists, and hooks run after it.
///
/// * Remapping sets `VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP` on the descriptor before
///   the merge attempt (`mmap_action_prepare`), so such a mapping never merges.
/// * The action runs only for a newly allocated VMA (never for one produced by a merge).
/// * If the remap fails, the new VMA is unmapped and the error (passed through `error_hook`,
///   which must not return success) is `mmap`'s result.
/// * Otherwise `success_hook` runs; its error becomes `mmap`'s result **with the VMA left
///   mapped**, as Linux does.
#[derive(Clone, Default)]
pub struct MmapAction {
    /// What to do once the VMA exists.
    pub kind: MmapActionKind,
    /// Called after the action succeeded; its error fails the `mmap` but leaves the VMA mapped.
    pub success_hook: Option<SuccessHook>,
    /// Called when the action failed, to choose the error returned (the VMA is unmapped).
    pub error_hook: Option<ErrorHook>,
    /// Keep the file's rmap lock held until the action completes (hugetlbfs); no effect in the
    /// model, which has no concurrency.
    pub hide_from_rmap_until_complete: bool,
}

impl fmt::Debug for MmapAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MmapAction")
            .field("kind", &self.kind)
            .field("success_hook", &self.success_hook.is_some())
            .field("error_hook", &self.error_hook.is_some())
            .finish()
    }
}

/// `struct vm_area_desc`: what an `mmap_prepare` hook sees and may change.
///
/// Read-only: [`mm`](Self::mm), [`file`](Self::file), [`start`](Self::start),
/// [`end`](Self::end). Read-write: `pgoff`, `vm_file`, `vm_flags`, `page_prot`. Write-only:
/// `vm_ops`, `private_data` (they start empty; a hook sets them, it cannot read them).
///
/// The type enforces the three kinds: a hook cannot move the mapping,
///
/// ```compile_fail
/// fn move_it(desc: &mut vmaspace::VmAreaDesc<'_>) {
///     desc.set_start(0);
/// }
/// ```
///
/// nor read back the write-only fields:
///
/// ```compile_fail
/// fn peek(desc: &vmaspace::VmAreaDesc<'_>) {
///     let _ = desc.vm_ops();
/// }
/// ```
pub struct VmAreaDesc<'a> {
    mm: MmInfo,
    file: &'a Arc<OpenFile>,
    start: u64,
    end: u64,
    pgoff: u64,
    vm_file: Arc<OpenFile>,
    vm_flags: VmFlags,
    page_prot: PageProt,
    vm_ops: Option<Arc<VmOperations>>,
    private_data: Option<PrivateData>,
    action: MmapAction,
}

impl fmt::Debug for VmAreaDesc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VmAreaDesc({:#x}-{:#x} pgoff {:#x} {:?})", self.start, self.end, self.pgoff, self.vm_flags)
    }
}

/// The fields a hook hands back to the mmap code.
pub(crate) struct DescOutput {
    pub pgoff: u64,
    pub vm_file: Arc<OpenFile>,
    pub vm_flags: VmFlags,
    pub page_prot: PageProt,
    pub vm_ops: Option<Arc<VmOperations>>,
    pub private_data: Option<PrivateData>,
    pub action: MmapAction,
}

impl<'a> VmAreaDesc<'a> {
    pub(crate) fn new(
        mm: MmInfo,
        file: &'a Arc<OpenFile>,
        start: u64,
        end: u64,
        pgoff: u64,
        vm_flags: VmFlags,
    ) -> Self {
        VmAreaDesc {
            mm,
            file,
            start,
            end,
            pgoff,
            vm_file: file.clone(),
            vm_flags,
            page_prot: PageProt::from_flags(vm_flags),
            vm_ops: None,
            private_data: None,
            action: MmapAction::default(),
        }
    }
    pub(crate) fn into_output(self) -> DescOutput {
        DescOutput {
            pgoff: self.pgoff,
            vm_file: self.vm_file,
            vm_flags: self.vm_flags,
            page_prot: self.page_prot,
            vm_ops: self.vm_ops,
            private_data: self.private_data,
            action: self.action,
        }
    }

    /// The address space being mapped into (read-only).
    pub fn mm(&self) -> &MmInfo {
        &self.mm
    }
    /// The file whose hook is running (read-only; may differ from `vm_file` in stacked files).
    pub fn file(&self) -> &Arc<OpenFile> {
        self.file
    }
    /// The first address of the mapping to be (read-only).
    pub fn start(&self) -> u64 {
        self.start
    }
    /// The address after its last byte (read-only).
    pub fn end(&self) -> u64 {
        self.end
    }
    /// `vma_desc_size()`.
    pub fn size(&self) -> u64 {
        self.end - self.start
    }
    /// The file page at `start`.
    pub fn pgoff(&self) -> u64 {
        self.pgoff
    }
    /// Sets the file page at `start`.
    pub fn set_pgoff(&mut self, pgoff: u64) {
        self.pgoff = pgoff;
    }
    /// The file the VMA will hold (`vm_file`).
    pub fn vm_file(&self) -> &Arc<OpenFile> {
        &self.vm_file
    }
    /// Maps another file instead (the VMA takes a reference to it).
    pub fn set_vm_file(&mut self, file: Arc<OpenFile>) {
        self.vm_file = file;
    }
    /// The flags the VMA will have.
    pub fn vm_flags(&self) -> VmFlags {
        self.vm_flags
    }
    /// Sets the flags the VMA will have; the merge attempt sees them.
    pub fn set_vm_flags(&mut self, flags: VmFlags) {
        self.vm_flags = flags;
    }
    /// The page protection the VMA will have.
    pub fn page_prot(&self) -> PageProt {
        self.page_prot
    }
    /// Sets the page protection.
    pub fn set_page_prot(&mut self, prot: PageProt) {
        self.page_prot = prot;
    }
    /// Write-only: the operations the VMA will carry.
    pub fn set_vm_ops(&mut self, ops: Arc<VmOperations>) {
        self.vm_ops = Some(ops);
    }
    /// Write-only: the VMA's `vm_private_data`.
    pub fn set_private_data(&mut self, data: PrivateData) {
        self.private_data = Some(data);
    }
    /// Write-only: what to do once the VMA exists (6.19's `desc->action`).
    pub fn set_action(&mut self, action: MmapAction) {
        self.action = action;
    }
    /// `mmap_action_remap_full()`: remap the whole mapping to frames from `pfn`.
    pub fn remap_full(&mut self, pfn: u64) {
        self.action.kind = MmapActionKind::RemapPfn { start: self.start, pfn, size: self.end - self.start };
    }
}

/// The half-built VMA a legacy `.mmap` hook receives. Everything is writable, as in C; what
/// Linux forbids is reported afterwards as a [`DriverBug`].
pub struct LegacyVma<'a> {
    /// The VMA's first address (a hook must not change it: reported as a driver bug).
    pub start: u64,
    /// The address after its last byte (a hook must not change it).
    pub end: u64,
    /// The file page at `start`.
    pub pgoff: u64,
    /// The VMA's flags (a hook must not add `VM_MAYWRITE` to a read-only shared mapping).
    pub flags: VmFlags,
    /// The page protection.
    pub page_prot: PageProt,
    /// The file the VMA holds; a stacked file replaces it with its lower file.
    pub vm_file: Option<Arc<OpenFile>>,
    /// The VMA's operations.
    pub vm_ops: Option<Arc<VmOperations>>,
    /// What the driver keeps in `vm_private_data`.
    pub private_data: Option<PrivateData>,
    /// The file system the hook may create internal files in (`shmem_zero_setup`).
    pub vfs: &'a crate::Vfs,
    /// The address space being mapped into (read-only).
    pub mm: MmInfo,
    /// Ranges `remap_pfn_range` mapped, as (start, size).
    pub(crate) remapped: Vec<(u64, u64)>,
}

impl LegacyVma<'_> {
    /// Linux: `remap_pfn_range()` from a legacy hook: maps frames from `pfn` at
    /// `[addr, addr+size)` and makes the VMA `VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP`
    /// (with `pgoff = pfn` for a copy-on-write mapping). `EINVAL` outside the VMA.
    pub fn remap_pfn_range(&mut self, addr: u64, pfn: u64, size: u64) -> Result<(), Errno> {
        if addr < self.start || addr.checked_add(size).is_none_or(|e| e > self.end) {
            return Err(Errno::EINVAL);
        }
        if self.flags.0 & (VmFlags::SHARED | VmFlags::MAYWRITE).0 == VmFlags::MAYWRITE.0 {
            if addr != self.start || size != self.end - self.start {
                return Err(Errno::EINVAL);
            }
            self.pgoff = pfn;
        }
        self.flags |= VmFlags::REMAP_FLAGS;
        self.remapped.push((addr, size));
        Ok(())
    }
}

impl fmt::Debug for LegacyVma<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LegacyVma({:#x}-{:#x} pgoff {:#x} {:?})", self.start, self.end, self.pgoff, self.flags)
    }
}

/// Something a driver did that Linux reports with a WARN and then tolerates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverBug {
    /// A legacy `.mmap` moved `vm_start`.
    ChangedStart {
        /// The file's operations label.
        file: &'static str,
        /// `vm_start` before the hook.
        from: u64,
        /// `vm_start` after it.
        to: u64,
    },
    /// A legacy `.mmap` added `VM_MAYWRITE`.
    AddedMayWrite {
        /// The file's operations label.
        file: &'static str,
    },
    /// An operations table with both `.mmap` and `.mmap_prepare`.
    BothHooks {
        /// The file's operations label.
        file: &'static str,
    },
}
