//! A mergeable quantile sketch for latencies: a histogram over logarithmic
//! bins, each `GAMMA` times wider than the one before, so that any quantile
//! it reports is within [`RELATIVE_ACCURACY`] of a value that was added (the
//! DDSketch construction). Memory is bounded by the range of the values, not
//! their number: 1 ms to 10 minutes is about 330 bins at most, and a group of
//! calls with similar latencies uses a handful.

/// Relative accuracy of every quantile.
pub const RELATIVE_ACCURACY: f64 = 0.01;

/// Ratio of consecutive bin bounds: (1 + a) / (1 - a).
const GAMMA: f64 = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY);

/// Latencies below this (ms) share one bin, reported as 0.
const MIN_MS: f64 = 0.01;

/// Counts per bin.
#[derive(Debug, Clone, Default)]
pub struct Sketch {
    bins: Bins,
    /// Values below [`MIN_MS`] (zeros).
    zeros: u64,
    count: u64,
}

/// The counts of the bins that were hit, held whichever way is smaller: a
/// list of (index, count) sorted by index, or a run of counts from `first`
/// on, where adding a value is an index instead of a binary search. A run
/// is kept only while at least half of its counts are non-zero, so that it
/// never takes more memory than the list would.
#[derive(Debug, Clone)]
enum Bins {
    List(Vec<(i32, u64)>),
    Run {
        first: i32,
        counts: Vec<u64>,
        /// Non-zero counts.
        filled: usize,
    },
}

impl Default for Bins {
    fn default() -> Self {
        Bins::List(Vec::new())
    }
}

/// A list this long or longer becomes a run when dense enough; shorter, a
/// binary search takes a few steps.
const RUN_FROM: usize = 8;

fn dense_enough(filled: usize, span: usize) -> bool {
    filled * 2 >= span
}

impl Bins {
    /// The bins of a sorted list of (index, count), non-zero counts only.
    fn from_list(list: Vec<(i32, u64)>) -> Bins {
        let (Some(&(low, _)), Some(&(high, _))) = (list.first(), list.last()) else {
            return Bins::List(list);
        };
        let span = (i64::from(high) - i64::from(low) + 1) as usize;
        if list.len() < RUN_FROM || !dense_enough(list.len(), span) {
            return Bins::List(list);
        }
        let mut counts = vec![0; span];
        for &(index, n) in &list {
            counts[(index - low) as usize] = n;
        }
        Bins::Run {
            first: low,
            filled: list.len(),
            counts,
        }
    }

    fn iter(&self) -> BinIter<'_> {
        match self {
            Bins::List(list) => BinIter::List(list.iter()),
            Bins::Run { first, counts, .. } => BinIter::Run(*first, counts.iter().enumerate()),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Bins::List(list) => list.is_empty(),
            Bins::Run { filled, .. } => *filled == 0,
        }
    }

    /// The lowest and highest index hit; None when empty.
    fn range(&self) -> Option<(i32, i32)> {
        match self {
            Bins::List(list) => Some((list.first()?.0, list.last()?.0)),
            Bins::Run { first, counts, .. } => {
                Some((*first, *first + i32::try_from(counts.len()).ok()? - 1))
            }
        }
    }

    fn add(&mut self, index: i32, n: u64) {
        match self {
            Bins::Run {
                first,
                counts,
                filled,
            } => {
                let at = i64::from(index) - i64::from(*first);
                if let Some(slot) = usize::try_from(at).ok().and_then(|at| counts.get_mut(at)) {
                    *filled += usize::from(*slot == 0);
                    *slot += n;
                    return;
                }
                let high = i64::from(*first) + counts.len() as i64 - 1;
                let span = (i64::from(index).max(high) - i64::from(index.min(*first)) + 1) as usize;
                if dense_enough(*filled + 1, span) {
                    if index < *first {
                        let grow = (*first - index) as usize;
                        counts.splice(0..0, std::iter::repeat_n(0, grow));
                        *first = index;
                        counts[0] = n;
                    } else {
                        counts.resize(span, 0);
                        counts[span - 1] = n;
                    }
                    *filled += 1;
                } else {
                    let mut list: Vec<(i32, u64)> = self.iter().collect();
                    let at = list.partition_point(|&(i, _)| i < index);
                    list.insert(at, (index, n));
                    *self = Bins::List(list);
                }
            }
            Bins::List(list) => match list.binary_search_by_key(&index, |&(i, _)| i) {
                Ok(at) => list[at].1 += n,
                Err(at) => {
                    list.insert(at, (index, n));
                    if list.len() >= RUN_FROM {
                        let span =
                            (i64::from(list[list.len() - 1].0) - i64::from(list[0].0) + 1) as usize;
                        if dense_enough(list.len(), span) {
                            *self = Bins::from_list(std::mem::take(list));
                        }
                    }
                }
            },
        }
    }
}

/// The non-zero bins, by increasing index.
enum BinIter<'a> {
    List(std::slice::Iter<'a, (i32, u64)>),
    Run(i32, std::iter::Enumerate<std::slice::Iter<'a, u64>>),
}

impl Iterator for BinIter<'_> {
    type Item = (i32, u64);

    fn next(&mut self) -> Option<(i32, u64)> {
        match self {
            BinIter::List(list) => list.next().copied(),
            BinIter::Run(first, counts) => counts
                .find(|(_, n)| **n > 0)
                .map(|(at, n)| (*first + at as i32, *n)),
        }
    }
}

/// Sketches are equal when they hold the same counts, however they hold them.
impl PartialEq for Sketch {
    fn eq(&self, other: &Sketch) -> bool {
        self.count == other.count
            && self.zeros == other.zeros
            && self.bins.iter().eq(other.bins.iter())
    }
}

impl Sketch {
    /// Adds one value (negative and non-finite values are ignored).
    pub fn add(&mut self, value: f64) {
        if let Some(bin) = Bin::of(value) {
            self.add_bin(bin);
        }
    }

    /// Adds one value already placed in its bin (see [`Bin::of`]).
    pub(crate) fn add_bin(&mut self, bin: Bin) {
        self.count += 1;
        match bin {
            Bin::Zero => self.zeros += 1,
            Bin::At(index) => self.bins.add(index, 1),
        }
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Sketch) {
        self.count += other.count;
        self.zeros += other.zeros;
        let (Some(mine), Some(theirs)) = (self.bins.range(), other.bins.range()) else {
            if self.bins.is_empty() {
                self.bins.clone_from(&other.bins);
            }
            return;
        };
        // Into a run that covers the other's bins: a count added per bin.
        if matches!(self.bins, Bins::Run { .. }) && mine.0 <= theirs.0 && theirs.1 <= mine.1 {
            for (index, n) in other.bins.iter() {
                self.bins.add(index, n);
            }
            return;
        }
        // Both sorted: one pass, not an insert (a shift) per bin.
        let mut merged = Vec::new();
        let (mut a, mut b) = (self.bins.iter().peekable(), other.bins.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&x), Some(&y)) => match x.0.cmp(&y.0) {
                    std::cmp::Ordering::Less => a.next(),
                    std::cmp::Ordering::Greater => b.next(),
                    std::cmp::Ordering::Equal => {
                        a.next();
                        b.next();
                        Some((x.0, x.1 + y.1))
                    }
                },
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => break,
            };
            merged.extend(next);
        }
        self.bins = Bins::from_list(merged);
    }

    /// Values added.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `q` quantile (0 to 1) by the nearest-rank rule, within
    /// [`RELATIVE_ACCURACY`]; None when empty.
    #[must_use]
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        // 0-based rank of the value sought.
        let rank = (q * (self.count - 1) as f64).round() as u64;
        if rank < self.zeros {
            return Some(0.0);
        }
        let mut seen = self.zeros;
        let mut last = None;
        for (index, n) in self.bins.iter() {
            seen += n;
            if seen > rank {
                return Some(value_of(index));
            }
            last = Some(index);
        }
        last.map(value_of)
    }
}

/// The bin of a value, the same in every sketch: found once (a logarithm)
/// for a value added to several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bin {
    /// Below [`MIN_MS`].
    Zero,
    /// The bin of that index.
    At(i32),
}

impl Bin {
    /// `None` for a negative or non-finite value, which sketches ignore.
    pub(crate) fn of(value: f64) -> Option<Bin> {
        if !value.is_finite() || value < 0.0 {
            None
        } else if value < MIN_MS {
            Some(Bin::Zero)
        } else {
            Some(Bin::At(index_of(value)))
        }
    }
}

fn index_of(value: f64) -> i32 {
    (value.ln() / GAMMA.ln()).ceil() as i32
}

/// The value that represents bin `index`: within the accuracy of every value
/// in `(GAMMA^(index-1), GAMMA^index]`.
fn value_of(index: i32) -> f64 {
    2.0 * GAMMA.powi(index) / (GAMMA + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(values: &mut [f64], q: f64) -> f64 {
        values.sort_by(f64::total_cmp);
        values[(q * (values.len() - 1) as f64).round() as usize]
    }

    #[test]
    fn quantiles_are_within_the_relative_accuracy() {
        // Latency-like values: a body of fast calls and a long tail.
        let mut values: Vec<f64> = (0..5000)
            .map(|i| {
                let x = f64::from(i);
                if i % 50 == 0 {
                    30_000.0 + x * 7.0
                } else {
                    80.0 + (x * 37.0) % 2400.0
                }
            })
            .collect();
        let mut sketch = Sketch::default();
        for v in &values {
            sketch.add(*v);
        }
        for q in [0.0, 0.5, 0.9, 0.95, 0.99, 1.0] {
            let want = exact(&mut values, q);
            let got = sketch.quantile(q).unwrap();
            assert!(
                (got - want).abs() <= want * RELATIVE_ACCURACY + 1e-9,
                "q{q}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn merging_equals_adding_everything_to_one() {
        let (mut a, mut b, mut all) = (Sketch::default(), Sketch::default(), Sketch::default());
        for i in 0..1000 {
            let v = f64::from(i % 97) * 13.5;
            if i % 3 == 0 { &mut a } else { &mut b }.add(v);
            all.add(v);
        }
        a.merge(&b);
        assert_eq!(a, all);
        assert_eq!(a.count(), 1000);
    }

    #[test]
    fn merging_interleaved_and_disjoint_bins_keeps_them_sorted() {
        // Ranges that overlap in part, one beyond the other, and one inside.
        let ranges = [
            (5.0, 90.0),
            (60.0, 4000.0),
            (9000.0, 20_000.0),
            (100.0, 120.0),
        ];
        let mut all = Sketch::default();
        let mut merged = Sketch::default();
        for (low, high) in ranges {
            let mut part = Sketch::default();
            for step in 0..40 {
                let v = low + (high - low) * f64::from(step) / 39.0;
                part.add(v);
                all.add(v);
            }
            merged.merge(&part);
            let bins: Vec<(i32, u64)> = merged.bins.iter().collect();
            assert!(bins.windows(2).all(|w| w[0].0 < w[1].0));
        }
        assert_eq!(merged, all);
    }

    /// The counts by bin, as a map; and whether a run is at least half full
    /// and counts its non-zero bins right.
    fn check(sketch: &Sketch) -> std::collections::BTreeMap<i32, u64> {
        if let Bins::Run { counts, filled, .. } = &sketch.bins {
            assert_eq!(*filled, counts.iter().filter(|n| **n > 0).count());
            assert!(
                dense_enough(*filled, counts.len()),
                "{filled} of {}",
                counts.len()
            );
        }
        let bins: Vec<(i32, u64)> = sketch.bins.iter().collect();
        assert!(bins.windows(2).all(|w| w[0].0 < w[1].0));
        bins.into_iter().collect()
    }

    type Order = Box<dyn Fn(&mut Vec<f64>)>;

    #[test]
    fn runs_and_lists_hold_the_same_counts_in_any_order() {
        // Clusters of latencies, then values far from them on both sides.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut values: Vec<f64> = (0..3000)
            .map(|i| match i % 3 {
                0 => 200.0 + (next() % 400) as f64,
                1 => 1500.0 + (next() % 900) as f64,
                _ => 50.0 + (next() % 30) as f64,
            })
            .collect();
        values.extend([0.5, 600_000.0, 0.02, 90_000.0]);
        let mut want = std::collections::BTreeMap::new();
        for &v in &values {
            *want.entry(index_of(v)).or_insert(0) += 1;
        }
        let orders: [Order; 3] = [
            Box::new(|_| {}),
            Box::new(|v| v.sort_by(f64::total_cmp)),
            Box::new(|v| v.sort_by(|a, b| b.total_cmp(a))),
        ];
        let mut seen_run = false;
        for order in &orders {
            let mut values = values.clone();
            order(&mut values);
            let mut one = Sketch::default();
            let mut parts = Sketch::default();
            for chunk in values.chunks(37) {
                let mut part = Sketch::default();
                for &v in chunk {
                    one.add(v);
                    part.add(v);
                    check(&one);
                    seen_run |= matches!(one.bins, Bins::Run { .. });
                }
                parts.merge(&part);
                check(&parts);
            }
            assert_eq!(check(&one), want);
            assert_eq!(one, parts);
            for q in [0.0, 0.5, 0.95, 0.99, 1.0] {
                assert_eq!(one.quantile(q), parts.quantile(q));
            }
        }
        assert!(seen_run, "the clusters fill runs");
    }

    #[test]
    fn a_far_value_turns_a_run_back_into_a_list() {
        let mut sketch = Sketch::default();
        for v in 100..140 {
            sketch.add(f64::from(v));
        }
        assert!(matches!(sketch.bins, Bins::Run { .. }));
        sketch.add(500_000.0);
        assert!(matches!(sketch.bins, Bins::List(_)));
        assert_eq!(sketch.count(), 41);
        let top = sketch.quantile(1.0).unwrap();
        assert!(
            (top - 500_000.0).abs() <= 500_000.0 * RELATIVE_ACCURACY,
            "{top}"
        );
    }

    #[test]
    fn empty_zero_and_invalid_values() {
        let mut sketch = Sketch::default();
        assert_eq!(sketch.quantile(0.5), None);
        sketch.add(f64::NAN);
        sketch.add(-1.0);
        assert_eq!(sketch.count(), 0);
        sketch.add(0.0);
        sketch.add(0.0);
        sketch.add(100.0);
        assert_eq!(sketch.quantile(0.5), Some(0.0));
        let top = sketch.quantile(1.0).unwrap();
        assert!((top - 100.0).abs() <= 1.0, "{top}");
    }
}
