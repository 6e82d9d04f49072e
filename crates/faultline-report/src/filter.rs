//! `--since`, `--until`, `--provider` and `--service`: which calls a run
//! looks at, on calls being read and on records read back.

use faultline_classify::Provider;
use faultline_ingest::Record;
use polars::prelude::{col, lit, DataType, Expr};

/// The calls a run keeps. Empty lists keep every provider or service.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// First millisecond kept (inclusive).
    pub since_ms: Option<i64>,
    /// First millisecond dropped (exclusive).
    pub until_ms: Option<i64>,
    pub providers: Vec<String>,
    pub services: Vec<String>,
}

impl Filter {
    /// Whether a classified call is kept.
    #[must_use]
    pub fn keeps(&self, rec: &Record, provider: Provider) -> bool {
        self.since_ms.is_none_or(|t| rec.ts_ms >= t)
            && self.until_ms.is_none_or(|t| rec.ts_ms < t)
            && (self.providers.is_empty() || self.providers.iter().any(|p| p == provider.as_str()))
            && (self.services.is_empty()
                || rec
                    .service
                    .as_deref()
                    .is_some_and(|s| self.services.iter().any(|want| want == s)))
    }

    /// The same filter over `records.parquet` columns.
    pub(crate) fn expr(&self) -> Option<Expr> {
        let mut parts: Vec<Expr> = Vec::new();
        let ts = || col("ts").cast(DataType::Int64);
        if let Some(t) = self.since_ms {
            parts.push(ts().gt_eq(lit(t)));
        }
        if let Some(t) = self.until_ms {
            parts.push(ts().lt(lit(t)));
        }
        if let Some(any) = any_of("provider", &self.providers) {
            parts.push(any);
        }
        if let Some(any) = any_of("service", &self.services) {
            parts.push(any);
        }
        parts.into_iter().reduce(Expr::and)
    }
}

/// `name == a or name == b ...`, None for an empty list.
fn any_of(name: &str, values: &[String]) -> Option<Expr> {
    values
        .iter()
        .map(|v| col(name).eq(lit(v.clone())))
        .reduce(Expr::or)
}
