//! Classification against real provider error bodies and real-shaped records.

use std::path::Path;

use faultline_classify::{Classifier, Provider, ProviderSource, StatusClass};
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
        "groq" => ("api.groq.com", Some(Provider::Groq)),
        "mistral" => ("api.mistral.ai", Some(Provider::Mistral)),
        "openrouter" => ("openrouter.ai", Some(Provider::OpenRouter)),
        // Self-hosted and adapter endpoints have no well-known host.
        "deepseek_web_adapter" | "openai_compatible_vllm" => ("llm.internal", None),
        other => panic!("no host for {other}"),
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
        "not_found_model" => (&[S::NotFound], None),
        "region_blocked" => (&[S::Permission], Some("region_blocked")),
        "permission_denied" => (&[S::Permission], None),
        "content_filter" => (&[S::ContentFilter], None),
        "timeout" => (&[S::Timeout], None),
        "empty_response" => (&[S::EmptyResponse], None),
        other => panic!("unknown label {other}"),
    }
}

#[test]
fn every_ground_truth_body_classifies_as_expected() {
    let text = std::fs::read_to_string(fixture("ground-truth/provider-errors.jsonl")).unwrap();
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
    assert!(
        failures.is_empty(),
        "{} of {total} misclassified:\n{}",
        failures.len(),
        failures.join("\n")
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
