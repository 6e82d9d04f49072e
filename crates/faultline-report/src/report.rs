//! What a report says, gathered once and written as markdown and HTML.

use faultline_incidents::Incident;

use crate::charts::Charts;
use crate::tables::ProviderRow;

/// What the run read and counted, for the report's headline and data-quality
/// sections. The caller fills it from its ingest summary and tallies.
#[derive(Debug, Clone, Default)]
pub struct Overview {
    /// faultline's version.
    pub version: String,
    /// True when the built-in sample day was analyzed.
    pub sample: bool,
    /// Input files read.
    pub inputs: usize,
    /// Bytes read (decompressed).
    pub bytes: u64,
    /// Lines read.
    pub lines: u64,
    /// Calls normalized.
    pub records: u64,
    /// Calls that failed (status class other than ok).
    pub failed: u64,
    /// Bad lines, total and by reason.
    pub bad_lines: u64,
    /// Bad lines by reason.
    pub bad_by_reason: Vec<(String, u64)>,
    /// Inputs that could not be read, with the reason.
    pub input_errors: Vec<String>,
    /// Lines holding plaintext keys.
    pub lines_with_secrets: u64,
    /// Failures by status class, most frequent first.
    pub failures_by_class: Vec<(String, u64)>,
    /// Failures by cause, most frequent first.
    pub failures_by_cause: Vec<(String, u64)>,
    /// Failures no rule explains: count and message.
    pub top_unknown: Vec<(u64, String)>,
    /// Attempts grouped into the requests they served; `None` when the run
    /// did not group them (records read back).
    pub operations: Option<OperationsOverview>,
}

/// What the operations of a run add up to: raw (per attempt) against
/// effective (per operation) failures, and what the failed attempts used.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperationsOverview {
    pub totals: OperationRates,
    /// Operations with more than one attempt.
    pub retried: u64,
    /// Operations that tried more than one model or provider.
    pub fell_back: u64,
    pub wasted_prompt_tokens: u64,
    pub wasted_completion_tokens: u64,
    /// Logged cost of failed attempts, in US dollars.
    pub wasted_cost_usd: f64,
    /// Operations with a failed attempt that logged no cost.
    pub cost_unknown: u64,
    /// Per provider, in name order.
    pub by_provider: Vec<OperationRates>,
    /// Retries against the guide, per kind.
    pub behaviour: Vec<BehaviourLine>,
}

/// One kind of retry the guide advises against, as reports show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BehaviourLine {
    /// What the guide says.
    pub guide: String,
    /// What the clients did.
    pub clients: String,
    pub retries: u64,
    pub operations: u64,
    /// Services, most operations first.
    pub services: Vec<(String, u64)>,
    /// Example operation ids.
    pub examples: Vec<String>,
}

/// Attempts and operations of one provider (or of all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperationRates {
    pub name: String,
    pub attempts: u64,
    pub failed_attempts: u64,
    pub operations: u64,
    pub failed_operations: u64,
}

/// Everything the markdown and HTML reports show.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    /// What was read and counted.
    pub overview: Overview,
    /// Per provider, busiest first.
    pub providers: Vec<ProviderRow>,
    /// The incidents, most severe first.
    pub incidents: &'a [Incident],
    /// The time series the HTML report draws (None when there were no calls).
    pub charts: Option<Charts>,
}
