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

mod attempt;
mod stats;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use faultline_classify::StatusClass;
use faultline_ingest::GroupedBy;
use faultline_report::{Operation, OperationColumns, OPERATIONS_ROW_GROUP};
use smallvec::SmallVec;

use crate::behaviour::{Last, Missteps, Next};
use crate::prices::Prices;

pub(crate) use attempt::{Attempt, FileHashes};
pub use stats::OperationStats;

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

type FastHash = foldhash::fast::RandomState;

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
                providers: SmallVec::new(),
                models: SmallVec::new(),
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
    /// Finished operations not yet handed to the writer; none are
    /// gathered for a run that writes no operations.
    done: Option<OperationColumns>,
    /// Every operation closed, for the tests to look at.
    #[cfg(test)]
    closed: Vec<Operation>,
    pub(crate) stats: OperationStats,
}

impl Grouper<'_> {
    /// A grouper pricing failed calls with `prices`, which gathers the
    /// closed operations' rows when `rows` (a run that writes them).
    pub(crate) fn new(prices: &Prices, rows: bool) -> Grouper<'_> {
        Grouper {
            prices,
            open: HashMap::default(),
            evict_at: EVICT_FLOOR,
            done: rows.then(|| OperationColumns::with_capacity(OPERATIONS_ROW_GROUP)),
            #[cfg(test)]
            closed: Vec::new(),
            stats: OperationStats::priced_from(&prices.source),
        }
    }

    /// Groups a batch's attempts, and hands `operation` each one's row
    /// and operation id.
    pub(crate) fn add(&mut self, attempts: &[Attempt], mut operation: impl FnMut(usize, u64)) {
        for (row, a) in attempts.iter().enumerate() {
            let id = self.add_one(a);
            operation(row, id);
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
        let slot = match (a.key, a.number) {
            (Some(key), _) => Some(Slot::Key(key.by, key.hash)),
            (None, Some(_)) => Some(Slot::Lane(a.lane)),
            (None, None) => None,
        };
        let joinable = slot.and_then(|slot| self.open.contains_key(&slot).then_some(slot));
        if joinable.is_none() && !a.failed() && a.hidden == 0 {
            // Most calls: a success that continues nothing is an operation
            // of one attempt, closed at once, with no state.
            self.stats.single(a);
            #[cfg(test)]
            self.closed.push(Open::start(a, self.prices).close().0);
            if let Some(done) = &mut self.done {
                done.push_single(a.single_row());
            }
            return a.own;
        }
        self.stats.attempt(a);
        if let Some(slot) = joinable {
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
        self.stats.behaviour.add(&missteps, &op);
        self.stats.operation(&op);
        if let Some(done) = &mut self.done {
            done.push(&op);
        }
        #[cfg(test)]
        self.closed.push(op);
    }

    /// A row group of the operations finished, once there are enough for
    /// one (all of them when `end`), in the order they finished.
    pub(crate) fn take_done(&mut self, end: bool) -> Option<OperationColumns> {
        let done = self.done.as_mut()?;
        let ready = done.len() >= OPERATIONS_ROW_GROUP || (end && !done.is_empty());
        ready
            .then(|| std::mem::replace(done, OperationColumns::with_capacity(OPERATIONS_ROW_GROUP)))
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
