//! `faultline rules`: the effective rule set, as the classifier will try it.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;
use faultline_classify::RuleSet;

use crate::RulesArgs;

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
        if let Some(status) = &rule.status {
            let list: Vec<String> = status
                .iter()
                .map(|s| {
                    if *s == 0 {
                        "none".to_owned()
                    } else {
                        s.to_string()
                    }
                })
                .collect();
            writeln!(out, "    status:    {}", list.join(", "))?;
        }
        if let Some(providers) = &rule.providers {
            let list: Vec<&str> = providers.iter().map(|p| p.as_str()).collect();
            writeln!(out, "    providers: {}", list.join(", "))?;
        }
        writeln!(out, "    pattern:   {}", rule.pattern)?;
        writeln!(out, "    from:      {}", rule.origin)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
