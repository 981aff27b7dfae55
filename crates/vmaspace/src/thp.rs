//! Transparent huge pages, as far as the model follows them (Linux: `mm/huge_memory.c`): which
//! VMAs are eligible, and where huge folios the model does not track may appear. The model
//! assumes this machine kind's configuration (live-kernel.md §1): `enabled=madvise` with only
//! the PMD order (2 MiB, `inherit`), `shmem_enabled=never`, no `CONFIG_READ_ONLY_THP_FOR_FS`,
//! no DAX.

use crate::addr::PMD_SIZE;
use crate::flags::VmFlags;
use crate::vma::Vma;

impl Vma {
    /// Linux: `thp_vma_allowable_orders(vma, vma->vm_flags, TVA_SMAPS, THP_ORDERS_ALL)`, smaps'
    /// `THPeligible`. Only an anonymous VMA can be eligible here: one with `VM_HUGEPAGE` and
    /// without `VM_NOHUGEPAGE` that holds a PMD-aligned 2 MiB range
    /// (`thp_vma_suitable_order()` at `vm_end - PMD_SIZE`). A file VMA never is: shmem's huge
    /// orders are off, and a regular file needs `CONFIG_READ_ONLY_THP_FOR_FS` or a
    /// `huge_fault` handler.
    ///
    /// The check runs at `vm_end - PMD_SIZE` in unsigned arithmetic, as the kernel's does: a
    /// VMA that ends below 2 MiB wraps around and passes (so it shows eligible, though no
    /// huge page fits in it).
    pub fn thp_eligible(&self) -> bool {
        let haddr = self.end.wrapping_sub(PMD_SIZE) & !(PMD_SIZE - 1);
        self.thp_advised() && haddr >= self.start && haddr.wrapping_add(PMD_SIZE) <= self.end
    }

    /// Linux: `thp_vma_allowable_order(TVA_PAGEFAULT, PMD_ORDER)` and
    /// `thp_vma_suitable_order()` at `addr`: a fault there may map a huge page (or the huge
    /// zero page) for the whole 2 MiB around it, when the allocation succeeds.
    pub(crate) fn thp_fault_possible(&self, addr: u64) -> bool {
        self.thp_advised() && self.holds_pmd_at(addr)
    }

    /// Whether the VMA may hold huge folios the model does not follow, making its counters
    /// unknown: THPs in an advised anonymous VMA that holds an aligned 2 MiB range (khugepaged
    /// collapses such ranges on its own schedule),
    /// and a file VMA under `MADV_HUGEPAGE`, whose read-ahead allocates PMD-order folios where
    /// the file system takes large folios (`do_sync_mmap_readahead()`). Under shmem's `never`
    /// a shmem VMA's folios stay small; hugetlb pages are hugetlb's.
    pub(crate) fn may_hold_thp(&self) -> bool {
        let first_pmd = self.start.checked_next_multiple_of(PMD_SIZE);
        (self.thp_advised() && first_pmd.and_then(|a| a.checked_add(PMD_SIZE)).is_some_and(|e| e <= self.end))
            || (self.flags.contains(VmFlags::HUGEPAGE)
                && !self.is_anonymous()
                && !self.flags.contains(VmFlags::HUGETLB)
                && !crate::drivers::shmem::vma_is_shmem(self.ops.as_ref()))
    }

    /// The anonymous-memory half of `thp_vma_allowable_orders()` under `enabled=madvise`:
    /// `VM_HUGEPAGE` asked for, `VM_NOHUGEPAGE` not (`vma_thp_disabled()`).
    fn thp_advised(&self) -> bool {
        self.is_anonymous() && self.flags.contains(VmFlags::HUGEPAGE) && !self.flags.contains(VmFlags::NOHUGEPAGE)
    }

    /// Linux: `thp_vma_suitable_order(vma, addr, PMD_ORDER)` for an anonymous VMA: the 2 MiB
    /// aligned range around `addr` lies within the VMA.
    fn holds_pmd_at(&self, addr: u64) -> bool {
        let haddr = addr & !(PMD_SIZE - 1);
        haddr >= self.start && haddr.checked_add(PMD_SIZE).is_some_and(|e| e <= self.end)
    }
}
