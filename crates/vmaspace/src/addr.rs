//! Page arithmetic.

/// Bytes per page (x86_64, 4 KiB pages).
pub const PAGE_SIZE: u64 = 0x1000;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;
/// Clears the offset within a page.
pub const PAGE_MASK: u64 = !(PAGE_SIZE - 1);
/// log2 of [`PMD_SIZE`].
pub const PMD_SHIFT: u32 = 21;
/// `PMD_SIZE`: 2 MiB.
pub const PMD_SIZE: u64 = 1 << PMD_SHIFT;

/// `PAGE_ALIGN`: rounds up; None when it wraps past the top of the address space.
pub fn page_align(x: u64) -> Option<u64> {
    x.checked_add(PAGE_SIZE - 1).map(|v| v & PAGE_MASK)
}

/// `offset_in_page(x) == 0`.
pub fn is_page_aligned(x: u64) -> bool {
    x & (PAGE_SIZE - 1) == 0
}

/// Pages in `[start, end)`.
pub fn pages(start: u64, end: u64) -> u64 {
    (end - start) >> PAGE_SHIFT
}

/// `PAGE_ALIGN` as C computes it: wrapping past the top of the address space gives 0.
pub fn page_align_wrapping(x: u64) -> u64 {
    x.wrapping_add(PAGE_SIZE - 1) & PAGE_MASK
}

/// The end of `[start, start + PAGE_ALIGN(len))` as madvise and mseal check it: `EINVAL` when a
/// non-zero length rounds to 0 or the range wraps past the top.
pub(crate) fn range_end(start: u64, len: u64) -> Result<u64, crate::Errno> {
    let alen = page_align_wrapping(len);
    if len != 0 && alen == 0 {
        return Err(crate::Errno::EINVAL);
    }
    start.checked_add(alen).ok_or(crate::Errno::EINVAL)
}
