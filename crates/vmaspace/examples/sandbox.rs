//! An embedder's view: a sandbox that uses vmaspace as its address-space manager, adds a file
//! system of its own (with its own placement policy) and a device of its own (with
//! `mmap_prepare` and `VmOperations`), and maps them next to the built-in files. Everything here
//! uses the public API only, as a crate outside vmaspace would.
//!
//! Run it with `cargo run -p vmaspace --example sandbox`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use vmaspace::AddressSpace;
use vmaspace::addr::PAGE_SIZE;
use vmaspace::driver::{
    AreaRequest, FileOperations, FileSystem, GetUnmappedArea, Inode, InodeMode, InodeState, MmapHook, MmapPrepare,
    UnmappedAreaSearch, VmAreaDesc, VmFault, VmOperations,
};
use vmaspace::errno::Errno;
use vmaspace::flags::VmFlags;
use vmaspace::typed::{Addr, MapFlags, OpenFlags, Prot};
use vmaspace::vfs::Mount;

/// Where the sandbox wants its file system's mappings: an arena of its own, low in the address
/// space, each mapping 64 KiB aligned.
const ARENA: u64 = 0x5000_0000_0000;
const ARENA_ALIGN: u64 = 0x1_0000;

/// The sandbox's placement policy (`f_op->get_unmapped_area`): hint-less mappings go to the
/// arena; fixed ones and those with a hint are left to the address space's plain search.
#[derive(Debug)]
struct ArenaPlacement;

impl GetUnmappedArea for ArenaPlacement {
    fn get_unmapped_area(&self, mm: &dyn UnmappedAreaSearch, req: AreaRequest) -> Result<u64, Errno> {
        let hinted = if req.addr == 0 { AreaRequest { addr: ARENA, ..req } } else { req };
        mm.aligned_get_unmapped_area(hinted, ARENA_ALIGN)
    }
}

/// The sandbox file system's `mmap_prepare`: its files are never dumped.
#[derive(Debug)]
struct SandboxMmap;

impl MmapPrepare for SandboxMmap {
    fn mmap_prepare(&self, desc: &mut VmAreaDesc<'_>) -> Result<(), Errno> {
        desc.set_vm_flags(desc.vm_flags() | VmFlags::DONTDUMP);
        Ok(())
    }
}

/// `sandboxfs`: a file system whose files map through [`SandboxMmap`] and go to the arena.
#[derive(Debug)]
struct SandboxFs {
    fop: Arc<FileOperations>,
}

impl SandboxFs {
    fn new() -> SandboxFs {
        let fop = FileOperations::new("sandboxfs", MmapHook::Prepare(Arc::new(SandboxMmap)))
            .with_get_unmapped_area(Arc::new(ArenaPlacement));
        SandboxFs { fop: Arc::new(fop) }
    }
}

impl FileSystem for SandboxFs {
    fn name(&self) -> &'static str {
        "sandboxfs"
    }
    fn new_inode(&self, ino: u64, dev: (u32, u32), state: InodeState) -> Inode {
        Inode::new(ino, dev, self.fop.clone(), state)
    }
}

/// A frame-buffer device with 4 pages of memory: its `mmap_prepare` makes mappings
/// `VM_DONTEXPAND` (they cannot grow, so they never merge either) and gives them operations
/// that count closes and refuse faults past the 4 pages with SIGBUS.
#[derive(Debug)]
struct FrameBuffer {
    ops: Arc<VmOperations>,
}

const FB_PAGES: u64 = 4;

impl FrameBuffer {
    fn new(closes: Arc<AtomicUsize>) -> FrameBuffer {
        let ops = VmOperations {
            label: "fb_vm_ops",
            close: Some(Arc::new(move |_| {
                closes.fetch_add(1, Ordering::Relaxed);
            })),
            fault: Some(Arc::new(|v, addr| {
                let page = v.pgoff + (addr - v.start) / PAGE_SIZE;
                if page < FB_PAGES { VmFault::Mapped } else { VmFault::Sigbus }
            })),
            ..VmOperations::default()
        };
        FrameBuffer { ops: Arc::new(ops) }
    }
}

impl MmapPrepare for FrameBuffer {
    fn mmap_prepare(&self, desc: &mut VmAreaDesc<'_>) -> Result<(), Errno> {
        if !desc.vm_flags().contains(VmFlags::SHARED) {
            return Err(Errno::EINVAL);
        }
        desc.set_vm_flags(desc.vm_flags() | VmFlags::DONTEXPAND);
        desc.set_vm_ops(self.ops.clone());
        Ok(())
    }
}

fn main() -> Result<(), Errno> {
    let mut mm = AddressSpace::new();

    // The sandbox's own file system at /sandbox, and its device at /dev/fb0.
    mm.vfs().mount(Mount { dir: b"/sandbox".to_vec(), fs: Arc::new(SandboxFs::new()), dev: (0, 0x99) });
    let closes = Arc::new(AtomicUsize::new(0));
    let fb_ops = Arc::new(FileOperations::new("fb", MmapHook::Prepare(Arc::new(FrameBuffer::new(closes.clone())))));
    let fb = Inode::new(7, (0, 6), fb_ops, InodeState::linked(b"/dev/fb0", 0)).with_mode(InodeMode::CharDevice);
    mm.vfs().add_device(b"/dev/fb0", Arc::new(fb));

    let rw = Prot::READ | Prot::WRITE;
    let shared = MapFlags::SHARED;

    // A sandboxfs file, mapped twice without an address: both land in the arena, one after the
    // other, and merge (same open file, consecutive offsets, same flags, no close operation).
    let data = mm.open_path(b"/sandbox/data", OpenFlags::RDWR | OpenFlags::CREAT)?;
    mm.truncate(data, 8 * PAGE_SIZE)?;
    let a = mm.map(0, 4 * PAGE_SIZE, rw, shared, Some(data), 0)?;
    let b = mm.map(a.get() + 4 * PAGE_SIZE, 4 * PAGE_SIZE, rw, shared | MapFlags::FIXED, Some(data), 4 * PAGE_SIZE)?;
    println!("sandboxfs: {a} and {b}: in the arena, merged into one VMA");

    // The frame buffer, mapped as two adjacent halves: they do not merge (VM_DONTEXPAND is one
    // of the VM_SPECIAL flags, which Linux never merges; each VMA also has a close operation).
    let fb = mm.open_path(b"/dev/fb0", OpenFlags::RDWR)?;
    let f1 = mm.map(0x6000_0000_0000, 2 * PAGE_SIZE, rw, shared | MapFlags::FIXED, Some(fb), 0)?;
    let f2 = mm.map(f1.get() + 2 * PAGE_SIZE, 4 * PAGE_SIZE, rw, shared | MapFlags::FIXED, Some(fb), 2 * PAGE_SIZE)?;
    println!("frame buffer: {f1} and {f2}: two VMAs (VM_DONTEXPAND)");
    println!("touching the frame buffer's 6 pages: {:?}", mm.touch(f1.get(), 6 * PAGE_SIZE));

    // Built-in files next to them: a regular file of the working directory, /dev/zero, and
    // anonymous memory.
    let file = mm.open_path(b"notes", OpenFlags::RDWR | OpenFlags::CREAT)?;
    mm.truncate(file, 2 << 20)?;
    mm.map(0, 2 << 20, Prot::READ, MapFlags::PRIVATE, Some(file), 0)?;
    let zero = mm.open_path(b"/dev/zero", OpenFlags::RDWR)?;
    mm.map(0, 4 * PAGE_SIZE, rw, shared, Some(zero), 0)?;
    let anon = mm.map(0, 16 * PAGE_SIZE, rw, MapFlags::PRIVATE | MapFlags::ANONYMOUS, None, 0)?;
    mm.protect(Addr(anon.get() + 4 * PAGE_SIZE), 4 * PAGE_SIZE, Prot::READ)?;

    print!("\n{}", mm.maps());

    mm.unmap(f1, 6 * PAGE_SIZE)?;
    println!("\nframe buffer closes after munmap: {}", closes.load(Ordering::Relaxed));
    Ok(())
}
