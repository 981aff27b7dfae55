//! A stacked file (as overlayfs and FUSE passthrough are): its own `.mmap` maps the file it
//! stacks on. When that lower file has only `mmap_prepare`, Linux 6.18 calls it through the
//! compatibility layer, [`compat_vma_mmap_prepare`], with 6.18's behaviour: the flags the hook
//! sets are OR'ed into the VMA, so flags it clears stay set, and its `vm_ops` replace the VMA's
//! even when it set none.

use crate::errno::Errno;
use crate::file::{
    FileOperations, LegacyMmap, LegacyVma, MmapHook, MmapPrepare, OpenFile, PageProt, Placement, VmAreaDesc,
};
use std::sync::Arc;

/// Linux 6.18: `__compat_vma_mmap_prepare(f_op, file, vma)`: runs `hook` on a descriptor made
/// from the half-built `vma`, then applies the result with `set_vma_from_desc`. On error the
/// VMA is left as it was.
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
    FileOperations {
        label: "stacked",
        hook: Ok(MmapHook::Legacy(Arc::new(StackedMmap { lower }))),
        placement: Placement::Default,
        mmap_sync: false,
    }
}
