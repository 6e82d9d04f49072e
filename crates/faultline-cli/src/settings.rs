//! The `[settings]` table of the config file: the command's own settings, in
//! the file that also holds the `[incidents.*]` thresholds.
//!
//! Precedence, lowest first: built-in defaults < config file < `FAULTLINE_*`
//! environment < flags. clap resolves the last three; a setting whose value
//! clap took from its default is replaced here by the file's, if it has one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::parser::ValueSource;
use clap::{ArgMatches, ValueEnum};
use serde::Deserialize;

use crate::{filter, AnalyzeArgs, FailOn, ReportArgs, ReportFormat};

/// The whole file, as far as the command is concerned: `[incidents]`
/// belongs to the detectors and is checked by them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    settings: Option<Settings>,
    #[serde(default, rename = "incidents")]
    _incidents: Option<toml::Value>,
}

/// Settings a config file may hold (the flag of the same name documents each).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    out: Option<PathBuf>,
    window: Option<String>,
    format: Option<Vec<String>>,
    fail_on: Option<String>,
    threads: Option<usize>,
    rules: Option<PathBuf>,
    max_line_bytes: Option<usize>,
}

impl Settings {
    /// Reads the `[settings]` table of `path`; relative paths in it are
    /// relative to the file.
    pub(crate) fn read(path: &Path) -> Result<Settings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let file: File = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map_or(1, |span| text[..span.start].matches('\n').count() + 1);
            anyhow::anyhow!("{}:{line}: {}", path.display(), e.message())
        })?;
        let mut settings = file.settings.unwrap_or_default();
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut settings.out, &mut settings.rules]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(settings)
    }
}

/// Whether clap took `id` from its default (or found no value at all).
fn unset(matches: &ArgMatches, id: &str) -> bool {
    matches!(
        matches.value_source(id),
        None | Some(ValueSource::DefaultValue)
    )
}

fn invalid(path: &Path, key: &str, reason: &str) -> anyhow::Error {
    anyhow::anyhow!("{}: [settings] {key}: {reason}", path.display())
}

fn format_list(path: &Path, names: &[String]) -> Result<Vec<ReportFormat>> {
    names
        .iter()
        .map(|name| {
            ReportFormat::from_str(name, true).map_err(|_| {
                invalid(
                    path,
                    "format",
                    &format!("{name:?} is not one of md, html, json"),
                )
            })
        })
        .collect()
}

fn fail_on(path: &Path, name: &str) -> Result<FailOn> {
    FailOn::from_str(name, true).map_err(|_| {
        invalid(
            path,
            "fail_on",
            &format!("{name:?} is not one of low, medium, high, critical"),
        )
    })
}

/// Lays the config file's settings under what clap resolved for `analyze`.
pub(crate) fn apply_to_analyze(args: &mut AnalyzeArgs, matches: &ArgMatches) -> Result<()> {
    let Some(path) = args.output.config.clone() else {
        return Ok(());
    };
    let settings = Settings::read(&path)?;
    apply_output(&mut args.output, &settings, matches, &path)?;
    if let (Some(n), true) = (settings.threads, unset(matches, "threads")) {
        args.ingest.threads = n;
    }
    if let (Some(n), true) = (settings.max_line_bytes, unset(matches, "max_line_bytes")) {
        args.ingest.max_line_bytes = n;
    }
    if let (Some(rules), true) = (settings.rules, unset(matches, "rules")) {
        args.ingest.rules = Some(rules);
    }
    Ok(())
}

/// Lays the config file's settings under what clap resolved for `report`.
pub(crate) fn apply_to_report(args: &mut ReportArgs, matches: &ArgMatches) -> Result<()> {
    let Some(path) = args.output.config.clone() else {
        return Ok(());
    };
    let settings = Settings::read(&path)?;
    apply_output(&mut args.output, &settings, matches, &path)
}

fn apply_output(
    output: &mut crate::OutputArgs,
    settings: &Settings,
    matches: &ArgMatches,
    path: &Path,
) -> Result<()> {
    if let (Some(out), true) = (&settings.out, unset(matches, "out")) {
        output.out.clone_from(out);
    }
    if let (Some(window), true) = (&settings.window, unset(matches, "window")) {
        output.window =
            filter::parse_window(window).map_err(|reason| invalid(path, "window", &reason))?;
    }
    if let (Some(names), true) = (&settings.format, unset(matches, "format")) {
        output.format = format_list(path, names)?;
    }
    if let (Some(name), true) = (&settings.fail_on, unset(matches, "fail_on")) {
        output.fail_on = Some(fail_on(path, name)?);
    }
    Ok(())
}
