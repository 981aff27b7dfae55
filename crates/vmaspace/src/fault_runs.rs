//! Faults over whole stretches of private anonymous memory: what `touch`, `peek`, populate and
//! `mlock` do page by page (see [`crate::fault`]), done a run at a time where every page of the
//! run would get the same treatment, so that a huge range costs what a page costs.
//!
//! Only private anonymous VMAs (no `vm_ops`, no THP advice, not a PFN map) go this way: their
//! pages are zero-fill frames, guard markers, or nothing, and no file, driver hook or huge page
//! decides anything per page. Everything else, and a fault below a stack VMA's start (which
//! grows it), stays page by page.

use crate::addr::{PAGE_MASK, PAGE_SHIFT, PAGE_SIZE};
use crate::driver::{Access, FaultSignal};
use crate::errno::Errno;
use crate::flags::VmFlags;
use crate::frames::FrameRef;
use crate::{AddressSpace, AnonPage, Page};

/// What a stretch of an anonymous VMA holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Nothing,
    Anon,
    Guard,
    /// Anything else: left to the page-by-page path.
    Other,
}

/// How a stretch of faults ended.
enum Stop {
    /// At the end asked for.
    Done,
    /// At a guard marker.
    Guard,
    /// At something the page-by-page path must handle (its address).
    Other(u64),
}

impl AddressSpace {
    /// The VMA holding `page`, by start and end, if the run path can fault in it.
    fn anon_run_vma(&self, page: u64) -> Option<(u64, u64, VmFlags)> {
        let v = self.tree.vma_lookup(page)?;
        let excluded = VmFlags::SHARED | VmFlags::MAYSHARE | VmFlags::HUGEPAGE | VmFlags::HUGETLB | VmFlags::SPECIAL;
        (v.is_anonymous() && !v.flags.intersects(excluded)).then_some((v.start, v.end, v.flags))
    }

    /// `[start, end)` as stretches by what they hold.
    fn held(&self, start: u64, end: u64) -> Vec<(u64, u64, Held)> {
        let mut out = Vec::new();
        let mut at = start;
        for r in self.pages.range(start, end) {
            if r.start > at {
                out.push((at, r.start, Held::Nothing));
            }
            let held = match r.page {
                Page::Anon(_) => Held::Anon,
                Page::Guard => Held::Guard,
                _ => Held::Other,
            };
            out.push((r.start, r.end, held));
            at = r.end;
        }
        if at < end {
            out.push((at, end, Held::Nothing));
        }
        out
    }

    /// A user access (`touch`/`peek`) from `addr` towards `end` in a private anonymous VMA, as
    /// runs. Returns where the page-by-page path must go on (`addr` itself when this path cannot
    /// take it), or the signal of a guard marker met (every page before it done).
    pub(crate) fn access_anon_run(&mut self, addr: u64, end: u64, access: Access) -> Result<u64, FaultSignal> {
        let page = addr & PAGE_MASK;
        let Some((vma_start, vma_end, flags)) = self.anon_run_vma(page) else { return Ok(addr) };
        let write = access == Access::Write;
        // access_error() and the protection key: the page-by-page path raises the signal.
        if (write && !flags.contains(VmFlags::WRITE))
            || (!write && !flags.is_accessible())
            || !self.pkeys.allows(flags.pkey(), write)
        {
            return Ok(addr);
        }
        let to = end.min(vma_end).checked_next_multiple_of(PAGE_SIZE).map_or(vma_end, |e| e.min(vma_end));
        let locked = flags.contains(VmFlags::LOCKED);
        match self.fault_anon_stretch(vma_start, page, to, write, locked, false) {
            Stop::Done => Ok(to),
            Stop::Guard => Err(FaultSignal::Sigsegv),
            Stop::Other(at) => Ok(at.max(addr)),
        }
    }

    /// get_user_pages (populate, `mlock`, `MADV_POPULATE_*`) over `[from, to)` of the private
    /// anonymous VMA at `vma_start`, as runs. Returns where the page-by-page path must go on
    /// (`from` itself when this path cannot take it); a guard marker is `EFAULT`.
    pub(crate) fn gup_anon_run(&mut self, vma_start: u64, from: u64, to: u64, access: Access) -> Result<u64, Errno> {
        let page = from & PAGE_MASK;
        let Some((start, vma_end, flags)) = self.anon_run_vma(page) else { return Ok(from) };
        if start != vma_start {
            return Ok(from);
        }
        let to = to.checked_next_multiple_of(PAGE_SIZE).map_or(vma_end, |e| e.min(vma_end));
        let locked = flags.contains(VmFlags::LOCKED);
        match self.fault_anon_stretch(vma_start, page, to, access == Access::Write, locked, true) {
            Stop::Done => Ok(to),
            Stop::Guard => Err(Errno::EFAULT),
            Stop::Other(at) => Ok(at.max(from)),
        }
    }

    /// Faults `[from, to)` of a private anonymous VMA in, a stretch at a time, as the page
    /// path does each page: a write gives absent pages new frames (zero-fill on demand) and
    /// copies frames another entry maps too (`do_wp_page()`); a read of an absent page maps the
    /// zero page, which is not counted. A user access makes the entries young; get_user_pages
    /// (`gup`) makes young only the ones its write faults, and marks every page it returns
    /// accessed (`FOLL_TOUCH`).
    fn fault_anon_stretch(&mut self, vma_start: u64, from: u64, to: u64, write: bool, locked: bool, gup: bool) -> Stop {
        for (s, e, held) in self.held(from, to) {
            if !self.run_step((e - s) >> PAGE_SHIFT) {
                return Stop::Done;
            }
            match held {
                Held::Guard => return Stop::Guard,
                Held::Other => return Stop::Other(s),
                Held::Nothing if write => {
                    self.anon_vma_prepare(vma_start);
                    self.pages.insert_run(s, e, AnonPage::fresh_run((e - s) >> PAGE_SHIFT));
                }
                Held::Nothing => continue,
                Held::Anon if write => self.write_anon_stretch(s, e, locked, gup),
                // A read by the user makes the entries young; get_user_pages leaves them.
                Held::Anon if !gup => self.pages.update_range(s, e, |_, run| {
                    if let Page::Anon(a) = &mut run.page {
                        a.young = Some(true);
                    }
                }),
                Held::Anon => {}
            }
            if gup {
                self.mark_frames_accessed(s, e);
            }
        }
        Stop::Done
    }

    /// A write to the present anonymous pages of `[s, e)`: frames another entry maps too are
    /// copied (new frames, the old ones munlocked in a locked VMA), the others reused; the
    /// entries are writable, and young (a user access, or a get_user_pages write fault on a
    /// write-protected entry).
    fn write_anon_stretch(&mut self, s: u64, e: u64, locked: bool, gup: bool) {
        let runs = self.pages.take_range(s, e);
        let mut back = Vec::with_capacity(runs.len());
        for (start, run) in runs {
            let Page::Anon(mut a) = run.page else {
                back.push((start, run));
                continue;
            };
            // get_user_pages follows a writable entry as it is (no fault, no young bit).
            if gup && !a.wrprotected {
                back.push((start, crate::pages::Run { end: run.end, page: Page::Anon(a) }));
                continue;
            }
            let mut at = start;
            for seg in a.frames.segments() {
                let rest = (seg.len < a.frames.len()).then(|| a.frames.split_off(seg.len));
                let end = at + (seg.len << PAGE_SHIFT);
                let frames = if seg.mapcount > 1 {
                    if locked {
                        a.frames.forget_referenced();
                    }
                    FrameRef::fresh(seg.len, a.frames.frames().file_generation)
                } else {
                    a.frames
                };
                let page = Page::Anon(AnonPage { frames, young: Some(true), wrprotected: false });
                back.push((at, crate::pages::Run { end, page }));
                at = end;
                let Some(rest) = rest else { break };
                a.frames = rest;
            }
        }
        self.pages.put_runs(back, 0);
    }

    /// `FOLL_TOUCH` on every anonymous page of `[s, e)`.
    fn mark_frames_accessed(&self, s: u64, e: u64) {
        for r in self.pages.range(s, e) {
            if let Page::Anon(a) = r.page {
                a.frames.frames().mark_accessed(a.frames.first() + r.offset, r.pages());
            }
        }
    }
}
