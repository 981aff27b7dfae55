//! Regular files on ext4 (Linux 6.18: `ext4_file_mmap_prepare`, `mmap_prepare` since 6.17).

use crate::errno::Errno;
use crate::file::{FileOperations, MmapHook, MmapPrepare, Placement, VmAreaDesc, VmOperations};
use crate::flags::VmFlags;
use std::sync::{Arc, OnceLock};

/// `ext4_file_vm_ops` (no close: mappings of one open file merge).
pub fn ext4_file_vm_ops() -> Arc<VmOperations> {
    static OPS: OnceLock<Arc<VmOperations>> = OnceLock::new();
    OPS.get_or_init(|| Arc::new(VmOperations::labelled("ext4_file_vm_ops"))).clone()
}

/// ext4's `mmap_prepare`.
#[derive(Debug, Default)]
pub struct Ext4MmapPrepare;

impl MmapPrepare for Ext4MmapPrepare {
    fn mmap_prepare(&self, desc: &mut VmAreaDesc<'_>) -> Result<(), Errno> {
        // daxdev_mapping_supported(): MAP_SYNC needs synchronous DAX, which the disk is not.
        if desc.vm_flags().contains(VmFlags::SYNC) {
            return Err(Errno::EOPNOTSUPP);
        }
        desc.set_vm_ops(ext4_file_vm_ops());
        Ok(())
    }
}

/// `ext4_file_operations`: `mmap_prepare`, THP-aligned placement, `FOP_MMAP_SYNC`.
pub fn ext4_file_operations() -> FileOperations {
    FileOperations {
        label: "ext4",
        hook: Ok(MmapHook::Prepare(Arc::new(Ext4MmapPrepare))),
        placement: Placement::Thp,
        mmap_sync: true,
    }
}
