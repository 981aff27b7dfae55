//! `Vma`: one virtual memory area and the hidden state that decides merging.

use crate::addr::{PAGE_SHIFT, pages};
use crate::driver::{OpenFile, PageProt, PrivateData, VmOperations, VmaView};
use crate::flags::VmFlags;
use std::fmt;
use std::sync::Arc;

/// The identity of an anon_vma and the shape of a VMA's anon_vma chain.
///
/// Linux links each VMA to its anon_vma through an `anon_vma_chain` list. A VMA created by fork
/// is linked to its own anon_vma and to its parent's (the chain is not "singular"); merging
/// refuses such VMAs (`vma_had_uncowed_parents`).
///
/// Both fit in one word (the label shifted left, the fork bit below it), so that a VMA's
/// `Option<AnonVmaRef>` takes eight bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AnonVmaRef(std::num::NonZeroU64);

impl AnonVmaRef {
    /// The anon_vma labelled `id` (at least 1, below 2^63), reached through a chain of more
    /// than one entry when `forked`.
    pub const fn new(id: u64, forked: bool) -> AnonVmaRef {
        match std::num::NonZeroU64::new((id << 1) | forked as u64) {
            Some(v) if id != 0 => AnonVmaRef(v),
            _ => panic!("anon_vma labels start at 1"),
        }
    }

    /// A label unique to the anon_vma in its address space.
    pub const fn id(self) -> u64 {
        self.0.get() >> 1
    }

    /// More than one entry in the anon_vma chain (the VMA was forked from a parent's).
    pub const fn forked(self) -> bool {
        self.0.get() & 1 != 0
    }
}

/// The rarely set parts of a [`Vma`].
#[derive(Clone, Default)]
pub(crate) struct VmaExtra {
    pub(crate) private_data: Option<PrivateData>,
    pub(crate) anon_name: Option<Arc<str>>,
}

/// A VMA.
///
/// # Invariants
/// * `start < end`, both page aligned.
/// * `pgoff` is the file page at `start` for file VMAs, and for private anonymous VMAs the
///   virtual page number the VMA had when it was created (kept through splits and merges
///   relative to `start`).
#[derive(Clone)]
pub struct Vma {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) pgoff: u64,
    pub(crate) flags: VmFlags,
    pub(crate) page_prot: PageProt,
    /// The open file description mapped (`vm_file`); its pointer is the merge identity.
    pub(crate) file: Option<Arc<OpenFile>>,
    /// `vm_ops`: None is an anonymous VMA (`vma_is_anonymous`).
    pub(crate) ops: Option<Arc<VmOperations>>,
    /// The parts few VMAs have (`vm_private_data`, `anon_vma_name`), behind one pointer so
    /// that the common VMA stays small.
    pub(crate) extra: Option<Box<VmaExtra>>,
    pub(crate) anon_vma: Option<AnonVmaRef>,
    /// Whether the model knows this VMA's pages exactly, so smaps may print its page counters:
    /// false for VMAs seeded from a snapshot, pages shared with a fork, and memory that
    /// khugepaged, KSM or reclaim may change behind the process's back.
    pub(crate) pages_exact: bool,
}

impl Vma {
    pub(crate) fn new(start: u64, end: u64, pgoff: u64, flags: VmFlags) -> Vma {
        Vma {
            start,
            end,
            pgoff,
            flags,
            page_prot: PageProt::from_flags(flags),
            file: None,
            ops: None,
            extra: None,
            anon_vma: None,
            pages_exact: true,
        }
    }

    /// The first address (`vm_start`).
    pub fn start(&self) -> u64 {
        self.start
    }
    /// The address after the last byte (`vm_end`).
    pub fn end(&self) -> u64 {
        self.end
    }
    /// `vm_pgoff`: the file page at `start` (for anonymous VMAs, see the invariants).
    pub fn pgoff(&self) -> u64 {
        self.pgoff
    }
    /// `vm_flags`.
    pub fn flags(&self) -> VmFlags {
        self.flags
    }
    /// `vm_file`: the open file mapped, if any.
    pub fn file(&self) -> Option<&Arc<OpenFile>> {
        self.file.as_ref()
    }
    /// `vm_ops`: None for anonymous memory.
    pub fn ops(&self) -> Option<&Arc<VmOperations>> {
        self.ops.as_ref()
    }
    /// The anon_vma, once the VMA has one.
    pub fn anon_vma(&self) -> Option<AnonVmaRef> {
        self.anon_vma
    }
    /// `vm_private_data`.
    pub fn private_data(&self) -> Option<&PrivateData> {
        self.extra.as_ref().and_then(|e| e.private_data.as_ref())
    }
    /// Sets `vm_private_data`.
    pub(crate) fn set_private_data(&mut self, data: Option<PrivateData>) {
        match (&mut self.extra, data) {
            (Some(e), data) => e.private_data = data,
            (None, None) => {}
            (None, data) => self.extra = Some(Box::new(VmaExtra { private_data: data, anon_name: None })),
        }
    }
    /// `anon_vma_name` (set by `prctl(PR_SET_VMA_ANON_NAME)`; compared when merging).
    pub(crate) fn anon_name(&self) -> Option<&Arc<str>> {
        self.extra.as_ref().and_then(|e| e.anon_name.as_ref())
    }
    /// Pages in the VMA (`vma_pages`).
    pub fn pages(&self) -> u64 {
        pages(self.start, self.end)
    }
    /// Whether `p`, the entry at `addr`, is a private copy of a file page that a truncation
    /// since unmapped (in whichever process truncated): gone, though the model forgets it only
    /// at its next look.
    pub(crate) fn copy_truncated(&self, addr: u64, p: &crate::Page) -> bool {
        match (p, self.file.as_ref().filter(|_| !self.is_anonymous())) {
            (crate::Page::Anon(a), Some(f)) => a.copy_truncated(f, self.pgoff_at(addr)),
            _ => false,
        }
    }
    /// Linux: `vma_has_recency()`: whether accesses through the VMA count for the page's
    /// reclaim age (not for `MADV_SEQUENTIAL`/`MADV_RANDOM` VMAs).
    pub(crate) fn has_recency(&self) -> bool {
        !self.flags.intersects(VmFlags::SEQ_READ | VmFlags::RAND_READ)
    }
    /// `vma_is_anonymous`: no vm_ops.
    pub fn is_anonymous(&self) -> bool {
        self.ops.is_none()
    }
    /// Whether `mseal` sealed the VMA.
    pub fn is_sealed(&self) -> bool {
        self.flags.contains(VmFlags::SEALED)
    }
    /// `can_merge_remove_vma`: a VMA with a close operation is never removed by a merge.
    pub(crate) fn can_merge_remove(&self) -> bool {
        !self.ops.as_ref().is_some_and(|o| o.has_close())
    }
    /// The file page of `addr` (`linear_page_index`).
    pub(crate) fn pgoff_at(&self, addr: u64) -> u64 {
        self.pgoff.wrapping_add((addr - self.start) >> PAGE_SHIFT)
    }
    /// `vm_start_gap` with the given guard gap.
    pub(crate) fn start_gap(&self, guard: u64) -> u64 {
        if self.flags.contains(VmFlags::GROWSDOWN) {
            self.start.saturating_sub(guard)
        } else if self.flags.contains(VmFlags::SHADOW_STACK) {
            self.start.saturating_sub(crate::addr::PAGE_SIZE)
        } else {
            self.start
        }
    }
    pub(crate) fn same_file(&self, other: Option<&Arc<OpenFile>>) -> bool {
        match (&self.file, other) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
    pub(crate) fn view(&self) -> VmaView {
        VmaView {
            start: self.start,
            end: self.end,
            pgoff: self.pgoff,
            flags: self.flags,
            private_data: self.private_data().cloned(),
        }
    }
}

impl fmt::Debug for Vma {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Vma({:#x}-{:#x} pgoff {:#x} {:?}", self.start, self.end, self.pgoff, self.flags)?;
        if let Some(file) = &self.file {
            write!(f, " file#{}", file.id())?;
        }
        if let Some(a) = self.anon_vma {
            write!(f, " anon#{}{}", a.id(), if a.forked() { "+forked" } else { "" })?;
        }
        if let Some(ops) = &self.ops {
            write!(f, " ops:{}", ops.label)?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    /// A VMA stays within 80 bytes (what keeps a million of them under 128 bytes each with the
    /// tree's own arrays; see BENCHMARKS.md), and an anon_vma reference in a word.
    #[test]
    fn a_vma_stays_small() {
        assert!(std::mem::size_of::<super::Vma>() <= 80, "{} bytes", std::mem::size_of::<super::Vma>());
        assert_eq!(std::mem::size_of::<Option<super::AnonVmaRef>>(), 8);
        let a = super::AnonVmaRef::new(0x7fff_ffff_ffff_ffff, true);
        assert_eq!((a.id(), a.forked()), (0x7fff_ffff_ffff_ffff, true));
    }
}
