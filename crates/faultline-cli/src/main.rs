//! The `faultline` command: thin glue over the libraries.
//!
//! Parses arguments, resolves settings once, runs ingest, writes outputs and
//! maps failures to exit codes (0 ok, 2 usage or unreadable input). A closed
//! stdout (`faultline analyze | head`) exits quietly with 0.

mod analyze;
mod output;
mod rules;

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
    /// With no INPUT, analyzes the embedded sample (one log of each supported
    /// format plus a file of bad lines) so the first run works with no data.
    ///
    /// Examples:
    ///   faultline analyze /var/log/llm/               # a directory, recursively
    ///   faultline analyze 'logs/2025-03-*.jsonl.gz'   # a glob (quote it)
    ///   zcat calls.gz | faultline analyze -           # standard input
    #[command(verbatim_doc_comment)]
    Analyze(AnalyzeArgs),
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

    /// Directory that receives summary.json and quarantine.jsonl.
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
