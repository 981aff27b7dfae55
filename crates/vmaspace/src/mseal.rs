//! mseal (Linux: mm/mseal.c).

use crate::AddressSpace;
use crate::addr::{is_page_aligned, range_end};
use crate::errno::{Errno, SysResult};
use crate::flags::VmFlags;

impl AddressSpace {
    /// `mseal(start, len, flags)`: seals every VMA of the range. A hole anywhere is `ENOMEM`
    /// before anything is sealed; sealing cannot be undone.
    ///
    /// Linux: `do_mseal()`.
    pub fn mseal(&mut self, start: u64, len: u64, flags: u64) -> SysResult {
        if flags != 0 || !is_page_aligned(start) {
            return Err(Errno::EINVAL);
        }
        let end = range_end(start, len)?;
        if end == start {
            return Ok(0);
        }
        if self.range_contains_unmapped(start, end) {
            return Err(Errno::ENOMEM);
        }
        let mut cur = start;
        while let Some(vma) = self.tree.find_intersection(cur, end).cloned() {
            let cur_end = vma.end.min(end);
            let mut next = cur_end;
            if !vma.is_sealed() {
                let target = self.vma_modify(vma.start, cur, cur_end, vma.flags | VmFlags::SEALED)?;
                let t = self.tree.vma_mut(target).expect("sealed VMA");
                t.flags |= VmFlags::SEALED;
                next = next.max(t.end.min(end));
            }
            cur = next;
            if cur >= end {
                break;
            }
        }
        Ok(0)
    }

    /// Linux: `range_contains_unmapped()`.
    fn range_contains_unmapped(&self, start: u64, end: u64) -> bool {
        let mut prev_end = start;
        for v in self.tree.iter_range(start, end) {
            if v.start > prev_end {
                return true;
            }
            prev_end = v.end;
        }
        prev_end < end
    }
}
