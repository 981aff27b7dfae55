//! mprotect, pkey_mprotect, pkey_alloc and pkey_free (Linux: mm/mprotect.c and x86's pkeys).

use crate::AddressSpace;
use crate::addr::{PAGE_SIZE, is_page_aligned, page_align};
use crate::errno::{Errno, SysResult};
use crate::flags::{VmFlags, prot};
use crate::mmap::calc_vm_prot_bits;
use crate::tree::VmaHandle;

/// `PKEY_DISABLE_ACCESS | PKEY_DISABLE_WRITE`.
const PKEY_ACCESS_MASK: u64 = 0x3;

impl AddressSpace {
    /// `mprotect(start, len, prot)`.
    pub fn mprotect(&mut self, start: u64, len: u64, prot: u64) -> SysResult {
        self.do_mprotect_pkey(start, len, prot, None)
    }

    /// `pkey_mprotect(start, len, prot, pkey)`; a pkey of -1 means "keep the VMA's".
    pub fn pkey_mprotect(&mut self, start: u64, len: u64, prot: u64, pkey: i64) -> SysResult {
        let pkey = if pkey == -1 { None } else { Some(pkey) };
        self.do_mprotect_pkey(start, len, prot, pkey)
    }

    /// `pkey_alloc(flags, access_rights)`.
    pub fn pkey_alloc(&mut self, flags: u64, access_rights: u64) -> SysResult {
        if flags != 0 || access_rights & !PKEY_ACCESS_MASK != 0 {
            return Err(Errno::EINVAL);
        }
        // Without protection keys the mm starts with no key allocated, not even key 0, so the
        // first mm_pkey_alloc() hands out key 0, arch_set_user_pkey_access() refuses it, and
        // freeing it again fails (key 0 is then also the "execute-only key", which
        // mm_pkey_is_allocated() denies): every later call finds no key left.
        if !self.settings.pkeys {
            let first = self.pkeys.allocated & 1 == 0;
            self.pkeys.allocated |= 1;
            return Err(if first { Errno::EINVAL } else { Errno::ENOSPC });
        }
        let k = self.pkeys.alloc().ok_or(Errno::ENOSPC)?;
        let bit = 1u16 << k;
        self.pkeys.access_denied = (self.pkeys.access_denied & !bit) | if access_rights & 1 != 0 { bit } else { 0 };
        self.pkeys.write_denied = (self.pkeys.write_denied & !bit) | if access_rights & 2 != 0 { bit } else { 0 };
        Ok(u64::from(k))
    }

    /// `pkey_free(pkey)`.
    pub fn pkey_free(&mut self, pkey: i64) -> SysResult {
        if !self.pkey_is_allocated(pkey) {
            return Err(Errno::EINVAL);
        }
        self.pkeys.allocated &= !(1u16 << pkey);
        Ok(0)
    }

    /// Linux: `mm_pkey_is_allocated()`: the execute-only key is not the caller's to use.
    /// Without protection keys no key is allocated, not even 0 (`init_new_context()` sets
    /// up the allocation map only with `OSPKE`).
    fn pkey_is_allocated(&self, pkey: i64) -> bool {
        if !self.settings.pkeys || !(0..16).contains(&pkey) || self.pkeys.execute_only == Some(pkey as u32) {
            return false;
        }
        self.pkeys.allocated & (1 << pkey) != 0
    }

    /// Linux: `do_mprotect_pkey()`. Changes the VMAs in order; a hole or a refused VMA stops
    /// it with the VMAs before already changed, as in Linux.
    fn do_mprotect_pkey(&mut self, mut start: u64, len: u64, prot: u64, pkey: Option<i64>) -> SysResult {
        let grows = prot & (prot::GROWSDOWN | prot::GROWSUP);
        let prot = prot & !grows;
        if grows == prot::GROWSDOWN | prot::GROWSUP || !is_page_aligned(start) {
            return Err(Errno::EINVAL);
        }
        if len == 0 {
            return Ok(0);
        }
        let len = page_align(len).ok_or(Errno::ENOMEM)?;
        let end = start.checked_add(len).filter(|e| *e > start).ok_or(Errno::ENOMEM)?;
        if prot & !(prot::READ | prot::WRITE | prot::EXEC | prot::SEM) != 0 {
            return Err(Errno::EINVAL);
        }
        if let Some(k) = pkey
            && !self.pkey_is_allocated(k)
        {
            return Err(Errno::EINVAL);
        }
        let first = self.tree.find_intersection(start, end).ok_or(Errno::ENOMEM)?;
        // A handle from the start: the tree finds it beside the last VMA it found.
        let mut next_vma = Some((VmaHandle::from(first.start), first.end, first.flags));
        if grows & prot::GROWSDOWN != 0 {
            start = first.start;
            if !first.flags.contains(VmFlags::GROWSDOWN) {
                return Err(Errno::EINVAL);
            }
        } else {
            if first.start > start {
                return Err(Errno::ENOMEM);
            }
            if grows & prot::GROWSUP != 0 {
                return Err(Errno::EINVAL);
            }
        }
        let mut tmp = first.start;
        let mut nstart = start;
        while let Some((vma, vma_end, flags)) = next_vma {
            if vma.start != tmp {
                return Err(Errno::ENOMEM);
            }
            let new_pkey = self.override_mprotect_pkey(&flags, prot, pkey);
            let newflags = calc_vm_prot_bits(prot, new_pkey) | (flags & !(VmFlags::ACCESS_FLAGS | VmFlags::PKEY_MASK));
            // Each of READ/WRITE/EXEC needs its MAY* bit, four bits higher.
            if newflags.0 & !(newflags.0 >> 4) & VmFlags::ACCESS_FLAGS.0 != 0 {
                return Err(Errno::EACCES);
            }
            tmp = vma_end.min(end);
            // Continue after the VMA the change left the iterator on (`vma_iter_end`), which
            // a merge may have extended.
            tmp = self.mprotect_fixup(vma, nstart, tmp, newflags)?;
            nstart = tmp;
            if tmp >= end {
                break;
            }
            next_vma = self.tree.find_intersection(tmp, end).map(|v| (VmaHandle::from(v.start), v.end, v.flags));
        }
        if tmp < end {
            return Err(Errno::ENOMEM);
        }
        Ok(0)
    }

    /// Linux: x86's `arch_override_mprotect_pkey()`.
    fn override_mprotect_pkey(&mut self, flags: &VmFlags, prot: u64, pkey: Option<i64>) -> u32 {
        if let Some(k) = pkey {
            return k as u32;
        }
        if prot == prot::EXEC {
            let k = self.execute_only_pkey();
            if k > 0 {
                return k;
            }
        } else if (*flags & VmFlags::ACCESS_FLAGS) == VmFlags::EXEC && Some(flags.pkey()) == self.pkeys.execute_only {
            return 0;
        }
        flags.pkey()
    }

    /// Linux: `mprotect_fixup()`: `[start, end)` of `vma` takes `newflags`.
    /// Returns the end of the VMA that now holds the range.
    fn mprotect_fixup(
        &mut self,
        vma_handle: VmaHandle,
        start: u64,
        end: u64,
        mut newflags: VmFlags,
    ) -> Result<u64, Errno> {
        let vma = self.tree.vma(vma_handle).expect("mprotect of a VMA");
        if vma.is_sealed() {
            return Err(Errno::EPERM);
        }
        let oldflags = vma.flags;
        if newflags == oldflags {
            return Ok(vma.end);
        }
        let unfaulted_anon = vma.is_anonymous() && vma.anon_vma.is_none();
        let nrpages = (end - start) / PAGE_SIZE;
        if newflags.contains(VmFlags::WRITE) {
            if !self.may_expand_vm(newflags, nrpages) && self.may_expand_vm(oldflags, nrpages) {
                return Err(Errno::ENOMEM);
            }
            let unaccounted =
                VmFlags::ACCOUNT | VmFlags::WRITE | VmFlags::HUGETLB | VmFlags::SHARED | VmFlags::NORESERVE;
            if !oldflags.intersects(unaccounted) {
                if !self.vm_enough_memory(nrpages) {
                    return Err(Errno::ENOMEM);
                }
                newflags |= VmFlags::ACCOUNT;
            }
        } else if oldflags.contains(VmFlags::ACCOUNT) && unfaulted_anon {
            // An unfaulted anonymous VMA made non-writable gives its commitment back.
            newflags.remove(VmFlags::ACCOUNT);
        }
        let target = self.vma_modify(vma_handle, start, end, newflags)?;
        let t = self.tree.vma_mut(target).expect("modified VMA");
        t.flags = newflags | (t.flags & VmFlags::STICKY);
        t.page_prot = crate::driver::PageProt::from_flags(newflags);
        let result_end = t.end;
        self.counters.account(oldflags, -(nrpages as i64));
        self.counters.account(newflags, nrpages as i64);
        // A private locked VMA becoming writable is faulted in for writing now.
        if oldflags.0 & (VmFlags::WRITE | VmFlags::SHARED | VmFlags::LOCKED).0 == VmFlags::LOCKED.0
            && newflags.contains(VmFlags::WRITE)
        {
            let _ = self.mm_populate(start, end - start, true);
        }
        Ok(result_end)
    }
}
