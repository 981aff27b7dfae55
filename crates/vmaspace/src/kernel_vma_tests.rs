//! The kernel's own userland VMA tests (`tools/testing/vma/vma.c`, Linux 6.18; spec §8.3),
//! ported to the model. As in the harness, VMAs carry dummy operations (so they are not
//! anonymous), no file, and the flags `VM_READ|VM_WRITE|VM_MAYREAD|VM_MAYWRITE`.
//!
//! Not ported: `vmi_prealloc_fail` (the model has no allocation failure to inject).

use crate::AddressSpace;
use crate::driver::VmOperations;
use crate::flags::VmFlags;
use crate::merge::Vmg;
use crate::vma::{AnonVmaRef, Vma};
use std::sync::Arc;

const BASE: VmFlags = VmFlags(VmFlags::READ.0 | VmFlags::WRITE.0 | VmFlags::MAYREAD.0 | VmFlags::MAYWRITE.0);
const DUMMY: AnonVmaRef = AnonVmaRef::new(1, false);
const DUMMY_2: AnonVmaRef = AnonVmaRef::new(2, false);

fn dummy_ops() -> Arc<VmOperations> {
    Arc::new(VmOperations::labelled("vma_dummy_vm_ops"))
}

fn close_ops() -> Arc<VmOperations> {
    Arc::new(VmOperations { label: "close", close: Some(Arc::new(|_| {})), ..VmOperations::default() })
}

fn mm() -> AddressSpace {
    let mut mm = AddressSpace::new();
    mm.settings.mmap_min_addr = 0;
    mm.settings.lsm_mmap_min_addr = 0;
    mm
}

/// `alloc_and_link_vma()`.
fn link(mm: &mut AddressSpace, start: u64, end: u64, pgoff: u64, flags: VmFlags) -> u64 {
    let mut v = Vma::new(start, end, pgoff, flags);
    v.ops = Some(dummy_ops());
    mm.tree.insert(v);
    start
}

fn vma(mm: &AddressSpace, start: u64) -> &Vma {
    mm.tree.get(start).unwrap_or_else(|| panic!("no VMA at {start:#x}: {:?}", mm.tree))
}

fn set(mm: &mut AddressSpace, start: u64, f: impl FnOnce(&mut Vma)) {
    f(mm.tree.get_mut(start).expect("VMA"))
}

fn range(mm: &AddressSpace, start: u64) -> (u64, u64, u64) {
    let v = vma(mm, start);
    (v.start, v.end, v.pgoff)
}

fn do_merge_new(mm: &mut AddressSpace, start: u64, end: u64, pgoff: u64, flags: VmFlags) -> Option<u64> {
    mm.vma_merge_new_range(&Vmg::new_range(start, end, pgoff, flags, None))
}

/// `try_merge_new_vma()`: merge, else allocate and link.
fn try_merge_new(mm: &mut AddressSpace, start: u64, end: u64, pgoff: u64, flags: VmFlags) -> (u64, bool) {
    match do_merge_new(mm, start, end, pgoff, flags) {
        Some(s) => (s, true),
        None => (link(mm, start, end, pgoff, flags), false),
    }
}

fn do_merge_existing(
    mm: &mut AddressSpace,
    middle: u64,
    start: u64,
    end: u64,
    flags: VmFlags,
    anon: Option<AnonVmaRef>,
) -> Option<u64> {
    let mut vmg = Vmg::modify(vma(mm, middle), start, end, flags);
    vmg.anon_vma = anon;
    mm.vma_merge_existing_range(&vmg).map(|h| h.start)
}

#[test]
fn simple_merge() {
    let mut mm = mm();
    link(&mut mm, 0, 0x1000, 0, BASE);
    link(&mut mm, 0x2000, 0x3000, 2, BASE);
    let r = do_merge_new(&mut mm, 0x1000, 0x2000, 1, BASE).expect("merged");
    assert_eq!(range(&mm, r), (0, 0x3000, 0));
    assert_eq!(vma(&mm, r).flags, BASE);
    assert_eq!(mm.map_count(), 1);
}

#[test]
fn simple_modify() {
    let mut mm = mm();
    link(&mut mm, 0, 0x3000, 0, BASE);
    let r = mm.vma_modify(0, 0x1000, 0x2000, VmFlags::READ | VmFlags::MAYREAD).unwrap().start;
    assert_eq!(range(&mm, r), (0x1000, 0x2000, 1));
    assert_eq!(range(&mm, 0), (0, 0x1000, 0));
    assert_eq!(range(&mm, 0x2000), (0x2000, 0x3000, 2));
    // vma_modify does not apply the flags itself.
    assert_eq!(vma(&mm, r).flags, BASE);
    assert_eq!(mm.map_count(), 3);
}

#[test]
fn simple_expand() {
    let mut mm = mm();
    link(&mut mm, 0, 0x1000, 0, BASE);
    mm.vma_expand(0, 0, 0x3000, 0, None, VmFlags::NONE);
    assert_eq!(range(&mm, 0), (0, 0x3000, 0));
}

#[test]
fn simple_shrink() {
    let mut mm = mm();
    link(&mut mm, 0, 0x3000, 0, BASE);
    mm.vma_shrink(0, 0, 0x1000, 0);
    assert_eq!(range(&mm, 0), (0, 0x1000, 0));
}

#[test]
fn merge_new() {
    let mut mm = mm();
    let a = link(&mut mm, 0, 0x2000, 0, BASE);
    let b = link(&mut mm, 0x3000, 0x4000, 3, BASE);
    let c = link(&mut mm, 0xb000, 0xc000, 0xb, BASE);
    // a. No merge.
    let (d, merged) = try_merge_new(&mut mm, 0x7000, 0x9000, 7, BASE);
    assert!(!merged);
    assert_eq!(mm.map_count(), 4);
    // b. A has a close operation (no impact), B an anon_vma: merged into A, which takes B's.
    set(&mut mm, a, |v| v.ops = Some(close_ops()));
    set(&mut mm, b, |v| v.anon_vma = Some(DUMMY));
    let (r, merged) = try_merge_new(&mut mm, 0x2000, 0x3000, 2, BASE);
    assert!(merged);
    assert_eq!(r, a);
    assert_eq!(range(&mm, a), (0, 0x4000, 0));
    assert_eq!(vma(&mm, a).anon_vma, Some(DUMMY));
    assert_eq!(mm.map_count(), 3);
    // c. Extend A.
    let (r, merged) = try_merge_new(&mut mm, 0x4000, 0x5000, 4, BASE);
    assert!(merged && r == a);
    assert_eq!(range(&mm, a), (0, 0x5000, 0));
    assert_eq!(mm.map_count(), 3);
    // d. D with an anon_vma and a close operation: prepend to D.
    set(&mut mm, d, |v| {
        v.anon_vma = Some(DUMMY);
        v.ops = Some(close_ops());
    });
    let (r, merged) = try_merge_new(&mut mm, 0x6000, 0x7000, 6, BASE);
    assert!(merged);
    assert_eq!(range(&mm, r), (0x6000, 0x9000, 6));
    assert_eq!(mm.map_count(), 3);
    // e. D without close: A, the new range and D merge; D is removed.
    set(&mut mm, 0x6000, |v| v.ops = None);
    let (r, merged) = try_merge_new(&mut mm, 0x5000, 0x6000, 5, BASE);
    assert!(merged && r == a);
    assert_eq!(range(&mm, a), (0, 0x9000, 0));
    assert_eq!(mm.map_count(), 2);
    // f. C with an anon_vma: prepend to C.
    set(&mut mm, c, |v| v.anon_vma = Some(DUMMY));
    let (r, merged) = try_merge_new(&mut mm, 0xa000, 0xb000, 0xa, BASE);
    assert!(merged);
    assert_eq!(range(&mm, r), (0xa000, 0xc000, 0xa));
    assert_eq!(mm.map_count(), 2);
    // g. Fill the last gap: one VMA.
    let (r, merged) = try_merge_new(&mut mm, 0x9000, 0xa000, 9, BASE);
    assert!(merged && r == a);
    assert_eq!(range(&mm, a), (0, 0xc000, 0));
    assert_eq!(vma(&mm, a).anon_vma, Some(DUMMY));
    assert_eq!(mm.map_count(), 1);
}

#[test]
fn vma_merge_special_flags() {
    let specials = [VmFlags::IO, VmFlags::DONTEXPAND, VmFlags::PFNMAP, VmFlags::MIXEDMAP];
    assert_eq!(specials.iter().fold(VmFlags::NONE, |a, b| a | *b), VmFlags::SPECIAL);
    let mut mm = mm();
    link(&mut mm, 0, 0x3000, 0, BASE);
    for f in specials {
        set(&mut mm, 0, |v| v.flags = BASE | f);
        assert_eq!(do_merge_new(&mut mm, 0x3000, 0x4000, 3, BASE | f), None);
    }
    link(&mut mm, 0x3000, 0x4000, 3, BASE);
    for f in specials {
        set(&mut mm, 0, |v| v.flags = BASE | f);
        assert_eq!(do_merge_existing(&mut mm, 0x3000, 0x3000, 0x4000, BASE | f, None), None);
    }
    assert_eq!(mm.map_count(), 2);
}

#[test]
fn vma_merge_with_close() {
    // a. New range between prev and next-with-close: merges into prev only.
    let mut mm = mm();
    link(&mut mm, 0, 0x3000, 0, BASE);
    link(&mut mm, 0x5000, 0x9000, 5, BASE);
    set(&mut mm, 0x5000, |v| v.ops = Some(close_ops()));
    assert_eq!(do_merge_new(&mut mm, 0x3000, 0x5000, 3, BASE), Some(0));
    assert_eq!(range(&mm, 0), (0, 0x5000, 0));
    assert_eq!(mm.map_count(), 2);
    // b. Whole middle with close, merging into prev: refused.
    let mut mm = self::mm();
    link(&mut mm, 0, 0x3000, 0, BASE);
    link(&mut mm, 0x3000, 0x5000, 3, BASE);
    set(&mut mm, 0x3000, |v| v.ops = Some(close_ops()));
    assert_eq!(do_merge_existing(&mut mm, 0x3000, 0x3000, 0x5000, BASE, None), None);
    assert_eq!(mm.map_count(), 2);
    // c. Whole middle with close, merging into next: refused.
    let mut mm = self::mm();
    link(&mut mm, 0x3000, 0x5000, 3, BASE);
    link(&mut mm, 0x5000, 0x9000, 5, BASE);
    set(&mut mm, 0x3000, |v| v.ops = Some(close_ops()));
    assert_eq!(do_merge_existing(&mut mm, 0x3000, 0x3000, 0x5000, BASE, None), None);
    assert_eq!(mm.map_count(), 2);
    // d. prev, middle with close, next: refused.
    let mut mm = self::mm();
    link(&mut mm, 0, 0x3000, 0, BASE);
    link(&mut mm, 0x3000, 0x5000, 3, BASE);
    link(&mut mm, 0x5000, 0x9000, 5, BASE);
    set(&mut mm, 0x3000, |v| v.ops = Some(close_ops()));
    assert_eq!(do_merge_existing(&mut mm, 0x3000, 0x3000, 0x5000, BASE, None), None);
    assert_eq!(mm.map_count(), 3);
    // e. next has close: the merge becomes prev + middle.
    let mut mm = self::mm();
    link(&mut mm, 0, 0x3000, 0, BASE);
    link(&mut mm, 0x3000, 0x5000, 3, BASE);
    link(&mut mm, 0x5000, 0x9000, 5, BASE);
    set(&mut mm, 0x5000, |v| v.ops = Some(close_ops()));
    assert_eq!(do_merge_existing(&mut mm, 0x3000, 0x3000, 0x5000, BASE, None), Some(0));
    assert_eq!(range(&mm, 0), (0, 0x5000, 0));
    assert_eq!(mm.map_count(), 2);
}

#[test]
fn vma_merge_new_with_close() {
    let mut mm = mm();
    link(&mut mm, 0, 0x2000, 0, BASE);
    link(&mut mm, 0x5000, 0x7000, 5, BASE);
    let ops = close_ops();
    set(&mut mm, 0, |v| v.ops = Some(ops.clone()));
    set(&mut mm, 0x5000, |v| v.ops = Some(ops.clone()));
    assert_eq!(do_merge_new(&mut mm, 0x2000, 0x5000, 2, BASE), Some(0));
    assert_eq!(range(&mm, 0), (0, 0x5000, 0));
    assert!(Arc::ptr_eq(vma(&mm, 0).ops.as_ref().unwrap(), &ops));
    assert_eq!(mm.map_count(), 2);
}

#[test]
fn merge_existing() {
    // a. Merge right, partial.
    let mut mm = mm();
    link(&mut mm, 0x2000, 0x6000, 2, BASE);
    link(&mut mm, 0x6000, 0x9000, 6, BASE);
    set(&mut mm, 0x2000, |v| {
        v.ops = Some(close_ops());
        v.anon_vma = Some(DUMMY);
    });
    set(&mut mm, 0x6000, |v| v.ops = Some(close_ops()));
    let r = do_merge_existing(&mut mm, 0x2000, 0x3000, 0x6000, BASE, Some(DUMMY)).unwrap();
    assert_eq!(range(&mm, r), (0x3000, 0x9000, 3));
    assert_eq!(vma(&mm, r).anon_vma, Some(DUMMY));
    assert_eq!(range(&mm, 0x2000), (0x2000, 0x3000, 2));
    assert_eq!(mm.map_count(), 2);
    // b. Merge right, full.
    let mut mm = self::mm();
    link(&mut mm, 0x2000, 0x6000, 2, BASE);
    link(&mut mm, 0x6000, 0x9000, 6, BASE);
    set(&mut mm, 0x2000, |v| v.anon_vma = Some(DUMMY));
    set(&mut mm, 0x6000, |v| v.ops = Some(close_ops()));
    let r = do_merge_existing(&mut mm, 0x2000, 0x2000, 0x6000, BASE, Some(DUMMY)).unwrap();
    assert_eq!(range(&mm, r), (0x2000, 0x9000, 2));
    assert_eq!(vma(&mm, r).anon_vma, Some(DUMMY));
    assert_eq!(mm.map_count(), 1);
    // c. Merge left, partial.
    let mut mm = self::mm();
    link(&mut mm, 0, 0x3000, 0, BASE);
    link(&mut mm, 0x3000, 0x7000, 3, BASE);
    set(&mut mm, 0, |v| v.ops = Some(close_ops()));
    set(&mut mm, 0x3000, |v| {
        v.ops = Some(close_ops());
        v.anon_vma = Some(DUMMY);
    });
    let r = do_merge_existing(&mut mm, 0x3000, 0x3000, 0x6000, BASE, Some(DUMMY)).unwrap();
    assert_eq!(range(&mm, r), (0, 0x6000, 0));
    assert_eq!(vma(&mm, 0).anon_vma, Some(DUMMY));
    assert_eq!(range(&mm, 0x6000), (0x6000, 0x7000, 6));
    assert_eq!(mm.map_count(), 2);
    // d. Merge left, full.
    let mut mm = self::mm();
    link(&mut mm, 0, 0x3000, 0, BASE);
    link(&mut mm, 0x3000, 0x7000, 3, BASE);
    set(&mut mm, 0, |v| v.ops = Some(close_ops()));
    set(&mut mm, 0x3000, |v| v.anon_vma = Some(DUMMY));
    let r = do_merge_existing(&mut mm, 0x3000, 0x3000, 0x7000, BASE, Some(DUMMY)).unwrap();
    assert_eq!(range(&mm, r), (0, 0x7000, 0));
    assert_eq!(mm.map_count(), 1);
    // e. Merge both.
    let mut mm = self::mm();
    link(&mut mm, 0, 0x3000, 0, BASE);
    link(&mut mm, 0x3000, 0x7000, 3, BASE);
    link(&mut mm, 0x7000, 0x9000, 7, BASE);
    set(&mut mm, 0, |v| v.ops = Some(close_ops()));
    set(&mut mm, 0x3000, |v| v.anon_vma = Some(DUMMY));
    let r = do_merge_existing(&mut mm, 0x3000, 0x3000, 0x7000, BASE, Some(DUMMY)).unwrap();
    assert_eq!(range(&mm, r), (0, 0x9000, 0));
    assert_eq!(vma(&mm, 0).anon_vma, Some(DUMMY));
    assert_eq!(mm.map_count(), 1);
    // f. Ranges touching neither end of the middle never merge.
    let mut mm = self::mm();
    link(&mut mm, 0, 0x3000, 0, BASE);
    link(&mut mm, 0x3000, 0x8000, 3, BASE);
    link(&mut mm, 0x8000, 0xa000, 8, BASE);
    for (s, e) in
        [(0x4000, 0x5000), (0x5000, 0x6000), (0x6000, 0x7000), (0x4000, 0x7000), (0x4000, 0x6000), (0x5000, 0x6000)]
    {
        assert_eq!(do_merge_existing(&mut mm, 0x3000, s, e, BASE, Some(DUMMY)), None);
    }
    assert_eq!(mm.map_count(), 3);
}

#[test]
fn anon_vma_non_mergeable() {
    let mut mm = mm();
    link(&mut mm, 0, 0x3000, 0, BASE);
    link(&mut mm, 0x3000, 0x7000, 3, BASE);
    link(&mut mm, 0x7000, 0x9000, 7, BASE);
    set(&mut mm, 0, |v| v.anon_vma = Some(DUMMY));
    set(&mut mm, 0x7000, |v| v.anon_vma = Some(DUMMY_2));
    // a. Existing: prev and next have different anon_vmas, so only prev merges.
    assert_eq!(do_merge_existing(&mut mm, 0x3000, 0x3000, 0x7000, BASE, None), Some(0));
    assert_eq!(range(&mm, 0), (0, 0x7000, 0));
    assert_eq!(range(&mm, 0x7000), (0x7000, 0x9000, 7));
    assert_eq!(mm.map_count(), 2);
    // b. New range in the same layout.
    let mut mm = self::mm();
    link(&mut mm, 0, 0x3000, 0, BASE);
    link(&mut mm, 0x7000, 0x9000, 7, BASE);
    set(&mut mm, 0, |v| v.anon_vma = Some(DUMMY));
    set(&mut mm, 0x7000, |v| v.anon_vma = Some(DUMMY_2));
    assert_eq!(do_merge_new(&mut mm, 0x3000, 0x7000, 3, BASE), Some(0));
    assert_eq!(range(&mm, 0), (0, 0x7000, 0));
    assert_eq!(mm.map_count(), 2);
}

#[test]
fn dup_anon_vma() {
    // a. vma_expand over next takes next's anon_vma.
    let mut mm = mm();
    link(&mut mm, 0, 0x3000, 0, BASE);
    link(&mut mm, 0x3000, 0x5000, 3, BASE);
    set(&mut mm, 0x3000, |v| v.anon_vma = Some(DUMMY));
    let next = vma(&mm, 0x3000);
    mm.vma_expand(0, 0, 0x5000, 0, Some((next.start, next.end)), VmFlags::NONE);
    assert_eq!(vma(&mm, 0).anon_vma, Some(DUMMY));
    assert_eq!(mm.map_count(), 1);
    // b. Merge both with next's anon_vma.
    let mut mm = self::mm();
    link(&mut mm, 0, 0x3000, 0, BASE);
    link(&mut mm, 0x3000, 0x5000, 3, BASE);
    link(&mut mm, 0x5000, 0x8000, 5, BASE);
    set(&mut mm, 0x5000, |v| v.anon_vma = Some(DUMMY));
    assert_eq!(do_merge_existing(&mut mm, 0x3000, 0x3000, 0x5000, BASE, None), Some(0));
    assert_eq!(range(&mm, 0), (0, 0x8000, 0));
    assert_eq!(vma(&mm, 0).anon_vma, Some(DUMMY));
    // c. Merge both with the middle's anon_vma.
    let mut mm = self::mm();
    link(&mut mm, 0, 0x3000, 0, BASE);
    link(&mut mm, 0x3000, 0x5000, 3, BASE);
    link(&mut mm, 0x5000, 0x8000, 5, BASE);
    set(&mut mm, 0x3000, |v| v.anon_vma = Some(DUMMY));
    assert_eq!(do_merge_existing(&mut mm, 0x3000, 0x3000, 0x5000, BASE, Some(DUMMY)), Some(0));
    assert_eq!(range(&mm, 0), (0, 0x8000, 0));
    assert_eq!(vma(&mm, 0).anon_vma, Some(DUMMY));
    // d. Merge left, partial, with the middle's anon_vma.
    let mut mm = self::mm();
    link(&mut mm, 0, 0x3000, 0, BASE);
    link(&mut mm, 0x3000, 0x8000, 3, BASE);
    set(&mut mm, 0x3000, |v| v.anon_vma = Some(DUMMY));
    assert_eq!(do_merge_existing(&mut mm, 0x3000, 0x3000, 0x5000, BASE, Some(DUMMY)), Some(0));
    assert_eq!(range(&mm, 0), (0, 0x5000, 0));
    assert_eq!(vma(&mm, 0).anon_vma, Some(DUMMY));
    // e. Merge right, partial, with the middle's anon_vma.
    let mut mm = self::mm();
    link(&mut mm, 0, 0x5000, 0, BASE);
    link(&mut mm, 0x5000, 0x8000, 5, BASE);
    set(&mut mm, 0, |v| v.anon_vma = Some(DUMMY));
    let r = do_merge_existing(&mut mm, 0, 0x3000, 0x5000, BASE, Some(DUMMY)).unwrap();
    assert_eq!(range(&mm, r), (0x3000, 0x8000, 3));
    assert_eq!(vma(&mm, r).anon_vma, Some(DUMMY));
}

#[test]
fn merge_extend() {
    let mut mm = mm();
    link(&mut mm, 0, 0x1000, 0, BASE);
    link(&mut mm, 0x3000, 0x4000, 3, BASE);
    assert_eq!(mm.vma_merge_extend(0, 0x2000), Some(0));
    assert_eq!(range(&mm, 0), (0, 0x4000, 0));
    assert_eq!(mm.map_count(), 1);
}

#[test]
fn expand_only_mode() {
    let mut mm = mm();
    link(&mut mm, 0, 0x2000, 0, BASE);
    link(&mut mm, 0x3000, 0x5000, 3, BASE);
    link(&mut mm, 0x9000, 0xa000, 9, BASE);
    let mut vmg = Vmg::new_range(0x5000, 0x9000, 5, BASE, None);
    vmg.just_expand = true;
    assert_eq!(mm.vma_merge_new_range(&vmg), Some(0x3000));
    assert_eq!(range(&mm, 0x3000), (0x3000, 0x9000, 3));
    // Just expanding: the next VMA, though mergeable, stays.
    assert_eq!(range(&mm, 0x9000), (0x9000, 0xa000, 9));
    assert_eq!(mm.map_count(), 3);
}

#[test]
fn mmap_region_basic() {
    use crate::flags::{map, prot};
    let mut mm = mm();
    let anon = map::PRIVATE | map::ANONYMOUS | map::FIXED;
    let rw = prot::READ | prot::WRITE;
    for addr in [0x300000, 0x250000, 0x303000, 0x24d000] {
        assert_eq!(mm.mmap(addr, 0x3000, rw, anon, -1, 0), Ok(addr));
    }
    assert_eq!(mm.map_count(), 2);
    assert_eq!(range(&mm, 0x24d000), (0x24d000, 0x253000, 0x24d));
    assert_eq!(range(&mm, 0x300000), (0x300000, 0x306000, 0x300));
    mm.validate().unwrap();
}

#[test]
fn copy_vma() {
    // a. No neighbour to merge with: a distinct new VMA.
    let mut mm = mm();
    link(&mut mm, 0x3000, 0x5000, 3, BASE);
    let r = mm.copy_vma(0x3000, 0, 0x2000, 0);
    assert_eq!(range(&mm, r), (0, 0x2000, 0));
    assert_eq!(mm.map_count(), 2);
    // b. Merges into the next VMA.
    let mut mm = self::mm();
    link(&mut mm, 0, 0x2000, 0, BASE);
    link(&mut mm, 0x6000, 0x8000, 6, BASE);
    let r = mm.copy_vma(0, 0x4000, 0x2000, 4);
    assert_eq!(r, 0x4000);
    assert_eq!(range(&mm, 0x4000), (0x4000, 0x8000, 4));
    assert_eq!(mm.map_count(), 2);
}
