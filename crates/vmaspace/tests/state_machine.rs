//! Random sequences of calls, checked after every call against the address space's own
//! invariants (`validate`) and against a page-level reference of what is mapped with which
//! protection.

use proptest::prelude::*;
use std::collections::BTreeMap;
use vmaspace::flags::{VmFlags, map, prot};
use vmaspace::{AddressSpace, Errno};

const ARENA: u64 = 0x1000_0000_0000;
const PAGES: u64 = 48;
const PAGE: u64 = 0x1000;

#[derive(Debug, Clone)]
enum Op {
    MmapFixed { page: u64, pages: u64, prot: u64, noreserve: bool },
    MmapHint { pages: u64, prot: u64 },
    MmapFile { page: u64, pages: u64, off: u64, shared: bool },
    Munmap { page: u64, pages: u64 },
    Mprotect { page: u64, pages: u64, prot: u64 },
    Touch { page: u64, pages: u64 },
    Peek { page: u64, pages: u64 },
    Madvise { page: u64, pages: u64, advice: u64 },
    Mlock { page: u64, pages: u64, onfault: bool },
    Munlock { page: u64, pages: u64 },
    Brk { delta_pages: i64 },
    Fork,
}

fn prot_s() -> impl Strategy<Value = u64> {
    prop_oneof![Just(prot::NONE), Just(prot::READ), Just(prot::READ | prot::WRITE), Just(prot::READ | prot::EXEC)]
}

fn op() -> impl Strategy<Value = Op> {
    let page = 0..PAGES;
    let pages = 1..8u64;
    prop_oneof![
        4 => (page.clone(), pages.clone(), prot_s(), any::<bool>()).prop_map(|(page, pages, prot, noreserve)| Op::MmapFixed { page, pages, prot, noreserve }),
        1 => (pages.clone(), prot_s()).prop_map(|(pages, prot)| Op::MmapHint { pages, prot }),
        2 => (page.clone(), pages.clone(), 0..8u64, any::<bool>()).prop_map(|(page, pages, off, shared)| Op::MmapFile { page, pages, off, shared }),
        3 => (page.clone(), pages.clone()).prop_map(|(page, pages)| Op::Munmap { page, pages }),
        3 => (page.clone(), pages.clone(), prot_s()).prop_map(|(page, pages, prot)| Op::Mprotect { page, pages, prot }),
        2 => (page.clone(), pages.clone()).prop_map(|(page, pages)| Op::Touch { page, pages }),
        1 => (page.clone(), pages.clone()).prop_map(|(page, pages)| Op::Peek { page, pages }),
        2 => (page.clone(), pages.clone(), prop::sample::select(vec![0u64, 1, 2, 4, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 102, 103]))
            .prop_map(|(page, pages, advice)| Op::Madvise { page, pages, advice }),
        1 => (page.clone(), pages.clone(), any::<bool>()).prop_map(|(page, pages, onfault)| Op::Mlock { page, pages, onfault }),
        1 => (page, pages).prop_map(|(page, pages)| Op::Munlock { page, pages }),
        1 => (-4i64..8).prop_map(|delta_pages| Op::Brk { delta_pages }),
        1 => Just(Op::Fork),
    ]
}

/// What is mapped at each arena page: its protection bits.
type Reference = BTreeMap<u64, u64>;

fn access(f: VmFlags) -> u64 {
    (f & VmFlags::ACCESS_FLAGS).bits()
}

fn check(mm: &AddressSpace, reference: &Reference) -> Result<(), TestCaseError> {
    mm.validate().map_err(TestCaseError::fail)?;
    for p in 0..PAGES {
        let addr = ARENA + p * PAGE;
        let got = mm.find_vma(addr).filter(|v| v.start() <= addr).map(|v| access(v.flags()));
        prop_assert_eq!(got, reference.get(&p).copied(), "page {} ({:#x})\n{}", p, addr, mm.maps());
    }
    Ok(())
}

fn apply(mm: &mut AddressSpace, reference: &mut Reference, guards: &mut bool, op: &Op) -> Result<(), TestCaseError> {
    match *op {
        Op::MmapFixed { page, pages, prot, noreserve } => {
            let mut flags = map::PRIVATE | map::ANONYMOUS | map::FIXED;
            if noreserve {
                flags |= map::NORESERVE;
            }
            let r = mm.mmap(ARENA + page * PAGE, pages * PAGE, prot, flags, -1, 0);
            prop_assert_eq!(r, Ok(ARENA + page * PAGE));
            for p in page..page + pages {
                reference.insert(p, prot);
            }
        }
        Op::MmapHint { pages, prot } => {
            let r = mm.mmap(0, pages * PAGE, prot, map::PRIVATE | map::ANONYMOUS, -1, 0);
            prop_assert!(r.is_ok_and(|a| a + pages * PAGE <= 0x7fff_f7ff_f000), "{:?}", r);
        }
        Op::MmapFile { page, pages, off, shared } => {
            let kind = if shared { map::SHARED } else { map::PRIVATE };
            let r = mm.mmap(ARENA + page * PAGE, pages * PAGE, prot::READ, kind | map::FIXED, 3, off * PAGE);
            prop_assert_eq!(r, Ok(ARENA + page * PAGE));
            for p in page..page + pages {
                reference.insert(p, prot::READ);
            }
        }
        Op::Munmap { page, pages } => {
            prop_assert_eq!(mm.munmap(ARENA + page * PAGE, pages * PAGE), Ok(0));
            for p in page..page + pages {
                reference.remove(&p);
            }
        }
        Op::Mprotect { page, pages, prot } => {
            let r = mm.mprotect(ARENA + page * PAGE, pages * PAGE, prot);
            // Applied page by page up to the first hole (or a VMA that refuses), as Linux does.
            let first_hole = (page..page + pages).find(|p| !reference.contains_key(p));
            let upto = match (r, first_hole) {
                (Ok(_), None) => page + pages,
                (Err(Errno::ENOMEM), Some(h)) => h,
                (Err(Errno::EACCES), _) => {
                    // Only write access to a read-only shared file mapping is refused.
                    prop_assert!(prot & prot::WRITE != 0);
                    let refused = (page..page + pages).find(|p| {
                        let v = mm.find_vma(ARENA + p * PAGE).expect("mapped");
                        !v.flags().contains(VmFlags::MAYWRITE)
                    });
                    prop_assert!(refused.is_some());
                    refused.unwrap_or(page)
                }
                (r, h) => {
                    return Err(TestCaseError::fail(format!("mprotect gave {r:?} with hole {h:?}")));
                }
            };
            for p in page..upto {
                reference.insert(p, prot);
            }
            // Pages of a refused VMA before the refusal keep what was applied; a refusal
            // happens at a VMA boundary, so the pages from `upto` on are unchanged.
        }
        Op::Madvise { page, pages, advice } => {
            // Advice changes flags and pages, never what is mapped with which protection.
            let r = mm.madvise(ARENA + page * PAGE, pages * PAGE, advice);
            *guards |= advice == 102;
            let hole = (page..page + pages).any(|p| !reference.contains_key(&p));
            prop_assert!(
                r.is_ok() || hole || matches!(r, Err(Errno::EINVAL | Errno::EFAULT | Errno::EAGAIN)),
                "{:?}",
                r
            );
        }
        Op::Mlock { page, pages, onfault } => {
            let r = if onfault {
                mm.mlock2(ARENA + page * PAGE, pages * PAGE, 1)
            } else {
                mm.mlock(ARENA + page * PAGE, pages * PAGE)
            };
            let hole = (page..page + pages).any(|p| !reference.contains_key(&p));
            prop_assert!(r.is_ok() || hole || r == Err(Errno::ENOMEM), "{:?}", r);
        }
        Op::Munlock { page, pages } => {
            let _ = mm.munlock(ARENA + page * PAGE, pages * PAGE);
        }
        Op::Brk { delta_pages } => {
            let cur = mm.current_brk();
            let _ = mm.brk(cur.wrapping_add_signed(delta_pages * PAGE as i64));
        }
        Op::Fork => {
            let child = mm.fork().map_err(|e| TestCaseError::fail(format!("fork: {e}")))?;
            child.validate().map_err(TestCaseError::fail)?;
            prop_assert_eq!(child.vmas().count(), mm.vmas().filter(|v| !v.flags().contains(VmFlags::DONTCOPY)).count());
        }
        Op::Touch { page, pages } | Op::Peek { page, pages } => {
            let write = matches!(op, Op::Touch { .. });
            let r = if write {
                mm.touch(ARENA + page * PAGE, pages * PAGE)
            } else {
                mm.peek(ARENA + page * PAGE, pages * PAGE)
            };
            let ok_page = |p: &u64| match reference.get(p) {
                None => false,
                Some(pr) if write => pr & prot::WRITE != 0,
                Some(pr) => pr & (prot::READ | prot::WRITE) != 0 || *pr == prot::READ | prot::EXEC,
            };
            let all_ok = (page..page + pages).all(|p| ok_page(&p) && !past_eof(mm, p));
            // Guard pages (MADV_GUARD_INSTALL) fault although mapped: only a failure can differ.
            prop_assert!(r.is_ok() == all_ok || r.is_err() && *guards, "{:?}", r);
        }
    }
    Ok(())
}

/// The test file is 16 pages long: file pages beyond it raise SIGBUS.
fn past_eof(mm: &AddressSpace, p: u64) -> bool {
    let addr = ARENA + p * PAGE;
    mm.find_vma(addr)
        .is_some_and(|v| v.file().is_some() && !v.is_anonymous() && v.pgoff() + (addr - v.start()) / PAGE >= 16)
}

fn fresh() -> AddressSpace {
    let mut mm = AddressSpace::new();
    // A program break far from the arena, so brk moves never touch it.
    mm.set_brk(0x4000_0000);
    assert_eq!(mm.openat(-100, b"file", 0o102, 0o600), Ok(3));
    assert_eq!(mm.ftruncate(3, 16 * PAGE), Ok(0));
    mm
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn invariants_hold_after_every_call(ops in prop::collection::vec(op(), 1..60)) {
        let mut mm = fresh();
        let mut reference = Reference::new();
        let mut guards = false;
        for op in &ops {
            apply(&mut mm, &mut reference, &mut guards, op)?;
            check(&mm, &reference)?;
        }
    }
}

/// Any argument values at all: every call returns (an errno, at worst) and the invariants hold.
#[derive(Debug, Clone)]
enum Wild {
    Mmap(u64, u64, u64, u64, i64, u64),
    Munmap(u64, u64),
    Mprotect(u64, u64, u64),
    Mremap(u64, u64, u64, u64, u64),
    Touch(u64, u64),
    Peek(u64, u64),
    Ftruncate(i64, u64),
    PkeyMprotect(u64, u64, u64, i64),
    Madvise(u64, u64, u64),
    Mlock2(u64, u64, u64),
    Munlock(u64, u64),
    Mseal(u64, u64, u64),
    Brk(u64),
    Mlockall(u64),
}

fn wild_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        (0u64..64).prop_map(|p| ARENA + p * PAGE),
        (0u64..64).prop_map(|p| p * PAGE),
        Just(u64::MAX),
        Just(u64::MAX - PAGE + 1),
        Just(0x7fff_ffff_f000),
        (0u64..8).prop_map(|k| 1 << (40 + k)),
    ]
}

fn wild() -> impl Strategy<Value = Wild> {
    let u = wild_u64;
    let fd = prop_oneof![Just(-1i64), Just(3), any::<i64>()];
    prop_oneof![
        (u(), u(), any::<u64>(), any::<u64>(), fd.clone(), u())
            .prop_map(|(a, b, c, d, e, f)| Wild::Mmap(a, b, c, d, e, f)),
        (u(), u()).prop_map(|(a, b)| Wild::Munmap(a, b)),
        (u(), u(), any::<u64>()).prop_map(|(a, b, c)| Wild::Mprotect(a, b, c)),
        (u(), u(), u(), 0u64..16, u()).prop_map(|(a, b, c, d, e)| Wild::Mremap(a, b, c, d, e)),
        (u(), 0u64..(64 * PAGE)).prop_map(|(a, b)| Wild::Touch(a, b)),
        (u(), 0u64..(64 * PAGE)).prop_map(|(a, b)| Wild::Peek(a, b)),
        (fd.clone(), u()).prop_map(|(a, b)| Wild::Ftruncate(a, b)),
        (u(), u(), any::<u64>(), -2i64..18).prop_map(|(a, b, c, d)| Wild::PkeyMprotect(a, b, c, d)),
        (u(), u(), prop_oneof![0u64..30, 100u64..104, any::<u64>()]).prop_map(|(a, b, c)| Wild::Madvise(a, b, c)),
        (u(), 0u64..(64 * PAGE), any::<u64>()).prop_map(|(a, b, c)| Wild::Mlock2(a, b, c)),
        (u(), u()).prop_map(|(a, b)| Wild::Munlock(a, b)),
        (u(), u(), prop_oneof![Just(0u64), any::<u64>()]).prop_map(|(a, b, c)| Wild::Mseal(a, b, c)),
        u().prop_map(Wild::Brk),
        prop_oneof![Just(2u64), Just(6), Just(4), any::<u64>()].prop_map(Wild::Mlockall),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn any_arguments_return_an_errno_or_a_result(calls in prop::collection::vec(wild(), 1..40)) {
        let mut mm = fresh();
        for c in &calls {
            // Populating mappings are bounded by the 24 GiB overcommit guess, so wild lengths
            // cannot ask the model to fault in terabytes.
            match *c {
                Wild::Mmap(a, l, p, f, fd, o) => { let _ = mm.mmap(a, l, p, f & !(map::POPULATE | map::LOCKED), fd, o); }
                Wild::Munmap(a, l) => { let _ = mm.munmap(a, l); }
                Wild::Mprotect(a, l, p) => { let _ = mm.mprotect(a, l, p); }
                Wild::Mremap(a, o, n, f, na) => { let _ = mm.mremap(a, o, n, f, na); }
                Wild::Touch(a, l) => { let _ = mm.touch(a, l); }
                Wild::Peek(a, l) => { let _ = mm.peek(a, l); }
                Wild::Ftruncate(fd, l) => { let _ = mm.ftruncate(fd, l); }
                Wild::PkeyMprotect(a, l, p, k) => { let _ = mm.pkey_mprotect(a, l, p, k); }
                // MADV_POPULATE_*, WILLNEED and GUARD_INSTALL work page by page: keep them short.
                Wild::Madvise(a, l, adv) if matches!(adv, 3 | 22 | 23 | 102) => { let _ = mm.madvise(a, l.min(64 * PAGE), adv); }
                Wild::Madvise(a, l, adv) => { let _ = mm.madvise(a, l, adv); }
                Wild::Mlock2(a, l, f) => { let _ = mm.mlock2(a, l, f); }
                Wild::Munlock(a, l) => { let _ = mm.munlock(a, l); }
                Wild::Mseal(a, l, f) => { let _ = mm.mseal(a, l, f); }
                Wild::Brk(b) => { let _ = mm.brk(b); }
                // MCL_FUTURE only: MCL_CURRENT would populate every wild mapping.
                Wild::Mlockall(f) => { let _ = mm.mlockall(f & !1); let _ = mm.munlockall(); }
            }
            mm.validate().map_err(TestCaseError::fail)?;
        }
    }
}
