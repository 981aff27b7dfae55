//! shmem: tmpfs files, memfds and shared anonymous memory (Linux 6.18: `shmem_mmap`, a legacy
//! `.mmap`; shmem moves to `mmap_prepare` in 6.19).

use crate::driver::{
    AreaRequest, CacheFault, FMode, FileOperations, FileSystem, Files, GetUnmappedArea, Inode, InodeState, LegacyMmap,
    LegacyVma, MmInfo, MmapHook, OpenFile, SetattrSize, UnmappedAreaSearch, VmOperations,
};
use crate::errno::Errno;
use crate::flags::{VmFlags, seal};
use crate::vfs::dev;
use std::sync::{Arc, OnceLock};

/// `shmem_vm_ops`: mappings of linked shmem files.
pub fn shmem_vm_ops() -> Arc<VmOperations> {
    static OPS: OnceLock<Arc<VmOperations>> = OnceLock::new();
    OPS.get_or_init(|| {
        Arc::new(VmOperations {
            map_pages: true,
            cache_fault: Some(CacheFault::Allocate),
            ..VmOperations::labelled("shmem_vm_ops")
        })
    })
    .clone()
}

/// `shmem_anon_vm_ops`: mappings of unlinked shmem objects (memfd, shared anonymous memory).
pub fn shmem_anon_vm_ops() -> Arc<VmOperations> {
    static OPS: OnceLock<Arc<VmOperations>> = OnceLock::new();
    OPS.get_or_init(|| {
        Arc::new(VmOperations {
            map_pages: true,
            cache_fault: Some(CacheFault::Allocate),
            ..VmOperations::labelled("shmem_anon_vm_ops")
        })
    })
    .clone()
}

/// Linux: `vma_is_shmem()`: whether a VMA's operations are shmem's.
pub fn vma_is_shmem(ops: Option<&Arc<VmOperations>>) -> bool {
    ops.is_some_and(|o| Arc::ptr_eq(o, &shmem_vm_ops()) || Arc::ptr_eq(o, &shmem_anon_vm_ops()))
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

/// `shmem_get_unmapped_area()` with huge pages off: the plain search, without the VMA flags.
/// The memory-mapping code uses it for shared anonymous memory too.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShmemPlacement;

impl GetUnmappedArea for ShmemPlacement {
    fn get_unmapped_area(&self, mm: &dyn UnmappedAreaSearch, req: AreaRequest) -> Result<u64, Errno> {
        mm.mm_get_unmapped_area(req.without_vm_flags())
    }
}

/// `shmem_file_operations`.
pub fn shmem_file_operations() -> Arc<FileOperations> {
    static OPS: OnceLock<Arc<FileOperations>> = OnceLock::new();
    OPS.get_or_init(|| {
        Arc::new(
            FileOperations::new("shmem", MmapHook::Legacy(Arc::new(ShmemMmap)))
                .with_get_unmapped_area(Arc::new(ShmemPlacement))
                .with_punch_hole(Arc::new(shmem_punch_hole)),
        )
    })
    .clone()
}

/// `shmem_fallocate(FALLOC_FL_PUNCH_HOLE)`: no holes in a memfd sealed against writing.
fn shmem_punch_hole(inode: &Inode, _offset: u64, _len: u64) -> Result<(), Errno> {
    if inode.state().seals & (seal::WRITE | seal::FUTURE_WRITE) != 0 {
        return Err(Errno::EPERM);
    }
    Ok(())
}

/// `shmem_setattr()` for a size change: refused by `F_SEAL_SHRINK` / `F_SEAL_GROW`.
pub fn shmem_setattr_size() -> SetattrSize {
    Arc::new(|inode, len| {
        let st = inode.state();
        if (len < st.size && st.seals & seal::SHRINK != 0) || (len > st.size && st.seals & seal::GROW != 0) {
            return Err(Errno::EPERM);
        }
        Ok(())
    })
}

/// A shmem inode (sealable, with shmem's size rules).
pub fn shmem_inode(ino: u64, dev: (u32, u32), state: InodeState) -> Inode {
    Inode::new(ino, dev, shmem_file_operations(), state).with_seals().with_setattr_size(shmem_setattr_size())
}

/// Linux: `shmem_file_setup()`: a new, unlinked shmem object on the internal mount.
pub fn shmem_file_setup(files: &dyn Files, name: &[u8], size: u64) -> Arc<Inode> {
    Arc::new(shmem_inode(files.next_internal_ino(), dev::SHMEM, InodeState::unlinked(name, size)))
}

/// Linux: `shmem_zero_setup()`: a new shmem object named `dev/zero` of the mapping's size,
/// which maps shows as `/dev/zero (deleted)`. Its size is committed up front unless the mapping
/// is `VM_NORESERVE` (`shmem_acct_size`), so an oversized one fails with `ENOMEM`.
pub fn shmem_zero_setup(
    files: &dyn Files,
    mm: &MmInfo,
    size: u64,
    flags: VmFlags,
) -> Result<(Arc<OpenFile>, Arc<VmOperations>), Errno> {
    let pages = size.div_ceil(crate::addr::PAGE_SIZE);
    if !flags.contains(VmFlags::NORESERVE) && !mm.vm_enough_memory(pages) {
        return Err(Errno::ENOMEM);
    }
    let inode = shmem_file_setup(files, b"/dev/zero", size);
    let file = files.open_inode(inode, FMode { read: true, write: true });
    Ok((file, shmem_anon_vm_ops()))
}

/// tmpfs as a file system type: its files carry `F_SEAL_SEAL` (sealing is for memfds).
#[derive(Debug, Default)]
pub struct Tmpfs;

impl FileSystem for Tmpfs {
    fn name(&self) -> &'static str {
        "tmpfs"
    }
    fn new_inode(&self, ino: u64, dev: (u32, u32), state: InodeState) -> Inode {
        let inode = shmem_inode(ino, dev, state);
        inode.state().seals = seal::SEAL;
        inode
    }
    fn snapshot_vm_ops(&self) -> Option<Arc<VmOperations>> {
        Some(shmem_anon_vm_ops())
    }
}

/// The internal shmem mount (`shm_mnt`): shared anonymous memory and memfds. Its objects keep
/// no seals until a memfd asks for sealing.
#[derive(Debug, Default)]
pub struct ShmMnt;

impl FileSystem for ShmMnt {
    fn name(&self) -> &'static str {
        "tmpfs"
    }
    fn new_inode(&self, ino: u64, dev: (u32, u32), state: InodeState) -> Inode {
        shmem_inode(ino, dev, state)
    }
    fn snapshot_vm_ops(&self) -> Option<Arc<VmOperations>> {
        Some(shmem_anon_vm_ops())
    }
}
