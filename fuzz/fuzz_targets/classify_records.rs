//! Any bytes as a log, through classification and incident detection: no
//! panic, and every classified record has a cause.
#![no_main]

use faultline_incidents::{detect, Collector, DetectConfig};
use faultline_classify::Classifier;
use faultline_ingest::{IngestOptions, Ingester};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// Built once: compiling the rules and starting the pool cost far more than one input.
fn parts() -> &'static (Ingester, Classifier, DetectConfig) {
    static PARTS: OnceLock<(Ingester, Classifier, DetectConfig)> = OnceLock::new();
    PARTS.get_or_init(|| {
        let ingester = Ingester::new(IngestOptions {
            threads: 1,
            ..IngestOptions::default()
        })
        .expect("one worker starts");
        (ingester, Classifier::default(), DetectConfig::default())
    })
}

fuzz_target!(|data: &[u8]| {
    let (ingester, classifier, config) = parts();
    let mut collector = Collector::new(config);
    ingester.ingest_bytes("fuzz", data, &mut |batch| {
        for rec in &batch.records {
            let class = classifier.classify(rec);
            assert!(!class.cause.is_empty());
            collector.add(rec, &class);
        }
    });
    let _ = detect(&collector.finish(), config);
});
