//! Any bytes as a log: ingest never panics, every line is accounted for
//! (a record, a quarantined bad line or a blank line), and the result does
//! not depend on where the input is cut into chunks.
#![no_main]

use faultline_ingest::{IngestOptions, Ingester};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// Ingesters built once, one per chunk size (a pool per input would cost
/// more than the input).
fn ingester(chunk_bytes: usize) -> &'static Ingester {
    static INGESTERS: OnceLock<[Ingester; 2]> = OnceLock::new();
    let make = |chunk_bytes| {
        Ingester::new(IngestOptions {
            threads: 1,
            chunk_bytes,
            max_line_bytes: 4096,
            ..IngestOptions::default()
        })
        .expect("one worker starts")
    };
    let [whole, small] = INGESTERS.get_or_init(|| [make(1 << 20), make(7)]);
    if chunk_bytes == 7 {
        small
    } else {
        whole
    }
}

fn ingest(data: &[u8], chunk_bytes: usize) -> (Vec<(u64, String)>, faultline_ingest::Counts) {
    let ingester = ingester(chunk_bytes);
    let mut seen = Vec::new();
    let summary = ingester.ingest_bytes("fuzz", data, &mut |batch| {
        seen.extend(batch.records.iter().map(|r| (r.source_line, format!("{r:?}"))));
        seen.extend(
            batch
                .bad_lines
                .iter()
                .map(|b| (b.line, format!("{:?} {}", b.reason, b.excerpt))),
        );
    });
    // A batch lists its records, then its bad lines: compare in line order.
    seen.sort();
    (seen, summary.counts)
}

fuzz_target!(|data: &[u8]| {
    let (whole, counts) = ingest(data, 1 << 20);
    // A line yields one record, several (an OTLP export), a bad line or a blank.
    assert!(counts.records + counts.bad_lines + counts.blank_lines >= counts.lines);
    assert!(counts.bad_lines + counts.blank_lines <= counts.lines);
    let (chunked, _) = ingest(data, 7);
    assert_eq!(whole, chunked, "chunk boundaries changed the output");
});
