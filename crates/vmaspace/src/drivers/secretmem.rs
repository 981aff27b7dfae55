//! `memfd_secret` memory (Linux: `secretmem_mmap_prepare`, `mmap_prepare` since 6.16).

use crate::driver::{
    CacheFault, FileOperations, Files, Inode, InodeState, MmapHook, MmapPrepare, SuperBlock, VmAreaDesc, VmOperations,
};
use crate::errno::Errno;
use crate::flags::VmFlags;
use crate::vfs::dev;
use std::sync::{Arc, OnceLock};

/// `secretmem_vm_ops`: the operations of secretmem mappings.
pub fn secretmem_vm_ops() -> Arc<VmOperations> {
    static OPS: OnceLock<Arc<VmOperations>> = OnceLock::new();
    OPS.get_or_init(|| {
        Arc::new(VmOperations { cache_fault: Some(CacheFault::Allocate), ..VmOperations::labelled("secretmem_vm_ops") })
    })
    .clone()
}

/// Linux: `vma_is_secretmem()`: whether a VMA's operations are secretmem's.
pub fn vma_is_secretmem(ops: Option<&Arc<VmOperations>>) -> bool {
    ops.is_some_and(|o| Arc::ptr_eq(o, &secretmem_vm_ops()))
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

/// `secretmem_fops`: `mmap_prepare`, the plain placement, no `fallocate`.
pub fn secretmem_file_operations() -> Arc<FileOperations> {
    static OPS: OnceLock<Arc<FileOperations>> = OnceLock::new();
    OPS.get_or_init(|| Arc::new(FileOperations::new("secretmem", MmapHook::Prepare(Arc::new(SecretmemMmapPrepare)))))
        .clone()
}

/// Linux: `secretmem_file_create()`: an unlinked object on the `noexec` secretmem mount whose
/// size can be set once (`secretmem_setattr`).
pub fn secretmem_file_create(files: &dyn Files) -> Arc<Inode> {
    let inode = Inode::new(
        files.next_internal_ino(),
        dev::SECRETMEM,
        secretmem_file_operations(),
        InodeState::unlinked(b"/secretmem", 0),
    )
    .with_sb(SuperBlock { noexec: true, ..SuperBlock::default() })
    .with_setattr_size(Arc::new(|inode, _| if inode.state().size != 0 { Err(Errno::EINVAL) } else { Ok(()) }));
    Arc::new(inode)
}
