//! `/dev/zero` (Linux 6.18: `mmap_zero`, a legacy `.mmap`; converted to `mmap_prepare` in 6.19)
//! and `/dev/null` (no hook: it cannot be mapped).

use super::shmem::{ShmemPlacement, shmem_zero_setup};
use crate::driver::{
    AreaRequest, CFileOperations, FileOperations, GetUnmappedArea, Inode, InodeMode, InodeState, LegacyMmap, LegacyVma,
    MmapHook, UnmappedAreaSearch,
};
use crate::errno::Errno;
use crate::flags::{VmFlags, map};
use std::sync::{Arc, OnceLock};

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

/// `get_unmapped_area_zero()`: shared mappings go where shmem's go, private ones to the THP
/// allocator.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZeroPlacement;

impl GetUnmappedArea for ZeroPlacement {
    fn get_unmapped_area(&self, mm: &dyn UnmappedAreaSearch, req: AreaRequest) -> Result<u64, Errno> {
        if req.flags & map::SHARED != 0 {
            return ShmemPlacement.get_unmapped_area(mm, req);
        }
        mm.thp_get_unmapped_area(req.without_vm_flags())
    }
}

/// `zero_fops` of `/dev/zero`: a legacy `.mmap`, `get_unmapped_area_zero` placement.
pub fn zero_file_operations() -> Arc<FileOperations> {
    static OPS: OnceLock<Arc<FileOperations>> = OnceLock::new();
    OPS.get_or_init(|| {
        Arc::new(
            FileOperations::new("/dev/zero", MmapHook::Legacy(Arc::new(ZeroMmap)))
                .with_get_unmapped_area(Arc::new(ZeroPlacement)),
        )
    })
    .clone()
}

/// `/dev/null` has neither hook: mmap fails with `ENODEV`.
pub fn null_file_operations() -> Arc<FileOperations> {
    static OPS: OnceLock<Arc<FileOperations>> = OnceLock::new();
    OPS.get_or_init(|| Arc::new(FileOperations::from_c_table("null", CFileOperations::default()))).clone()
}

/// The character device inode of `/dev/zero` or `/dev/null` (devtmpfs).
pub fn mem_device(path: &[u8], ino: u64, dev: (u32, u32)) -> Inode {
    let fop = if path == b"/dev/zero" { zero_file_operations() } else { null_file_operations() };
    Inode::new(ino, dev, fop, InodeState::linked(path, 0)).with_mode(InodeMode::CharDevice)
}
