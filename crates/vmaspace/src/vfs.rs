//! `Vfs`: the files the processes of a model see, shared by every address space forked from one
//! another: regular files of the working directory, `/dev/zero`, `/dev/null`, and the internal
//! shmem objects of shared anonymous memory and memfds.

use crate::drivers;
use crate::errno::Errno;
use crate::file::{FMode, FileOperations, Inode, InodeKind, InodeState, OpenFile};
use crate::hugetlb::{HugePools, HugeSize, HugetlbInode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Device numbers of the file systems the model knows (as on this project's machines; maps
/// comparisons treat them as "same object as line k", so only their equality matters).
pub mod dev {
    /// ext4 on `/dev/vda`: the root file system and the working directory.
    pub const ROOT: (u32, u32) = (0xfe, 0x00);
    /// The internal shmem mount (shared anonymous memory, memfd).
    pub const SHMEM: (u32, u32) = (0x00, 0x01);
    /// devtmpfs (`/dev/zero`, `/dev/null`).
    pub const DEVTMPFS: (u32, u32) = (0x00, 0x06);
    /// The secretmem mount.
    pub const SECRETMEM: (u32, u32) = (0x00, 0x0e);
    /// tmpfs on `/dev/shm`.
    pub const DEV_SHM: (u32, u32) = (0x00, 0x1b);
    /// The internal hugetlbfs mount (`MAP_HUGETLB`, `MFD_HUGETLB`) of 2 MiB pages.
    pub const HUGETLB_2M: (u32, u32) = (0x00, 0x11);
    /// The internal hugetlbfs mount of 1 GiB pages (its number is not measured; comparisons
    /// only see that it differs from the others).
    pub const HUGETLB_1G: (u32, u32) = (0x00, 0x12);
}

/// A file system type the mount table knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsType {
    /// ext4 (regular files map through `mmap_prepare`).
    Ext4,
    /// tmpfs (shmem files: the legacy `.mmap` in 6.18; files carry `F_SEAL_SEAL`).
    Tmpfs,
    /// hugetlbfs with 2 MiB pages (files map through hugetlbfs's legacy `.mmap`).
    Hugetlbfs,
    /// overlayfs whose upper layer is ext4: a file opened here is a stacked file over a backing
    /// open of the ext4 file (Linux: `ovl_mmap` → `backing_file_mmap`, legacy `.mmap`, with
    /// ext4's `mmap_prepare` run through the compatibility layer).
    Overlay,
}

/// One mount: files whose path starts with `dir` live on a file system of this type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mount point, an absolute path without a trailing `/`.
    pub dir: Vec<u8>,
    /// The file system mounted there.
    pub fs: FsType,
    /// The device number its files show in maps.
    pub dev: (u32, u32),
}

#[derive(Debug)]
struct VfsInner {
    cwd: Vec<u8>,
    root_dev: (u32, u32),
    /// Mount points besides the root (ext4), longest match wins.
    mounts: Vec<Mount>,
    /// Named files by absolute path.
    files: HashMap<Vec<u8>, Arc<Inode>>,
    next_ino: u64,
    next_shmem_ino: u64,
    next_file_id: u64,
}

/// The model's file systems.
#[derive(Debug)]
pub struct Vfs {
    inner: Mutex<VfsInner>,
    /// The huge page pools (empty unless set, as `nr_hugepages` is by default).
    hugepages: Arc<HugePools>,
    /// The page budget of the address spaces whose files live here.
    pages: Arc<crate::pages::PageBudget>,
}

impl Default for Vfs {
    fn default() -> Vfs {
        Vfs::new(b"/tmp/vmaspace-cwd")
    }
}

impl Vfs {
    /// A file system whose working directory is `cwd` (an absolute path).
    pub fn new(cwd: &[u8]) -> Vfs {
        let mut inner = VfsInner {
            cwd: cwd.to_vec(),
            root_dev: dev::ROOT,
            mounts: vec![Mount { dir: b"/dev/shm".to_vec(), fs: FsType::Tmpfs, dev: dev::DEV_SHM }],
            files: HashMap::new(),
            next_ino: 1_000_000,
            next_shmem_ino: 1,
            next_file_id: 1,
        };
        for (path, ino) in [(&b"/dev/zero"[..], 4u64), (&b"/dev/null"[..], 5)] {
            let state = InodeState {
                path: path.to_vec(),
                linked: true,
                size: 0,
                seals: 0,
                executable: false,
                writable_mappings: 0,
            };
            inner.files.insert(path.to_vec(), Arc::new(Inode::new(ino, dev::DEVTMPFS, InodeKind::CharDevice, state)));
        }
        Vfs { inner: Mutex::new(inner), hugepages: Arc::default(), pages: Arc::default() }
    }

    /// The huge page pools.
    pub fn hugepages(&self) -> &Arc<HugePools> {
        &self.hugepages
    }

    /// The page budget shared by the address spaces of this file system (a process and its
    /// forks): see [`crate::pages`].
    pub fn page_budget(&self) -> &Arc<crate::pages::PageBudget> {
        &self.pages
    }

    fn lock(&self) -> MutexGuard<'_, VfsInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The working directory.
    pub fn cwd(&self) -> Vec<u8> {
        self.lock().cwd.clone()
    }

    /// Adds a mount (or replaces the one at the same directory).
    pub fn mount(&self, m: Mount) {
        let mut g = self.lock();
        g.mounts.retain(|x| x.dir != m.dir);
        g.mounts.push(m);
    }

    /// The mounts besides the root.
    pub fn mounts(&self) -> Vec<Mount> {
        self.lock().mounts.clone()
    }

    /// Sets the device the working directory's file system shows in maps.
    pub fn set_root_dev(&self, dev: (u32, u32)) {
        self.lock().root_dev = dev;
    }

    /// The absolute form of a path, resolved against the working directory (`.` and `..`
    /// components are folded).
    pub fn absolute(&self, path: &[u8]) -> Vec<u8> {
        let joined = if path.first() == Some(&b'/') {
            path.to_vec()
        } else {
            let mut p = self.lock().cwd.clone();
            p.push(b'/');
            p.extend_from_slice(path);
            p
        };
        let mut parts: Vec<&[u8]> = Vec::new();
        for c in joined.split(|b| *b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => {
                    parts.pop();
                }
                c => parts.push(c),
            }
        }
        let mut out = Vec::new();
        for p in parts {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        if out.is_empty() {
            out.push(b'/');
        }
        out
    }

    /// A new open file description of `inode`. On an overlay mount it is a stacked file over a
    /// backing open of the upper layer's file, made at open time as `ovl_open` makes it.
    ///
    /// The model keeps one inode for the overlay file and its upper file: what maps shows of the
    /// backing file is the overlay's path, device and inode number (Linux: `file_user_path()`,
    /// `file_user_inode()`), and size and link state are the upper file's.
    pub fn open_inode(&self, inode: Arc<Inode>, mode: FMode) -> Arc<OpenFile> {
        let path = inode.state().path.clone();
        let ops = drivers::file_operations(&inode);
        if self.fs_of(&path) == Some(FsType::Overlay) {
            let backing = self.open_with_ops(inode.clone(), mode, ops);
            return self.open_with_ops(inode, mode, Arc::new(drivers::stacked::stacked_file_operations(backing)));
        }
        self.open_with_ops(inode, mode, ops)
    }

    /// The type of the mount a path lies on (None: the root, ext4).
    fn fs_of(&self, abs: &[u8]) -> Option<FsType> {
        let g = self.lock();
        let under = |m: &&Mount| abs.strip_prefix(m.dir.as_slice()).is_some_and(|rest| rest.first() == Some(&b'/'));
        g.mounts.iter().filter(under).max_by_key(|m| m.dir.len()).map(|m| m.fs)
    }

    /// A new open file description with the given operations (for drivers of an embedder).
    pub fn open_with_ops(&self, inode: Arc<Inode>, mode: FMode, ops: Arc<FileOperations>) -> Arc<OpenFile> {
        let mut g = self.lock();
        g.next_file_id += 1;
        Arc::new(OpenFile::new(g.next_file_id, inode, mode, ops))
    }

    /// Looks a path up; with `create`, a missing regular file in an existing directory is
    /// created. Returns the inode and whether it was created.
    pub fn lookup(&self, path: &[u8], create: bool) -> Result<(Arc<Inode>, bool), Errno> {
        let abs = self.absolute(path);
        let mut g = self.lock();
        if let Some(i) = g.files.get(&abs) {
            return Ok((i.clone(), false));
        }
        let parent = &abs[..abs.iter().rposition(|b| *b == b'/').unwrap_or(0)];
        let parent_is_cwd = parent == g.cwd.as_slice() || (parent.is_empty() && g.cwd == b"/");
        let mount = g.mounts.iter().filter(|m| parent == m.dir.as_slice()).max_by_key(|m| m.dir.len()).cloned();
        let mount = mount.as_ref();
        if !create || (!parent_is_cwd && mount.is_none()) {
            return Err(Errno::ENOENT);
        }
        g.next_ino += 1;
        // A directory that is a mount point holds that file system's files; the working
        // directory is on the root (ext4) unless it is a mount point itself.
        let (kind, dev, seals) = match mount {
            Some(Mount { fs: FsType::Tmpfs, dev, .. }) => (InodeKind::Shmem, *dev, crate::flags::seal::SEAL),
            Some(Mount { fs: FsType::Ext4 | FsType::Overlay, dev, .. }) => (InodeKind::Regular, *dev, 0),
            Some(Mount { fs: FsType::Hugetlbfs, dev, .. }) => (InodeKind::Hugetlb, *dev, crate::flags::seal::SEAL),
            None => (InodeKind::Regular, g.root_dev, 0),
        };
        let state =
            InodeState { path: abs.clone(), linked: true, size: 0, seals, executable: false, writable_mappings: 0 };
        let inode = match mount {
            Some(Mount { fs: FsType::Hugetlbfs, .. }) => {
                let huge = HugetlbInode::new(HugeSize::Pmd, self.hugepages.clone());
                Arc::new(Inode::new_hugetlb(g.next_ino, dev, state, huge))
            }
            _ => Arc::new(Inode::new(g.next_ino, dev, kind, state)),
        };
        g.files.insert(abs, inode.clone());
        Ok((inode, true))
    }

    /// Removes a name. The inode lives on in the files and mappings that hold it.
    pub fn unlink(&self, path: &[u8]) -> Result<(), Errno> {
        let abs = self.absolute(path);
        let mut g = self.lock();
        let inode = g.files.get(&abs).ok_or(Errno::ENOENT)?.clone();
        if inode.kind == InodeKind::CharDevice {
            return Err(Errno::EACCES);
        }
        g.files.remove(&abs);
        inode.state().linked = false;
        Ok(())
    }

    /// A new file on the internal hugetlbfs mount of `size` pages (`hugetlb_file_setup`),
    /// never linked, sealable like a memfd (`F_SEAL_SEAL` set).
    pub fn new_hugetlb_internal(&self, size: HugeSize, name: &[u8], len: u64) -> Arc<Inode> {
        let mut g = self.lock();
        g.next_shmem_ino += 1;
        let state = InodeState {
            path: name.to_vec(),
            linked: false,
            size: len,
            seals: crate::flags::seal::SEAL,
            executable: true,
            writable_mappings: 0,
        };
        let dev = if size == HugeSize::Pud { dev::HUGETLB_1G } else { dev::HUGETLB_2M };
        let huge = HugetlbInode::new(size, self.hugepages.clone());
        Arc::new(Inode::new_hugetlb(g.next_shmem_ino, dev, state, huge))
    }

    /// A new object on an internal mount (shmem, secretmem), never linked: maps shows its name
    /// with ` (deleted)`.
    pub fn new_internal(&self, kind: InodeKind, dev: (u32, u32), name: &[u8], size: u64) -> Arc<Inode> {
        let mut g = self.lock();
        g.next_shmem_ino += 1;
        let state =
            InodeState { path: name.to_vec(), linked: false, size, seals: 0, executable: false, writable_mappings: 0 };
        Arc::new(Inode::new(g.next_shmem_ino, dev, kind, state))
    }
}
