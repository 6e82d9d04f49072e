//! The `faultline` command: thin glue over the libraries.
//!
//! Parses arguments, resolves settings once, runs ingest, writes outputs and
//! maps failures to exit codes (0 ok, 2 usage or unreadable input). A closed
//! stdout (`faultline analyze | head`) exits quietly with 0.

mod analyze;
mod output;
mod rules;
mod sample;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// LLM API call logs in, incident reports out.
#[derive(Debug, Parser)]
#[command(name = "faultline", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read logs, normalize and classify every call, report what was found
    ///
    /// With no INPUT, analyzes the built-in sample day (the output of
    /// `faultline sample`) so the first run works with no data.
    ///
    /// Examples:
    ///   faultline analyze /var/log/llm/               # a directory, recursively
    ///   faultline analyze 'logs/2025-03-*.jsonl.gz'   # a glob (quote it)
    ///   zcat calls.gz | faultline analyze -           # standard input
    #[command(verbatim_doc_comment)]
    Analyze(AnalyzeArgs),
    /// Write a realistic day of logs with injected incidents and their ground truth
    ///
    /// Eleven services, four providers, three log formats, a daily load curve,
    /// sporadic isolated errors, and one incident of every pattern. The same
    /// seed and size always give the same bytes.
    ///
    /// Examples:
    ///   faultline sample --out day/                # day/logs/*.jsonl, day/ground-truth.json
    ///   faultline sample --out big/ --size 1GiB    # for benchmarks
    ///   faultline analyze day/logs/
    #[command(verbatim_doc_comment)]
    Sample(SampleArgs),
    /// Print the effective classification rules, in the order they are tried.
    Rules(RulesArgs),
    /// Explain an HTTP status, error code or cause
    ///
    /// Prints what it means, the rules that decide it, why it matters and the fix.
    ///
    /// Examples:
    ///   faultline explain 529
    ///   faultline explain insufficient_quota
    ///   faultline explain context_length_exceeded
    #[command(verbatim_doc_comment)]
    Explain(ExplainArgs),
}

#[derive(Debug, Args)]
struct SampleArgs {
    /// Directory that receives logs/ (one file per service) and ground-truth.json.
    #[arg(long, short, default_value = "faultline-sample")]
    out: PathBuf,
    /// Approximate total size of the logs: 500KB, 24MiB, 1GiB, or bytes.
    #[arg(long, default_value = "24MiB", value_parser = parse_size)]
    size: u64,
    /// Seed of the generator; the same seed and size give the same bytes.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// `24MiB`, `1GiB`, `500KB`, `1000000`: binary (KiB) and decimal (KB) units.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (try 24MiB or 1GiB)"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    Ok((number * factor) as u64)
}

#[derive(Debug, Args)]
struct ExplainArgs {
    /// An HTTP status (429), a provider error type or code (overloaded_error), or a cause.
    code: String,
    /// A rule file that adds rules or overrides default ones by id.
    #[arg(long, env = "FAULTLINE_RULES")]
    rules: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct RulesArgs {
    /// A rule file that adds rules or overrides default ones by id.
    #[arg(long, env = "FAULTLINE_RULES")]
    rules: Option<PathBuf>,
}

/// Settings of `analyze`. Each flag can also come from a `FAULTLINE_*`
/// environment variable; a flag on the command line wins.
#[derive(Debug, Args)]
struct AnalyzeArgs {
    /// Log files, directories (read recursively), globs, or `-` for stdin.
    /// gzip and zstd are detected from the bytes, whatever the file name.
    #[arg(value_name = "INPUT")]
    inputs: Vec<PathBuf>,

    /// Directory that receives incidents.json, summary.json and quarantine.jsonl.
    #[arg(long, short, env = "FAULTLINE_OUT", default_value = "faultline-out")]
    out: PathBuf,

    /// Parser threads (0 = one per core).
    #[arg(long, short = 'j', env = "FAULTLINE_THREADS", default_value_t = 0)]
    threads: usize,

    /// Read plain files with buffered I/O instead of memory-mapping them. Use
    /// it for files that may be truncated while faultline reads them.
    #[arg(long, env = "FAULTLINE_NO_MMAP")]
    no_mmap: bool,

    /// Target size of a parse chunk, in bytes.
    #[arg(long, env = "FAULTLINE_CHUNK_BYTES", default_value_t = 4 << 20, hide = true)]
    chunk_bytes: usize,

    /// Lines longer than this many bytes are quarantined unparsed.
    #[arg(long, env = "FAULTLINE_MAX_LINE_BYTES", default_value_t = 16 << 20)]
    max_line_bytes: usize,

    /// Secret that keys API-key fingerprints. Set it to make fingerprints
    /// unguessable; keep it stable to compare fingerprints across runs.
    #[arg(long, env = "FAULTLINE_FINGERPRINT_KEY", hide_env_values = true)]
    fingerprint_key: Option<String>,

    /// A rule file that adds classification rules or overrides default ones by id.
    #[arg(long, env = "FAULTLINE_RULES")]
    rules: Option<PathBuf>,

    /// A config file whose [incidents.*] tables override detection thresholds
    /// (docs/incidents.md lists them).
    #[arg(long, env = "FAULTLINE_CONFIG")]
    config: Option<PathBuf>,

    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,

    /// Print nothing on stdout.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(args) => analyze::run(&args),
        Command::Sample(args) => sample::run(&args),
        Command::Rules(args) => rules::run(&args),
        Command::Explain(args) => rules::explain(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(io::stderr(), "faultline: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
