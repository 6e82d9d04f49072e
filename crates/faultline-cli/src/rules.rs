//! `faultline rules`: the effective rule set, as the classifier will try it.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;
use faultline_classify::RuleSet;

use faultline_classify::{cause_from_status, Rule, StatusClass};

use crate::{ExplainArgs, RulesArgs};

/// The default rules, with the user's file (if any) in front.
pub(crate) fn effective(path: Option<&std::path::Path>) -> Result<RuleSet> {
    let defaults = RuleSet::defaults();
    Ok(match path {
        Some(path) => defaults.with_overrides(RuleSet::load(path)?),
        None => defaults,
    })
}

pub(crate) fn run(args: &RulesArgs) -> Result<ExitCode> {
    let set = effective(args.rules.as_deref())?;
    let mut out = io::stdout().lock();
    for (n, rule) in set.rules().iter().enumerate() {
        writeln!(
            out,
            "{:>2}. {}  ->  {} / {}",
            n + 1,
            rule.id,
            rule.class,
            rule.cause
        )?;
        if let Some(status) = rule.status_text() {
            writeln!(out, "    status:    {status}")?;
        }
        if let Some(providers) = rule.providers_text() {
            writeln!(out, "    providers: {providers}")?;
        }
        writeln!(out, "    pattern:   {}", rule.pattern)?;
        writeln!(out, "    from:      {}", rule.origin)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Which rules speak about `code`: for a status, the rules of the class it
/// implies or limited to it; otherwise rules whose id or cause is the code, or
/// whose pattern matches it.
fn rules_about<'r>(rules: &'r [Rule], code: &str) -> Vec<&'r Rule> {
    match code.parse::<u16>() {
        Ok(status) => {
            let class = StatusClass::from_status(status);
            rules
                .iter()
                .filter(|r| {
                    r.class == class
                        || r.status.as_ref().is_some_and(|s| s.contains(&status))
                        || r.example.contains(&format!("\"status\":{status}"))
                })
                .collect()
        }
        Err(_) => rules
            .iter()
            .filter(|r| &*r.id == code || &*r.cause == code || r.matches_text(code))
            .collect(),
    }
}

pub(crate) fn explain(args: &ExplainArgs) -> Result<ExitCode> {
    let set = effective(args.rules.as_deref())?;
    let code = args.code.trim();
    let mut out = io::stdout().lock();
    if let Ok(status) = code.parse::<u16>() {
        let class = StatusClass::from_status(status);
        writeln!(
            out,
            "HTTP {status}: status class {class} (cause {} when nothing more is known)",
            cause_from_status(status)
        )?;
        write_strategy(&mut out, class)?;
        let allowed: Vec<&str> = StatusClass::allowed_with(status)
            .into_iter()
            .map(StatusClass::as_str)
            .collect();
        if allowed.len() + 1 < StatusClass::ALL.len() {
            writeln!(
                out,
                "  a rule's words may make it: {} (docs/rules.md, What a status allows)",
                allowed.join(", ")
            )?;
        }
    }
    let found = rules_about(set.rules(), code);
    if found.is_empty() {
        writeln!(
            out,
            "No rule speaks about {code:?}. `faultline rules` lists them all."
        )?;
        out.flush()?;
        return Ok(if code.parse::<u16>().is_ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    writeln!(out, "Rules that decide it ({}):", found.len())?;
    for rule in found {
        writeln!(out)?;
        writeln!(out, "{} -> {} / {}", rule.id, rule.class, rule.cause)?;
        writeln!(out, "  why: {}", rule.why)?;
        write_strategy(&mut out, rule.class)?;
        writeln!(out, "  example: {}", rule.example)?;
        writeln!(out, "  known false positives: {}", rule.false_positives)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn write_strategy(out: &mut impl Write, class: StatusClass) -> io::Result<()> {
    let strategy = class.strategy();
    writeln!(
        out,
        "  do: {}; retryable: {}; escalate to: {}",
        strategy.action,
        if strategy.retryable { "yes" } else { "no" },
        strategy.escalation
    )
}
