//! `report.html`: the markdown report's content plus charts, in one file that
//! needs nothing else: inline CSS, inline SVG, no script, and a content
//! security policy that forbids every fetch, so it opens the same offline, in
//! a mail attachment or in a ticket.
//!
//! Every text taken from the logs goes through [`esc`].

use std::fmt::Write as _;

use faultline_incidents::{shown, Incident, Severity};

use crate::charts::{Charts, ProviderSeries};
use crate::text::{bytes_text, clock, facts, ms_text, percent, scope, wasted_text};
use crate::{OperationsOverview, Report};

/// Colors of series, in order (Tableau 10).
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// Chart geometry, in SVG user units.
const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 26.0;

const STYLE: &str = r#"
:root { color-scheme: light; --fg: #1d2329; --muted: #5b6670; --line: #d9dee3; --bg: #ffffff; --panel: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 1040px; margin: 0 auto; padding: 24px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 32px 0 12px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 0 0 6px; }
p.lead { color: var(--muted); margin: 0 0 16px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(112px, 1fr)); gap: 10px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.card b { display: block; font-size: 22px; }
.card span { color: var(--muted); font-size: 13px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; background: var(--panel); padding: 1px 4px; border-radius: 3px; overflow-wrap: anywhere; }
.incident { border: 1px solid var(--line); border-left-width: 6px; border-radius: 6px; padding: 10px 14px; margin: 0 0 12px; }
.incident dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 8px 0 0; }
.incident dt { color: var(--muted); }
.incident dd { margin: 0; }
.sev { display: inline-block; font-size: 12px; font-weight: 600; color: #fff; border-radius: 3px; padding: 0 6px; margin-left: 6px; vertical-align: 2px; }
.critical { border-left-color: #b3261e; } .sev.critical { background: #b3261e; }
.high { border-left-color: #e8710a; } .sev.high { background: #e8710a; }
.medium { border-left-color: #c9a100; } .sev.medium { background: #9a7b00; }
.low { border-left-color: #5b6670; } .sev.low { background: #5b6670; }
figure { margin: 0 0 20px; }
figcaption { font-weight: 600; margin-bottom: 4px; }
svg { width: 100%; height: auto; display: block; }
svg text { font: 11px system-ui, sans-serif; fill: var(--muted); }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .axis { stroke: #8a949e; stroke-width: 1; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 13px; color: var(--muted); margin-top: 2px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
footer { color: var(--muted); font-size: 13px; margin-top: 32px; }
"#;

/// HTML-escapes text for element content and attribute values.
#[must_use]
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The HTML report.
#[must_use]
pub fn html(report: &Report<'_>) -> String {
    let Report {
        overview,
        providers,
        incidents,
        charts,
    } = report;
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<title>faultline report</title>\n<style>");
    out.push_str(STYLE);
    out.push_str("</style>\n</head>\n<body>\n<main>\n<h1>faultline report</h1>\n");

    let first = providers.iter().map(|p| p.first_ms).min();
    let last = providers.iter().map(|p| p.last_ms).max();
    let window = match (first, last) {
        (Some(a), Some(b)) => format!("{} to {} UTC", clock(a), clock(b)),
        _ => "no calls".to_owned(),
    };
    let _ = writeln!(
        out,
        "<p class=\"lead\">{}{} input(s), {}, {}.</p>",
        if overview.sample {
            "The built-in sample day: "
        } else {
            ""
        },
        overview.inputs,
        esc(&bytes_text(overview.bytes)),
        esc(&window)
    );

    let count = |s: Severity| incidents.iter().filter(|i| i.severity == s).count();
    out.push_str("<section id=\"summary\" class=\"cards\">\n");
    let cards = [
        (overview.records.to_string(), "calls"),
        (overview.failed.to_string(), "failed"),
        (percent(overview.failed, overview.records), "failure rate"),
        (incidents.len().to_string(), "incidents"),
        (count(Severity::Critical).to_string(), "critical"),
        (count(Severity::High).to_string(), "high"),
        (overview.bad_lines.to_string(), "bad lines"),
    ];
    for (value, label) in cards {
        let _ = writeln!(
            out,
            "<div class=\"card\"><b>{}</b><span>{label}</span></div>",
            esc(&value)
        );
    }
    out.push_str("</section>\n");

    if let Some(charts) = charts {
        out.push_str("<h2 id=\"timeline\">Timeline</h2>\n");
        timeline(&mut out, charts, incidents);
        charts_section(&mut out, charts);
    }

    out.push_str("<h2 id=\"incidents\">Incidents</h2>\n");
    if incidents.is_empty() {
        out.push_str("<p>No incident: failures were isolated.</p>\n");
    } else {
        out.push_str("<p>Most severe first.</p>\n");
    }
    for (n, inc) in incidents.iter().enumerate() {
        incident(&mut out, n + 1, inc);
    }

    out.push_str("<h2 id=\"providers\">Providers</h2>\n<table>\n<tr><th>provider</th><th class=\"n\">calls</th><th class=\"n\">failed</th><th class=\"n\">failure rate</th><th class=\"n\">p50 latency</th><th class=\"n\">p95 latency</th><th>most frequent failure</th></tr>\n");
    for p in providers {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            esc(&p.provider),
            p.requests,
            p.errors,
            percent(p.errors, p.requests),
            ms_text(p.p50_ms),
            ms_text(p.p95_ms),
            p.top_failure
                .as_ref()
                .map_or_else(|| "—".to_owned(), |(class, n)| esc(&format!("{class} ({n})")))
        );
    }
    out.push_str("</table>\n");

    if let Some(ops) = &overview.operations {
        operations(&mut out, ops);
    }

    if !overview.failures_by_cause.is_empty() {
        out.push_str("<h2 id=\"causes\">Failures by cause</h2>\n<table>\n<tr><th>cause</th><th class=\"n\">calls</th></tr>\n");
        for (cause, n) in &overview.failures_by_cause {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"n\">{n}</td></tr>",
                esc(cause)
            );
        }
        out.push_str("</table>\n");
    }

    if !overview.top_unknown.is_empty() {
        out.push_str("<h2 id=\"unknown\">Failures no rule explains</h2>\n<p>The most frequent; a rule file (<code>--rules</code>) can name them.</p>\n<table>\n<tr><th class=\"n\">calls</th><th>message</th></tr>\n");
        for (n, message) in &overview.top_unknown {
            let _ = writeln!(
                out,
                "<tr><td class=\"n\">{n}</td><td><code>{}</code></td></tr>",
                esc(message)
            );
        }
        out.push_str("</table>\n");
    }

    out.push_str("<h2 id=\"data-quality\">Data quality</h2>\n<ul>\n");
    let _ = writeln!(
        out,
        "<li>{} lines read, {} calls, {} bad lines (in <code>quarantine.jsonl</code> with file, line and reason)",
        overview.lines, overview.records, overview.bad_lines
    );
    if !overview.bad_by_reason.is_empty() {
        out.push_str("<ul>");
        for (reason, n) in &overview.bad_by_reason {
            let _ = write!(out, "<li>{}: {n}</li>", esc(reason));
        }
        out.push_str("</ul>");
    }
    out.push_str("</li>\n");
    for problem in &overview.input_errors {
        let _ = writeln!(out, "<li>input not read: {}</li>", esc(problem));
    }
    if overview.lines_with_secrets > 0 {
        let _ = writeln!(
            out,
            "<li>{} lines hold plaintext API keys or tokens; none is copied to any output</li>",
            overview.lines_with_secrets
        );
    }
    out.push_str("</ul>\n");
    let _ = writeln!(
        out,
        "<footer>faultline {}. Times are UTC.</footer>\n</main>\n</body>\n</html>",
        esc(&overview.version)
    );
    out
}

/// The section on requests once retries and fallbacks were done.
fn operations(out: &mut String, ops: &OperationsOverview) {
    let t = &ops.totals;
    out.push_str("<h2 id=\"requests\">Requests after retries</h2>\n");
    let _ = writeln!(
        out,
        "<p>{} calls were {} requests: {} calls failed ({}), {} requests failed once retries and fallbacks were done ({}). {} requests were retried; {} fell back to another model or provider.</p>\n<p>{}</p>",
        t.attempts,
        t.operations,
        t.failed_attempts,
        percent(t.failed_attempts, t.attempts),
        t.failed_operations,
        percent(t.failed_operations, t.operations),
        ops.retried,
        ops.fell_back,
        esc(&wasted_text(ops)),
    );
    out.push_str("<table>\n<tr><th>provider</th><th class=\"n\">calls</th><th class=\"n\">failed calls</th><th class=\"n\">call failure rate</th><th class=\"n\">requests</th><th class=\"n\">failed requests</th><th class=\"n\">request failure rate</th></tr>\n");
    for p in &ops.by_provider {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&p.name),
            p.attempts,
            p.failed_attempts,
            percent(p.failed_attempts, p.attempts),
            p.operations,
            p.failed_operations,
            percent(p.failed_operations, p.operations),
        );
    }
    out.push_str("</table>\n");
    behaviour(out, ops);
}

/// The section on retries against the guide.
fn behaviour(out: &mut String, ops: &OperationsOverview) {
    out.push_str("<h2 id=\"client-behaviour\">How clients handled failures</h2>\n");
    if ops.behaviour.is_empty() {
        out.push_str(
            "<p>No retry went against the guide (the action of each failure's class).</p>\n",
        );
        return;
    }
    out.push_str("<p>Retries set against what the guide says for the failure before them.</p>\n<table>\n<tr><th>the guide says</th><th>clients</th><th class=\"n\">retries</th><th class=\"n\">requests</th><th>services</th><th>example requests</th></tr>\n");
    for line in &ops.behaviour {
        let services: Vec<String> = line
            .services
            .iter()
            .map(|(name, n)| format!("{} ({n})", esc(&shown(name))))
            .collect();
        let examples: Vec<String> = line
            .examples
            .iter()
            .map(|e| format!("<code>{}</code>", esc(e)))
            .collect();
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&line.guide),
            esc(&line.clients),
            line.retries,
            line.operations,
            services.join(", "),
            examples.join(", "),
        );
    }
    out.push_str("</table>\n");
}

fn incident(out: &mut String, n: usize, inc: &Incident) {
    let severity = inc.severity.as_str();
    let _ = writeln!(
        out,
        "<article class=\"incident {severity}\" id=\"{}\">\n<h3>{n}. {} — {}<span class=\"sev {severity}\">{severity}</span></h3>\n<p>{}</p>\n<dl>",
        esc(&inc.id),
        esc(inc.pattern.as_str()),
        esc(&scope(inc)),
        esc(&inc.summary)
    );
    for (label, text) in facts(inc) {
        let _ = writeln!(out, "<dt>{label}</dt><dd>{}</dd>", esc(&text));
    }
    let evidence = inc
        .evidence
        .iter()
        .map(|e| format!("<code>{}</code>", esc(e)))
        .collect::<Vec<_>>()
        .join(" ");
    let _ = writeln!(out, "<dt>Evidence</dt><dd>{evidence}</dd>");
    let _ = writeln!(
        out,
        "<dt>Id</dt><dd><code>{}</code></dd>\n</dl>\n</article>",
        esc(&inc.id)
    );
}

/// The charts of calls, failures and latency over time.
fn charts_section(out: &mut String, charts: &Charts) {
    let per = width_text(charts.bucket_ms);
    let colors: Vec<&str> = (0..charts.providers.len())
        .map(|i| PALETTE[i % PALETTE.len()])
        .collect();

    let per_provider = |counts: fn(&ProviderSeries) -> &[u64]| -> Vec<Series<'_>> {
        charts
            .providers
            .iter()
            .zip(&colors)
            .map(|(p, color)| Series {
                name: &p.provider,
                color,
                values: counts(p).iter().map(|&n| Some(n as f64)).collect(),
            })
            .collect()
    };
    for (id, caption, label, series) in [
        (
            "chart-requests",
            format!("Calls per {per}, by provider"),
            "calls",
            per_provider(|p| &p.requests),
        ),
        (
            "chart-errors",
            format!("Failed calls per {per}, by provider"),
            "failed calls",
            per_provider(|p| &p.errors),
        ),
    ] {
        let svg = line_chart(charts, &series, Scale::Linear, label);
        figure(out, id, &caption, &svg, &series);
    }

    if !charts.failures_by_class.is_empty() {
        let classes: Vec<Series<'_>> = charts
            .failures_by_class
            .iter()
            .enumerate()
            .map(|(i, (class, n))| Series {
                name: class,
                color: PALETTE[i % PALETTE.len()],
                values: n.iter().map(|&n| Some(n as f64)).collect(),
            })
            .collect();
        figure(
            out,
            "chart-classes",
            &format!("Failed calls per {per}, by status class (stacked)"),
            &stacked_bars(charts, &classes),
            &classes,
        );
    }

    if charts.latency.iter().any(|q| q.iter().any(Option::is_some)) {
        let latency: Vec<Series<'_>> = ["p50", "p95", "p99"]
            .iter()
            .zip(&charts.latency)
            .zip([PALETTE[0], PALETTE[1], PALETTE[2]])
            .map(|((name, values), color)| Series {
                name,
                color,
                values: values.clone(),
            })
            .collect();
        figure(
            out,
            "chart-latency",
            &format!("Latency percentiles per {per}, all calls (ms, log scale)"),
            &line_chart(charts, &latency, Scale::Log, "latency"),
            &latency,
        );
    }
}

struct Series<'a> {
    name: &'a str,
    color: &'a str,
    values: Vec<Option<f64>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Scale {
    Linear,
    Log,
}

fn figure(out: &mut String, id: &str, caption: &str, svg: &str, series: &[Series<'_>]) {
    let _ = writeln!(
        out,
        "<figure id=\"{id}\">\n<figcaption>{}</figcaption>\n{svg}",
        esc(caption)
    );
    out.push_str("<div class=\"legend\">");
    for s in series {
        let _ = write!(
            out,
            "<span><i style=\"background:{}\"></i>{}</span>",
            s.color,
            esc(s.name)
        );
    }
    out.push_str("</div>\n</figure>\n");
}

/// A bucket width as a reader says it: `minute`, `5 min`, `hour`, `3 h`, `day`.
fn width_text(ms: i64) -> String {
    const UNITS: [(i64, &str, &str); 4] = [
        (86_400_000, "day", "days"),
        (3_600_000, "hour", "h"),
        (60_000, "minute", "min"),
        (1000, "second", "s"),
    ];
    for (unit, one, many) in UNITS {
        if ms % unit == 0 {
            return match ms / unit {
                1 => one.to_owned(),
                n => format!("{n} {many}"),
            };
        }
    }
    format!("{ms} ms")
}

/// A number rounded up to 1, 2 or 5 times a power of ten.
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&v| v >= value)
        .unwrap_or(10.0 * magnitude)
}

fn number_text(value: f64) -> String {
    if value >= 1e6 {
        format!("{}M", value / 1e6)
    } else if value >= 1e3 {
        format!("{}k", value / 1e3)
    } else {
        format!("{value}")
    }
}

/// x of bucket `i`'s center.
fn x_of(charts: &Charts, i: usize) -> f64 {
    let plot = WIDTH - LEFT - RIGHT;
    LEFT + plot * (i as f64 + 0.5) / charts.buckets.max(1) as f64
}

/// x of a time, clamped to the plot.
fn x_of_time(charts: &Charts, ms: i64) -> f64 {
    let plot = WIDTH - LEFT - RIGHT;
    let span = (charts.end_ms() - charts.start_ms).max(1) as f64;
    LEFT + plot * ((ms - charts.start_ms) as f64 / span).clamp(0.0, 1.0)
}

fn svg_open(out: &mut String, height: f64, label: &str) {
    let _ = write!(
        out,
        "<svg viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"{}\">",
        esc(label)
    );
}

/// Vertical grid lines with time labels, about six of them.
fn time_axis(out: &mut String, charts: &Charts, height: f64) {
    let span = charts.end_ms() - charts.start_ms;
    let format = if span > 2 * 86_400_000 {
        "%m-%d %H:%M"
    } else {
        "%H:%M"
    };
    let step = (charts.buckets / 6).max(1);
    for i in (0..=charts.buckets).step_by(step) {
        let x = x_of_time(charts, charts.bucket_start(i));
        let label = chrono::DateTime::from_timestamp_millis(charts.bucket_start(i))
            .map_or_else(String::new, |t| t.format(format).to_string());
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{TOP}\" y2=\"{:.1}\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            height - BOTTOM,
            height - 8.0
        );
    }
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
        WIDTH - RIGHT,
        height - BOTTOM,
        height - BOTTOM
    );
}

/// Maps values to y: linear from 0, or log10 from the smallest decade.
struct YAxis {
    scale: Scale,
    low: f64,
    high: f64,
}

impl YAxis {
    fn new(scale: Scale, series: &[Series<'_>]) -> YAxis {
        let values = series
            .iter()
            .flat_map(|s| s.values.iter().flatten().copied())
            .filter(|v| v.is_finite());
        match scale {
            Scale::Linear => YAxis {
                scale,
                low: 0.0,
                high: nice_ceiling(values.fold(0.0, f64::max)),
            },
            Scale::Log => {
                let (lo, hi) = values
                    .filter(|v| *v > 0.0)
                    .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
                        (lo.min(v), hi.max(v))
                    });
                let low = if lo.is_finite() {
                    lo.log10().floor()
                } else {
                    0.0
                };
                let high = hi.max(1.0).log10().ceil().max(low + 1.0);
                YAxis { scale, low, high }
            }
        }
    }

    fn y(&self, value: f64) -> f64 {
        let plot = HEIGHT - TOP - BOTTOM;
        let t = match self.scale {
            Scale::Linear => value / self.high,
            Scale::Log => (value.max(1e-9).log10() - self.low) / (self.high - self.low),
        };
        HEIGHT - BOTTOM - plot * t.clamp(0.0, 1.0)
    }

    fn ticks(&self) -> Vec<f64> {
        match self.scale {
            Scale::Linear => (0..=4).map(|i| self.high * f64::from(i) / 4.0).collect(),
            Scale::Log => {
                let (low, high) = (self.low as i32, self.high as i32);
                (low..=high).map(|e| 10f64.powi(e)).collect()
            }
        }
    }

    fn draw(&self, out: &mut String) {
        for tick in self.ticks() {
            let y = self.y(tick);
            let _ = write!(
                out,
                "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                WIDTH - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                number_text(tick)
            );
        }
    }
}

fn line_chart(charts: &Charts, series: &[Series<'_>], scale: Scale, label: &str) -> String {
    let mut out = String::new();
    svg_open(&mut out, HEIGHT, label);
    let axis = YAxis::new(scale, series);
    axis.draw(&mut out);
    time_axis(&mut out, charts, HEIGHT);
    for s in series {
        // A gap where a bucket has no value (no latency logged), a line elsewhere.
        let mut path = String::new();
        let mut pen_down = false;
        for (i, value) in s.values.iter().enumerate() {
            match value.filter(|v| v.is_finite()) {
                Some(v) => {
                    let _ = write!(
                        path,
                        "{}{:.1},{:.1}",
                        if pen_down { " L" } else { " M" },
                        x_of(charts, i),
                        axis.y(v)
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        let _ = write!(
            out,
            "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" stroke-linejoin=\"round\"><title>{}</title></path>",
            path.trim_start(),
            s.color,
            esc(s.name)
        );
    }
    out.push_str("</svg>");
    out
}

fn stacked_bars(charts: &Charts, series: &[Series<'_>]) -> String {
    let mut out = String::new();
    svg_open(&mut out, HEIGHT, "failed calls by status class");
    let totals: Vec<f64> = (0..charts.buckets)
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().flatten().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let axis = YAxis {
        scale: Scale::Linear,
        low: 0.0,
        high: nice_ceiling(totals.iter().copied().fold(0.0, f64::max)),
    };
    axis.draw(&mut out);
    time_axis(&mut out, charts, HEIGHT);
    let width = ((WIDTH - LEFT - RIGHT) / charts.buckets.max(1) as f64).max(0.5);
    for (i, total) in totals.iter().enumerate() {
        if *total <= 0.0 {
            continue;
        }
        let x = x_of(charts, i) - width / 2.0;
        let mut base = 0.0;
        let time = clock(charts.bucket_start(i));
        for s in series {
            let v = s.values.get(i).copied().flatten().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let (y0, y1) = (axis.y(base), axis.y(base + v));
            let _ = write!(
                out,
                "<rect x=\"{x:.2}\" y=\"{y1:.1}\" width=\"{width:.2}\" height=\"{:.1}\" fill=\"{}\"><title>{time} {}: {v}</title></rect>",
                (y0 - y1).max(0.5),
                s.color,
                esc(s.name)
            );
            base += v;
        }
    }
    out.push_str("</svg>");
    out
}

/// One bar per incident over the whole span, colored by severity.
fn timeline(out: &mut String, charts: &Charts, incidents: &[Incident]) {
    const ROW: f64 = 22.0;
    let height = TOP + BOTTOM + ROW * incidents.len().max(1) as f64;
    let _ = writeln!(
        out,
        "<figure id=\"chart-incidents\">\n<figcaption>Incidents over time</figcaption>"
    );
    svg_open(out, height, "incident timeline");
    time_axis(out, charts, height);
    if incidents.is_empty() {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no incident</text>",
            WIDTH / 2.0,
            TOP + ROW / 2.0 + 4.0
        );
    }
    for (n, inc) in incidents.iter().enumerate() {
        let y = TOP + ROW * n as f64;
        let x0 = x_of_time(charts, inc.start_ms);
        let x1 = x_of_time(charts, inc.end_ms).max(x0 + 3.0);
        let color = match inc.severity {
            Severity::Critical => "#b3261e",
            Severity::High => "#e8710a",
            Severity::Medium => "#c9a100",
            _ => "#5b6670",
        };
        let label = format!("{}. {}", n + 1, inc.pattern);
        let anchor_right = x1 + 6.0 + 7.0 * label.len() as f64 > WIDTH - RIGHT;
        let (tx, anchor) = if anchor_right {
            (x0 - 6.0, "end")
        } else {
            (x1 + 6.0, "start")
        };
        let _ = write!(
            out,
            "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"2\" fill=\"{color}\"><title>{}: {} to {} UTC</title></rect><text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            y + 4.0,
            x1 - x0,
            ROW - 8.0,
            esc(&format!("{} — {}", inc.pattern, scope(inc))),
            clock(inc.start_ms),
            clock(inc.end_ms),
            y + ROW / 2.0 + 4.0,
            esc(&label)
        );
    }
    out.push_str("</svg>\n</figure>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn bucket_widths_read_as_spoken() {
        assert_eq!(width_text(60_000), "minute");
        assert_eq!(width_text(300_000), "5 min");
        assert_eq!(width_text(3_600_000), "hour");
        assert_eq!(width_text(10_800_000), "3 h");
        assert_eq!(width_text(604_800_000), "7 days");
        assert_eq!(width_text(1500), "1500 ms");
    }

    #[test]
    fn nice_ceilings() {
        for (value, ceiling) in [
            (0.0, "1"),
            (7.0, "10"),
            (10.0, "10"),
            (101.0, "200"),
            (4200.0, "5000"),
        ] {
            assert_eq!(nice_ceiling(value).to_string(), ceiling);
        }
    }
}
