//! The counts a run keeps of its calls while they stream past: what
//! summary.json, the terminal summary and the report's overview print.

use std::collections::BTreeMap;

use faultline_classify::bound::{Bounded, OTHER};
use faultline_classify::{Provider, StatusClass};
use faultline_ingest::{Format, Record};

/// What a run keeps of the records while they stream past.
#[derive(Debug, Default)]
pub struct Tally {
    pub by_status: BTreeMap<&'static str, u64>,
    pub by_provider: BTreeMap<&'static str, u64>,
    pub by_class: BTreeMap<&'static str, u64>,
    pub by_cause: BTreeMap<String, u64>,
    pub by_format: BTreeMap<String, u64>,
    /// Failed calls no rule explained, by message: what users write rules
    /// for. Past the bound on distinct values, new messages count as `(other)`.
    pub unknown_messages: BTreeMap<String, u64>,
    unknown_bound: Bounded,
    pub empty_responses: u64,
    pub with_error: u64,
    /// Calls left out by --since, --until, --provider or --service.
    pub filtered_out: u64,
}

impl Tally {
    /// Counts `n` calls of one provider, class and HTTP status family.
    fn count(&mut self, provider: Provider, class: StatusClass, family: usize, n: u64) {
        *self.by_provider.entry(provider.as_str()).or_default() += n;
        *self.by_class.entry(class.as_str()).or_default() += n;
        *self.by_status.entry(FAMILIES[family]).or_default() += n;
    }

    /// What a call adds besides its provider, class, status family and
    /// format (which a [`Kinds`] counts).
    pub(crate) fn add_details(&mut self, rec: &Record, class: StatusClass, cause: &str) {
        if class != StatusClass::Ok {
            add_count(&mut self.by_cause, cause, 1);
        }
        if cause == "unknown" {
            let message = match rec.error_message.as_deref().or(rec.error_type.as_deref()) {
                Some(text) => text.chars().take(200).collect(),
                None => match rec.http_status {
                    Some(status) => format!("(HTTP {status}, no message)"),
                    None => "(no status, no message)".to_owned(),
                },
            };
            *self.unknown_messages.entry(message).or_default() += 1;
        }
        self.empty_responses += u64::from(rec.empty_response);
        self.with_error += u64::from(rec.error_message.is_some() || rec.error_type.is_some());
    }

    /// Counts a kept call's log format.
    pub(crate) fn format(&mut self, name: &str) {
        add_count(&mut self.by_format, name, 1);
    }

    pub(crate) fn merge(&mut self, other: Tally) {
        fn sum<K: Ord>(into: &mut BTreeMap<K, u64>, from: BTreeMap<K, u64>) {
            for (key, n) in from {
                *into.entry(key).or_default() += n;
            }
        }
        sum(&mut self.by_status, other.by_status);
        sum(&mut self.by_provider, other.by_provider);
        sum(&mut self.by_class, other.by_class);
        sum(&mut self.by_cause, other.by_cause);
        sum(&mut self.by_format, other.by_format);
        for (message, n) in other.unknown_messages {
            let message = if self.unknown_bound.keeps(&message) {
                message
            } else {
                OTHER.to_owned()
            };
            *self.unknown_messages.entry(message).or_default() += n;
        }
        self.empty_responses += other.empty_responses;
        self.with_error += other.with_error;
        self.filtered_out += other.filtered_out;
    }

    /// Calls kept.
    #[must_use]
    pub fn records(&self) -> u64 {
        self.by_class.values().sum()
    }
}

/// HTTP status families, as `summary.json` names them.
const FAMILIES: [&str; 5] = ["2xx", "4xx", "5xx", "other", "no_response"];

/// The index in [`FAMILIES`] of a call's status.
pub(crate) fn family(status: Option<u16>) -> usize {
    match status {
        Some(200..=299) => 0,
        Some(400..=499) => 1,
        Some(500..=599) => 2,
        Some(_) => 3,
        None => 4,
    }
}

/// Adds `n` to `name`'s count, allocating the key only the first time.
fn add_count(counts: &mut BTreeMap<String, u64>, name: &str, n: u64) {
    match counts.get_mut(name) {
        Some(count) => *count += n,
        None => {
            counts.insert(name.to_owned(), n);
        }
    }
}

/// Provider, class, status family (index in [`FAMILIES`]) and format.
pub(crate) type Kind = (Provider, StatusClass, usize, Option<Format>);

/// Calls of a batch by provider, class, status family and format: one
/// comparison of small values per call, folded into the string-keyed maps
/// of a [`Tally`] once per batch.
#[derive(Debug, Default)]
pub(crate) struct Kinds {
    counts: Vec<(Kind, u64)>,
    last: usize,
}

impl Kinds {
    pub(crate) fn add(&mut self, kind: Kind) {
        if let Some((k, n)) = self.counts.get_mut(self.last) {
            if *k == kind {
                *n += 1;
                return;
            }
        }
        self.last = if let Some(i) = self.counts.iter().position(|(k, _)| *k == kind) {
            i
        } else {
            self.counts.push((kind, 0));
            self.counts.len() - 1
        };
        self.counts[self.last].1 += 1;
    }

    pub(crate) fn fold_into(self, tally: &mut Tally) {
        for ((provider, class, family, format), n) in self.counts {
            tally.count(provider, class, family, n);
            if let Some(format) = format {
                add_count(&mut tally.by_format, format.as_str(), n);
            }
        }
    }
}
