//! `memfd_secret` memory (Linux: `secretmem_mmap_prepare`, `mmap_prepare` since 6.16).

use crate::errno::Errno;
use crate::file::{FileOperations, MmapHook, MmapPrepare, Placement, VmAreaDesc, VmOperations};
use crate::flags::VmFlags;
use std::sync::{Arc, OnceLock};

/// `secretmem_vm_ops`: the operations of secretmem mappings.
pub fn secretmem_vm_ops() -> Arc<VmOperations> {
    static OPS: OnceLock<Arc<VmOperations>> = OnceLock::new();
    OPS.get_or_init(|| Arc::new(VmOperations::labelled("secretmem_vm_ops"))).clone()
}

/// secretmem's `mmap_prepare`: shared only, locked and never dumped.
#[derive(Debug, Default)]
pub struct SecretmemMmapPrepare;

impl MmapPrepare for SecretmemMmapPrepare {
    fn mmap_prepare(&self, desc: &mut VmAreaDesc<'_>) -> Result<(), Errno> {
        if !desc.vm_flags().intersects(VmFlags::SHARED | VmFlags::MAYSHARE) {
            return Err(Errno::EINVAL);
        }
        let pages = desc.size() >> crate::addr::PAGE_SHIFT;
        if !desc.mm().mlock_future_ok(desc.vm_flags() | VmFlags::LOCKED, pages) {
            return Err(Errno::EAGAIN);
        }
        desc.set_vm_flags(desc.vm_flags() | VmFlags::LOCKED | VmFlags::DONTDUMP);
        desc.set_vm_ops(secretmem_vm_ops());
        Ok(())
    }
}

/// `secretmem_fops`: `mmap_prepare`, the plain placement.
pub fn secretmem_file_operations() -> FileOperations {
    FileOperations {
        label: "secretmem",
        hook: Ok(MmapHook::Prepare(Arc::new(SecretmemMmapPrepare))),
        placement: Placement::Default,
        mmap_sync: false,
    }
}
