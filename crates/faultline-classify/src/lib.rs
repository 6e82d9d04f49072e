//! Classification: every normalized [`Record`] gets a provider, a status
//! class, a cause, and what to do about it.
//!
//! The roles of the types:
//!
//! - [`RuleSet`] holds the rules: the embedded defaults ([`DEFAULT_RULES`], a
//!   TOML file) optionally overridden by a user file. Rules are data; each
//!   documents what it matches, why it matters, an example and known false
//!   positives.
//! - [`Classifier::classify`] is a pure function of one record: successes take
//!   a fast path that touches no rule; failures are matched against the rules
//!   in order, and fall back to what the HTTP status implies with cause
//!   `unknown` rather than a guess.
//! - [`Classification`] carries the result, with the production strategy of
//!   its [`StatusClass`] (retryable, action, escalation).
//!
//! ```
//! use faultline_classify::{Classifier, Provider, StatusClass};
//! use faultline_ingest::Record;
//!
//! let rec = Record {
//!     host: Some("api.openai.com".into()),
//!     http_status: Some(429),
//!     error_type: Some("insufficient_quota".into()),
//!     error_message: Some("You exceeded your current quota".into()),
//!     ..Record::default()
//! };
//! let c = Classifier::default().classify(&rec);
//! assert_eq!(c.provider, Provider::OpenAi);
//! assert_eq!(c.status_class, StatusClass::Quota);
//! assert_eq!(&*c.cause, "quota_exhausted");
//! assert!(!c.retryable);
//! ```

pub mod bound;
mod classify;
mod rules;
mod taxonomy;

pub use crate::classify::{
    provider_from_host, provider_from_model, provider_from_name, Cause, Classification, Classifier,
};
pub use crate::rules::{Error, Rule, RuleSet, DEFAULT_RULES};
pub use crate::taxonomy::{cause_from_status, Provider, ProviderSource, StatusClass, Strategy};
pub use faultline_ingest::Record;
