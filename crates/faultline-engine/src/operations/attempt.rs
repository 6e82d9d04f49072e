//! What grouping needs of one call, gathered on the worker that
//! classified it: a few words, so that the calling thread's work per call
//! stays small.

use faultline_classify::{Provider, StatusClass};
use faultline_ingest::{mix64, stable_hash, GroupedBy, OperationKey, Record, Shared};
use faultline_report::SingleRow;

use crate::prices::Prices;

/// What grouping needs of one kept call, gathered on the worker.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub(super) ts_ms: i64,
    pub(super) end_ms: i64,
    /// The operation id this call gives an operation it starts.
    pub(super) own: u64,
    pub(super) key: Option<OperationKey>,
    /// The heuristic's lane: service and file.
    pub(super) lane: u64,
    pub(super) number: Option<u16>,
    pub(super) service: Option<Shared>,
    pub(super) key_fp: Option<Shared>,
    pub(super) provider: Provider,
    pub(super) model: Option<Shared>,
    pub(super) class: StatusClass,
    pub(super) prompt_tokens: Option<u32>,
    pub(super) completion_tokens: Option<u32>,
    pub(super) cost_usd: Option<f64>,
    pub(super) billed: Billed,
    /// Earlier HTTP requests of this call that its log shows (an SDK's own
    /// retries, under one span): all failed.
    pub(super) hidden: u16,
    /// The class of the first of them (a request with no response counts
    /// as a timeout).
    pub(super) hidden_first: Option<StatusClass>,
    /// Start of the call's last HTTP request.
    pub(super) last_start_ms: i64,
}

/// Whether a provider bills a call: it does for the calls it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Billed {
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

    /// A call read back from records.parquet, an attempt of the operation
    /// `id` when the file says which (`None`: grouped as a call of a log).
    pub(crate) fn recorded(
        rec: &Record,
        provider: Provider,
        class: StatusClass,
        id: Option<u64>,
        files: &mut FileHashes,
    ) -> Attempt {
        let mut attempt = Attempt::of(rec, provider, class, files);
        if let Some(id) = id {
            attempt.key = Some(OperationKey {
                by: GroupedBy::Recorded,
                hash: id,
            });
            attempt.lane = 0;
            attempt.own = id;
        }
        attempt
    }

    /// What the call cost, if that can be known: the logged cost, else the
    /// list price of the tokens of a call the provider answered.
    pub(super) fn cost(&self, prices: &Prices) -> Option<f64> {
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

    /// This call as an operation of one attempt that succeeded.
    pub(super) fn single_row(&self) -> SingleRow<'_> {
        SingleRow {
            id: self.own,
            grouped_by: self.key.map_or(GroupedBy::Single, |k| k.by),
            service: self.service.as_ref(),
            key_fp: self.key_fp.as_ref(),
            start_ms: self.ts_ms,
            end_ms: self.end_ms,
            provider: self.provider,
            model: self.model.as_ref(),
            class: self.class,
        }
    }

    pub(super) fn failed(&self) -> bool {
        self.class != StatusClass::Ok
    }
}
