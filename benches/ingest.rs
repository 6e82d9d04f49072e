//! Ingest throughput on a realistic mix of log lines.
//!
//! `cargo bench -p faultline-ingest --bench ingest`
//!
//! The corpus (about 64 MiB) is made here, deterministically: mostly flat
//! events, some request/response envelopes and LiteLLM payloads, about 5%
//! errors, with the field sizes seen in production logs. Next to the line
//! split, two yardsticks of the machine's speed at that hour: serde_json
//! validating every line without building anything, and serde_json parsing
//! every line into typed structs of the fields faultline reads. Parse +
//! normalize is held to 0.70 GB/s per core on a machine where such a typed
//! parse runs at 0.66: at least 1.06 times the typed yardstick of the same
//! run, whatever the machine's speed that hour.
//!
//! `FAULTLINE_BENCH_CORPUS=PATH` writes the corpus to PATH as well (for
//! `wc -l`, or `faultline analyze`, on the same bytes).
//!
//! A second group reads OpenTelemetry GenAI lines alone (about 16 MiB of
//! flattened spans and OTLP exports), which are flattened per span.

use std::borrow::Cow;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use faultline_ingest::{IngestOptions, Ingester};
use serde::de::IgnoredAny;
use serde::Deserialize;

const PROVIDERS: [(&str, &str, &str); 4] = [
    ("openai", "api.openai.com", "gpt-4o-mini"),
    ("anthropic", "api.anthropic.com", "claude-sonnet-4-20250514"),
    ("deepseek", "api.deepseek.com", "deepseek-chat"),
    (
        "gemini",
        "generativelanguage.googleapis.com",
        "gemini-2.0-flash",
    ),
];
const SERVICES: [&str; 5] = [
    "checkout-api",
    "search",
    "support-bot",
    "batch-summarizer",
    "agent",
];

/// A small deterministic generator (xorshift) so the corpus is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn corpus(target_bytes: usize) -> Vec<u8> {
    use std::io::Write;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(target_bytes + 4096);
    let mut ts: u64 = 1_741_046_400_000;
    while out.len() < target_bytes {
        ts += rng.below(40);
        let secs = ts / 1000;
        let (h, m, s, ms) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60, ts % 1000);
        let stamp = format!("2025-03-04T{h:02}:{m:02}:{s:02}.{ms:03}Z");
        let (provider, host, model) = PROVIDERS[rng.below(4) as usize];
        let service = SERVICES[rng.below(5) as usize];
        let req = rng.next();
        let latency = 200 + rng.below(4000);
        let prompt = rng.below(20_000);
        let completion = rng.below(1500);
        let error = rng.below(100) < 5;
        let _ = match rng.below(10) {
            0..=6 if !error => writeln!(
                out,
                r#"{{"ts":"{stamp}","level":"info","event":"llm.call","service":"{service}","provider":"{provider}","model":"{model}","status_code":200,"latency_ms":{latency},"request_id":"req_{req:016x}","prompt_tokens":{prompt},"completion_tokens":{completion},"key_alias":"{service}-prod","attempt":0,"stream":false,"trace_id":"{req:032x}","span_id":"{req:016x}","env":"prod","region":"us-east-1"}}"#
            ),
            0..=6 => writeln!(
                out,
                r#"{{"ts":"{stamp}","level":"error","event":"llm.call","service":"{service}","provider":"{provider}","model":"{model}","status_code":429,"latency_ms":{latency},"request_id":"req_{req:016x}","error":{{"type":"rate_limit_error","code":"rate_limit_exceeded","message":"Rate limit reached for {model} on tokens per min (TPM): Limit 30000, Used 29000, Requested 1500."}},"retry_after":2,"key_alias":"{service}-prod","attempt":1,"trace_id":"{req:032x}","env":"prod"}}"#
            ),
            7 | 8 if !error => writeln!(
                out,
                r#"{{"ts":"{stamp}","service":"{service}","request":{{"method":"POST","url":"https://{host}/v1/chat/completions","headers":{{"content-type":"application/json"}},"body":{{"model":"{model}","max_tokens":1024,"stream":false,"temperature":0.2}}}},"response":{{"status":200,"headers":{{"x-request-id":"req_{req:016x}","content-type":"application/json"}},"body":{{"id":"chatcmpl-{req:x}","object":"chat.completion","model":"{model}","choices":[{{"index":0,"message":{{"role":"assistant","content":"Summary of the ticket: the customer asks for a refund of order {req}."}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":{prompt},"completion_tokens":{completion},"total_tokens":{}}}}}}},"latency_ms":{latency}}}"#,
                prompt + completion
            ),
            7 | 8 => writeln!(
                out,
                r#"{{"ts":"{stamp}","service":"{service}","request":{{"method":"POST","url":"https://{host}/v1/messages","body":{{"model":"{model}","max_tokens":4096}}}},"response":{{"status":529,"headers":{{"request-id":"req_{req:016x}","retry-after":"10"}},"body":{{"type":"error","error":{{"type":"overloaded_error","message":"Overloaded"}},"request_id":"req_{req:016x}"}}}},"latency_ms":{latency}}}"#
            ),
            _ => writeln!(
                out,
                r#"{{"id":"chatcmpl-{req:x}","trace_id":"t-{req:x}","call_type":"acompletion","stream":false,"status":"success","custom_llm_provider":"{provider}","model":"{model}","model_group":"{model}","api_base":"https://{host}/v1","startTime":{}.{:03},"endTime":{}.{:03},"prompt_tokens":{prompt},"completion_tokens":{completion},"total_tokens":{},"metadata":{{"user_api_key_hash":"{req:064x}","user_api_key_alias":"{service}","user_api_key_team_alias":"platform"}},"cache_hit":false,"response_cost":0.00042,"error_str":null}}"#,
                ts / 1000,
                ts % 1000,
                (ts + latency) / 1000,
                (ts + latency) % 1000,
                prompt + completion
            ),
        };
    }
    out
}

/// OpenTelemetry GenAI lines, one call each: flattened spans with their
/// attributes nested or at the top level, and OTLP exports (a collector's
/// file exporter) of a GenAI span with its HTTP child span.
fn otel_corpus(target_bytes: usize) -> Vec<u8> {
    use std::io::Write;
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut out = Vec::with_capacity(target_bytes + 4096);
    let mut ns: u64 = 1_741_046_400_000_000_000;
    while out.len() < target_bytes {
        ns += rng.below(40) * 1_000_000;
        let end = ns + (200 + rng.below(4000)) * 1_000_000;
        let (provider, host, model) = PROVIDERS[rng.below(4) as usize];
        let service = SERVICES[rng.below(5) as usize];
        let (trace, span) = (rng.next(), rng.next());
        let (input, output) = (rng.below(20_000), rng.below(1500));
        let status = if rng.below(100) < 5 { 429 } else { 200 };
        let _ = match rng.below(3) {
            0 => writeln!(
                out,
                r#"{{"name":"chat {model}","trace_id":"{trace:032x}","span_id":"{span:016x}","start_time":{ns},"end_time":{end},"status":{{"status_code":"{}"}},"attributes":{{"gen_ai.operation.name":"chat","gen_ai.provider.name":"{provider}","gen_ai.request.model":"{model}","gen_ai.request.max_tokens":1024,"server.address":"{host}","http.response.status_code":{status},"gen_ai.usage.input_tokens":{input},"gen_ai.usage.output_tokens":{output}}},"resource":{{"service.name":"{service}"}}}}"#,
                if status == 200 { "OK" } else { "ERROR" }
            ),
            1 => writeln!(
                out,
                r#"{{"name":"chat {model}","start_time":{ns},"end_time":{end},"gen_ai.system":"{provider}","gen_ai.request.model":"{model}","gen_ai.response.model":"{model}","gen_ai.usage.input_tokens":{input},"gen_ai.usage.output_tokens":{output},"gen_ai.response.id":"resp_{span:016x}","http.response.status_code":{status},"service.name":"{service}"}}"#
            ),
            _ => writeln!(
                out,
                r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeSpans":[{{"scope":{{"name":"opentelemetry.instrumentation.openai"}},"spans":[{{"traceId":"{trace:032x}","spanId":"{span:016x}","name":"chat {model}","kind":3,"startTimeUnixNano":"{ns}","endTimeUnixNano":"{end}","attributes":[{{"key":"gen_ai.operation.name","value":{{"stringValue":"chat"}}}},{{"key":"gen_ai.provider.name","value":{{"stringValue":"{provider}"}}}},{{"key":"gen_ai.request.model","value":{{"stringValue":"{model}"}}}},{{"key":"gen_ai.usage.input_tokens","value":{{"intValue":"{input}"}}}},{{"key":"gen_ai.usage.output_tokens","value":{{"intValue":"{output}"}}}}],"status":{{}}}},{{"traceId":"{trace:032x}","spanId":"{:016x}","parentSpanId":"{span:016x}","name":"POST","kind":3,"startTimeUnixNano":"{ns}","endTimeUnixNano":"{end}","attributes":[{{"key":"http.request.method","value":{{"stringValue":"POST"}}}},{{"key":"server.address","value":{{"stringValue":"{host}"}}}},{{"key":"http.response.status_code","value":{{"intValue":"{status}"}}}}],"status":{{}}}}]}}]}}]}}"#,
                span ^ 1
            ),
        };
    }
    out
}

/// A line of any of the corpus's formats, typed: the fields faultline's
/// normalizer reads, as serde would give them to a hand-written normalizer.
/// Strings are borrowed unless they hold escapes; other keys are skipped.
#[derive(Deserialize)]
#[allow(dead_code)]
struct TypedLine<'a> {
    #[serde(borrow)]
    ts: Option<Cow<'a, str>>,
    #[serde(borrow)]
    service: Option<Cow<'a, str>>,
    #[serde(borrow)]
    provider: Option<Cow<'a, str>>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    status_code: Option<u16>,
    latency_ms: Option<f64>,
    #[serde(borrow)]
    request_id: Option<Cow<'a, str>>,
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
    #[serde(borrow)]
    key_alias: Option<Cow<'a, str>>,
    attempt: Option<u16>,
    stream: Option<bool>,
    #[serde(borrow)]
    error: Option<TypedError<'a>>,
    retry_after: Option<f64>,
    #[serde(borrow)]
    request: Option<TypedRequest<'a>>,
    #[serde(borrow)]
    response: Option<TypedResponse<'a>>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    custom_llm_provider: Option<Cow<'a, str>>,
    #[serde(borrow)]
    api_base: Option<Cow<'a, str>>,
    #[serde(rename = "startTime")]
    start_time: Option<f64>,
    #[serde(rename = "endTime")]
    end_time: Option<f64>,
    #[serde(borrow)]
    metadata: Option<TypedMetadata<'a>>,
    #[serde(borrow)]
    error_str: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct TypedError<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct TypedRequest<'a> {
    #[serde(borrow)]
    url: Option<Cow<'a, str>>,
    body: Option<TypedRequestBody>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct TypedRequestBody {
    max_tokens: Option<u32>,
    stream: Option<bool>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct TypedResponse<'a> {
    status: Option<u16>,
    #[serde(borrow)]
    headers: Option<TypedHeaders<'a>>,
    #[serde(borrow)]
    body: Option<TypedBody<'a>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct TypedHeaders<'a> {
    #[serde(borrow, rename = "x-request-id")]
    x_request_id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "request-id")]
    request_id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "retry-after")]
    retry_after: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct TypedBody<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    choices: Option<Vec<IgnoredAny>>,
    usage: Option<TypedUsage>,
    #[serde(borrow)]
    error: Option<TypedError<'a>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct TypedUsage {
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct TypedMetadata<'a> {
    #[serde(borrow)]
    user_api_key_hash: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_api_key_alias: Option<Cow<'a, str>>,
}

/// The lines of `data` that are not empty.
fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&byte| byte == b'\n')
        .filter(|line| !line.is_empty())
}

/// Lines serde_json finds valid, building nothing: a yardstick measured in
/// the same run. This machine's speed moves between hours, and parse +
/// normalize is best read against figures of the same hour.
fn validated(data: &[u8]) -> usize {
    lines(data)
        .filter(|line| serde_json::from_slice::<IgnoredAny>(line).is_ok())
        .count()
}

/// Records and bad lines of `data`.
fn ingested(ingester: &Ingester, data: &[u8]) -> (usize, usize) {
    let (mut records, mut bad) = (0usize, 0usize);
    ingester.ingest_bytes("bench", data, &mut |batch| {
        records += batch.records.len();
        bad += batch.bad_lines.len();
    });
    (records, bad)
}

/// Parse + normalize of `data` as `name` in `group`, once checked to make
/// one record of every line: a figure reached by rejecting lines would
/// measure the quarantine, not the normalizer.
fn bench_parse<M: criterion::measurement::Measurement>(
    group: &mut criterion::BenchmarkGroup<'_, M>,
    name: &str,
    data: &[u8],
    threads: usize,
) {
    let ingester = Ingester::new(IngestOptions {
        threads,
        ..IngestOptions::default()
    })
    .unwrap();
    assert_eq!(
        ingested(&ingester, data),
        (lines(data).count(), 0),
        "{name}: a line did not become a record"
    );
    group.bench_function(name, |b| b.iter(|| ingested(&ingester, data)));
}

fn bench_ingest(c: &mut Criterion) {
    let data = corpus(64 << 20);
    // The same corpus as a file, for `wc -l` or `faultline analyze` on it.
    if let Some(path) = std::env::var_os("FAULTLINE_BENCH_CORPUS") {
        std::fs::write(&path, &data).expect("the corpus file is writable");
    }
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(10);
    group.bench_function("split_lines", |b| {
        b.iter(|| memchr::memchr_iter(b'\n', &data).count());
    });
    group.bench_function("serde_json_validate_1t", |b| b.iter(|| validated(&data)));
    // Every line of the corpus parses into the typed line; a line that did
    // not would be counted out and make the figure meaningless.
    let typed = |data: &[u8]| {
        lines(data)
            .filter(|line| serde_json::from_slice::<TypedLine<'_>>(line).is_ok())
            .count()
    };
    assert_eq!(
        typed(&data),
        lines(&data).count(),
        "a corpus line did not parse as a typed line"
    );
    group.bench_function("serde_json_typed_1t", |b| b.iter(|| typed(&data)));
    for threads in [1, 2] {
        bench_parse(
            &mut group,
            &format!("parse_normalize_{threads}t"),
            &data,
            threads,
        );
    }
    group.finish();

    // OpenTelemetry lines apart: they are flattened per span before they
    // are read, and a log of them alone is read at this rate.
    let otel = otel_corpus(16 << 20);
    let mut group = c.benchmark_group("ingest_otel");
    group.throughput(Throughput::Bytes(otel.len() as u64));
    group.sample_size(10);
    group.bench_function("serde_json_validate_1t", |b| b.iter(|| validated(&otel)));
    bench_parse(&mut group, "parse_normalize_1t", &otel, 1);
    group.finish();
}

criterion_group!(benches, bench_ingest);
criterion_main!(benches);
