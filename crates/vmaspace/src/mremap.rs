//! mremap (Linux 6.18: mm/mremap.c, `struct vma_remap_struct`).

use crate::AddressSpace;
use crate::addr::{PAGE_SHIFT, is_page_aligned, page_align_wrapping};
use crate::errno::{Errno, SysResult};
use crate::flags::{VmFlags, map};
use crate::merge::Vmg;

use crate::flags::mremap::{DONTUNMAP, FIXED, MAYMOVE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RemapType {
    NoResize,
    Shrink,
    Expand,
}

/// `struct vma_remap_struct`.
#[derive(Debug, Clone, Copy)]
struct Vrm {
    addr: u64,
    old_len: u64,
    new_len: u64,
    flags: u64,
    new_addr: u64,
    delta: u64,
    remap_type: RemapType,
    /// The start of the VMA being remapped.
    vma: u64,
    populate_expand: bool,
}

impl Vrm {
    fn implies_new_addr(&self) -> bool {
        self.flags & (FIXED | DONTUNMAP) != 0
    }
    fn will_map_new(&self) -> bool {
        self.remap_type == RemapType::Expand || self.implies_new_addr()
    }
}

/// Linux: `align_hugetlb()`: both lengths rounded up to the huge page size; the addresses
/// (the new one even when it is not used) must be aligned, and the mapping may not grow.
fn align_hugetlb(vrm: &mut Vrm, size: u64) -> bool {
    let align = |x: u64| x.wrapping_add(size - 1) & !(size - 1);
    vrm.old_len = align(vrm.old_len);
    vrm.new_len = align(vrm.new_len);
    vrm.addr & (size - 1) == 0 && vrm.new_addr & (size - 1) == 0 && vrm.new_len <= vrm.old_len
}

impl AddressSpace {
    /// `mremap(addr, old_len, new_len, flags, new_addr)`.
    ///
    /// Linux: `do_mremap()`.
    pub fn mremap(&mut self, addr: u64, old_len: u64, new_len: u64, flags: u64, new_addr: u64) -> SysResult {
        let mut vrm = Vrm {
            addr,
            old_len: page_align_wrapping(old_len),
            new_len: page_align_wrapping(new_len),
            flags,
            new_addr,
            delta: 0,
            remap_type: RemapType::NoResize,
            vma: 0,
            populate_expand: false,
        };
        self.check_mremap_params(&vrm)?;
        let res = if flags & FIXED != 0 && vrm.old_len == vrm.new_len {
            self.remap_move(&mut vrm)
        } else {
            self.check_prep_vma(&mut vrm)
                .and_then(|()| if vrm.implies_new_addr() { self.mremap_to(&mut vrm) } else { self.mremap_at(&mut vrm) })
        };
        if res.is_ok() && vrm.populate_expand {
            let _ = self.mm_populate(vrm.new_addr + vrm.old_len, vrm.delta, true);
        }
        res
    }

    /// Linux: `check_mremap_params()`.
    fn check_mremap_params(&self, vrm: &Vrm) -> Result<(), Errno> {
        let task_size = self.settings.task_size;
        if vrm.flags & !(FIXED | MAYMOVE | DONTUNMAP) != 0 || !is_page_aligned(vrm.addr) {
            return Err(Errno::EINVAL);
        }
        if vrm.new_len == 0 || vrm.new_len > task_size {
            return Err(Errno::EINVAL);
        }
        if !vrm.implies_new_addr() {
            return Ok(());
        }
        if vrm.new_addr > task_size - vrm.new_len || !is_page_aligned(vrm.new_addr) {
            return Err(Errno::EINVAL);
        }
        if vrm.flags & MAYMOVE == 0 || (vrm.flags & DONTUNMAP != 0 && vrm.old_len != vrm.new_len) {
            return Err(Errno::EINVAL);
        }
        let (end_old, end_new) = (vrm.addr.wrapping_add(vrm.old_len), vrm.new_addr + vrm.new_len);
        if end_old > vrm.new_addr && end_new > vrm.addr {
            return Err(Errno::EINVAL);
        }
        if self.map_count() + 2 >= self.settings.max_map_count.saturating_sub(3) {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// Linux: `check_prep_vma()`.
    fn check_prep_vma(&mut self, vrm: &mut Vrm) -> Result<(), Errno> {
        let vma = self.tree.vma_lookup(vrm.addr).ok_or(Errno::EFAULT)?.clone();
        vrm.vma = vma.start;
        if vma.is_sealed() {
            return Err(Errno::EPERM);
        }
        if vma.flags.contains(VmFlags::HUGETLB) && !align_hugetlb(vrm, crate::fault::vma_page_size(&vma)) {
            return Err(Errno::EINVAL);
        }
        vrm.delta = vrm.old_len.abs_diff(vrm.new_len);
        vrm.remap_type = match vrm.old_len.cmp(&vrm.new_len) {
            std::cmp::Ordering::Equal => RemapType::NoResize,
            std::cmp::Ordering::Greater => RemapType::Shrink,
            std::cmp::Ordering::Less => RemapType::Expand,
        };
        if !vrm.implies_new_addr() {
            vrm.new_addr = vrm.addr;
        }
        if !vrm.will_map_new() {
            return Ok(());
        }
        let f = vma.flags;
        if vrm.old_len == 0 && !f.intersects(VmFlags::SHARED | VmFlags::MAYSHARE) {
            return Err(Errno::EINVAL);
        }
        if vrm.flags & DONTUNMAP != 0 && f.intersects(VmFlags::DONTEXPAND | VmFlags::PFNMAP) {
            return Err(Errno::EINVAL);
        }
        let old_len = if vrm.remap_type == RemapType::Shrink { vrm.new_len } else { vrm.old_len };
        if old_len > vma.end - vrm.addr {
            return Err(Errno::EFAULT);
        }
        if vrm.new_len == old_len {
            return Ok(());
        }
        if f.contains(VmFlags::LOCKED) {
            vrm.populate_expand = true;
        }
        let pgoff = vma.pgoff_at(vrm.addr);
        if pgoff.checked_add(vrm.new_len >> PAGE_SHIFT).is_none() {
            return Err(Errno::EINVAL);
        }
        if f.intersects(VmFlags::DONTEXPAND | VmFlags::PFNMAP) {
            return Err(Errno::EFAULT);
        }
        if !self.mm_info().mlock_future_ok(f, vrm.delta >> PAGE_SHIFT) {
            return Err(Errno::EAGAIN);
        }
        if !self.may_expand_vm(f, vrm.delta >> PAGE_SHIFT) {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// Linux: `mremap_at()`: resize where the mapping is, moving only to grow.
    fn mremap_at(&mut self, vrm: &mut Vrm) -> SysResult {
        match vrm.remap_type {
            RemapType::NoResize => Ok(vrm.addr),
            RemapType::Shrink => {
                self.munmap(vrm.addr + vrm.new_len, vrm.delta)?;
                Ok(vrm.addr)
            }
            RemapType::Expand => self.expand_vma(vrm),
        }
    }

    /// Linux: `expand_vma()`.
    fn expand_vma(&mut self, vrm: &mut Vrm) -> SysResult {
        if self.can_expand_in_place(vrm) {
            let vma = self.tree.get(vrm.vma).expect("VMA").clone();
            if !self.vrm_charge(vrm, &vma.flags) {
                return Err(Errno::ENOMEM);
            }
            let merged = self.vma_merge_extend(vrm.vma, vrm.delta).ok_or(Errno::ENOMEM)?;
            vrm.vma = merged;
            self.vrm_stat_account(vma.flags, vrm.delta);
            return Ok(vrm.addr);
        }
        if vrm.flags & MAYMOVE == 0 {
            return Err(Errno::ENOMEM);
        }
        self.vrm_set_new_addr(vrm)?;
        self.move_vma(vrm)
    }

    /// Linux: `vrm_can_expand_in_place()` / `vma_expandable()`.
    fn can_expand_in_place(&self, vrm: &Vrm) -> bool {
        let vma = self.tree.get(vrm.vma).expect("VMA");
        if vma.end - vrm.addr != vrm.old_len {
            return false;
        }
        let Some(end) = vma.end.checked_add(vrm.delta) else { return false };
        if self.tree.find_intersection(vma.end, end).is_some() {
            return false;
        }
        self.get_unmapped_area(None, vma.start, end - vma.start, 0, map::FIXED, VmFlags::NONE).is_ok()
    }

    /// Linux: `vrm_calc_charge()`: an accounted VMA commits what it grows by (all of it when
    /// the old mapping stays, with `MREMAP_DONTUNMAP`).
    fn vrm_charge(&self, vrm: &Vrm, flags: &VmFlags) -> bool {
        if !flags.contains(VmFlags::ACCOUNT) {
            return true;
        }
        let charged = if vrm.flags & DONTUNMAP != 0 { vrm.new_len } else { vrm.delta } >> PAGE_SHIFT;
        self.vm_enough_memory(charged)
    }

    /// Linux: `vrm_stat_account()`.
    fn vrm_stat_account(&mut self, flags: VmFlags, bytes: u64) {
        let pages = bytes >> PAGE_SHIFT;
        self.counters.account(flags, pages as i64);
        if flags.contains(VmFlags::LOCKED) {
            self.counters.locked_vm += pages;
        }
    }

    /// Linux: `vrm_set_new_addr()`.
    fn vrm_set_new_addr(&mut self, vrm: &mut Vrm) -> Result<(), Errno> {
        let vma = self.tree.get(vrm.vma).expect("VMA").clone();
        let pgoff = vma.pgoff_at(vrm.addr);
        let hint = if vrm.implies_new_addr() { vrm.new_addr } else { 0 };
        let mut map_flags = 0;
        if vrm.flags & FIXED != 0 {
            map_flags |= map::FIXED;
        }
        if vma.flags.contains(VmFlags::MAYSHARE) {
            map_flags |= map::SHARED;
        }
        vrm.new_addr = self.get_unmapped_area(vma.file.as_ref(), hint, vrm.new_len, pgoff, map_flags, VmFlags::NONE)?;
        Ok(())
    }

    /// Linux: `mremap_to()`: move to `new_addr` (or, with only `MREMAP_DONTUNMAP`, near it).
    fn mremap_to(&mut self, vrm: &mut Vrm) -> SysResult {
        if vrm.flags & FIXED != 0 {
            self.munmap(vrm.new_addr, vrm.new_len)?;
            vrm.vma = self.tree.vma_lookup(vrm.addr).ok_or(Errno::EFAULT)?.start;
        }
        if vrm.remap_type == RemapType::Shrink {
            self.munmap(vrm.addr + vrm.new_len, vrm.delta)?;
            vrm.vma = self.tree.vma_lookup(vrm.addr).ok_or(Errno::EFAULT)?.start;
            vrm.old_len = vrm.new_len;
        }
        if vrm.flags & DONTUNMAP != 0 {
            let flags = self.tree.get(vrm.vma).expect("VMA").flags;
            if !self.may_expand_vm(flags, vrm.old_len >> PAGE_SHIFT) {
                return Err(Errno::ENOMEM);
            }
        }
        self.vrm_set_new_addr(vrm)?;
        self.move_vma(vrm)
    }

    /// Linux: `move_vma()`: copy the VMA to the new place (merging there if it can), move the
    /// pages, then unmap the source (or, with `MREMAP_DONTUNMAP`, keep it empty).
    fn move_vma(&mut self, vrm: &mut Vrm) -> SysResult {
        if self.map_count() >= self.settings.max_map_count.saturating_sub(3) {
            return Err(Errno::ENOMEM);
        }
        let vma = self.tree.get(vrm.vma).expect("VMA").clone();
        if let Some(may_split) = vma.ops.as_ref().and_then(|o| o.may_split.clone()) {
            if vma.start != vrm.addr {
                may_split(&vma.view(), vrm.addr)?;
            }
            if vma.end != vrm.addr + vrm.old_len {
                may_split(&vma.view(), vrm.addr + vrm.old_len)?;
            }
        }
        if !self.vrm_charge(vrm, &vma.flags) {
            return Err(Errno::ENOMEM);
        }
        let new_vma = self.copy_vma(vrm.vma, vrm.new_addr, vrm.new_len, vma.pgoff_at(vrm.addr));
        self.move_pages(vrm.addr, vrm.new_addr, vrm.old_len);
        self.vrm_stat_account(vma.flags, vrm.new_len);
        // fixup_hugetlb_reservations(): the reservations went with the copy; unmapping the
        // source must not give them back.
        if vma.flags.contains(VmFlags::HUGETLB) {
            self.tree.get_mut(vrm.vma).expect("source VMA").set_private_data(None);
        }
        if vrm.flags & DONTUNMAP != 0 {
            self.dontunmap_complete(vrm, new_vma);
        } else {
            self.unmap_source_vma(vrm);
        }
        Ok(vrm.new_addr)
    }

    /// Linux: `copy_vma()`: the destination VMA, merged with a neighbour where possible. An
    /// anonymous VMA never faulted takes the pgoff of its new address. Returns its start.
    pub(crate) fn copy_vma(&mut self, vma_start: u64, addr: u64, len: u64, pgoff: u64) -> u64 {
        let vma = self.tree.get(vma_start).expect("VMA").clone();
        let pgoff = if vma.is_anonymous() && vma.anon_vma.is_none() { addr >> PAGE_SHIFT } else { pgoff };
        // VMG_VMA_STATE of the source for the new range, with no middle.
        let mut vmg = Vmg::new_range(addr, addr + len, pgoff, vma.flags, vma.file.clone());
        vmg.anon_vma = vma.anon_vma;
        vmg.anon_name = vma.anon_name().cloned();
        if let Some(merged) = self.vma_merge_new_range(&vmg) {
            if !vma.pages_exact {
                self.tree.get_mut(merged).expect("merged VMA").pages_exact = false;
            }
            return merged;
        }
        let mut new = vma.clone();
        new.start = addr;
        new.end = addr + len;
        new.pgoff = pgoff;
        if let Some(open) = new.ops.as_ref().and_then(|o| o.open.clone()) {
            open(&new.view());
        }
        self.tree.insert(new);
        addr
    }

    /// `move_page_tables()`: the pages of `[from, from+len)` now live at `to`.
    fn move_pages(&mut self, from: u64, to: u64, len: u64) {
        let moved = self.pages.take_range(from, from + len);
        self.pages.put_runs(moved, to.wrapping_sub(from));
    }

    /// Linux: `dontunmap_complete()`: the source stays, unlocked, and loses its anon_vma when
    /// all of it moved.
    fn dontunmap_complete(&mut self, vrm: &Vrm, new_vma: u64) {
        let Some(src) = self.tree.vma_lookup(vrm.addr).map(|v| v.start) else { return };
        let v = self.tree.get_mut(src).expect("source VMA");
        // The locked pages stay counted in locked_vm, as in Linux.
        v.flags.remove(VmFlags::LOCKED_MASK);
        if new_vma != src && vrm.addr == v.start && vrm.addr + vrm.old_len == v.end {
            v.anon_vma = None;
        }
    }

    /// Linux: `unmap_source_vma()`: unmaps the old range without giving back its commitment
    /// twice: VM_ACCOUNT is taken off for the unmap and put back on what is left around it.
    fn unmap_source_vma(&mut self, vrm: &Vrm) {
        let (addr, len) = (vrm.addr, vrm.old_len);
        let Some(src) = self.tree.vma_lookup(addr).map(|v| (v.start, v.end, v.flags)) else { return };
        let (vm_start, vm_end, flags) = src;
        let accountable = flags.contains(VmFlags::ACCOUNT);
        if accountable {
            self.tree.get_mut(vm_start).expect("source").flags.remove(VmFlags::ACCOUNT);
        }
        if self.munmap(addr, len).is_err() {
            return;
        }
        if accountable {
            if vm_start < addr
                && let Some(prev) = self.tree.prev_of(addr).map(|v| v.start)
            {
                self.tree.get_mut(prev).expect("prev").flags.insert(VmFlags::ACCOUNT);
            }
            if vm_end > addr + len
                && let Some(next) = self.tree.next_from(addr + len).map(|v| v.start)
            {
                self.tree.get_mut(next).expect("next").flags.insert(VmFlags::ACCOUNT);
            }
        }
    }

    /// Linux: `remap_move()`: `MREMAP_FIXED` without resizing moves every VMA of the range,
    /// keeping the gaps between them.
    fn remap_move(&mut self, vrm: &mut Vrm) -> SysResult {
        let (start, end) = (vrm.addr, vrm.addr.wrapping_add(vrm.old_len));
        let new_addr = vrm.new_addr;
        let mut target = new_addr;
        let mut res = Err(Errno::EFAULT);
        let mut last_end = 0;
        let mut seen = false;
        let mut cursor = start;
        while let Some(vma) = self.tree.find_intersection(cursor, end).cloned() {
            if !seen && start < vma.start {
                return Err(Errno::EFAULT);
            }
            let addr = vma.start.max(start);
            let len = end.min(vma.end) - addr;
            let offset = if seen { vma.start - last_end } else { 0 };
            last_end = vma.end;
            cursor = vma.end;
            *vrm = Vrm { addr, new_addr: target + offset, old_len: len, new_len: len, vma: vma.start, ..*vrm };
            if !multi_allowed(&vma) && (seen || vma.end < end) {
                return Err(Errno::EFAULT);
            }
            self.check_prep_vma(vrm)?;
            let moved = self.mremap_to(vrm)?;
            if !seen {
                res = Ok(moved);
            }
            seen = true;
            target = moved + vrm.new_len;
            if cursor >= end {
                break;
            }
        }
        res
    }
}

/// Linux: `vma_multi_allowed()`: anonymous memory, shmem, hugetlb, and files without a
/// `get_unmapped_area` of their own or with `thp_get_unmapped_area`.
fn multi_allowed(vma: &crate::Vma) -> bool {
    let Some(f) = &vma.file else { return true };
    if crate::drivers::shmem::vma_is_shmem(vma.ops.as_ref()) || vma.flags.contains(VmFlags::HUGETLB) {
        return true;
    }
    match &f.ops.get_unmapped_area {
        None => true,
        Some(g) => (g.as_ref() as &dyn std::any::Any).is::<crate::driver::ThpPlacement>(),
    }
}
