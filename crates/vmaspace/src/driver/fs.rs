//! File systems: what a file system driver implements so that the model's VFS can create and
//! open its files ([`FileSystem`]), and what the VFS lends a driver ([`Files`]).

use super::file::{FMode, FileOperations, OpenFile};
use super::inode::{Inode, InodeState};
use super::vm_ops::VmOperations;
use std::fmt;
use std::sync::Arc;

/// What the VFS lends drivers and file systems: open file descriptions and inode numbers.
pub trait Files {
    /// A new open file description of `inode` with operations `ops` (distinct from every other
    /// `open`: two descriptions never merge).
    fn open_with_ops(&self, inode: Arc<Inode>, mode: FMode, ops: Arc<FileOperations>) -> Arc<OpenFile>;
    /// A new open file description of `inode` with the operations its file system gives it.
    fn open_inode(&self, inode: Arc<Inode>, mode: FMode) -> Arc<OpenFile>;
    /// A fresh inode number on an internal mount (shmem, secretmem, hugetlbfs objects).
    fn next_internal_ino(&self) -> u64;
}

/// A file system type: its files, created by path (`open` with `O_CREAT` in a directory of its
/// mount) or found in a `/proc/PID/maps` snapshot, and how they open.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// The type's name (`ext4`, `tmpfs`, ...), as `mount -t` spells it.
    fn name(&self) -> &'static str;
    /// A new inode of this file system: `state` has its path, size and link state.
    fn new_inode(&self, ino: u64, dev: (u32, u32), state: InodeState) -> Inode;
    /// Opens one of its inodes (a stacked file system returns a file over a backing one).
    fn open(&self, files: &dyn Files, inode: Arc<Inode>, mode: FMode) -> Arc<OpenFile> {
        let ops = inode.fop.clone();
        files.open_with_ops(inode, mode, ops)
    }
    /// The operations of a VMA of one of its files found in a maps snapshot (it was never
    /// mapped through the hook, so the hook's choice is made here).
    fn snapshot_vm_ops(&self) -> Option<Arc<VmOperations>> {
        None
    }
}
