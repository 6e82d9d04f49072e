//! A mergeable quantile sketch for latencies: a histogram over logarithmic
//! bins, each `GAMMA` times wider than the one before, so that any quantile
//! it reports is within [`RELATIVE_ACCURACY`] of a value that was added (the
//! DDSketch construction). Memory is bounded by the range of the values, not
//! their number: 1 ms to 10 minutes is about 670 bins at most, and a group of
//! calls with similar latencies uses a handful.

use std::sync::OnceLock;

/// Relative accuracy of every quantile.
pub const RELATIVE_ACCURACY: f64 = 0.01;

/// Ratio of consecutive bin bounds: (1 + a) / (1 - a).
const GAMMA: f64 = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY);

/// Latencies below this (ms) share one bin, reported as 0.
const MIN_MS: f64 = 0.01;

/// Counts per bin, sorted by bin index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sketch {
    bins: Vec<(i32, u64)>,
    /// Values below [`MIN_MS`] (zeros).
    zeros: u64,
    count: u64,
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
        let Bin::At(index) = bin else {
            self.zeros += 1;
            return;
        };
        match self.bins.binary_search_by_key(&index, |(i, _)| *i) {
            Ok(at) => self.bins[at].1 += 1,
            Err(at) => self.bins.insert(at, (index, 1)),
        }
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Sketch) {
        self.count += other.count;
        self.zeros += other.zeros;
        if self.bins.is_empty() {
            self.bins.clone_from(&other.bins);
            return;
        }
        // Both lists are sorted. Most merges (one worker's group into
        // another's) bring no new bin: counts are added in place while
        // that holds.
        let theirs = &other.bins;
        let (mut at_mine, mut at_theirs) = (0, 0);
        while let Some(&(index, count)) = theirs.get(at_theirs) {
            // A wide sketch (a provider's, a chart bucket's) takes in many
            // narrow ones: the next bin is found by bisection, not a walk.
            if self.bins.get(at_mine).is_some_and(|&(i, _)| i < index) {
                at_mine += 1 + self.bins[at_mine + 1..].partition_point(|&(i, _)| i < index);
            }
            match self.bins.get_mut(at_mine) {
                Some((i, n)) if *i == index => *n += count,
                _ => break,
            }
            at_mine += 1;
            at_theirs += 1;
        }
        if at_theirs == theirs.len() {
            return;
        }
        // A new bin: the rest in one pass, not an insert (a shift) per bin.
        // Bins before `at_mine` all sort before what is left of `theirs`.
        let mine = &self.bins;
        let mut merged = Vec::with_capacity(mine.len() + theirs.len() - at_theirs);
        merged.extend_from_slice(&mine[..at_mine]);
        while at_mine < mine.len() && at_theirs < theirs.len() {
            let (index, count) = mine[at_mine];
            let (other_index, other_count) = theirs[at_theirs];
            match index.cmp(&other_index) {
                std::cmp::Ordering::Less => {
                    merged.push((index, count));
                    at_mine += 1;
                }
                std::cmp::Ordering::Greater => {
                    merged.push((other_index, other_count));
                    at_theirs += 1;
                }
                std::cmp::Ordering::Equal => {
                    merged.push((index, count + other_count));
                    at_mine += 1;
                    at_theirs += 1;
                }
            }
        }
        merged.extend_from_slice(&mine[at_mine..]);
        merged.extend_from_slice(&theirs[at_theirs..]);
        self.bins = merged;
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
        let [value] = self.quantiles([q]);
        value
    }

    /// [`Sketch::quantile`] of each of `qs` (which must ascend), found in
    /// one walk over the bins.
    pub(crate) fn quantiles<const N: usize>(&self, qs: [f64; N]) -> [Option<f64>; N] {
        let mut out = [None; N];
        if self.count == 0 {
            return out;
        }
        // 0-based rank of each value sought.
        let ranks = qs.map(|q| (q.clamp(0.0, 1.0) * (self.count - 1) as f64).round() as u64);
        let mut k = 0;
        while k < N && ranks[k] < self.zeros {
            out[k] = Some(0.0);
            k += 1;
        }
        let mut seen = self.zeros;
        for &(index, n) in &self.bins {
            if k == N {
                // The bins past the highest quantile sought: a long tail of
                // few calls each, not read.
                break;
            }
            seen += n;
            while k < N && seen > ranks[k] {
                out[k] = Some(value_of(index));
                k += 1;
            }
        }
        if k < N {
            let last = self.bins.last().map(|&(index, _)| value_of(index));
            for value in &mut out[k..] {
                *value = last;
            }
        }
        out
    }
}

/// The sum of many sketches, its counts held densely from its lowest bin to
/// its highest: adding a sketch costs that sketch's bins, however many the
/// sum holds (merging into a [`Sketch`] walks the sum's bins). [`SketchSum::finish`]
/// gives the sketch that merging them all would have given.
#[derive(Debug, Clone, Default)]
pub(crate) struct SketchSum {
    /// Bin index of `counts[0]`.
    first: i32,
    counts: Vec<u64>,
    zeros: u64,
    count: u64,
}

impl SketchSum {
    pub(crate) fn add(&mut self, sketch: &Sketch) {
        self.count += sketch.count;
        self.zeros += sketch.zeros;
        let (Some(&(low, _)), Some(&(high, _))) = (sketch.bins.first(), sketch.bins.last()) else {
            return;
        };
        if self.counts.is_empty() {
            self.first = low;
        } else if low < self.first {
            let before = (self.first - low) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, before));
            self.first = low;
        }
        let span = (high - self.first) as usize + 1;
        if self.counts.len() < span {
            self.counts.resize(span, 0);
        }
        for &(index, n) in &sketch.bins {
            self.counts[(index - self.first) as usize] += n;
        }
    }

    pub(crate) fn finish(self) -> Sketch {
        let first = self.first;
        Sketch {
            bins: (first..).zip(self.counts).filter(|&(_, n)| n > 0).collect(),
            zeros: self.zeros,
            count: self.count,
        }
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
/// in `(GAMMA^(index-1), GAMMA^index]`. Bins from [`MIN_MS`] to a day are
/// looked up (reports ask for three quantiles of every rollup row and chart
/// bucket, and `powi` was the largest cost of writing them).
fn value_of(index: i32) -> f64 {
    static VALUES: OnceLock<Vec<f64>> = OnceLock::new();
    let values = VALUES.get_or_init(|| (TABLE_FIRST..TABLE_END).map(computed_value).collect());
    usize::try_from(index - TABLE_FIRST)
        .ok()
        .and_then(|at| values.get(at))
        .copied()
        .unwrap_or_else(|| computed_value(index))
}

/// The first bin of [`value_of`]'s table: the bin of [`MIN_MS`] is -230.
const TABLE_FIRST: i32 = -240;

/// Past the last bin of [`value_of`]'s table: a day (86,400,000 ms) is in
/// bin 914.
const TABLE_END: i32 = 1024;

fn computed_value(index: i32) -> f64 {
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
            assert!(merged.bins.windows(2).all(|w| w[0].0 < w[1].0));
        }
        assert_eq!(merged, all);
    }

    #[test]
    fn merging_parts_with_and_without_new_bins_equals_adding_everything() {
        let mut next = crate::testing::numbers(0x2545_f491_4f6c_dd1d);
        let mut all = Sketch::default();
        let mut merged = Sketch::default();
        for _ in 0..300 {
            // Parts of a few values each: most fall in bins already merged,
            // some bring a new bin before, between or after them.
            let mut part = Sketch::default();
            for _ in 0..next(6) {
                let v = match next(10) {
                    0 => next(1_000_000) as f64 / 7.0,
                    _ => 100.0 + next(400) as f64,
                };
                part.add(v);
                all.add(v);
            }
            merged.merge(&part);
            assert!(merged.bins.windows(2).all(|w| w[0].0 < w[1].0));
            assert_eq!(merged.count(), all.count());
        }
        assert_eq!(merged, all);
    }

    #[test]
    fn a_sum_of_sketches_is_what_merging_them_gives() {
        let mut next = crate::testing::numbers(0x1d8e_4e27_c47d_124f);
        let mut merged = Sketch::default();
        let mut sum = SketchSum::default();
        for round in 0..400 {
            // Narrow parts in a drifting range, wide ones, empty ones and
            // zeros, so that the sum grows downward as well as upward.
            let mut part = Sketch::default();
            for _ in 0..next(8) {
                let v = match next(12) {
                    0 => 0.0,
                    1 => next(10_000_000) as f64 / 3.0,
                    _ => f64::from(1000 - 2 * (round % 500)) + next(50) as f64,
                };
                part.add(v);
            }
            merged.merge(&part);
            sum.add(&part);
        }
        assert!(merged.count() > 0);
        assert_eq!(sum.finish(), merged);
        assert_eq!(SketchSum::default().finish(), Sketch::default());
    }

    #[test]
    fn quantiles_in_one_walk_are_each_quantile() {
        let qs = [0.0, 0.01, 0.5, 0.95, 0.99, 1.0];
        let mut sketch = Sketch::default();
        assert_eq!(sketch.quantiles(qs), [None; 6]);
        for i in 0..3000 {
            // A third zeros, so that low ranks fall among them.
            sketch.add(if i % 3 == 0 {
                0.0
            } else {
                f64::from(i % 211) * 4.5
            });
            if i % 7 == 0 {
                assert_eq!(sketch.quantiles(qs), qs.map(|q| sketch.quantile(q)));
            }
        }
        assert_eq!(sketch.quantiles(qs)[0], Some(0.0));
        // Several quantiles in one bin that is not the last.
        let mut narrow = Sketch::default();
        for _ in 0..1000 {
            narrow.add(100.0);
        }
        narrow.add(5000.0);
        assert_eq!(narrow.quantiles(qs), qs.map(|q| narrow.quantile(q)));
        assert!(narrow.quantiles(qs)[4].is_some_and(|p99| p99 < 200.0));
    }

    #[test]
    fn bins_are_valued_alike_in_and_out_of_the_table() {
        assert_eq!(index_of(MIN_MS), -230);
        assert_eq!(index_of(86_400_000.0), 914);
        for index in TABLE_FIRST - 3..TABLE_END + 3 {
            assert_eq!(value_of(index).to_bits(), computed_value(index).to_bits());
        }
        // A value far past the table still has its bin's value.
        let mut sketch = Sketch::default();
        sketch.add(1e12);
        let got = sketch.quantile(0.5).unwrap();
        assert!((got - 1e12).abs() <= 1e12 * RELATIVE_ACCURACY, "{got}");
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
