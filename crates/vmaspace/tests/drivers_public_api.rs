//! Every built-in driver is written against the public API only, as an outside crate would be:
//! this test crate compiles their source files (all of `src/drivers/` but the registration in
//! `mod.rs`) with `crate::` standing for the `vmaspace` crate's public items. A driver that used
//! anything private to the crate (a `pub(crate)` item, a private field) would not compile here.

// `crate::driver`, `crate::flags`, ... resolve to the public modules of vmaspace.
pub use vmaspace::*;

/// The built-in drivers, compiled from the crate's own source files (siblings at the root, so
/// that their `super::` paths find each other).
#[allow(dead_code, missing_docs)]
#[path = "../src/drivers/hugetlbfs.rs"]
pub mod hugetlbfs;
#[allow(dead_code, missing_docs)]
#[path = "../src/drivers/pfn.rs"]
pub mod pfn;
#[allow(dead_code, missing_docs)]
#[path = "../src/drivers/regular.rs"]
pub mod regular;
#[allow(dead_code, missing_docs)]
#[path = "../src/drivers/secretmem.rs"]
pub mod secretmem;
#[allow(dead_code, missing_docs)]
#[path = "../src/drivers/shmem.rs"]
pub mod shmem;
#[allow(dead_code, missing_docs)]
#[path = "../src/drivers/stacked.rs"]
pub mod stacked;
#[allow(dead_code, missing_docs)]
#[path = "../src/drivers/zero.rs"]
pub mod zero;

/// The list above is every driver file there is (a new one must be added, and so checked).
#[test]
fn every_driver_file_is_compiled_here() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/drivers");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "mod.rs")
        .collect();
    files.sort();
    let this = include_str!("drivers_public_api.rs");
    for f in &files {
        assert!(this.contains(&format!("src/drivers/{f}\"")), "src/drivers/{f} is not compiled by this test");
    }
}

/// The outside copies behave as the built-in ones: a file system made from them maps files the
/// same way (placement and hook), here ext4 with THP-aligned placement.
#[test]
fn drivers_compiled_outside_work() {
    use std::sync::Arc;
    use vmaspace::driver::{FMode, FileSystem, InodeState};
    use vmaspace::flags::{map, prot};
    let mut mm = AddressSpace::new();
    let fs = regular::Ext4::default();
    let inode = Arc::new(fs.new_inode(42, (0xfe, 0), InodeState::linked(b"/outside/f", 4 << 20)));
    let file = mm.vfs().open_with_ops(inode.clone(), FMode { read: true, write: true }, inode.fop.clone());
    let fd = mm.install_file(file).unwrap() as i64;
    let addr = mm.mmap(0, 4 << 20, prot::READ, map::SHARED, fd, 0).unwrap();
    assert_eq!(addr % (2 << 20), 0, "ext4 mappings are THP aligned: {addr:#x}");
    assert!(mm.maps().contains("/outside/f"));
}
