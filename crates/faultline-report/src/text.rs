//! How reports write numbers, times and scopes, shared by markdown and HTML.

use faultline_incidents::{self as incidents, Incident};

/// `openai, gpt-4o, service checkout, key fp_ab12`: what an incident covers.
pub(crate) fn scope(inc: &Incident) -> String {
    let mut parts = vec![inc
        .provider
        .map_or("unknown provider", |p| p.as_str())
        .to_owned()];
    // A value all its calls share, or each of several with its failing calls.
    let many = |list: &[incidents::Touched], what: &str| {
        (list.len() > 1).then(|| {
            let names = incidents::named(list, |t| {
                format!("{} ({})", incidents::shown(&t.name), t.errors)
            });
            format!("{what} {}", names.join(", "))
        })
    };
    parts.extend(
        inc.model
            .as_deref()
            .map(|m| incidents::shown(m).into_owned())
            .or_else(|| many(&inc.models, "models")),
    );
    if let Some(service) = &inc.service {
        parts.push(format!("service {}", incidents::shown(service)));
    } else {
        parts.extend(many(&inc.services, "services"));
    }
    if let Some(key) = &inc.key_fp {
        parts.push(format!("key {}", incidents::shown(key)));
    } else {
        parts.extend(many(&inc.keys, "keys"));
    }
    parts.join(", ")
}

pub(crate) fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "—".to_owned();
    }
    incidents::percent(part as f64 / whole as f64)
}

pub(crate) fn ms_text(ms: Option<f64>) -> String {
    match ms {
        None => "—".to_owned(),
        Some(ms) if ms >= 1000.0 => format!("{:.1} s", ms / 1000.0),
        Some(ms) => format!("{ms:.0} ms"),
    }
}

pub(crate) fn bytes_text(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} KB", b / 1e3)
    } else {
        format!("{bytes} bytes")
    }
}

/// `2026-03-10 12:00:02`.
pub(crate) fn clock(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

/// What an incident's card says besides its summary, evidence and id, as
/// labels and plain text, in the order both reports give them: when it
/// happened, how much failed, and the fix.
pub(crate) fn facts(inc: &Incident) -> [(&'static str, String); 3] {
    [
        (
            "When",
            format!(
                "{} to {} UTC ({})",
                clock(inc.start_ms),
                clock(inc.end_ms),
                incidents::duration_text(inc.duration_s())
            ),
        ),
        (
            "How much",
            format!(
                "{} of {} calls ({}), at most {} a minute",
                inc.errors,
                inc.requests,
                percent(inc.errors, inc.requests),
                inc.peak_rate
            ),
        ),
        (
            "Fix",
            format!("{}; escalate to {}", inc.action, inc.escalation),
        ),
    ]
}

/// What the failed attempts of a run used: tokens, and what they cost (the
/// logged cost, else list prices of the calls a provider answered), or
/// that the cost of some is unknown.
pub(crate) fn wasted_text(ops: &crate::OperationsOverview) -> String {
    let tokens = format!(
        "Failed calls logged {} prompt and {} completion tokens",
        ops.wasted_prompt_tokens, ops.wasted_completion_tokens
    );
    if ops.totals.failed_attempts == 0 {
        return format!("{tokens}.");
    }
    let unknown = match ops.cost_unknown {
        0 => String::new(),
        1 => ", and 1 request had a failed call of unknown cost (a timeout, or a model without a price)".to_owned(),
        n => format!(", and {n} requests had failed calls of unknown cost (a timeout, or a model without a price)"),
    };
    format!(
        "{tokens}; those a provider billed (answered calls: empty or blocked answers) cost ${:.4}{unknown}.",
        ops.wasted_cost_usd
    )
}
