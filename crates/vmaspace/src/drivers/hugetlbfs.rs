//! hugetlbfs (Linux 6.18: `hugetlbfs_file_mmap`, a legacy `.mmap`; hugetlbfs moves to
//! `mmap_prepare` in 6.19): files on a hugetlbfs mount, `MFD_HUGETLB` memfds and the file
//! behind `MAP_ANONYMOUS|MAP_HUGETLB`.

use crate::errno::Errno;
use crate::file::{FileOperations, LegacyMmap, LegacyVma, MmapHook, Placement, VmOperations};
use crate::flags::VmFlags;
use crate::hugetlb::{HugeSize, ResvMap, hugetlb_reserve_pages};
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
        let inode = file.inode.hugetlb.as_ref().ok_or(Errno::ENODEV)?;
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

/// `hugetlbfs_file_operations` for files of one page size.
pub fn hugetlbfs_file_operations(size: HugeSize) -> Arc<FileOperations> {
    static OPS: [OnceLock<Arc<FileOperations>>; 2] = [OnceLock::new(), OnceLock::new()];
    per_size(&OPS, size, || FileOperations {
        label: "hugetlbfs",
        hook: Ok(MmapHook::Legacy(Arc::new(HugetlbfsMmap))),
        placement: Placement::Hugetlb(size),
        mmap_sync: false,
    })
}
