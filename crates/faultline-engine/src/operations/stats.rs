//! What the operations of a run add up to: raw (per attempt) against
//! effective (per operation) failure rates per provider, model and
//! service, retries, fallbacks, the cost of failed attempts, and what the
//! clients did against the guide.

use std::collections::{BTreeMap, HashMap};

use faultline_classify::bound::{DISTINCT_LIMIT, OTHER};
use faultline_ingest::{GroupedBy, Shared};
use faultline_report::{
    operation_id, BehaviourLine, Operation, OperationRates, OperationsOverview,
};
use serde_json::{json, Map, Value};

use super::attempt::Attempt;
use super::FastHash;
use crate::behaviour::Behaviour;

/// How many models and services the summary lists by failure rate.
const LISTED: usize = 20;

/// Attempts and operations of one provider, model or service.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rates {
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
    /// Operations per grouping, in [`GroupedBy::ALL`] order.
    grouped_by: [u64; GroupedBy::ALL.len()],
    time_lost_ms: u64,
    wasted_prompt_tokens: u64,
    wasted_completion_tokens: u64,
    wasted_cost_usd: f64,
    cost_unknown: u64,
    /// Where the prices of unlogged costs come from.
    cost_source: String,
    /// What the clients did against the guide.
    pub(crate) behaviour: Behaviour,
    /// A few providers: found by a scan.
    providers: Vec<(&'static str, Rates)>,
    models: Dim,
    services: Dim,
}

/// Rates per name (models, services), bounded like the rollups: past
/// [`DISTINCT_LIMIT`] names, new ones count as `(other)`. Calls come in runs
/// of one name, and an interned name's text never moves: the last entry is
/// found again by its address, without hashing.
#[derive(Debug, Default, Clone)]
struct Dim {
    index: HashMap<Shared, usize, FastHash>,
    rates: Vec<(Shared, Rates)>,
    last: Option<(usize, usize)>,
}

impl Dim {
    fn entry(&mut self, key: &Shared) -> &mut Rates {
        if let Some((address, at)) = self.last {
            if key.is_static() && key.address() == address {
                return &mut self.rates[at].1;
            }
        }
        let at = if let Some(&at) = self.index.get(key) {
            at
        } else {
            let key = if self.rates.len() >= DISTINCT_LIMIT {
                Shared::intern(OTHER)
            } else {
                key.clone()
            };
            if let Some(&at) = self.index.get(&key) {
                at
            } else {
                self.rates.push((key.clone(), Rates::default()));
                self.index.insert(key, self.rates.len() - 1);
                self.rates.len() - 1
            }
        };
        if key.is_static() {
            self.last = Some((key.address(), at));
        }
        &mut self.rates[at].1
    }
}

/// The rates of `provider`, added when first seen.
fn provider_entry<'p>(
    providers: &'p mut Vec<(&'static str, Rates)>,
    provider: &'static str,
) -> &'p mut Rates {
    let at = if let Some(at) = providers.iter().position(|(p, _)| *p == provider) {
        at
    } else {
        providers.push((provider, Rates::default()));
        providers.len() - 1
    };
    &mut providers[at].1
}

impl OperationStats {
    /// No operation yet; list prices from `source`.
    pub(super) fn priced_from(source: &str) -> OperationStats {
        OperationStats {
            cost_source: source.to_owned(),
            ..OperationStats::default()
        }
    }

    /// An operation of one attempt that succeeded: counted as its attempt
    /// and as its operation, each name looked up once.
    pub(super) fn single(&mut self, a: &Attempt) {
        let grouped_by = a.key.map_or(GroupedBy::Single, |k| k.by);
        if let Some(at) = GroupedBy::ALL.iter().position(|g| *g == grouped_by) {
            self.grouped_by[at] += 1;
        }
        let all = self.rates(a.provider.as_str(), a.model.as_ref(), a.service.as_ref());
        for rates in all.into_iter().flatten() {
            rates.attempts += 1;
            rates.operations += 1;
        }
    }

    /// The rates an attempt or operation counts in: all, its provider, its
    /// model and its service (when it has them).
    fn rates(
        &mut self,
        provider: &'static str,
        model: Option<&Shared>,
        service: Option<&Shared>,
    ) -> [Option<&mut Rates>; 4] {
        [
            Some(&mut self.all),
            Some(provider_entry(&mut self.providers, provider)),
            model.map(|m| self.models.entry(m)),
            service.map(|s| self.services.entry(s)),
        ]
    }

    pub(super) fn attempt(&mut self, a: &Attempt) {
        let hidden = u64::from(a.hidden);
        let failed = u64::from(a.failed()) + hidden;
        let all = self.rates(a.provider.as_str(), a.model.as_ref(), a.service.as_ref());
        for rates in all.into_iter().flatten() {
            rates.attempts += 1 + hidden;
            rates.failed_attempts += failed;
        }
    }

    pub(super) fn operation(&mut self, op: &Operation) {
        let failed = u64::from(!op.succeeded());
        self.retried += u64::from(op.attempts > 1);
        self.fell_back += u64::from(op.fell_back());
        if let Some(at) = GroupedBy::ALL.iter().position(|g| *g == op.grouped_by) {
            self.grouped_by[at] += 1;
        }
        self.time_lost_ms += op.time_lost_ms().unwrap_or(0).max(0) as u64;
        self.wasted_prompt_tokens += op.wasted_prompt_tokens;
        self.wasted_completion_tokens += op.wasted_completion_tokens;
        match op.wasted_cost_usd {
            Some(cost) => self.wasted_cost_usd += cost,
            None => self.cost_unknown += 1,
        }
        // The operation counts where it ended: its last provider and model.
        let provider = op.providers.last().map_or("unknown", |p| p.as_str());
        let all = self.rates(provider, op.models.last(), op.service.as_ref());
        for rates in all.into_iter().flatten() {
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

    /// The providers' rates, in name order.
    fn providers_by_name(&self) -> Vec<(&'static str, &Rates)> {
        let mut providers: Vec<(&'static str, &Rates)> =
            self.providers.iter().map(|(p, r)| (*p, r)).collect();
        providers.sort_by_key(|(p, _)| *p);
        providers
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
                .providers_by_name()
                .into_iter()
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
        let listed = |dim: &Dim, name: &str| {
            let mut rows: Vec<(&Shared, &Rates)> = dim.rates.iter().map(|(k, r)| (k, r)).collect();
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
        let grouped_by: BTreeMap<&str, u64> = GroupedBy::ALL
            .iter()
            .zip(self.grouped_by)
            .filter(|(_, n)| *n > 0)
            .map(|(g, n)| (g.as_str(), n))
            .collect();
        all.insert("grouped_by".into(), json!(grouped_by));
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
                self.providers_by_name()
                    .into_iter()
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
