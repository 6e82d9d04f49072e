//! Reading back the records of earlier runs (`faultline report`): the same
//! [`Analysis`] as a run over the logs, fed from records.parquet files.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use faultline_incidents::DetectConfig;
use faultline_ingest::Format;
use faultline_report::RecordSet;

use crate::analysis::Analysis;
use crate::operations::{Attempt, FileHashes, Grouper};
use crate::prices::Prices;
use crate::progress::Progress;
use crate::read::Read;
use faultline_report::Filter;

/// Reads the records in `files` that `filter` keeps into one analysis.
/// Each batch of rows is folded into a part of its own on a worker; the
/// parts are merged in the order of the batches, as a run over the logs
/// merges its chunks.
pub fn read_records(
    files: &[PathBuf],
    filter: &Filter,
    detect: &DetectConfig,
    window_ms: i64,
    prices: &Prices,
    progress: &mut dyn Progress,
) -> Result<(Analysis, Read)> {
    let started = Instant::now();
    // The fold checks every file before it reads any.
    let records = RecordSet::new(files).with_filter(filter);
    let mut analysis = Analysis::new(detect, window_ms);
    // The calls are grouped again by the operation ids the rows hold, in
    // the order of the rows, as the run that wrote them grouped them.
    let mut grouper = Grouper::new(prices, false);
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let rows = records.fold(
        threads,
        || {
            (
                Analysis::new(detect, window_ms),
                Vec::new(),
                FileHashes::default(),
            )
        },
        |(part, attempts, files), rec, outcome| {
            attempts.push(Attempt::recorded(
                rec,
                outcome.provider,
                outcome.status_class,
                outcome.operation_id,
                files,
            ));
            let format = outcome.format.as_deref().and_then(|name| {
                let format = Format::ALL.into_iter().find(|f| f.as_str() == name);
                if format.is_none() {
                    part.add_format_name(name);
                }
                format
            });
            part.add(
                rec,
                outcome.provider,
                outcome.status_class,
                &outcome.cause,
                format,
            );
        },
        |(part, attempts, _)| {
            progress.batch(part.calls(), None);
            analysis.merge(part);
            grouper.add(&attempts, |_, _| {});
        },
    )?;
    grouper.close_all();
    analysis.operations = Some(grouper.stats);
    tracing::info!(
        rows,
        seconds = started.elapsed().as_secs_f64(),
        "read the records back"
    );
    let read = Read::of_records(files, rows, analysis.records_with_secrets, started);
    Ok((analysis, read))
}

/// Checks that every file is a records file this version can read.
pub fn check_records(files: &[PathBuf]) -> Result<()> {
    RecordSet::new(files).check()?;
    Ok(())
}
