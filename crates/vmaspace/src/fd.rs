//! The file calls a trace makes: open, close, dup, ftruncate, unlink, memfd_create,
//! memfd_secret and memfd seals.

use crate::AddressSpace;
use crate::driver::{FMode, Inode, OpenFile};
use crate::drivers;
use crate::errno::{Errno, SysResult};
use crate::flags::{mfd, open, seal};
use crate::hugetlb::HugeSize;
use std::sync::Arc;

pub use crate::flags::AT_FDCWD;
/// `PATH_MAX`.
const PATH_MAX: usize = 4096;
/// `MFD_NAME_MAX_LEN`.
const MFD_NAME_MAX: usize = 249;
const F_ALL_SEALS: u64 = 0x3f;

impl AddressSpace {
    /// Opens `/dev/null` as fds 0, 1 and 2, as the process a trace runs in has them.
    pub fn open_stdio(&mut self) {
        let (null, _) = self.vfs.lookup(b"/dev/null", false).expect("/dev/null exists");
        let modes = [(true, false), (false, true), (false, true)];
        for (fd, (read, write)) in modes.into_iter().enumerate() {
            let f = self.vfs.open_inode(null.clone(), FMode { read, write });
            self.fds.insert(fd as i32, f);
        }
    }

    /// Closes every descriptor but `keep` (what an exec leaves of close-on-exec descriptors,
    /// as a recording says; the model does not track `O_CLOEXEC` itself).
    pub fn keep_only_fds(&mut self, keep: &[i64]) {
        self.fds.retain(|fd, _| keep.contains(&i64::from(*fd)));
    }

    /// A placeholder at `fd` for a descriptor a recorded program got from a call the model has
    /// no file for (a socket, a pipe): it keeps the numbering of later descriptors, can be
    /// closed and duplicated, and cannot be mapped (`ENODEV`, as a socket or a pipe).
    pub fn install_placeholder(&mut self, fd: i64, what: &[u8]) -> SysResult {
        let fd32 = fd_index(fd).filter(|n| (*n as u64) < self.settings.rlimit_nofile).ok_or(Errno::EBADF)?;
        let ops = crate::drivers::zero::null_file_operations();
        let mut name = b"placeholder:".to_vec();
        name.extend_from_slice(what);
        let inode = crate::driver::Inode::new(0, (0, 0), ops.clone(), crate::driver::InodeState::unlinked(&name, 0))
            .with_mode(crate::driver::InodeMode::CharDevice);
        let file = self.vfs.open_with_ops(Arc::new(inode), FMode { read: true, write: true }, ops);
        self.fds.insert(fd32, file);
        Ok(fd32 as u64)
    }

    /// A recorded program's write past the end of the file open as `fd`: the file is now
    /// `size` bytes (it only grows).
    pub fn resize_file(&mut self, fd: i64, size: u64) -> SysResult {
        let f = self.fd_file(fd)?;
        let mut st = f.inode.state();
        st.size = st.size.max(size);
        Ok(0)
    }

    /// Makes an open file (of any driver, the embedder's included) available to `mmap` as the
    /// lowest free descriptor, which is returned.
    pub fn install_file(&mut self, file: Arc<OpenFile>) -> SysResult {
        self.install_fd(file)
    }

    fn install_fd(&mut self, file: Arc<OpenFile>) -> SysResult {
        let fd = (0..).find(|fd| !self.fds.contains_key(fd)).expect("a free fd");
        if fd as u64 >= self.settings.rlimit_nofile {
            return Err(Errno::EMFILE);
        }
        self.fds.insert(fd, file);
        Ok(fd as u64)
    }

    /// The file open as `fd`. Descriptor arguments are `unsigned int` in the kernel: the upper
    /// 32 bits of the register are ignored.
    pub(crate) fn fd_file(&self, fd: i64) -> Result<Arc<OpenFile>, Errno> {
        fd_index(fd).and_then(|fd| self.fds.get(&fd)).cloned().ok_or(Errno::EBADF)
    }

    /// `openat(dirfd, path, flags, mode)`.
    pub fn openat(&mut self, dirfd: i64, path: &[u8], flags: u64, _mode: u64) -> SysResult {
        if path.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        if path[0] != b'/' && dirfd as i32 as i64 != AT_FDCWD {
            // A descriptor of the model is never a directory.
            self.fd_file(dirfd)?;
            return Err(Errno::ENOTDIR);
        }
        let create = flags & open::CREAT != 0;
        let (inode, created) = self.vfs.lookup(path, create)?;
        if create && flags & open::EXCL != 0 && !created {
            return Err(Errno::EEXIST);
        }
        if flags & open::DIRECTORY != 0 {
            return Err(Errno::ENOTDIR);
        }
        // OPEN_FMODE(): O_ACCMODE 3 opens for neither reading nor writing.
        let mode = match flags & open::ACCMODE {
            open::RDONLY => FMode { read: true, write: false },
            open::WRONLY => FMode { read: false, write: true },
            open::RDWR => FMode { read: true, write: true },
            _ => FMode { read: false, write: false },
        };
        // do_truncate() for a regular file (on ext4, tmpfs, hugetlbfs), through its setattr.
        if flags & open::TRUNC != 0 && mode.write && inode.is_regular() {
            self.set_size(&inode, 0)?;
        }
        let file = self.vfs.open_inode(inode, mode);
        self.install_fd(file)
    }

    /// `open(path, flags, mode)`.
    pub fn open(&mut self, path: &[u8], flags: u64, mode: u64) -> SysResult {
        self.openat(AT_FDCWD, path, flags, mode)
    }

    /// `close(fd)`.
    pub fn close(&mut self, fd: i64) -> SysResult {
        let fd = fd_index(fd).ok_or(Errno::EBADF)?;
        self.fds.remove(&fd).map(|_| 0).ok_or(Errno::EBADF)
    }

    /// `dup(fd)`: a new descriptor sharing the open file description.
    pub fn dup(&mut self, fd: i64) -> SysResult {
        let f = self.fd_file(fd)?;
        self.install_fd(f)
    }

    /// `dup2(old, new)`.
    pub fn dup2(&mut self, old: i64, new: i64) -> SysResult {
        let f = self.fd_file(old)?;
        let new32 = fd_index(new).filter(|n| (*n as u64) < self.settings.rlimit_nofile).ok_or(Errno::EBADF)?;
        self.fds.insert(new32, f);
        Ok(new32 as u64)
    }

    /// `dup3(old, new, flags)`.
    pub fn dup3(&mut self, old: i64, new: i64, flags: u64) -> SysResult {
        if flags & !open::CLOEXEC != 0 {
            return Err(Errno::EINVAL);
        }
        if fd_index(old) == fd_index(new) {
            self.fd_file(old)?;
            return Err(Errno::EINVAL);
        }
        self.dup2(old, new)
    }

    /// `ftruncate(fd, length)`.
    pub fn ftruncate(&mut self, fd: i64, len: u64) -> SysResult {
        let f = self.fd_file(fd)?;
        if (len as i64) < 0 {
            return Err(Errno::EINVAL);
        }
        // do_sys_ftruncate(): regular files only.
        if !f.mode.write || !f.inode.is_regular() {
            return Err(Errno::EINVAL);
        }
        self.set_size(&f.inode, len)?;
        Ok(0)
    }

    /// Linux: `do_truncate()`: the file system's `setattr` may refuse the size (seals, huge
    /// page alignment, secretmem's size set once) or act on it (hugetlbfs drops reservations);
    /// then the size changes and a shrink drops the pages past the new end
    /// (`truncate_setsize`).
    fn set_size(&mut self, inode: &Arc<Inode>, len: u64) -> Result<(), Errno> {
        if let Some(setattr) = &inode.setattr_size {
            setattr(inode, len)?;
        }
        let old = std::mem::replace(&mut inode.state().size, len);
        let mut cache = inode.cache();
        if len < old {
            cache.truncate(len);
        }
        if inode.sb.zeroes_eof_block && len != old {
            cache.zero_eof_block(len.min(old));
        }
        // ext4_setattr() calls ext4_truncate() for any size not above the old one, which marks
        // a file left empty for write-back at its next release.
        if inode.sb.auto_da_alloc && len == 0 && len <= old {
            cache.write_back_on_release = true;
        }
        drop(cache);
        self.truncate_pages(inode, len);
        Ok(())
    }

    /// Drops the pages past a new end of file from this address space's mappings of it,
    /// private copies included (`truncate_pagecache` unmaps COWed pages too), so the next
    /// access there raises SIGBUS.
    fn truncate_pages(&mut self, inode: &Arc<Inode>, size: u64) {
        let end_index = size.div_ceil(crate::addr::PAGE_SIZE);
        let vmas: Vec<(u64, u64, u64, bool)> = self
            .tree
            .iter()
            .filter(|v| v.file.as_ref().is_some_and(|vf| Arc::ptr_eq(&vf.inode, inode)))
            .map(|v| (v.start, v.end, v.pgoff, v.has_recency()))
            .collect();
        for (start, end, pgoff, recency) in vmas {
            let past = end_index.saturating_sub(pgoff).saturating_mul(crate::addr::PAGE_SIZE);
            let first_gone = start.saturating_add(past);
            if first_gone >= end {
                continue;
            }
            // Guard markers survive truncation (they are not page cache pages).
            self.pages.zap_range(first_gone, end, recency, true);
        }
    }

    /// `unlink(path)`.
    pub fn unlink(&mut self, path: &[u8]) -> SysResult {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        self.vfs.unlink(path).map(|_| 0)
    }

    /// `memfd_create(name, flags)`. With `MFD_HUGETLB` the memfd is a hugetlbfs file of the
    /// page size the `MFD_HUGE_*` bits name (none valid: `ENODEV`, from `hugetlb_file_setup`).
    pub fn memfd_create(&mut self, name: &[u8], flags: u64) -> SysResult {
        let huge_bits = flags & (0x3f << 26);
        let known = mfd::CLOEXEC | mfd::ALLOW_SEALING | mfd::HUGETLB | mfd::NOEXEC_SEAL | mfd::EXEC;
        if flags & !(known | huge_bits) != 0 || (huge_bits != 0 && flags & mfd::HUGETLB == 0) {
            return Err(Errno::EINVAL);
        }
        if flags & mfd::EXEC != 0 && flags & mfd::NOEXEC_SEAL != 0 {
            return Err(Errno::EINVAL);
        }
        if name.len() > MFD_NAME_MAX {
            return Err(Errno::EINVAL);
        }
        let mut path = b"/memfd:".to_vec();
        path.extend_from_slice(name);
        let inode = if flags & mfd::HUGETLB != 0 {
            let size = HugeSize::from_log((flags >> 26) & 0x3f).ok_or(Errno::ENODEV)?;
            drivers::hugetlbfs::hugetlb_file_setup(self.vfs.as_ref(), self.vfs.hugepages(), size, &path, 0)
        } else {
            drivers::shmem::shmem_file_setup(self.vfs.as_ref(), &path, 0)
        };
        {
            let mut st = inode.state();
            st.seals = seal::SEAL;
            st.executable = flags & mfd::NOEXEC_SEAL == 0;
            if flags & mfd::NOEXEC_SEAL != 0 {
                st.seals = seal::EXEC;
            } else if flags & mfd::ALLOW_SEALING != 0 {
                st.seals = 0;
            }
        }
        let file = self.vfs.open_inode(inode, FMode { read: true, write: true });
        self.install_fd(file)
    }

    /// `memfd_secret(flags)`.
    pub fn memfd_secret(&mut self, flags: u64) -> SysResult {
        if flags & !open::CLOEXEC != 0 {
            return Err(Errno::EINVAL);
        }
        let inode = drivers::secretmem::secretmem_file_create(self.vfs.as_ref());
        let file = self.vfs.open_inode(inode, FMode { read: true, write: true });
        self.install_fd(file)
    }

    /// `fcntl(fd, F_GET_SEALS)`.
    pub fn fcntl_get_seals(&mut self, fd: i64) -> SysResult {
        let f = self.fd_file(fd)?;
        if !f.inode.sealable {
            return Err(Errno::EINVAL);
        }
        Ok(f.inode.state().seals)
    }

    /// `fcntl(fd, F_ADD_SEALS, seals)` (Linux: `memfd_add_seals()`, with the 6.18 stable fix
    /// that makes `F_SEAL_EXEC`'s implied `F_SEAL_WRITE` check for writable mappings).
    ///
    pub fn fcntl_add_seals(&mut self, fd: i64, seals: u64) -> SysResult {
        let f = self.fd_file(fd)?;
        // Checked in this order: the open mode, the seal bits, then whether the file can be
        // sealed at all.
        if !f.mode.write {
            return Err(Errno::EPERM);
        }
        if seals & !F_ALL_SEALS != 0 || !f.inode.sealable {
            return Err(Errno::EINVAL);
        }
        let current = f.inode.state().seals;
        if current & seal::SEAL != 0 {
            return Err(Errno::EPERM);
        }
        let mut seals = seals;
        if seals & seal::EXEC != 0 && f.inode.state().executable {
            seals |= seal::SHRINK | seal::GROW | seal::WRITE | seal::FUTURE_WRITE;
        }
        if seals & seal::WRITE != 0 && current & seal::WRITE == 0 && f.inode.state().writable_mappings > 0 {
            return Err(Errno::EBUSY);
        }
        f.inode.state().seals |= seals;
        Ok(0)
    }
}

/// An `unsigned int` descriptor argument as a table index (None when it is above `INT_MAX`).
fn fd_index(fd: i64) -> Option<i32> {
    i32::try_from(fd as u32).ok()
}
