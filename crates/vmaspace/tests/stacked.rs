//! A stacked (overlayfs-style) file over a lower file that has only `mmap_prepare`: Linux 6.18
//! maps it through the compatibility layer, whose result differs from mapping the lower file
//! directly.

use std::sync::Arc;
use vmaspace::driver::{
    FMode, FileOperations, Inode, InodeState, MmapHook, MmapPrepare, OpenFile, VmAreaDesc, VmOperations,
};
use vmaspace::drivers::stacked::stacked_file_operations;
use vmaspace::flags::{VmFlags, map, prot};
use vmaspace::{AddressSpace, Errno};

const A: u64 = 0x1000_0000_0000;
const PAGE: u64 = 0x1000;

/// A lower file system's hook: marks mappings not dumpable, takes away VM_MAYEXEC, and sets
/// operations only when asked to.
struct Lower {
    set_ops: bool,
    fail: bool,
}

impl MmapPrepare for Lower {
    fn mmap_prepare(&self, desc: &mut VmAreaDesc<'_>) -> Result<(), Errno> {
        if self.fail {
            return Err(Errno::EIO);
        }
        desc.set_vm_flags((desc.vm_flags() | VmFlags::DONTDUMP) & !VmFlags::MAYEXEC);
        if self.set_ops {
            desc.set_vm_ops(Arc::new(VmOperations::labelled("lower_vm_ops")));
        }
        Ok(())
    }
}

fn lower_file(mm: &AddressSpace, set_ops: bool, fail: bool) -> Arc<OpenFile> {
    let hook = MmapHook::Prepare(Arc::new(Lower { set_ops, fail }));
    let ops = Arc::new(FileOperations::new("lowerfs", hook));
    let state = InodeState::linked(b"/lower/f", 1 << 20);
    let inode = Arc::new(Inode::new(5, (7, 0), ops.clone(), state));
    mm.vfs().open_with_ops(inode, FMode { read: true, write: true }, ops)
}

fn stacked_on(mm: &mut AddressSpace, lower: Arc<OpenFile>) -> i64 {
    let state = InodeState::linked(b"/overlay/f", 1 << 20);
    let ops = Arc::new(stacked_file_operations(lower));
    let inode = Arc::new(Inode::new(6, (0, 0x29), ops.clone(), state));
    let f = mm.vfs().open_with_ops(inode, FMode { read: true, write: true }, ops);
    mm.install_file(f).unwrap() as i64
}

fn map(mm: &mut AddressSpace, fd: i64, page: u64) -> Result<u64, Errno> {
    mm.mmap(A + page * PAGE, PAGE, prot::READ, map::SHARED | map::FIXED, fd, page * PAGE)
}

#[test]
fn the_compat_layer_ors_the_flags_a_hook_chose() {
    let mut mm = AddressSpace::new();
    let lower = lower_file(&mm, true, false);
    let direct = mm.install_file(lower.clone()).unwrap() as i64;
    let stacked = stacked_on(&mut mm, lower);
    map(&mut mm, direct, 0).unwrap();
    map(&mut mm, stacked, 4).unwrap();
    let d = mm.find_vma(A).unwrap().flags();
    let s = mm.find_vma(A + 4 * PAGE).unwrap().flags();
    assert!(d.contains(VmFlags::DONTDUMP) && s.contains(VmFlags::DONTDUMP));
    assert!(!d.contains(VmFlags::MAYEXEC), "mmap_prepare called directly can clear flags");
    assert!(s.contains(VmFlags::MAYEXEC), "6.18's compat layer only ORs: the cleared flag stays");
    // The stacked VMA maps the lower file: maps shows it, and merging compares it.
    assert!(mm.maps().contains("/lower/f"));
    assert!(!mm.maps().contains("/overlay/f"));
}

#[test]
fn the_compat_layer_replaces_the_operations_even_with_none() {
    let mut mm = AddressSpace::new();
    let lower = lower_file(&mm, false, false);
    let stacked = stacked_on(&mut mm, lower);
    map(&mut mm, stacked, 0).unwrap();
    assert!(mm.find_vma(A).unwrap().is_anonymous(), "set_vma_from_desc() writes vm_ops = NULL");
    let lower = lower_file(&mm, false, false);
    let direct = mm.install_file(lower).unwrap() as i64;
    map(&mut mm, direct, 2).unwrap();
    assert!(!mm.find_vma(A + 2 * PAGE).unwrap().is_anonymous(), "a new VMA starts with dummy operations");
}

#[test]
fn a_failing_lower_hook_fails_the_stacked_mapping_like_a_legacy_one() {
    let mut mm = AddressSpace::new();
    let anon = map::PRIVATE | map::ANONYMOUS | map::FIXED;
    mm.mmap(A, 4 * PAGE, prot::READ | prot::WRITE, anon, -1, 0).unwrap();
    let lower = lower_file(&mm, true, true);
    let stacked = stacked_on(&mut mm, lower);
    assert_eq!(map(&mut mm, stacked, 1), Err(Errno::EIO));
    let ranges: Vec<(u64, u64)> = mm.vmas().map(|v| (v.start(), v.end())).collect();
    assert_eq!(ranges, vec![(A, A + PAGE), (A + 2 * PAGE, A + 4 * PAGE)]);
    mm.validate().unwrap();
}
