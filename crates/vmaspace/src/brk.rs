//! brk (Linux: mm/mmap.c `SYSCALL_DEFINE1(brk)`, `do_brk_flags`).

use crate::AddressSpace;
use crate::addr::{PAGE_SHIFT, PAGE_SIZE, page_align_wrapping};
use crate::errno::SysResult;
use crate::flags::{VmFlags, map};
use crate::merge::Vmg;
use crate::vma::Vma;

impl AddressSpace {
    /// `brk(addr)`: moves the program break; returns the break, which stays where it was when
    /// the move is refused (brk never returns an errno).
    pub fn brk(&mut self, brk: u64) -> SysResult {
        let orig = self.brk;
        if brk < self.start_brk {
            return Ok(orig);
        }
        if self.settings.rlimit_data != u64::MAX && brk - self.start_brk > self.settings.rlimit_data {
            return Ok(orig);
        }
        let (newbrk, oldbrk) = (page_align_wrapping(brk), page_align_wrapping(self.brk));
        if oldbrk == newbrk {
            self.brk = brk;
            return Ok(brk);
        }
        if brk <= self.brk {
            // Shrinking: only the brk VMA may be unmapped.
            match self.tree.find_intersection(newbrk, oldbrk) {
                Some(v) if v.start < oldbrk => {}
                _ => return Ok(orig),
            }
            self.brk = brk;
            if self.munmap(newbrk, oldbrk - newbrk).is_err() {
                self.brk = orig;
                return Ok(orig);
            }
            return Ok(brk);
        }
        if !self.brk_grow(oldbrk, newbrk) {
            return Ok(orig);
        }
        self.brk = brk;
        if self.def_flags.contains(VmFlags::LOCKED) {
            let _ = self.mm_populate(oldbrk, newbrk - oldbrk, true);
        }
        Ok(brk)
    }

    /// `check_brk_limits()`, the guard gap check and `do_brk_flags()`.
    fn brk_grow(&mut self, oldbrk: u64, newbrk: u64) -> bool {
        // A break near the top wraps PAGE_ALIGN to 0; the length then wraps too, as in C, and
        // get_unmapped_area refuses it.
        let len = newbrk.wrapping_sub(oldbrk);
        if self.get_unmapped_area(None, oldbrk, len, 0, map::FIXED, VmFlags::NONE).is_err()
            || !self.mm_info().mlock_future_ok(self.def_flags, len >> PAGE_SHIFT)
        {
            return false;
        }
        let guard = self.settings.stack_guard_gap;
        let limit = newbrk.saturating_add(PAGE_SIZE).saturating_add(guard);
        if let Some(next) = self.tree.find_intersection(oldbrk, limit)
            && newbrk.saturating_add(PAGE_SIZE) > next.start_gap(guard)
        {
            return false;
        }
        let flags = VmFlags::READ
            | VmFlags::WRITE
            | VmFlags::MAYREAD
            | VmFlags::MAYWRITE
            | VmFlags::MAYEXEC
            | VmFlags::ACCOUNT
            | self.def_flags;
        if !self.may_expand_vm(flags, len >> PAGE_SHIFT)
            || self.map_count() > self.settings.max_map_count
            || !self.vm_enough_memory(len >> PAGE_SHIFT)
        {
            return false;
        }
        // vma_prev_limit(start_brk): the VMA below the old break, if it reaches above start_brk
        // (a VMA the heap was merged into counts, whatever its start); it is extended only if
        // it ends at the old break.
        let brkvma = self.tree.prev_of(oldbrk).filter(|v| v.end > self.start_brk && v.end == oldbrk).map(|v| v.start);
        let merged = brkvma.and_then(|_| {
            let mut vmg = Vmg::new_range(oldbrk, newbrk, oldbrk >> PAGE_SHIFT, flags, None);
            vmg.just_expand = true;
            self.vma_merge_new_range(&vmg)
        });
        if merged.is_none() {
            self.tree.insert(Vma::new(oldbrk, newbrk, oldbrk >> PAGE_SHIFT, flags));
        }
        self.counters.account(flags, (len >> PAGE_SHIFT) as i64);
        if flags.contains(VmFlags::LOCKED) {
            self.counters.locked_vm += len >> PAGE_SHIFT;
        }
        true
    }
}
