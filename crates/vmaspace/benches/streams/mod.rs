//! The address space the op streams of `vmaspace bench` run in, shared by the divan benches and
//! `examples/hot_loop.rs` (which include this file).

use vmaspace::AddressSpace;
use vmaspace::flags::{map, prot};

pub const PAGE: u64 = 0x1000;
/// Where the N VMAs go.
pub const BASE: u64 = 0x2000_0000_0000;
/// The 3-page VMA of the mprotect pair and the mremap move.
pub const WORK: u64 = 0x3000_0000_0000;

/// N non-mergeable one-page VMAs (alternating read-write and read-only) and the work area.
pub fn model_with(n: u64) -> AddressSpace {
    let mut mm = AddressSpace::new();
    mm.settings_mut().max_map_count = usize::MAX / 2;
    let fixed = map::PRIVATE | map::ANONYMOUS | map::FIXED;
    for i in 0..n {
        let p = if i % 2 == 0 { prot::READ | prot::WRITE } else { prot::READ };
        mm.mmap(BASE + i * PAGE, PAGE, p, fixed, -1, 0).unwrap();
    }
    mm.mmap(WORK, 3 * PAGE, prot::READ | prot::WRITE, fixed, -1, 0).unwrap();
    mm
}
