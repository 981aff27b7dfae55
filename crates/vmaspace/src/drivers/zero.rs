//! `/dev/zero` (Linux 6.18: `mmap_zero`, a legacy `.mmap`; converted to `mmap_prepare` in 6.19).

use super::shmem::shmem_zero_setup;
use crate::errno::Errno;
use crate::file::{FileOperations, LegacyMmap, LegacyVma, MmapHook, Placement};
use crate::flags::VmFlags;
use std::sync::Arc;

/// `mmap_zero()`: shared mappings become shmem objects; private ones anonymous memory that
/// keeps `/dev/zero` as its file (maps shows the device and the offset).
#[derive(Debug, Default)]
pub struct ZeroMmap;

impl LegacyMmap for ZeroMmap {
    fn mmap(&self, vma: &mut LegacyVma<'_>) -> Result<(), Errno> {
        if vma.flags.contains(VmFlags::SHARED) {
            let (file, ops) = shmem_zero_setup(vma.vfs, &vma.mm, vma.end - vma.start, vma.flags)?;
            vma.vm_file = Some(file);
            vma.vm_ops = Some(ops);
        } else {
            // vma_set_anonymous()
            vma.vm_ops = None;
        }
        Ok(())
    }
}

/// `zero_fops` of `/dev/zero`: a legacy `.mmap`, `get_unmapped_area_zero` placement.
pub fn zero_file_operations() -> FileOperations {
    FileOperations {
        label: "/dev/zero",
        hook: Ok(MmapHook::Legacy(Arc::new(ZeroMmap))),
        placement: Placement::Zero,
        mmap_sync: false,
    }
}
