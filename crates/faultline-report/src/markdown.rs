//! `report.md`: what a postmortem needs, in the order it is read.

use std::fmt::Write as _;

use faultline_incidents::Severity;

use faultline_incidents::shown;

use crate::inert;
use crate::text::{bytes_text, clock, facts, ms_text, percent, scope, wasted_text};

use crate::{OperationsOverview, Report};

/// The markdown report.
#[must_use]
pub fn markdown(report: &Report<'_>) -> String {
    let Report {
        overview,
        providers,
        incidents,
        ..
    } = report;
    let mut out = String::new();
    let first = providers.iter().map(|p| p.first_ms).min();
    let last = providers.iter().map(|p| p.last_ms).max();
    let _ = writeln!(out, "# faultline report\n");
    let window = match (first, last) {
        (Some(a), Some(b)) => format!("{} to {} UTC", clock(a), clock(b)),
        _ => "no calls".to_owned(),
    };
    let _ = writeln!(
        out,
        "{}{} input(s), {}, {window}. faultline {}.\n",
        if overview.sample {
            "The built-in sample day: "
        } else {
            ""
        },
        overview.inputs,
        bytes_text(overview.bytes),
        overview.version
    );

    let _ = writeln!(out, "## Summary\n");
    let _ = writeln!(out, "| calls | failed | failure rate | incidents | critical | high | medium | low | bad lines |");
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let count = |s: Severity| incidents.iter().filter(|i| i.severity == s).count();
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
        overview.records,
        overview.failed,
        percent(overview.failed, overview.records),
        incidents.len(),
        count(Severity::Critical),
        count(Severity::High),
        count(Severity::Medium),
        count(Severity::Low),
        overview.bad_lines
    );

    let _ = writeln!(out, "## Incidents\n");
    if incidents.is_empty() {
        let _ = writeln!(out, "No incident: failures were isolated.\n");
    } else {
        let _ = writeln!(out, "Most severe first.\n");
    }
    for (n, inc) in incidents.iter().enumerate() {
        let _ = writeln!(
            out,
            "### {}. {} — {} ({})\n",
            n + 1,
            inc.pattern,
            inert::markdown(&scope(inc)),
            inc.severity
        );
        let _ = writeln!(out, "{}\n", inert::markdown(&inc.summary));
        for (label, text) in facts(inc) {
            let _ = writeln!(out, "- **{label}:** {}", inert::markdown(&text));
        }
        let _ = writeln!(
            out,
            "- **Evidence:** {}",
            inc.evidence
                .iter()
                .map(|e| inert::code_span(e))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(out, "- **Id:** {}\n", inert::code_span(&inc.id));
    }

    let _ = writeln!(out, "## Providers\n");
    let _ = writeln!(out, "| provider | calls | failed | failure rate | p50 latency | p95 latency | most frequent failure |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---|");
    for p in providers {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            p.provider,
            p.requests,
            p.errors,
            percent(p.errors, p.requests),
            ms_text(p.p50_ms),
            ms_text(p.p95_ms),
            p.top_failure
                .as_ref()
                .map_or_else(|| "—".to_owned(), |(class, n)| format!("{class} ({n})"))
        );
    }
    let _ = writeln!(out);

    if let Some(ops) = &overview.operations {
        operations(&mut out, ops);
    }

    if !overview.failures_by_cause.is_empty() {
        let _ = writeln!(out, "## Failures by cause\n");
        let _ = writeln!(out, "| cause | calls |");
        let _ = writeln!(out, "|---|---:|");
        for (cause, n) in &overview.failures_by_cause {
            let _ = writeln!(out, "| {cause} | {n} |");
        }
        let _ = writeln!(out);
    }

    if !overview.top_unknown.is_empty() {
        let _ = writeln!(out, "## Failures no rule explains\n");
        let _ = writeln!(
            out,
            "The most frequent; a rule file (`--rules`) can name them.\n"
        );
        let _ = writeln!(out, "| calls | message |");
        let _ = writeln!(out, "|---:|---|");
        for (n, message) in &overview.top_unknown {
            let _ = writeln!(out, "| {n} | {} |", inert::markdown(&shown(message)));
        }
        let _ = writeln!(out);
    }

    let _ = writeln!(out, "## Data quality\n");
    let _ = writeln!(
        out,
        "- {} lines read, {} calls, {} bad lines (in `quarantine.jsonl` with file, line and reason)",
        overview.lines, overview.records, overview.bad_lines
    );
    for (reason, n) in &overview.bad_by_reason {
        let _ = writeln!(out, "  - {reason}: {n}");
    }
    for problem in &overview.input_errors {
        let _ = writeln!(out, "- input not read: {}", inert::markdown(problem));
    }
    if overview.lines_with_secrets > 0 {
        let _ = writeln!(
            out,
            "- {} lines hold plaintext API keys or tokens; none is copied to any output",
            overview.lines_with_secrets
        );
    }
    out
}

/// The section on requests once retries and fallbacks were done.
fn operations(out: &mut String, ops: &OperationsOverview) {
    let t = &ops.totals;
    let _ = writeln!(out, "## Requests after retries\n");
    let _ = writeln!(
        out,
        "{} calls were {} requests: {} calls failed ({}), {} requests failed once retries and fallbacks were done ({}). {} requests were retried; {} fell back to another model or provider.\n",
        t.attempts,
        t.operations,
        t.failed_attempts,
        percent(t.failed_attempts, t.attempts),
        t.failed_operations,
        percent(t.failed_operations, t.operations),
        ops.retried,
        ops.fell_back,
    );
    let _ = writeln!(out, "{}\n", wasted_text(ops));
    let _ = writeln!(out, "| provider | calls | failed calls | call failure rate | requests | failed requests | request failure rate |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for p in &ops.by_provider {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            inert::markdown(&p.name),
            p.attempts,
            p.failed_attempts,
            percent(p.failed_attempts, p.attempts),
            p.operations,
            p.failed_operations,
            percent(p.failed_operations, p.operations),
        );
    }
    let _ = writeln!(out);
    behaviour(out, ops);
}

/// The section on retries against the guide.
fn behaviour(out: &mut String, ops: &OperationsOverview) {
    let _ = writeln!(out, "## How clients handled failures\n");
    if ops.behaviour.is_empty() {
        let _ = writeln!(
            out,
            "No retry went against the guide (the action of each failure's class).\n"
        );
        return;
    }
    let _ = writeln!(
        out,
        "Retries set against what the guide says for the failure before them.\n"
    );
    let _ = writeln!(
        out,
        "| the guide says | clients | retries | requests | services | example requests |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---|---|");
    for line in &ops.behaviour {
        let services: Vec<String> = line
            .services
            .iter()
            .map(|(name, n)| format!("{} ({n})", inert::markdown(&shown(name))))
            .collect();
        let examples: Vec<String> = line.examples.iter().map(|e| inert::code_span(e)).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            inert::markdown(&line.guide),
            inert::markdown(&line.clients),
            line.retries,
            line.operations,
            services.join(", "),
            examples.join(", "),
        );
    }
    let _ = writeln!(out);
}
