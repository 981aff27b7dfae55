//! Anonymous page frames by the run: a fault over a huge range makes one [`AnonFrames`] of
//! many frames rather than one object a page, and everything the model knows per frame (how
//! many page table entries map it, its `PG_referenced`) is kept as runs of equal values, so a
//! range costs what a page costs until its frames come to differ.
//!
//! # Invariants
//!
//! - A frame's mapcount equals the number of live [`FrameRef`]s covering it (each page table
//!   entry run that maps it holds one).
//! - A [`RangeMap`] covers exactly `[0, count)` of its frames, with no two adjacent runs of
//!   equal value.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Values for the indices `[0, n)`, kept as runs of equal values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RangeMap<V> {
    /// One value for every index.
    Uniform(V),
    /// Runs by start: `start -> (end, value)`, covering `[0, n)`.
    Runs(BTreeMap<u64, (u64, V)>),
}

impl<V: Copy + Eq> RangeMap<V> {
    /// The value at `i`.
    pub fn get(&self, i: u64) -> V {
        match self {
            RangeMap::Uniform(v) => *v,
            RangeMap::Runs(m) => {
                m.range(..=i).next_back().map(|(_, (_, v))| *v).expect("a range map covers its indices")
            }
        }
    }

    /// Applies `f` to the values of `[s, e)` of a map over `[0, n)`.
    pub fn update(&mut self, s: u64, e: u64, n: u64, f: impl Fn(V) -> V) {
        if s >= e {
            return;
        }
        if let RangeMap::Uniform(v) = self {
            if s == 0 && e >= n {
                *v = f(*v);
                return;
            }
            *self = RangeMap::Runs(BTreeMap::from([(0, (n, *v))]));
        }
        let RangeMap::Runs(m) = self else { unreachable!("made runs above") };
        split_runs(m, s);
        split_runs(m, e);
        for (_, (_, v)) in m.range_mut(s..e) {
            *v = f(*v);
        }
        // Join equal neighbours around and inside the changed stretch.
        let keys: Vec<u64> =
            m.range(..s).next_back().map(|(k, _)| *k).into_iter().chain(m.range(s..=e).map(|(k, _)| *k)).collect();
        let mut cur = keys[0];
        for &k in &keys[1..] {
            let (cur_end, cv) = m[&cur];
            let (k_end, kv) = m[&k];
            if cur_end == k && cv == kv {
                m.remove(&k);
                m.insert(cur, (k_end, cv));
            } else {
                cur = k;
            }
        }
        if m.len() == 1 {
            let v = m.values().next().map(|(_, v)| *v).expect("one run");
            *self = RangeMap::Uniform(v);
        }
    }

    /// The runs within `[s, e)`, clipped: `(start, end, value)`.
    pub fn segments(&self, s: u64, e: u64) -> Vec<(u64, u64, V)> {
        match self {
            RangeMap::Uniform(v) => vec![(s, e, *v)],
            RangeMap::Runs(m) => {
                let first = m.range(..=s).next_back().map(|(k, _)| *k).unwrap_or(s);
                m.range(first..e).map(|(&a, &(b, v))| (a.max(s), b.min(e), v)).filter(|(a, b, _)| a < b).collect()
            }
        }
    }
}

/// Splits the run holding `at` (if it starts below it) in two at `at`.
fn split_runs<V: Copy>(m: &mut BTreeMap<u64, (u64, V)>, at: u64) {
    if let Some((&s, &(e, v))) = m.range(..at).next_back()
        && e > at
    {
        m.insert(s, (at, v));
        m.insert(at, (e, v));
    }
}

use crate::driver::mapping::{REFERENCED_UNKNOWN as UNKNOWN, UNREFERENCED, accessed, known};

/// What is known per frame.
#[derive(Debug)]
struct FramesState {
    /// Page table entries mapping each frame (`folio_mapcount()` of a small folio).
    mapcount: RangeMap<u32>,
    /// Each frame's `PG_referenced`: [`UNREFERENCED`], [`REFERENCED`] or [`UNKNOWN`].
    referenced: RangeMap<u8>,
}

/// A run of anonymous page frames made together (one fault over a range, or one page). Its
/// identity and an index name a frame.
#[derive(Debug)]
pub(crate) struct AnonFrames {
    count: u64,
    /// For a private copy of a file page: the file's truncation generation when it was made
    /// (see `PageCache::truncated_since`); 0 otherwise.
    pub(crate) file_generation: u64,
    state: Mutex<FramesState>,
}

/// A stretch of frames one mapcount and one `PG_referenced` describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameSegment {
    /// Frames in the stretch.
    pub len: u64,
    pub mapcount: u32,
    /// `None` where the model does not know.
    pub referenced: Option<bool>,
}

impl AnonFrames {
    fn state(&self) -> std::sync::MutexGuard<'_, FramesState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the mapcount of `[first, first+len)` by `delta` (an entry run mapping them came
    /// or went).
    fn add_maps(&self, first: u64, len: u64, delta: i32) {
        self.state().mapcount.update(first, first + len, self.count, |c| c.saturating_add_signed(delta));
    }

    /// Linux: `folio_mark_accessed()` on each of `[first, first+len)`, which get_user_pages
    /// calls (`FOLL_TOUCH`) on every page it returns: the first call sets `PG_referenced`; a
    /// later one activates the folio and clears it, unless the folio is unevictable (mlocked,
    /// which depends on when the mlock batch drains), so from then on the model does not know.
    pub fn mark_accessed(&self, first: u64, len: u64) {
        self.state().referenced.update(first, first + len, self.count, accessed);
    }

    /// A move between LRU lists through a per-CPU batch (`folio_mark_lazyfree()`, munlock) for
    /// `[first, first+len)`: `PG_referenced` may be cleared when the batch drains, and when that
    /// is the model does not know.
    pub fn forget_referenced(&self, first: u64, len: u64) {
        self.state().referenced.update(first, first + len, self.count, |_| UNKNOWN);
    }

    /// `[first, first+len)` as stretches of equal mapcount and `PG_referenced`.
    pub fn segments(&self, first: u64, len: u64) -> Vec<FrameSegment> {
        let st = self.state();
        let end = first + len;
        let mut out = Vec::new();
        for (s, e, mapcount) in st.mapcount.segments(first, end) {
            for (a, b, r) in st.referenced.segments(s, e) {
                out.push(FrameSegment { len: b - a, mapcount, referenced: known(r) });
            }
        }
        out
    }
}

/// One page table entry run's hold on `[first, first+len)` of some frames: while it lives, each
/// of them counts it in its mapcount (a clone counts again, a drop uncounts).
#[derive(Debug)]
pub(crate) struct FrameRef {
    frames: Arc<AnonFrames>,
    first: u64,
    len: u64,
}

impl FrameRef {
    /// `len` new frames, mapped by this entry run only.
    pub fn fresh(len: u64, file_generation: u64) -> FrameRef {
        let state = FramesState { mapcount: RangeMap::Uniform(1), referenced: RangeMap::Uniform(UNREFERENCED) };
        let frames = Arc::new(AnonFrames { count: len, file_generation, state: Mutex::new(state) });
        FrameRef { frames, first: 0, len }
    }

    /// The frames (their identity and what is known of them).
    pub fn frames(&self) -> &AnonFrames {
        &self.frames
    }

    /// Frames held.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The first frame's index in its [`AnonFrames`].
    pub fn first(&self) -> u64 {
        self.first
    }

    /// Cuts this hold at `k` frames: it keeps `[first, first+k)` and the rest is returned.
    /// Mapcounts do not change (the two together hold what this one held).
    pub fn split_off(&mut self, k: u64) -> FrameRef {
        debug_assert!(0 < k && k < self.len);
        let tail = FrameRef { frames: self.frames.clone(), first: self.first + k, len: self.len - k };
        self.len = k;
        tail
    }

    /// A hold on `n` of these frames from the `k`th: one more mapping of each (a fork's
    /// copy of part of a run).
    pub fn sub(&self, k: u64, n: u64) -> FrameRef {
        debug_assert!(n > 0 && k + n <= self.len);
        self.frames.add_maps(self.first + k, n, 1);
        FrameRef { frames: self.frames.clone(), first: self.first + k, len: n }
    }

    /// The stretches of the frames held, by mapcount and `PG_referenced`.
    pub fn segments(&self) -> Vec<FrameSegment> {
        self.frames.segments(self.first, self.len)
    }

    /// The mapcount of the `k`th frame held.
    pub fn mapcount(&self, k: u64) -> u32 {
        self.frames.state().mapcount.get(self.first + k)
    }

    /// Whether both hold the same frames.
    pub fn same_frames(&self, o: &FrameRef) -> bool {
        Arc::ptr_eq(&self.frames, &o.frames) && self.first == o.first && self.len == o.len
    }

    /// [`AnonFrames::forget_referenced`] on the frames held.
    pub fn forget_referenced(&self) {
        self.frames.forget_referenced(self.first, self.len);
    }
}

impl Clone for FrameRef {
    fn clone(&self) -> FrameRef {
        self.frames.add_maps(self.first, self.len, 1);
        FrameRef { frames: self.frames.clone(), first: self.first, len: self.len }
    }
}

impl Drop for FrameRef {
    fn drop(&mut self) {
        if self.len > 0 {
            self.frames.add_maps(self.first, self.len, -1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_map_agrees_with_a_vector() {
        let n = 64;
        let mut m = RangeMap::Uniform(0u32);
        let mut v = vec![0u32; n as usize];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for step in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (a, b) = ((x % n), ((x >> 8) % n));
            let (s, e) = (a.min(b), a.max(b) + 1);
            let add = (x >> 20) % 3;
            m.update(s, e, n, |c| if add == 2 { 0 } else { c + add as u32 });
            for c in &mut v[s as usize..e as usize] {
                *c = if add == 2 { 0 } else { *c + add as u32 };
            }
            for i in 0..n {
                assert_eq!(m.get(i), v[i as usize], "step {step} index {i}");
            }
            let segs = m.segments(0, n);
            assert_eq!(segs.iter().map(|(a, b, _)| b - a).sum::<u64>(), n);
            if let RangeMap::Runs(r) = &m {
                let runs: Vec<_> = r.iter().collect();
                assert!(runs.windows(2).all(|w| w[0].1.0 == *w[1].0 && w[0].1.1 != w[1].1.1), "step {step}: {runs:?}");
            }
        }
    }

    #[test]
    fn mapcounts_follow_the_holds() {
        let mut a = FrameRef::fresh(10, 0);
        let b = a.clone();
        assert_eq!(a.segments(), vec![FrameSegment { len: 10, mapcount: 2, referenced: Some(false) }]);
        let tail = a.split_off(4);
        drop(tail);
        assert_eq!(b.mapcount(3), 2);
        assert_eq!(b.mapcount(4), 1);
        a.frames().mark_accessed(a.first(), a.len());
        assert_eq!(
            b.segments(),
            vec![
                FrameSegment { len: 4, mapcount: 2, referenced: Some(true) },
                FrameSegment { len: 6, mapcount: 1, referenced: Some(false) }
            ]
        );
        drop(a);
        assert_eq!(
            b.segments(),
            vec![
                FrameSegment { len: 4, mapcount: 1, referenced: Some(true) },
                FrameSegment { len: 6, mapcount: 1, referenced: Some(false) }
            ]
        );
    }
}
