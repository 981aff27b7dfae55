//! Choosing an address for a mapping (Linux: `__get_unmapped_area` and the x86_64 allocators).

use crate::AddressSpace;
use crate::addr::{PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, PMD_SIZE, is_page_aligned, page_align};
use crate::driver::{AreaRequest, GetUnmappedArea, OpenFile, UnmappedAreaSearch};
use crate::errno::Errno;
use crate::explain::PlacementStep;
use crate::flags::{VmFlags, map};
use std::sync::Arc;

/// `struct vm_unmapped_area_info`.
#[derive(Debug, Clone, Copy)]
struct UnmappedAreaInfo {
    length: u64,
    low_limit: u64,
    high_limit: u64,
    align_mask: u64,
    align_offset: u64,
    start_gap: u64,
}

/// A request as the allocators below `__get_unmapped_area()` pass it down.
#[derive(Debug, Clone, Copy)]
struct Search {
    req: AreaRequest,
    /// An alignment the result must have (a hugetlbfs file's huge page size: x86's
    /// `get_align_mask()`), with no file-offset colouring.
    align: Option<u64>,
}

impl From<AreaRequest> for Search {
    fn from(req: AreaRequest) -> Search {
        Search { req, align: None }
    }
}

impl Search {
    /// Linux: `stack_guard_placement()`: a shadow stack keeps a page free below it.
    fn start_gap(&self) -> u64 {
        if self.req.vm_flags.contains(VmFlags::SHADOW_STACK) { PAGE_SIZE } else { 0 }
    }
    fn with_len(self, len: u64) -> Search {
        Search { req: AreaRequest { len, ..self.req }, ..self }
    }
    fn without_vm_flags(self) -> Search {
        Search { req: self.req.without_vm_flags(), ..self }
    }
}

/// The searches a driver's `get_unmapped_area` may use.
impl UnmappedAreaSearch for AddressSpace {
    fn mm_get_unmapped_area(&self, req: AreaRequest) -> Result<u64, Errno> {
        self.mm_search(req.into())
    }
    fn thp_get_unmapped_area(&self, req: AreaRequest) -> Result<u64, Errno> {
        self.thp_search(req.into())
    }
    fn aligned_get_unmapped_area(&self, req: AreaRequest, align: u64) -> Result<u64, Errno> {
        self.mm_search(Search { req, align: Some(align) })
    }
}

/// Linux: `IS_ERR_VALUE()`: a value in the last page of the address space, which the syscall
/// ABI reads as a negated error number.
pub(crate) fn is_err_value(v: u64) -> bool {
    v >= (-4095i64) as u64
}

/// `DEFAULT_MAP_WINDOW` (47 bits minus a page).
const DEFAULT_MAP_WINDOW: u64 = (1 << 47) - PAGE_SIZE;

impl AddressSpace {
    /// Linux: `__get_unmapped_area()`.
    pub(crate) fn get_unmapped_area(
        &self,
        file: Option<&Arc<OpenFile>>,
        addr: u64,
        len: u64,
        pgoff: u64,
        flags: u64,
        vm_flags: VmFlags,
    ) -> Result<u64, Errno> {
        let task_size = self.settings.task_size;
        if len > task_size {
            return Err(Errno::ENOMEM);
        }
        let shared = flags & map::SHARED != 0;
        let pgoff = if file.is_some() { pgoff } else { 0 };
        let req = AreaRequest { addr, len, pgoff, flags, vm_flags };
        // Each allocator is named for `explain` as it is chosen.
        let allocator = |name: &dyn Fn() -> String| self.note_placement(|| PlacementStep::Allocator(name()));
        let addr = match file.map(|f| (&f.ops.get_unmapped_area, f.ops.label)) {
            // f_op->get_unmapped_area.
            Some((Some(g), label)) => {
                allocator(&|| format!("{label}'s f_op->get_unmapped_area"));
                g.get_unmapped_area(self, req)?
            }
            Some((None, _)) => {
                allocator(&|| "mm_get_unmapped_area (the file has no get_unmapped_area)".into());
                self.mm_search(req.into())?
            }
            // Shared anonymous memory is shmem's.
            None if shared => {
                allocator(&|| "shmem_get_unmapped_area (shared anonymous memory is shmem's)".into());
                crate::drivers::shmem::ShmemPlacement.get_unmapped_area(self, req)?
            }
            None if addr == 0 && len.is_multiple_of(PMD_SIZE) => {
                allocator(&|| "thp_get_unmapped_area (anonymous, no hint, length a multiple of 2 MiB)".into());
                self.thp_search(req.into())?
            }
            None => {
                allocator(&|| "mm_get_unmapped_area".into());
                self.mm_search(req.into())?
            }
        };
        // `IS_ERR_VALUE(addr)`: a MAP_FIXED address in the last page of the 64-bit space comes
        // back from the allocator as it went in, and is returned as it is, before any check: the
        // caller sees it as an error number (`-1 E2295` for 0xfffffffffffff709).
        if is_err_value(addr) {
            return Ok(addr);
        }
        if addr > task_size - len {
            return Err(Errno::ENOMEM);
        }
        if !is_page_aligned(addr) {
            return Err(Errno::EINVAL);
        }
        // security_mmap_addr(): below mmap_min_addr needs CAP_SYS_RAWIO.
        if addr < self.settings.mmap_min_addr && !self.settings.cap_sys_rawio {
            return Err(Errno::EPERM);
        }
        Ok(addr)
    }

    /// Linux: `thp_get_unmapped_area_vmflags()`: pads the search by 2 MiB and aligns the result
    /// so that the file offset and the address agree modulo 2 MiB; falls back to the plain
    /// search when the range holds no whole aligned 2 MiB chunk of the file or the padded
    /// search fails.
    fn thp_search(&self, s: Search) -> Result<u64, Errno> {
        if let Some(a) = self.thp_aligned_area(s) {
            return Ok(a);
        }
        self.note_placement(|| PlacementStep::ThpNotApplicable);
        self.mm_search(s)
    }

    /// Linux: `__thp_get_unmapped_area()`; None means "not applicable".
    fn thp_aligned_area(&self, s: Search) -> Option<u64> {
        let AreaRequest { addr, len, pgoff, .. } = s.req;
        let size = PMD_SIZE;
        let off = pgoff.checked_mul(PAGE_SIZE)?;
        let off_end = off.checked_add(len)?;
        let off_align = off.checked_add(size - 1)? & !(size - 1);
        if off_end <= off_align || off_end - off_align < size {
            return None;
        }
        let len_pad = len.checked_add(size)?;
        off.checked_add(len_pad)?;
        let ret = self.mm_search(s.with_len(len_pad)).ok()?;
        if ret == addr {
            return Some(addr);
        }
        let off_sub = off.wrapping_sub(ret) & (size - 1);
        // The mm is top-down (MMF_TOPDOWN), even when MAP_32BIT searched bottom-up.
        let aligned = if off_sub == 0 { ret + size } else { ret + off_sub };
        self.note_placement(|| PlacementStep::ThpAligned { padded_len: len_pad, found: ret, aligned });
        Some(aligned)
    }

    /// The `align_mask` and `align_offset` of a search.
    fn alignment(s: &Search) -> (u64, u64) {
        match s.align {
            Some(align) => ((align - 1) & PAGE_MASK, 0),
            None => (0, s.req.pgoff << PAGE_SHIFT),
        }
    }

    /// Linux: `mm_get_unmapped_area_vmflags()` → x86's `arch_get_unmapped_area_topdown()`.
    fn mm_search(&self, s: Search) -> Result<u64, Errno> {
        let AreaRequest { addr: addr0, len, flags, .. } = s.req;
        let task_size = self.settings.task_size;
        if len > task_size {
            return Err(Errno::ENOMEM);
        }
        if flags & map::FIXED != 0 {
            return Ok(addr0);
        }
        if flags & map::_32BIT != 0 {
            return self.arch_get_unmapped_area(s);
        }
        let mut addr = addr0;
        if addr != 0 {
            addr &= PAGE_MASK;
            if self.hint_valid(addr, len) {
                let gap = self.settings.stack_guard_gap;
                if self.tree.find_vma(addr).is_none_or(|v| addr + len <= v.start_gap(gap)) {
                    self.note_placement(|| PlacementStep::HintTaken(addr));
                    return Ok(addr);
                }
                self.note_placement(|| PlacementStep::HintRefused {
                    addr,
                    why: "a VMA (or the stack guard gap below one) overlaps it",
                });
            } else {
                self.note_placement(|| PlacementStep::HintRefused {
                    addr,
                    why: "it does not fit below TASK_SIZE within one address-space window (mmap_address_hint_valid)",
                });
            }
        }
        let mut high_limit = self.settings.mmap_base;
        if addr > DEFAULT_MAP_WINDOW {
            high_limit += task_size - DEFAULT_MAP_WINDOW;
        }
        let (align_mask, align_offset) = Self::alignment(&s);
        let info = UnmappedAreaInfo {
            length: len,
            low_limit: if flags & map::ABOVE4G != 0 { 1 << 32 } else { PAGE_SIZE },
            high_limit,
            align_mask,
            align_offset,
            start_gap: s.start_gap(),
        };
        match self.unmapped_area_topdown(info) {
            Some(a) => Ok(a),
            None => {
                self.note_placement(|| PlacementStep::BottomUpFallback);
                self.arch_get_unmapped_area(s.without_vm_flags())
            }
        }
    }

    /// Linux: `mmap_address_hint_valid()`.
    fn hint_valid(&self, addr: u64, len: u64) -> bool {
        if self.settings.task_size - len < addr {
            return false;
        }
        (addr > DEFAULT_MAP_WINDOW) == (addr + len > DEFAULT_MAP_WINDOW)
    }

    /// Linux: x86's `arch_get_unmapped_area()`: the bottom-up allocator (MAP_32BIT, and the
    /// fallback when the top-down search fails).
    fn arch_get_unmapped_area(&self, s: Search) -> Result<u64, Errno> {
        let AreaRequest { addr, len, flags, .. } = s.req;
        if flags & map::FIXED != 0 {
            return Ok(addr);
        }
        let (begin, end) = if flags & map::_32BIT != 0 {
            (0x4000_0000, 0x8000_0000)
        } else {
            let big = addr > DEFAULT_MAP_WINDOW;
            (self.settings.mmap_legacy_base, if big { self.settings.task_size } else { DEFAULT_MAP_WINDOW })
        };
        if len > end {
            return Err(Errno::ENOMEM);
        }
        if addr != 0 {
            let a = page_align(addr).unwrap_or(0);
            let gap = self.settings.stack_guard_gap;
            if a != 0 && end - len >= a && self.tree.find_vma(a).is_none_or(|v| a + len <= v.start_gap(gap)) {
                return Ok(a);
            }
        }
        let (align_mask, align_offset) = Self::alignment(&s);
        let info = UnmappedAreaInfo {
            length: len,
            low_limit: begin,
            high_limit: end,
            align_mask,
            align_offset,
            start_gap: s.start_gap(),
        };
        let found = self.unmapped_area(info);
        if found.is_none() {
            self.note_placement(|| PlacementStep::NoGap);
        }
        found.ok_or(Errno::ENOMEM)
    }

    /// Linux: `unmapped_area_topdown()`: the highest gap that fits, respecting the guard gap
    /// below a stack VMA above it.
    fn unmapped_area_topdown(&self, info: UnmappedAreaInfo) -> Option<u64> {
        let length = info.length.checked_add(info.align_mask)?.checked_add(info.start_gap)?;
        let low_limit = info.low_limit.max(self.settings.effective_mmap_min_addr());
        let mut high_limit = info.high_limit;
        let guard = self.settings.stack_guard_gap;
        loop {
            let gap_end = self.tree.highest_gap_end(low_limit, high_limit, length)?;
            let mut gap = gap_end - info.length;
            gap -= gap.wrapping_sub(info.align_offset) & info.align_mask;
            if let Some(next) = self.tree.next_from(gap_end)
                && next.flags.intersects(VmFlags::STARTGAP_FLAGS)
                && next.start_gap(guard) < gap_end
            {
                high_limit = next.start_gap(guard);
                self.note_placement(|| PlacementStep::StackGuardGap { stack: next.start, limit: high_limit });
                continue;
            }
            self.note_gap(true, length, (low_limit, high_limit), info.align_mask, gap);
            return Some(gap);
        }
    }

    /// Records the gap a search took (for `explain`).
    fn note_gap(&self, top_down: bool, length: u64, (low_limit, high_limit): (u64, u64), align_mask: u64, addr: u64) {
        self.note_placement(|| PlacementStep::Gap {
            top_down,
            length,
            low_limit,
            high_limit,
            gap: self.gap_around(addr),
            align_mask,
            addr,
        });
    }

    /// The free gap holding `addr`: from the end of the VMA below to the start of the one above.
    fn gap_around(&self, addr: u64) -> (u64, u64) {
        let below = self.tree.prev_of(addr.saturating_add(1)).map_or(0, |v| v.end);
        let above = self.tree.next_from(addr.saturating_add(1)).map_or(self.settings.task_size, |v| v.start);
        (below, above)
    }

    /// Linux: `unmapped_area()`: the lowest gap that fits.
    fn unmapped_area(&self, info: UnmappedAreaInfo) -> Option<u64> {
        let length = info.length.checked_add(info.align_mask)?.checked_add(info.start_gap)?;
        let mut low_limit = info.low_limit.max(self.settings.effective_mmap_min_addr());
        let high_limit = info.high_limit;
        let guard = self.settings.stack_guard_gap;
        loop {
            let gap_start = self.tree.lowest_gap_start(low_limit, high_limit, length)?;
            let mut gap = gap_start + info.start_gap;
            gap += info.align_offset.wrapping_sub(gap) & info.align_mask;
            if let Some(next) = self.tree.next_from(gap_start)
                && next.flags.intersects(VmFlags::STARTGAP_FLAGS)
                && next.start_gap(guard) < gap + length - 1
            {
                low_limit = next.end;
                self.note_placement(|| PlacementStep::StackGuardGap { stack: next.start, limit: low_limit });
                continue;
            }
            self.note_gap(false, length, (low_limit, high_limit), info.align_mask, gap);
            return Some(gap);
        }
    }
}
