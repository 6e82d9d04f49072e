//! The state a run keeps of its classified calls: one fan-out shared by
//! `analyze` (calls classified as they are read) and `report` (calls read
//! back from records.parquet).

use faultline_classify::{Cause, Provider, StatusClass};
use faultline_incidents::{Collector, DetectConfig};
use faultline_ingest::{Format, Record};
use faultline_report::Rollups;

use crate::operations::OperationStats;
use crate::tally::{family, Kinds, Tally};

/// Every aggregate fed per call: the counts, the incident collector and
/// the rollups. Parts built apart (one per batch, on worker threads) are
/// merged in input order with [`Analysis::merge`], which gives what one
/// part fed every call would hold.
#[derive(Debug)]
pub struct Analysis {
    pub(crate) tally: Tally,
    /// Calls by kind, folded into the tally's maps on merge: a lookup in
    /// each map per call cost more than the rest of the tally.
    kinds: Kinds,
    pub(crate) collector: Collector,
    pub(crate) rollups: Rollups,
    /// Calls whose log line held a plaintext secret (calls read back).
    pub(crate) records_with_secrets: u64,
    /// Calls added, kept or not.
    pub(crate) calls: usize,
    /// The operations the calls were grouped into, when they were (as
    /// logs are read, in input order; not from records read back).
    pub(crate) operations: Option<OperationStats>,
}

impl Analysis {
    /// An empty analysis with the detection thresholds and the rollup
    /// window (milliseconds) of the run.
    #[must_use]
    pub fn new(detect: &DetectConfig, window_ms: i64) -> Analysis {
        Analysis {
            tally: Tally::default(),
            kinds: Kinds::default(),
            collector: Collector::new(detect),
            rollups: Rollups::new(window_ms),
            records_with_secrets: 0,
            calls: 0,
            operations: None,
        }
    }

    /// Takes one kept call into account: its record and its classification
    /// (provider, status class, cause). `format` is the record's log format
    /// when it is one of [`Format::ALL`].
    pub fn add(
        &mut self,
        rec: &Record,
        provider: Provider,
        class: StatusClass,
        cause: &Cause,
        format: Option<Format>,
    ) {
        self.kinds
            .add((provider, class, family(rec.http_status), format));
        self.tally.add_details(rec, class, cause);
        self.records_with_secrets += u64::from(rec.secrets_found > 0);
        self.collector.add_outcome(rec, provider, class, cause);
        self.rollups.add(rec, provider, class);
        self.calls += 1;
    }

    /// Counts a call's format by name, for formats read back that this
    /// version does not know.
    pub fn add_format_name(&mut self, name: &str) {
        self.tally.format(name);
    }

    /// Counts a call the run's filter left out.
    pub fn add_filtered_out(&mut self) {
        self.tally.filtered_out += 1;
        self.calls += 1;
    }

    /// Adds a part that followed this one in input order.
    pub fn merge(&mut self, other: Analysis) {
        let Analysis {
            mut tally,
            kinds,
            collector,
            rollups,
            records_with_secrets,
            calls,
            operations: _,
        } = other;
        kinds.fold_into(&mut tally);
        self.tally.merge(tally);
        self.collector.merge(collector);
        self.rollups.merge(rollups);
        self.records_with_secrets += records_with_secrets;
        self.calls += calls;
    }

    /// The counts so far (of merged parts: a part's own calls are counted
    /// by kind until it is merged).
    #[must_use]
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// What the operations add up to, when the calls were grouped.
    #[must_use]
    pub fn operations(&self) -> Option<&OperationStats> {
        self.operations.as_ref()
    }

    /// Calls added to this part (kept or filtered out).
    #[must_use]
    pub fn calls(&self) -> usize {
        self.calls
    }

    /// Folds this part's own counts by kind into its tally.
    pub(crate) fn settle(&mut self) {
        std::mem::take(&mut self.kinds).fold_into(&mut self.tally);
    }
}
