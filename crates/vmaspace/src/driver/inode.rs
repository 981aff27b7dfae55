//! Inodes: the object a mapping shows as `dev inode name`, and what the memory-mapping code may
//! ask of one: its mode (`S_ISREG`, `S_ISCHR`), its file system's limits (`s_maxbytes`, a
//! `noexec` mount), whether it keeps memfd seals, its size-change hook (`i_op->setattr`), and
//! the state its driver keeps in it (`i_private`).

use super::file::FileOperations;
use crate::errno::Errno;
use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// The file type bits of `i_mode` the memory-mapping code looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum InodeMode {
    /// `S_ISREG`: a file with data (on a disk, tmpfs or hugetlbfs file system; a memfd). Its
    /// pages are a page cache that truncation shrinks, and its size is checked by mmap.
    #[default]
    Regular,
    /// `S_ISCHR`: a character device (`/dev/zero`, a frame-mapping device). It cannot be
    /// truncated or unlinked by the model, and mappings may reach any offset.
    CharDevice,
}

/// What an inode's file system and mount say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuperBlock {
    /// `s_maxbytes`: the largest file (checked by `fallocate`, so by `MADV_REMOVE`).
    pub max_bytes: u64,
    /// The mount is `noexec` (`path_noexec()`): mappings get no `VM_MAYEXEC` and `PROT_EXEC`
    /// is refused.
    pub noexec: bool,
    /// `s_bdi->ra_pages`: the read-ahead window of the device behind the file system, in
    /// pages (`read_ahead_kb` / 4; `VM_READAHEAD_PAGES`, 32, by default). mmap read-around
    /// reads this many pages around a missing one.
    pub ra_pages: u64,
    /// A size change that leaves the end of the file inside a page zeroes the rest of its
    /// block through the page cache (ext4's `ext4_block_truncate_page()` on a shrink, the old
    /// end's block on a growth), which leaves that page cached even over a hole.
    pub zeroes_eof_block: bool,
    /// ext4's `auto_da_alloc` (on by default): a file truncated to nothing has its delayed
    /// allocations forced, its dirty pages written back, when a file description of it is
    /// released (`ext4_release_file()` → `ext4_alloc_da_blocks()` → `filemap_flush()`), so a
    /// program that truncates and rewrites a file does not lose it in a crash.
    pub auto_da_alloc: bool,
}

impl SuperBlock {
    /// `MAX_LFS_FILESIZE`.
    pub const MAX_LFS_FILESIZE: u64 = i64::MAX as u64;
    /// `VM_READAHEAD_PAGES`: the default read-ahead window (128 KiB).
    pub const VM_READAHEAD_PAGES: u64 = 32;
}

impl Default for SuperBlock {
    fn default() -> SuperBlock {
        SuperBlock {
            max_bytes: SuperBlock::MAX_LFS_FILESIZE,
            noexec: false,
            ra_pages: SuperBlock::VM_READAHEAD_PAGES,
            zeroes_eof_block: false,
            auto_da_alloc: false,
        }
    }
}

/// The mutable part of an inode.
#[derive(Debug, Clone, Default)]
pub struct InodeState {
    /// The path maps shows (without ` (deleted)`).
    pub path: Vec<u8>,
    /// False once unlinked (or for internal objects that never had a name).
    pub linked: bool,
    /// The file size in bytes (`i_size`).
    pub size: u64,
    /// `F_SEAL_*` bits (only for inodes that keep seals: [`Inode::sealable`]).
    pub seals: u64,
    /// Any execute permission bit in the mode (memfds without `MFD_NOEXEC_SEAL` are 0777).
    pub executable: bool,
    /// VMAs of any process that map the inode shared and may write it (`i_mmap_writable`);
    /// `F_SEAL_WRITE` is refused while there are any.
    pub writable_mappings: u64,
}

impl InodeState {
    /// The state of a linked file at `path` of `size` bytes.
    pub fn linked(path: &[u8], size: u64) -> InodeState {
        InodeState { path: path.to_vec(), linked: true, size, ..InodeState::default() }
    }
    /// The state of an object that never had a name (maps shows `path (deleted)`).
    pub fn unlinked(path: &[u8], size: u64) -> InodeState {
        InodeState { path: path.to_vec(), linked: false, size, ..InodeState::default() }
    }
}

/// `i_op->setattr` for `ATTR_SIZE`: may the file take the new size, and what the file system
/// does when it does (hugetlbfs drops reservations past the end). Called with the state
/// unlocked; an error refuses the `ftruncate` (or `open` with `O_TRUNC`).
pub type SetattrSize = Arc<dyn Fn(&Inode, u64) -> Result<(), Errno> + Send + Sync>;

/// Driver state an inode keeps (`i_private`).
pub type InodePrivate = Arc<dyn Any + Send + Sync>;

/// An inode. Made with [`Inode::new`] and the `with_*` methods by the file system or driver it
/// belongs to.
pub struct Inode {
    /// The inode number maps shows.
    pub ino: u64,
    /// `(major, minor)` of the file system.
    pub dev: (u32, u32),
    /// Regular file or character device.
    pub mode: InodeMode,
    /// The operations files opened on it get (`i_fop`).
    pub fop: Arc<FileOperations>,
    /// Its file system's limits and mount flags.
    pub sb: SuperBlock,
    /// Whether it keeps memfd seals (`memfd_file_seals_ptr()`: shmem and hugetlbfs files).
    pub sealable: bool,
    /// `i_op->setattr` for size changes; None accepts every size.
    pub setattr_size: Option<SetattrSize>,
    /// Driver state (`i_private`): hugetlbfs keeps its reservations and page cache here.
    pub private: Option<InodePrivate>,
    state: Mutex<InodeState>,
    /// `i_mapping`'s pages (Linux: `struct address_space`).
    cache: Mutex<super::mapping::PageCache>,
}

impl fmt::Debug for Inode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inode")
            .field("ino", &self.ino)
            .field("dev", &self.dev)
            .field("mode", &self.mode)
            .field("fop", &self.fop.label)
            .field("sb", &self.sb)
            .field("sealable", &self.sealable)
            .field("state", &*self.state())
            .finish()
    }
}

impl Inode {
    /// A regular file's inode with operations `fop`, on a file system with the default limits,
    /// keeping no seals and no driver state.
    pub fn new(ino: u64, dev: (u32, u32), fop: Arc<FileOperations>, state: InodeState) -> Inode {
        Inode {
            ino,
            dev,
            mode: InodeMode::Regular,
            fop,
            sb: SuperBlock::default(),
            sealable: false,
            setattr_size: None,
            private: None,
            state: Mutex::new(state),
            cache: Mutex::default(),
        }
    }
    /// With another mode (a character device).
    pub fn with_mode(mut self, mode: InodeMode) -> Inode {
        self.mode = mode;
        self
    }
    /// With its file system's limits.
    pub fn with_sb(mut self, sb: SuperBlock) -> Inode {
        self.sb = sb;
        self
    }
    /// Keeping memfd seals.
    pub fn with_seals(mut self) -> Inode {
        self.sealable = true;
        self
    }
    /// With a size-change hook.
    pub fn with_setattr_size(mut self, hook: SetattrSize) -> Inode {
        self.setattr_size = Some(hook);
        self
    }
    /// With driver state.
    pub fn with_private(mut self, data: InodePrivate) -> Inode {
        self.private = Some(data);
        self
    }
    /// `S_ISREG`.
    pub fn is_regular(&self) -> bool {
        self.mode == InodeMode::Regular
    }
    /// The driver state, if it is a `T`.
    pub fn private_as<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.private.as_ref().and_then(|p| p.downcast_ref::<T>())
    }
    /// The inode's mutable state. (A poisoned lock only means a driver callback panicked; the
    /// state itself is still consistent, so it is used as it is.)
    pub fn state(&self) -> MutexGuard<'_, InodeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// The page cache holds pages the model did not see arrive (the file existed before the
    /// trace, or was read or written by calls outside it): from now on every mapping of the
    /// file has unknown page counters.
    pub fn forget_page_cache(&self) {
        self.cache().forget();
    }
    pub(crate) fn cache(&self) -> MutexGuard<'_, super::mapping::PageCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}
