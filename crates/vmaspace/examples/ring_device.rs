//! A small device written against vmaspace's `mmap_prepare` interface.
//!
//! The "ring" device exposes 8 pages of buffer. Its `mmap_prepare`:
//! * refuses private mappings and offsets past the buffer (`EINVAL`);
//! * marks the mapping `VM_DONTDUMP` and `VM_DONTCOPY` (not dumped, not inherited by fork);
//! * installs `VmOperations`: a `fault` that raises SIGBUS past the buffer, a `may_split` that
//!   refuses splits off a 2-page boundary, and a `close` that counts unmaps;
//! * stores the offset it was mapped at as private data.
//!
//! Run it with `cargo run -p vmaspace --example ring_device`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use vmaspace::driver::{
    FMode, FileOperations, Inode, InodeMode, InodeState, MmapHook, MmapPrepare, VmAreaDesc, VmFault, VmOperations,
};
use vmaspace::flags::{VmFlags, map, prot};
use vmaspace::{AddressSpace, Errno};

const PAGE: u64 = 0x1000;
const RING_PAGES: u64 = 8;
static CLOSED: AtomicUsize = AtomicUsize::new(0);

/// The device's mapping hook.
struct Ring {
    ops: Arc<VmOperations>,
}

impl Ring {
    fn new() -> Ring {
        let ops = VmOperations {
            label: "ring_vm_ops",
            fault: Some(Arc::new(|vma, addr| {
                let page = vma.pgoff + (addr - vma.start) / PAGE;
                if page < RING_PAGES { VmFault::Mapped } else { VmFault::Sigbus }
            })),
            may_split: Some(Arc::new(|_, addr| if addr % (2 * PAGE) == 0 { Ok(()) } else { Err(Errno::EINVAL) })),
            close: Some(Arc::new(|_| {
                CLOSED.fetch_add(1, Ordering::SeqCst);
            })),
            ..VmOperations::default()
        };
        Ring { ops: Arc::new(ops) }
    }
}

impl MmapPrepare for Ring {
    fn mmap_prepare(&self, desc: &mut VmAreaDesc<'_>) -> Result<(), Errno> {
        if !desc.vm_flags().contains(VmFlags::MAYSHARE) || desc.pgoff() >= RING_PAGES {
            return Err(Errno::EINVAL);
        }
        // Set before the merge attempt, so mappings of the ring next to each other merge.
        desc.set_vm_flags(desc.vm_flags() | VmFlags::DONTDUMP | VmFlags::DONTCOPY);
        desc.set_vm_ops(self.ops.clone());
        desc.set_private_data(Arc::new(desc.pgoff()));
        Ok(())
    }
}

fn main() {
    let mut mm = AddressSpace::new();
    let ops = Arc::new(FileOperations::new("ring", MmapHook::Prepare(Arc::new(Ring::new()))));
    let state = InodeState::linked(b"/dev/ring0", RING_PAGES * PAGE);
    let inode = Arc::new(Inode::new(1, (0xf0, 0), ops.clone(), state).with_mode(InodeMode::CharDevice));
    let file = mm.vfs().open_with_ops(inode, FMode { read: true, write: true }, ops);
    let fd = mm.install_file(file).expect("a free descriptor") as i64;

    let rw = prot::READ | prot::WRITE;
    let base = 0x1000_0000_0000;
    println!("private mapping: {:?}", mm.mmap(base, 2 * PAGE, rw, map::PRIVATE | map::FIXED, fd, 0));
    println!("first half:      {:x?}", mm.mmap(base, 4 * PAGE, rw, map::SHARED | map::FIXED, fd, 0));
    println!("second half:     {:x?}", mm.mmap(base + 4 * PAGE, 4 * PAGE, rw, map::SHARED | map::FIXED, fd, 4 * PAGE));
    println!("past the buffer: {:?}", mm.mmap(base + 8 * PAGE, 2 * PAGE, rw, map::SHARED | map::FIXED, fd, 8 * PAGE));
    print!("{}", mm.maps());
    assert_eq!(mm.map_count(), 1, "the two halves merged because the flags were set in mmap_prepare");

    println!("touch all 8 pages: {:?}", mm.touch(base, 8 * PAGE));
    println!("split at 1 page:   {:?}", mm.mprotect(base + PAGE, PAGE, prot::READ));
    println!("split at 2 pages:  {:?}", mm.mprotect(base + 2 * PAGE, 2 * PAGE, prot::READ));
    print!("{}", mm.smaps());
    println!("munmap all: {:?}, close called {} times", mm.munmap(base, 8 * PAGE), CLOSED.load(Ordering::SeqCst));
    mm.validate().expect("the address space is consistent");
}
