//! ext4: regular files of the root file system and of ext4 mounts (Linux 6.18:
//! `ext4_file_mmap_prepare`, `mmap_prepare` since 6.17).

use crate::driver::{
    CacheFault, FileOperations, FileSystem, Inode, InodeState, MmapHook, MmapPrepare, SuperBlock, ThpPlacement,
    VmAreaDesc, VmOperations,
};
use crate::errno::Errno;
use crate::flags::VmFlags;
use std::sync::{Arc, OnceLock};

/// `ext4_file_vm_ops` (no close: mappings of one open file merge).
pub fn ext4_file_vm_ops() -> Arc<VmOperations> {
    static OPS: OnceLock<Arc<VmOperations>> = OnceLock::new();
    OPS.get_or_init(|| {
        Arc::new(VmOperations {
            map_pages: true,
            cache_fault: Some(CacheFault::Filemap),
            ..VmOperations::labelled("ext4_file_vm_ops")
        })
    })
    .clone()
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

/// `ext4_file_operations`: `mmap_prepare`, THP-aligned placement, `FOP_MMAP_SYNC`, hole
/// punching.
pub fn ext4_file_operations() -> Arc<FileOperations> {
    static OPS: OnceLock<Arc<FileOperations>> = OnceLock::new();
    OPS.get_or_init(|| {
        Arc::new(
            FileOperations::new("ext4", MmapHook::Prepare(Arc::new(Ext4MmapPrepare)))
                .with_get_unmapped_area(Arc::new(ThpPlacement))
                .with_mmap_sync()
                .with_punch_hole(Arc::new(|_, _, _| Ok(()))),
        )
    })
    .clone()
}

/// ext4's `s_maxbytes` with 4 KiB blocks and extents: 2^32 - 1 blocks.
pub const EXT4_MAX_BYTES: u64 = 0xffff_ffff << 12;

/// ext4 as a file system type, on a device with a read-ahead window of `ra_pages`.
#[derive(Debug, Clone, Copy)]
pub struct Ext4 {
    /// The device's read-ahead window in pages (`SuperBlock::ra_pages`).
    pub ra_pages: u64,
}

impl Default for Ext4 {
    fn default() -> Ext4 {
        Ext4 { ra_pages: SuperBlock::VM_READAHEAD_PAGES }
    }
}

impl FileSystem for Ext4 {
    fn name(&self) -> &'static str {
        "ext4"
    }
    fn new_inode(&self, ino: u64, dev: (u32, u32), state: InodeState) -> Inode {
        Inode::new(ino, dev, ext4_file_operations(), state).with_sb(SuperBlock {
            max_bytes: EXT4_MAX_BYTES,
            noexec: false,
            ra_pages: self.ra_pages,
            zeroes_eof_block: true,
            auto_da_alloc: true,
        })
    }
    fn snapshot_vm_ops(&self) -> Option<Arc<VmOperations>> {
        Some(ext4_file_vm_ops())
    }
}
