//! The `faultline` command: thin glue over the libraries.
//!
//! Parses arguments, resolves settings once, runs ingest, writes outputs and
//! maps failures to exit codes (0 ok, 2 usage or unreadable input). A closed
//! stdout (`faultline analyze | head`) exits quietly with 0.

mod analyze;
mod filter;
mod outset;
mod progress;
mod report;
mod rules;
mod sample;
mod settings;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, FromArgMatches, Parser, Subcommand};

/// LLM API call logs in, incident reports out.
#[derive(Debug, Parser)]
#[command(name = "faultline", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 done; 1 done, and --fail-on found an incident that severe; 2 usage error or an input that could not be read."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// No progress line and no summary on stdout; errors still go to stderr.
    #[arg(long, short, global = true)]
    quiet: bool,

    /// Log what each step does to stderr (-vv for more).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
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
    ///   faultline analyze logs/ --provider openai --since 2025-03-10
    ///   faultline analyze logs/ --fail-on high -q     # exit 1 on a high or critical incident
    #[command(verbatim_doc_comment)]
    Analyze(AnalyzeArgs),
    /// Read logs and write every classified call to one parquet file
    ///
    /// The first half of analyze: no incidents, no reports. Run report on the
    /// files later, for one day or for many together.
    ///
    /// Examples:
    ///   faultline classify /var/log/llm/2025-03-10/ -o 2025-03-10.parquet
    ///   faultline report 2025-03-*.parquet --out week/
    #[command(verbatim_doc_comment)]
    Classify(ClassifyArgs),
    /// Detect incidents and write the reports again from records.parquet files
    ///
    /// Reads the records that analyze or classify wrote, as one table, so
    /// that several days can be reported together, or one day again with
    /// other thresholds, filters or windows.
    ///
    /// Examples:
    ///   faultline report faultline-out/records.parquet --out again/ --window 5m
    ///   faultline report mon/records.parquet tue/records.parquet --out week/
    ///   faultline report day.parquet --provider anthropic --since "2025-03-10 14:00"
    #[command(verbatim_doc_comment)]
    Report(ReportArgs),
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
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish)
    ///
    /// Examples:
    ///   faultline completions bash > ~/.local/share/bash-completion/completions/faultline
    ///   faultline completions zsh > ~/.zfunc/_faultline
    #[command(verbatim_doc_comment)]
    Completions(CompletionsArgs),
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

/// How calls are read and classified (analyze and classify). Each flag can
/// also come from a `FAULTLINE_*` environment variable; a flag on the command
/// line wins.
#[derive(Debug, Args)]
#[command(next_help_heading = "Reading")]
struct IngestArgs {
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
}

/// Which calls a run looks at.
#[derive(Debug, Args)]
#[command(next_help_heading = "Filters")]
struct FilterArgs {
    /// Only calls at or after this time: 2026-03-10, "2026-03-10 14:00"
    /// (UTC), or RFC 3339 with an offset.
    #[arg(long, env = "FAULTLINE_SINCE", value_parser = filter::parse_time, value_name = "TIME")]
    since: Option<i64>,

    /// Only calls before this time (same forms as --since).
    #[arg(long, env = "FAULTLINE_UNTIL", value_parser = filter::parse_time, value_name = "TIME")]
    until: Option<i64>,

    /// Only calls to these providers (repeat, or separate with commas).
    #[arg(long, env = "FAULTLINE_PROVIDER", value_delimiter = ',', value_parser = parse_provider)]
    provider: Vec<String>,

    /// Only calls from these services (repeat, or separate with commas).
    #[arg(long, env = "FAULTLINE_SERVICE", value_delimiter = ',')]
    service: Vec<String>,
}

impl FilterArgs {
    fn filter(&self) -> faultline_engine::Filter {
        faultline_engine::Filter {
            since_ms: self.since,
            until_ms: self.until,
            providers: self.provider.clone(),
            services: self.service.clone(),
        }
    }
}

fn parse_provider(text: &str) -> Result<String, String> {
    match faultline_classify::Provider::parse(text.trim()) {
        Some(p) => Ok(p.as_str().to_owned()),
        None => Err(format!(
            "unknown provider {text:?} (known: {})",
            faultline_classify::Provider::ALL
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The human-readable reports a run writes (the parquet tables are always written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReportFormat {
    /// report.md
    Md,
    /// report.html
    Html,
    /// incidents.json and summary.json
    Json,
}

/// Incident severities, for --fail-on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FailOn {
    Low,
    Medium,
    High,
    Critical,
}

/// What a report run writes and how it ends (analyze and report).
#[derive(Debug, Args)]
#[command(next_help_heading = "Output")]
struct OutputArgs {
    /// Directory that receives the outputs (created if missing). The whole
    /// set is replaced in one step when the run completes; outputs of an
    /// earlier run that this one does not write are removed.
    #[arg(long, short, env = "FAULTLINE_OUT", default_value = "faultline-out")]
    out: PathBuf,

    /// Width of a rollup window: 30s, 1m, 5m, 1h.
    #[arg(long, env = "FAULTLINE_WINDOW", default_value = "1m", value_parser = filter::parse_window)]
    window: i64,

    /// Reports to write, comma-separated.
    #[arg(
        long,
        env = "FAULTLINE_FORMAT",
        value_delimiter = ',',
        default_value = "md,html,json"
    )]
    format: Vec<ReportFormat>,

    /// A config file: its [settings] table gives defaults for these flags
    /// (out, window, format, fail_on, threads, rules, max_line_bytes), its
    /// [incidents.*] tables override detection thresholds (docs/incidents.md).
    /// Environment variables and flags win over it.
    #[arg(long, env = "FAULTLINE_CONFIG")]
    config: Option<PathBuf>,

    /// Exit with 1 when an incident of this severity or worse is found (for CI).
    #[arg(long, env = "FAULTLINE_FAIL_ON", value_name = "SEVERITY")]
    fail_on: Option<FailOn>,

    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// How records.parquet is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PartitionBy {
    /// One directory per UTC day: records/date=2026-03-10/part-00000.parquet
    Date,
}

#[derive(Debug, Args)]
struct AnalyzeArgs {
    /// Log files, directories (read recursively), globs, or `-` for stdin.
    /// gzip and zstd are detected from the bytes, whatever the file name.
    #[arg(value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    ingest: IngestArgs,
    #[command(flatten)]
    filter: FilterArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Write the records as a hive-partitioned directory (records/) instead
    /// of one records.parquet: for runs over many days.
    #[arg(
        long,
        env = "FAULTLINE_PARTITION_BY",
        value_name = "KEY",
        help_heading = "Output"
    )]
    partition_by: Option<PartitionBy>,
    #[command(flatten)]
    prices: PricesArgs,
}

/// Where list prices come from (analyze and report).
#[derive(Debug, Args)]
struct PricesArgs {
    /// A price table (TOML, the shape of the built-in one: `[models."NAME"]`
    /// with `input` and `output` dollars per million tokens) that adds or
    /// replaces list prices, for failed calls whose log states no cost
    /// (records.parquet keeps no logged cost: `report` prices every one).
    #[arg(
        long,
        env = "FAULTLINE_PRICES",
        value_name = "FILE",
        help_heading = "Output"
    )]
    prices: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ClassifyArgs {
    /// Log files, directories (read recursively), globs, or `-` for stdin.
    #[arg(value_name = "INPUT", required = true)]
    inputs: Vec<PathBuf>,
    /// The records file to write (a directory with --partition-by). The bad
    /// lines go beside it, in STEM.quarantine.jsonl (its name without extension).
    #[arg(
        long,
        short,
        value_name = "FILE",
        default_value = "records.parquet",
        help_heading = "Output"
    )]
    output: PathBuf,
    #[command(flatten)]
    ingest: IngestArgs,
    #[command(flatten)]
    filter: FilterArgs,
    /// Write a hive-partitioned directory, one date=YYYY-MM-DD/ per UTC day.
    #[arg(
        long,
        env = "FAULTLINE_PARTITION_BY",
        value_name = "KEY",
        help_heading = "Output"
    )]
    partition_by: Option<PartitionBy>,
    /// Print the summary as JSON on stdout.
    #[arg(long, help_heading = "Output")]
    json: bool,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// records.parquet files written by analyze or classify, read as one, or
    /// directories of them (a partitioned records/ directory).
    #[arg(value_name = "RECORDS", required = true)]
    records: Vec<PathBuf>,
    #[command(flatten)]
    filter: FilterArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    prices: PricesArgs,
}

#[derive(Debug, Args)]
struct CompletionsArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

fn main() -> ExitCode {
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_logging(cli.verbose);
    let quiet = cli.quiet;
    let sub = |name: &str| {
        matches
            .subcommand_matches(name)
            .cloned()
            .unwrap_or_default()
    };
    let result = match cli.command {
        Command::Analyze(mut args) => settings::apply_to_analyze(&mut args, &sub("analyze"))
            .and_then(|()| analyze::run(&args, quiet)),
        Command::Classify(args) => analyze::classify(&args, quiet),
        Command::Report(mut args) => settings::apply_to_report(&mut args, &sub("report"))
            .and_then(|()| report::run(&args, quiet)),
        Command::Completions(args) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(args.shell, &mut command, "faultline", &mut io::stdout());
            Ok(ExitCode::SUCCESS)
        }
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
            let text = format!("{err:#}");
            let _ = writeln!(
                io::stderr(),
                "faultline: {}",
                faultline_report::inert::terminal(&text)
            );
            ExitCode::from(2)
        }
    }
}

/// `-v` logs steps to stderr; colors only on a terminal and without NO_COLOR.
fn init_logging(verbose: u8) {
    use std::io::IsTerminal;
    let level = match verbose {
        0 => return,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let color =
        io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(io::stderr)
        .with_ansi(color)
        .with_target(false)
        .init();
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
