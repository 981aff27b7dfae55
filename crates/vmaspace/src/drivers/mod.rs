//! The built-in files, each with the hook its Linux 6.18 counterpart uses:
//! * regular files on ext4: `mmap_prepare` ([`regular`]);
//! * shmem (memfd, shared anonymous memory): legacy `.mmap` ([`shmem`]);
//! * `/dev/zero`: legacy `.mmap` ([`zero`]); `/dev/null`: no hook, cannot be mapped;
//! * `memfd_secret`: `mmap_prepare` ([`secretmem`]);
//! * hugetlbfs (hugetlbfs mounts, `MFD_HUGETLB`, `MAP_HUGETLB`): legacy `.mmap` ([`hugetlbfs`]);
//! * a device that maps physical frames, once with each hook ([`pfn`]), for embedders and tests;
//! * a stacked (overlayfs-style) file mapping its lower file through the 6.18 compatibility
//!   layer ([`stacked`]).

pub mod hugetlbfs;
pub mod pfn;
pub mod regular;
pub mod secretmem;
pub mod shmem;
pub mod stacked;
pub mod zero;

use crate::file::{CFileOperations, FileOperations, Inode, InodeKind, Placement};
use std::sync::{Arc, OnceLock};

/// The operations of a built-in inode: hugetlbfs ones per the inode's page size, the others
/// by the inode's kind (and path, for `/dev/zero` and `/dev/null`).
pub fn file_operations(inode: &Inode) -> Arc<FileOperations> {
    static REGULAR: OnceLock<Arc<FileOperations>> = OnceLock::new();
    static SHMEM: OnceLock<Arc<FileOperations>> = OnceLock::new();
    static ZERO: OnceLock<Arc<FileOperations>> = OnceLock::new();
    static NULL: OnceLock<Arc<FileOperations>> = OnceLock::new();
    static SECRETMEM: OnceLock<Arc<FileOperations>> = OnceLock::new();
    if let Some(h) = &inode.hugetlb {
        return hugetlbfs::hugetlbfs_file_operations(h.size);
    }
    let (cell, make): (_, fn() -> FileOperations) = match inode.kind {
        InodeKind::Regular => (&REGULAR, regular::ext4_file_operations),
        InodeKind::Shmem => (&SHMEM, shmem::shmem_file_operations),
        InodeKind::CharDevice if inode.state().path == b"/dev/zero" => (&ZERO, zero::zero_file_operations),
        InodeKind::CharDevice => (&NULL, null_file_operations),
        InodeKind::Secretmem => (&SECRETMEM, secretmem::secretmem_file_operations),
        // A hugetlbfs inode made without its huge-page state: its hook refuses it (ENODEV).
        InodeKind::Hugetlb => return hugetlbfs::hugetlbfs_file_operations(crate::hugetlb::HugeSize::Pmd),
    };
    cell.get_or_init(|| Arc::new(make())).clone()
}

/// `/dev/null` has neither hook: mmap fails with ENODEV.
fn null_file_operations() -> FileOperations {
    FileOperations::from_c_table("null", CFileOperations::default(), Placement::Default)
}
