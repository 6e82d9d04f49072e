//! Record -> classification: a pure function of one record and the rules.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use faultline_ingest::{BodyShape, Format, Record};

use crate::rules::RuleSet;
use crate::taxonomy::{cause_from_status, Provider, ProviderSource, StatusClass};

/// What faultline concludes about one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// The provider.
    pub provider: Provider,
    /// Which evidence decided the provider.
    pub provider_source: ProviderSource,
    /// The coarse outcome.
    pub status_class: StatusClass,
    /// The finer reason (`none` for successes, `unknown` when no rule knew).
    pub cause: Cause,
    /// Whether retrying the same request can succeed.
    pub retryable: bool,
    /// What to do.
    pub action: &'static str,
    /// Who to escalate to.
    pub escalation: &'static str,
    /// The rule that decided, if one did.
    pub rule: Option<Arc<str>>,
}

/// Classifies records with a compiled rule set.
#[derive(Debug, Clone)]
pub struct Classifier {
    rules: RuleSet,
    /// Tells classifiers apart in [`RECENT`] (a copy has the same rules).
    id: u64,
}

/// What an error was classified as: status class, cause, rule.
type Outcome = (StatusClass, Cause, Option<Arc<str>>);

/// An error classified on this thread, and what decided it.
#[derive(Debug)]
struct Recent {
    classifier: u64,
    http_status: Option<u16>,
    provider: Provider,
    error_type: Option<String>,
    error_code: Option<String>,
    error_message: Option<String>,
    waits_hours: bool,
    outcome: Outcome,
}

impl Recent {
    fn is_for(&self, classifier: u64, rec: &Record, provider: Provider) -> bool {
        self.classifier == classifier
            && self.http_status == rec.http_status
            && self.provider == provider
            && self.error_message == rec.error_message
            && self.error_type == rec.error_type
            && self.error_code == rec.error_code
            && self.waits_hours == waits_hours(rec)
    }
}

/// Errors [`RECENT`] keeps.
const RECENT_ERRORS: usize = 4;

thread_local! {
    /// The last errors classified on this thread. Failures come in runs of
    /// the same error (an outage, a rate limit), and classifying one reads
    /// its text against every rule; an error equal to one kept here, for the
    /// same classifier, status and provider, is classified the same.
    static RECENT: std::cell::RefCell<(Vec<Recent>, usize)> =
        const { std::cell::RefCell::new((Vec::new(), 0)) };
}

/// Source of [`Classifier::id`].
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The finer reason of an outcome: a built-in name, or a rule's.
///
/// Built-in causes are static text, so classifying a success (most calls)
/// clones and drops no reference count: an atomic operation per call is a
/// full barrier that waits for every store the worker has in flight.
///
/// Causes compare, order and hash by their text, whichever way they are held.
#[derive(Debug, Clone)]
pub enum Cause {
    /// A cause faultline names itself (`none`, `unknown`, `rate_limited`...).
    Builtin(&'static str),
    /// A cause a rule names, or one read back from `records.parquet`.
    Shared(Arc<str>),
}

impl Cause {
    /// The cause as a shared string (allocates for a built-in one).
    #[must_use]
    pub fn to_shared(&self) -> Arc<str> {
        match self {
            Cause::Builtin(name) => Arc::from(*name),
            Cause::Shared(name) => Arc::clone(name),
        }
    }
}

impl Deref for Cause {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Cause::Builtin(name) => name,
            Cause::Shared(name) => name,
        }
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Cause) -> bool {
        **self == **other
    }
}

impl Eq for Cause {}

impl PartialOrd for Cause {
    fn partial_cmp(&self, other: &Cause) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Cause {
    fn cmp(&self, other: &Cause) -> std::cmp::Ordering {
        (**self).cmp(&**other)
    }
}

impl std::hash::Hash for Cause {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl Default for Classifier {
    fn default() -> Self {
        Classifier::new(RuleSet::defaults())
    }
}

impl Classifier {
    /// A classifier over `rules`.
    #[must_use]
    pub fn new(rules: RuleSet) -> Classifier {
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Classifier { rules, id }
    }

    /// The rules in use.
    #[must_use]
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Classifies one record.
    #[must_use]
    pub fn classify(&self, rec: &Record) -> Classification {
        let (provider, provider_source) = provider_of(rec);
        let has_error =
            rec.error_type.is_some() || rec.error_code.is_some() || rec.error_message.is_some();
        let (status_class, cause, rule) = if has_error {
            self.classify_error_recalling(rec, provider)
        } else if rec.empty_response {
            (
                StatusClass::EmptyResponse,
                Cause::Builtin("empty_choices"),
                None,
            )
        } else {
            // The fast path: most records are successes and touch no rule.
            match rec.http_status {
                None | Some(200..=299) => (StatusClass::Ok, Cause::Builtin("none"), None),
                Some(status) => (
                    StatusClass::from_status(status),
                    Cause::Builtin(cause_from_status(status)),
                    None,
                ),
            }
        };
        let strategy = status_class.strategy();
        Classification {
            provider,
            provider_source,
            status_class,
            cause,
            retryable: strategy.retryable,
            action: strategy.action,
            escalation: strategy.escalation,
            rule,
        }
    }

    /// [`Classifier::classify_error`], or what it said of an equal error
    /// recently (see [`RECENT`]).
    fn classify_error_recalling(&self, rec: &Record, provider: Provider) -> Outcome {
        RECENT.with(|recent| {
            let Ok(mut recent) = recent.try_borrow_mut() else {
                return self.classify_error(rec, provider);
            };
            let (kept, next) = &mut *recent;
            if let Some(hit) = kept.iter().find(|r| r.is_for(self.id, rec, provider)) {
                return hit.outcome.clone();
            }
            let outcome = self.classify_error(rec, provider);
            let entry = Recent {
                classifier: self.id,
                http_status: rec.http_status,
                provider,
                error_type: rec.error_type.clone(),
                error_code: rec.error_code.clone(),
                error_message: rec.error_message.clone(),
                waits_hours: waits_hours(rec),
                outcome: outcome.clone(),
            };
            if kept.len() < RECENT_ERRORS {
                kept.push(entry);
            } else {
                kept[*next] = entry;
                *next = (*next + 1) % RECENT_ERRORS;
            }
            outcome
        })
    }

    fn classify_error(&self, rec: &Record, provider: Provider) -> Outcome {
        let outcome = self.classify_error_text(rec, provider);
        if outcome.0 == StatusClass::RateLimit && waits_hours(rec) {
            // A limit that resets in hours is a quota, whatever it is called.
            return (
                StatusClass::Quota,
                Cause::Builtin("quota_exhausted"),
                Some(Arc::from("retry-after-hours")),
            );
        }
        outcome
    }

    fn classify_error_text(&self, rec: &Record, provider: Provider) -> Outcome {
        let text = format!(
            "{} {} {}",
            rec.error_type.as_deref().unwrap_or(""),
            rec.error_code.as_deref().unwrap_or(""),
            rec.error_message.as_deref().unwrap_or("")
        );
        if request_exceeds_limit(&text) {
            return (
                StatusClass::PayloadTooLarge,
                Cause::Builtin("request_too_large"),
                Some(Arc::from("request-over-limit")),
            );
        }
        // Errors delivered inside a 200 (OpenRouter, streams) carry their real
        // status as the error code.
        let status = match (rec.http_status, rec.error_code.as_deref()) {
            (Some(200..=299), Some(code)) => code
                .parse::<u16>()
                .ok()
                .filter(|c| (400..=599).contains(c))
                .or(rec.http_status),
            (status, _) => status,
        };
        if let Some(rule) = self.rules.first_match(status, provider, &text) {
            return (
                rule.class,
                Cause::Shared(Arc::clone(&rule.cause)),
                Some(Arc::clone(&rule.id)),
            );
        }
        match status {
            // A 2xx with an error but no status of its own: the call failed on the provider's side.
            Some(200..=299) => (StatusClass::ServerError, Cause::Builtin("unknown"), None),
            Some(status) => (
                StatusClass::from_status(status),
                Cause::Builtin(cause_from_status(status)),
                None,
            ),
            // No answer and no rule: the connection failed somehow.
            None => (StatusClass::Connection, Cause::Builtin("unknown"), None),
        }
    }
}

/// A wait the provider asks for (Retry-After and its kin) of an hour or more:
/// no backoff outlasts it, so the limit is a quota (daily, monthly), not a rate.
const QUOTA_WAIT_S: f64 = 3600.0;

fn waits_hours(rec: &Record) -> bool {
    rec.retry_after_s.is_some_and(|s| s >= QUOTA_WAIT_S)
}

/// `Limit N, ... Requested M` with M > N: one request larger than the whole
/// per-minute window, which no retry can fix (OpenAI and Groq send it as 429).
fn request_exceeds_limit(text: &str) -> bool {
    let number_after = |label: &str| -> Option<u64> {
        let at = text.find(label)? + label.len();
        let digits: String = text[at..]
            .trim_start_matches([' ', ':', '~'])
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    match (number_after("Limit"), number_after("Requested")) {
        (Some(limit), Some(requested)) => requested > limit && !text.contains("per day"),
        _ => false,
    }
}

/// Provider: explicit field > API host > error body shape > model name.
///
/// An OpenTelemetry span names the provider after the SDK that made the
/// call (`gen_ai.system = openai` for every server the OpenAI SDK talks to:
/// DeepSeek, OpenRouter, Groq...). A span that names OpenAI or Anthropic,
/// whose SDKs serve compatible APIs too, yields to the host and the model's
/// family.
fn provider_of(rec: &Record) -> (Provider, ProviderSource) {
    let named = rec.provider_hint.as_deref().and_then(provider_from_name);
    let sdk_named = rec.format == Some(Format::OtelGenAi)
        && matches!(named, Some(Provider::OpenAi | Provider::Anthropic));
    if sdk_named {
        if let Some(provider) = rec.host.as_deref().and_then(provider_from_host) {
            return (provider, ProviderSource::Host);
        }
        if let Some(provider) = rec.model.as_deref().and_then(provider_from_model) {
            return (provider, ProviderSource::Model);
        }
    }
    if let Some(provider) = named {
        return (provider, ProviderSource::Field);
    }
    if let Some(provider) = rec.host.as_deref().and_then(provider_from_host) {
        return (provider, ProviderSource::Host);
    }
    let by_shape = match rec.body_shape {
        Some(BodyShape::Anthropic) => Some(Provider::Anthropic),
        Some(BodyShape::Google) => Some(Provider::Gemini),
        Some(BodyShape::Bedrock) => Some(Provider::Bedrock),
        Some(BodyShape::Mistral) => Some(Provider::Mistral),
        Some(BodyShape::OpenRouter) => Some(Provider::OpenRouter),
        _ => None,
    };
    if let Some(provider) = by_shape {
        return (provider, ProviderSource::BodyShape);
    }
    if let Some(provider) = rec.model.as_deref().and_then(provider_from_model) {
        return (provider, ProviderSource::Model);
    }
    (Provider::Other, ProviderSource::Unknown)
}

/// A provider as logs name it (`openai`, `azure`, `vertex_ai`, `google_gemini`, ...).
#[must_use]
pub fn provider_from_name(name: &str) -> Option<Provider> {
    let name = name.trim();
    if !name.bytes().any(|b| b.is_ascii_uppercase()) {
        return provider_from_lowercase(name);
    }
    // Lowercased on the stack: this runs for nearly every call.
    let mut buf = [0u8; 32];
    let lower = buf.get_mut(..name.len())?; // longer than every name below
    lower.copy_from_slice(name.as_bytes());
    lower.make_ascii_lowercase();
    provider_from_lowercase(std::str::from_utf8(lower).ok()?)
}

fn provider_from_lowercase(name: &str) -> Option<Provider> {
    Some(match name {
        "openai" | "openai_chat" | "text-completion-openai" => Provider::OpenAi,
        "anthropic" | "claude" => Provider::Anthropic,
        "gemini" | "google" | "google_gemini" | "gcp.gemini" | "google_ai_studio" => {
            Provider::Gemini
        }
        "vertex" | "vertex_ai" | "vertex_ai_beta" | "gcp.vertex_ai" | "google_vertex" => {
            Provider::Vertex
        }
        "deepseek" => Provider::DeepSeek,
        "azure" | "azure_openai" | "az.ai.openai" | "azure.ai.openai" | "azure_ai" => {
            Provider::AzureOpenAi
        }
        "bedrock" | "aws_bedrock" | "aws.bedrock" | "amazon_bedrock" => Provider::Bedrock,
        "mistral" | "mistral_ai" | "mistralai" => Provider::Mistral,
        "groq" => Provider::Groq,
        "openrouter" => Provider::OpenRouter,
        "together" | "together_ai" | "togetherai" => Provider::Together,
        "fireworks" | "fireworks_ai" => Provider::Fireworks,
        "xai" | "x_ai" | "grok" => Provider::XAi,
        "cohere" | "cohere_chat" => Provider::Cohere,
        _ => return None,
    })
}

/// A provider from its API host.
#[must_use]
pub fn provider_from_host(host: &str) -> Option<Provider> {
    let host = host.split(':').next().unwrap_or(host);
    Some(match host {
        "api.openai.com" => Provider::OpenAi,
        "api.anthropic.com" => Provider::Anthropic,
        "generativelanguage.googleapis.com" | "cloudcode-pa.googleapis.com" => Provider::Gemini,
        "api.deepseek.com" => Provider::DeepSeek,
        "api.mistral.ai" => Provider::Mistral,
        "api.groq.com" => Provider::Groq,
        "openrouter.ai" => Provider::OpenRouter,
        "api.together.xyz" | "api.together.ai" => Provider::Together,
        "api.fireworks.ai" => Provider::Fireworks,
        "api.x.ai" => Provider::XAi,
        "api.cohere.com" | "api.cohere.ai" => Provider::Cohere,
        _ if host.ends_with(".openai.azure.com") => Provider::AzureOpenAi,
        _ if host.ends_with("-aiplatform.googleapis.com")
            || host == "aiplatform.googleapis.com" =>
        {
            Provider::Vertex
        }
        _ if host.starts_with("bedrock-runtime.") && host.ends_with(".amazonaws.com") => {
            Provider::Bedrock
        }
        _ => return None,
    })
}

/// A provider from a model name's family.
#[must_use]
pub fn provider_from_model(model: &str) -> Option<Provider> {
    let model = model.to_ascii_lowercase();
    let model = model.rsplit('/').next().unwrap_or(&model);
    if model.starts_with("anthropic.")
        || model.starts_with("amazon.")
        || model.contains(".anthropic.")
    {
        return Some(Provider::Bedrock);
    }
    let families: [(&str, Provider); 12] = [
        ("gpt-", Provider::OpenAi),
        ("o1", Provider::OpenAi),
        ("o3", Provider::OpenAi),
        ("o4", Provider::OpenAi),
        ("chatgpt", Provider::OpenAi),
        ("claude", Provider::Anthropic),
        ("gemini", Provider::Gemini),
        ("deepseek", Provider::DeepSeek),
        ("mistral", Provider::Mistral),
        ("codestral", Provider::Mistral),
        ("grok", Provider::XAi),
        ("command", Provider::Cohere),
    ];
    families
        .iter()
        .find(|(prefix, _)| model.starts_with(prefix))
        .map(|(_, provider)| *provider)
}
