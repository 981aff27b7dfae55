//! The kernel's side of `vmaspace bench`: the same operation streams as the model's, run as
//! real syscalls in a child process (so the caller's own address space is left alone), and the
//! heap in use, with which the caller measures the model's memory.
//!
//! The child maps N non-mergeable one-page VMAs (alternating read-write and read-only) far
//! from everything else, then times, each as the median of batches:
//!
//! - `mmap_munmap_pair`: a hint-less one-page anonymous mmap and its munmap;
//! - `mprotect_pair`: mprotect of the middle page of a 3-page VMA to read-only and back (a
//!   split into three, then a merge back into one);
//! - `mremap_move`: mremap of the 3-page VMA to 1 MiB above it and back (`MREMAP_MAYMOVE |
//!   MREMAP_FIXED`);
//! - `maps_line`: reading `/proc/self/maps`, per line;
//! - `fork`: fork, the child's `_exit(0)` and the parent's wait;
//! - `placement`: a hint-less two-page mmap and its munmap when the N VMAs lie just below the
//!   mapping area's top with one-page holes between them, so the search passes them all.

use std::io::Read;
use std::time::Instant;

/// Bytes of heap in use now (glibc's `mallinfo2()`: small chunks in use plus large ones
/// mapped on their own), to measure what a structure holds without a counting allocator.
pub fn heap_in_use() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let m = unsafe { libc::mallinfo2() };
    m.uordblks + m.hblkhd
}

/// Median over `batches` of the cost of one `op`, in nanoseconds.
pub fn median_ns(batches: usize, per_batch: usize, mut op: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..batches)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_batch {
                op();
            }
            t.elapsed().as_nanos() as f64 / per_batch.max(1) as f64
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

impl KernelTimes {
    /// The times in the order of [`OPS`].
    pub fn by_op(&self) -> [f64; 6] {
        [self.mmap_munmap_pair, self.mprotect_pair, self.mremap_move, self.maps_line, self.fork, self.placement]
    }

    /// The lower of each time of two rounds.
    pub fn min(&self, o: &KernelTimes) -> KernelTimes {
        KernelTimes {
            mmap_munmap_pair: self.mmap_munmap_pair.min(o.mmap_munmap_pair),
            mprotect_pair: self.mprotect_pair.min(o.mprotect_pair),
            mremap_move: self.mremap_move.min(o.mremap_move),
            maps_line: self.maps_line.min(o.maps_line),
            fork: self.fork.min(o.fork),
            placement: self.placement.min(o.placement),
        }
    }
}

/// The operations timed, in the order of rows and of [`KernelTimes::by_op`].
pub const OPS: [&str; 6] = ["mmap_munmap_pair", "mprotect_pair", "mremap_move", "maps_line", "fork", "placement"];

/// The kernel's times for one N, in nanoseconds per operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KernelTimes {
    /// `mmap_munmap_pair`.
    pub mmap_munmap_pair: f64,
    /// `mprotect_pair`.
    pub mprotect_pair: f64,
    /// `mremap_move`.
    pub mremap_move: f64,
    /// `maps_line`.
    pub maps_line: f64,
    /// `fork`.
    pub fork: f64,
    /// `placement`.
    pub placement: f64,
}

const PAGE: u64 = 0x1000;
/// Where the N VMAs go (far below the mapping area and above the heap).
pub const BASE: u64 = 0x2000_0000_0000;
/// The 3-page VMA of the mprotect pair.
pub const WORK: u64 = 0x3000_0000_0000;
/// Where `mremap_move` moves it to (and back from).
pub const MOVED: u64 = WORK + 0x10_0000;

fn map(addr: u64, len: u64, prot: i32, flags: i32) -> u64 {
    // SAFETY: maps fresh anonymous memory in the bench child, at addresses nothing else uses.
    unsafe { libc::mmap(addr as *mut libc::c_void, len as usize, prot, flags, -1, 0) as u64 }
}

fn unmap(addr: u64, len: u64) {
    // SAFETY: unmaps only what the bench child mapped itself.
    unsafe { libc::munmap(addr as *mut libc::c_void, len as usize) };
}

const RW: i32 = libc::PROT_READ | libc::PROT_WRITE;
const FIXED: i32 = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED;

/// The lowest start of the mappings near the top of the mapping area (shared libraries, the
/// vDSO), read from `/proc/self/maps`: the fragmented range goes below it.
fn mapping_area_floor() -> u64 {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    maps.lines()
        .filter_map(|l| u64::from_str_radix(l.split('-').next()?, 16).ok())
        .filter(|a| *a >= 0x7000_0000_0000 && *a < 0x7fff_0000_0000)
        .min()
        .unwrap_or(0x7fff_f7ff_f000)
}

/// Runs in the child: builds the N VMAs and measures. Writes the six times as text.
fn measure(n: u64) -> String {
    for i in 0..n {
        let p = if i % 2 == 0 { RW } else { libc::PROT_READ };
        map(BASE + i * PAGE, PAGE, p, FIXED);
    }
    map(WORK, 3 * PAGE, RW, FIXED);
    let pair = median_ns(51, 200, || {
        let a = map(0, PAGE, RW, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS);
        unmap(a, PAGE);
    });
    let mprotect = median_ns(51, 200, || {
        // SAFETY: changes the protection of the child's own work area only.
        unsafe {
            libc::mprotect((WORK + PAGE) as *mut libc::c_void, PAGE as usize, libc::PROT_READ);
            libc::mprotect((WORK + PAGE) as *mut libc::c_void, PAGE as usize, RW);
        }
    });
    let mremap = median_ns(51, 200, || {
        let flags = libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED;
        let len = 3 * PAGE as usize;
        // SAFETY: moves the child's own work area to a free place and back.
        unsafe {
            libc::mremap(WORK as *mut libc::c_void, len, len, flags, MOVED as *mut libc::c_void);
            libc::mremap(MOVED as *mut libc::c_void, len, len, flags, WORK as *mut libc::c_void);
        }
    });
    let lines = std::fs::read_to_string("/proc/self/maps").map_or(1, |t| t.lines().count());
    let maps = median_ns(7, 3, || {
        std::hint::black_box(std::fs::read_to_string("/proc/self/maps").ok());
    }) / lines as f64;
    let fork = median_ns(7, 5, || {
        // SAFETY: the grandchild only exits; the child waits for it.
        unsafe {
            let pid = libc::fork();
            if pid == 0 {
                libc::_exit(0);
            }
            let mut st = 0;
            libc::waitpid(pid, &mut st, 0);
        }
    });
    // The N VMAs again, now just below the mapping area with one-page holes between them.
    unmap(BASE, n * PAGE);
    let floor = mapping_area_floor();
    for i in 0..n {
        map(floor - (2 * i + 2) * PAGE, PAGE, RW, FIXED | libc::MAP_NORESERVE);
    }
    let placement = median_ns(21, 50, || {
        let a = map(0, 2 * PAGE, RW, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS);
        unmap(a, 2 * PAGE);
    });
    format!("{pair} {mprotect} {mremap} {maps} {fork} {placement}\n")
}

/// Runs the kernel side for `n` VMAs in a child process. `n` must be within
/// `vm.max_map_count` (less the process's own mappings).
pub fn kernel_side(n: u64) -> Result<KernelTimes, String> {
    let mut fds = [0i32; 2];
    // SAFETY: a fresh pipe; both ends are closed below on every path.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: the caller is single-threaded here (the bench runs before any thread starts); the
    // child only maps, measures, writes to the pipe and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        let text = measure(n);
        // SAFETY: writes to the pipe's write end and exits without running the parent's
        // destructors.
        unsafe {
            libc::write(fds[1], text.as_ptr().cast(), text.len());
            libc::_exit(0);
        }
    }
    // SAFETY: the parent's copy of the write end.
    unsafe { libc::close(fds[1]) };
    let mut text = String::new();
    {
        use std::os::fd::FromRawFd;
        // SAFETY: the read end is owned here from now on and closed with the File.
        let mut f = unsafe { std::fs::File::from_raw_fd(fds[0]) };
        let _ = f.read_to_string(&mut text);
    }
    let mut status = 0;
    // SAFETY: waits for the child made above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let v: Vec<f64> = text.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    match v[..] {
        [mmap_munmap_pair, mprotect_pair, mremap_move, maps_line, fork, placement] => {
            Ok(KernelTimes { mmap_munmap_pair, mprotect_pair, mremap_move, maps_line, fork, placement })
        }
        _ => Err(format!("the kernel side's child ended without its times (status {status:#x})")),
    }
}
