//! The two ways a hook sees a mapping: the descriptor of `mmap_prepare` ([`VmAreaDesc`]) and
//! the half-built VMA of the legacy `.mmap` ([`LegacyVma`]), and what Linux reports as a driver
//! bug ([`DriverBug`]).

use super::action::{MmapAction, MmapActionKind};
use super::file::MmapPrepare;
use super::file::OpenFile;
use super::fs::Files;
use super::vm_ops::{MmInfo, PageProt, PrivateData, VmOperations};
use crate::errno::Errno;
use crate::flags::VmFlags;
use std::fmt;
use std::sync::Arc;

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
    pub vfs: &'a dyn Files,
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

/// Linux 6.18: `__compat_vma_mmap_prepare(f_op, file, vma)`: runs `hook` on a descriptor made
/// from the half-built `vma`, then applies the result with `set_vma_from_desc`. On error the
/// VMA is left as it was.
/// Stacked files (overlayfs, FUSE passthrough) call it from their legacy `.mmap`.
pub fn compat_vma_mmap_prepare(
    hook: &dyn MmapPrepare,
    file: &Arc<OpenFile>,
    vma: &mut LegacyVma<'_>,
) -> Result<(), Errno> {
    let vm_file = vma.vm_file.clone().unwrap_or_else(|| file.clone());
    let mut desc = VmAreaDesc::new(vma.mm, file, vma.start, vma.end, vma.pgoff, vma.flags);
    desc.set_vm_file(vm_file);
    desc.set_page_prot(vma.page_prot);
    hook.mmap_prepare(&mut desc)?;
    let out = desc.into_output();
    vma.pgoff = out.pgoff;
    if !vma.vm_file.as_ref().is_some_and(|f| Arc::ptr_eq(f, &out.vm_file)) {
        vma.vm_file = Some(out.vm_file);
    }
    // vm_flags_set(): OR, not assignment (changed to assignment after 6.19).
    vma.flags |= out.vm_flags;
    vma.page_prot = PageProt(out.page_prot.0);
    vma.vm_ops = out.vm_ops;
    vma.private_data = out.private_data;
    Ok(())
}
