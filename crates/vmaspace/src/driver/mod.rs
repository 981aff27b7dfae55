//! The driver API: everything a driver or file system sees and implements, and nothing else.
//! Every built-in driver (`crate::drivers`) is written against it, as an outside crate would
//! be; `tests/drivers_public_api.rs` compiles them as one to prove it.
//!
//! A file offers exactly one way to be mapped ([`MmapHook`]):
//! * [`MmapHook::Prepare`] (Linux 6.16's `mmap_prepare`): the driver fills in a
//!   [`VmAreaDesc`] before anything in the address space changes. The descriptor's fields come
//!   in three kinds, enforced by its methods: read-only (the address space, the file whose hook
//!   runs, `start`, `end`), read-write (`pgoff`, `vm_file`, `vm_flags`, `page_prot`) and
//!   write-only (`vm_ops`, `private_data`, `action`). The merge attempt sees the flags the hook
//!   chose.
//! * [`MmapHook::Legacy`] (`.mmap`): the driver gets the new VMA ([`LegacyVma`]) after it was
//!   allocated and may change anything; the kernel's post-checks report what it must not change
//!   as [`DriverBug`]s and the mapping goes on. No merge is attempted after the hook.
//!
//! A table built the C way ([`CFileOperations`], two optional hooks) converts into an
//! [`MmapHook`] with Linux's check: both or neither set cannot be mapped (`ENODEV`).
//!
//! The rest of a file's operations ([`FileOperations`]) answer what the memory-mapping code
//! asks of a file, as Linux's `mm/` asks `f_op`: where its mappings go
//! ([`GetUnmappedArea`]), whether `MAP_SYNC` is accepted, whether holes can be punched. Its
//! inode ([`Inode`]) says its mode, its file system's limits, whether it keeps seals and how it
//! takes a new size. A file system ([`FileSystem`]) makes inodes for paths in its mounts.
//!
//! Modules: [`vm_ops`] (what a VMA carries), [`action`] (deferred work), [`desc`] (the two
//! views of a mapping a hook gets), [`mod@file`] (open files and their operations), [`inode`],
//! [`fs`] (file systems and what the VFS lends them).

pub mod action;
pub mod desc;
pub mod file;
pub mod fs;
pub mod inode;
pub(crate) mod mapping;
pub mod vm_ops;

pub use action::{MmapAction, MmapActionKind};
pub use desc::{DriverBug, LegacyVma, VmAreaDesc, compat_vma_mmap_prepare};
pub use file::{
    AreaRequest, CFileOperations, FMode, FileOperations, GetUnmappedArea, HookTableError, LegacyMmap, MmapHook,
    MmapPrepare, OpenFile, PunchHole, ThpPlacement, UnmappedAreaSearch,
};
pub use fs::{FileSystem, Files};
pub use inode::{Inode, InodeMode, InodePrivate, InodeState, SetattrSize, SuperBlock};
pub use vm_ops::{
    Access, CacheFault, FaultSignal, MmInfo, PageProt, PrivateData, VmFault, VmOperations, VmaView, dummy_vm_ops,
};
