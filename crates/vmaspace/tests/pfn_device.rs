//! The frame-mapping device of `drivers::pfn`, written with each hook: the same mappings, the
//! same flags, and the failure paths where the two differ.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use vmaspace::driver::{
    FMode, FileOperations, Inode, InodeMode, InodeState, MmapAction, MmapHook, MmapPrepare, VmAreaDesc,
};
use vmaspace::drivers::pfn::{Frames, PfnHook, open_pfn_device};
use vmaspace::fault::FaultSignal;
use vmaspace::flags::{VmFlags, map, prot};
use vmaspace::{AddressSpace, Errno};

const A: u64 = 0x1000_0000_0000;
const PAGE: u64 = 0x1000;
const FRAMES: Frames = Frames { base_pfn: 0xfe000, frames: 4 };

fn device(mm: &mut AddressSpace, hook: PfnHook) -> i64 {
    let f = open_pfn_device(mm.vfs().as_ref(), b"/dev/frames", FRAMES, hook);
    mm.install_file(f).unwrap() as i64
}

fn both() -> [PfnHook; 2] {
    [PfnHook::Legacy, PfnHook::Prepare]
}

#[test]
fn both_hooks_map_the_same_frames_with_the_same_flags() {
    for hook in both() {
        let mut mm = AddressSpace::new();
        let fd = device(&mut mm, hook);
        assert_eq!(mm.mmap(A, 4 * PAGE, prot::READ | prot::WRITE, map::SHARED | map::FIXED, fd, 0), Ok(A), "{hook:?}");
        let v = mm.find_vma(A).unwrap();
        assert!(v.flags().contains(VmFlags::IO | VmFlags::PFNMAP | VmFlags::DONTEXPAND | VmFlags::DONTDUMP));
        assert_eq!(v.pgoff(), 0, "a shared mapping keeps its offset");
        assert_eq!(mm.touch(A, 4 * PAGE), Ok(()));
        // Special mappings never merge, whichever hook made them.
        assert_eq!(mm.mmap(A + 4 * PAGE, PAGE, prot::READ, map::SHARED | map::FIXED, fd, 0), Ok(A + 4 * PAGE));
        assert_eq!(mm.map_count(), 2);
        mm.validate().unwrap();
    }
}

#[test]
fn a_private_mapping_shows_the_frame_number_as_its_offset() {
    for hook in both() {
        let mut mm = AddressSpace::new();
        let fd = device(&mut mm, hook);
        assert_eq!(mm.mmap(A, 2 * PAGE, prot::READ, map::PRIVATE | map::FIXED, fd, PAGE), Ok(A));
        assert_eq!(mm.find_vma(A).unwrap().pgoff(), FRAMES.base_pfn + 1, "{hook:?}");
        assert!(mm.maps().starts_with("100000000000-100000002000 r--p fe001000 01:01 1"), "{}", mm.maps());
    }
}

#[test]
fn frames_past_the_device_fault_with_sigbus_in_a_shared_mapping() {
    for hook in both() {
        let mut mm = AddressSpace::new();
        let fd = device(&mut mm, hook);
        assert_eq!(mm.mmap(A, 6 * PAGE, prot::READ, map::SHARED | map::FIXED, fd, 0), Ok(A));
        assert_eq!(mm.peek(A, 4 * PAGE), Ok(()));
        assert_eq!(mm.peek(A + 4 * PAGE, PAGE), Err(FaultSignal::Sigbus), "{hook:?}");
    }
}

#[test]
fn a_refused_remap_fails_each_hook_its_own_way() {
    let anon = map::PRIVATE | map::ANONYMOUS | map::FIXED;
    let expected = [(PfnHook::Legacy, Errno::EINVAL), (PfnHook::Prepare, Errno::EAGAIN)];
    for (hook, errno) in expected {
        let mut mm = AddressSpace::new();
        mm.mmap(A, 8 * PAGE, prot::READ | prot::WRITE, anon, -1, 0).unwrap();
        let fd = device(&mut mm, hook);
        // Private and longer than the device: a partial copy-on-write remap is refused. The
        // legacy hook fails inside `remap_pfn_range` (EINVAL); the converted one fails when
        // the deferred action runs, and its error hook reports EAGAIN.
        assert_eq!(mm.mmap(A + 2 * PAGE, 6 * PAGE, prot::READ, map::PRIVATE | map::FIXED, fd, 0), Err(errno));
        // Either way the old mapping under MAP_FIXED is gone and the new one is not there.
        let ranges: Vec<(u64, u64)> = mm.vmas().map(|v| (v.start(), v.end())).collect();
        assert_eq!(ranges, vec![(A, A + 2 * PAGE)], "{hook:?}");
        mm.validate().unwrap();
    }
}

/// A device whose action has only a success hook, to see when it runs.
struct Hooked {
    calls: Arc<AtomicUsize>,
    fail: bool,
}

impl MmapPrepare for Hooked {
    fn mmap_prepare(&self, desc: &mut VmAreaDesc<'_>) -> Result<(), Errno> {
        let (calls, fail) = (self.calls.clone(), self.fail);
        desc.set_action(MmapAction {
            success_hook: Some(Arc::new(move |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                if fail { Err(Errno::ENOMEM) } else { Ok(()) }
            })),
            ..MmapAction::default()
        });
        Ok(())
    }
}

fn hooked(mm: &mut AddressSpace, calls: &Arc<AtomicUsize>, fail: bool) -> i64 {
    let hook = MmapHook::Prepare(Arc::new(Hooked { calls: calls.clone(), fail }));
    let ops = Arc::new(FileOperations::new("hooked", hook));
    let state = InodeState::linked(b"/dev/hooked", 1 << 20);
    let inode = Arc::new(Inode::new(9, (1, 9), ops.clone(), state).with_mode(InodeMode::CharDevice));
    let f = mm.vfs().open_with_ops(inode, FMode { read: true, write: true }, ops);
    mm.install_file(f).unwrap() as i64
}

#[test]
fn actions_run_for_new_vmas_only_and_a_failing_success_hook_keeps_the_mapping() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut mm = AddressSpace::new();
    let fd = hooked(&mut mm, &calls, false);
    mm.mmap(A, 2 * PAGE, prot::READ, map::SHARED | map::FIXED, fd, 0).unwrap();
    mm.mmap(A + 2 * PAGE, 2 * PAGE, prot::READ, map::SHARED | map::FIXED, fd, 2 * PAGE).unwrap();
    assert_eq!(mm.map_count(), 1, "the second mapping merged");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "a merged mapping runs no action");

    let fails = Arc::new(AtomicUsize::new(0));
    let fd = hooked(&mut mm, &fails, true);
    assert_eq!(mm.mmap(A + 8 * PAGE, PAGE, prot::READ, map::SHARED | map::FIXED, fd, 0), Err(Errno::ENOMEM));
    assert_eq!(fails.load(Ordering::SeqCst), 1);
    assert!(mm.find_vma(A + 8 * PAGE).is_some_and(|v| v.start() == A + 8 * PAGE), "Linux leaves it mapped");
    mm.validate().unwrap();
}
