//! The huge page pools balance: whatever a process does with huge pages, every page and every
//! reservation goes back to the pool once the mappings, files and processes holding them are
//! gone (Linux frees them with the last reference). The scenarios `hugetlb_*` check the same
//! rules against the kernel one trace at a time; this test runs many random sequences.

use proptest::prelude::*;
use std::sync::Arc;
use vmaspace::flags::{map, prot};
use vmaspace::hugetlb::{HugePool, HugeSize};
use vmaspace::{AddressSpace, Settings, Vfs};

const BASE: u64 = 0x1000_0000_0000;
const HUGE: u64 = 2 << 20;
const POOL: u64 = 6;

#[derive(Debug, Clone)]
enum Op {
    Map { slot: u64, pages: u64, shared: bool, noreserve: bool },
    MapMemfd { slot: u64, pages: u64, shared: bool },
    Unmap { slot: u64, pages: u64 },
    Touch { slot: u64, write: bool },
    DontNeed { slot: u64 },
    Fork,
    ChildTouch { slot: u64 },
    ExitChild,
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0u64..8;
    prop_oneof![
        (slot.clone(), 1u64..4, any::<bool>(), any::<bool>()).prop_map(|(slot, pages, shared, noreserve)| Op::Map {
            slot,
            pages,
            shared,
            noreserve
        }),
        (slot.clone(), 1u64..3, any::<bool>()).prop_map(|(slot, pages, shared)| Op::MapMemfd { slot, pages, shared }),
        (slot.clone(), 1u64..4).prop_map(|(slot, pages)| Op::Unmap { slot, pages }),
        (slot.clone(), any::<bool>()).prop_map(|(slot, write)| Op::Touch { slot, write }),
        slot.clone().prop_map(|slot| Op::DontNeed { slot }),
        Just(Op::Fork),
        slot.prop_map(|slot| Op::ChildTouch { slot }),
        Just(Op::ExitChild),
    ]
}

fn run(ops: &[Op]) -> Arc<Vfs> {
    let vfs = Arc::new(Vfs::default());
    vfs.hugepages().set_nr_hugepages(HugeSize::Pmd, POOL);
    let mut mm = AddressSpace::with_settings(Settings::default(), vfs.clone());
    let mut child: Option<AddressSpace> = None;
    let at = |slot: u64| BASE + slot * HUGE;
    for op in ops {
        match *op {
            Op::Map { slot, pages, shared, noreserve } => {
                let mut flags = map::ANONYMOUS | map::HUGETLB | map::FIXED;
                flags |= if shared { map::SHARED } else { map::PRIVATE };
                if noreserve {
                    flags |= map::NORESERVE;
                }
                let _ = mm.mmap(at(slot), pages * HUGE, prot::READ | prot::WRITE, flags, -1, 0);
            }
            Op::MapMemfd { slot, pages, shared } => {
                if let Ok(fd) = mm.memfd_create(b"h", vmaspace::flags::mfd::HUGETLB) {
                    let fd = fd as i64;
                    let _ = mm.ftruncate(fd, pages * HUGE);
                    let flags = map::FIXED | if shared { map::SHARED } else { map::PRIVATE };
                    let _ = mm.mmap(at(slot), pages * HUGE, prot::READ | prot::WRITE, flags, fd, 0);
                    let _ = mm.close(fd);
                }
            }
            Op::Unmap { slot, pages } => {
                let _ = mm.munmap(at(slot), pages * HUGE);
            }
            Op::Touch { slot, write } => {
                let _ = if write { mm.touch(at(slot), 1) } else { mm.peek(at(slot), 1) };
            }
            Op::DontNeed { slot } => {
                let _ = mm.madvise(at(slot), HUGE, vmaspace::advice::DONTNEED);
            }
            Op::Fork => child = mm.fork().ok(),
            Op::ChildTouch { slot } => {
                if let Some(c) = child.as_mut() {
                    let _ = c.touch(at(slot), 1);
                }
            }
            Op::ExitChild => {
                if let Some(mut c) = child.take() {
                    c.exit_mmap();
                }
            }
        }
        mm.validate().unwrap();
        let p = vfs.hugepages().pool(HugeSize::Pmd);
        assert!(p.resv <= p.free && p.free <= p.total && p.total == POOL, "{p:?} after {op:?}");
    }
    mm.exit_mmap();
    if let Some(mut c) = child {
        c.exit_mmap();
    }
    vfs
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    #[test]
    fn every_page_and_reservation_goes_back(ops in proptest::collection::vec(op(), 1..40)) {
        let vfs = run(&ops);
        prop_assert_eq!(vfs.hugepages().pool(HugeSize::Pmd), HugePool { total: POOL, free: POOL, resv: 0 });
    }
}

#[test]
fn a_private_mapping_keeps_its_pages_promised() {
    let vfs = Arc::new(Vfs::default());
    vfs.hugepages().set_nr_hugepages(HugeSize::Pmd, 2);
    let mut mm = AddressSpace::with_settings(Settings::default(), vfs.clone());
    let private = map::PRIVATE | map::ANONYMOUS | map::HUGETLB | map::FIXED;
    mm.mmap(BASE, HUGE, prot::READ | prot::WRITE, private, -1, 0).unwrap();
    mm.mmap(BASE + HUGE, 2 * HUGE, prot::READ | prot::WRITE, private | map::NORESERVE, -1, 0).unwrap();
    // One page is promised to the first mapping: the unreserved one can take only the other.
    assert!(mm.touch(BASE + HUGE, 1).is_ok());
    assert!(mm.touch(BASE + 2 * HUGE, 1).is_err());
    assert!(mm.touch(BASE, 1).is_ok());
    assert_eq!(vfs.hugepages().pool(HugeSize::Pmd), HugePool { total: 2, free: 0, resv: 0 });
}
