//! Detector thresholds: the embedded defaults and user overrides.

use std::path::Path;

use serde::Deserialize;

use faultline_classify::Error;

/// The default thresholds, embedded in the binary.
pub const DEFAULT_CONFIG: &str = include_str!("../config/incidents.toml");

/// Every detector's thresholds (see `config/incidents.toml` for what each means).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct DetectConfig {
    pub merge_gap_s: i64,
    pub evidence: usize,
    pub rate_limit_under_load: RateLimit,
    pub quota_exhausted: Episodes,
    pub key_rotation_401: Auth,
    pub auth_misconfigured: Auth,
    pub long_context_timeout: LongContext,
    pub overload_persistent: Overload,
    pub server_error_storm: Storm,
    pub outage: Outage,
    pub empty_response: RatedEpisodes,
    pub access_blocked: Episodes,
    pub bad_request_spike: Spike,
    pub secret_in_log: Switch,
    pub retry_policy: RetryPolicy,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RateLimit {
    pub enabled: bool,
    pub min_per_minute: u64,
    pub min_error_rate: f64,
    pub gap_minutes: i64,
    pub min_minutes: usize,
    pub min_errors: usize,
    pub load_ratio: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Episodes {
    pub enabled: bool,
    pub gap_s: i64,
    pub min_errors: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RatedEpisodes {
    pub enabled: bool,
    pub gap_s: i64,
    pub min_errors: usize,
    pub min_rate: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Auth {
    pub enabled: bool,
    pub min_errors: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct LongContext {
    pub enabled: bool,
    pub bucket_edges: Vec<u32>,
    pub large_prompt_tokens: u32,
    pub min_errors: usize,
    pub min_rate: f64,
    pub min_ratio: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Overload {
    pub enabled: bool,
    pub min_error_rate: f64,
    pub gap_minutes: i64,
    pub min_duration_s: i64,
    pub min_errors: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Storm {
    pub enabled: bool,
    pub min_per_minute: u64,
    pub min_error_rate: f64,
    pub gap_minutes: i64,
    pub min_errors: usize,
    pub max_retries: u16,
    pub min_retried_requests: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Outage {
    pub enabled: bool,
    pub min_error_rate: f64,
    pub gap_minutes: i64,
    pub min_duration_s: i64,
    pub min_errors: usize,
    pub critical_after_s: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Spike {
    pub enabled: bool,
    pub gap_s: i64,
    pub min_errors: usize,
    pub min_rate: f64,
    pub jump: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RetryPolicy {
    pub enabled: bool,
    pub min_operations: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Switch {
    pub enabled: bool,
}

#[derive(Deserialize)]
struct File {
    incidents: DetectConfig,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig::parse("").expect("the embedded incident thresholds are valid")
    }
}

impl DetectConfig {
    /// The defaults with a user file's `[incidents]` tables laid over them.
    ///
    /// Other top-level tables of the file are left to their owners (the
    /// command line reads its settings from the same file).
    pub fn parse(text: &str) -> Result<DetectConfig, Error> {
        DetectConfig::parse_file(text, Path::new("config"))
    }

    /// As [`DetectConfig::parse`]; `path` names the file in errors.
    ///
    /// # Panics
    ///
    /// Never in a released build: the embedded defaults are checked by the tests.
    pub fn parse_file(text: &str, path: &Path) -> Result<DetectConfig, Error> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let invalid = |line: usize, reason: String| Error::Invalid {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let mut merged: toml::Table =
            toml::from_str(DEFAULT_CONFIG).expect("the embedded incident thresholds parse");
        let user: toml::Table = toml::from_str(text).map_err(|e| {
            invalid(
                e.span().map_or(1, |span| line_of(span.start)),
                e.message().to_owned(),
            )
        })?;
        if let Some(incidents) = user.get("incidents") {
            let toml::Value::Table(incidents) = incidents else {
                let line = text.find("incidents").map_or(1, line_of);
                return Err(invalid(line, "`incidents` must be a table".to_owned()));
            };
            let base = merged
                .get_mut("incidents")
                .and_then(toml::Value::as_table_mut)
                .expect("the embedded file has [incidents]");
            overlay(base, incidents);
        }
        let file: File = toml::Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| {
                // Spans are lost in the merge: point at the first key the message names.
                let message = e.message().to_owned();
                let line = message
                    .split('`')
                    .nth(1)
                    .and_then(|key| text.find(key))
                    .map_or(1, line_of);
                invalid(line, format!("in [incidents]: {message}"))
            })?;
        let config = file.incidents;
        config.check().map_err(|reason| {
            let line = reason
                .split_whitespace()
                .next()
                .and_then(|key| text.find(key))
                .map_or(1, line_of);
            invalid(line, reason)
        })?;
        Ok(config)
    }

    /// Values that parse but cannot work.
    fn check(&self) -> Result<(), String> {
        let edges = &self.long_context_timeout.bucket_edges;
        if edges.first() != Some(&0) || edges.windows(2).any(|w| w[0] >= w[1]) {
            return Err(
                "bucket_edges must start at 0 and rise strictly (e.g. [0, 8000, 50000])".to_owned(),
            );
        }
        if self.evidence == 0 {
            return Err("evidence must be at least 1".to_owned());
        }
        Ok(())
    }
}

/// Lays `user` over `base`, table by table.
fn overlay(base: &mut toml::Table, user: &toml::Table) {
    for (key, value) in user {
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(into)), toml::Value::Table(from)) => overlay(into, from),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}
