//! The work done on the parser's threads: each batch of records is
//! classified, filtered, fed to an [`Analysis`] of its own and built into
//! records.parquet columns; only those come back to the calling thread.

use std::sync::Arc;

use faultline_classify::Classifier;
use faultline_incidents::DetectConfig;
use faultline_ingest::{BadLine, Batch, Stage};
use faultline_report::RecordColumns;

use crate::analysis::Analysis;
use crate::operations::{Attempt, FileHashes};
use faultline_report::Filter;

/// Classifies, filters and analyzes each batch on the worker threads.
pub(crate) struct ClassifyStage<'c> {
    pub classifier: &'c Classifier,
    pub detect: &'c DetectConfig,
    pub filter: &'c Filter,
    pub window_ms: i64,
}

/// What each batch hands back.
pub(crate) struct Classified {
    pub analysis: Analysis,
    /// The batch's rows of records.parquet, built here so that the writer
    /// thread only encodes.
    pub records: RecordColumns,
    /// What grouping into operations needs of each row, in row order.
    pub attempts: Vec<Attempt>,
    pub bad_lines: Vec<BadLine>,
    /// How far into which input the batch reached.
    pub reached: Option<(Arc<str>, u64)>,
}

impl Stage for ClassifyStage<'_> {
    type Output = Classified;

    fn process(&self, batch: Batch) -> Classified {
        let mut analysis = Analysis::new(self.detect, self.window_ms);
        let mut columns = RecordColumns::with_capacity(batch.records.len());
        let mut attempts = Vec::with_capacity(batch.records.len());
        let mut files = FileHashes::default();
        for rec in &batch.records {
            let class = self.classifier.classify(rec);
            if !self.filter.keeps(rec, class.provider) {
                analysis.add_filtered_out();
                continue;
            }
            analysis.add(
                rec,
                class.provider,
                class.status_class,
                &class.cause,
                rec.format,
            );
            columns.push(rec, &class);
            attempts.push(Attempt::of(
                rec,
                class.provider,
                class.status_class,
                &mut files,
            ));
        }
        analysis.settle();
        let last_record = batch
            .records
            .last()
            .map(|r| (Arc::from(r.source_file.as_str()), r.byte_offset));
        let last_bad = batch
            .bad_lines
            .last()
            .map(|b| (Arc::clone(&b.file), b.offset));
        Classified {
            analysis,
            records: columns,
            attempts,
            reached: match (last_record, last_bad) {
                (Some(a), Some(b)) => Some(if a.1 >= b.1 { a } else { b }),
                (a, b) => a.or(b),
            },
            bad_lines: batch.bad_lines,
        }
    }

    fn rebase(&self, out: &mut Classified, lines: u64) {
        out.records.rebase_lines(lines);
        out.analysis.collector.rebase_lines(lines);
        for bad in &mut out.bad_lines {
            bad.line += lines;
        }
    }
}
