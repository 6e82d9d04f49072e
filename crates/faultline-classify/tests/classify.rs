//! Classification against real provider error bodies and real-shaped records.

use std::path::Path;

use faultline_classify::{
    provider_from_name, Classifier, Provider, ProviderSource, RuleSet, StatusClass,
};
use faultline_ingest::{IngestOptions, Ingester, Record};

fn fixture(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(rel)
}

fn ingest(text: &str) -> Vec<Record> {
    let ingester = Ingester::new(IngestOptions::default()).unwrap();
    let mut records = Vec::new();
    ingester.ingest_bytes("test", text.as_bytes(), &mut |b| {
        assert!(b.bad_lines.is_empty(), "{:?}", b.bad_lines);
        records.extend(b.records);
    });
    records
}

/// The provider's API host and faultline's name for it, per ground-truth label.
fn provider_of(label: &str) -> (&'static str, Option<Provider>) {
    match label {
        "openai" => ("api.openai.com", Some(Provider::OpenAi)),
        "azure_openai" => ("myres.openai.azure.com", Some(Provider::AzureOpenAi)),
        "anthropic" => ("api.anthropic.com", Some(Provider::Anthropic)),
        "google_gemini" => ("generativelanguage.googleapis.com", Some(Provider::Gemini)),
        "google_code_assist" => ("cloudcode-pa.googleapis.com", Some(Provider::Gemini)),
        "aws_bedrock" => (
            "bedrock-runtime.us-east-1.amazonaws.com",
            Some(Provider::Bedrock),
        ),
        "deepseek" => ("api.deepseek.com", Some(Provider::DeepSeek)),
        "mistral" => ("api.mistral.ai", Some(Provider::Mistral)),
        "openrouter" => ("openrouter.ai", Some(Provider::OpenRouter)),
        "groq" => ("api.groq.com", Some(Provider::Groq)),
        "xai" => ("api.x.ai", Some(Provider::XAi)),
        "cohere" => ("api.cohere.com", Some(Provider::Cohere)),
        "together" => ("api.together.xyz", Some(Provider::Together)),
        "fireworks" => ("api.fireworks.ai", Some(Provider::Fireworks)),
        "vertex_ai" | "vertex_ai_anthropic" => (
            "us-central1-aiplatform.googleapis.com",
            Some(Provider::Vertex),
        ),
        // Self-hosted, relay and adapter endpoints, and providers without a
        // host of their own in faultline, have no well-known host.
        _ => ("llm.internal", None),
    }
}

/// data/README.md: what each expected_class label means in faultline's taxonomy.
fn expectation(label: &str) -> (&'static [StatusClass], Option<&'static str>) {
    use StatusClass as S;
    match label {
        "rate_limit" => (&[S::RateLimit], None),
        "quota_exhausted" => (&[S::Quota], Some("quota_exhausted")),
        "insufficient_balance" => (&[S::Quota], Some("insufficient_balance")),
        "auth_invalid_key" => (&[S::Auth], Some("invalid_api_key")),
        "auth_missing_key" => (&[S::Auth], Some("missing_api_key")),
        "overloaded" => (&[S::Overloaded], None),
        "context_length_exceeded" => (
            &[S::BadRequest, S::PayloadTooLarge],
            Some("context_length_exceeded"),
        ),
        "max_tokens_exceeded" => (&[S::BadRequest], Some("max_tokens_exceeded")),
        "invalid_request" => (&[S::BadRequest, S::Unprocessable, S::PayloadTooLarge], None),
        "server_error" => (&[S::ServerError, S::BadGateway], None),
        "service_unavailable" => (&[S::Unavailable, S::BadGateway], None),
        "not_found_model" | "not_found_endpoint" => (&[S::NotFound], None),
        "region_blocked" => (&[S::Permission], Some("region_blocked")),
        "permission_denied" => (&[S::Permission], None),
        "content_filter" => (&[S::ContentFilter], None),
        "timeout" => (&[S::Timeout], None),
        "empty_response" => (&[S::EmptyResponse], None),
        "connection" => (&[S::Connection], None),
        other => panic!("unknown label {other}"),
    }
}

/// Each body of a corpus file that faultline reads wrong: line, label and
/// what is wrong.
fn misread_bodies(file: &str) -> (Vec<String>, usize) {
    let text = std::fs::read_to_string(fixture(file)).unwrap();
    let classifier = Classifier::default();
    let mut failures = Vec::new();
    let mut total = 0;
    for (n, line) in text.lines().enumerate() {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let label = case["provider"].as_str().unwrap();
        let (host, provider) = provider_of(label);
        let status = case["http_status"].as_u64().unwrap();
        let url = format!("https://{host}/v1/chat/completions");
        let envelope = if status == 0 {
            serde_json::json!({"ts": "2025-03-04T12:00:00Z", "request": {"url": url}, "error": case["body"]})
        } else {
            serde_json::json!({"ts": "2025-03-04T12:00:00Z", "request": {"url": url},
                "response": {"status": status, "headers": case["headers"], "body": case["body"]}})
        };
        let records = ingest(&format!("{envelope}\n"));
        let c = classifier.classify(&records[0]);
        let expected = case["expected_class"].as_str().unwrap();
        let (classes, want_cause) = expectation(expected);
        total += 1;
        let mut wrong = Vec::new();
        if !classes.contains(&c.status_class) {
            wrong.push(format!("class {} not in {classes:?}", c.status_class));
        }
        if let Some(want) = want_cause {
            if &*c.cause != want {
                wrong.push(format!("cause {} != {want}", c.cause));
            }
        }
        if expected == "rate_limit" && !c.cause.starts_with("rate_limit") {
            wrong.push(format!("cause {} is no rate-limit cause", c.cause));
        }
        if let Some(provider) = provider {
            if c.provider != provider {
                wrong.push(format!("provider {} != {provider}", c.provider));
            }
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "line {} ({label} {status} {expected}, rule {:?}): {}",
                n + 1,
                c.rule,
                wrong.join("; ")
            ));
        }
    }
    (failures, total)
}

#[test]
fn every_ground_truth_body_classifies_as_expected() {
    // The shared corpus, and the half of the grown corpus rules are tuned on.
    for file in [
        "ground-truth/provider-errors.jsonl",
        "ground-truth/provider-errors-tune.jsonl",
    ] {
        let (failures, total) = misread_bodies(file);
        assert!(
            failures.is_empty(),
            "{file}: {} of {total} misclassified:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

/// The share of the held-out half a change of rules may not fall under:
/// the score it has reached, so that a rule tuned on the other half and
/// worse on unseen bodies shows.
const HELD_OUT_BAR: f64 = 0.89;

/// The held-out half (fixtures/ground-truth/SOURCES.md) is scored, never
/// tuned on: this says how many bodies it reads right, and not which are
/// wrong, so that its misses do not become rules.
#[test]
#[allow(clippy::print_stderr, reason = "the score is what the test reports")]
fn held_out_bodies_classify_at_the_bar() {
    let (failures, total) = misread_bodies("ground-truth/provider-errors-heldout.jsonl");
    let right = total - failures.len();
    let share = right as f64 / total as f64;
    eprintln!("held-out corpus: {right}/{total} = {:.1}%", share * 100.0);
    assert!(
        share >= HELD_OUT_BAR,
        "held-out corpus: {right}/{total} = {:.1}%, under the bar of {:.0}% (see its SOURCES.md before changing rules)",
        share * 100.0,
        HELD_OUT_BAR * 100.0
    );
}

#[test]
fn the_format_fixtures_classify_as_a_reader_would() {
    let text = std::fs::read_to_string(fixture("formats/envelope.jsonl")).unwrap()
        + &std::fs::read_to_string(fixture("formats/flat_event.jsonl")).unwrap()
        + &std::fs::read_to_string(fixture("formats/litellm.jsonl")).unwrap();
    let classifier = Classifier::default();
    let got: Vec<(String, String, String)> = ingest(&text)
        .iter()
        .map(|r| {
            let c = classifier.classify(r);
            (
                c.provider.to_string(),
                c.status_class.to_string(),
                c.cause.to_string(),
            )
        })
        .collect();
    let want = [
        ("anthropic", "overloaded", "overloaded"),
        ("gemini", "quota", "quota_exhausted"),
        ("bedrock", "rate_limit", "rate_limit_tokens"),
        ("deepseek", "empty_response", "empty_choices"),
        ("openai", "bad_request", "context_length_exceeded"),
        ("openai", "timeout", "read_timeout"),
        ("openai", "ok", "none"),
        ("openai", "ok", "none"),
        ("anthropic", "overloaded", "overloaded"),
        ("deepseek", "empty_response", "empty_choices"),
        ("openai", "rate_limit", "rate_limit_requests"),
        ("openai", "timeout", "read_timeout"),
        ("openai", "ok", "none"),
        ("anthropic", "overloaded", "overloaded"),
        ("openai", "quota", "quota_exhausted"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn unknown_errors_keep_their_status_class_and_say_unknown() {
    let classifier = Classifier::default();
    let rec = Record {
        host: Some("api.mistral.ai".into()),
        http_status: Some(418),
        error_message: Some("I'm a teapot".into()),
        ..Record::default()
    };
    let c = classifier.classify(&rec);
    assert_eq!(
        (c.status_class, &*c.cause, c.rule.clone()),
        (StatusClass::BadRequest, "unknown", None)
    );
    let rec = Record {
        http_status: Some(500),
        error_message: Some("something odd".into()),
        ..Record::default()
    };
    let c = classifier.classify(&rec);
    assert_eq!(
        (c.status_class, &*c.cause),
        (StatusClass::ServerError, "unknown")
    );
    assert_eq!(
        (c.provider, c.provider_source),
        (Provider::Other, ProviderSource::Unknown)
    );
    assert!(c.retryable);
}

#[test]
fn provider_precedence_field_host_shape_model() {
    let classifier = Classifier::default();
    let base = Record {
        provider_hint: Some("Azure".into()),
        host: Some("api.openai.com".into()),
        model: Some("claude-3-5-sonnet".into()),
        http_status: Some(200),
        ..Record::default()
    };
    let c = classifier.classify(&base);
    assert_eq!(
        (c.provider, c.provider_source),
        (Provider::AzureOpenAi, ProviderSource::Field)
    );
    let no_field = Record {
        provider_hint: None,
        ..base.clone()
    };
    let c = classifier.classify(&no_field);
    assert_eq!(
        (c.provider, c.provider_source),
        (Provider::OpenAi, ProviderSource::Host)
    );
    let model_only = Record {
        provider_hint: None,
        host: None,
        ..base
    };
    let c = classifier.classify(&model_only);
    assert_eq!(
        (c.provider, c.provider_source),
        (Provider::Anthropic, ProviderSource::Model)
    );
}

/// Real-shaped failures per provider, one per class and the causes that
/// matter, as each provider actually answers them.
#[test]
fn every_class_and_cause_per_provider() {
    let cases: &[(&str, u16, &str, &str, &str)] = &[
        // (host, status, body or client error, class, cause)
        (
            "api.openai.com",
            429,
            r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
            "quota",
            "quota_exhausted",
        ),
        (
            "api.openai.com",
            429,
            r#"{"error":{"message":"Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 500, Used 500, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
            "rate_limit",
            "rate_limit_requests",
        ),
        (
            "api.openai.com",
            429,
            r#"{"error":{"message":"Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Used 29000, Requested 1500.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#,
            "rate_limit",
            "rate_limit_tokens",
        ),
        (
            "api.openai.com",
            401,
            r#"{"error":{"message":"Incorrect API key provided: sk-abc***xyz.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
            "auth",
            "invalid_api_key",
        ),
        (
            "api.openai.com",
            403,
            r#"{"error":{"code":"unsupported_country_region_territory","message":"Country, region, or territory not supported","param":null,"type":"request_forbidden"}}"#,
            "permission",
            "region_blocked",
        ),
        (
            "api.openai.com",
            404,
            r#"{"error":{"message":"The model `gpt-5-turbo` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#,
            "not_found",
            "model_not_found",
        ),
        (
            "api.openai.com",
            400,
            r#"{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
            "bad_request",
            "context_length_exceeded",
        ),
        (
            "api.openai.com",
            400,
            r#"{"error":{"message":"max_tokens is too large: 20000. This model supports at most 16384 completion tokens, whereas you provided 20000.","type":"invalid_request_error","param":"max_tokens","code":null}}"#,
            "bad_request",
            "max_tokens_exceeded",
        ),
        (
            "api.openai.com",
            400,
            r#"{"error":{"message":"Invalid value for 'role': 'bot'.","type":"invalid_request_error","param":"messages[0].role","code":"invalid_value"}}"#,
            "bad_request",
            "invalid_role",
        ),
        (
            "api.openai.com",
            400,
            r#"{"error":{"message":"Unrecognized request argument supplied: functionz","type":"invalid_request_error","param":null,"code":null}}"#,
            "bad_request",
            "invalid_request",
        ),
        (
            "api.openai.com",
            400,
            r#"{"error":{"message":"you must provide a model parameter","type":"invalid_request_error","param":null,"code":null}}"#,
            "bad_request",
            "missing_model",
        ),
        (
            "api.openai.com",
            400,
            r#"{"error":{"message":"We could not parse the JSON body of your request.","type":"invalid_request_error","param":null,"code":null}}"#,
            "bad_request",
            "invalid_json",
        ),
        (
            "api.anthropic.com",
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages: text content blocks must be non-empty"}}"#,
            "bad_request",
            "invalid_messages",
        ),
        (
            "api.anthropic.com",
            0,
            r#""httpx.ConnectTimeout: timed out while connecting""#,
            "timeout",
            "connect_timeout",
        ),
        (
            "api.openai.com",
            500,
            r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#,
            "server_error",
            "internal_error",
        ),
        (
            "api.openai.com",
            502,
            r#"{"error":{"code":502,"message":"Bad gateway.","param":null,"type":"cf_bad_gateway"}}"#,
            "bad_gateway",
            "bad_gateway",
        ),
        (
            "api.openai.com",
            503,
            r#"{"error":{"message":"The engine is currently overloaded, please try again later","type":"server_error"}}"#,
            "overloaded",
            "overloaded",
        ),
        (
            "api.openai.com",
            0,
            r#""ReadTimeout: The read operation timed out""#,
            "timeout",
            "read_timeout",
        ),
        (
            "api.openai.com",
            0,
            r#""APIConnectionError: Connection error.""#,
            "connection",
            "connection_error",
        ),
        (
            "api.openai.com",
            422,
            r#"{"detail":[{"loc":["body","messages"],"msg":"field required","type":"value_error.missing"}]}"#,
            "unprocessable",
            "unknown",
        ),
        (
            "myres.openai.azure.com",
            400,
            r#"{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation"}}}"#,
            "content_filter",
            "content_filtered",
        ),
        (
            "myres.openai.azure.com",
            404,
            r#"{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}"#,
            "not_found",
            "model_not_found",
        ),
        (
            "api.anthropic.com",
            529,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#,
            "overloaded",
            "overloaded",
        ),
        (
            "api.anthropic.com",
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 215000 tokens > 200000 maximum"}}"#,
            "bad_request",
            "context_length_exceeded",
        ),
        (
            "api.anthropic.com",
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}"#,
            "quota",
            "insufficient_balance",
        ),
        (
            "api.anthropic.com",
            403,
            r#"{"type":"error","error":{"type":"permission_error","message":"Your API key does not have permission to use the specified resource."}}"#,
            "permission",
            "model_access_denied",
        ),
        (
            "api.anthropic.com",
            413,
            r#"{"error":{"type":"request_too_large","message":"Request exceeds the maximum size"}}"#,
            "payload_too_large",
            "request_too_large",
        ),
        (
            "api.anthropic.com",
            500,
            r#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#,
            "server_error",
            "internal_error",
        ),
        (
            "generativelanguage.googleapis.com",
            400,
            r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#,
            "auth",
            "invalid_api_key",
        ),
        (
            "generativelanguage.googleapis.com",
            429,
            r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#,
            "rate_limit",
            "rate_limit_requests",
        ),
        (
            "generativelanguage.googleapis.com",
            503,
            r#"{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}"#,
            "overloaded",
            "overloaded",
        ),
        (
            "generativelanguage.googleapis.com",
            200,
            r#"{"candidates":[],"usageMetadata":{"promptTokenCount":12}}"#,
            "empty_response",
            "empty_choices",
        ),
        (
            "us-central1-aiplatform.googleapis.com",
            429,
            r#"{"error":{"code":429,"message":"Quota exceeded for quota metric 'Generate Content API requests per minute' and limit 'GenerateContent request limit per minute for a region' of service 'aiplatform.googleapis.com'.","status":"RESOURCE_EXHAUSTED"}}"#,
            "rate_limit",
            "rate_limit_requests",
        ),
        (
            "us-central1-aiplatform.googleapis.com",
            504,
            r#"{"error":{"code":504,"message":"Deadline exceeded","status":"DEADLINE_EXCEEDED"}}"#,
            "timeout",
            "gateway_timeout",
        ),
        (
            "api.deepseek.com",
            402,
            r#"{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}"#,
            "quota",
            "insufficient_balance",
        ),
        (
            "api.deepseek.com",
            200,
            r#"{"id":"x","object":"chat.completion","model":"deepseek-chat","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":0}}"#,
            "empty_response",
            "empty_choices",
        ),
        (
            "api.deepseek.com",
            503,
            r#"{"error":{"message":"Service Unavailable","type":"service_unavailable"}}"#,
            "unavailable",
            "service_unavailable",
        ),
        (
            "bedrock-runtime.us-east-1.amazonaws.com",
            400,
            r#"{"message":"Input is too long for requested model."}"#,
            "bad_request",
            "context_length_exceeded",
        ),
        (
            "bedrock-runtime.us-east-1.amazonaws.com",
            403,
            r#"{"message":"You don't have access to the model with the specified model ID."}"#,
            "permission",
            "model_access_denied",
        ),
        (
            "api.mistral.ai",
            429,
            r#"{"object":"error","message":"Requests rate limit exceeded","type":"rate_limited","param":null,"code":"1300"}"#,
            "rate_limit",
            "rate_limit_requests",
        ),
        (
            "api.mistral.ai",
            401,
            r#"{"detail":"Unauthorized"}"#,
            "auth",
            "invalid_api_key",
        ),
        (
            "api.groq.com",
            413,
            r#"{"error":{"message":"Request too large for model `llama-3.1-8b-instant` on tokens per minute (TPM): Limit 6000, Requested 12328, please reduce your message size and try again.","type":"tokens","code":"rate_limit_exceeded"}}"#,
            "payload_too_large",
            "request_too_large",
        ),
        (
            "api.groq.com",
            429,
            r#"{"error":{"message":"Rate limit reached for model `llama-3.3-70b-versatile` on tokens per day (TPD): Limit 100000, Used 99000, Requested 2000.","type":"tokens","code":"rate_limit_exceeded"}}"#,
            "quota",
            "quota_exhausted",
        ),
        (
            "openrouter.ai",
            402,
            r#"{"error":{"message":"Insufficient credits. Add more using https://openrouter.ai/settings/credits","code":402}}"#,
            "quota",
            "insufficient_balance",
        ),
        (
            "openrouter.ai",
            429,
            r#"{"error":{"message":"Provider returned error","code":429,"metadata":{"raw":"upstream rate-limited","provider_name":"X"}}}"#,
            "rate_limit",
            "rate_limit_requests",
        ),
    ];
    let classifier = Classifier::default();
    let mut failures = Vec::new();
    for (host, status, body, class, cause) in cases {
        let envelope = if *status == 0 {
            format!(
                r#"{{"ts":"2025-03-04T12:00:00Z","request":{{"url":"https://{host}/v1/x"}},"error":{body}}}"#
            )
        } else {
            format!(
                r#"{{"ts":"2025-03-04T12:00:00Z","request":{{"url":"https://{host}/v1/x"}},"response":{{"status":{status},"body":{body}}}}}"#
            )
        };
        let records = ingest(&format!("{envelope}\n"));
        let c = classifier.classify(&records[0]);
        if c.status_class.as_str() != *class || &*c.cause != *cause {
            failures.push(format!(
                "{host} {status}: got {} / {} (rule {:?}), want {class} / {cause}",
                c.status_class, c.cause, c.rule
            ));
        }
    }
    let classes: std::collections::BTreeSet<&str> = cases.iter().map(|c| c.3).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every class but ok is exercised here (ok is covered above).
    assert_eq!(classes.len(), StatusClass::ALL.len() - 1, "{classes:?}");
}

#[test]
fn a_cause_is_its_text_whether_built_in_or_from_a_rule() {
    use faultline_classify::Cause;
    use std::collections::{BTreeSet, HashSet};
    // Incidents group calls by cause: a rule naming a built-in cause must
    // land in the same group as the calls classified without it.
    let builtin = Cause::Builtin("rate_limited");
    let shared = Cause::Shared(std::sync::Arc::from("rate_limited"));
    assert_eq!(builtin, shared);
    assert_eq!(HashSet::from([builtin.clone(), shared.clone()]).len(), 1);
    assert_eq!(BTreeSet::from([builtin.clone(), shared.clone()]).len(), 1);
    assert!(Cause::Builtin("auth") < Cause::Shared(std::sync::Arc::from("quota")));
    assert!(Cause::Shared(std::sync::Arc::from("auth")) < Cause::Builtin("quota"));
    assert_eq!(shared.to_string(), "rate_limited");
    assert_eq!(&*builtin.to_shared(), "rate_limited");
}

#[test]
fn provider_names_match_in_any_case_and_with_spaces() {
    use faultline_classify::provider_from_name;
    assert_eq!(provider_from_name("  OpenAI "), Some(Provider::OpenAi));
    assert_eq!(
        provider_from_name("Text-Completion-OpenAI"),
        Some(Provider::OpenAi)
    );
    assert_eq!(provider_from_name("anthropic"), Some(Provider::Anthropic));
    assert_eq!(provider_from_name("AWS_Bedrock"), Some(Provider::Bedrock));
    // Longer than every known name, and not ASCII: no provider, no panic.
    assert_eq!(provider_from_name(&"OpenAI".repeat(10)), None);
    assert_eq!(provider_from_name("Ａnthropic"), None);
    assert_eq!(provider_from_name("ÉOpenAI"), None);
}

#[test]
fn a_repeated_error_classifies_as_it_did_and_only_for_its_own_rules() {
    let teapot = |status: u16, message: &str| Record {
        host: Some("api.openai.com".into()),
        http_status: Some(status),
        error_message: Some(message.into()),
        ..Record::default()
    };
    let rules = RuleSet::parse(
        "[[rule]]\nid = \"teapot\"\nclass = \"overloaded\"\ncause = \"teapot\"\npattern = \"teapot\"\n",
        Path::new("test.toml"),
    )
    .unwrap();
    let custom = Classifier::new(rules);
    let default = Classifier::default();
    let outcome = |c: &Classifier, rec: &Record| {
        let c = c.classify(rec);
        (
            c.status_class,
            c.cause.to_string(),
            c.rule.as_deref().map(str::to_owned),
        )
    };
    let teapot_rule = (
        StatusClass::Overloaded,
        "teapot".to_owned(),
        Some("teapot".to_owned()),
    );
    let unknown = (StatusClass::BadRequest, "unknown".to_owned(), None);
    // The same error, again and again, alternately under each rule set and
    // with another status or text between: each keeps its own answer.
    for _ in 0..3 {
        assert_eq!(outcome(&custom, &teapot(418, "I'm a teapot")), teapot_rule);
        assert_eq!(outcome(&default, &teapot(418, "I'm a teapot")), unknown);
        assert_eq!(
            outcome(&default, &teapot(503, "I'm a teapot")).0,
            StatusClass::Unavailable
        );
        assert_eq!(outcome(&custom, &teapot(418, "I'm a kettle")).1, "unknown");
        assert_eq!(
            outcome(&custom.clone(), &teapot(418, "I'm a teapot")),
            teapot_rule
        );
    }
}

/// Lines real client libraries wrote (`fixtures/clients/`, captured by the
/// conformance suite in `tests/clients/conformance/`), held to what the
/// mock provider really answered: one record per call, none quarantined,
/// the provider, the HTTP status where the lines state it, and the class
/// and cause where the lines hold the message the cause needs.
#[test]
fn real_client_lines_read_as_the_calls_they_were() {
    let dir = fixture("clients");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".truth.jsonl").map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 18, "client samples: {}", names.len());
    let classifier = Classifier::default();
    let mut failures = Vec::new();
    let mut calls = 0;
    for name in &names {
        let log = dir.join(format!("{name}.jsonl"));
        let records = ingest(&std::fs::read_to_string(log).unwrap());
        let truth = std::fs::read_to_string(dir.join(format!("{name}.truth.jsonl"))).unwrap();
        let mut matched = vec![false; records.len()];
        for line in truth.lines() {
            let call: serde_json::Value = serde_json::from_str(line).unwrap();
            calls += 1;
            let (t0, t1) = (
                call["t_start_ms"].as_i64().unwrap() - 5,
                call["t_end_ms"].as_i64().unwrap() + 5,
            );
            let mine: Vec<usize> = (0..records.len())
                .filter(|&i| (t0..=t1).contains(&records[i].ts_ms))
                .collect();
            let what = format!("{name} {}", call["outcome"].as_str().unwrap());
            if mine.len() != 1 {
                failures.push(format!("{what}: {} records", mine.len()));
                continue;
            }
            matched[mine[0]] = true;
            let rec = &records[mine[0]];
            let c = classifier.classify(rec);
            let provider = provider_from_name(call["provider"].as_str().unwrap());
            if Some(c.provider) != provider {
                failures.push(format!("{what}: provider {}", c.provider));
            }
            let status = call["http_status"].as_u64().map(|s| s as u16);
            if call["status_stated"] == true && rec.http_status != status {
                failures.push(format!(
                    "{what}: status {:?} != {status:?}",
                    rec.http_status
                ));
            }
            let label = call["expected_class"].as_str().unwrap();
            if call["evidence_in_log"] == true {
                let (classes, cause) = if label == "ok" {
                    (&[StatusClass::Ok][..], Some("none"))
                } else {
                    expectation(label)
                };
                let cause_ok = cause.is_none_or(|want| &*c.cause == want)
                    && (label != "rate_limit" || c.cause.starts_with("rate_limit"));
                if !classes.contains(&c.status_class) || !cause_ok {
                    failures.push(format!("{what}: {} / {}", c.status_class, c.cause));
                }
            }
        }
        // A record no call accounts for is one call counted twice.
        for (rec, _) in records.iter().zip(&matched).filter(|(_, m)| !**m) {
            let at = rec.source_line;
            let spans_one_call = truth.lines().any(|line| {
                let call: serde_json::Value = serde_json::from_str(line).unwrap();
                call["t_start_ms"].as_i64().unwrap() - 5 <= rec.ts_ms
                    && rec.ts_ms <= call["t_end_ms"].as_i64().unwrap() + 5
            });
            if spans_one_call {
                failures.push(format!("{name}: line {at} is a second record of a call"));
            }
        }
    }
    assert!(calls >= 150, "calls in the samples: {calls}");
    assert!(
        failures.is_empty(),
        "{} of {calls} calls misread:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
