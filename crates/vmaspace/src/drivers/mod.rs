//! The built-in drivers and file systems, each written against the public driver API
//! ([`crate::driver`]) only, as an outside crate would be (`tests/drivers_public_api.rs`
//! compiles every one of them outside this crate to prove it), each with the hook its Linux
//! 6.18 counterpart uses:
//! * ext4, the root file system and ext4 mounts: `mmap_prepare` ([`regular`]);
//! * shmem: tmpfs (`/dev/shm`, tmpfs mounts), memfd, shared anonymous memory: legacy `.mmap`
//!   ([`shmem`]);
//! * `/dev/zero`: legacy `.mmap`; `/dev/null`: no hook, cannot be mapped ([`zero`]);
//! * `memfd_secret`: `mmap_prepare` ([`secretmem`]);
//! * hugetlbfs (hugetlbfs mounts, `MFD_HUGETLB`, `MAP_HUGETLB`): legacy `.mmap` ([`hugetlbfs`]);
//! * overlayfs, a stacked file mapping its lower file through the 6.18 compatibility layer
//!   ([`stacked`]);
//! * a device that maps physical frames, once with each hook ([`pfn`]), for embedders and tests.
//!
//! This file is the registration: [`file_system`] names the file system types a mount may
//! have, and [`Vfs::new`] builds the machine the project's scenarios ran on. Adding a driver is
//! one file plus one line here.

pub mod hugetlbfs;
pub mod pfn;
pub mod regular;
pub mod secretmem;
pub mod shmem;
pub mod stacked;
pub mod zero;

use crate::driver::FileSystem;
use crate::vfs::{Mount, Vfs, dev};
use std::sync::Arc;

/// The file system type a mount names (`mount -t NAME`), drawing huge pages from `vfs`'s pools.
pub fn file_system(name: &str, vfs: &Vfs) -> Option<Arc<dyn FileSystem>> {
    let fs: Arc<dyn FileSystem> = match name {
        // ext4 mounts are images on loop devices over files on the root file system; a loop
        // device takes its optimal I/O size, so its read-ahead window, from the device below
        // (measured: 6.18 reads the root device's 8 MiB window on such a mount).
        "ext4" => Arc::new(regular::Ext4 { ra_pages: vfs.root_ra_pages() }),
        "tmpfs" => Arc::new(shmem::Tmpfs),
        "hugetlbfs" => Arc::new(hugetlbfs::Hugetlbfs { pools: vfs.hugepages().clone() }),
        // The layers are directories on the root file system.
        "overlay" => Arc::new(stacked::Overlay { upper: regular::Ext4 { ra_pages: vfs.root_ra_pages() } }),
        _ => return None,
    };
    Some(fs)
}

/// The names [`file_system`] knows, in the order messages list them.
pub const FILE_SYSTEMS: [&str; 4] = ["tmpfs", "ext4", "hugetlbfs", "overlay"];

impl Vfs {
    /// The file systems of this project's machines, with the working directory `cwd` (an
    /// absolute path): ext4 at the root, tmpfs at `/dev/shm`, `/dev/zero` and `/dev/null`, and
    /// the internal shmem, secretmem and hugetlbfs mounts.
    pub fn new(cwd: &[u8]) -> Vfs {
        Vfs::with_root_read_ahead(cwd, crate::driver::SuperBlock::VM_READAHEAD_PAGES)
    }

    /// [`Vfs::new`] with a root device whose read-ahead window is `ra_pages` pages (its
    /// `read_ahead_kb` / 4).
    pub fn with_root_read_ahead(cwd: &[u8], ra_pages: u64) -> Vfs {
        let vfs = Vfs::with_root(cwd, Arc::new(regular::Ext4 { ra_pages }), dev::ROOT);
        vfs.set_root_ra_pages(ra_pages);
        vfs.mount(Mount { dir: b"/dev/shm".to_vec(), fs: Arc::new(shmem::Tmpfs), dev: dev::DEV_SHM });
        for (path, ino) in [(&b"/dev/zero"[..], 4u64), (&b"/dev/null"[..], 5)] {
            vfs.add_device(path, Arc::new(zero::mem_device(path, ino, dev::DEVTMPFS)));
        }
        vfs.add_internal_mount(dev::SHMEM, Arc::new(shmem::ShmMnt));
        let huge = Arc::new(hugetlbfs::Hugetlbfs { pools: vfs.hugepages().clone() });
        vfs.add_internal_mount(dev::HUGETLB_2M, huge.clone());
        vfs.add_internal_mount(dev::HUGETLB_1G, huge);
        vfs
    }

    /// Mounts the built-in file system type `name` at the absolute directory `dir`, its files
    /// showing device `dev`. None if no built-in file system has that name.
    pub fn mount_builtin(&self, dir: &[u8], name: &str, dev: (u32, u32)) -> Option<()> {
        let fs = file_system(name, self)?;
        self.mount(Mount { dir: dir.to_vec(), fs, dev });
        Some(())
    }
}

impl Default for Vfs {
    fn default() -> Vfs {
        Vfs::new(b"/tmp/vmaspace-cwd")
    }
}
