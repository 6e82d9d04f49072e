//! Every aggregate the reports need, built while the calls stream past: the
//! rollup groups, the provider table and the chart series, with latency
//! percentiles from mergeable sketches. Nothing reads `records.parquet` back,
//! and memory grows with the number of groups (windows x scopes x classes),
//! not with the number of calls.

use std::collections::{BTreeMap, HashMap};

use faultline_classify::bound::Bounded;
use faultline_classify::{Provider, StatusClass};
use faultline_ingest::{Record, Shared};
use polars::prelude::*;

use crate::charts::{bucket_width, Charts, ProviderSeries};
use crate::records::cast_to;
use crate::sketch::{Bin, Sketch, SketchSum};
use crate::tables::{ts_type, ProviderRow};
use crate::{Error, FastHash};

/// Default rollup window: one minute.
pub const DEFAULT_WINDOW_MS: i64 = 60_000;

const MINUTE_MS: i64 = 60_000;

/// Groups [`Rollups`] finds without hashing.
const RECENT: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    window: i64,
    provider: Provider,
    model: Option<Shared>,
    service: Option<Shared>,
    class: StatusClass,
}

#[derive(Debug, Clone, Default)]
struct Group {
    requests: u64,
    errors: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
    latency: Sketch,
}

impl Group {
    fn merge(&mut self, other: &Group) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.latency.merge(&other.latency);
    }
}

/// Per minute: calls by provider and class, and the latency of all calls.
/// Kept per call only when rollup windows are not minutes; with one-minute
/// windows (the default) the groups hold the same counts, and the charts
/// sum them into their buckets once at the end instead.
#[derive(Debug, Clone, Default)]
struct Minute {
    calls: BTreeMap<(Provider, StatusClass), u64>,
    latency: Sketch,
}

/// Aggregates of classified calls, built per batch and merged in any order
/// (the result does not depend on the order while no dimension passes the
/// bound on distinct values; past it, on the order of the merges).
#[derive(Debug, Clone)]
pub struct Rollups {
    window_ms: i64,
    groups: Vec<(Key, Group)>,
    /// Each group's index in `groups`.
    index: HashMap<Key, usize, FastHash>,
    /// The groups of the last calls: calls in a row mostly fall in a group
    /// just used, found here by comparing keys (interned texts by address)
    /// rather than hashing the key's texts.
    recent: [usize; RECENT],
    minutes: BTreeMap<i64, Minute>,
    /// First and last call per provider.
    spans: BTreeMap<Provider, (i64, i64)>,
    /// Models and services past the bound are merged in as `(other)`.
    bounds: [Bounded; 2],
    /// Calls merged in under `(other)`.
    folded_calls: u64,
}

impl Rollups {
    /// Empty aggregates with rollup windows of `window_ms`.
    #[must_use]
    pub fn new(window_ms: i64) -> Rollups {
        Rollups {
            window_ms: window_ms.max(1),
            groups: Vec::new(),
            index: HashMap::default(),
            recent: [usize::MAX; RECENT],
            minutes: BTreeMap::new(),
            spans: BTreeMap::new(),
            bounds: Default::default(),
            folded_calls: 0,
        }
    }

    /// Calls whose model or service was counted as `(other)`, past
    /// [`faultline_classify::bound::DISTINCT_LIMIT`] distinct values.
    #[must_use]
    pub fn folded_calls(&self) -> u64 {
        self.folded_calls
    }

    /// Takes one classified call into account.
    pub fn add(&mut self, rec: &Record, provider: Provider, class: StatusClass) {
        let ts = rec.ts_ms;
        let window = ts.div_euclid(self.window_ms) * self.window_ms;
        let same = |key: &Key| {
            key.window == window
                && key.provider == provider
                && key.class == class
                && key.model == rec.model
                && key.service == rec.service
        };
        let at = match self
            .recent
            .iter()
            .position(|&i| self.groups.get(i).is_some_and(|(key, _)| same(key)))
        {
            Some(0) => self.recent[0],
            Some(hit) => {
                // Most recent first.
                self.recent[..=hit].rotate_right(1);
                self.recent[0]
            }
            None => {
                let at = self.slot(Key {
                    window,
                    provider,
                    model: rec.model.clone(),
                    service: rec.service.clone(),
                    class,
                });
                self.recent.rotate_right(1);
                self.recent[0] = at;
                at
            }
        };
        let failed = class != StatusClass::Ok;
        let group = &mut self.groups[at].1;
        group.requests += 1;
        group.errors += u64::from(failed);
        group.prompt_tokens += u64::from(rec.prompt_tokens.unwrap_or(0));
        group.completion_tokens += u64::from(rec.completion_tokens.unwrap_or(0));
        let bin = rec.latency_ms.and_then(Bin::of);
        if let Some(bin) = bin {
            group.latency.add_bin(bin);
        }
        if self.keeps_minutes() {
            let minute = self
                .minutes
                .entry(ts.div_euclid(MINUTE_MS) * MINUTE_MS)
                .or_default();
            *minute.calls.entry((provider, class)).or_default() += 1;
            if let Some(bin) = bin {
                minute.latency.add_bin(bin);
            }
        }
        let span = self.spans.entry(provider).or_insert((ts, ts));
        span.0 = span.0.min(ts);
        span.1 = span.1.max(ts);
    }

    /// The index of `key`'s group, created empty on first sight.
    fn slot(&mut self, key: Key) -> usize {
        if let Some(&at) = self.index.get(&key) {
            return at;
        }
        self.groups.push((key.clone(), Group::default()));
        self.index.insert(key, self.groups.len() - 1);
        self.groups.len() - 1
    }

    /// Adds `other` (built with the same window) into `self`. Past the
    /// bound on distinct models and services, the new ones in `other` are
    /// merged in as `(other)` (see [`faultline_classify::bound`]).
    pub fn merge(&mut self, other: Rollups) {
        self.folded_calls += other.folded_calls;
        for (mut key, group) in other.groups {
            let [models, services] = &mut self.bounds;
            let folded_model = models.fold(&mut key.model);
            if services.fold(&mut key.service) || folded_model {
                self.folded_calls += group.requests;
            }
            let at = self.slot(key);
            self.groups[at].1.merge(&group);
        }
        for (at, minute) in other.minutes {
            let into = self.minutes.entry(at).or_default();
            for (key, n) in minute.calls {
                *into.calls.entry(key).or_default() += n;
            }
            into.latency.merge(&minute.latency);
        }
        for (provider, (first, last)) in other.spans {
            let span = self.spans.entry(provider).or_insert((first, last));
            span.0 = span.0.min(first);
            span.1 = span.1.max(last);
        }
    }

    /// Writes `rollups.parquet` at `path` (see [`Rollups::frame`]).
    pub fn write(&self, path: &std::path::Path) -> Result<(), Error> {
        crate::tables::write_parquet(&mut self.frame()?, path)
    }

    /// `rollups.parquet`: per window x provider x model x service x
    /// status_class: requests, errors, error rate, latency p50/p95/p99
    /// (within 1%, nearest rank) and token sums, sorted by window then keys
    /// (absent model or service last).
    pub(crate) fn frame(&self) -> Result<DataFrame, Error> {
        let mut rows: Vec<(&Key, &Group)> = self.groups.iter().map(|(k, g)| (k, g)).collect();
        rows.sort_by(|(a, _), (b, _)| {
            a.window
                .cmp(&b.window)
                .then_with(|| a.provider.as_str().cmp(b.provider.as_str()))
                .then_with(|| nulls_last(a.model.as_deref(), b.model.as_deref()))
                .then_with(|| nulls_last(a.service.as_deref(), b.service.as_deref()))
                .then_with(|| a.class.as_str().cmp(b.class.as_str()))
        });
        let text = |f: &dyn Fn(&Key) -> Option<&str>| -> Vec<Option<&str>> {
            rows.iter().map(|(k, _)| f(k)).collect()
        };
        let count =
            |f: &dyn Fn(&Group) -> u64| -> Vec<u64> { rows.iter().map(|(_, g)| f(g)).collect() };
        let quantiles: Vec<[Option<f64>; 3]> = rows
            .iter()
            .map(|(_, g)| g.latency.quantiles([0.5, 0.95, 0.99]))
            .collect();
        let quantile = |i: usize| -> Vec<Option<f64>> { quantiles.iter().map(|q| q[i]).collect() };
        let columns = vec![
            Column::new(
                "window_start".into(),
                rows.iter().map(|(k, _)| k.window).collect::<Vec<_>>(),
            ),
            Column::new("provider".into(), text(&|k| Some(k.provider.as_str()))),
            Column::new("model".into(), text(&|k| k.model.as_deref())),
            Column::new("service".into(), text(&|k| k.service.as_deref())),
            Column::new("status_class".into(), text(&|k| Some(k.class.as_str()))),
            Column::new("requests".into(), count(&|g| g.requests)),
            Column::new("errors".into(), count(&|g| g.errors)),
            Column::new(
                "error_rate".into(),
                rows.iter()
                    .map(|(_, g)| g.errors as f64 / g.requests.max(1) as f64)
                    .collect::<Vec<_>>(),
            ),
            Column::new("latency_p50_ms".into(), quantile(0)),
            Column::new("latency_p95_ms".into(), quantile(1)),
            Column::new("latency_p99_ms".into(), quantile(2)),
            Column::new("prompt_tokens".into(), count(&|g| g.prompt_tokens)),
            Column::new("completion_tokens".into(), count(&|g| g.completion_tokens)),
        ];
        let frame = DataFrame::new(rows.len(), columns)?;
        cast_to(
            frame,
            &Schema::from_iter([("window_start".into(), ts_type())]),
        )
    }

    /// Per provider: calls, failures, latency percentiles and the most
    /// frequent failure class, busiest provider first.
    #[must_use]
    pub fn providers(&self) -> Vec<ProviderRow> {
        let mut per: BTreeMap<Provider, (u64, u64, SketchSum, BTreeMap<StatusClass, u64>)> =
            BTreeMap::new();
        for (key, group) in &self.groups {
            let entry = per.entry(key.provider).or_default();
            entry.0 += group.requests;
            entry.1 += group.errors;
            entry.2.add(&group.latency);
            if key.class != StatusClass::Ok {
                *entry.3.entry(key.class).or_default() += group.requests;
            }
        }
        let mut rows: Vec<ProviderRow> = per
            .into_iter()
            .map(|(provider, (requests, errors, latency, failures))| {
                let (first_ms, last_ms) = self.spans.get(&provider).copied().unwrap_or((0, 0));
                let [p50_ms, p95_ms] = latency.finish().quantiles([0.5, 0.95]);
                let top_failure = failures
                    .into_iter()
                    .map(|(class, n)| (class.as_str().to_owned(), n))
                    .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)));
                ProviderRow {
                    provider: provider.as_str().to_owned(),
                    requests,
                    errors,
                    p50_ms,
                    p95_ms,
                    top_failure,
                    first_ms,
                    last_ms,
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            b.requests
                .cmp(&a.requests)
                .then_with(|| a.provider.cmp(&b.provider))
        });
        rows
    }

    /// Whether calls are also counted per minute as they come: only when
    /// groups are not minutes already (see [`Minute`]).
    fn keeps_minutes(&self) -> bool {
        self.window_ms != MINUTE_MS
    }

    /// The chart series over the whole span, in at most
    /// [`crate::MAX_BUCKETS`] buckets; None when there was no call.
    #[must_use]
    pub fn charts(&self) -> Option<Charts> {
        let first = self.spans.values().map(|s| s.0).min()?;
        let last = self.spans.values().map(|s| s.1).max()?;
        let bucket_ms = bucket_width(first, last);
        let start_ms = first.div_euclid(bucket_ms) * bucket_ms;
        let buckets = usize::try_from((last - start_ms) / bucket_ms + 1).unwrap_or(1);
        let mut by_provider: BTreeMap<Provider, (Vec<u64>, Vec<u64>)> = BTreeMap::new();
        let mut by_class: BTreeMap<StatusClass, Vec<u64>> = BTreeMap::new();
        let mut latency: Vec<SketchSum> = vec![SketchSum::default(); buckets];
        let bucket = |at: i64| {
            usize::try_from((at.max(start_ms) - start_ms) / bucket_ms)
                .ok()
                .filter(|&i| i < buckets)
        };
        let mut count = |i: usize, provider: Provider, class: StatusClass, n: u64| {
            let series = by_provider
                .entry(provider)
                .or_insert_with(|| (vec![0; buckets], vec![0; buckets]));
            series.0[i] += n;
            if class != StatusClass::Ok {
                series.1[i] += n;
                by_class.entry(class).or_insert_with(|| vec![0; buckets])[i] += n;
            }
        };
        if self.keeps_minutes() {
            for (&at, minute) in &self.minutes {
                let Some(i) = bucket(at) else { continue };
                for (&(provider, class), &n) in &minute.calls {
                    count(i, provider, class, n);
                }
                latency[i].add(&minute.latency);
            }
        } else {
            // One-minute groups hold the same counts and latencies as the
            // minutes would have (see [`Minute`]); a bucket is whole minutes.
            for (key, group) in &self.groups {
                let Some(i) = bucket(key.window) else {
                    continue;
                };
                count(i, key.provider, key.class, group.requests);
                latency[i].add(&group.latency);
            }
        }
        let mut providers: Vec<ProviderSeries> = by_provider
            .into_iter()
            .map(|(provider, (requests, errors))| ProviderSeries {
                provider: provider.as_str().to_owned(),
                requests,
                errors,
            })
            .collect();
        providers.sort_by(|a, b| {
            let (na, nb) = (
                a.requests.iter().sum::<u64>(),
                b.requests.iter().sum::<u64>(),
            );
            nb.cmp(&na).then_with(|| a.provider.cmp(&b.provider))
        });
        let mut failures_by_class: Vec<(String, Vec<u64>)> = by_class
            .into_iter()
            .map(|(class, n)| (class.as_str().to_owned(), n))
            .collect();
        failures_by_class.sort_by(|a, b| {
            let (na, nb) = (a.1.iter().sum::<u64>(), b.1.iter().sum::<u64>());
            nb.cmp(&na).then_with(|| a.0.cmp(&b.0))
        });
        let quantiles: Vec<[Option<f64>; 3]> = latency
            .into_iter()
            .map(|sum| sum.finish().quantiles([0.5, 0.95, 0.99]))
            .collect();
        let percentile = |k: usize| quantiles.iter().map(|q| q[k]).collect::<Vec<_>>();
        Some(Charts {
            bucket_ms,
            start_ms,
            buckets,
            providers,
            failures_by_class,
            latency: [percentile(0), percentile(1), percentile(2)],
        })
    }
}

fn nulls_last(a: Option<&str>, b: Option<&str>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.cmp(b),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls over ten minutes, two models, two services, two classes.
    fn calls(fresh: bool) -> Vec<(Record, StatusClass)> {
        let shared: [Shared; 4] = ["gpt-4o", "claude", "checkout", "search"].map(Shared::intern);
        // Counted copies: a new address each.
        let text = |i: usize| {
            if fresh {
                Shared::from(&*shared[i])
            } else {
                shared[i].clone()
            }
        };
        (0..12_000)
            .map(|i: usize| {
                let mut rec = Record::at("calls.jsonl".into(), i as u64 + 1, 0);
                rec.ts_ms = i as i64 * 50;
                rec.model = (!i.is_multiple_of(5)).then(|| text(i % 2));
                rec.service = Some(text(2 + i % 3 % 2));
                rec.latency_ms = Some(100.0 + (i % 97) as f64 * 10.0);
                rec.prompt_tokens = Some(i as u32 % 700);
                let class = if i.is_multiple_of(7) {
                    StatusClass::RateLimit
                } else {
                    StatusClass::Ok
                };
                (rec, class)
            })
            .collect()
    }

    fn rollups(calls: &[(Record, StatusClass)], part: usize) -> Rollups {
        rollups_of(calls, part, DEFAULT_WINDOW_MS)
    }

    fn rollups_of(calls: &[(Record, StatusClass)], part: usize, window_ms: i64) -> Rollups {
        let mut all = Rollups::new(window_ms);
        for calls in calls.chunks(part) {
            let mut rollups = Rollups::new(window_ms);
            for (rec, class) in calls {
                rollups.add(rec, Provider::OpenAi, *class);
            }
            all.merge(rollups);
        }
        all
    }

    #[test]
    fn groups_are_keyed_by_text_whether_texts_are_shared_or_not() {
        let shared = rollups(&calls(false), usize::MAX).frame().unwrap();
        // Every call with its own copies of the texts, at other addresses.
        let fresh = rollups(&calls(true), usize::MAX).frame().unwrap();
        let merged = rollups(&calls(true), 1_000).frame().unwrap();
        // Calls in another order: groups come back in turn, not in runs.
        let mut scrambled = calls(false);
        scrambled.reverse();
        scrambled.rotate_left(4_321);
        let scrambled = rollups(&scrambled, 777).frame().unwrap();
        // 10 minutes x (2 models + none) x 2 services x 2 classes.
        assert_eq!(shared.height(), 120);
        assert!(shared.equals_missing(&fresh));
        assert!(shared.equals_missing(&merged));
        assert!(shared.equals_missing(&scrambled));
        let requests: u64 = shared
            .column("requests")
            .unwrap()
            .u64()
            .unwrap()
            .sum()
            .unwrap();
        assert_eq!(requests, 12_000);
    }

    #[test]
    fn charts_are_the_same_whether_minutes_come_from_groups_or_from_calls() {
        let calls = calls(false);
        // One-minute windows: the charts' minutes are summed from the groups.
        let from_groups = rollups_of(&calls, 1_000, MINUTE_MS).charts().unwrap();
        // Other windows: every call is also counted in its minute.
        for window_ms in [30_000, 5 * MINUTE_MS] {
            let from_calls = rollups_of(&calls, 1_000, window_ms).charts().unwrap();
            assert_eq!(from_groups, from_calls, "{window_ms} ms windows");
        }
        let requests: u64 = from_groups.providers.iter().flat_map(|p| &p.requests).sum();
        assert_eq!(requests, 12_000);
        assert!(from_groups.latency[0].iter().all(Option::is_some));
    }
}
