//! A device that maps physical frames, written twice: with the legacy `.mmap` and
//! `remap_pfn_range` (as `/dev/mem` is in 6.18), and converted to `mmap_prepare` with 6.19's
//! [`MmapAction`] (as `/dev/mem` is in 6.19), so the two can be compared side by side.
//!
//! The device owns `frames` physical frames starting at `base_pfn`; file offset `k` pages maps
//! frame `base_pfn + k`. A mapping that runs past the last frame maps only the frames that
//! exist; the rest of it faults with SIGBUS. Linux refuses a partial remap of a private
//! (copy-on-write) mapping, so such a mapping fails.

use crate::addr::PAGE_SHIFT;
use crate::driver::{
    FMode, FileOperations, Files, Inode, InodeMode, InodeState, LegacyMmap, LegacyVma, MmapAction, MmapActionKind,
    MmapHook, MmapPrepare, OpenFile, VmAreaDesc, VmOperations,
};
use crate::errno::Errno;
use std::sync::Arc;

/// The frames a PFN device exposes.
#[derive(Debug, Clone, Copy)]
pub struct Frames {
    /// The first physical frame the device exposes.
    pub base_pfn: u64,
    /// How many frames the device exposes.
    pub frames: u64,
}

impl Frames {
    /// The part of a mapping of `pages` pages at file page `pgoff` that has frames: its length
    /// in pages (0 when the offset is past the end).
    fn pages_backed(&self, pgoff: u64, pages: u64) -> u64 {
        self.frames.saturating_sub(pgoff).min(pages)
    }
}

/// The device with a legacy `.mmap` that calls `remap_pfn_range` on the VMA.
#[derive(Debug)]
pub struct PfnDeviceLegacy(pub Frames);

impl LegacyMmap for PfnDeviceLegacy {
    fn mmap(&self, vma: &mut LegacyVma<'_>) -> Result<(), Errno> {
        let pages = (vma.end - vma.start) >> PAGE_SHIFT;
        let backed = self.0.pages_backed(vma.pgoff, pages);
        if backed == 0 {
            return Err(Errno::EINVAL);
        }
        let (start, pfn) = (vma.start, self.0.base_pfn + vma.pgoff);
        vma.vm_ops = Some(pfn_vm_ops());
        vma.remap_pfn_range(start, pfn, backed << PAGE_SHIFT)
    }
}

/// The same device converted to `mmap_prepare`: the remap is deferred with an [`MmapAction`]
/// until the VMA exists, and a failing remap is reported as `EAGAIN` by the error hook, as
/// 6.19's `/dev/mem` does.
#[derive(Debug)]
pub struct PfnDevicePrepare(pub Frames);

impl MmapPrepare for PfnDevicePrepare {
    fn mmap_prepare(&self, desc: &mut VmAreaDesc<'_>) -> Result<(), Errno> {
        let backed = self.0.pages_backed(desc.pgoff(), desc.size() >> PAGE_SHIFT);
        if backed == 0 {
            return Err(Errno::EINVAL);
        }
        let pfn = self.0.base_pfn + desc.pgoff();
        desc.set_vm_ops(pfn_vm_ops());
        desc.set_action(MmapAction {
            kind: MmapActionKind::RemapPfn { start: desc.start(), pfn, size: backed << PAGE_SHIFT },
            error_hook: Some(Arc::new(|_| Errno::EAGAIN)),
            ..MmapAction::default()
        });
        Ok(())
    }
}

/// The device's VMA operations (no fault handler: unmapped frames raise SIGBUS).
pub fn pfn_vm_ops() -> Arc<VmOperations> {
    Arc::new(VmOperations::labelled("pfn_vm_ops"))
}

/// Which of the two implementations to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PfnHook {
    /// Legacy `.mmap` with `remap_pfn_range` inside the hook.
    Legacy,
    /// `mmap_prepare` with a deferred `MmapAction` remap.
    Prepare,
}

/// Opens a PFN device of `frames` at `path` for reading and writing.
pub fn open_pfn_device(vfs: &dyn Files, path: &[u8], frames: Frames, hook: PfnHook) -> Arc<OpenFile> {
    let hook = match hook {
        PfnHook::Legacy => MmapHook::Legacy(Arc::new(PfnDeviceLegacy(frames))),
        PfnHook::Prepare => MmapHook::Prepare(Arc::new(PfnDevicePrepare(frames))),
    };
    let ops = Arc::new(FileOperations::new("pfn", hook));
    let inode = Inode::new(1, (1, 1), ops.clone(), InodeState::linked(path, 0)).with_mode(InodeMode::CharDevice);
    vfs.open_with_ops(Arc::new(inode), FMode { read: true, write: true }, ops)
}
