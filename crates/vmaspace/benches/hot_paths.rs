//! Statistical benches of the model's hot paths (divan): the op streams of `vmaspace bench`
//! (which puts them beside the live kernel) with N non-mergeable one-page VMAs present.
//! `cargo bench -p vmaspace --bench hot_paths`.

mod streams;

use divan::Bencher;
use streams::{BASE, PAGE, WORK, model_with};
use vmaspace::AddressSpace;
use vmaspace::flags::{map, prot};

const SIZES: [u64; 3] = [100, 10_000, 1_000_000];

fn main() {
    divan::main();
}

/// A hint-less one-page mmap and its munmap.
#[divan::bench(args = SIZES)]
fn mmap_munmap_pair(b: Bencher, n: u64) {
    let mut mm = model_with(n);
    b.bench_local(|| {
        let a = mm.mmap(0, PAGE, prot::READ | prot::WRITE, map::PRIVATE | map::ANONYMOUS, -1, 0).unwrap();
        mm.munmap(a, PAGE).unwrap();
    });
}

/// mprotect of the middle page of a 3-page VMA and back: a split into three, a merge into one.
#[divan::bench(args = SIZES)]
fn mprotect_pair(b: Bencher, n: u64) {
    let mut mm = model_with(n);
    b.bench_local(|| {
        mm.mprotect(WORK + PAGE, PAGE, prot::READ).unwrap();
        mm.mprotect(WORK + PAGE, PAGE, prot::READ | prot::WRITE).unwrap();
    });
}

/// The maps text of the whole address space.
#[divan::bench(args = [100, 10_000])]
fn maps_text(b: Bencher, n: u64) {
    let mm = model_with(n);
    b.bench_local(|| divan::black_box(mm.maps()));
}

/// A fork of the address space.
#[divan::bench(args = [100, 10_000])]
fn fork(b: Bencher, n: u64) {
    let mut mm = model_with(n);
    b.bench_local(|| drop(divan::black_box(mm.fork().unwrap())));
}

/// Sizes of the range benches: a page, 1 GiB, 1 TiB, 64 TiB.
const RANGES: [u64; 4] = [PAGE, 1 << 30, 1 << 40, 64 << 40];

/// A fresh anonymous mapping of `len`, `act` over all of it, then unmapped.
fn range_bench(b: Bencher, len: u64, act: impl Fn(&mut AddressSpace, u64, u64)) {
    let mut mm = AddressSpace::new();
    let flags = map::PRIVATE | map::ANONYMOUS | map::FIXED | map::NORESERVE;
    b.bench_local(|| {
        mm.mmap(BASE, len, prot::READ | prot::WRITE, flags, -1, 0).unwrap();
        act(&mut mm, BASE, len);
        mm.munmap(BASE, len).unwrap();
    });
}

/// Written all over (each page faulted).
#[divan::bench(args = RANGES)]
fn touch_range(b: Bencher, len: u64) {
    range_bench(b, len, |mm, a, l| mm.touch(a, l).unwrap());
}

/// Locked (`mlock` populates it for writing).
#[divan::bench(args = RANGES)]
fn mlock_range(b: Bencher, len: u64) {
    range_bench(b, len, |mm, a, l| {
        mm.mlock(a, l).unwrap();
    });
}

/// Guarded (`MADV_GUARD_INSTALL`).
#[divan::bench(args = RANGES)]
fn guard_range(b: Bencher, len: u64) {
    range_bench(b, len, |mm, a, l| {
        mm.madvise(a, l, vmaspace::flags::advice::GUARD_INSTALL).unwrap();
    });
}

/// mremap of a 3-page VMA to 1 MiB above it and back.
#[divan::bench(args = SIZES)]
fn mremap_move(b: Bencher, n: u64) {
    let mut mm = model_with(n);
    let flags = vmaspace::flags::mremap::MAYMOVE | vmaspace::flags::mremap::FIXED;
    b.bench_local(|| {
        mm.mremap(WORK, 3 * PAGE, 3 * PAGE, flags, WORK + 0x10_0000).unwrap();
        mm.mremap(WORK + 0x10_0000, 3 * PAGE, 3 * PAGE, flags, WORK).unwrap();
    });
}
