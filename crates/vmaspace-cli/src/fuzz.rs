//! `vmaspace fuzz`: random traces over every call the model implements, run on the model and on
//! the live kernel and compared after every call; each divergence is shrunk to a minimal trace
//! (delta debugging) and written out.

use crate::check::{Verdict, check_one};
use crate::exec::{Model, ModelOptions, apply};
use crate::rng::Rng;
use crate::run::Steps;
use crate::scenario::Scenario;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use vmaspace::AddressSpace;
use vmaspace::flags::{map, mfd, prot, seal};
use vmaspace_trace::{Call, HugePagePools, Line, MountFs, MountSpec, Scope, Setup, Trace};

/// Options of one fuzz run.
#[derive(Debug, Clone)]
pub struct FuzzArgs {
    pub seed: u64,
    pub cases: usize,
    pub ops: usize,
    pub jobs: usize,
    pub out: PathBuf,
    /// Also write every generated case to `out` (for inspection), not only divergent ones.
    pub keep: bool,
    /// `--shard I/N`: only the cases whose number is I-1 modulo N (1 <= I <= N).
    pub shard: (usize, usize),
    /// Text, or JSON objects on stdout (each finding, then the summary).
    pub format: crate::run::Format,
}

const PAGE: u64 = 0x1000;
const ARENA: u64 = 0x1000_0000_0000;
const ARENA_PAGES: u64 = 96;
/// Longest range a populating or faulting call may cover (keeps the kernel side cheap).
const MAX_TOUCH: u64 = 64 * PAGE;
/// Most memory a generated trace keeps locked (and so faulted in).
const MAX_LOCKED: u64 = 4096 * PAGE;

/// Generates one trace, consulting a model of the process as it goes so that ranges fall on,
/// next to and across the VMAs the trace has made.
struct Gen {
    rng: Rng,
    /// The process the next line runs in.
    mm: AddressSpace,
    pid: Option<u32>,
    /// The other processes (forked children, or the first process while a child runs).
    others: Vec<(Option<u32>, AddressSpace)>,
    forks: u32,
    /// The executor's own mappings: no call may change or write them.
    protected: Vec<(u64, u64)>,
    /// The huge page pools of the case (`# hugepages:`), when it has any.
    hugepages: Option<HugePagePools>,
    /// File systems mounted below the working directory for the case (`# mount:`).
    mounts: Vec<MountSpec>,
}

impl Gen {
    fn new(seed: u64, initial_maps: &str) -> Gen {
        let mut rng = Rng::new(seed);
        // A quarter of the cases get a few 2 MiB pages (they run one at a time: the pools are
        // global); the others run with the pools empty, as the machine has them.
        let hugepages = rng.chance(25).then_some(HugePagePools { pages_2m: 4, pages_1g: 0 });
        // Some cases also have an overlay and a hugetlbfs mount to create files in.
        let mut mounts = Vec::new();
        for (dir, fs, pct) in [("o", MountFs::Overlay, 15), ("h", MountFs::Hugetlbfs, 10)] {
            if rng.chance(pct) {
                mounts.push(MountSpec { dir: dir.into(), fs });
            }
        }
        let model_mounts = mounts
            .iter()
            .map(|m| crate::exec::model_mount(&MountSpec { dir: format!("/fuzz/{}", m.dir), fs: m.fs }))
            .collect();
        let model = Model::new(&ModelOptions {
            cwd: "/fuzz".into(),
            initial_maps: Some(initial_maps.into()),
            hugepages,
            mounts: model_mounts,
            ..Default::default()
        })
        .expect("the executor's maps seed the model");
        let mm = model.procs.into_values().next().expect("one process");
        let protected = mm.vmas().map(|v| (v.start(), v.end())).collect();
        Gen { rng, mm, pid: None, others: Vec::new(), forks: 0, protected, hugepages, mounts }
    }

    fn is_protected(&self, start: u64, len: u64) -> bool {
        let end = start.saturating_add(len.max(1));
        self.protected.iter().any(|&(s, e)| start < e && end > s)
    }

    /// An address for a hint, a fixed mapping or a range: mostly near where the trace works (an
    /// edge of one of its VMAs, ± a page, or a page of the arena), and from the whole address
    /// range too: inside any gap, at the edges of every mapping (the executor's, the stack, the
    /// vDSO), in the lowest 64 KiB, and near the top of the address space and of the 47-bit
    /// window. (Calls that would change the executor's own mappings are refused by their
    /// generators: `is_protected`.)
    fn address(&mut self) -> u64 {
        let own_edges: Vec<u64> = self
            .mm
            .vmas()
            .filter(|v| !self.protected.contains(&(v.start(), v.end())))
            .flat_map(|v| [v.start(), v.end()])
            .collect();
        let all_edges: Vec<u64> = self.mm.vmas().flat_map(|v| [v.start(), v.end()]).collect();
        let base = match self.rng.weighted(&[52, 18, 10, 8, 5, 7]) {
            0 if !own_edges.is_empty() => self.near(&own_edges),
            2 => self.in_some_gap(),
            3 if !all_edges.is_empty() => self.near(&all_edges),
            4 => self.rng.below(16) * PAGE,
            5 => {
                let top = self.mm.settings().task_size;
                let window = (1u64 << 47) - PAGE;
                let from = self.rng.pick(&[top, window, 1 << 47]);
                from.wrapping_sub(self.rng.below(16) * PAGE)
            }
            _ => ARENA + self.rng.below(ARENA_PAGES) * PAGE,
        };
        if self.rng.chance(4) { base + 1 + self.rng.below(PAGE - 1) } else { base }
    }

    /// One of `edges`, or a page beside it.
    fn near(&mut self, edges: &[u64]) -> u64 {
        let e = self.rng.pick(edges);
        match self.rng.below(4) {
            0 => e.wrapping_sub(PAGE),
            1 => e + PAGE,
            _ => e,
        }
    }

    /// A page inside one of the free gaps of the address space, any of them.
    fn in_some_gap(&mut self) -> u64 {
        let top = self.mm.settings().task_size;
        let mut gaps = Vec::new();
        let mut prev_end = 0;
        for v in self.mm.vmas() {
            if v.start() > prev_end {
                gaps.push((prev_end, v.start()));
            }
            prev_end = prev_end.max(v.end());
        }
        if top > prev_end {
            gaps.push((prev_end, top));
        }
        if gaps.is_empty() {
            return ARENA;
        }
        let (s, e) = self.rng.pick(&gaps);
        s + self.rng.below((e - s) / PAGE) * PAGE
    }

    fn length(&mut self) -> u64 {
        match self.rng.weighted(&[50, 25, 5, 3, 6, 3, 8]) {
            0 => (1 + self.rng.below(4)) * PAGE,
            1 => (5 + self.rng.below(12)) * PAGE,
            2 => (1 + self.rng.below(2)) * 0x20_0000,
            3 => 0,
            4 => 1 + self.rng.below(3 * PAGE),
            5 => self.rng.pick(&[1 << 40, 1 << 47, u64::MAX - PAGE + 2, u64::MAX]),
            _ => (1 + self.rng.below(48)) * PAGE,
        }
    }

    fn prot(&mut self) -> u64 {
        let (r, w, x) = (prot::READ, prot::WRITE, prot::EXEC);
        let choices = [r | w, r, prot::NONE, r | x, x, w, r | w | x, r | w | 0x10, r | prot::GROWSDOWN];
        choices[self.rng.weighted(&[40, 20, 10, 8, 4, 4, 4, 2, 2])]
    }

    fn open_fds(&self) -> Vec<i64> {
        (3..32).filter(|fd| self.mm.file(*fd).is_some()).map(i64::from).collect()
    }

    fn fd(&mut self) -> i64 {
        let fds = self.open_fds();
        if fds.is_empty() || self.rng.chance(5) { self.rng.pick(&[-1, 0, 2, 29, 1 << 33]) } else { self.rng.pick(&fds) }
    }

    /// A range inside one of the trace's VMAs, or one that runs on into what follows it.
    fn range_in_vma(&mut self) -> Option<(u64, u64)> {
        let vmas: Vec<(u64, u64)> =
            self.mm.vmas().map(|v| (v.start(), v.end())).filter(|r| !self.protected.contains(r)).collect();
        if vmas.is_empty() {
            return None;
        }
        let (s, e) = self.rng.pick(&vmas);
        let pages = (e - s) / PAGE;
        let first = self.rng.below(pages);
        let len = if self.rng.chance(70) { 1 + self.rng.below(pages - first) } else { 1 + self.rng.below(pages + 4) };
        Some((s + first * PAGE, len * PAGE))
    }

    fn range_call(&mut self, make: impl Fn(u64, u64) -> Call, max: u64) -> Option<Call> {
        let inside = if self.rng.chance(45) { self.range_in_vma() } else { None };
        let (a, l) = inside.unwrap_or_else(|| (self.address(), self.length()));
        let l = l.min(max);
        (!self.is_protected(a & !(PAGE - 1), l.max(PAGE))).then(|| make(a, l))
    }

    fn mmap(&mut self) -> Option<Call> {
        let placement = self.rng.weighted(&[55, 8, 20, 17]);
        let addr = if placement == 3 { 0 } else { self.address() };
        let len = self.length();
        let anon = self.open_fds().is_empty() || self.rng.chance(55);
        let types = [map::PRIVATE, map::SHARED, map::SHARED_VALIDATE, map::DROPPABLE, 0, 0x5];
        let mut flags = types[self.rng.weighted(&[55, 30, 5, 4, 2, 2])];
        flags |= [map::FIXED, map::FIXED_NOREPLACE, 0, 0][placement];
        if anon {
            flags |= map::ANONYMOUS;
            if self.rng.chance(8) {
                flags |= map::HUGETLB
                    | self.rng.pick(&[0, 0, 21 << map::HUGE_SHIFT, 30 << map::HUGE_SHIFT, 28 << map::HUGE_SHIFT]);
            }
        }
        for (bit, pct) in [
            (map::NORESERVE, 10),
            (map::STACK, 4),
            (map::GROWSDOWN, 4),
            (map::SYNC, 3),
            (map::NONBLOCK, 2),
            (0x20_0000, 1),
        ] {
            if self.rng.chance(pct) {
                flags |= bit;
            }
        }
        if len <= MAX_TOUCH {
            for (bit, pct) in [(map::POPULATE, 8), (map::LOCKED, 4)] {
                if self.rng.chance(pct) {
                    flags |= bit;
                }
            }
        }
        if placement != 0 && self.rng.chance(3) {
            flags |= map::_32BIT;
        }
        // A huge page mapping covers whole huge pages (1 GiB from 0 takes the executor with it).
        let unit = if flags & map::HUGETLB != 0 { 1u64 << 30 } else { PAGE };
        if flags & map::FIXED != 0 && self.is_protected(addr & !(unit - 1), len.max(1).saturating_add(unit)) {
            return None;
        }
        let offset = match self.rng.weighted(&[50, 40, 5, 5]) {
            0 => 0,
            1 => self.rng.below(16) * PAGE,
            2 => self.rng.below(PAGE) | 1,
            _ => self.rng.pick(&[0x7fff_ffff_f000, !(PAGE - 1)]),
        };
        let fd = if anon { -1 } else { self.fd() };
        Some(Call::Mmap { addr, len, prot: self.prot(), flags, fd, offset })
    }

    /// `fN` in the working directory or in one of the case's mounts.
    fn file_name(&mut self) -> Vec<u8> {
        let n = self.rng.below(3);
        let dirs = self.mounts.len() as u64;
        match self.rng.below(dirs + 2) {
            d if d < dirs => format!("{}/f{n}", self.mounts[d as usize].dir).into_bytes(),
            _ => format!("f{n}").into_bytes(),
        }
    }

    fn file_call(&mut self) -> Call {
        let fds = self.open_fds();
        if fds.len() > 10 {
            return Call::Close { fd: self.fd() };
        }
        match self.rng.weighted(&[25, 8, 6, 12, 4, 8, 4, 5, 5, 4]) {
            0 => {
                let flags = self.rng.pick(&[0o102, 0o102, 0, 1, 0o1102, 0o302]);
                Call::Openat { dirfd: -100, path: self.file_name(), flags, mode: 0o600 }
            }
            1 => Call::Openat {
                dirfd: -100,
                path: self.rng.pick(&[&b"/dev/zero"[..], b"/dev/null"]).to_vec(),
                flags: self.rng.pick(&[0, 2]),
                mode: 0,
            },
            2 => Call::Close { fd: self.fd() },
            3 => {
                let len = if self.rng.chance(80) { self.rng.below(24) * PAGE } else { self.rng.below(8 * PAGE) };
                Call::Ftruncate { fd: self.fd(), len }
            }
            4 => Call::Dup { fd: self.fd() },
            5 => Call::MemfdCreate {
                name: b"m".to_vec(),
                flags: self.rng.pick(&[
                    0,
                    mfd::ALLOW_SEALING,
                    mfd::HUGETLB | mfd::ALLOW_SEALING,
                    mfd::NOEXEC_SEAL,
                    mfd::CLOEXEC,
                    mfd::EXEC | mfd::ALLOW_SEALING,
                    0x40,
                ]),
            },
            6 => Call::MemfdSecret { flags: self.rng.pick(&[0, 0, 1]) },
            7 => {
                let seals = self.rng.pick(&[
                    seal::WRITE,
                    seal::FUTURE_WRITE,
                    seal::SEAL,
                    seal::SHRINK | seal::GROW,
                    seal::EXEC,
                    0x40,
                ]);
                Call::FcntlAddSeals { fd: self.fd(), seals }
            }
            8 => Call::FcntlGetSeals { fd: self.fd() },
            _ => Call::Unlink { path: self.file_name() },
        }
    }

    fn mremap(&mut self) -> Option<Call> {
        let (old_addr, old_len) =
            if self.rng.chance(70) { self.range_in_vma()? } else { (self.address(), self.length()) };
        let new_len = match self.rng.weighted(&[30, 25, 25, 10, 10]) {
            0 => old_len,
            1 => old_len.saturating_sub((1 + self.rng.below(4)) * PAGE).max(PAGE),
            2 => old_len.wrapping_add((1 + self.rng.below(8)) * PAGE),
            3 => 0,
            _ => self.length(),
        };
        let flags = [0, 1, 3, 5, 7, 2, 4, 8][self.rng.weighted(&[20, 30, 25, 10, 3, 3, 3, 2])];
        let new_addr = if flags & 6 != 0 || self.rng.chance(5) { self.address() } else { 0 };
        if self.is_protected(old_addr & !(PAGE - 1), old_len.max(new_len).max(PAGE))
            || (flags & 6 != 0 && self.is_protected(new_addr & !(PAGE - 1), new_len.max(PAGE)))
            || new_len > MAX_TOUCH && self.mm.counters().locked_vm > 0
        {
            return None;
        }
        Some(Call::Mremap { old_addr, old_len, new_len, flags, new_addr, explicit_new_addr: true })
    }

    /// Whether new mappings are locked (and so populated) now.
    fn locking_future(&self) -> bool {
        self.mm.def_flags().contains(vmaspace::VmFlags::LOCKED)
    }

    /// Total bytes the trace has mapped (bounds what mlockall may populate).
    fn mapped_bytes(&self) -> u64 {
        self.mm.vmas().filter(|v| !self.protected.contains(&(v.start(), v.end()))).map(|v| v.end() - v.start()).sum()
    }

    /// Every advice but MADV_COLLAPSE, which the model does not do (it answers EINVAL; the
    /// kernel collapses THP-eligible ranges): an explicit, documented exclusion.
    fn madvise(&mut self) -> Option<Call> {
        use vmaspace::advice::*;
        let all = [
            NORMAL,
            RANDOM,
            SEQUENTIAL,
            WILLNEED,
            DONTNEED,
            FREE,
            REMOVE,
            DONTFORK,
            DOFORK,
            MERGEABLE,
            UNMERGEABLE,
            HUGEPAGE,
            NOHUGEPAGE,
            DONTDUMP,
            DODUMP,
            WIPEONFORK,
            KEEPONFORK,
            COLD,
            PAGEOUT,
            POPULATE_READ,
            POPULATE_WRITE,
            DONTNEED_LOCKED,
            GUARD_INSTALL,
            GUARD_REMOVE,
            100,
            101,
            5,
            26,
            0xffff_ffff,
        ];
        let advice = self.rng.pick(&all);
        // Populating and guard-installing advice works page by page on both sides (the kernel
        // builds page tables for guard markers): keep those ranges small.
        let per_page = matches!(advice, POPULATE_READ | POPULATE_WRITE | WILLNEED | GUARD_INSTALL);
        let max = if per_page { MAX_TOUCH } else { u64::MAX };
        self.range_call(|addr, len| Call::Madvise { addr, len, advice }, max)
    }

    fn lock_call(&mut self) -> Option<Call> {
        match self.rng.weighted(&[40, 20, 25, 6, 9]) {
            0 => self.range_call(|addr, len| Call::Mlock { addr, len }, MAX_TOUCH),
            1 => {
                let flags = self.rng.pick(&[0, 1, 1, 2, 0x1_0000_0001]);
                self.range_call(|addr, len| Call::Mlock2 { addr, len, flags }, MAX_TOUCH)
            }
            2 => self.range_call(|addr, len| Call::Munlock { addr, len }, u64::MAX),
            3 => {
                let flags = self.rng.pick(&[1, 2, 3, 5, 6, 7, 4, 0, 8]);
                // MCL_CURRENT populates everything mapped: only while that is small.
                (flags & 1 == 0 || self.mapped_bytes() <= 256 * MAX_TOUCH).then_some(Call::Mlockall { flags })
            }
            _ => Some(Call::Munlockall),
        }
    }

    fn mseal(&mut self) -> Option<Call> {
        let flags = if self.rng.chance(5) { 1 } else { 0 };
        self.range_call(|addr, len| Call::Mseal { addr, len, flags }, u64::MAX)
    }

    fn brk(&mut self) -> Call {
        let cur = self.mm.current_brk();
        let addr = match self.rng.below(5) {
            0 => 0,
            1 => cur + (1 + self.rng.below(8)) * PAGE,
            2 => cur.saturating_sub((1 + self.rng.below(4)) * PAGE),
            3 => cur + self.rng.below(3 * PAGE),
            _ => cur,
        };
        Call::Brk { addr }
    }

    fn pkey_call(&mut self) -> Option<Call> {
        Some(match self.rng.below(3) {
            0 => Call::PkeyAlloc { flags: self.rng.pick(&[0, 0, 0, 1]), access_rights: self.rng.below(5) },
            // Never key 0: freeing it lets PROT_EXEC's execute-only key become key 0, which
            // denies the executor access to all its own memory (the kernel kills it).
            1 => Call::PkeyFree { pkey: 1 + self.rng.below(4) as i64 },
            _ => {
                let pkey = self.rng.below(6) as i64 - 1;
                let p = self.prot();
                return self.range_call(|addr, len| Call::PkeyMprotect { addr, len, prot: p, pkey }, u64::MAX);
            }
        })
    }

    fn call(&mut self) -> Call {
        loop {
            let c = match self.rng.weighted(&[30, 15, 15, 10, 6, 15, 3, 12, 10, 5, 2, 3, 1]) {
                0 => self.mmap(),
                1 => self.range_call(|addr, len| Call::Munmap { addr, len }, u64::MAX),
                2 => {
                    let p = self.prot();
                    self.range_call(|addr, len| Call::Mprotect { addr, len, prot: p }, u64::MAX)
                }
                3 => self.range_call(|addr, len| Call::Touch { addr, len }, MAX_TOUCH),
                4 => self.range_call(|addr, len| Call::Peek { addr, len }, MAX_TOUCH),
                5 => Some(self.file_call()),
                6 => self.pkey_call(),
                7 => self.mremap(),
                8 => self.madvise(),
                9 => self.lock_call(),
                10 => self.mseal(),
                11 => Some(self.brk()),
                _ => Some(Call::PrctlSetVmaAnonName { addr: self.address(), len: PAGE, name: Some(b"x".to_vec()) }),
            };
            // mprotect of a locked VMA to writable populates it: keep that small.
            if let Some(c) = c.filter(|c| !self.too_costly(c)) {
                // Whatever locks (and so faults in) more than a little memory is taken back:
                // the kernel side would populate it page by page.
                let before = self.mm.clone();
                let _ = apply(&mut self.mm, &c);
                if self.populated_locked_bytes() > MAX_LOCKED {
                    self.mm = before;
                    continue;
                }
                return c;
            }
        }
    }

    /// Bytes of VMAs that are locked and populated (VM_LOCKED without VM_LOCKONFAULT).
    fn populated_locked_bytes(&self) -> u64 {
        use vmaspace::VmFlags;
        self.mm
            .vmas()
            .filter(|v| v.flags().contains(VmFlags::LOCKED) && !v.flags().contains(VmFlags::LOCKONFAULT))
            .map(|v| v.end() - v.start())
            .sum()
    }

    fn too_costly(&self, c: &Call) -> bool {
        let locked_future = self.locking_future();
        match c {
            Call::Mmap { len, .. } if locked_future => *len > MAX_TOUCH,
            Call::Mremap { new_len, .. } if locked_future => *new_len > MAX_TOUCH,
            Call::Brk { addr } if locked_future => addr.saturating_sub(self.mm.current_brk()) > MAX_TOUCH,
            Call::Mprotect { len, .. } | Call::PkeyMprotect { len, .. } => {
                *len > MAX_TOUCH && self.mm.counters().locked_vm > 0
            }
            _ => false,
        }
    }

    /// Sometimes switches the process the next line runs in.
    fn switch_process(&mut self) {
        if !self.others.is_empty() && self.rng.chance(20) {
            let i = self.rng.below(self.others.len() as u64) as usize;
            let (pid, mm) = self.others.swap_remove(i);
            let old = std::mem::replace(&mut self.mm, mm);
            self.others.push((self.pid, old));
            self.pid = pid;
        }
    }

    /// Sometimes forks the current process or ends it.
    fn process_step(&mut self) -> Option<Call> {
        if self.forks < 4 && self.rng.chance(2) {
            self.forks += 1;
            let child = self.mm.fork().ok()?;
            self.others.push((Some(1000 + self.forks), child));
            return Some(Call::Fork { clone_flags: None });
        }
        if self.pid.is_some() && self.rng.chance(1) {
            return Some(Call::ExitGroup { status: 0 });
        }
        None
    }

    fn trace(mut self, ops: usize) -> Trace {
        let mut lines = Vec::with_capacity(ops);
        for i in 0..ops {
            self.switch_process();
            let pid = self.pid;
            let call = match self.process_step() {
                Some(c @ Call::ExitGroup { .. }) => {
                    let first = self.others.iter().position(|(p, _)| p.is_none()).expect("the first process lives");
                    let (p, mm) = self.others.swap_remove(first);
                    self.mm = mm;
                    self.pid = p;
                    c
                }
                Some(c) => c,
                None => self.call(),
            };
            lines.push(Line { lineno: i + 3, pid, call, result: None });
        }
        // Every live process's smaps at the end: page counters, with pages shared by forks.
        let live = std::iter::once(self.pid).chain(self.others.iter().map(|(p, _)| *p));
        for pid in live {
            lines.push(Line { lineno: lines.len() + 3, pid, call: Call::Smaps, result: None });
        }
        let setup = Setup { hugepages: self.hugepages, mounts: self.mounts.clone(), ..Setup::default() };
        Trace { scope: Some(Scope::WholeSpace), header: vec!["# whole-space".into()], setup, lines }
    }
}

fn case_seed(seed: u64, case: usize) -> u64 {
    Rng::new(seed ^ (case as u64).wrapping_mul(0x2545_f491_4f6c_dd1d)).next_u64()
}

/// Runs a trace (as a list of lines) on both sides.
fn run_check(lines: &[Line], setup: &Setup) -> Result<Verdict, String> {
    let mut trace =
        Trace { scope: Some(Scope::WholeSpace), header: vec![], setup: setup.clone(), lines: lines.to_vec() };
    for (i, l) in trace.lines.iter_mut().enumerate() {
        l.lineno = i + 2;
    }
    check_one(&Scenario::from_trace("fuzz", trace), Steps::EveryCall)
}

/// Whether a trace diverges (a run that fails is not a divergence of the model).
fn diverges(lines: &[Line], setup: &Setup) -> Option<String> {
    match run_check(lines, setup) {
        Ok(Verdict::Diverge(msg)) => Some(msg),
        _ => None,
    }
}

/// Delta debugging (ddmin): a smallest subsequence of `lines` that still diverges.
fn shrink(mut lines: Vec<Line>, setup: &Setup) -> Vec<Line> {
    let mut n = 2usize;
    while lines.len() >= 2 {
        let chunk = lines.len().div_ceil(n);
        let mut reduced = false;
        let mut i = 0;
        while i < n {
            let (lo, hi) = (i * chunk, ((i + 1) * chunk).min(lines.len()));
            i += 1;
            if lo >= hi {
                continue;
            }
            let complement: Vec<Line> = lines[..lo].iter().chain(&lines[hi..]).cloned().collect();
            if diverges(&complement, setup).is_some() {
                lines = complement;
                n = (n - 1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if n >= lines.len() {
                break;
            }
            n = (2 * n).min(lines.len());
        }
    }
    lines
}

/// One divergence found.
struct Finding {
    case: usize,
    setup: Setup,
    message: String,
    minimal: Vec<Line>,
    original_len: usize,
    /// Whether the shrunk trace diverged again when run once more: a divergence the kernel
    /// does not repeat came from its own timing (write-back, reclaim), not from the model.
    reproduced: bool,
}

/// The `# hugepages:` and `# mount:` header lines of a case.
fn setup_header(setup: &Setup) -> String {
    let mut out =
        setup.hugepages.map_or(String::new(), |h| format!("# hugepages: 2M={} 1G={}\n", h.pages_2m, h.pages_1g));
    for m in &setup.mounts {
        out.push_str(&format!("# mount: {m}\n"));
    }
    out
}

fn write_finding(out: &Path, seed: u64, f: &Finding, initial: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(out)?;
    let path = out.join(format!("fuzz-{seed}-{}.trace", f.case));
    // The executor's maps before the first call, so that `vmaspace run` can run it as it is.
    std::fs::write(path.with_extension("initial-maps"), initial)?;
    let mut text = format!(
        "# whole-space\n# vmaspace fuzz --seed {seed}: case {}, shrunk from {} to {} calls{}.\n",
        f.case,
        f.original_len,
        f.minimal.len(),
        if f.reproduced { "" } else { "; it did not diverge again when run once more" }
    );
    for l in f.message.lines() {
        text.push_str(&format!("#   {l}\n"));
    }
    text.push_str(&setup_header(&f.setup));
    for l in &f.minimal {
        text.push_str(&vmaspace_trace::format_line(l));
        text.push('\n');
    }
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Writes a finding to `out` and says so on stderr (and, with `json`, as an object on stdout).
fn report_finding(out: &Path, seed: u64, f: &Finding, initial: &str, json: bool) {
    let written = write_finding(out, seed, f, initial);
    if json {
        println!(
            "{{\"case\": {}, \"calls\": {}, \"shrunk_from\": {}, \"reproduced\": {}, \"file\": {}, \"message\": {}}}",
            f.case,
            f.minimal.len(),
            f.original_len,
            f.reproduced,
            written.as_ref().map_or("null".to_string(), |p| crate::run::json_string(&p.display().to_string())),
            crate::run::json_string(&f.message)
        );
    }
    match written {
        Ok(p) => eprintln!(
            "{}case {}: divergence{}, shrunk to {} calls: {}\n{}",
            if std::io::stderr().is_terminal() { "\n" } else { "" },
            f.case,
            if f.reproduced { "" } else { " (did not diverge again when run once more: the kernel's own timing?)" },
            f.minimal.len(),
            p.display(),
            f.message
        ),
        Err(e) => eprintln!("case {}: divergence; cannot write it: {e}\n{}", f.case, f.message),
    }
}

/// A progress line: cases done, rate, time left, divergences so far.
fn progress(done: usize, total: usize, found: usize, elapsed: std::time::Duration) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    let rate = done as f64 / secs;
    let left = if rate > 0.0 { (total.saturating_sub(done)) as f64 / rate } else { 0.0 };
    let bar = (done * 30 / total.max(1)).min(30);
    format!(
        "[{}{}] {done}/{total} cases, {rate:.1}/s, {:.0} s left, {found} divergence{}",
        "#".repeat(bar),
        " ".repeat(30 - bar),
        left,
        if found == 1 { "" } else { "s" }
    )
}

/// `vmaspace fuzz`. Returns the exit status.
pub fn main(args: &FuzzArgs, any_kernel: bool) -> i32 {
    if let Err(e) = vmaspace_oracle::check_kernel(any_kernel) {
        eprintln!("vmaspace fuzz: {e}");
        return 2;
    }
    if let Err(e) = vmaspace_oracle::safety::prepare() {
        eprintln!("vmaspace fuzz: {e}");
        return 2;
    }
    let probe = Trace { scope: Some(Scope::WholeSpace), header: vec![], setup: Default::default(), lines: vec![] };
    let initial = match vmaspace_oracle::run(&probe, &Default::default()) {
        Ok(r) => r.initial_maps,
        Err(e) => {
            eprintln!("vmaspace fuzz: {e}");
            return 2;
        }
    };
    // Findings are written as they are found, so an interrupted campaign keeps them.
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("vmaspace fuzz: --out {}: {e}", args.out.display());
        return 2;
    }
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let findings = Mutex::new(Vec::new());
    let tty = std::io::stderr().is_terminal();
    let (shard, shards) = args.shard;
    // The cases of this shard.
    let total = (args.cases + shards - shard) / shards;
    let started = std::time::Instant::now();
    let (done_ref, findings_ref) = (&done, &findings);
    std::thread::scope(|s| {
        for _ in 0..args.jobs.max(1) {
            s.spawn(|| {
                loop {
                    let (shard, shards) = args.shard;
                    let case = next.fetch_add(1, Ordering::Relaxed) * shards + (shard - 1);
                    if case >= args.cases || vmaspace_oracle::safety::interrupted().is_some() {
                        break;
                    }
                    let trace = Gen::new(case_seed(args.seed, case), &initial).trace(args.ops);
                    if args.keep {
                        let _ = std::fs::create_dir_all(&args.out);
                        let text = crate::scenario::Scenario::from_trace("case", trace.clone()).text;
                        let path = args.out.join(format!("case-{}-{case}.trace", args.seed));
                        let _ = std::fs::write(&path, format!("# whole-space\n{}{text}", setup_header(&trace.setup)));
                        // Runnable as it is: `vmaspace run` finds the initial maps beside it.
                        let _ = std::fs::write(path.with_extension("initial-maps"), &initial);
                    }
                    let setup = trace.setup.clone();
                    let verdict = run_check(&trace.lines, &setup);
                    if vmaspace_oracle::safety::interrupted().is_some() {
                        break;
                    }
                    let finding = match verdict {
                        Err(e) => Some(Finding {
                            case,
                            setup: setup.clone(),
                            message: format!("the run failed: {e}"),
                            minimal: trace.lines.clone(),
                            original_len: trace.lines.len(),
                            reproduced: true,
                        }),
                        Ok(Verdict::Diverge(message)) => {
                            let minimal = shrink(trace.lines.clone(), &setup);
                            let again = diverges(&minimal, &setup);
                            let reproduced = again.is_some();
                            let message = again.unwrap_or(message);
                            Some(Finding { case, setup, message, minimal, original_len: trace.lines.len(), reproduced })
                        }
                        Ok(Verdict::Agree | Verdict::Skipped(_)) => None,
                    };
                    if let Some(f) = finding {
                        let mut all = findings.lock().unwrap_or_else(|p| p.into_inner());
                        report_finding(&args.out, args.seed, &f, &initial, args.format == crate::run::Format::Json);
                        all.push(f.reproduced);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        {
            let mut last_line = std::time::Instant::now();
            s.spawn(move || {
                loop {
                    let d = done_ref.load(Ordering::Relaxed);
                    let found = findings_ref.lock().map_or(0, |f| f.len());
                    let line = progress(d, total, found, started.elapsed());
                    if tty {
                        eprint!("\r{line}");
                    } else if last_line.elapsed() >= std::time::Duration::from_secs(5) || d >= total {
                        eprintln!("{line}");
                        last_line = std::time::Instant::now();
                    }
                    if d >= total || vmaspace_oracle::safety::interrupted().is_some() {
                        if tty {
                            eprintln!();
                        }
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
            });
        }
    });
    let findings = findings.into_inner().unwrap_or_else(|p| p.into_inner());
    if vmaspace_oracle::safety::interrupted().is_some() {
        eprintln!(
            "vmaspace fuzz: {} cases done, {} divergences written to {}",
            done.load(Ordering::Relaxed),
            findings.len(),
            args.out.display()
        );
    }
    crate::exit_if_interrupted();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let unrepeated = findings.iter().filter(|r| !**r).count();
    if args.format == crate::run::Format::Json {
        println!(
            "{{\"cases\": {total}, \"calls\": {}, \"divergences\": {}, \"not_reproduced\": {unrepeated}, \"seed\": {}, \"out\": {}}}",
            total * args.ops,
            findings.len(),
            args.seed,
            crate::run::json_string(&args.out.display().to_string())
        );
    } else {
        println!(
            "fuzz: {}, {}, {}{}",
            plural(total, "case"),
            plural(total * args.ops, "call"),
            plural(findings.len(), "divergence"),
            if unrepeated > 0 {
                format!(" ({unrepeated} did not diverge again when run once more)")
            } else {
                String::new()
            }
        );
    }
    if findings.is_empty() { 0 } else { 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generator's addresses reach the whole address range, not only the arena: the lowest
    /// 64 KiB, the gaps and edges outside the arena, and near the top of the address space
    /// (checked on the addresses of mmap, which takes them as hints and fixed addresses).
    #[test]
    fn addresses_come_from_the_whole_range() {
        let initial = crate::run::EXECUTOR_LAYOUT;
        let (mut low, mut high, mut elsewhere, mut arena) = (0, 0, 0, 0);
        for case in 0..300 {
            let trace = Gen::new(case_seed(7, case), initial).trace(40);
            for line in &trace.lines {
                if let Call::Mmap { addr, .. } = line.call {
                    let arena_end = ARENA + (ARENA_PAGES + 64) * PAGE;
                    match addr {
                        0 => {}
                        a if a < 0x10000 => low += 1,
                        a if a >= 0x7fff_0000_0000 => high += 1,
                        a if (ARENA - 64 * PAGE..arena_end).contains(&a) => arena += 1,
                        _ => elsewhere += 1,
                    }
                }
            }
        }
        assert!(arena > low + high + elsewhere, "most addresses stay near the trace's own VMAs");
        assert!(low >= 20 && high >= 20 && elsewhere >= 50, "low {low}, high {high}, elsewhere {elsewhere}");
    }
}
