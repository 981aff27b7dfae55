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

use crate::file::{CFileOperations, FileOperations, InodeKind, Placement};
use std::sync::{Arc, OnceLock};

/// The operations of a built-in inode.
pub fn file_operations(kind: InodeKind, path: &[u8]) -> Arc<FileOperations> {
    static REGULAR: OnceLock<Arc<FileOperations>> = OnceLock::new();
    static SHMEM: OnceLock<Arc<FileOperations>> = OnceLock::new();
    static ZERO: OnceLock<Arc<FileOperations>> = OnceLock::new();
    static NULL: OnceLock<Arc<FileOperations>> = OnceLock::new();
    static SECRETMEM: OnceLock<Arc<FileOperations>> = OnceLock::new();
    let cell = match kind {
        InodeKind::Regular => &REGULAR,
        InodeKind::Shmem => &SHMEM,
        InodeKind::CharDevice if path == b"/dev/zero" => &ZERO,
        InodeKind::CharDevice => &NULL,
        InodeKind::Secretmem => &SECRETMEM,
        InodeKind::Hugetlb => return hugetlbfs::hugetlbfs_file_operations(crate::hugetlb::HugeSize::Pmd),
    };
    cell.get_or_init(|| {
        Arc::new(match (kind, path) {
            (InodeKind::Regular, _) => regular::ext4_file_operations(),
            (InodeKind::Shmem, _) => shmem::shmem_file_operations(),
            (InodeKind::CharDevice, b"/dev/zero") => zero::zero_file_operations(),
            (InodeKind::CharDevice, _) => {
                // /dev/null has neither hook: mmap fails with ENODEV.
                FileOperations::from_c_table("null", CFileOperations::default(), Placement::Default)
            }
            (InodeKind::Secretmem, _) => secretmem::secretmem_file_operations(),
            (InodeKind::Hugetlb, _) => unreachable!("hugetlbfs operations are per page size"),
        })
    })
    .clone()
}
