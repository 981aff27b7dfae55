//! mmap (Linux: `ksys_mmap_pgoff` → `do_mmap` → `mmap_region` → `__mmap_region`).

use crate::AddressSpace;
use crate::addr::{PAGE_MASK, PAGE_SHIFT, page_align};
use crate::driver::{
    DriverBug, LegacyVma, MmapAction, MmapActionKind, MmapHook, OpenFile, PageProt, PrivateData, VmAreaDesc,
    VmOperations,
};
use crate::drivers;
use crate::errno::{Errno, SysResult};
use crate::flags::{VmFlags, map, prot, seal};
use crate::hugetlb::{HugeSize, HugetlbInode};
use crate::merge::Vmg;
use crate::munmap::Detached;
use crate::vma::Vma;
use std::sync::Arc;

/// What a successful `mmap_region` asks of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Populate {
    No,
    Yes,
}

/// What the mapping hook decided (`struct mmap_state`'s user-defined fields).
struct HookOutput {
    vm_ops: Option<Arc<VmOperations>>,
    private_data: Option<PrivateData>,
    action: MmapAction,
}

impl AddressSpace {
    /// `mmap(addr, len, prot, flags, fd, offset)`.
    ///
    /// Linux: x86's `sys_mmap` → `ksys_mmap_pgoff()` → `vm_mmap_pgoff()`. Returns the address
    /// mapped, which may lie inside a larger VMA when the new range merged with a neighbour.
    /// As the syscall does, it returns a `MAP_FIXED` address in the last page of the 64-bit
    /// space unchanged and maps nothing (`IS_ERR_VALUE`): callers of the raw ABI read such a
    /// value as an error number, as `vmaspace_trace::Outcome::from_raw` does.
    pub fn mmap(&mut self, addr: u64, len: u64, prot: u64, flags: u64, fd: i64, offset: u64) -> SysResult {
        if offset & !PAGE_MASK != 0 {
            return Err(Errno::EINVAL);
        }
        let pgoff = offset >> PAGE_SHIFT;
        let (file, len) = self.mmap_file(fd, len, flags)?;
        let (addr, populate) = self.do_mmap(file, addr, len, prot, flags, pgoff)?;
        if populate == Populate::Yes {
            // vm_mmap_pgoff(): population errors are ignored.
            let len = page_align(len).unwrap_or(len);
            let _ = self.mm_populate(addr, len, true);
        }
        Ok(addr)
    }

    /// Linux: `ksys_mmap_pgoff()`: the file to map, and the length as hugetlbfs rounds it.
    /// `MAP_ANONYMOUS|MAP_HUGETLB` maps a new, unlinked hugetlbfs file of the page size the
    /// `MAP_HUGE_*` bits name; a hugetlbfs file needs no `MAP_HUGETLB`, any other refuses it.
    fn mmap_file(&mut self, fd: i64, len: u64, flags: u64) -> Result<(Option<Arc<OpenFile>>, u64), Errno> {
        // ALIGN() wraps to 0 on overflow, which do_mmap() then refuses.
        let huge_len = |size: HugeSize| size.align_up(len).unwrap_or(0);
        if flags & map::ANONYMOUS == 0 {
            let f = self.fd_file(fd)?;
            let len = match (HugetlbInode::page_size_of(&f), flags & map::HUGETLB != 0) {
                (Some(size), _) => huge_len(size),
                (None, true) => return Err(Errno::EINVAL),
                (None, false) => len,
            };
            return Ok((Some(f), len));
        }
        if flags & map::HUGETLB == 0 {
            return Ok((None, len));
        }
        let size = HugeSize::from_log((flags >> map::HUGE_SHIFT) & map::HUGE_MASK).ok_or(Errno::EINVAL)?;
        let len = huge_len(size);
        // hugetlb_file_setup(HUGETLB_ANON_FILE, len, VM_NORESERVE, ...): nothing reserved
        // yet; the mapping reserves.
        let inode = drivers::hugetlbfs::hugetlb_file_setup(
            self.vfs.as_ref(),
            self.vfs.hugepages(),
            size,
            b"/anon_hugepage",
            len,
        );
        Ok((Some(self.vfs.open_inode(inode, crate::driver::FMode { read: true, write: true })), len))
    }

    /// Linux: `do_mmap()`: validation and flag computation, in Linux's order.
    fn do_mmap(
        &mut self,
        file: Option<Arc<OpenFile>>,
        mut addr: u64,
        len: u64,
        prot: u64,
        mut flags: u64,
        mut pgoff: u64,
    ) -> Result<(u64, Populate), Errno> {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        if flags & map::FIXED_NOREPLACE != 0 {
            flags |= map::FIXED;
        }
        if flags & map::FIXED == 0 {
            addr = self.round_hint_to_min(addr);
        }
        let len = match page_align(len) {
            Some(l) if l != 0 => l,
            _ => return Err(Errno::ENOMEM),
        };
        if pgoff.checked_add(len >> PAGE_SHIFT).is_none() {
            return Err(Errno::EOVERFLOW);
        }
        if self.map_count() > self.settings.max_map_count {
            return Err(Errno::ENOMEM);
        }
        let pkey = if prot == prot::EXEC { self.execute_only_pkey() } else { 0 };
        let mut vm_flags = calc_vm_prot_bits(prot, pkey)
            | calc_vm_flag_bits(flags)
            | self.def_flags
            | VmFlags::MAYREAD
            | VmFlags::MAYWRITE
            | VmFlags::MAYEXEC;
        addr = self.get_unmapped_area(file.as_ref(), addr, len, pgoff, flags, vm_flags)?;
        // do_mmap(): `if (IS_ERR_VALUE(addr)) return addr;` (see `get_unmapped_area`).
        if crate::placement::is_err_value(addr) {
            return Ok((addr, Populate::No));
        }
        if flags & map::FIXED_NOREPLACE != 0 && self.tree.find_intersection(addr, addr + len).is_some() {
            return Err(Errno::EEXIST);
        }
        if flags & map::LOCKED != 0 && !self.can_do_mlock() {
            return Err(Errno::EPERM);
        }
        if !self.mm_info().mlock_future_ok(vm_flags, len >> PAGE_SHIFT) {
            return Err(Errno::EAGAIN);
        }
        match &file {
            Some(f) => self.check_file_mapping(f, prot, &mut flags, &mut vm_flags, pgoff, len)?,
            None => match flags & map::TYPE {
                map::SHARED => {
                    if vm_flags.intersects(VmFlags::GROWSDOWN) {
                        return Err(Errno::EINVAL);
                    }
                    pgoff = 0;
                    vm_flags |= VmFlags::SHARED | VmFlags::MAYSHARE;
                }
                map::DROPPABLE | map::PRIVATE => {
                    if flags & map::TYPE == map::DROPPABLE {
                        if flags & (map::LOCKED | map::HUGETLB) != 0 || vm_flags.intersects(VmFlags::GROWSDOWN) {
                            return Err(Errno::EINVAL);
                        }
                        vm_flags |= VmFlags::DROPPABLE | VmFlags::NORESERVE | VmFlags::WIPEONFORK | VmFlags::DONTDUMP;
                    }
                    pgoff = addr >> PAGE_SHIFT;
                }
                _ => return Err(Errno::EINVAL),
            },
        }
        if flags & map::NORESERVE != 0 {
            // Honoured unless vm.overcommit_memory is 2 (never), which the model does not have;
            // hugetlbfs files always honour it.
            vm_flags |= VmFlags::NORESERVE;
        }
        let addr = self.mmap_region(file, addr, len, vm_flags, pgoff)?;
        let populate = vm_flags.contains(VmFlags::LOCKED) || flags & (map::POPULATE | map::NONBLOCK) == map::POPULATE;
        Ok((addr, if populate { Populate::Yes } else { Populate::No }))
    }

    /// Linux: `round_hint_to_min()`.
    fn round_hint_to_min(&self, hint: u64) -> u64 {
        let hint = hint & PAGE_MASK;
        let min = self.settings.effective_mmap_min_addr();
        if hint != 0 && hint < min { page_align(min).unwrap_or(min) } else { hint }
    }

    /// Linux: `can_do_mlock()`.
    pub(crate) fn can_do_mlock(&self) -> bool {
        self.settings.rlimit_memlock != 0 || self.settings.cap_ipc_lock
    }

    /// The file leg of `do_mmap()`: open modes, map type, hooks, seals.
    fn check_file_mapping(
        &mut self,
        f: &Arc<OpenFile>,
        prot: u64,
        flags: &mut u64,
        vm_flags: &mut VmFlags,
        pgoff: u64,
        len: u64,
    ) -> Result<(), Errno> {
        if !file_mmap_ok(f, pgoff, len) {
            return Err(Errno::EOVERFLOW);
        }
        let mut mask = map::LEGACY_MASK;
        if f.ops.mmap_sync {
            mask |= map::SYNC;
        }
        let map_type = *flags & map::TYPE;
        if map_type == map::SHARED {
            // Unknown flags are silently dropped with plain MAP_SHARED.
            *flags &= map::LEGACY_MASK;
        }
        if map_type == map::SHARED || map_type == map::SHARED_VALIDATE {
            if *flags & !mask != 0 {
                return Err(Errno::EOPNOTSUPP);
            }
            if prot & prot::WRITE != 0 && !f.mode.write {
                return Err(Errno::EACCES);
            }
            *vm_flags |= VmFlags::SHARED | VmFlags::MAYSHARE;
            if !f.mode.write {
                vm_flags.remove(VmFlags::MAYWRITE | VmFlags::SHARED);
            }
        } else if map_type != map::PRIVATE {
            return Err(Errno::EINVAL);
        }
        if !f.mode.read {
            return Err(Errno::EACCES);
        }
        // path_noexec()
        if f.inode.sb.noexec {
            if vm_flags.contains(VmFlags::EXEC) {
                return Err(Errno::EPERM);
            }
            vm_flags.remove(VmFlags::MAYEXEC);
        }
        if let Err(e) = &f.ops.hook {
            if *e == crate::driver::HookTableError::Both {
                self.report_bug(DriverBug::BothHooks { file: f.ops.label });
            }
            return Err(Errno::ENODEV);
        }
        if vm_flags.intersects(VmFlags::GROWSDOWN) {
            return Err(Errno::EINVAL);
        }
        // memfd_check_seals_mmap()
        let seals = f.inode.state().seals;
        if f.inode.sealable && seals & (seal::WRITE | seal::FUTURE_WRITE) != 0 {
            if vm_flags.contains(VmFlags::SHARED | VmFlags::WRITE) {
                return Err(Errno::EPERM);
            }
            if vm_flags.contains(VmFlags::SHARED) {
                vm_flags.remove(VmFlags::MAYWRITE);
            }
        }
        Ok(())
    }

    pub(crate) fn report_bug(&mut self, bug: DriverBug) {
        if !self.bugs.contains(&bug) {
            self.bugs.push(bug);
        }
    }

    /// Linux: `__mmap_region()`: unmaps what a `MAP_FIXED` mapping overlaps, runs the
    /// mapping hook, merges or creates the VMA, and accounts it. Failures leave what Linux
    /// leaves (see `vms_abort_munmap_vmas`).
    fn mmap_region(
        &mut self,
        mut file: Option<Arc<OpenFile>>,
        addr: u64,
        len: u64,
        mut vm_flags: VmFlags,
        mut pgoff: u64,
    ) -> SysResult {
        let end = addr + len;
        let pglen = len >> PAGE_SHIFT;
        let hook = file.as_ref().and_then(|f| f.ops.hook.clone().ok());
        // __mmap_setup(): gather the overlapped VMAs, check limits, account.
        let mut detached = if self.tree.find_intersection(addr, end).is_some() {
            self.gather_munmap_vmas(addr, end)?
        } else {
            Detached::default()
        };
        if !self.may_expand_vm(vm_flags, pglen - detached.nr_pages) {
            self.abort_munmap(detached);
            return Err(Errno::ENOMEM);
        }
        if accountable_mapping(file.as_ref(), vm_flags) {
            let charged = pglen - detached.nr_accounted;
            if charged != 0 && !self.vm_enough_memory(charged) {
                self.abort_munmap(detached);
                return Err(Errno::ENOMEM);
            }
            vm_flags |= VmFlags::ACCOUNT;
        }
        self.clean_up_area(&mut detached);
        let mut page_prot = PageProt::from_flags(vm_flags);
        let mut user = HookOutput { vm_ops: None, private_data: None, action: MmapAction::default() };
        if let (Some(MmapHook::Prepare(h)), Some(f)) = (&hook, &file) {
            let mut desc = VmAreaDesc::new(self.mm_info(), f, addr, end, pgoff, vm_flags);
            if let Err(e) = h.mmap_prepare(&mut desc) {
                self.abort_munmap(detached);
                return Err(e);
            }
            let out = desc.into_output();
            pgoff = out.pgoff;
            file = Some(out.vm_file);
            vm_flags = out.vm_flags;
            page_prot = out.page_prot;
            // mmap_action_prepare(): a remap makes the mapping special before the merge.
            if let MmapActionKind::RemapPfn { pfn, .. } | MmapActionKind::IoRemapPfn { pfn, .. } = out.action.kind {
                if vm_flags.0 & (VmFlags::SHARED | VmFlags::MAYWRITE).0 == VmFlags::MAYWRITE.0 {
                    pgoff = pfn;
                }
                vm_flags |= VmFlags::REMAP_FLAGS;
            }
            user = HookOutput { vm_ops: out.vm_ops, private_data: out.private_data, action: out.action };
        }
        let vmg = Vmg::new_range(addr, end, pgoff, vm_flags, file.clone());
        let merged = self.vma_merge_new_range(&vmg);
        let allocated_new = merged.is_none();
        let vma_start = match merged {
            Some(s) => s,
            None => match self.mmap_new_vma(file, hook.as_ref(), addr, end, pgoff, vm_flags, page_prot) {
                Ok(s) => s,
                Err(e) => {
                    self.abort_munmap(detached);
                    return Err(e);
                }
            },
        };
        let vma = self.tree.get_mut(vma_start).expect("mapped VMA");
        if matches!(hook, Some(MmapHook::Prepare(_))) {
            // set_vma_user_defined_fields(): on the new or the merged VMA.
            if user.vm_ops.is_some() {
                vma.ops = user.vm_ops;
            }
            vma.set_private_data(user.private_data);
        }
        let flags = vma.flags;
        // __mmap_complete(): these cannot be locked. (Droppable memory too, as measured on
        // 6.18.44: mlockall(MCL_FUTURE) leaves MAP_DROPPABLE mappings unlocked.)
        let unlockable = VmFlags::SPECIAL | VmFlags::HUGETLB | VmFlags::DROPPABLE;
        if flags.contains(VmFlags::LOCKED) && flags.intersects(unlockable) {
            vma.flags.remove(VmFlags::LOCKED_MASK);
        }
        // __mmap_complete()
        self.complete_munmap_vmas(detached);
        self.counters.account(flags, pglen as i64);
        if flags.contains(VmFlags::LOCKED) && !flags.intersects(unlockable) {
            self.counters.locked_vm += pglen;
        }
        if allocated_new && matches!(hook, Some(MmapHook::Prepare(_))) {
            self.mmap_action_complete(vma_start, &user.action)?;
        }
        Ok(addr)
    }

    /// Linux 6.19: `mmap_action_complete()`: performs the deferred remap on the new VMA, then
    /// runs the hooks. A failed remap unmaps the VMA; a failing success hook leaves it mapped.
    fn mmap_action_complete(&mut self, vma_start: u64, action: &MmapAction) -> Result<(), Errno> {
        let vma = self.tree.get(vma_start).expect("new VMA").clone();
        if let MmapActionKind::RemapPfn { start, size, .. } | MmapActionKind::IoRemapPfn { start, size, .. } =
            action.kind
        {
            let cow = vma.flags.0 & (VmFlags::SHARED | VmFlags::MAYWRITE).0 == VmFlags::MAYWRITE.0;
            let inside = start >= vma.start && start.checked_add(size).is_some_and(|e| e <= vma.end);
            let whole = start == vma.start && size == vma.end - vma.start;
            if !inside || (cow && !whole) {
                let _ = self.munmap(vma.start, vma.end - vma.start);
                let err = action.error_hook.as_ref().map_or(Errno::EINVAL, |h| h(Errno::EINVAL));
                return Err(err);
            }
            self.map_pfn_pages(start, size);
        }
        match &action.success_hook {
            Some(h) => h(&vma.view()),
            None => Ok(()),
        }
    }

    /// Frames mapped by `remap_pfn_range`: present, and counted nowhere in smaps.
    pub(crate) fn map_pfn_pages(&mut self, start: u64, size: u64) {
        let mut p = start;
        self.begin_page_walk();
        while p < start + size && self.page_step() {
            self.pages.insert(p, crate::Page::Pfn);
            p += crate::addr::PAGE_SIZE;
        }
    }

    /// Linux: `vms_abort_munmap_vmas()`: puts the overlapped VMAs back if their pages are
    /// still there, and otherwise completes the unmap, leaving a hole.
    fn abort_munmap(&mut self, d: Detached) {
        if d.nr_pages == 0 {
            return;
        }
        if d.cleaned_up {
            self.complete_munmap_vmas(d);
        } else {
            self.reattach(d);
        }
    }

    /// Linux: `__mmap_new_vma()`: a new VMA for the range, with the legacy hook run on it or
    /// shared anonymous memory set up.
    #[allow(clippy::too_many_arguments)]
    fn mmap_new_vma(
        &mut self,
        file: Option<Arc<OpenFile>>,
        hook: Option<&MmapHook>,
        start: u64,
        end: u64,
        pgoff: u64,
        flags: VmFlags,
        page_prot: PageProt,
    ) -> Result<u64, Errno> {
        let mut vma = Vma::new(start, end, pgoff, flags);
        vma.page_prot = page_prot;
        match (file, hook) {
            (Some(f), Some(MmapHook::Legacy(h))) => self.call_legacy_mmap(&mut vma, f, h.as_ref())?,
            (Some(f), _) => {
                vma.file = Some(f);
                vma.ops = Some(crate::driver::dummy_vm_ops());
            }
            (None, _) if flags.contains(VmFlags::SHARED) => {
                let (f, ops) =
                    drivers::shmem::shmem_zero_setup(self.vfs.as_ref(), &self.mm_info(), end - start, flags)?;
                vma.file = Some(f);
                vma.ops = Some(ops);
            }
            (None, _) => {}
        }
        self.tree.insert(vma);
        Ok(start)
    }

    /// Runs a legacy `.mmap` on the new VMA and applies Linux's post-checks.
    fn call_legacy_mmap(
        &mut self,
        vma: &mut Vma,
        f: Arc<OpenFile>,
        h: &dyn crate::driver::LegacyMmap,
    ) -> Result<(), Errno> {
        let label = f.ops.label;
        let vfs = self.vfs.clone();
        let mut l = LegacyVma {
            start: vma.start,
            end: vma.end,
            pgoff: vma.pgoff,
            flags: vma.flags,
            page_prot: vma.page_prot,
            vm_file: Some(f),
            vm_ops: Some(crate::driver::dummy_vm_ops()),
            private_data: None,
            vfs: vfs.as_ref(),
            mm: self.mm_info(),
            remapped: Vec::new(),
        };
        h.mmap(&mut l)?;
        if l.start != vma.start {
            self.report_bug(DriverBug::ChangedStart { file: label, from: vma.start, to: l.start });
        }
        if l.flags != vma.flags && !vma.flags.contains(VmFlags::MAYWRITE) && l.flags.contains(VmFlags::MAYWRITE) {
            self.report_bug(DriverBug::AddedMayWrite { file: label });
        }
        // The tree slot was fixed before the hook ran: the VMA keeps its range.
        vma.pgoff = l.pgoff;
        vma.flags = l.flags;
        vma.page_prot = l.page_prot;
        vma.file = l.vm_file;
        vma.ops = l.vm_ops;
        vma.set_private_data(l.private_data);
        for (start, size) in l.remapped {
            self.map_pfn_pages(start, size);
        }
        Ok(())
    }

    /// Linux: `may_expand_vm()`.
    pub(crate) fn may_expand_vm(&self, flags: VmFlags, npages: u64) -> bool {
        let s = &self.settings;
        if self.counters.total_vm + npages > s.rlimit_as >> PAGE_SHIFT {
            return false;
        }
        !(flags.is_data() && self.counters.data_vm + npages > s.rlimit_data >> PAGE_SHIFT)
    }

    /// Linux: `security_vm_enough_memory_mm()` → `__vm_enough_memory()`.
    pub(crate) fn vm_enough_memory(&self, pages: u64) -> bool {
        self.mm_info().vm_enough_memory(pages)
    }

    /// Linux: x86's `execute_only_pkey()`: the pkey that makes `PROT_EXEC` mappings
    /// execute-only, allocated on first use (none without protection keys).
    pub(crate) fn execute_only_pkey(&mut self) -> u32 {
        if !self.settings.pkeys {
            return 0;
        }
        if let Some(k) = self.pkeys.execute_only {
            return k;
        }
        match self.pkeys.alloc() {
            Some(k) => {
                self.pkeys.execute_only = Some(k);
                self.pkeys.deny_access(k);
                k
            }
            None => 0,
        }
    }
}

/// Linux: `calc_vm_prot_bits()`, with x86's pkey bits.
pub(crate) fn calc_vm_prot_bits(prot: u64, pkey: u32) -> VmFlags {
    let mut f = VmFlags(prot & (prot::READ | prot::WRITE | prot::EXEC));
    f.0 |= u64::from(pkey & 0xf) << 32;
    f
}

/// Linux: `calc_vm_flag_bits()` (x86_64 with THP: `MAP_STACK` means `VM_NOHUGEPAGE`).
fn calc_vm_flag_bits(flags: u64) -> VmFlags {
    let mut f = VmFlags::NONE;
    for (m, v) in [
        (map::GROWSDOWN, VmFlags::GROWSDOWN),
        (map::LOCKED, VmFlags::LOCKED),
        (map::SYNC, VmFlags::SYNC),
        (map::STACK, VmFlags::NOHUGEPAGE),
    ] {
        if flags & m != 0 {
            f |= v;
        }
    }
    f
}

/// Linux: `accountable_mapping()`: hugetlbfs pages are accounted by their own pools.
fn accountable_mapping(file: Option<&Arc<OpenFile>>, flags: VmFlags) -> bool {
    file.is_none_or(|f| HugetlbInode::page_size_of(f).is_none())
        && flags.0 & (VmFlags::NORESERVE | VmFlags::SHARED | VmFlags::WRITE).0 == VmFlags::WRITE.0
}

/// Linux: `file_mmap_ok()`: the range must fit in the file's maximum size.
fn file_mmap_ok(f: &OpenFile, pgoff: u64, len: u64) -> bool {
    // file_mmap_size_max(): MAX_LFS_FILESIZE for regular files; ULONG_MAX for devices.
    let max: u64 = if f.inode.is_regular() { crate::driver::SuperBlock::MAX_LFS_FILESIZE } else { u64::MAX };
    if len > max {
        return false;
    }
    pgoff <= (max - len) >> PAGE_SHIFT
}
