//! From an [`Analysis`] to incidents and every output but the records: the
//! rollups, incidents.parquet, report.md, report.html, incidents.json and
//! summary.json, written into one directory.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use faultline_incidents::{self as incidents, DetectConfig, Incident};
use faultline_report::{Overview, Report};
use serde_json::{json, Value};

use crate::analysis::Analysis;
use crate::files::{rfc3339, Atomic, Staged};
use crate::operations::OperationStats;
use crate::progress::Progress;
use crate::read::Read;
use crate::tally::Tally;

/// How many of the most frequent unclassified messages the summary lists.
const TOP_UNKNOWN: usize = 10;

/// Every file a run may write in its output directory.
pub const OUTPUTS: [&str; 10] = [
    "records.parquet",
    "records",
    "operations.parquet",
    "quarantine.jsonl",
    "rollups.parquet",
    "incidents.parquet",
    "incidents.json",
    "summary.json",
    "report.md",
    "report.html",
];

/// The human-readable reports a run writes (the parquet tables are always written).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Formats {
    /// report.md
    pub md: bool,
    /// report.html
    pub html: bool,
    /// incidents.json and summary.json
    pub json: bool,
}

impl Formats {
    /// The files [`Analysis::finish`] writes with these formats.
    #[must_use]
    pub fn outputs(self) -> Vec<&'static str> {
        let mut names = vec!["rollups.parquet", "incidents.parquet"];
        if self.json {
            names.extend(["incidents.json", "summary.json"]);
        }
        if self.md {
            names.push("report.md");
        }
        if self.html {
            names.push("report.html");
        }
        names
    }
}

/// What a finished run found and wrote.
#[derive(Debug)]
pub struct Finished {
    /// Most severe first.
    pub incidents: Vec<Incident>,
    /// summary.json's content (also when it is not written).
    pub summary: Value,
    /// Calls counted as `(other)` in rollups and incidents, past the bound
    /// on distinct models and services.
    pub folded: u64,
    /// Every file the run wrote, in the order written.
    pub written: Vec<&'static str>,
    /// The counts of the run's calls.
    pub tally: Tally,
    /// What the operations add up to, when the calls were grouped.
    pub operations: Option<OperationStats>,
}

/// The value of a scoped thread; its panic, if it panicked, goes on here.
fn rejoin<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

impl Analysis {
    /// Detects incidents and writes every report output into `out`:
    /// rollups.parquet and incidents.parquet always, the rest as `formats`
    /// asks. `written` names the files written before (the records and the
    /// quarantine), for summary.json's list.
    pub fn finish(
        mut self,
        read: &Read,
        detect: &DetectConfig,
        formats: Formats,
        out: &Path,
        written: &[&'static str],
        progress: &dyn Progress,
    ) -> Result<Finished> {
        self.settle();
        let Analysis {
            tally,
            collector,
            rollups,
            operations,
            ..
        } = self;
        let folded = rollups.folded_calls();
        let (md, html) = (formats.md, formats.html);
        // Detection, rollups.parquet, the charts and the provider table need
        // only what was gathered, not each other: they run side by side, and
        // the run's tail is shorter.
        progress.step("detecting incidents and writing rollups");
        let (incidents, charts, providers, written_rollups) = std::thread::scope(|scope| {
            let detection = scope.spawn(|| {
                let step = Instant::now();
                let incidents = incidents::detect(&collector.finish(), detect);
                tracing::info!(
                    seconds = step.elapsed().as_secs_f64(),
                    incidents = incidents.len(),
                    "detected incidents"
                );
                incidents
            });
            let rollups = &rollups;
            let charts = scope.spawn(move || html.then(|| rollups.charts()).flatten());
            let providers = scope.spawn(move || {
                if md || html {
                    rollups.providers()
                } else {
                    Vec::new()
                }
            });
            let written = (|| -> Result<()> {
                let step = Instant::now();
                let staged = Staged::new(out, "rollups.parquet");
                rollups
                    .write(staged.path())
                    .context("cannot write the rollups")?;
                staged.commit()?;
                tracing::info!(
                    seconds = step.elapsed().as_secs_f64(),
                    "wrote rollups.parquet"
                );
                Ok(())
            })();
            (
                rejoin(detection),
                rejoin(charts),
                rejoin(providers),
                written,
            )
        });
        written_rollups?;
        let mut incidents = incidents;
        if let Some(operations) = &operations {
            // Known only once calls are grouped into requests.
            incidents::add_retry_findings(&mut incidents, &operations.behaviour.findings(), detect);
        }

        progress.step("writing incidents");
        let staged = Staged::new(out, "incidents.parquet");
        faultline_report::write_incidents(&incidents, staged.path())?;
        staged.commit()?;

        if md || html {
            progress.step("writing reports");
            let step = Instant::now();
            let report = Report {
                overview: overview(read, &tally, operations.as_ref()),
                providers,
                incidents: &incidents,
                charts,
            };
            if md {
                let mut file = Atomic::create(out, "report.md")?;
                file.write_all(faultline_report::markdown(&report).as_bytes())?;
                file.commit()?;
            }
            if html {
                let mut file = Atomic::create(out, "report.html")?;
                file.write_all(faultline_report::html(&report).as_bytes())?;
                file.commit()?;
            }
            tracing::info!(seconds = step.elapsed().as_secs_f64(), "wrote the reports");
        }

        let mut all_written: Vec<&'static str> = written.to_vec();
        all_written.extend(formats.outputs());
        let mut summary = summary_json(read, &tally, &incidents, &all_written, folded);
        summary["operations"] = operations
            .as_ref()
            .map_or(Value::Null, OperationStats::json);
        if formats.json {
            let incidents: Vec<Value> = incidents.iter().map(incident_json).collect();
            for (name, value) in [
                ("incidents.json", &Value::from(incidents)),
                ("summary.json", &summary),
            ] {
                let mut file = Atomic::create(out, name)?;
                serde_json::to_writer_pretty(&mut file, value)?;
                writeln!(file)?;
                file.commit()?;
            }
        }
        Ok(Finished {
            incidents,
            summary,
            folded,
            written: all_written,
            tally,
            operations,
        })
    }
}

fn overview(read: &Read, tally: &Tally, operations: Option<&OperationStats>) -> Overview {
    let ok = tally.by_class.get("ok").copied().unwrap_or(0);
    let records = tally.records();
    let most_first = |items: Vec<(String, u64)>| {
        let mut items = items;
        items.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        items
    };
    Overview {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        sample: read.sample,
        inputs: read.inputs.len(),
        bytes: read.bytes,
        lines: read.lines,
        records,
        failed: records.saturating_sub(ok),
        bad_lines: read.bad_lines,
        bad_by_reason: read
            .bad_by_reason
            .iter()
            .map(|(r, n)| (r.clone(), *n))
            .collect(),
        input_errors: read.problems.clone(),
        lines_with_secrets: read.lines_with_secrets,
        failures_by_class: most_first(
            tally
                .by_class
                .iter()
                .filter(|(class, _)| **class != "ok")
                .map(|(class, n)| ((*class).to_owned(), *n))
                .collect(),
        ),
        failures_by_cause: most_first(
            tally
                .by_cause
                .iter()
                .map(|(c, n)| (c.clone(), *n))
                .collect(),
        ),
        top_unknown: top_unknown(tally),
        operations: operations.map(OperationStats::overview),
    }
}

fn summary_json(
    read: &Read,
    tally: &Tally,
    incidents: &[Incident],
    outputs: &[&str],
    folded: u64,
) -> Value {
    let count = |key: fn(&Incident) -> &'static str| {
        let mut out: BTreeMap<&'static str, u64> = BTreeMap::new();
        for inc in incidents {
            *out.entry(key(inc)).or_default() += 1;
        }
        out
    };
    json!({
        "faultline_version": env!("CARGO_PKG_VERSION"),
        "embedded_sample": read.sample,
        "threads": read.threads,
        "run_seconds": read.started.elapsed().as_secs_f64(),
        "inputs": read.inputs,
        "input_errors": read.problems,
        "outputs": outputs,
        "totals": {
            "bytes": read.bytes,
            "lines": read.lines,
            "blank_lines": read.blank_lines,
            "records": tally.records(),
            "filtered_out": tally.filtered_out,
            "bad_lines": read.bad_lines,
            "lines_with_plaintext_secrets": read.lines_with_secrets,
            "child_spans": read.child_spans,
            "child_spans_unjoined": read.child_spans_unjoined,
            "duplicate_spans": read.duplicate_spans,
            "records_with_error": tally.with_error,
            "empty_responses": tally.empty_responses,
            "calls_counted_as_other": folded,
        },
        "bad_lines_by_reason": read.bad_by_reason,
        "records_by_format": tally.by_format,
        "records_by_http_status": tally.by_status,
        "records_by_provider": tally.by_provider,
        "records_by_status_class": tally.by_class,
        "failures_by_cause": tally.by_cause,
        "top_unknown_errors": top_unknown(tally)
            .into_iter()
            .map(|(count, message)| json!({"count": count, "message": message}))
            .collect::<Vec<_>>(),
        "incidents_by_pattern": count(|i| i.pattern.as_str()),
        "incidents_by_severity": count(|i| i.severity.as_str()),
    })
}

/// One incident as incidents.json holds it (docs/schema.md).
pub fn incident_json(inc: &Incident) -> Value {
    json!({
        "id": inc.id,
        "pattern": inc.pattern.as_str(),
        "severity": inc.severity.as_str(),
        "provider": inc.provider.map(faultline_classify::Provider::as_str),
        "model": inc.model.as_deref(),
        "service": inc.service.as_deref(),
        "key_fp": inc.key_fp.as_deref(),
        "cause": inc.cause.as_deref(),
        "start": rfc3339(inc.start_ms),
        "end": rfc3339(inc.end_ms),
        "duration_s": inc.duration_s(),
        "requests": inc.requests,
        "errors": inc.errors,
        "error_rate": (inc.error_rate() * 10_000.0).round() / 10_000.0,
        "peak_rate": inc.peak_rate,
        "summary": inc.summary,
        "action": inc.action,
        "escalation": inc.escalation,
        "evidence": inc.evidence,
        "models": touched_json(&inc.models),
        "services": touched_json(&inc.services),
        "keys": touched_json(&inc.keys),
    })
}

/// `[{"name": ..., "errors": n}, ...]`, busiest first.
fn touched_json(list: &[faultline_incidents::Touched]) -> Value {
    list.iter()
        .map(|t| json!({"name": &*t.name, "errors": t.errors}))
        .collect()
}

/// The most frequent messages of failures no rule explained, most frequent first.
#[must_use]
pub fn top_unknown(tally: &Tally) -> Vec<(u64, String)> {
    let mut messages: Vec<(u64, String)> = tally
        .unknown_messages
        .iter()
        .map(|(message, n)| (*n, message.clone()))
        .collect();
    messages.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    messages.truncate(TOP_UNKNOWN);
    messages
}
