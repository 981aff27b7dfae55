//! shmem: memfd and shared anonymous memory (Linux 6.18: `shmem_mmap`, a legacy `.mmap`;
//! shmem moves to `mmap_prepare` in 6.19).

use crate::errno::Errno;
use crate::file::{
    FMode, FileOperations, InodeKind, LegacyMmap, LegacyVma, MmInfo, MmapHook, OpenFile, Placement, VmOperations,
};
use crate::flags::VmFlags;
use crate::vfs::{Vfs, dev};
use std::sync::{Arc, OnceLock};

/// `shmem_vm_ops`: mappings of linked shmem files.
pub fn shmem_vm_ops() -> Arc<VmOperations> {
    static OPS: OnceLock<Arc<VmOperations>> = OnceLock::new();
    OPS.get_or_init(|| Arc::new(VmOperations::labelled("shmem_vm_ops"))).clone()
}

/// `shmem_anon_vm_ops`: mappings of unlinked shmem objects (memfd, shared anonymous memory).
pub fn shmem_anon_vm_ops() -> Arc<VmOperations> {
    static OPS: OnceLock<Arc<VmOperations>> = OnceLock::new();
    OPS.get_or_init(|| Arc::new(VmOperations::labelled("shmem_anon_vm_ops"))).clone()
}

/// `shmem_mmap()`.
#[derive(Debug, Default)]
pub struct ShmemMmap;

impl LegacyMmap for ShmemMmap {
    fn mmap(&self, vma: &mut LegacyVma<'_>) -> Result<(), Errno> {
        let linked = vma.vm_file.as_ref().is_some_and(|f| f.inode.state().linked);
        vma.vm_ops = Some(if linked { shmem_vm_ops() } else { shmem_anon_vm_ops() });
        Ok(())
    }
}

/// `shmem_file_operations`.
pub fn shmem_file_operations() -> FileOperations {
    FileOperations {
        label: "shmem",
        hook: Ok(MmapHook::Legacy(Arc::new(ShmemMmap))),
        placement: Placement::Shmem,
        mmap_sync: false,
    }
}

/// Linux: `shmem_zero_setup()`: a new shmem object named `dev/zero` of the mapping's size,
/// which maps shows as `/dev/zero (deleted)`. Its size is committed up front unless the mapping
/// is `VM_NORESERVE` (`shmem_acct_size`), so an oversized one fails with `ENOMEM`.
pub fn shmem_zero_setup(
    vfs: &Vfs,
    mm: &MmInfo,
    size: u64,
    flags: VmFlags,
) -> Result<(Arc<OpenFile>, Arc<VmOperations>), Errno> {
    let pages = size.div_ceil(crate::addr::PAGE_SIZE);
    if !flags.contains(VmFlags::NORESERVE) && !mm.vm_enough_memory(pages) {
        return Err(Errno::ENOMEM);
    }
    let inode = vfs.new_internal(InodeKind::Shmem, dev::SHMEM, b"/dev/zero", size);
    let file = vfs.open_inode(inode, FMode { read: true, write: true });
    Ok((file, shmem_anon_vm_ops()))
}
