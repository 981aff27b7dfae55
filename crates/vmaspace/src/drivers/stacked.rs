//! A stacked file (as overlayfs and FUSE passthrough are): its own `.mmap` maps the file it
//! stacks on. When that lower file has only `mmap_prepare`, Linux 6.18 calls it through the
//! compatibility layer ([`compat_vma_mmap_prepare`]), with 6.18's behaviour: the flags the hook
//! sets are OR'ed into the VMA, so flags it clears stay set, and its `vm_ops` replace the VMA's
//! even when it set none. [`Overlay`] is overlayfs over an ext4 upper layer.

use super::regular::Ext4;
use crate::driver::{
    FMode, FileOperations, FileSystem, Files, Inode, InodeState, LegacyMmap, LegacyVma, MmapHook, OpenFile,
    compat_vma_mmap_prepare,
};
use crate::errno::Errno;
use std::sync::Arc;

/// The stacked file's `.mmap` (overlayfs's `ovl_mmap` → `backing_file_mmap`): the VMA maps
/// the lower file, whose own hook then runs (through the compatibility layer if it is a
/// `mmap_prepare`).
#[derive(Debug)]
pub struct StackedMmap {
    /// The open lower (backing) file the stacked file maps.
    pub lower: Arc<OpenFile>,
}

impl LegacyMmap for StackedMmap {
    fn mmap(&self, vma: &mut LegacyVma<'_>) -> Result<(), Errno> {
        let hook = self.lower.ops.hook.clone().map_err(Errno::from)?;
        vma.vm_file = Some(self.lower.clone());
        match hook {
            MmapHook::Prepare(h) => compat_vma_mmap_prepare(h.as_ref(), &self.lower, vma),
            MmapHook::Legacy(h) => h.mmap(vma),
        }
    }
}

/// Operations of a file stacked on `lower`.
pub fn stacked_file_operations(lower: Arc<OpenFile>) -> FileOperations {
    FileOperations::new("stacked", MmapHook::Legacy(Arc::new(StackedMmap { lower })))
}

/// overlayfs whose upper layer is ext4: a file opened here is a stacked file over a backing
/// open of the ext4 file, made at open time as `ovl_open` makes it (Linux: `ovl_mmap` →
/// `backing_file_mmap`, legacy `.mmap`, with ext4's `mmap_prepare` run through the
/// compatibility layer). overlayfs has no `get_unmapped_area`, so its mappings are not THP
/// aligned.
///
/// The model keeps one inode for the overlay file and its upper file: what maps shows of the
/// backing file is the overlay's path, device and inode number (Linux: `file_user_path()`,
/// `file_user_inode()`), and size and link state are the upper file's.
#[derive(Debug, Default)]
pub struct Overlay {
    /// The upper layer's ext4 (its device's read-ahead window).
    pub upper: Ext4,
}

impl FileSystem for Overlay {
    fn name(&self) -> &'static str {
        "overlay"
    }
    fn new_inode(&self, ino: u64, dev: (u32, u32), state: InodeState) -> Inode {
        self.upper.new_inode(ino, dev, state)
    }
    fn open(&self, files: &dyn Files, inode: Arc<Inode>, mode: FMode) -> Arc<OpenFile> {
        let backing = files.open_with_ops(inode.clone(), mode, inode.fop.clone());
        files.open_with_ops(inode, mode, Arc::new(stacked_file_operations(backing)))
    }
}
