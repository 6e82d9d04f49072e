//! What detection keeps of the record stream: per-minute counters for every
//! call and one small event per failure.

use std::collections::{BTreeMap, HashMap};

use faultline_ingest::{Record, Shared};

use crate::config::DetectConfig;
use faultline_classify::bound::Bounded;
use faultline_classify::{Cause, Classification};
use faultline_classify::{Provider, StatusClass};

/// Where a call went and who made it: the finest scope counters are kept at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    /// The provider.
    pub provider: Provider,
    /// The model, when logged.
    pub model: Option<Shared>,
    /// The calling service, when logged.
    pub service: Option<Shared>,
    /// The API key fingerprint, when logged.
    pub key_fp: Option<Shared>,
}

impl Scope {
    fn of(rec: &Record, provider: Provider) -> Scope {
        Scope {
            provider,
            model: rec.model.clone(),
            service: rec.service.clone(),
            key_fp: rec.key_fp.clone(),
        }
    }

    /// True when `rec` has this scope; addresses compared first, as the
    /// texts are interned.
    fn holds(&self, rec: &Record, provider: Provider) -> bool {
        fn same(a: Option<&Shared>, b: Option<&Shared>) -> bool {
            match (a, b) {
                (None, None) => true,
                (Some(a), Some(b)) => a.address() == b.address() || a == b,
                _ => false,
            }
        }
        self.provider == provider
            && same(self.model.as_ref(), rec.model.as_ref())
            && same(self.service.as_ref(), rec.service.as_ref())
            && same(self.key_fp.as_ref(), rec.key_fp.as_ref())
    }
}

/// Calls in one minute of one scope. Integer sums only, so that merging in
/// any order gives the same totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Calls.
    pub requests: u64,
    /// Calls that succeeded.
    pub ok: u64,
    /// Sum of logged latencies, whole milliseconds.
    pub latency_ms: u64,
    /// Calls with a logged latency.
    pub latency_n: u64,
    /// Sum of prompt tokens.
    pub prompt_tokens: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.requests += other.requests;
        self.ok += other.ok;
        self.latency_ms = self.latency_ms.saturating_add(other.latency_ms);
        self.latency_n += other.latency_n;
        self.prompt_tokens += other.prompt_tokens;
    }

    /// Mean latency in seconds, when any was logged.
    #[must_use]
    pub fn mean_latency_s(&self) -> Option<f64> {
        (self.latency_n > 0).then(|| self.latency_ms as f64 / self.latency_n as f64 / 1000.0)
    }
}

/// One call detection looks at individually: a failure, a retry, or a line
/// that held a plaintext secret.
#[derive(Debug, Clone)]
pub struct Event {
    /// Start of the call, ms since the epoch.
    pub ts_ms: i64,
    /// Provider, model, service, key.
    pub scope: Scope,
    /// The outcome.
    pub class: StatusClass,
    /// The finer reason.
    pub cause: Cause,
    /// HTTP status, if a response came back.
    pub http_status: Option<u16>,
    /// The request id, for evidence and retry counting.
    pub request_id: Option<Box<str>>,
    /// Evidence pointer: file and 1-based line.
    pub file: Shared,
    /// 1-based line.
    pub line: u64,
    /// Prompt tokens, when logged.
    pub prompt_tokens: Option<u32>,
    /// Retry number, when logged.
    pub attempt: Option<u16>,
    /// Plaintext secrets found in the line.
    pub secrets: u16,
}

impl Event {
    /// Minute since the epoch.
    #[must_use]
    pub fn minute(&self) -> i64 {
        self.ts_ms.div_euclid(60_000)
    }

    /// A request id, or `file:line` when the call has none.
    #[must_use]
    pub fn pointer(&self) -> String {
        match &self.request_id {
            Some(id) => format!("{id} ({}:{})", self.file, self.line),
            None => format!("{}:{}", self.file, self.line),
        }
    }
}

/// Accumulates what detection needs while records stream past. One per
/// worker; [`Collector::merge`] folds them together in any order.
///
/// Memory grows with the number of failures and with scopes x minutes, not
/// with the number of calls: successes only bump counters.
#[derive(Debug, Clone, Default)]
pub struct Collector {
    scopes: Vec<(Scope, BTreeMap<i64, Counts>)>,
    /// Each scope's latest minute, counted here until a call of that scope
    /// falls in another minute, then added to its map: a scope's calls
    /// mostly come in time order, and a map entry per call cost more than
    /// the rest of this step. Index as in `scopes`; see [`Collector::flush`].
    current: Vec<(i64, Counts)>,
    /// Each scope's index in `scopes`, found by a fast hash: reading
    /// records back, scopes alternate from row to row.
    index: HashMap<Scope, usize, foldhash::fast::RandomState>,
    last: Option<usize>,
    /// Calls with a logged prompt size per prompt-size bucket, by scope
    /// (index as in `scopes`; empty until the scope logs one). Folded by
    /// (provider, model) in [`Collector::finish`]: a lookup by that pair
    /// for every call cost a clone and a drop of the model's `Arc`.
    buckets: Vec<Vec<u64>>,
    edges: Vec<u32>,
    events: Vec<Event>,
    /// Models, services and keys past the bound are merged in as `(other)`.
    bounds: [Bounded; 3],
}

impl Collector {
    /// A collector bucketing prompt sizes as `config` says.
    #[must_use]
    pub fn new(config: &DetectConfig) -> Collector {
        Collector {
            edges: config.long_context_timeout.bucket_edges.clone(),
            ..Collector::default()
        }
    }

    /// Takes one classified call into account.
    pub fn add(&mut self, rec: &Record, class: &Classification) {
        self.add_outcome(rec, class.provider, class.status_class, &class.cause);
    }

    /// Takes one call into account from the parts of its classification that
    /// detection uses (for calls read back from `records.parquet`).
    pub fn add_outcome(
        &mut self,
        rec: &Record,
        provider: Provider,
        status_class: StatusClass,
        cause: &Cause,
    ) {
        let slot = match self.last {
            Some(i) if self.scopes[i].0.holds(rec, provider) => i,
            _ => {
                let i = self.slot(Scope::of(rec, provider));
                self.last = Some(i);
                i
            }
        };
        let ok = status_class == StatusClass::Ok;
        let minute = rec.ts_ms.div_euclid(60_000);
        let (current, counts) = &mut self.current[slot];
        if *current != minute {
            if counts.requests > 0 {
                self.scopes[slot].1.entry(*current).or_default().add(counts);
            }
            *current = minute;
            *counts = Counts::default();
        }
        counts.requests += 1;
        counts.ok += u64::from(ok);
        if let Some(latency) = rec.latency_ms.filter(|l| l.is_finite() && *l >= 0.0) {
            // Saturating: a corrupt line can claim any latency, and one absurd value
            // must not wrap the minute's total around.
            counts.latency_ms = counts.latency_ms.saturating_add(latency.round() as u64);
            counts.latency_n += 1;
        }
        if let Some(tokens) = rec.prompt_tokens {
            counts.prompt_tokens += u64::from(tokens);
            let bucket = self.edges.partition_point(|&edge| edge <= tokens).max(1) - 1;
            let per = &mut self.buckets[slot];
            if per.is_empty() {
                per.resize(self.edges.len(), 0);
            }
            if let Some(n) = per.get_mut(bucket) {
                *n += 1;
            }
        }
        if !ok || rec.secrets_found > 0 || rec.attempt.unwrap_or(0) > 0 {
            self.events.push(Event {
                ts_ms: rec.ts_ms,
                scope: self.scopes[slot].0.clone(),
                class: status_class,
                cause: cause.clone(),
                http_status: rec.http_status,
                request_id: rec.request_id.as_deref().map(Box::from),
                file: rec.source_file.clone(),
                line: rec.source_line,
                prompt_tokens: rec.prompt_tokens,
                attempt: rec.attempt,
                secrets: rec.secrets_found,
            });
        }
    }

    /// The index of `scope`'s counters, created on first sight.
    fn slot(&mut self, scope: Scope) -> usize {
        if let Some(&i) = self.index.get(&scope) {
            return i;
        }
        self.scopes.push((scope.clone(), BTreeMap::new()));
        self.current.push((0, Counts::default()));
        self.buckets.push(Vec::new());
        self.index.insert(scope, self.scopes.len() - 1);
        self.scopes.len() - 1
    }

    /// Adds `lines` to the line number of every kept event (calls numbered
    /// within their piece of the input, see `faultline_ingest::Stage`).
    pub fn rebase_lines(&mut self, lines: u64) {
        for event in &mut self.events {
            event.line += lines;
        }
    }

    /// Adds each scope's latest minute to its map.
    fn flush(&mut self) {
        for ((_, minutes), (minute, counts)) in self.scopes.iter_mut().zip(&mut self.current) {
            if counts.requests > 0 {
                minutes.entry(*minute).or_default().add(counts);
                *counts = Counts::default();
            }
        }
    }

    /// Folds another collector into this one.
    ///
    /// Past [`faultline_classify::bound::DISTINCT_LIMIT`] models, services or keys, the
    /// new ones in `other` are merged in as `(other)` (see [`crate::bound`]).
    pub fn merge(&mut self, mut other: Collector) {
        self.flush();
        other.flush();
        for ((mut scope, minutes), counts) in other.scopes.into_iter().zip(other.buckets) {
            self.bound(&mut scope);
            let i = self.slot(scope);
            let into = &mut self.scopes[i].1;
            for (minute, counts) in minutes {
                into.entry(minute).or_default().add(&counts);
            }
            add_buckets(&mut self.buckets[i], &counts);
        }
        if self.edges.is_empty() {
            self.edges = other.edges;
        }
        for mut event in other.events {
            self.bound(&mut event.scope);
            self.events.push(event);
        }
    }

    /// Folds a scope's values past the bound into `(other)`.
    fn bound(&mut self, scope: &mut Scope) {
        let [models, services, keys] = &mut self.bounds;
        models.fold(&mut scope.model);
        services.fold(&mut scope.service);
        keys.fold(&mut scope.key_fp);
    }

    /// Calls seen.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.scopes
            .iter()
            .flat_map(|(_, minutes)| minutes.values())
            .chain(self.current.iter().map(|(_, counts)| counts))
            .map(|c| c.requests)
            .sum()
    }

    /// The kept events, in no particular order.
    #[must_use]
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Freezes the collector for detection: events in time order (ties by
    /// file and line), so that results do not depend on input order.
    #[must_use]
    pub fn finish(mut self) -> Collected {
        self.flush();
        self.events.sort_by(|a, b| {
            (a.ts_ms, &a.file, a.line, &a.scope).cmp(&(b.ts_ms, &b.file, b.line, &b.scope))
        });
        drop_logged_twice(&mut self.events);
        let mut buckets: BTreeMap<(Provider, Option<Shared>), Vec<u64>> = BTreeMap::new();
        for ((scope, _), counts) in self.scopes.iter().zip(&self.buckets) {
            if !counts.is_empty() {
                let into = buckets
                    .entry((scope.provider, scope.model.clone()))
                    .or_default();
                add_buckets(into, counts);
            }
        }
        let mut scopes = self.scopes;
        scopes.sort_by(|a, b| a.0.cmp(&b.0));
        Collected {
            scopes,
            buckets,
            edges: self.edges,
            events: self.events,
        }
    }
}

/// Two lines of one call in different files at most this far apart: the
/// app's log and its gateway's log of the same call.
const LOGGED_TWICE_MS: i64 = 2_000;

/// Drops the second sighting of a failure that two logs wrote (the app and
/// the gateway in front of it): the same request id, attempt and status, in
/// another file, within [`LOGGED_TWICE_MS`]. Retries are no such pair: one
/// logger writes them, to one file. `events` are in time order, so the one
/// kept is the first, whatever order the files were read in.
fn drop_logged_twice(events: &mut Vec<Event>) {
    type Sighting<'a> = (&'a str, Option<u16>, Option<u16>);
    let mut seen: HashMap<Sighting<'_>, Vec<(i64, &Shared)>> = HashMap::new();
    let mut twice = vec![false; events.len()];
    for (at, e) in events.iter().enumerate() {
        // A key in a line is that line's own leak, whoever else logged the call.
        let Some(id) = e.request_id.as_deref().filter(|_| e.secrets == 0) else {
            continue;
        };
        let earlier = seen.entry((id, e.attempt, e.http_status)).or_default();
        if earlier
            .iter()
            .any(|(ts, file)| **file != e.file && e.ts_ms - ts <= LOGGED_TWICE_MS)
        {
            twice[at] = true;
        } else {
            earlier.push((e.ts_ms, &e.file));
        }
    }
    let mut at = 0;
    events.retain(|_| {
        at += 1;
        !twice[at - 1]
    });
}

/// Adds per-bucket counts into `into` (empty when nothing was counted yet).
fn add_buckets(into: &mut Vec<u64>, counts: &[u64]) {
    if into.len() < counts.len() {
        into.resize(counts.len(), 0);
    }
    for (a, b) in into.iter_mut().zip(counts) {
        *a += b;
    }
}

/// Everything detection reads, sorted.
#[derive(Debug, Clone)]
pub struct Collected {
    /// Per-minute counters per scope, scopes in order.
    pub scopes: Vec<(Scope, BTreeMap<i64, Counts>)>,
    /// Calls per prompt-size bucket, per (provider, model).
    pub buckets: BTreeMap<(Provider, Option<Shared>), Vec<u64>>,
    /// Lower edges of the prompt-size buckets.
    pub edges: Vec<u32>,
    /// Events in time order.
    pub events: Vec<Event>,
}

impl Collected {
    /// Traffic of the scopes `keep` accepts, in minutes `from..=to`.
    pub fn traffic(&self, from: i64, to: i64, keep: impl Fn(&Scope) -> bool) -> Counts {
        let mut total = Counts::default();
        for (scope, minutes) in &self.scopes {
            if keep(scope) {
                for counts in minutes.range(from..=to).map(|(_, c)| c) {
                    total.add(counts);
                }
            }
        }
        total
    }

    /// Per-minute traffic of the scopes `project` maps to a key, grouped by
    /// that key. Detectors ask only for the keys they have events of: a
    /// series of every scope costs a map insert per scope and minute.
    pub fn series<K: Ord>(
        &self,
        project: impl Fn(&Scope) -> Option<K>,
    ) -> BTreeMap<K, BTreeMap<i64, Counts>> {
        let mut out: BTreeMap<K, BTreeMap<i64, Counts>> = BTreeMap::new();
        for (scope, minutes) in &self.scopes {
            if let Some(key) = project(scope) {
                let into = out.entry(key).or_default();
                for (minute, counts) in minutes {
                    into.entry(*minute).or_default().add(counts);
                }
            }
        }
        out
    }
}
