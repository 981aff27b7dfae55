//! Page state kept as runs: work over huge ranges of anonymous memory costs what a page costs
//! (a handful of runs, checked through the page budget), its counters are what Linux's rules
//! give page by page, and a fault over a range leaves the same state as faulting its pages
//! one at a time through the page-by-page path (`handle_fault`).

use vmaspace::AddressSpace;
use vmaspace::fault::Access;
use vmaspace::flags::{advice, map, prot};

const PAGE: u64 = 0x1000;
const TIB: u64 = 1 << 40;
const BASE: u64 = 0x1000_0000_0000;

/// The value of a `Field:   N kB` line of the smaps entry starting at `start`, in bytes.
fn field(smaps: &str, start: u64, name: &str) -> u64 {
    let head = format!("{start:x}-");
    let entry = smaps.split_inclusive('\n').skip_while(|l| !l.starts_with(&head)).skip(1);
    for l in entry {
        if let Some(rest) = l.strip_prefix(name) {
            let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().expect("a number");
            return kb << 10;
        }
        if l.starts_with("VmFlags") {
            break;
        }
    }
    panic!("no {name} for the VMA at {start:#x} in\n{smaps}");
}

fn runs(mm: &AddressSpace) -> u64 {
    mm.vfs().page_budget().entries()
}

#[test]
fn a_64_tib_touch_fork_lock_and_guard_are_a_few_runs_each() {
    let mut mm = AddressSpace::new();
    let len = 64 * TIB;
    let rw = prot::READ | prot::WRITE;
    let flags = map::PRIVATE | map::ANONYMOUS | map::FIXED | map::NORESERVE;
    mm.mmap(BASE, len, rw, flags, -1, 0).unwrap();
    mm.touch(BASE, len).unwrap();
    mm.validate().unwrap();
    assert_eq!(runs(&mm), 1);
    let smaps = mm.smaps();
    assert_eq!(field(&smaps, BASE, "Rss:"), len);
    assert_eq!(field(&smaps, BASE, "Private_Dirty:"), len);
    assert_eq!(field(&smaps, BASE, "Anonymous:"), len);

    // A fork shares every frame: each side's Pss is half, all of it Shared_Dirty.
    let mut child = mm.fork().unwrap();
    child.validate().unwrap();
    assert_eq!(runs(&mm), 2);
    for side in [&mm, &child] {
        let s = side.smaps();
        assert_eq!(field(&s, BASE, "Shared_Dirty:"), len);
        assert_eq!(field(&s, BASE, "Private_Dirty:"), 0);
        assert_eq!(field(&s, BASE, "Pss:"), len / 2);
    }

    // The child writes 1 TiB in the middle: its own copies there; the parent's frames under
    // them are its alone again.
    let mid = BASE + 8 * TIB;
    child.touch(mid, TIB).unwrap();
    child.validate().unwrap();
    mm.validate().unwrap();
    let (cs, ps) = (child.smaps(), mm.smaps());
    assert_eq!(field(&cs, BASE, "Private_Dirty:"), TIB);
    assert_eq!(field(&cs, BASE, "Shared_Dirty:"), len - TIB);
    assert_eq!(field(&ps, BASE, "Private_Dirty:"), TIB);
    assert_eq!(field(&ps, BASE, "Pss:"), TIB + (len - TIB) / 2);

    // mlock of 2 TiB in the parent populates for writing: copy on write where the child
    // still shares, reuse where it does not (the 1 TiB the child copied).
    mm.mlock(mid - TIB, 2 * TIB).unwrap();
    mm.validate().unwrap();
    let ps = mm.smaps();
    assert_eq!(field(&ps, mid - TIB, "Private_Dirty:"), 2 * TIB);
    assert_eq!(field(&ps, mid - TIB, "Locked:"), 2 * TIB);
    assert_eq!(field(&child.smaps(), BASE, "Shared_Dirty:"), len - 2 * TIB);

    // Guard markers over 16 TiB zap the pages there and count nothing.
    let g = BASE + 32 * TIB;
    mm.madvise(g, 16 * TIB, advice::GUARD_INSTALL).unwrap();
    mm.validate().unwrap();
    assert_eq!(mm.touch(g + 5 * TIB, PAGE), Err(vmaspace::fault::FaultSignal::Sigsegv));
    // MADV_DONTNEED keeps the markers; munmap takes everything.
    mm.madvise(g - TIB, 18 * TIB, advice::DONTNEED).unwrap();
    assert_eq!(mm.touch(g, PAGE), Err(vmaspace::fault::FaultSignal::Sigsegv));
    mm.munmap(BASE, len).unwrap();
    mm.validate().unwrap();
    assert_eq!(mm.vfs().page_budget().pages(), child.vfs().page_budget().pages());
    // What is left is the child's: at most a few runs for all of the above.
    assert!(runs(&child) <= 4, "{} runs", runs(&child));
}

/// A small deterministic generator.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The same calls on two address spaces, except that one faults ranges in with `touch`/`peek`
/// (runs) and the other page by page with `handle_fault`: their smaps agree after every call.
#[test]
fn a_range_faults_as_its_pages_do_one_by_one() {
    const PAGES: u64 = 64;
    for seed in 1..=40u64 {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let mut runs_side = AddressSpace::new();
        let mut pages_side = AddressSpace::new();
        let rw = prot::READ | prot::WRITE;
        for mm in [&mut runs_side, &mut pages_side] {
            mm.mmap(BASE, PAGES * PAGE, rw, map::PRIVATE | map::ANONYMOUS | map::FIXED, -1, 0).unwrap();
        }
        let mut children: Vec<(AddressSpace, AddressSpace)> = Vec::new();
        for step in 0..60 {
            let (a, b) = (rng.below(PAGES), rng.below(PAGES));
            let (first, n) = (a.min(b), a.max(b) - a.min(b) + 1);
            let (start, len) = (BASE + first * PAGE, n * PAGE);
            let op = rng.below(9);
            let on_child = !children.is_empty() && rng.below(3) == 0;
            let pick = rng.below(children.len().max(1) as u64) as usize;
            let (x, y) = if on_child {
                let (c, d) = &mut children[pick];
                (c, d)
            } else {
                (&mut runs_side, &mut pages_side)
            };
            match op {
                0..=2 => {
                    let access = if op == 0 { Access::Read } else { Access::Write };
                    let r = if op == 0 { x.peek(start, len) } else { x.touch(start, len) };
                    let mut s = Ok(());
                    for p in (start..start + len).step_by(PAGE as usize) {
                        s = y.handle_fault(p, access);
                        if s.is_err() {
                            break;
                        }
                    }
                    assert_eq!(r, s, "seed {seed} step {step}");
                }
                3 => {
                    let (c1, c2) = (x.fork().unwrap(), y.fork().unwrap());
                    children.push((c1, c2));
                }
                4 => {
                    let p = [prot::READ, rw, prot::NONE][rng.below(3) as usize];
                    assert_eq!(x.mprotect(start, len, p), y.mprotect(start, len, p));
                }
                5 => {
                    let adv = [advice::GUARD_INSTALL, advice::GUARD_REMOVE, advice::DONTNEED, advice::FREE]
                        [rng.below(4) as usize];
                    assert_eq!(x.madvise(start, len, adv), y.madvise(start, len, adv));
                }
                6 => assert_eq!(x.mlock(start, len), y.mlock(start, len)),
                7 => assert_eq!(x.munlock(start, len), y.munlock(start, len)),
                _ => {
                    let adv = advice::POPULATE_WRITE;
                    assert_eq!(x.madvise(start, len, adv), y.madvise(start, len, adv));
                }
            }
            for (x, y) in std::iter::once((&runs_side, &pages_side)).chain(children.iter().map(|(c, d)| (c, d))) {
                x.validate().unwrap();
                y.validate().unwrap();
                assert_eq!(x.smaps(), y.smaps(), "seed {seed} step {step} op {op}");
            }
        }
    }
}
