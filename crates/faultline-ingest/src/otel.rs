//! OpenTelemetry GenAI: OTLP JSON exports (`resourceSpans`, `resourceLogs`) and
//! flattened spans (`gen_ai.*` keys at the top level or under `attributes`).
//!
//! Each span or log record is flattened into one JSON object of attribute keys
//! and then read with the same field rules as the other formats.

use serde_json::{Map, Value};

use crate::normalize::{
    base_record, common, error_value, finish, message, set_if_none, timestamp, ts_of, Ctx, Origin,
    Rejection,
};
use crate::quarantine::Reason;
use crate::record::{Format, Record};
use crate::view::{Obj, F};

pub(crate) fn normalize(
    text: &str,
    origin: &Origin<'_>,
    ctx: &Ctx<'_>,
    out: &mut Vec<Record>,
) -> Result<(), Rejection> {
    // The line already scanned as valid JSON; building it as a tree can still
    // meet nesting past serde_json's recursion limit, or a lone surrogate escape.
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let detail = e.to_string();
        Rejection {
            reason: if detail.starts_with("recursion limit exceeded") {
                Reason::TooDeep
            } else {
                Reason::InvalidJson
            },
            detail: Some(detail),
        }
    })?;
    let mut items = Vec::new();
    if let Some(resources) = value.get("resourceSpans").and_then(Value::as_array) {
        for resource in resources {
            let service = resource_service(resource);
            for scope in
                array(resource, "scopeSpans").chain(array(resource, "instrumentationLibrarySpans"))
            {
                for span in array(scope, "spans") {
                    items.push(flatten(span, service.as_ref()));
                }
            }
        }
    } else if let Some(resources) = value.get("resourceLogs").and_then(Value::as_array) {
        for resource in resources {
            let service = resource_service(resource);
            for scope in array(resource, "scopeLogs") {
                for log in array(scope, "logRecords") {
                    items.push(flatten(log, service.as_ref()));
                }
            }
        }
    } else {
        items.push(flatten(&value, None));
    }
    let items = keep_gen_ai(items);
    if items.is_empty() {
        return Err(Reason::NotACall.into());
    }
    let start = out.len();
    for item in items {
        match record(&item, origin, ctx) {
            Ok(rec) => out.push(rec),
            Err(reason) => {
                // One bad span rejects the line, so nothing is half-counted.
                out.truncate(start);
                return Err(reason.into());
            }
        }
    }
    Ok(())
}

/// Keeps the GenAI spans of an export. The GenAI span carries no HTTP status;
/// when a child HTTP span has one, it is copied onto its parent.
fn keep_gen_ai(items: Vec<Map<String, Value>>) -> Vec<Map<String, Value>> {
    if items.len() == 1 {
        return items;
    }
    let is_gen_ai = |item: &Map<String, Value>| item.keys().any(|k| k.starts_with("gen_ai."));
    let mut child_status = std::collections::HashMap::new();
    for item in items.iter().filter(|i| !is_gen_ai(i)) {
        let status = item
            .get("http.response.status_code")
            .or_else(|| item.get("http.status_code"));
        if let (Some(parent), Some(status)) =
            (item.get("parentSpanId").and_then(Value::as_str), status)
        {
            child_status.insert(parent.to_owned(), status.clone());
        }
    }
    items
        .into_iter()
        .filter(is_gen_ai)
        .map(|mut item| {
            let span_id = item
                .get("spanId")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let Some(status) = span_id.and_then(|id| child_status.get(&id)) {
                item.entry("http.response.status_code")
                    .or_insert_with(|| status.clone());
            }
            item
        })
        .collect()
}

fn array<'v>(value: &'v Value, key: &str) -> impl Iterator<Item = &'v Value> {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter())
        .into_iter()
        .flatten()
}

fn resource_service(resource: &Value) -> Option<Value> {
    let attrs = resource.get("resource")?.get("attributes")?;
    attr_list(attrs).remove("service.name")
}

/// OTLP `[{"key": k, "value": {"stringValue": v}}]` (or an object map) to a map.
fn attr_list(attrs: &Value) -> Map<String, Value> {
    match attrs {
        Value::Object(map) => map.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(|item| {
                let key = item.get("key")?.as_str()?;
                Some((key.to_owned(), any_value(item.get("value")?)))
            })
            .collect(),
        _ => Map::new(),
    }
}

/// An OTLP `AnyValue` to plain JSON.
fn any_value(value: &Value) -> Value {
    let Some(obj) = value.as_object() else {
        return value.clone();
    };
    for key in ["stringValue", "boolValue", "doubleValue"] {
        if let Some(v) = obj.get(key) {
            return v.clone();
        }
    }
    if let Some(v) = obj.get("intValue") {
        // int64 travels as a string in OTLP JSON.
        return v
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .map_or_else(|| v.clone(), Value::from);
    }
    if let Some(values) = obj
        .get("arrayValue")
        .and_then(|a| a.get("values"))
        .and_then(Value::as_array)
    {
        return Value::Array(values.iter().map(any_value).collect());
    }
    value.clone()
}

/// One span or log record as a flat object of attribute keys.
fn flatten(item: &Value, service: Option<&Value>) -> Map<String, Value> {
    let mut flat = Map::new();
    if let Some(obj) = item.as_object() {
        for (key, value) in obj {
            match key.as_str() {
                "attributes" | "status" | "events" | "body" | "resource" => {}
                _ => {
                    flat.insert(key.clone(), value.clone());
                }
            }
        }
    }
    if let Some(attrs) = item.get("attributes") {
        for (key, value) in attr_list(attrs) {
            flat.insert(key, value);
        }
    }
    if let Some(service) = service {
        flat.entry("service.name")
            .or_insert_with(|| service.clone());
    }
    if let Some(status) = item.get("status") {
        let code = status.get("code").or_else(|| status.get("status_code"));
        let is_error = match code {
            Some(Value::Number(n)) => n.as_u64() == Some(2),
            Some(Value::String(s)) => s.ends_with("ERROR"),
            _ => status.as_str().is_some_and(|s| s.ends_with("ERROR")),
        };
        if is_error {
            flat.insert("otel.status_error".into(), Value::Bool(true));
        }
        if let Some(msg) = status.get("message").or_else(|| status.get("description")) {
            flat.insert("status_message".into(), msg.clone());
        }
    }
    if flat
        .get("status_code")
        .and_then(Value::as_str)
        .is_some_and(|s| s.ends_with("ERROR"))
    {
        flat.remove("status_code");
        flat.insert("otel.status_error".into(), Value::Bool(true));
    }
    for event in array(item, "events") {
        if event.get("name").and_then(Value::as_str) == Some("exception")
            || event.get("name").and_then(Value::as_str)
                == Some("gen_ai.client.operation.exception")
        {
            let attrs = event.get("attributes").map(attr_list).unwrap_or_default();
            if let Some(kind) = attrs.get("exception.type") {
                flat.entry("exception.type").or_insert_with(|| kind.clone());
            }
            if let Some(msg) = attrs.get("exception.message") {
                flat.entry("error_message").or_insert_with(|| msg.clone());
            }
        }
    }
    if let Some(body) = item.get("body") {
        let body = any_value(body);
        if !body.is_null() {
            flat.entry("otel.body").or_insert(body);
        }
    }
    flat
}

fn record(item: &Map<String, Value>, origin: &Origin<'_>, ctx: &Ctx<'_>) -> Result<Record, Reason> {
    let text = serde_json::to_string(item).map_err(|_| Reason::InvalidJson)?;
    let obj = Obj::parse(&text).map_err(|_| Reason::InvalidJson)?;
    let mut rec = base_record(origin);
    rec.format = Some(Format::OtelGenAi);
    rec.ts_ms = timestamp(&obj, &[F::StartTime, F::Ts])?;
    common(&obj, ctx, &mut rec);
    if let (Some(start), Some(end)) = (obj.get(F::StartTime), obj.get(F::EndTime)) {
        if let (Ok(start), Ok(end)) = (ts_of(start), ts_of(end)) {
            if end >= start {
                set_if_none(&mut rec.latency_ms, Some((end - start) as f64));
            }
        }
    }
    set_if_none(
        &mut rec.error_type,
        obj.str(F::ErrorType).map(std::borrow::Cow::into_owned),
    );
    if let Some(msg) = obj.str(F::Message) {
        set_if_none(&mut rec.error_message, message(&msg));
    }
    if let Some(raw) = obj.get(F::Error) {
        error_value(raw, &mut rec);
    }
    let status_error = item
        .get("otel.status_error")
        .is_some_and(|v| v == &Value::Bool(true));
    if status_error && rec.error_type.is_none() && rec.error_message.is_none() {
        rec.error_type = Some("_OTHER".to_owned());
    }
    if !status_error && rec.error_type.is_none() && rec.http_status.is_none() {
        // A span that ended without an error status is a successful call.
        rec.http_status = Some(200);
    }
    finish(&obj, &mut rec)?;
    Ok(rec)
}
