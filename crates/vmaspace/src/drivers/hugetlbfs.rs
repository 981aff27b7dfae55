//! hugetlbfs (Linux 6.18: `hugetlbfs_file_mmap`, a legacy `.mmap`; hugetlbfs moves to
//! `mmap_prepare` in 6.19): files on a hugetlbfs mount, `MFD_HUGETLB` memfds and the file
//! behind `MAP_ANONYMOUS|MAP_HUGETLB`. The pools, reservations and huge page faults are the
//! memory-mapping code's (`crate::hugetlb`, Linux's `mm/hugetlb.c`); each inode keeps its
//! reservations and page cache in its driver state ([`HugetlbInode`]).

use crate::driver::{
    AreaRequest, FileOperations, FileSystem, Files, GetUnmappedArea, Inode, InodeState, LegacyMmap, LegacyVma,
    MmapHook, UnmappedAreaSearch, VmOperations,
};
use crate::errno::Errno;
use crate::flags::{VmFlags, map, seal};
use crate::hugetlb::{HugePools, HugeSize, HugetlbInode, ResvMap, hugetlb_reserve_pages};
use crate::vfs::dev;
use std::sync::{Arc, OnceLock};

/// `PGOFF_LOFFT_MAX`: page offsets with any of these bits overflow a byte offset.
const PGOFF_LOFFT_MAX: u64 = ((1 << (crate::addr::PAGE_SHIFT + 1)) - 1) << (64 - (crate::addr::PAGE_SHIFT + 1));

/// `hugetlb_vm_ops` for one page size: splits only at huge page boundaries
/// (`hugetlb_vm_op_split`), and closing a private mapping returns the reservations its faults
/// did not consume (`hugetlb_vm_op_close`).
pub fn hugetlb_vm_ops(size: HugeSize) -> Arc<VmOperations> {
    static OPS: [OnceLock<Arc<VmOperations>>; 2] = [OnceLock::new(), OnceLock::new()];
    per_size(&OPS, size, || VmOperations {
        label: "hugetlb_vm_ops",
        close: Some(Arc::new(move |v| {
            if let Some(r) = ResvMap::of(v.private_data.as_ref()) {
                let first = v.pgoff / size.small_pages();
                r.release(first, first + (v.end - v.start) / size.bytes());
            }
        })),
        may_split: Some(Arc::new(move |_, addr| if size.is_aligned(addr) { Ok(()) } else { Err(Errno::EINVAL) })),
        ..VmOperations::default()
    })
}

/// One shared value per huge page size, made on first use.
fn per_size<T>(cells: &'static [OnceLock<Arc<T>>; 2], size: HugeSize, make: impl FnOnce() -> T) -> Arc<T> {
    cells[usize::from(size == HugeSize::Pud)].get_or_init(|| Arc::new(make())).clone()
}

/// `hugetlbfs_file_mmap()`.
#[derive(Debug, Default)]
pub struct HugetlbfsMmap;

impl LegacyMmap for HugetlbfsMmap {
    fn mmap(&self, vma: &mut LegacyVma<'_>) -> Result<(), Errno> {
        let file = vma.vm_file.clone().ok_or(Errno::ENODEV)?;
        let inode = file.inode.private_as::<HugetlbInode>().ok_or(Errno::ENODEV)?;
        let size = inode.size;
        // Set before any error, so the unwinding sees a hugetlb VMA.
        vma.flags |= VmFlags::HUGETLB | VmFlags::DONTEXPAND;
        vma.vm_ops = Some(hugetlb_vm_ops(size));
        if vma.pgoff & PGOFF_LOFFT_MAX != 0 || !vma.pgoff.is_multiple_of(size.small_pages()) {
            return Err(Errno::EINVAL);
        }
        let vma_len = vma.end - vma.start;
        // A loff_t: the sum must stay positive.
        let len = (vma.pgoff << crate::addr::PAGE_SHIFT).wrapping_add(vma_len);
        if (len as i64) < (vma_len as i64) {
            return Err(Errno::EINVAL);
        }
        let from = vma.pgoff / size.small_pages();
        vma.private_data = hugetlb_reserve_pages(inode, from, len >> size.shift(), vma.flags)?;
        let mut st = file.inode.state();
        if vma.flags.contains(VmFlags::WRITE) && st.size < len {
            st.size = len;
        }
        Ok(())
    }
}

/// `hugetlb_get_unmapped_area()`: lengths and fixed addresses huge-page aligned, hints rounded
/// up, the search aligned to the huge page size.
#[derive(Debug, Clone, Copy)]
pub struct HugetlbPlacement(pub HugeSize);

impl GetUnmappedArea for HugetlbPlacement {
    fn get_unmapped_area(&self, mm: &dyn UnmappedAreaSearch, req: AreaRequest) -> Result<u64, Errno> {
        let size = self.0;
        if !size.is_aligned(req.len) {
            return Err(Errno::EINVAL);
        }
        if req.flags & map::FIXED != 0 && !size.is_aligned(req.addr) {
            return Err(Errno::EINVAL);
        }
        // ALIGN() wraps to 0 (no hint) near the top of the address space.
        let addr = if req.addr == 0 { 0 } else { size.align_up(req.addr).unwrap_or(0) };
        mm.aligned_get_unmapped_area(AreaRequest { addr, ..req }, size.bytes())
    }
}

/// `hugetlbfs_punch_hole()` (`hugetlbfs_fallocate` with `FALLOC_FL_PUNCH_HOLE`): no holes in a
/// file sealed against writing; the whole huge pages in the hole leave the file and every
/// mapping, their reservations go back (partial pages are only zeroed).
fn hugetlbfs_punch_hole(inode: &Inode, offset: u64, len: u64) -> Result<(), Errno> {
    if inode.state().seals & (seal::WRITE | seal::FUTURE_WRITE) != 0 {
        return Err(Errno::EPERM);
    }
    if let Some(h) = HugetlbInode::of(inode) {
        let bytes = h.size.bytes();
        let hole_start = offset.div_ceil(bytes);
        let hole_end = offset.saturating_add(len) / bytes;
        h.remove_pages(hole_start, hole_end);
    }
    Ok(())
}

/// `hugetlbfs_file_operations` for files of one page size (with `fallocate`).
pub fn hugetlbfs_file_operations(size: HugeSize) -> Arc<FileOperations> {
    static OPS: [OnceLock<Arc<FileOperations>>; 2] = [OnceLock::new(), OnceLock::new()];
    per_size(&OPS, size, || {
        FileOperations::new("hugetlbfs", MmapHook::Legacy(Arc::new(HugetlbfsMmap)))
            .with_get_unmapped_area(Arc::new(HugetlbPlacement(size)))
            .with_punch_hole(Arc::new(hugetlbfs_punch_hole))
    })
}

/// A hugetlbfs inode of `size` pages from `pools`: sealable, and `hugetlbfs_setattr()` for
/// size changes (whole huge pages only, checked before the seals; a shrink drops the pages and
/// reservations past the end, `hugetlb_vmtruncate`).
pub fn hugetlbfs_inode(ino: u64, dev: (u32, u32), state: InodeState, size: HugeSize, pools: Arc<HugePools>) -> Inode {
    Inode::new(ino, dev, hugetlbfs_file_operations(size), state)
        .with_seals()
        .with_private(Arc::new(HugetlbInode::new(size, pools)))
        .with_setattr_size(Arc::new(|inode, len| {
            let Some(h) = inode.private_as::<HugetlbInode>() else { return Ok(()) };
            if !h.size.is_aligned(len) {
                return Err(Errno::EINVAL);
            }
            {
                let st = inode.state();
                if (len < st.size && st.seals & seal::SHRINK != 0) || (len > st.size && st.seals & seal::GROW != 0) {
                    return Err(Errno::EPERM);
                }
            }
            h.truncate(len >> h.size.shift());
            Ok(())
        }))
}

/// Linux: `hugetlb_file_setup()`: a new file on the internal hugetlbfs mount of `size` pages,
/// never linked, sealable like a memfd (`F_SEAL_SEAL` set), of `len` bytes.
pub fn hugetlb_file_setup(
    files: &dyn Files,
    pools: &Arc<HugePools>,
    size: HugeSize,
    name: &[u8],
    len: u64,
) -> Arc<Inode> {
    let dev = if size == HugeSize::Pud { dev::HUGETLB_1G } else { dev::HUGETLB_2M };
    let state = InodeState { seals: seal::SEAL, executable: true, ..InodeState::unlinked(name, len) };
    Arc::new(hugetlbfs_inode(files.next_internal_ino(), dev, state, size, pools.clone()))
}

/// hugetlbfs as a file system type (2 MiB pages), drawing on `pools`.
#[derive(Debug)]
pub struct Hugetlbfs {
    /// The pools its files' pages come from.
    pub pools: Arc<HugePools>,
}

impl FileSystem for Hugetlbfs {
    fn name(&self) -> &'static str {
        "hugetlbfs"
    }
    fn new_inode(&self, ino: u64, dev: (u32, u32), state: InodeState) -> Inode {
        let inode = hugetlbfs_inode(ino, dev, state, HugeSize::Pmd, self.pools.clone());
        inode.state().seals = seal::SEAL;
        inode
    }
}
