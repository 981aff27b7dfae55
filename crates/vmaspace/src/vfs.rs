//! `Vfs`: the files the processes of a model see, shared by every address space forked from one
//! another: the mount table (the root file system, `/dev/shm` and any mounts, each a
//! [`FileSystem`]), the named files (the working directory's, `/dev/zero`, `/dev/null`, files in
//! mount points), and the numbering of internal objects (shared anonymous memory, memfds).
//!
//! The VFS knows no driver: file systems and device files are given to it
//! ([`Vfs::with_root`], [`Vfs::mount`], [`Vfs::add_device`]); `Vfs::new` (in `crate::drivers`)
//! makes the one this project's machines have.

use crate::driver::{FMode, FileOperations, FileSystem, Files, Inode, InodeState, OpenFile};
use crate::errno::Errno;
use crate::hugetlb::HugePools;
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

/// One mount: files whose path starts with `dir` live on this file system.
#[derive(Debug, Clone)]
pub struct Mount {
    /// The mount point, an absolute path without a trailing `/`.
    pub dir: Vec<u8>,
    /// The file system mounted there.
    pub fs: Arc<dyn FileSystem>,
    /// The device number its files show in maps.
    pub dev: (u32, u32),
}

impl PartialEq for Mount {
    fn eq(&self, o: &Mount) -> bool {
        self.dir == o.dir && self.dev == o.dev && self.fs.name() == o.fs.name()
    }
}

#[derive(Debug)]
struct VfsInner {
    cwd: Vec<u8>,
    /// The root file system (the working directory is on it unless it is a mount point).
    root: Arc<dyn FileSystem>,
    root_dev: (u32, u32),
    /// Mount points besides the root, longest match wins.
    mounts: Vec<Mount>,
    /// Internal mounts (no path: shm_mnt, secretmem, hugetlbfs), by the device their objects
    /// show.
    internal: Vec<((u32, u32), Arc<dyn FileSystem>)>,
    /// Named files by absolute path.
    files: HashMap<Vec<u8>, Arc<Inode>>,
    /// Directories besides the working directory that files may be created in (on the root
    /// file system).
    dirs: Vec<Vec<u8>>,
    next_ino: u64,
    next_shmem_ino: u64,
    next_file_id: u64,
    /// The root device's read-ahead window in pages.
    root_ra_pages: u64,
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

impl Vfs {
    /// A file system whose root is `root` (showing device `root_dev`) and whose working
    /// directory is `cwd` (an absolute path), with no mounts and no device files yet.
    pub fn with_root(cwd: &[u8], root: Arc<dyn FileSystem>, root_dev: (u32, u32)) -> Vfs {
        let inner = VfsInner {
            cwd: cwd.to_vec(),
            root,
            root_dev,
            mounts: Vec::new(),
            internal: Vec::new(),
            files: HashMap::new(),
            dirs: Vec::new(),
            next_ino: 1_000_000,
            next_shmem_ino: 1,
            next_file_id: 1,
            root_ra_pages: crate::driver::SuperBlock::VM_READAHEAD_PAGES,
        };
        Vfs { inner: Mutex::new(inner), hugepages: Arc::default(), pages: Arc::default() }
    }

    /// The root device's read-ahead window in pages (overlay layers live there too).
    pub fn root_ra_pages(&self) -> u64 {
        self.lock().root_ra_pages
    }

    /// Sets what [`Vfs::root_ra_pages`] says (the root file system itself is made with it).
    pub fn set_root_ra_pages(&self, pages: u64) {
        self.lock().root_ra_pages = pages;
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

    /// Lets files be created in `dir` (an absolute path on the root file system), as in the
    /// working directory: a recording's program made files there.
    pub fn add_directory(&self, dir: &[u8]) {
        self.lock().dirs.push(dir.to_vec());
    }

    /// Registers an internal mount: objects showing device `dev` (in a maps snapshot) belong to
    /// `fs`.
    pub fn add_internal_mount(&self, dev: (u32, u32), fs: Arc<dyn FileSystem>) {
        self.lock().internal.push((dev, fs));
    }

    /// Names a device file (or any inode) at an absolute path, as devtmpfs does.
    pub fn add_device(&self, path: &[u8], inode: Arc<Inode>) {
        self.lock().files.insert(path.to_vec(), inode);
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

    /// The file system an absolute path lies on, and the device its files show.
    pub fn fs_of(&self, abs: &[u8]) -> (Arc<dyn FileSystem>, (u32, u32)) {
        let g = self.lock();
        let under = |m: &&Mount| abs.strip_prefix(m.dir.as_slice()).is_some_and(|rest| rest.first() == Some(&b'/'));
        match g.mounts.iter().filter(under).max_by_key(|m| m.dir.len()) {
            Some(m) => (m.fs.clone(), m.dev),
            None => (g.root.clone(), g.root_dev),
        }
    }

    /// The mount whose files live directly at `dir` (a mount point), if any.
    fn mount_at(&self, dir: &[u8]) -> Option<Mount> {
        self.lock().mounts.iter().filter(|m| dir == m.dir.as_slice()).max_by_key(|m| m.dir.len()).cloned()
    }

    /// Looks a path up; with `create`, a missing regular file directly in the working directory
    /// or a mount point is created by that directory's file system. Returns the inode and
    /// whether it was created.
    pub fn lookup(&self, path: &[u8], create: bool) -> Result<(Arc<Inode>, bool), Errno> {
        let abs = self.absolute(path);
        let parent = abs[..abs.iter().rposition(|b| *b == b'/').unwrap_or(0)].to_vec();
        if let Some(i) = self.lock().files.get(&abs) {
            return Ok((i.clone(), false));
        }
        let mount = self.mount_at(&parent);
        let (fs, dev) = {
            let g = self.lock();
            let parent_is_cwd = parent == g.cwd || (parent.is_empty() && g.cwd == b"/") || g.dirs.contains(&parent);
            match &mount {
                Some(m) => (m.fs.clone(), m.dev),
                // A directory that is a mount point holds that file system's files; the
                // working directory is on the root unless it is a mount point itself.
                None if parent_is_cwd => (g.root.clone(), g.root_dev),
                None => return Err(Errno::ENOENT),
            }
        };
        if !create {
            return Err(Errno::ENOENT);
        }
        let mut g = self.lock();
        g.next_ino += 1;
        let inode = Arc::new(fs.new_inode(g.next_ino, dev, InodeState::linked(&abs, 0)));
        g.files.insert(abs, inode.clone());
        Ok((inode, true))
    }

    /// An inode of a file found in a maps snapshot (`seed_from_maps`) with the snapshot's
    /// number and device, made by the file system its device or path says (an internal mount,
    /// a mount point, or the root; a device file copies the named device), with the VMA
    /// operations that file system gives such mappings.
    pub fn snapshot_inode(
        &self,
        ino: u64,
        dev: (u32, u32),
        state: InodeState,
    ) -> (Arc<Inode>, Option<Arc<crate::driver::VmOperations>>) {
        let path = state.path.clone();
        let (device, internal, mounted) = {
            let g = self.lock();
            let device = g.files.get(&path).filter(|i| state.linked && !i.is_regular()).cloned();
            let memfd = path.starts_with(b"/memfd:");
            let internal = g
                .internal
                .iter()
                .find(|(d, fs)| *d == dev || (memfd && fs.name() == "tmpfs"))
                .map(|(_, fs)| fs.clone());
            let mounted = g.mounts.iter().find(|m| m.dev == dev).map(|m| m.fs.clone());
            (device, internal, mounted)
        };
        if let Some(d) = device {
            let copy = Inode::new(ino, dev, d.fop.clone(), state).with_mode(d.mode);
            return (Arc::new(copy), None);
        }
        let fs = internal.or(mounted).unwrap_or_else(|| self.fs_of(&path).0);
        (Arc::new(fs.new_inode(ino, dev, state)), fs.snapshot_vm_ops())
    }

    /// Opens an inode: its file system chooses the operations (a stacked one wraps them).
    pub fn open_inode(&self, inode: Arc<Inode>, mode: FMode) -> Arc<OpenFile> {
        let path = inode.state().path.clone();
        let (fs, _) = self.fs_of(&path);
        fs.open(self, inode, mode)
    }

    /// A new open file description with the given operations (for drivers of an embedder).
    pub fn open_with_ops(&self, inode: Arc<Inode>, mode: FMode, ops: Arc<FileOperations>) -> Arc<OpenFile> {
        let mut g = self.lock();
        g.next_file_id += 1;
        Arc::new(OpenFile::new(g.next_file_id, inode, mode, ops))
    }

    /// Removes a name. The inode lives on in the files and mappings that hold it. Device files
    /// cannot be unlinked by the model's process.
    pub fn unlink(&self, path: &[u8]) -> Result<(), Errno> {
        let abs = self.absolute(path);
        let mut g = self.lock();
        let inode = g.files.get(&abs).ok_or(Errno::ENOENT)?.clone();
        if !inode.is_regular() {
            return Err(Errno::EACCES);
        }
        g.files.remove(&abs);
        inode.state().linked = false;
        Ok(())
    }

    /// A fresh inode number on an internal mount.
    pub fn next_internal_ino(&self) -> u64 {
        let mut g = self.lock();
        g.next_shmem_ino += 1;
        g.next_shmem_ino
    }
}

impl Files for Vfs {
    fn open_with_ops(&self, inode: Arc<Inode>, mode: FMode, ops: Arc<FileOperations>) -> Arc<OpenFile> {
        Vfs::open_with_ops(self, inode, mode, ops)
    }
    fn open_inode(&self, inode: Arc<Inode>, mode: FMode) -> Arc<OpenFile> {
        Vfs::open_inode(self, inode, mode)
    }
    fn next_internal_ino(&self) -> u64 {
        Vfs::next_internal_ino(self)
    }
}
