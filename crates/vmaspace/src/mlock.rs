//! mlock, mlock2, munlock, mlockall, munlockall (Linux: mm/mlock.c).

use crate::AddressSpace;
use crate::addr::{PAGE_MASK, PAGE_SHIFT, PAGE_SIZE};
use crate::errno::{Errno, SysResult};
use crate::flags::{MLOCK_ONFAULT, VmFlags, mcl};

impl AddressSpace {
    /// `mlock(start, len)`.
    pub fn mlock(&mut self, start: u64, len: u64) -> SysResult {
        self.do_mlock(start, len, VmFlags::LOCKED)
    }

    /// `mlock2(start, len, flags)`.
    pub fn mlock2(&mut self, start: u64, len: u64, flags: u64) -> SysResult {
        // `flags` is an int: the upper half of the register is not looked at.
        let flags = flags as u32 as u64;
        if flags & !MLOCK_ONFAULT != 0 {
            return Err(Errno::EINVAL);
        }
        let mut vm = VmFlags::LOCKED;
        if flags & MLOCK_ONFAULT != 0 {
            vm |= VmFlags::LOCKONFAULT;
        }
        self.do_mlock(start, len, vm)
    }

    /// `munlock(start, len)`.
    pub fn munlock(&mut self, start: u64, len: u64) -> SysResult {
        let (start, len) = widen(start, len);
        self.apply_vma_lock_flags(start, len, VmFlags::NONE).map(|()| 0)
    }

    /// Linux: `do_mlock()`.
    fn do_mlock(&mut self, start: u64, len: u64, flags: VmFlags) -> SysResult {
        if !self.can_do_mlock() {
            return Err(Errno::EPERM);
        }
        let (start, len) = widen(start, len);
        let limit = self.settings.rlimit_memlock >> PAGE_SHIFT;
        let mut locked = (len >> PAGE_SHIFT) + self.counters.locked_vm;
        if locked > limit && !self.settings.cap_ipc_lock {
            locked -= self.count_mlocked_pages(start, len);
        }
        if locked > limit && !self.settings.cap_ipc_lock {
            return Err(Errno::ENOMEM);
        }
        self.apply_vma_lock_flags(start, len, flags)?;
        // __mlock_posix_error_return(): EFAULT reads as ENOMEM, ENOMEM as EAGAIN.
        match self.mm_populate(start, len, false) {
            Ok(()) => Ok(0),
            Err(Errno::EFAULT) => Err(Errno::ENOMEM),
            Err(Errno::ENOMEM) => Err(Errno::EAGAIN),
            Err(e) => Err(e),
        }
    }

    /// Linux: `count_mm_mlocked_page_nr()`.
    fn count_mlocked_pages(&self, start: u64, len: u64) -> u64 {
        let end = start.saturating_add(len);
        let bytes: u64 = self
            .tree
            .iter_range(start, end)
            .filter(|v| v.flags.contains(VmFlags::LOCKED))
            .map(|v| end.min(v.end) - start.max(v.start))
            .sum();
        bytes >> PAGE_SHIFT
    }

    /// Linux: `apply_vma_lock_flags()`: every VMA of the range takes `flags` as its lock
    /// state; a hole stops it with the VMAs before already changed.
    fn apply_vma_lock_flags(&mut self, start: u64, len: u64, flags: VmFlags) -> Result<(), Errno> {
        let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
        if end == start {
            return Ok(());
        }
        let first = self.tree.vma_lookup(start).ok_or(Errno::ENOMEM)?;
        let mut tmp = first.start;
        let mut nstart = start;
        while let Some(vma) = self.tree.find_intersection(nstart, end).cloned() {
            if vma.start != tmp {
                return Err(Errno::ENOMEM);
            }
            let newflags = (vma.flags & !VmFlags::LOCKED_MASK) | flags;
            tmp = self.mlock_fixup(vma.start, nstart, vma.end.min(end), newflags)?;
            nstart = tmp;
            if tmp >= end {
                break;
            }
        }
        if tmp < end {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// Linux: `mlock_fixup()`: returns the end of the VMA that now holds the range.
    fn mlock_fixup(&mut self, vma_start: u64, start: u64, end: u64, newflags: VmFlags) -> Result<u64, Errno> {
        let vma = self.tree.get(vma_start).expect("mlock of a VMA").clone();
        let oldflags = vma.flags;
        let secretmem = crate::drivers::secretmem::vma_is_secretmem(vma.ops.as_ref());
        if newflags == oldflags
            || oldflags.intersects(VmFlags::SPECIAL | VmFlags::HUGETLB | VmFlags::DROPPABLE)
            || secretmem
        {
            return Ok(vma.end);
        }
        let target = self.vma_modify(vma_start, start, end, newflags)?;
        let pages = (end - start) >> PAGE_SHIFT;
        if !newflags.contains(VmFlags::LOCKED) {
            if oldflags.contains(VmFlags::LOCKED) {
                self.munlock_frames(start, end);
            }
            self.counters.locked_vm = self.counters.locked_vm.saturating_sub(pages);
        } else if !oldflags.contains(VmFlags::LOCKED) {
            self.counters.locked_vm += pages;
        }
        let t = self.tree.vma_mut(target).expect("modified VMA");
        t.flags = newflags | (t.flags & VmFlags::STICKY);
        Ok(t.end)
    }

    /// `mlockall(flags)`.
    pub fn mlockall(&mut self, flags: u64) -> SysResult {
        let flags = flags as u32 as u64;
        let all = mcl::CURRENT | mcl::FUTURE | mcl::ONFAULT;
        if flags == 0 || flags & !all != 0 || flags == mcl::ONFAULT {
            return Err(Errno::EINVAL);
        }
        if !self.can_do_mlock() {
            return Err(Errno::EPERM);
        }
        let limit = self.settings.rlimit_memlock >> PAGE_SHIFT;
        if flags & mcl::CURRENT != 0 && self.counters.total_vm > limit && !self.settings.cap_ipc_lock {
            return Err(Errno::ENOMEM);
        }
        self.apply_mlockall_flags(flags);
        if flags & mcl::CURRENT != 0 {
            let _ = self.mm_populate(0, self.settings.task_size, true);
        }
        Ok(0)
    }

    /// `munlockall()`.
    pub fn munlockall(&mut self) -> SysResult {
        self.apply_mlockall_flags(0);
        Ok(0)
    }

    /// Linux: `apply_mlockall_flags()`: errors on single VMAs are ignored.
    fn apply_mlockall_flags(&mut self, flags: u64) {
        self.def_flags.remove(VmFlags::LOCKED_MASK);
        if flags & mcl::FUTURE != 0 {
            self.def_flags |= VmFlags::LOCKED;
            if flags & mcl::ONFAULT != 0 {
                self.def_flags |= VmFlags::LOCKONFAULT;
            }
            if flags & mcl::CURRENT == 0 {
                return;
            }
        }
        let mut to_add = VmFlags::NONE;
        if flags & mcl::CURRENT != 0 {
            to_add |= VmFlags::LOCKED;
            if flags & mcl::ONFAULT != 0 {
                to_add |= VmFlags::LOCKONFAULT;
            }
        }
        let mut cursor = 0;
        while let Some(vma) = self.tree.find_vma(cursor).cloned() {
            let newflags = (vma.flags & !VmFlags::LOCKED_MASK) | to_add;
            cursor = match self.mlock_fixup(vma.start, vma.start, vma.end, newflags) {
                Ok(end) => end,
                Err(_) => vma.end,
            };
        }
    }
}

/// Rounds `[start, start+len)` out to whole pages, as mlock and munlock take it.
fn widen(start: u64, len: u64) -> (u64, u64) {
    let len = len.wrapping_add(start & (PAGE_SIZE - 1)).wrapping_add(PAGE_SIZE - 1) & PAGE_MASK;
    (start & PAGE_MASK, len)
}
