//! The closed vocabularies: providers, status classes, and what each class means for an operator.

use std::fmt;

/// A closed vocabulary: an enum whose values have stable snake_case names
/// (used here and by the incident patterns).
#[doc(hidden)]
#[macro_export]
macro_rules! names {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name { $(#[doc = $text] $variant),+ }

        impl $name {
            /// Every value, in a stable order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable snake_case name used in outputs and rule files.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the snake_case name.
            #[must_use]
            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names! {
    /// The LLM API provider that served (or refused) a call.
    Provider {
        OpenAi => "openai",
        Anthropic => "anthropic",
        Gemini => "gemini",
        Vertex => "vertex",
        DeepSeek => "deepseek",
        AzureOpenAi => "azure_openai",
        Bedrock => "bedrock",
        Mistral => "mistral",
        Groq => "groq",
        OpenRouter => "openrouter",
        Together => "together",
        Fireworks => "fireworks",
        XAi => "xai",
        Cohere => "cohere",
        Other => "other",
    }
}

names! {
    /// Which rule decided the provider.
    ProviderSource {
        Field => "field",
        Host => "host",
        BodyShape => "body_shape",
        Model => "model",
        Unknown => "unknown",
    }
}

names! {
    /// The coarse outcome of a call.
    StatusClass {
        Ok => "ok",
        BadRequest => "bad_request",
        Auth => "auth",
        Permission => "permission",
        NotFound => "not_found",
        PayloadTooLarge => "payload_too_large",
        Unprocessable => "unprocessable",
        RateLimit => "rate_limit",
        Quota => "quota",
        ServerError => "server_error",
        BadGateway => "bad_gateway",
        Unavailable => "unavailable",
        Overloaded => "overloaded",
        Timeout => "timeout",
        Connection => "connection",
        EmptyResponse => "empty_response",
        ContentFilter => "content_filter",
    }
}

/// What an operator should do about a status class: the production strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strategy {
    /// Whether retrying the same request can succeed.
    pub retryable: bool,
    /// The first thing to do.
    pub action: &'static str,
    /// Who or what to escalate to when the action does not help.
    pub escalation: &'static str,
}

impl StatusClass {
    /// The strategy for this class (design.md, Classification).
    #[must_use]
    pub fn strategy(self) -> Strategy {
        let (retryable, action, escalation) = match self {
            StatusClass::Ok => (false, "none", "none"),
            StatusClass::Auth | StatusClass::Permission => {
                (false, "stop and alert", "developer on-call")
            }
            StatusClass::RateLimit => (
                true,
                "retry with backoff, honour Retry-After",
                "switch provider",
            ),
            StatusClass::Quota => (
                false,
                "stop: add credits or raise the quota",
                "account owner / billing",
            ),
            StatusClass::ServerError => (true, "retry at most 3 times", "switch model"),
            StatusClass::BadGateway | StatusClass::Unavailable => {
                (true, "wait and retry", "check provider status")
            }
            StatusClass::Overloaded => (
                true,
                "back off and retry",
                "route to a smaller model (e.g. Opus -> Sonnet)",
            ),
            StatusClass::Timeout => (
                true,
                "retry with a longer read timeout",
                "reduce context size",
            ),
            StatusClass::Connection => (true, "retry", "check network and provider status"),
            StatusClass::EmptyResponse => (
                true,
                "retry once; treat as a failed call",
                "switch model or provider",
            ),
            StatusClass::ContentFilter => {
                (false, "change the prompt; never retry as is", "owning team")
            }
            StatusClass::BadRequest
            | StatusClass::NotFound
            | StatusClass::PayloadTooLarge
            | StatusClass::Unprocessable => (false, "fix the request; never retry", "owning team"),
        };
        Strategy {
            retryable,
            action,
            escalation,
        }
    }

    /// The failure classes a call answered with `status` can be of, in
    /// declaration order (see [`StatusClass::possible_with`]).
    #[must_use]
    pub fn allowed_with(status: u16) -> Vec<StatusClass> {
        StatusClass::ALL
            .iter()
            .copied()
            .filter(|c| *c != StatusClass::Ok && c.possible_with(Some(status)))
            .collect()
    }

    /// Whether a call answered with `status` can be of this class: a rule
    /// whose words point elsewhere does not decide (docs/rules.md, "What a
    /// status allows"). A client error's status is the provider's own
    /// verdict on who is at fault; a 2xx carrying an error, a 5xx (which
    /// gateways use to wrap any upstream failure), a status outside this
    /// table and no status at all allow every class.
    #[must_use]
    pub fn possible_with(self, status: Option<u16>) -> bool {
        use StatusClass as C;
        let Some(status) = status else { return true };
        match status {
            400 => matches!(
                self,
                C::BadRequest
                    | C::Auth
                    | C::Permission
                    | C::NotFound
                    | C::PayloadTooLarge
                    | C::Unprocessable
                    | C::Quota
                    | C::ContentFilter
            ),
            401 => self == C::Auth,
            402 => self == C::Quota,
            403 => matches!(self, C::Permission | C::Auth | C::Quota | C::ContentFilter),
            // OpenAI answers 404 to a model the key may not use, to hide
            // it; OpenRouter to a feature no provider of a model serves.
            404 => matches!(self, C::NotFound | C::Permission | C::BadRequest),
            405 | 410 => self == C::NotFound,
            408 => self == C::Timeout,
            413 => matches!(self, C::PayloadTooLarge | C::BadRequest),
            422 => matches!(
                self,
                C::Unprocessable
                    | C::BadRequest
                    | C::ContentFilter
                    | C::NotFound
                    | C::PayloadTooLarge
            ),
            429 => matches!(
                self,
                C::RateLimit | C::Quota | C::Overloaded | C::PayloadTooLarge | C::Permission
            ),
            _ => true,
        }
    }

    /// The class an HTTP status implies when no rule says more.
    #[must_use]
    pub fn from_status(status: u16) -> StatusClass {
        match status {
            200..=299 => StatusClass::Ok,
            401 => StatusClass::Auth,
            402 => StatusClass::Quota,
            403 => StatusClass::Permission,
            404 | 405 | 410 => StatusClass::NotFound,
            408 | 504 | 524 => StatusClass::Timeout,
            413 => StatusClass::PayloadTooLarge,
            422 => StatusClass::Unprocessable,
            429 => StatusClass::RateLimit,
            498 | 529 => StatusClass::Overloaded,
            502 => StatusClass::BadGateway,
            503 => StatusClass::Unavailable,
            500..=599 => StatusClass::ServerError,
            _ => StatusClass::BadRequest,
        }
    }
}

/// The cause a bare status implies (`unknown` unless the status is specific).
#[must_use]
pub fn cause_from_status(status: u16) -> &'static str {
    match status {
        // The credential sent was refused (wrong, expired, revoked); a
        // missing one is told apart by its words (rule missing-api-key).
        401 => "invalid_api_key",
        402 => "insufficient_balance",
        // Rate limited, on a dimension (requests, tokens) the record does not say.
        429 => "rate_limit",
        504 | 524 => "gateway_timeout",
        529 => "overloaded",
        _ => "unknown",
    }
}
