//! Operations: the attempts of one request of a caller (its retries and
//! fallbacks) grouped into one, so that a run can say how many requests
//! failed once the clients were done, and what the failed attempts cost.
//!
//! Attempts are grouped by the strongest id their lines hold
//! ([`GroupedBy`]): an OpenTelemetry trace and parent span, LiteLLM's
//! `trace_id`, an idempotency key, a repeated request id; without one, a
//! logged attempt number following a failed attempt of the same service in
//! the same file (a heuristic, marked as such). An operation stays open
//! while its last attempt failed: the next attempt with its id joins it if
//! it starts within [`JOIN_WINDOW_MS`] of the last one's end; a successful
//! attempt closes it.
//!
//! Grouping runs on the calling thread in input order (the workers only
//! gather each call's [`Attempt`]), so it sees attempts as one reader of
//! the files would, whatever the number of threads.

use std::collections::{BTreeMap, HashMap};

use faultline_classify::bound::{DISTINCT_LIMIT, OTHER};
use faultline_classify::{Provider, StatusClass};
use faultline_ingest::{mix64, stable_hash, GroupedBy, OperationKey, Record, Shared};
use faultline_report::{
    operation_id, BehaviourLine, Operation, OperationRates, OperationsOverview, RecordColumns,
};

use crate::behaviour::{Behaviour, Last, Missteps, Next};
use crate::prices::Prices;
use serde_json::{json, Map, Value};

/// How long after an attempt's end the next attempt of its operation may
/// start: past it, a new attempt with the same id is a new operation.
pub const JOIN_WINDOW_MS: i64 = 15 * 60_000;

/// Open operations kept before the stale ones are looked for.
const EVICT_FLOOR: usize = 4096;

/// Open operations kept at most: past it the half that waited longest
/// close, so that memory does not follow a log whose every call fails with
/// an id of its own (a provider's request id differs per attempt).
pub const MAX_OPEN: usize = 100_000;

/// Providers and models an operation lists at most.
const LISTED_PER_OPERATION: usize = 16;

/// How many models and services the summary lists by failure rate.
const LISTED: usize = 20;

type FastHash = foldhash::fast::RandomState;

/// What grouping needs of one kept call, gathered on the worker.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    ts_ms: i64,
    end_ms: i64,
    /// The operation id this call gives an operation it starts.
    own: u64,
    key: Option<OperationKey>,
    /// The heuristic's lane: service and file.
    lane: u64,
    number: Option<u16>,
    service: Option<Shared>,
    key_fp: Option<Shared>,
    provider: Provider,
    model: Option<Shared>,
    class: StatusClass,
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
    cost_usd: Option<f64>,
    billed: Billed,
    /// Earlier HTTP requests of this call that its log shows (an SDK's own
    /// retries, under one span): all failed.
    hidden: u16,
    /// The class of the first of them (a request with no response counts
    /// as a timeout).
    hidden_first: Option<StatusClass>,
    /// Start of the call's last HTTP request.
    last_start_ms: i64,
}

/// Whether a provider bills a call: it does for the calls it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Billed {
    /// A 2xx: an empty answer or blocked content is paid for.
    Yes,
    /// Refused (4xx, 5xx) or never reached: nothing to pay.
    No,
    /// A timeout without a status: the provider may have answered after
    /// the client gave up.
    Maybe,
}

/// Hashes of the batch's file names, computed once per file.
#[derive(Debug, Default)]
pub(crate) struct FileHashes {
    last: Option<(usize, u64)>,
}

impl FileHashes {
    fn of(&mut self, file: &Shared) -> u64 {
        match self.last {
            Some((address, hash)) if address == file.address() => hash,
            _ => {
                let hash = stable_hash(file.as_bytes());
                self.last = Some((file.address(), hash));
                hash
            }
        }
    }
}

impl Attempt {
    pub(crate) fn of(
        rec: &Record,
        provider: Provider,
        class: StatusClass,
        files: &mut FileHashes,
    ) -> Attempt {
        let file = files.of(&rec.source_file);
        // The call's place in its file, and what tells apart the spans one
        // OTLP line holds.
        let own = mix64(
            file ^ mix64(rec.byte_offset)
                ^ (rec.ts_ms as u64).rotate_left(23)
                ^ rec.operation_key.map_or(0, |k| k.hash.rotate_left(41)),
        );
        let lane = if rec.operation_key.is_none() && rec.attempt.is_some() {
            mix64(file ^ stable_hash(rec.service.as_deref().unwrap_or("").as_bytes()))
        } else {
            0
        };
        let latency = rec
            .latency_ms
            .filter(|l| l.is_finite() && *l >= 0.0)
            .map_or(0, |l| l as i64);
        Attempt {
            ts_ms: rec.ts_ms,
            end_ms: rec.ts_ms.saturating_add(latency),
            own,
            key: rec.operation_key,
            lane,
            number: rec.attempt,
            service: rec.service.clone(),
            key_fp: rec.key_fp.clone(),
            provider,
            model: rec.model.clone(),
            class,
            prompt_tokens: rec.prompt_tokens,
            completion_tokens: rec.completion_tokens,
            cost_usd: rec.cost_usd,
            billed: match rec.http_status {
                Some(200..=299) => Billed::Yes,
                None if class == StatusClass::Timeout => Billed::Maybe,
                _ => Billed::No,
            },
            hidden: rec.http_attempts.map_or(0, |h| h.count.saturating_sub(1)),
            hidden_first: rec.http_attempts.map(|h| {
                h.first_status
                    .map_or(StatusClass::Timeout, StatusClass::from_status)
            }),
            last_start_ms: rec
                .http_attempts
                .and_then(|h| h.last_start_ms)
                .unwrap_or(rec.ts_ms)
                .max(rec.ts_ms),
        }
    }

    /// What the call cost, if that can be known: the logged cost, else the
    /// list price of the tokens of a call the provider answered.
    fn cost(&self, prices: &Prices) -> Option<f64> {
        if let Some(cost) = self.cost_usd {
            return Some(cost);
        }
        match self.billed {
            Billed::No => Some(0.0),
            Billed::Maybe => None,
            Billed::Yes => prices.cost(
                self.model.as_deref()?,
                self.prompt_tokens.unwrap_or(0),
                self.completion_tokens.unwrap_or(0),
            ),
        }
    }

    fn failed(&self) -> bool {
        self.class != StatusClass::Ok
    }
}

/// Where an open operation waits for its next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Slot {
    Key(GroupedBy, u64),
    Lane(u64),
}

/// An operation whose last attempt failed.
#[derive(Debug)]
struct Open {
    op: Operation,
    last_end: i64,
    last_number: Option<u16>,
    /// The failed attempts' logged cost, and whether one logged none.
    cost: f64,
    cost_unknown: bool,
    /// The last attempt, as the next one is judged against the guide.
    last: Option<Last>,
    missteps: Missteps,
}

impl Open {
    fn start(a: &Attempt, prices: &Prices) -> Open {
        let mut open = Open {
            op: Operation {
                id: a.own,
                grouped_by: a.key.map_or(GroupedBy::Single, |k| k.by),
                service: a.service.clone(),
                key_fp: a.key_fp.clone(),
                start_ms: a.ts_ms,
                last_start_ms: a.ts_ms,
                end_ms: a.end_ms,
                attempts: 0,
                providers: Vec::new(),
                models: Vec::new(),
                final_class: a.class,
                first_error: None,
                wasted_prompt_tokens: 0,
                wasted_completion_tokens: 0,
                wasted_cost_usd: None,
            },
            last_end: a.end_ms,
            last_number: a.number,
            cost: 0.0,
            cost_unknown: false,
            last: None,
            missteps: Missteps::default(),
        };
        open.push(a, prices);
        open
    }

    fn push(&mut self, a: &Attempt, prices: &Prices) {
        let next = Next {
            start_ms: a.ts_ms,
            model: a.model.as_ref(),
            prompt_tokens: a.prompt_tokens,
        };
        if let Some(last) = &self.last {
            self.missteps.retry(last, next, true);
        }
        if a.hidden > 0 {
            // The requests an SDK made inside this call resent the same
            // request after the first one's failure; their times are not
            // logged.
            let first = Last {
                class: a.hidden_first.unwrap_or(StatusClass::Timeout),
                end_ms: a.ts_ms,
                model: a.model.clone(),
                prompt_tokens: None,
            };
            let resent = Next {
                prompt_tokens: None,
                ..next
            };
            for _ in 0..a.hidden {
                self.missteps.retry(&first, resent, false);
            }
        }
        let op = &mut self.op;
        op.attempts += 1 + u32::from(a.hidden);
        op.last_start_ms = op.last_start_ms.max(a.last_start_ms);
        if a.hidden > 0 {
            if let Some(first) = a.hidden_first {
                op.first_error.get_or_insert(first);
            }
            // Refused requests cost nothing; one that got no response may
            // have been answered after the client gave up.
            if a.hidden_first == Some(StatusClass::Timeout) {
                self.cost_unknown = true;
            }
        }
        op.end_ms = op.end_ms.max(a.end_ms);
        if !op.providers.contains(&a.provider) && op.providers.len() < LISTED_PER_OPERATION {
            op.providers.push(a.provider);
        }
        if let Some(model) = &a.model {
            if !op.models.iter().any(|m| m.as_str() == model.as_str())
                && op.models.len() < LISTED_PER_OPERATION
            {
                op.models.push(model.clone());
            }
        }
        op.final_class = a.class;
        if a.failed() {
            op.first_error.get_or_insert(a.class);
            op.wasted_prompt_tokens += u64::from(a.prompt_tokens.unwrap_or(0));
            op.wasted_completion_tokens += u64::from(a.completion_tokens.unwrap_or(0));
            match a.cost(prices) {
                Some(cost) => self.cost += cost,
                None => self.cost_unknown = true,
            }
        }
        self.last_end = a.end_ms;
        self.last_number = a.number.or(self.last_number);
        self.last = Some(Last {
            class: a.class,
            end_ms: a.end_ms,
            model: a.model.clone(),
            prompt_tokens: a.prompt_tokens,
        });
    }

    fn close(mut self) -> (Operation, Missteps) {
        let failed_any = self.op.first_error.is_some();
        self.op.wasted_cost_usd = if !failed_any {
            Some(0.0)
        } else if self.cost_unknown {
            None
        } else {
            Some(self.cost)
        };
        (self.op, self.missteps)
    }
}

/// Groups attempts into operations, in input order.
#[derive(Debug)]
pub(crate) struct Grouper<'p> {
    prices: &'p Prices,
    open: HashMap<Slot, Open, FastHash>,
    evict_at: usize,
    /// Finished operations not yet handed to the writer.
    done: Vec<Operation>,
    pub(crate) stats: OperationStats,
}

impl Grouper<'_> {
    pub(crate) fn new(prices: &Prices) -> Grouper<'_> {
        Grouper {
            prices,
            open: HashMap::default(),
            evict_at: EVICT_FLOOR,
            done: Vec::new(),
            stats: OperationStats {
                cost_source: prices.source.clone(),
                ..OperationStats::default()
            },
        }
    }

    /// Groups a batch's attempts (row `i` of `columns` is `attempts[i]`)
    /// and writes each row's operation id.
    pub(crate) fn add(&mut self, attempts: &[Attempt], columns: &mut RecordColumns) {
        for (row, a) in attempts.iter().enumerate() {
            let id = self.add_one(a);
            columns.set_operation(row, id);
        }
        if self.open.len() >= self.evict_at {
            if let Some(now) = attempts.iter().map(|a| a.ts_ms).max() {
                self.evict(now);
            }
            if self.open.len() > MAX_OPEN / 2 {
                self.close_oldest(self.open.len() - MAX_OPEN / 2);
            }
            self.evict_at = (2 * self.open.len()).clamp(EVICT_FLOOR, MAX_OPEN);
        }
    }

    /// Closes the `n` open operations whose last attempt ended first.
    fn close_oldest(&mut self, n: usize) {
        let mut by_age: Vec<(i64, u64, Slot)> = self
            .open
            .iter()
            .map(|(slot, open)| (open.last_end, open.op.id, *slot))
            .collect();
        by_age.sort_unstable();
        let mut closed: Vec<Open> = by_age[..n]
            .iter()
            .filter_map(|(_, _, slot)| self.open.remove(slot))
            .collect();
        closed.sort_by_key(|o| (o.op.start_ms, o.op.id));
        for open in closed {
            self.finish(open);
        }
    }

    fn add_one(&mut self, a: &Attempt) -> u64 {
        self.stats.attempt(a);
        let slot = match (a.key, a.number) {
            (Some(key), _) => Some(Slot::Key(key.by, key.hash)),
            (None, Some(_)) => Some(Slot::Lane(a.lane)),
            (None, None) => None,
        };
        if let Some(slot) = slot {
            if let Some(open) = self.open.get_mut(&slot) {
                let in_time = a.ts_ms <= open.last_end.saturating_add(JOIN_WINDOW_MS)
                    && a.ts_ms >= open.op.start_ms;
                let in_order = match slot {
                    Slot::Key(..) => true,
                    // A retry: a later attempt number than the last one.
                    Slot::Lane(_) => a
                        .number
                        .is_some_and(|n| n > 0 && open.last_number.is_none_or(|last| n > last)),
                };
                if in_time && in_order {
                    if let Slot::Lane(_) = slot {
                        open.op.grouped_by = GroupedBy::Heuristic;
                    }
                    open.push(a, self.prices);
                    let id = open.op.id;
                    if !a.failed() {
                        if let Some(open) = self.open.remove(&slot) {
                            self.finish(open);
                        }
                    }
                    return id;
                }
            }
        }
        let open = Open::start(a, self.prices);
        match slot {
            Some(slot) if a.failed() => {
                if let Some(before) = self.open.insert(slot, open) {
                    self.finish(before);
                }
            }
            _ => self.finish(open),
        }
        a.own
    }

    /// Closes the operations no attempt can join any more (their last
    /// attempt ended more than the window before `now`), oldest first.
    fn evict(&mut self, now: i64) {
        let stale: Vec<Slot> = self
            .open
            .iter()
            .filter(|(_, open)| open.last_end.saturating_add(JOIN_WINDOW_MS) < now)
            .map(|(slot, _)| *slot)
            .collect();
        let mut stale: Vec<Open> = stale.iter().filter_map(|s| self.open.remove(s)).collect();
        stale.sort_by_key(|o| (o.op.start_ms, o.op.id));
        for open in stale {
            self.finish(open);
        }
    }

    fn finish(&mut self, open: Open) {
        let (op, missteps) = open.close();
        self.stats
            .behaviour
            .add(&missteps, op.id, op.service.as_ref());
        self.stats.operation(&op);
        self.done.push(op);
    }

    /// The operations finished since the last call, in the order they
    /// finished.
    pub(crate) fn take_done(&mut self) -> Vec<Operation> {
        std::mem::take(&mut self.done)
    }

    /// Closes every open operation (the input has ended), oldest first.
    pub(crate) fn close_all(&mut self) {
        let mut open: Vec<Open> = self.open.drain().map(|(_, open)| open).collect();
        open.sort_by_key(|o| (o.op.start_ms, o.op.id));
        for open in open {
            self.finish(open);
        }
    }
}

/// Attempts and operations of one provider, model or service.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rates {
    attempts: u64,
    failed_attempts: u64,
    operations: u64,
    failed_operations: u64,
}

impl Rates {
    fn json(&self) -> Map<String, Value> {
        let rate = |n: u64, d: u64| {
            if d == 0 {
                Value::Null
            } else {
                json!(n as f64 / d as f64)
            }
        };
        let mut m = Map::new();
        m.insert("attempts".into(), json!(self.attempts));
        m.insert("failed_attempts".into(), json!(self.failed_attempts));
        m.insert(
            "raw_failure_rate".into(),
            rate(self.failed_attempts, self.attempts),
        );
        m.insert("operations".into(), json!(self.operations));
        m.insert("failed_operations".into(), json!(self.failed_operations));
        m.insert(
            "effective_failure_rate".into(),
            rate(self.failed_operations, self.operations),
        );
        m
    }
}

/// What the operations of a run add up to: summary.json's `operations`.
#[derive(Debug, Default, Clone)]
pub struct OperationStats {
    all: Rates,
    retried: u64,
    fell_back: u64,
    grouped_by: BTreeMap<&'static str, u64>,
    time_lost_ms: u64,
    wasted_prompt_tokens: u64,
    wasted_completion_tokens: u64,
    wasted_cost_usd: f64,
    cost_unknown: u64,
    /// Where the prices of unlogged costs come from.
    cost_source: String,
    /// What the clients did against the guide.
    behaviour: Behaviour,
    providers: BTreeMap<&'static str, Rates>,
    models: HashMap<Shared, Rates, FastHash>,
    services: HashMap<Shared, Rates, FastHash>,
}

/// The entry of `key` in `map`, or of `(other)` once the map holds as many
/// distinct values as aggregates keep ([`DISTINCT_LIMIT`]).
fn bounded<'m>(map: &'m mut HashMap<Shared, Rates, FastHash>, key: &Shared) -> &'m mut Rates {
    if map.len() >= DISTINCT_LIMIT && !map.contains_key(key) {
        return map.entry(Shared::intern(OTHER)).or_default();
    }
    map.entry(key.clone()).or_default()
}

impl OperationStats {
    fn attempt(&mut self, a: &Attempt) {
        let hidden = u64::from(a.hidden);
        let failed = u64::from(a.failed()) + hidden;
        for rates in [
            Some(&mut self.all),
            Some(self.providers.entry(a.provider.as_str()).or_default()),
            a.model.as_ref().map(|m| bounded(&mut self.models, m)),
            a.service.as_ref().map(|s| bounded(&mut self.services, s)),
        ]
        .into_iter()
        .flatten()
        {
            rates.attempts += 1 + hidden;
            rates.failed_attempts += failed;
        }
    }

    fn operation(&mut self, op: &Operation) {
        let failed = u64::from(!op.succeeded());
        self.retried += u64::from(op.attempts > 1);
        self.fell_back += u64::from(op.fell_back());
        *self.grouped_by.entry(op.grouped_by.as_str()).or_default() += 1;
        self.time_lost_ms += op.time_lost_ms().unwrap_or(0).max(0) as u64;
        self.wasted_prompt_tokens += op.wasted_prompt_tokens;
        self.wasted_completion_tokens += op.wasted_completion_tokens;
        match op.wasted_cost_usd {
            Some(cost) => self.wasted_cost_usd += cost,
            None => self.cost_unknown += 1,
        }
        // The operation counts where it ended: its last provider and model.
        let provider = op.providers.last().map_or("unknown", |p| p.as_str());
        for rates in [
            Some(&mut self.all),
            Some(self.providers.entry(provider).or_default()),
            op.models.last().map(|m| bounded(&mut self.models, m)),
            op.service.as_ref().map(|s| bounded(&mut self.services, s)),
        ]
        .into_iter()
        .flatten()
        {
            rates.operations += 1;
            rates.failed_operations += failed;
        }
    }

    /// Operations counted.
    #[must_use]
    pub fn operations(&self) -> u64 {
        self.all.operations
    }

    /// Operations whose last attempt failed.
    #[must_use]
    pub fn failed_operations(&self) -> u64 {
        self.all.failed_operations
    }

    /// Operations of more than one attempt.
    #[must_use]
    pub fn retried(&self) -> u64 {
        self.retried
    }

    /// Operations that tried more than one model or provider.
    #[must_use]
    pub fn fell_back(&self) -> u64 {
        self.fell_back
    }

    /// What the reports show of the operations.
    #[must_use]
    pub fn overview(&self) -> OperationsOverview {
        let rates = |name: &str, r: &Rates| OperationRates {
            name: name.to_owned(),
            attempts: r.attempts,
            failed_attempts: r.failed_attempts,
            operations: r.operations,
            failed_operations: r.failed_operations,
        };
        OperationsOverview {
            totals: rates("all", &self.all),
            retried: self.retried,
            fell_back: self.fell_back,
            wasted_prompt_tokens: self.wasted_prompt_tokens,
            wasted_completion_tokens: self.wasted_completion_tokens,
            wasted_cost_usd: self.wasted_cost_usd,
            cost_unknown: self.cost_unknown,
            by_provider: self
                .providers
                .iter()
                .map(|(name, r)| rates(name, r))
                .collect(),
            behaviour: self
                .behaviour
                .rows()
                .into_iter()
                .map(|row| {
                    let (guide, did) = row.misstep.words();
                    BehaviourLine {
                        guide: guide.to_owned(),
                        clients: did.to_owned(),
                        retries: row.retries,
                        operations: row.operations,
                        services: row.services,
                        examples: row.examples.into_iter().map(operation_id).collect(),
                    }
                })
                .collect(),
        }
    }

    /// summary.json's `operations` object.
    #[must_use]
    pub fn json(&self) -> Value {
        let listed = |map: &HashMap<Shared, Rates, FastHash>, name: &str| {
            let mut rows: Vec<(&Shared, &Rates)> = map.iter().collect();
            // Most failed operations first, then most attempts, then name.
            rows.sort_by(|a, b| {
                b.1.failed_operations
                    .cmp(&a.1.failed_operations)
                    .then(b.1.attempts.cmp(&a.1.attempts))
                    .then(a.0.as_str().cmp(b.0.as_str()))
            });
            rows.into_iter()
                .take(LISTED)
                .map(|(key, rates)| {
                    let mut m = Map::new();
                    m.insert(name.into(), json!(key.as_str()));
                    m.extend(rates.json());
                    Value::Object(m)
                })
                .collect::<Vec<_>>()
        };
        let mut all = self.all.json();
        all.insert(
            "succeeded".into(),
            json!(self.all.operations - self.all.failed_operations),
        );
        all.insert("retried".into(), json!(self.retried));
        all.insert("fell_back".into(), json!(self.fell_back));
        all.insert("grouped_by".into(), json!(self.grouped_by));
        all.insert("time_lost_ms".into(), json!(self.time_lost_ms));
        all.insert(
            "wasted".into(),
            json!({
                "prompt_tokens": self.wasted_prompt_tokens,
                "completion_tokens": self.wasted_completion_tokens,
                "cost_usd": self.wasted_cost_usd,
                "operations_cost_unknown": self.cost_unknown,
                "cost_source": format!("logged cost; else list prices of answered calls ({})", self.cost_source),
            }),
        );
        all.insert(
            "by_provider".into(),
            Value::Array(
                self.providers
                    .iter()
                    .map(|(provider, rates)| {
                        let mut m = Map::new();
                        m.insert("provider".into(), json!(provider));
                        m.extend(rates.json());
                        Value::Object(m)
                    })
                    .collect(),
            ),
        );
        all.insert("client_behaviour".into(), self.behaviour.json());
        all.insert(
            "by_model".into(),
            Value::Array(listed(&self.models, "model")),
        );
        all.insert(
            "by_service".into(),
            Value::Array(listed(&self.services, "service")),
        );
        Value::Object(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call of checkout at `ts_ms`, answered with `status` (its class is
    /// the status's).
    fn call(line: u64, ts_ms: i64, status: u16) -> Record {
        let mut rec = Record::at(Shared::from("app.jsonl"), line, line * 100);
        rec.ts_ms = ts_ms;
        rec.http_status = Some(status);
        rec.service = Some(Shared::from("checkout"));
        rec.model = Some(Shared::from("gpt-4o"));
        rec.prompt_tokens = Some(100);
        rec.latency_ms = Some(500.0);
        rec
    }

    fn keyed(mut rec: Record, by: GroupedBy, id: &str) -> Record {
        rec.operation_key = Some(OperationKey::of(by, id));
        rec
    }

    fn class(status: u16) -> StatusClass {
        StatusClass::from_status(status)
    }

    /// Groups `calls` in batches of `batch` calls, each call's class
    /// that of its status; see [`group_classed`].
    fn group(
        calls: &[(Record, Provider)],
        batch: usize,
    ) -> (Vec<Operation>, Vec<u64>, OperationStats) {
        let classed: Vec<(Record, Provider, StatusClass)> = calls
            .iter()
            .map(|(rec, p)| (rec.clone(), *p, class(rec.http_status.unwrap_or(0))))
            .collect();
        group_classed(&classed, batch)
    }

    /// Groups `calls` in batches of `batch` calls; returns the operations
    /// in the order they finished, each call's operation id, and the stats.
    fn group_classed(
        calls: &[(Record, Provider, StatusClass)],
        batch: usize,
    ) -> (Vec<Operation>, Vec<u64>, OperationStats) {
        let classifier =
            faultline_classify::Classifier::new(faultline_classify::RuleSet::defaults());
        let prices = Prices::defaults();
        let mut grouper = Grouper::new(&prices);
        let mut ops = Vec::new();
        let mut ids = Vec::new();
        for chunk in calls.chunks(batch) {
            let mut files = FileHashes::default();
            let mut columns = RecordColumns::with_capacity(chunk.len());
            let mut attempts = Vec::new();
            for (rec, provider, status_class) in chunk {
                let mut class = classifier.classify(rec);
                class.provider = *provider;
                class.status_class = *status_class;
                columns.push(rec, &class);
                attempts.push(Attempt::of(rec, *provider, *status_class, &mut files));
            }
            grouper.add(&attempts, &mut columns);
            ids.extend(columns.operation_ids());
            ops.extend(grouper.take_done());
        }
        grouper.close_all();
        ops.extend(grouper.take_done());
        (ops, ids, grouper.stats)
    }

    #[test]
    fn retries_with_one_request_id_are_one_operation() {
        let calls = [
            (
                keyed(call(1, 0, 500), GroupedBy::RequestId, "req_1"),
                Provider::OpenAi,
            ),
            (
                keyed(call(2, 1_500, 500), GroupedBy::RequestId, "req_1"),
                Provider::OpenAi,
            ),
            (
                keyed(call(3, 4_500, 200), GroupedBy::RequestId, "req_1"),
                Provider::OpenAi,
            ),
        ];
        let (ops, ids, stats) = group(&calls, 10);
        assert_eq!(ops.len(), 1);
        let op = &ops[0];
        assert_eq!(op.attempts, 3);
        assert!(op.succeeded());
        assert_eq!(op.grouped_by, GroupedBy::RequestId);
        assert_eq!(op.first_error, Some(StatusClass::ServerError));
        assert_eq!(op.time_lost_ms(), Some(4_500));
        assert_eq!(op.wasted_prompt_tokens, 200);
        assert!(!op.fell_back());
        assert!(
            ids.iter().all(|&id| id == op.id),
            "every attempt carries the operation's id"
        );
        let summary = stats.json();
        assert_eq!(summary["attempts"], 3);
        assert_eq!(summary["failed_attempts"], 2);
        assert_eq!(summary["operations"], 1);
        assert_eq!(summary["failed_operations"], 0);
        assert_eq!(summary["effective_failure_rate"], 0.0);
    }

    #[test]
    fn a_fallback_to_another_provider_is_one_operation_that_fell_back() {
        let mut second = keyed(call(2, 2_000, 200), GroupedBy::LiteLlmCall, "trace-a");
        second.model = Some(Shared::from("claude-sonnet-4"));
        let calls = [
            (
                keyed(call(1, 0, 429), GroupedBy::LiteLlmCall, "trace-a"),
                Provider::OpenAi,
            ),
            (second, Provider::Anthropic),
        ];
        let (ops, _, stats) = group(&calls, 10);
        assert_eq!(ops.len(), 1);
        assert!(ops[0].fell_back());
        assert_eq!(ops[0].providers, [Provider::OpenAi, Provider::Anthropic]);
        assert_eq!(ops[0].models.len(), 2);
        // The operation counts where it ended: anthropic, which never failed.
        let by_provider = stats.json()["by_provider"].clone();
        let openai = by_provider
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["provider"] == "openai")
            .unwrap()
            .clone();
        assert_eq!(openai["failed_attempts"], 1);
        assert_eq!(openai["operations"], 0);
    }

    #[test]
    fn a_success_closes_its_operation_and_a_late_attempt_starts_another() {
        let calls = [
            // Two successful calls of one trace: an agent's two steps.
            (
                keyed(call(1, 0, 200), GroupedBy::Trace, "t/p"),
                Provider::OpenAi,
            ),
            (
                keyed(call(2, 1_000, 200), GroupedBy::Trace, "t/p"),
                Provider::OpenAi,
            ),
            // A failure, then the same id again past the join window.
            (
                keyed(call(3, 2_000, 503), GroupedBy::Trace, "t/q"),
                Provider::OpenAi,
            ),
            (
                keyed(
                    call(4, 2_000 + JOIN_WINDOW_MS + 10_000, 503),
                    GroupedBy::Trace,
                    "t/q",
                ),
                Provider::OpenAi,
            ),
        ];
        let (ops, _, stats) = group(&calls, 10);
        assert_eq!(ops.len(), 4);
        assert!(ops.iter().all(|op| op.attempts == 1));
        assert_eq!(stats.json()["failed_operations"], 2);
    }

    #[test]
    fn attempt_numbers_without_ids_group_by_service_and_file_as_a_heuristic() {
        let numbered = |line, ts, status, n: u16, service: &str| {
            let mut rec = call(line, ts, status);
            rec.attempt = Some(n);
            rec.service = Some(Shared::from(service));
            (rec, Provider::OpenAi)
        };
        let calls = [
            numbered(1, 0, 500, 0, "checkout"),
            numbered(2, 100, 200, 0, "search"),
            numbered(3, 1_000, 500, 1, "checkout"),
            // A retry of another service's call that was not seen failing.
            numbered(4, 1_100, 200, 1, "search"),
            numbered(5, 2_000, 200, 2, "checkout"),
        ];
        let (ops, _, _) = group(&calls, 10);
        let checkout: Vec<&Operation> = ops
            .iter()
            .filter(|op| op.service.as_deref() == Some("checkout"))
            .collect();
        assert_eq!(checkout.len(), 1);
        assert_eq!(checkout[0].attempts, 3);
        assert_eq!(checkout[0].grouped_by, GroupedBy::Heuristic);
        assert!(checkout[0].succeeded());
        let search = ops
            .iter()
            .filter(|op| op.service.as_deref() == Some("search"))
            .count();
        assert_eq!(search, 2);
    }

    #[test]
    fn calls_with_nothing_to_tie_them_are_operations_by_themselves() {
        let calls = [
            (call(1, 0, 500), Provider::OpenAi),
            (call(2, 10, 500), Provider::OpenAi),
        ];
        let (ops, ids, _) = group(&calls, 10);
        assert_eq!(ops.len(), 2);
        assert!(ops.iter().all(|op| op.grouped_by == GroupedBy::Single));
        assert_ne!(ids[0], ids[1]);
    }

    #[test]
    fn grouping_does_not_depend_on_where_batches_end() {
        let mut calls = Vec::new();
        for i in 0..60u64 {
            let id = format!("req_{}", i / 3);
            let status = if i % 3 == 2 { 200 } else { 429 };
            calls.push((
                keyed(
                    call(i + 1, i as i64 * 1_000, status),
                    GroupedBy::RequestId,
                    &id,
                ),
                Provider::OpenAi,
            ));
        }
        let (one, one_ids, _) = group(&calls, calls.len());
        for batch in [1, 2, 7] {
            let (split, split_ids, _) = group(&calls, batch);
            assert_eq!(split, one, "batches of {batch}");
            assert_eq!(split_ids, one_ids, "batches of {batch}");
        }
        assert_eq!(one.len(), 20);
    }

    #[test]
    fn open_operations_are_bounded_and_the_oldest_close_first() {
        // Every call fails with an id of its own, all within the window.
        let calls: Vec<(Record, Provider)> = (0..(MAX_OPEN as u64 + 5_000))
            .map(|i| {
                let id = format!("req_{i}");
                (
                    keyed(call(i + 1, i as i64, 429), GroupedBy::RequestId, &id),
                    Provider::OpenAi,
                )
            })
            .collect();
        let prices = Prices::defaults();
        let mut grouper = Grouper::new(&prices);
        let mut files = FileHashes::default();
        let mut most_open = 0;
        let classified =
            faultline_classify::Classifier::new(faultline_classify::RuleSet::defaults())
                .classify(&calls[0].0);
        for chunk in calls.chunks(1_000) {
            let mut columns = RecordColumns::with_capacity(chunk.len());
            let attempts: Vec<Attempt> = chunk
                .iter()
                .map(|(rec, p)| Attempt::of(rec, *p, StatusClass::RateLimit, &mut files))
                .collect();
            for (rec, _) in chunk {
                columns.push(rec, &classified);
            }
            grouper.add(&attempts, &mut columns);
            most_open = most_open.max(grouper.open.len());
        }
        assert!(most_open <= MAX_OPEN, "{most_open} open");
        let done = grouper.take_done();
        assert!(!done.is_empty());
        assert_eq!(done[0].start_ms, 0, "the first to close is the oldest");
        grouper.close_all();
        assert_eq!(grouper.stats.operations(), calls.len() as u64);
    }

    #[test]
    fn retries_against_the_guide_are_counted_per_kind_with_their_services() {
        // One operation per case: (id, [(start ms, status, model, prompt tokens)]).
        type Case<'a> = (&'a str, &'a [(i64, u16, &'a str, u32)]);
        let cases: [Case<'_>; 8] = [
            // A 401 retried.
            (
                "auth",
                &[(0, 401, "gpt-4o", 100), (2_000, 401, "gpt-4o", 100)],
            ),
            // A 429 retried at once, and one retried after 5 s (fine).
            (
                "rl-fast",
                &[(10_000, 429, "gpt-4o", 100), (10_700, 200, "gpt-4o", 100)],
            ),
            (
                "rl-slow",
                &[(20_000, 429, "gpt-4o", 100), (25_600, 200, "gpt-4o", 100)],
            ),
            // Five retries of a 500: two past the guide's three.
            (
                "5xx",
                &[
                    (30_000, 500, "gpt-4o", 100),
                    (31_000, 500, "gpt-4o", 100),
                    (32_000, 500, "gpt-4o", 100),
                    (33_000, 500, "gpt-4o", 100),
                    (34_000, 500, "gpt-4o", 100),
                    (35_000, 200, "gpt-4o", 100),
                ],
            ),
            // A 503 retried after 2 s.
            (
                "503",
                &[(40_000, 503, "gpt-4o", 100), (42_500, 200, "gpt-4o", 100)],
            ),
            // A 529 retried on the same model; another routed to a smaller one.
            (
                "529-same",
                &[
                    (50_000, 529, "claude-opus-4-1", 100),
                    (51_000, 200, "claude-opus-4-1", 100),
                ],
            ),
            (
                "529-else",
                &[
                    (60_000, 529, "claude-opus-4-1", 100),
                    (61_000, 200, "claude-sonnet-4-5", 100),
                ],
            ),
            // A timeout retried with the same prompt.
            (
                "timeout",
                &[(70_000, 0, "gpt-4o", 9_000), (80_000, 200, "gpt-4o", 9_100)],
            ),
        ];
        let mut calls = Vec::new();
        for (id, attempts) in cases {
            for &(ts, status, model, prompt) in attempts {
                let mut rec = keyed(
                    call(calls.len() as u64 + 1, ts, status),
                    GroupedBy::RequestId,
                    id,
                );
                rec.model = Some(Shared::from(model));
                rec.prompt_tokens = Some(prompt);
                let class = if status == 0 {
                    rec.http_status = None;
                    StatusClass::Timeout
                } else {
                    StatusClass::from_status(status)
                };
                calls.push((rec, Provider::OpenAi, class));
            }
        }
        let (_, _, stats) = group_classed(&calls, 3);
        let behaviour = stats.json()["client_behaviour"].clone();
        let found: Vec<(String, u64, u64)> = behaviour
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["misstep"].as_str().unwrap().to_owned(),
                    b["retries"].as_u64().unwrap(),
                    b["operations"].as_u64().unwrap(),
                )
            })
            .collect();
        let expected: Vec<(String, u64, u64)> = [
            ("auth_retried", 1, 1),
            ("rate_limit_no_backoff", 1, 1),
            ("server_error_over_retried", 2, 1),
            ("unavailable_retried_early", 1, 1),
            ("overloaded_not_rerouted", 1, 1),
            ("timeout_same_prompt", 1, 1),
        ]
        .iter()
        .map(|(m, r, o)| ((*m).to_owned(), *r, *o))
        .collect();
        assert_eq!(found, expected);
        assert_eq!(behaviour[0]["services"][0]["name"], "checkout");
        assert_eq!(behaviour[0]["examples"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn failed_attempts_cost_what_they_logged_else_their_list_price_or_is_unknown() {
        let mut logged = keyed(call(1, 0, 500), GroupedBy::LiteLlmCall, "a");
        logged.cost_usd = Some(0.25);
        let mut timeout = keyed(call(4, 30, 0), GroupedBy::LiteLlmCall, "c");
        timeout.http_status = None;
        let mut empty = keyed(call(5, 40, 200), GroupedBy::LiteLlmCall, "d");
        empty.model = Some(Shared::from("gpt-4o-mini"));
        empty.completion_tokens = Some(0);
        let calls = [
            (logged, Provider::OpenAi, StatusClass::ServerError),
            (
                keyed(call(2, 10, 200), GroupedBy::LiteLlmCall, "a"),
                Provider::OpenAi,
                StatusClass::Ok,
            ),
            // Refused: a provider bills nothing for a 500.
            (
                keyed(call(3, 20, 500), GroupedBy::LiteLlmCall, "b"),
                Provider::OpenAi,
                StatusClass::ServerError,
            ),
            (timeout, Provider::OpenAi, StatusClass::Timeout),
            (empty, Provider::OpenAi, StatusClass::EmptyResponse),
        ];
        let (ops, _, stats) = group_classed(&calls, 10);
        let cost = |start_ms: i64| {
            ops.iter()
                .find(|op| op.start_ms == start_ms)
                .expect("an operation starts then")
                .wasted_cost_usd
        };
        assert_eq!(cost(0), Some(0.25));
        assert_eq!(cost(20), Some(0.0));
        assert_eq!(
            cost(30),
            None,
            "a timeout may have been answered and billed"
        );
        // 100 prompt tokens of gpt-4o-mini at $0.15 per million.
        let priced = cost(40).unwrap();
        assert!((priced - 100.0 * 0.15 / 1e6).abs() < 1e-15, "{priced}");
        let wasted = &stats.json()["wasted"];
        assert_eq!(wasted["operations_cost_unknown"], 1);
        assert!(wasted["cost_source"]
            .as_str()
            .unwrap()
            .contains("litellm 1.110.0"));
    }
}
