//! `struct mmap_action` (Linux 6.19): work a `mmap_prepare` hook defers until the VMA exists.

use super::vm_ops::VmaView;
use crate::errno::Errno;
use std::fmt;
use std::sync::Arc;

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
