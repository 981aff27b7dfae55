//! The mapping hooks: what `mmap_prepare` and the legacy `.mmap` may do, what Linux does with
//! each, and why the new hook exists (it lets a mapping merge with the flags the driver sets).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use vmaspace::driver::{
    CFileOperations, DriverBug, FMode, FileOperations, Inode, InodeMode, InodeState, LegacyMmap, LegacyVma, MmapHook,
    MmapPrepare, OpenFile, VmAreaDesc, VmOperations,
};
use vmaspace::flags::{VmFlags, map, prot};
use vmaspace::{AddressSpace, Errno};

const A: u64 = 0x1000_0000_0000;
const PAGE: u64 = 0x1000;

/// A device that marks its mappings `VM_DONTDUMP`, through either hook.
struct DontDumpPrepare;
impl MmapPrepare for DontDumpPrepare {
    fn mmap_prepare(&self, desc: &mut VmAreaDesc<'_>) -> Result<(), Errno> {
        desc.set_vm_flags(desc.vm_flags() | VmFlags::DONTDUMP);
        desc.set_vm_ops(Arc::new(VmOperations::labelled("dontdump")));
        desc.set_private_data(Arc::new(desc.pgoff()));
        Ok(())
    }
}

struct DontDumpLegacy;
impl LegacyMmap for DontDumpLegacy {
    fn mmap(&self, vma: &mut LegacyVma<'_>) -> Result<(), Errno> {
        vma.flags |= VmFlags::DONTDUMP;
        vma.vm_ops = Some(Arc::new(VmOperations::labelled("dontdump")));
        Ok(())
    }
}

/// A hook that always fails.
struct Failing(Errno);
impl MmapPrepare for Failing {
    fn mmap_prepare(&self, _: &mut VmAreaDesc<'_>) -> Result<(), Errno> {
        Err(self.0)
    }
}
impl LegacyMmap for Failing {
    fn mmap(&self, _: &mut LegacyVma<'_>) -> Result<(), Errno> {
        Err(self.0)
    }
}

/// A legacy driver that does what Linux WARNs about: moves the start, adds VM_MAYWRITE.
struct Misbehaving;
impl LegacyMmap for Misbehaving {
    fn mmap(&self, vma: &mut LegacyVma<'_>) -> Result<(), Errno> {
        vma.start += PAGE;
        vma.flags |= VmFlags::MAYWRITE;
        Ok(())
    }
}

fn device(mm: &mut AddressSpace, hook: Result<MmapHook, vmaspace::driver::HookTableError>, mode: FMode) -> i64 {
    let ops = Arc::new(FileOperations { hook, ..FileOperations::from_c_table("dev", Default::default()) });
    let state = InodeState::linked(b"/dev/test", 1 << 30);
    let inode = Arc::new(Inode::new(77, (0, 6), ops.clone(), state).with_mode(InodeMode::CharDevice));
    let file: Arc<OpenFile> = mm.vfs().open_with_ops(inode, mode, ops);
    mm.install_file(file).unwrap() as i64
}

const RW: FMode = FMode { read: true, write: true };
const RO: FMode = FMode { read: true, write: false };

fn map_at(mm: &mut AddressSpace, fd: i64, page: u64, pages: u64, off_pages: u64) -> Result<u64, Errno> {
    mm.mmap(A + page * PAGE, pages * PAGE, prot::READ, map::SHARED | map::FIXED, fd, off_pages * PAGE)
}

#[test]
fn prepare_hook_flags_take_part_in_the_merge() {
    let mut mm = AddressSpace::new();
    let fd = device(&mut mm, Ok(MmapHook::Prepare(Arc::new(DontDumpPrepare))), RW);
    map_at(&mut mm, fd, 0, 2, 0).unwrap();
    map_at(&mut mm, fd, 2, 2, 2).unwrap();
    assert_eq!(mm.map_count(), 1, "{}", mm.maps());
    let v = mm.find_vma(A).unwrap();
    assert!(v.flags().contains(VmFlags::DONTDUMP));
    // The merged VMA carries the second mapping's private data (set_vma_user_defined_fields).
    assert_eq!(v.private_data().unwrap().downcast_ref::<u64>(), Some(&2));
    mm.validate().unwrap();
}

#[test]
fn legacy_hook_flags_come_too_late_to_merge() {
    let mut mm = AddressSpace::new();
    let fd = device(&mut mm, Ok(MmapHook::Legacy(Arc::new(DontDumpLegacy))), RW);
    map_at(&mut mm, fd, 0, 2, 0).unwrap();
    map_at(&mut mm, fd, 2, 2, 2).unwrap();
    // The merge attempt saw the flags from before the hook; Linux 6.16 dropped the retry.
    assert_eq!(mm.map_count(), 2, "{}", mm.maps());
    assert!(mm.vmas().all(|v| v.flags().contains(VmFlags::DONTDUMP)));
    mm.validate().unwrap();
}

#[test]
fn a_failing_hook_without_map_fixed_changes_nothing() {
    for hook in [MmapHook::Prepare(Arc::new(Failing(Errno::EIO))), MmapHook::Legacy(Arc::new(Failing(Errno::EIO)))] {
        let mut mm = AddressSpace::new();
        let fd = device(&mut mm, Ok(hook), RW);
        assert_eq!(map_at(&mut mm, fd, 0, 2, 0), Err(Errno::EIO));
        assert_eq!(mm.map_count(), 0);
        mm.validate().unwrap();
    }
}

#[test]
fn a_failing_hook_over_map_fixed_leaves_a_hole_with_its_splits() {
    for hook in [MmapHook::Prepare(Arc::new(Failing(Errno::EIO))), MmapHook::Legacy(Arc::new(Failing(Errno::EIO)))] {
        let mut mm = AddressSpace::new();
        let anon = map::PRIVATE | map::ANONYMOUS | map::FIXED;
        mm.mmap(A, 8 * PAGE, prot::READ | prot::WRITE, anon, -1, 0).unwrap();
        let fd = device(&mut mm, Ok(hook), RW);
        assert_eq!(map_at(&mut mm, fd, 2, 2, 0), Err(Errno::EIO));
        // Linux 6.18 tore the old pages down before calling the hook (vms_clean_up_area), so
        // the range is gone and the old VMA stays split around it.
        let ranges: Vec<(u64, u64)> = mm.vmas().map(|v| (v.start(), v.end())).collect();
        assert_eq!(ranges, vec![(A, A + 2 * PAGE), (A + 4 * PAGE, A + 8 * PAGE)]);
        mm.validate().unwrap();
    }
}

#[test]
fn files_without_exactly_one_hook_cannot_be_mapped() {
    let mut mm = AddressSpace::new();
    let both = CFileOperations { mmap: Some(Arc::new(DontDumpLegacy)), mmap_prepare: Some(Arc::new(DontDumpPrepare)) };
    let fd = device(&mut mm, MmapHook::try_from(both), RW);
    assert_eq!(map_at(&mut mm, fd, 0, 1, 0), Err(Errno::ENODEV));
    assert_eq!(mm.driver_bugs(), &[DriverBug::BothHooks { file: "dev" }]);
    let neither = CFileOperations::default();
    let fd = device(&mut mm, MmapHook::try_from(neither), RW);
    assert_eq!(map_at(&mut mm, fd, 0, 1, 0), Err(Errno::ENODEV));
    assert_eq!(mm.driver_bugs().len(), 1, "neither is not a driver bug");
    let only_prepare = CFileOperations { mmap: None, mmap_prepare: Some(Arc::new(DontDumpPrepare)) };
    assert!(matches!(MmapHook::try_from(only_prepare), Ok(MmapHook::Prepare(_))));
}

#[test]
fn legacy_misbehaviour_is_reported_and_the_mapping_goes_on() {
    let mut mm = AddressSpace::new();
    let fd = device(&mut mm, Ok(MmapHook::Legacy(Arc::new(Misbehaving))), RO);
    assert_eq!(map_at(&mut mm, fd, 0, 2, 0), Ok(A));
    assert_eq!(
        mm.driver_bugs(),
        &[DriverBug::ChangedStart { file: "dev", from: A, to: A + PAGE }, DriverBug::AddedMayWrite { file: "dev" }]
    );
    assert_eq!(mm.find_vma(A).map(|v| v.start()), Some(A));
    mm.validate().unwrap();
}

#[test]
fn close_operations_run_once_and_keep_vmas_from_being_merged_away() {
    static CLOSED: AtomicUsize = AtomicUsize::new(0);
    struct WithClose;
    impl MmapPrepare for WithClose {
        fn mmap_prepare(&self, desc: &mut VmAreaDesc<'_>) -> Result<(), Errno> {
            let ops = VmOperations {
                label: "with-close",
                close: Some(Arc::new(|_| {
                    CLOSED.fetch_add(1, Ordering::SeqCst);
                })),
                ..VmOperations::default()
            };
            desc.set_vm_ops(Arc::new(ops));
            Ok(())
        }
    }
    let mut mm = AddressSpace::new();
    let fd = device(&mut mm, Ok(MmapHook::Prepare(Arc::new(WithClose))), RW);
    map_at(&mut mm, fd, 0, 2, 0).unwrap();
    map_at(&mut mm, fd, 4, 2, 4).unwrap();
    // Filling the gap would remove the VMA above: it has a close operation, so only the lower
    // one grows.
    map_at(&mut mm, fd, 2, 2, 2).unwrap();
    let ranges: Vec<(u64, u64)> = mm.vmas().map(|v| (v.start(), v.end())).collect();
    assert_eq!(ranges, vec![(A, A + 4 * PAGE), (A + 4 * PAGE, A + 6 * PAGE)]);
    assert_eq!(CLOSED.load(Ordering::SeqCst), 0);
    mm.munmap(A, 6 * PAGE).unwrap();
    assert_eq!(CLOSED.load(Ordering::SeqCst), 2);
}

#[test]
fn the_descriptor_reports_what_a_hook_may_read() {
    struct Inspect;
    impl MmapPrepare for Inspect {
        fn mmap_prepare(&self, desc: &mut VmAreaDesc<'_>) -> Result<(), Errno> {
            assert_eq!((desc.start(), desc.end(), desc.size()), (A, A + 3 * PAGE, 3 * PAGE));
            assert_eq!(desc.pgoff(), 5);
            assert!(Arc::ptr_eq(desc.file(), desc.vm_file()));
            assert!(desc.vm_flags().contains(VmFlags::READ | VmFlags::SHARED | VmFlags::MAYSHARE));
            assert_eq!(desc.mm().map_count, 0);
            desc.set_pgoff(9);
            Ok(())
        }
    }
    let mut mm = AddressSpace::new();
    let fd = device(&mut mm, Ok(MmapHook::Prepare(Arc::new(Inspect))), RW);
    map_at(&mut mm, fd, 0, 3, 5).unwrap();
    assert_eq!(mm.find_vma(A).unwrap().pgoff(), 9);
    assert!(mm.maps().starts_with("100000000000-100000003000 r--s 00009000 00:06 77"));
}

/// A driver that sets `VM_HUGETLB` on a file that is not hugetlbfs (a kernel bug in Linux).
struct FakeHugetlb;
impl MmapPrepare for FakeHugetlb {
    fn mmap_prepare(&self, desc: &mut VmAreaDesc<'_>) -> Result<(), Errno> {
        desc.set_vm_flags(desc.vm_flags() | VmFlags::HUGETLB);
        Ok(())
    }
}

#[test]
fn a_hugetlb_flag_on_another_file_does_not_make_the_model_panic() {
    let mut mm = AddressSpace::new();
    let fd = device(&mut mm, Ok(MmapHook::Prepare(Arc::new(FakeHugetlb))), RW);
    map_at(&mut mm, fd, 0, 4, 0).unwrap();
    assert!(mm.find_vma(A).unwrap().flags().contains(VmFlags::HUGETLB));
    // It faults, splits and is zapped as a mapping of small pages.
    assert_eq!(mm.peek(A, 4 * PAGE), Ok(()));
    assert_eq!(mm.madvise(A, PAGE, vmaspace::advice::DONTNEED), Ok(0));
    assert_eq!(mm.munmap(A + PAGE, PAGE), Ok(0));
    assert!(mm.smaps().contains("KernelPageSize:        4 kB"));
    mm.validate().unwrap();
}
