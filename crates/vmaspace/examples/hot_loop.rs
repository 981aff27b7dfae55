//! The op streams of `vmaspace bench` in a plain loop, for profilers (perf, callgrind), which
//! want one long run of one operation rather than divan's sampling:
//!
//! ```text
//! cargo build --release -p vmaspace --example hot_loop
//! valgrind --tool=callgrind --toggle-collect='hot_loop::run' \
//!     target/release/examples/hot_loop mprotect_pair 10000 100000
//! perf record -g target/release/examples/hot_loop mmap_munmap_pair 10000 5000000
//! target/release/examples/hot_loop mprotect_pair 10000 1000000 102000   # after 102,000 pairs
//! ```
//!
//! Operations: `mmap_munmap_pair`, `mprotect_pair`, `maps_line` (one iteration: the whole maps
//! text), `mremap_move`, `touch` (one iteration: a write fault on one fresh page).

#[path = "../benches/streams/mod.rs"]
mod streams;

use streams::{PAGE, WORK, model_with};
use vmaspace::AddressSpace;
use vmaspace::flags::{map, mremap as mr, prot};

#[inline(never)]
fn run(mm: &mut AddressSpace, op: &str, iters: u64) -> usize {
    let mut out = 0;
    for _ in 0..iters {
        match op {
            "mmap_munmap_pair" => {
                let a = mm.mmap(0, PAGE, prot::READ | prot::WRITE, map::PRIVATE | map::ANONYMOUS, -1, 0).unwrap();
                mm.munmap(a, PAGE).unwrap();
            }
            "mprotect_pair" => {
                mm.mprotect(WORK + PAGE, PAGE, prot::READ).unwrap();
                mm.mprotect(WORK + PAGE, PAGE, prot::READ | prot::WRITE).unwrap();
            }
            "maps_line" => out += mm.maps().len(),
            "mremap_move" => {
                let to = WORK + 0x10_0000;
                let a = mm.mremap(WORK, 3 * PAGE, 3 * PAGE, mr::MAYMOVE | mr::FIXED, to).unwrap();
                mm.mremap(a, 3 * PAGE, 3 * PAGE, mr::MAYMOVE | mr::FIXED, WORK).unwrap();
            }
            other => panic!("unknown op {other}"),
        }
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let op = args.get(1).map(String::as_str).unwrap_or("mprotect_pair");
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let iters: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let mut mm = model_with(n);
    // `vmaspace bench` times the mprotect pair after the mmap/munmap pair on the same space:
    // a fourth argument runs that many pairs first, to time from the same state.
    if let Some(warm) = args.get(4).and_then(|s| s.parse().ok()) {
        run(&mut mm, "mmap_munmap_pair", warm);
    }
    let t = std::time::Instant::now();
    let out = run(&mut mm, op, iters);
    let ns = t.elapsed().as_nanos() as f64 / iters as f64;
    println!("{op} at {n} VMAs: {ns:.1} ns per iteration ({out})");
}
