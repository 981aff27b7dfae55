//! What the model can say about why the address space looks as it does: the decisions the
//! placement code took for a mapping ([`PlacementStep`], recorded as the code runs when asked
//! with [`AddressSpace::record_placement`]) and why two adjacent VMAs did not merge
//! ([`AddressSpace::why_not_merged`], the merge code's own predicates).

use crate::AddressSpace;
use std::sync::Mutex;

pub use crate::merge::MergeBlocker;

/// One decision of `__get_unmapped_area()` and the allocators below it, in Linux's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacementStep {
    /// `__get_unmapped_area()` handed the request to this allocator (a file's
    /// `f_op->get_unmapped_area`, shmem's for shared anonymous memory, the THP-aligning one for
    /// anonymous lengths that are a multiple of 2 MiB, or the mm's own).
    Allocator(String),
    /// The hint was free (nothing and no stack guard gap overlaps it): taken as it is.
    HintTaken(u64),
    /// The hint was not usable, and the search went on without it.
    HintRefused {
        /// The hint, page aligned.
        addr: u64,
        /// Why, in the code's terms.
        why: &'static str,
    },
    /// `__thp_get_unmapped_area()` does not apply: the range holds no whole 2 MiB-aligned chunk
    /// of the file (or the padded search failed), so the plain search runs.
    ThpNotApplicable,
    /// `__thp_get_unmapped_area()`: a search for the length padded by 2 MiB found `found`, and
    /// the result is `aligned`, so that address and file offset agree modulo 2 MiB.
    ThpAligned {
        /// The padded length searched for.
        padded_len: u64,
        /// What the padded search found.
        found: u64,
        /// The address returned.
        aligned: u64,
    },
    /// `unmapped_area_topdown()` (or `unmapped_area()` when `top_down` is false): the
    /// highest (lowest) gap between `low_limit` and `high_limit` that holds `length` bytes
    /// (the request plus alignment slack and start gap), and the address taken in it.
    Gap {
        /// Top-down (`mmap_base` downwards) or bottom-up.
        top_down: bool,
        /// The bytes the gap must hold.
        length: u64,
        /// The lowest address searched.
        low_limit: u64,
        /// The highest address searched (`mmap_base` for a top-down search).
        high_limit: u64,
        /// The free gap chosen: from the end of the VMA below to the start of the VMA above.
        gap: (u64, u64),
        /// The alignment mask applied (`align_mask`), 0 for none.
        align_mask: u64,
        /// The address taken.
        addr: u64,
    },
    /// The gap found ends inside the stack guard gap of the VMA above (a stack starting at
    /// `stack`), so the search starts again below (above) it.
    StackGuardGap {
        /// The start of the growing VMA whose guard gap was in the way.
        stack: u64,
        /// The new limit of the search.
        limit: u64,
    },
    /// No gap fitted top-down: the bottom-up allocator from `mmap_legacy_base` is tried.
    BottomUpFallback,
    /// No gap fits: ENOMEM.
    NoGap,
}

/// The placement decisions recorded while recording is on.
#[derive(Debug, Default)]
pub(crate) struct PlacementLog {
    /// Whether recording is on: read on every placement step, so that off costs one test.
    on: bool,
    steps: Mutex<Option<Vec<PlacementStep>>>,
}

impl Clone for PlacementLog {
    fn clone(&self) -> PlacementLog {
        PlacementLog { on: self.on, steps: Mutex::new(self.lock().clone()) }
    }
}

impl PlacementLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<PlacementStep>>> {
        self.steps.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl AddressSpace {
    /// Starts (or stops) recording the placement code's decisions for
    /// [`AddressSpace::take_placement_steps`].
    pub fn record_placement(&mut self, on: bool) {
        self.placement_log.on = on;
        *self.placement_log.lock() = on.then(Vec::new);
    }

    /// The placement decisions recorded since the last call, oldest first (empty when
    /// recording is off).
    pub fn take_placement_steps(&self) -> Vec<PlacementStep> {
        self.placement_log.lock().as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Records one placement decision if recording is on.
    pub(crate) fn note_placement(&self, step: impl FnOnce() -> PlacementStep) {
        if !self.placement_log.on {
            return;
        }
        if let Some(log) = self.placement_log.lock().as_mut() {
            log.push(step());
        }
    }
}
