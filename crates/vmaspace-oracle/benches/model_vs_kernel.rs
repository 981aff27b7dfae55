//! The model's per-call cost next to the live kernel's, measured side by side in one run
//! (`cargo bench -p vmaspace-oracle`): an mmap+munmap pair of one page, an mprotect
//! split+merge pair, and maps text per line, with N non-mergeable VMAs present; and the model's
//! memory per VMA. Results go in BENCHMARKS.md.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use vmaspace::AddressSpace;
use vmaspace::flags::{map, prot};

/// Counts the bytes the model holds (allocations minus frees).
struct Counting;
static HELD: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        HELD.fetch_add(l.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        HELD.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: `p` came from `alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const PAGE: u64 = 0x1000;
const BASE: u64 = 0x2000_0000_0000;
const WORK: u64 = 0x3000_0000_0000;

/// Median over batches of the cost of one `op` call, in nanoseconds.
fn median_ns(batches: usize, per_batch: usize, mut op: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..batches)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_batch {
                op();
            }
            t.elapsed().as_nanos() as f64 / per_batch as f64
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn model_with(n: u64) -> (AddressSpace, usize) {
    let before = HELD.load(Ordering::Relaxed);
    let mut mm = AddressSpace::new();
    // The model goes past the kernel's default limit (65530) where the kernel cannot.
    mm.settings_mut().max_map_count = 2_000_000;
    for i in 0..n {
        let p = if i % 2 == 0 { prot::READ | prot::WRITE } else { prot::READ };
        mm.mmap(BASE + i * PAGE, PAGE, p, map::PRIVATE | map::ANONYMOUS | map::FIXED, -1, 0).unwrap();
    }
    mm.mmap(WORK, 3 * PAGE, prot::READ | prot::WRITE, map::PRIVATE | map::ANONYMOUS | map::FIXED, -1, 0).unwrap();
    let held = HELD.load(Ordering::Relaxed) - before;
    (mm, held)
}

fn kernel_map(addr: u64, len: u64, p: i32, flags: i32) -> u64 {
    // SAFETY: maps fresh anonymous memory at an address no Rust object uses (the bench's
    // arenas are far above the heap and below mmap_base).
    unsafe { libc::mmap(addr as *mut libc::c_void, len as usize, p, flags, -1, 0) as u64 }
}

fn kernel_setup(n: u64) {
    for i in 0..n {
        let p = if i % 2 == 0 { libc::PROT_READ | libc::PROT_WRITE } else { libc::PROT_READ };
        kernel_map(BASE + i * PAGE, PAGE, p, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED);
    }
    kernel_map(
        WORK,
        3 * PAGE,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
    );
}

fn kernel_teardown(n: u64) {
    // SAFETY: unmaps only the bench's own arenas.
    unsafe {
        libc::munmap(BASE as *mut libc::c_void, (n * PAGE) as usize);
        libc::munmap(WORK as *mut libc::c_void, (3 * PAGE) as usize);
    }
}

fn main() {
    println!("| VMAs | op | model ns | kernel ns | kernel/model |");
    println!("|---|---|---|---|---|");
    for n in [100u64, 10_000, 60_000] {
        let (mut mm, held) = model_with(n);
        let m_pair = median_ns(51, 2000, || {
            let a = mm.mmap(0, PAGE, prot::READ | prot::WRITE, map::PRIVATE | map::ANONYMOUS, -1, 0).unwrap();
            mm.munmap(a, PAGE).unwrap();
        });
        let m_prot = median_ns(51, 2000, || {
            mm.mprotect(WORK + PAGE, PAGE, prot::READ).unwrap();
            mm.mprotect(WORK + PAGE, PAGE, prot::READ | prot::WRITE).unwrap();
        });
        let m_maps = median_ns(5, 3, || {
            std::hint::black_box(mm.maps());
        }) / mm.map_count() as f64;
        kernel_setup(n);
        let k_pair = median_ns(51, 200, || {
            let a = kernel_map(0, PAGE, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS);
            // SAFETY: unmaps the page just mapped.
            unsafe { libc::munmap(a as *mut libc::c_void, PAGE as usize) };
        });
        let k_prot = median_ns(51, 200, || {
            // SAFETY: changes the protection of the bench's own work area only.
            unsafe {
                libc::mprotect((WORK + PAGE) as *mut libc::c_void, PAGE as usize, libc::PROT_READ);
                libc::mprotect((WORK + PAGE) as *mut libc::c_void, PAGE as usize, libc::PROT_READ | libc::PROT_WRITE);
            }
        });
        let lines = std::fs::read_to_string("/proc/self/maps").map(|t| t.lines().count()).unwrap_or(1);
        let k_maps = median_ns(5, 3, || {
            std::hint::black_box(std::fs::read_to_string("/proc/self/maps").ok());
        }) / lines as f64;
        kernel_teardown(n);
        for (op, m, k) in [
            ("mmap+munmap pair", m_pair, k_pair),
            ("mprotect split+merge pair", m_prot, k_prot),
            ("maps text, per line", m_maps, k_maps),
        ] {
            println!("| {n} | {op} | {m:.0} | {k:.0} | {:.1}x |", k / m);
        }
        println!("| {n} | model memory per VMA | {} bytes | | |", held / (n as usize + 1));
    }
    let (mut mm, held) = model_with(1_000_000);
    let pair = median_ns(21, 2000, || {
        let a = mm.mmap(0, PAGE, prot::READ | prot::WRITE, map::PRIVATE | map::ANONYMOUS, -1, 0).unwrap();
        mm.munmap(a, PAGE).unwrap();
    });
    let prot_pair = median_ns(21, 2000, || {
        mm.mprotect(WORK + PAGE, PAGE, prot::READ).unwrap();
        mm.mprotect(WORK + PAGE, PAGE, prot::READ | prot::WRITE).unwrap();
    });
    println!("| 1000000 | mmap+munmap pair | {pair:.0} | (over max_map_count) | |");
    println!("| 1000000 | mprotect split+merge pair | {prot_pair:.0} | | |");
    println!("| 1000000 | model memory per VMA | {} bytes | | |", held / 1_000_001);
}
