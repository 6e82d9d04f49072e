//! The real `faultline` binary, run as a user would.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(rel)
}

fn faultline() -> Command {
    let mut cmd = Command::cargo_bin("faultline").unwrap();
    // Settings come from flags in these tests, never from the caller's environment.
    for (key, _) in std::env::vars() {
        if key.starts_with("FAULTLINE_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Every value of every column of a parquet file that reads as text.
fn parquet_text(path: &Path) -> String {
    use polars::prelude::*;
    let frame = ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap();
    let mut text = String::new();
    for column in frame.columns() {
        let Ok(strings) = column.cast(&DataType::String) else {
            continue;
        };
        let strings = strings.str().unwrap().clone();
        for value in strings.iter().flatten() {
            text.push_str(value);
            text.push('\n');
        }
    }
    assert!(!text.is_empty(), "{} reads as empty", path.display());
    text
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn analyze_with_no_input_runs_the_built_in_sample_day() {
    let out = tempfile::tempdir().unwrap();
    let assert = faultline()
        .args(["analyze", "--out"])
        .arg(out.path())
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(stdout.contains("built-in sample day"), "{stdout}");
    assert!(
        stdout.contains("incidents (13), most severe first"),
        "{stdout}"
    );

    let summary = read_json(&out.path().join("summary.json"));
    assert_eq!(summary["embedded_sample"], true);
    assert_eq!(summary["totals"]["bad_lines"], 3);
    let patterns = summary["incidents_by_pattern"].as_object().unwrap();
    assert_eq!(patterns.len(), 13, "{patterns:?}");
    assert!(patterns.values().all(|n| n == 1), "{patterns:?}");

    let incidents = read_json(&out.path().join("incidents.json"));
    let first = &incidents[0];
    assert_eq!(first["severity"], "critical");
    for field in [
        "id",
        "pattern",
        "severity",
        "provider",
        "model",
        "service",
        "key_fp",
        "start",
        "end",
        "duration_s",
        "requests",
        "errors",
        "error_rate",
        "peak_rate",
        "summary",
        "action",
        "escalation",
        "evidence",
    ] {
        assert!(
            first.get(field).is_some(),
            "incident lacks {field}: {first}"
        );
    }

    let quarantine = std::fs::read_to_string(out.path().join("quarantine.jsonl")).unwrap();
    let lines: Vec<Value> = quarantine
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["file"], "sample/research-agent.jsonl");
    assert_eq!(lines[0]["reason"], "invalid_json");
    // No temporary file is left behind.
    let mut names: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "incidents.json",
            "incidents.parquet",
            "operations.parquet",
            "quarantine.jsonl",
            "records.parquet",
            "report.html",
            "report.md",
            "rollups.parquet",
            "summary.json"
        ],
        "{names:?}"
    );
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(report.contains("### 1. quota_exhausted"), "{report}");
    assert!(report.contains("## Data quality"), "{report}");
    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    assert_eq!(html.matches("<article class=\"incident ").count(), 13);
    for chart in [
        "chart-incidents",
        "chart-requests",
        "chart-errors",
        "chart-classes",
        "chart-latency",
    ] {
        assert!(html.contains(&format!("id=\"{chart}\"")), "no {chart}");
    }
    // Self-contained: nothing to fetch, nothing to run.
    assert!(!html.contains("<script"), "a script in the report");
    assert!(!html.contains("src="), "a fetched resource in the report");
    assert!(
        html.contains("default-src 'none'"),
        "no content security policy"
    );
}

/// Parses the RFC 3339 times faultline writes (`2026-03-10T12:00:02.123Z`) to ms.
fn ms(text: &str) -> i64 {
    let num = |range: std::ops::Range<usize>| text[range].parse::<i64>().unwrap();
    assert_eq!(&text[..11], "2026-03-10T", "the sample day: {text}");
    let day_start = 1_773_100_800_000;
    day_start + ((num(11..13) * 60 + num(14..16)) * 60 + num(17..19)) * 1000 + num(20..23)
}

/// Every injected incident is found with its pattern, provider, scope and
/// span, and nothing else is reported: the sample day's ground truth.
fn assert_matches_ground_truth(truth: &Value, found: &Value) -> (usize, usize) {
    let truth = truth["incidents"].as_array().unwrap();
    let found = found.as_array().unwrap();
    let mut used = vec![false; found.len()];
    let mut missed = Vec::new();
    for t in truth {
        let (t0, t1) = (
            t["start_ms"].as_i64().unwrap(),
            t["end_ms"].as_i64().unwrap(),
        );
        let hit = found.iter().enumerate().position(|(i, f)| {
            let (f0, f1) = (
                ms(f["start"].as_str().unwrap()),
                ms(f["end"].as_str().unwrap()),
            );
            // Within two minutes of the injected window, covering three quarters of it.
            let covered = (f1.min(t1) - f0.max(t0)) as f64 / (t1 - t0) as f64;
            !used[i]
                && f["pattern"] == t["pattern"]
                && f["provider"] == t["provider"]
                && ["service", "model", "key_fp"]
                    .iter()
                    .all(|k| t[k].is_null() || f[k] == t[k])
                && f0 >= t0 - 120_000
                && f1 <= t1 + 120_000
                && covered >= 0.75
        });
        match hit {
            Some(i) => used[i] = true,
            None => missed.push(t["pattern"].as_str().unwrap().to_owned()),
        }
    }
    let extra: Vec<String> = found
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .map(|(f, _)| format!("{} {} {}", f["pattern"], f["start"], f["summary"]))
        .collect();
    assert!(
        missed.is_empty() && extra.is_empty(),
        "missed: {missed:?}\nnot injected: {extra:#?}"
    );
    (truth.len(), found.len())
}

#[test]
fn the_sample_day_yields_exactly_its_injected_incidents() {
    let dir = tempfile::tempdir().unwrap();
    for (seed, size) in [("7", "4MiB"), ("42", "12MiB")] {
        let day = dir.path().join(format!("day-{seed}"));
        faultline()
            .args(["sample", "--size", size, "--seed", seed, "--out"])
            .arg(&day)
            .assert()
            .success();
        let out = dir.path().join(format!("out-{seed}"));
        faultline()
            .args(["analyze", "-q", "--out"])
            .arg(&out)
            .arg(day.join("logs"))
            .assert()
            .success();
        let truth = read_json(&day.join("ground-truth.json"));
        let found = read_json(&out.join("incidents.json"));
        let (injected, reported) = assert_matches_ground_truth(&truth, &found);
        assert_eq!((injected, reported), (13, 13));
        let summary = read_json(&out.join("summary.json"));
        assert_eq!(summary["totals"]["bad_lines"], truth["bad_lines"]);
        assert_matches_operations_truth(&truth["operations"], &summary["operations"], &out);
    }
}

/// The requests the sample day was written with are the operations found:
/// the totals, and each request of several attempts (retries, fallbacks)
/// with its attempts, outcome and fallback.
fn assert_matches_operations_truth(truth: &Value, found: &Value, out: &Path) {
    use polars::prelude::*;
    for (t, f) in [
        ("operations", "operations"),
        ("failed", "failed_operations"),
        ("attempts", "attempts"),
        ("retried", "retried"),
        ("fell_back", "fell_back"),
    ] {
        assert_eq!(found[f], truth[t], "{f}");
    }
    let read = |name: &str| {
        ParquetReader::new(std::fs::File::open(out.join(name)).unwrap())
            .finish()
            .unwrap()
    };
    let records = read("records.parquet");
    let ops = read("operations.parquet");
    let ids = records.column("request_id").unwrap().str().unwrap().clone();
    let op_of = records
        .column("operation_id")
        .unwrap()
        .str()
        .unwrap()
        .clone();
    let first_op: std::collections::HashMap<&str, &str> = ids
        .iter()
        .zip(op_of.iter())
        .filter_map(|(id, op)| Some((id?, op?)))
        .rev()
        .collect();
    let op_ids = ops.column("operation_id").unwrap().str().unwrap().clone();
    let attempts = ops.column("attempts").unwrap().u32().unwrap().clone();
    let succeeded = ops.column("succeeded").unwrap().bool().unwrap().clone();
    let fallback = ops.column("fallback").unwrap().bool().unwrap().clone();
    let row_of: std::collections::HashMap<&str, usize> = op_ids
        .iter()
        .enumerate()
        .filter_map(|(i, id)| Some((id?, i)))
        .collect();
    let multi = truth["multi_attempt"].as_array().unwrap();
    assert!(!multi.is_empty());
    let mut right = 0;
    for t in multi {
        let op = first_op[t["request_id"].as_str().unwrap()];
        let i = row_of[op];
        let got = (
            u64::from(attempts.get(i).unwrap()),
            succeeded.get(i).unwrap(),
            fallback.get(i).unwrap(),
        );
        let want = (
            t["attempts"].as_u64().unwrap(),
            t["succeeded"].as_bool().unwrap(),
            t["fallback"].as_bool().unwrap(),
        );
        assert_eq!(got, want, "{t}");
        right += 1;
    }
    assert_eq!(right, multi.len());
}

#[test]
fn the_sample_is_deterministic_and_refuses_a_day_too_small() {
    let dir = tempfile::tempdir().unwrap();
    let mut texts = Vec::new();
    for name in ["a", "b"] {
        faultline()
            .args(["sample", "--size", "4MiB", "--out"])
            .arg(dir.path().join(name))
            .assert()
            .success();
        texts.push(std::fs::read(dir.path().join(name).join("logs/checkout-api.jsonl")).unwrap());
    }
    assert_eq!(texts[0], texts[1]);
    let size = texts[0].len();
    assert!(
        size > 300_000,
        "checkout-api is the busiest service: {size} bytes"
    );

    let assert = faultline()
        .args(["sample", "--size", "1MiB", "--out"])
        .arg(dir.path().join("c"))
        .assert()
        .code(2);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("too small"), "{stderr}");
    let assert = faultline()
        .args(["sample", "--size", "12 parsecs"])
        .assert()
        .code(2);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("unknown size unit"), "{stderr}");
}

#[test]
fn a_missing_input_exits_2_and_the_others_are_still_read() {
    let out = tempfile::tempdir().unwrap();
    let assert = faultline()
        .args(["analyze", "--quiet", "--out"])
        .arg(out.path())
        .arg(fixture("formats/litellm.jsonl"))
        .arg("/no/such/file.jsonl")
        .assert()
        .code(2);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert_eq!(
        stderr,
        "faultline: /no/such/file.jsonl: no such file or directory\n"
    );
    assert!(assert.get_output().stdout.is_empty(), "--quiet");
    let summary = read_json(&out.path().join("summary.json"));
    assert_eq!(summary["totals"]["records"], 3);
    assert_eq!(
        summary["input_errors"][0],
        "/no/such/file.jsonl: no such file or directory"
    );
}

#[test]
fn stdin_and_json_output() {
    let out = tempfile::tempdir().unwrap();
    let log = std::fs::read(fixture("formats/envelope.jsonl")).unwrap();
    let assert = faultline()
        .args(["analyze", "--json", "--out"])
        .arg(out.path())
        .arg("-")
        .write_stdin(log)
        .assert()
        .success();
    let summary: Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert_eq!(summary["inputs"][0]["name"], "-");
    assert_eq!(summary["totals"]["records"], 7);
    assert_eq!(summary["records_by_http_status"]["no_response"], 1);
    assert_eq!(summary["totals"]["empty_responses"], 1);
}

#[test]
fn no_output_holds_a_key_from_the_input() {
    let out = tempfile::tempdir().unwrap();
    let assert = faultline()
        .args(["analyze", "--json", "--out"])
        .arg(out.path())
        .arg(fixture("formats"))
        .arg(fixture("bad"))
        .assert()
        .success();
    let mut everything = stdout_of(&assert);
    everything.push_str(&everything_under(out.path()));
    for secret in ["Q9x7LmN3vB5cT8rWz2Yk4Hj6", "sk-ant-api03-abcdefghij"] {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["totals"]["lines_with_plaintext_secrets"], 3);
}

/// Every byte a run left under `dir`, parquet cells as text.
fn everything_under(dir: &Path) -> String {
    let mut text = String::new();
    for entry in walkdir::WalkDir::new(dir) {
        let path = entry.unwrap().into_path();
        if !path.is_file() {
            continue;
        }
        if path.extension().is_some_and(|e| e == "parquet") {
            text.push_str(&parquet_text(&path));
        } else {
            text.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    text
}

#[test]
fn planted_keys_reach_no_output_of_any_command() {
    // Keys of every shape (OpenAI, Anthropic, Google, AWS, bearer tokens, URL
    // parameters) in every field of every format, in bad lines, and behind
    // JSON escapes (in a line, and in JSON held in a string of a line).
    let planted = fixture("secrets/planted.jsonl");
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let mut seen = String::new();
    let mut run = |args: &[&str], expect: i32| {
        let assert = faultline().args(args).arg("-vv").assert().code(expect);
        seen.push_str(&stdout_of(&assert));
        seen.push_str(&stderr_of(&assert));
    };
    let out_arg = out.to_str().unwrap();
    let planted_arg = planted.to_str().unwrap();
    run(
        &[
            "analyze",
            "--json",
            "--format",
            "md,html,json",
            "--out",
            out_arg,
            planted_arg,
        ],
        0,
    );
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["totals"]["records"], 10, "every call is still read");
    assert_eq!(summary["totals"]["bad_lines"], 3);
    // Every line holds a key; the two behind JSON escapes count too.
    assert_eq!(summary["totals"]["lines_with_plaintext_secrets"], 13);
    let classified = work.path().join("records.parquet");
    run(
        &["classify", planted_arg, "-o", classified.to_str().unwrap()],
        0,
    );
    let reported = work.path().join("reported");
    run(
        &[
            "report",
            classified.to_str().unwrap(),
            "--json",
            "--out",
            reported.to_str().unwrap(),
        ],
        0,
    );
    seen.push_str(&everything_under(work.path()));
    assert!(seen.contains("[REDACTED]"), "redaction leaves a mark");
    for line in seen.lines() {
        assert!(!line.contains("PLANTED"), "a key reached an output: {line}");
    }
}

/// An output's bytes without what describes the run rather than the logs:
/// summary.json's thread count and run time, and whether each input was
/// memory-mapped.
fn of_the_logs(name: &str, bytes: Vec<u8>) -> Vec<u8> {
    if name != "summary.json" {
        return bytes;
    }
    let mut summary: Value = serde_json::from_slice(&bytes).unwrap();
    let fields = summary.as_object_mut().unwrap();
    assert!(fields.remove("threads").is_some());
    assert!(fields.remove("run_seconds").is_some());
    let inputs = fields.get_mut("inputs").and_then(Value::as_array_mut);
    for input in inputs.into_iter().flatten() {
        input.as_object_mut().unwrap().remove("memory_mapped");
    }
    serde_json::to_vec_pretty(&summary).unwrap()
}

#[test]
fn outputs_are_byte_identical_whatever_the_threads_chunks_and_read_path() {
    let inputs = [
        fixture("formats"),
        fixture("bad"),
        sample_day().join("logs"),
    ];
    let run = |extra: &[&str], inputs: &[PathBuf]| -> tempfile::TempDir {
        let out = tempfile::tempdir().unwrap();
        faultline()
            .args(["analyze", "-q", "--format", "md,html,json", "--out"])
            .arg(out.path())
            .args(extra)
            .args(inputs)
            .assert()
            .success();
        out
    };
    let files = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let bytes = of_the_logs(&name, std::fs::read(&path).unwrap());
                (name, bytes)
            })
            .collect();
        files.sort();
        files
    };
    let baseline = files(run(&["-j", "1"], &inputs).path());
    assert_eq!(baseline.len(), 9, "every output compared");
    for extra in [
        &["-j", "2"][..],
        &["-j", "2", "--chunk-bytes", "4096"],
        &["-j", "3", "--chunk-bytes", "777", "--no-mmap"],
    ] {
        let other = files(run(extra, &inputs).path());
        for ((name, want), (_, got)) in baseline.iter().zip(&other) {
            assert!(want == got, "{name} differs with {extra:?}");
        }
    }
    // Incidents and rollups do not depend on the order inputs are given in.
    let reversed: Vec<PathBuf> = inputs.iter().rev().cloned().collect();
    let other = files(run(&["-j", "2"], &reversed).path());
    for name in ["incidents.json", "incidents.parquet", "rollups.parquet"] {
        let find =
            |set: &[(String, Vec<u8>)]| set.iter().find(|(n, _)| n == name).unwrap().1.clone();
        assert!(
            find(&baseline) == find(&other),
            "{name} depends on input order"
        );
    }
}

/// Every output of `analyze` and of `report`, on the format, bad-line and
/// real-client fixtures and a sample day, pinned by its digest: a change of
/// any byte a user or a dashboard reads shows here, so that a change of how
/// the program is built can be shown to change none of them. A deliberate
/// change of output is accepted with `INSTA_UPDATE=always` (or
/// `cargo insta review`) and read in the diff of the outputs it names.
#[test]
fn every_output_is_pinned_by_its_digest() {
    use std::fmt::Write as _;
    let root = tempfile::tempdir().unwrap();
    for dir in ["formats", "bad", "clients"] {
        let to = root.path().join("logs").join(dir);
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(fixture(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let log = path.extension().is_some_and(|e| e == "jsonl");
            if log && !name.ends_with(".truth.jsonl") {
                std::fs::copy(&path, to.join(name)).unwrap();
            }
        }
    }
    // Paths are relative to the run's directory, so that the outputs that
    // name inputs read the same on every machine.
    faultline()
        .current_dir(root.path())
        .args([
            "sample", "-q", "--size", "4MiB", "--seed", "7", "--out", "day",
        ])
        .assert()
        .success();
    let analyze = |out: &str| {
        faultline()
            .current_dir(root.path())
            .args([
                "analyze",
                "-q",
                "-j",
                "2",
                "--format",
                "md,html,json",
                "--out",
                out,
            ])
            .args(["logs", "day/logs"])
            .assert()
            .success();
    };
    analyze("out");
    faultline()
        .current_dir(root.path())
        .args(["report", "-q", "--format", "md,html,json", "--out", "again"])
        .arg("out/records.parquet")
        .assert()
        .success();
    let mut digests = String::new();
    for set in ["out", "again"] {
        let mut names: Vec<String> = std::fs::read_dir(root.path().join(set))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let bytes = of_the_logs(
                &name,
                std::fs::read(root.path().join(set).join(&name)).unwrap(),
            );
            let digest = blake3::hash(&bytes).to_hex();
            let _ = writeln!(digests, "{set}/{name} {}", &digest[..32]);
        }
    }
    insta::assert_snapshot!("output_digests", digests);
}

/// Names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_full_disk_is_a_clear_error_and_leaves_no_partial_output() {
    // Writes past 64 KiB fail as they would on a full disk (EFBIG here,
    // ENOSPC there: the same error path).
    let out = tempfile::tempdir().unwrap();
    let assert = Command::new("bash")
        .arg("-c")
        .arg(r#"trap '' XFSZ; ulimit -f 64; exec "$0" "$@""#)
        .arg(assert_cmd::cargo::cargo_bin("faultline"))
        .args(["analyze", "-q", "--out"])
        .arg(out.path())
        .assert()
        .code(2);
    let stderr = stderr_of(&assert);
    assert!(stderr.starts_with("faultline: cannot write"), "{stderr}");
    assert!(stderr.contains("File too large"), "{stderr}");
    for name in names_in(out.path()) {
        assert!(!name.contains(".tmp-"), "temporary {name} left behind");
        assert_ne!(
            name, "records.parquet",
            "a cut records file under its final name"
        );
    }
    // With room again, the next run completes.
    faultline()
        .args(["analyze", "-q", "--out"])
        .arg(out.path())
        .assert()
        .success();
    assert!(names_in(out.path()).contains(&"records.parquet".to_owned()));
}

#[test]
fn a_killed_run_leaves_no_output_under_a_final_name_and_the_next_run_works() {
    let out = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("faultline"))
        .args(["analyze", "-q", "--out"])
        .arg(out.path())
        .arg(sample_day().join("logs"))
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    let _ = child.kill();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run ended before it could be killed");
    let names = names_in(out.path());
    let finals: Vec<&String> = names.iter().filter(|n| !n.starts_with('.')).collect();
    assert!(finals.is_empty(), "a killed run left {finals:?}");
    faultline()
        .args(["analyze", "-q", "--out"])
        .arg(out.path())
        .arg(sample_day().join("logs"))
        .assert()
        .success();
    let names = names_in(out.path());
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    assert_eq!(names.len(), 9, "{names:?}");
}

#[test]
fn a_run_reads_its_inputs_and_writes_only_under_out() {
    let root = tempfile::tempdir().unwrap();
    let (input, cwd, out) = (
        root.path().join("in"),
        root.path().join("cwd"),
        root.path().join("out"),
    );
    for dir in [&input, &cwd] {
        std::fs::create_dir(dir).unwrap();
    }
    for name in ["flat_event.jsonl", "envelope.jsonl"] {
        std::fs::copy(fixture(&format!("formats/{name}")), input.join(name)).unwrap();
    }
    // Everything under the root: path, size, modification time.
    let snapshot = |dir: &Path| -> Vec<(PathBuf, u64, std::time::SystemTime)> {
        walkdir::WalkDir::new(dir)
            .sort_by_file_name()
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                let meta = e.metadata().unwrap();
                (e.into_path(), meta.len(), meta.modified().unwrap())
            })
            .collect()
    };
    let before = snapshot(root.path());
    for command in [
        &["analyze", "-q", "--out", "../out", "../in"][..],
        &["classify", "-q", "-o", "../out/classified.parquet", "../in"],
    ] {
        faultline()
            .current_dir(&cwd)
            .args(command)
            .assert()
            .success();
    }
    // Creating `out` touches the root itself; nothing else may change.
    let outside = |(path, ..): &(PathBuf, u64, std::time::SystemTime)| {
        path != root.path() && !path.starts_with(&out)
    };
    let after: Vec<_> = snapshot(root.path()).into_iter().filter(outside).collect();
    let before: Vec<_> = before.into_iter().filter(outside).collect();
    assert_eq!(after, before, "only --out changed");
    assert!(out.join("summary.json").is_file() && out.join("classified.parquet").is_file());
}

#[test]
fn an_unwritable_output_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let assert = faultline()
        .args(["analyze", "--out"])
        .arg(blocker.join("out"))
        .assert()
        .code(2);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.starts_with("faultline: cannot create output directory"),
        "{stderr}"
    );
}

#[test]
fn classification_reaches_the_summary_and_user_rules_win() {
    let out = tempfile::tempdir().unwrap();
    faultline()
        .args(["analyze", "--quiet", "--out"])
        .arg(out.path())
        .arg(fixture("formats/envelope.jsonl"))
        .assert()
        .success();
    let summary = read_json(&out.path().join("summary.json"));
    assert_eq!(summary["records_by_provider"]["anthropic"], 1);
    assert_eq!(summary["records_by_status_class"]["overloaded"], 1);
    assert_eq!(summary["failures_by_cause"]["context_length_exceeded"], 1);

    let rules = out.path().join("mine.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nid = \"overloaded\"\nclass = \"server_error\"\ncause = \"our_overload\"\npattern = \"overloaded\"\n",
    )
    .unwrap();
    faultline()
        .args(["analyze", "--quiet", "--out"])
        .arg(out.path())
        .arg("--rules")
        .arg(&rules)
        .arg(fixture("formats/envelope.jsonl"))
        .assert()
        .success();
    let summary = read_json(&out.path().join("summary.json"));
    assert_eq!(summary["failures_by_cause"]["our_overload"], 1);
    assert!(summary["records_by_status_class"]
        .get("overloaded")
        .is_none());
}

#[test]
fn an_invalid_rule_file_is_rejected_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("bad.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nid = \"x\"\nclass = \"slow\"\ncause = \"c\"\npattern = \"a\"\n",
    )
    .unwrap();
    let assert = faultline()
        .arg("rules")
        .arg("--rules")
        .arg(&rules)
        .assert()
        .code(2);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert_eq!(
        stderr,
        format!(
            "faultline: {}:2: rule x: unknown class \"slow\"\n",
            rules.display()
        )
    );
}

#[test]
fn rules_lists_the_defaults_in_order() {
    let assert = faultline().arg("rules").assert().success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    let first = stdout.lines().next().unwrap();
    assert_eq!(first, " 1. missing-api-key  ->  auth / missing_api_key");
    let quota = stdout.find("quota-exhausted").unwrap();
    let rate = stdout.find("rate-limit-requests").unwrap();
    assert!(quota < rate, "quota is tried before rate limits");
}

#[test]
fn explain_a_status_and_a_code() {
    let assert = faultline().args(["explain", "529"]).assert().success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(
        stdout.starts_with("HTTP 529: status class overloaded"),
        "{stdout}"
    );
    assert!(stdout.contains("route to a smaller model"), "{stdout}");

    // A 400 is never a rate limit, whatever its words say.
    let assert = faultline().args(["explain", "400"]).assert().success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    let bound = stdout
        .lines()
        .find(|l| l.contains("a rule's words may make it:"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        bound.contains("bad_request") && bound.contains("auth"),
        "{bound}"
    );
    assert!(!bound.contains("rate_limit"), "{bound}");

    let assert = faultline()
        .args(["explain", "insufficient_quota"])
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(
        stdout.contains("quota-exhausted -> quota / quota_exhausted"),
        "{stdout}"
    );
    assert!(stdout.contains("retryable: no"), "{stdout}");

    let assert = faultline()
        .args(["explain", "no_such_code"])
        .assert()
        .code(1);
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(stdout.starts_with("No rule speaks about"), "{stdout}");
}

/// A 4 MiB sample day (seed 7) shared by the tests below, under the target
/// directory (a temporary directory held in a static is never dropped, so
/// each run left one behind).
///
/// Test processes run side by side (nextest runs one per test), each with
/// its own `OnceLock`: the day is written under a name of the process's
/// own and renamed into place under the writing binary's modification
/// time, so no process reads a day that another is writing or removing.
/// Days written by earlier builds are removed.
fn sample_day() -> &'static Path {
    static DAY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DAY.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let built = std::fs::metadata(assert_cmd::cargo::cargo_bin("faultline"))
            .and_then(|meta| meta.modified())
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("cli-sample-day-{built:x}");
        let dir = root.join(&name);
        if !dir.exists() {
            let writing = root.join(format!("cli-sample-day.{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&writing);
            faultline()
                .args(["sample", "--size", "4MiB", "--seed", "7", "--out"])
                .arg(&writing)
                .assert()
                .success();
            // Fails when another process renamed its day into place first.
            if std::fs::rename(&writing, &dir).is_err() {
                std::fs::remove_dir_all(&writing).unwrap();
            }
        }
        for entry in std::fs::read_dir(root).unwrap().flatten() {
            let old = entry.file_name();
            let old = old.to_string_lossy();
            if old.starts_with("cli-sample-day") && old != name && !old.contains('.') {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        dir
    })
}

fn incident_keys(incidents: &Value) -> Vec<(String, String, String, String)> {
    let mut keys: Vec<_> = incidents
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].to_string(),
                i["pattern"].to_string(),
                i["start"].to_string(),
                i["errors"].to_string(),
            )
        })
        .collect();
    keys.sort();
    keys
}

fn stdout_of(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(assert.get_output().stdout.clone()).unwrap()
}

fn stderr_of(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(assert.get_output().stderr.clone()).unwrap()
}

#[test]
fn classify_then_report_finds_what_analyze_finds_also_across_files() {
    let day = sample_day();
    let dir = tempfile::tempdir().unwrap();
    let analyzed = dir.path().join("analyzed");
    faultline()
        .args(["analyze", "-q", "--out"])
        .arg(&analyzed)
        .arg(day.join("logs"))
        .assert()
        .success();

    // The services split over two records files, reported together.
    let mut logs: Vec<PathBuf> = std::fs::read_dir(day.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    logs.sort();
    let (first, second) = logs.split_at(logs.len() / 2);
    for (name, files) in [("a.parquet", first), ("b.parquet", second)] {
        let assert = faultline()
            .arg("classify")
            .args(files)
            .arg("-o")
            .arg(dir.path().join("days").join(name))
            .assert()
            .success();
        assert!(
            stdout_of(&assert).contains("wrote"),
            "{}",
            stdout_of(&assert)
        );
    }
    // Bad lines are kept beside the records file they were read for.
    let quarantined: usize = ["a", "b"]
        .iter()
        .map(|n| {
            std::fs::read_to_string(dir.path().join(format!("days/{n}.quarantine.jsonl")))
                .unwrap()
                .lines()
                .count()
        })
        .sum();
    assert_eq!(quarantined, 3);

    let reported = dir.path().join("reported");
    let assert = faultline()
        .arg("report")
        .arg(dir.path().join("days/a.parquet"))
        .arg(dir.path().join("days/b.parquet"))
        .arg("--out")
        .arg(&reported)
        .assert()
        .success();
    assert!(
        stdout_of(&assert).contains("incidents (13)"),
        "{}",
        stdout_of(&assert)
    );
    assert_eq!(
        incident_keys(&read_json(&analyzed.join("incidents.json"))),
        incident_keys(&read_json(&reported.join("incidents.json")))
    );
    let (a, r) = (
        read_json(&analyzed.join("summary.json")),
        read_json(&reported.join("summary.json")),
    );
    assert_eq!(a["totals"]["records"], r["totals"]["records"]);
    assert_eq!(a["records_by_status_class"], r["records_by_status_class"]);
    assert_eq!(a["failures_by_cause"], r["failures_by_cause"]);
    for name in [
        "rollups.parquet",
        "incidents.parquet",
        "report.md",
        "report.html",
    ] {
        assert!(reported.join(name).is_file(), "report wrote no {name}");
    }
    // The dashboards' table is the same from the records as from the logs
    // (completion tokens were once lost on the way back).
    assert!(
        std::fs::read(analyzed.join("rollups.parquet")).unwrap()
            == std::fs::read(reported.join("rollups.parquet")).unwrap(),
        "report's rollups.parquet differs from analyze's"
    );
    // report reads records; it writes none.
    assert!(!reported.join("records.parquet").exists());
}

#[test]
fn report_refuses_a_parquet_file_that_holds_no_records() {
    let day = sample_day();
    let dir = tempfile::tempdir().unwrap();
    faultline()
        .args(["analyze", "-q", "--format", "md", "--out"])
        .arg(dir.path())
        .arg(day.join("logs/checkout-api.jsonl"))
        .assert()
        .success();
    let assert = faultline()
        .arg("report")
        .arg(dir.path().join("rollups.parquet"))
        .arg("--out")
        .arg(dir.path().join("again"))
        .assert()
        .code(2);
    let stderr = stderr_of(&assert);
    assert!(
        stderr.contains("rollups.parquet: not a faultline records file: no column \"ts\""),
        "{stderr}"
    );
    let assert = faultline()
        .args(["report", "/no/such/records.parquet"])
        .assert()
        .code(2);
    assert!(stderr_of(&assert).contains("/no/such/records.parquet: no such file"));
}

#[test]
fn fail_on_exits_1_only_when_an_incident_is_that_severe() {
    let day = sample_day();
    let dir = tempfile::tempdir().unwrap();
    let assert = faultline()
        .args(["analyze", "--fail-on", "critical", "--out"])
        .arg(dir.path().join("day"))
        .arg(day.join("logs"))
        .assert()
        .code(1);
    assert!(
        stderr_of(&assert).contains("found incidents of severity critical or worse"),
        "{}",
        stderr_of(&assert)
    );
    // The outputs are all there: --fail-on changes the exit code only.
    assert!(dir.path().join("day/report.html").is_file());

    // A quiet log has no incident: success whatever the level.
    faultline()
        .args(["analyze", "-q", "--fail-on", "low", "--out"])
        .arg(dir.path().join("quiet"))
        .arg(fixture("formats/litellm.jsonl"))
        .assert()
        .success();
    let assert = faultline()
        .args(["analyze", "--fail-on", "sometimes"])
        .assert()
        .code(2);
    assert!(stderr_of(&assert).contains("invalid value 'sometimes'"));
}

#[test]
fn filters_keep_only_the_calls_asked_for() {
    let day = sample_day();
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all");
    faultline()
        .args(["analyze", "-q", "--format", "json", "--out"])
        .arg(&all)
        .arg(day.join("logs"))
        .assert()
        .success();
    let everything = read_json(&all.join("summary.json"));

    let some = dir.path().join("some");
    let assert = faultline()
        .args([
            "analyze",
            "--provider",
            "anthropic",
            "--since",
            "2026-03-10 06:00",
        ])
        .args(["--until", "2026-03-10T18:00:00Z", "--out"])
        .arg(&some)
        .arg(day.join("logs"))
        .assert()
        .success();
    assert!(
        stdout_of(&assert).contains("left out by"),
        "{}",
        stdout_of(&assert)
    );
    let summary = read_json(&some.join("summary.json"));
    let providers = summary["records_by_provider"].as_object().unwrap();
    assert_eq!(providers.keys().collect::<Vec<_>>(), ["anthropic"]);
    let kept = summary["totals"]["records"].as_u64().unwrap();
    let left_out = summary["totals"]["filtered_out"].as_u64().unwrap();
    assert!(kept > 0 && left_out > 0);
    let formats: u64 = summary["records_by_format"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(formats, kept, "formats count the kept calls");
    assert_eq!(
        kept + left_out,
        everything["totals"]["records"].as_u64().unwrap()
    );
    let incidents = read_json(&some.join("incidents.json"));
    for inc in incidents.as_array().unwrap() {
        assert_eq!(inc["provider"], "anthropic", "{inc}");
        assert!(ms(inc["start"].as_str().unwrap()) >= ms("2026-03-10T06:00:00.000Z"));
    }
    let text = parquet_text(&some.join("records.parquet"));
    assert!(!text.contains("openai"), "an openai call was kept");

    // The same filter on report over the unfiltered records gives the same incidents.
    let again = dir.path().join("again");
    faultline()
        .args([
            "report",
            "-q",
            "--provider",
            "anthropic",
            "--since",
            "2026-03-10 06:00",
        ])
        .args(["--until", "2026-03-10T18:00:00Z", "--out"])
        .arg(&again)
        .arg(all.join("records.parquet"))
        .assert()
        .success();
    assert_eq!(
        incident_keys(&incidents),
        incident_keys(&read_json(&again.join("incidents.json")))
    );

    let assert = faultline()
        .args(["analyze", "--provider", "opnai"])
        .assert()
        .code(2);
    assert!(stderr_of(&assert).contains("unknown provider \"opnai\" (known: openai"));
    let assert = faultline()
        .args(["analyze", "--since", "last tuesday"])
        .assert()
        .code(2);
    assert!(stderr_of(&assert).contains("is not a time"));
}

#[test]
fn a_rerun_in_the_same_directory_leaves_only_its_own_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let input = fixture("formats/envelope.jsonl");
    faultline()
        .args(["analyze", "-q", "--out"])
        .arg(out)
        .arg(&input)
        .assert()
        .success();
    assert!(out.join("report.html").is_file());
    // What an interrupted run leaves, and a file of the user's.
    std::fs::write(out.join(".report.md.tmp-12345"), "half").unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let assert = faultline()
        .args(["analyze", "--format", "md", "--out"])
        .arg(out)
        .arg(&input)
        .assert()
        .success();
    let mut names: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "incidents.parquet",
            "notes.txt",
            "operations.parquet",
            "quarantine.jsonl",
            "records.parquet",
            "report.md",
            "rollups.parquet"
        ]
    );
    assert!(
        stdout_of(&assert).contains("wrote records.parquet, operations.parquet, quarantine.jsonl, rollups.parquet, incidents.parquet, report.md to"),
        "{}",
        stdout_of(&assert)
    );
}

#[test]
fn the_window_sets_the_rollup_width() {
    use polars::prelude::*;
    let day = sample_day();
    let out = tempfile::tempdir().unwrap();
    faultline()
        .args([
            "analyze", "-q", "--window", "15m", "--format", "md", "--out",
        ])
        .arg(out.path())
        .arg(day.join("logs/checkout-api.jsonl"))
        .assert()
        .success();
    let frame =
        ParquetReader::new(std::fs::File::open(out.path().join("rollups.parquet")).unwrap())
            .finish()
            .unwrap();
    let starts = frame
        .column("window_start")
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap();
    let starts = starts.i64().unwrap();
    assert!(starts.len() > 10);
    assert!(starts.iter().flatten().all(|t| t % 900_000 == 0));
    let minutes: std::collections::BTreeSet<i64> = starts.iter().flatten().collect();
    assert!(minutes.len() <= 96, "{} windows in a day", minutes.len());

    let assert = faultline()
        .args(["analyze", "--window", "0s"])
        .assert()
        .code(2);
    assert!(stderr_of(&assert).contains("longer than zero"));
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let assert = faultline().args(["completions", shell]).assert().success();
        let script = stdout_of(&assert);
        assert!(
            script.contains("analyze") && script.contains("fail-on"),
            "{shell}"
        );
    }
}

#[test]
fn html_report_shows_log_text_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.jsonl");
    std::fs::write(
        &log,
        concat!(
            r#"{"ts":"2026-03-10T12:00:00Z","service":"web","provider":"openai","model":"gpt-4o","status_code":418,"error":{"message":"<script>alert('x')</script> & <img src=x>"}}"#,
            "\n",
            r#"{"ts":"2026-03-10T12:00:01Z","service":"web","provider":"openai","model":"gpt-4o","status_code":200,"latency_ms":120}"#,
            "\n"
        ),
    )
    .unwrap();
    faultline()
        .args(["analyze", "-q", "--out"])
        .arg(dir.path().join("out"))
        .arg(&log)
        .assert()
        .success();
    let html = std::fs::read_to_string(dir.path().join("out/report.html")).unwrap();
    assert!(
        html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;img src=x&gt;"),
        "the message is not in the report as text"
    );
    assert!(!html.contains("<script") && !html.contains("<img"));
}

#[test]
fn settings_come_from_defaults_then_config_then_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("faultline.toml");
    std::fs::write(
        &config,
        "[settings]\nout = \"from-config\"\nformat = [\"md\"]\nfail_on = \"critical\"\n\n[incidents.outage]\nmin_duration_s = 60\n",
    )
    .unwrap();
    let input = fixture("formats/envelope.jsonl");
    // The file's out (relative to the file) and format.
    faultline()
        .args(["analyze", "-q", "--config"])
        .arg(&config)
        .arg(&input)
        .assert()
        .success();
    assert!(names_in(&dir.path().join("from-config")).contains(&"report.md".to_owned()));
    assert!(!names_in(&dir.path().join("from-config")).contains(&"report.html".to_owned()));
    // The environment wins over the file, a flag over the environment.
    faultline()
        .args(["analyze", "-q", "--config"])
        .arg(&config)
        .env("FAULTLINE_OUT", dir.path().join("from-env"))
        .env("FAULTLINE_FORMAT", "html")
        .arg(&input)
        .assert()
        .success();
    assert!(names_in(&dir.path().join("from-env")).contains(&"report.html".to_owned()));
    faultline()
        .args(["analyze", "-q", "--format", "json", "--config"])
        .arg(&config)
        .env("FAULTLINE_FORMAT", "html")
        .arg("--out")
        .arg(dir.path().join("from-flag"))
        .arg(&input)
        .assert()
        .success();
    let written = names_in(&dir.path().join("from-flag"));
    assert!(
        written.contains(&"summary.json".to_owned())
            && !written.contains(&"report.html".to_owned())
    );

    // A wrong setting names the file, the line and the reason.
    std::fs::write(&config, "[settings]\nout = \"x\"\nwindw = \"5m\"\n").unwrap();
    let assert = faultline()
        .args(["analyze", "--config"])
        .arg(&config)
        .assert()
        .code(2);
    let stderr = stderr_of(&assert);
    assert!(
        stderr.contains("faultline.toml:3: unknown field `windw`"),
        "{stderr}"
    );
    std::fs::write(&config, "[settings]\nwindow = \"5 minutes\"\n").unwrap();
    let assert = faultline()
        .args(["analyze", "--config"])
        .arg(&config)
        .assert()
        .code(2);
    let stderr = stderr_of(&assert);
    assert!(
        stderr.contains("faultline.toml: [settings] window:"),
        "{stderr}"
    );
}

#[test]
fn partition_by_date_writes_one_directory_per_day_and_report_reads_it() {
    use polars::prelude::SerReader;
    use std::fmt::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.jsonl");
    let mut text = String::new();
    // Three days, out of order, as a merged log might be.
    for (i, day) in ["2026-03-11", "2026-03-10", "2026-03-12", "2026-03-10"]
        .iter()
        .enumerate()
    {
        for n in 0..5 {
            writeln!(
                text,
                r#"{{"ts":"{day}T12:00:{n:02}Z","service":"web","provider":"openai","model":"gpt-4o","status_code":200,"latency_ms":{}}}"#,
                100 + i
            )
            .unwrap();
        }
    }
    std::fs::write(&log, text).unwrap();
    let out = dir.path().join("out");
    faultline()
        .args(["analyze", "-q", "--partition-by", "date", "--out"])
        .arg(&out)
        .arg(&log)
        .assert()
        .success();
    let rows = |path: &Path| {
        polars::prelude::ParquetReader::new(std::fs::File::open(path).unwrap())
            .finish()
            .unwrap()
            .height()
    };
    let part = |day: &str| out.join(format!("records/date={day}/part-00000.parquet"));
    assert_eq!(rows(&part("2026-03-10")), 10);
    assert_eq!(rows(&part("2026-03-11")), 5);
    assert_eq!(rows(&part("2026-03-12")), 5);
    assert!(!out.join("records.parquet").exists());
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["totals"]["records"], 20);
    assert!(summary["outputs"]
        .as_array()
        .unwrap()
        .contains(&"records".into()));

    // A directory of partitions is an input of report, which leaves it be.
    let assert = faultline()
        .args(["report", "--out"])
        .arg(&out)
        .arg(out.join("records"))
        .assert()
        .success();
    assert!(stdout_of(&assert).contains("20 records"));
    assert_eq!(rows(&part("2026-03-12")), 5);
    assert!(out.join("quarantine.jsonl").exists());

    // Without partitions, the next run in the same directory replaces them.
    faultline()
        .args(["analyze", "-q", "--out"])
        .arg(&out)
        .arg(&log)
        .assert()
        .success();
    assert!(!out.join("records").exists());
    assert_eq!(rows(&out.join("records.parquet")), 20);
}

/// What a user reads: the help of every command, and the summary of a run
/// over the format fixtures. A change in wording shows as a snapshot diff.
#[test]
fn help_and_summary_read_as_reviewed() {
    for command in [
        &["--help"][..],
        &["analyze", "--help"],
        &["classify", "--help"],
        &["report", "--help"],
    ] {
        let assert = faultline()
            .args(command)
            .env("COLUMNS", "100")
            .assert()
            .success();
        insta::assert_snapshot!(
            format!("help_{}", command[0].trim_start_matches('-')),
            stdout_of(&assert)
        );
    }
    let out = tempfile::tempdir().unwrap();
    let assert = faultline()
        .args(["analyze", "--out"])
        .arg(out.path())
        .arg(fixture("formats"))
        .assert()
        .success();
    let stdout = stdout_of(&assert)
        .replace(&out.path().display().to_string(), "OUT")
        .replace(
            &fixture("formats").display().to_string(),
            "fixtures/formats",
        );
    insta::assert_snapshot!("summary_formats", stdout);
}

#[test]
fn a_run_with_nothing_to_read_leaves_the_last_outputs_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    faultline()
        .args(["analyze", "-q", "--out"])
        .arg(&out)
        .assert()
        .success();
    let before = std::fs::read(out.join("incidents.json")).unwrap();
    let records = std::fs::read(out.join("records.parquet")).unwrap();
    // A typo in the only input path, and a glob that matches nothing.
    let assert = faultline()
        .args(["analyze", "-q", "--out"])
        .arg(&out)
        .arg(dir.path().join("missing.jsonl"))
        .arg(dir.path().join("nope/*.jsonl"))
        .assert()
        .code(2);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("missing.jsonl"), "{stderr}");
    assert!(stderr.contains("was left as it was"), "{stderr}");
    assert_eq!(std::fs::read(out.join("incidents.json")).unwrap(), before);
    assert_eq!(std::fs::read(out.join("records.parquet")).unwrap(), records);
}

#[test]
fn log_text_reaches_readers_inert() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = "m\u{1b}]0;owned\u{7}\u{1b}[2J\n# forged <img src=x onerror=alert(1)> [x](javascript:alert(1)) `tick` \u{202e}evil";
    let long = "g".repeat(1_000_000);
    let mut text = String::new();
    for (model, service) in [(hostile, "svc\r\n## also forged"), (long.as_str(), "long")] {
        // Every call of two minutes answered 503: an outage.
        for i in 0..12 {
            let line = serde_json::json!({
                "ts": format!("2025-03-04T10:{:02}:{:02}Z", i / 6, (i % 6) * 10),
                "service": service,
                "provider": "deepseek",
                "model": model,
                "status_code": 503,
                "error": {"type": "service_unavailable", "message": format!("Service Unavailable {hostile}")},
            });
            text.push_str(&line.to_string());
            text.push('\n');
        }
    }
    let input = dir.path().join("calls.jsonl");
    std::fs::write(&input, text).unwrap();
    let out = dir.path().join("out");
    let assert = faultline()
        .args(["analyze", "--out"])
        .arg(&out)
        .arg(&input)
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let incidents = read_json(&out.join("incidents.json"));
    assert!(
        incidents.as_array().is_some_and(|a| !a.is_empty()),
        "{incidents}"
    );
    for (name, shown) in [("stdout", &stdout), ("report.md", &md)] {
        for bad in ['\u{1b}', '\u{7}', '\u{202e}', '\r'] {
            assert!(!shown.contains(bad), "{name} holds {bad:?}");
        }
        assert!(shown.len() < 100_000, "{name}: {} bytes", shown.len());
    }
    // No line of the markdown starts what the log text wrote.
    for line in md.lines() {
        assert!(
            !line.starts_with("# forged") && !line.starts_with("## also"),
            "{line}"
        );
    }
    // Markup characters from the log are escaped, so none opens a tag or a link.
    let unescaped = |pattern: &str| {
        md.match_indices(pattern)
            .any(|(at, _)| !md[..at].ends_with('\\'))
    };
    assert!(!unescaped("<img"), "raw HTML in report.md");
    assert!(!unescaped("](javascript:"), "a link in report.md");
    // The records keep the value whole.
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["totals"]["records"], 24);
}

/// Every file under `dir` with its bytes, by path relative to `dir`.
fn contents(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap().to_path_buf();
            (rel, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// Names beside `out` other than `out` itself (staging a run left).
fn beside(out: &Path) -> Vec<String> {
    names_in(out.parent().unwrap())
        .into_iter()
        .filter(|n| Some(n.as_str()) != out.file_name().and_then(|f| f.to_str()))
        .collect()
}

/// A run reading stdin from a pipe this test holds: it stays inside its
/// run, holding `out`, until the pipe is written and closed.
fn held_run(out: &Path) -> std::process::Child {
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("faultline"))
        .args(["analyze", "-q", "-", "--out"])
        .arg(out)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The run has taken `out` when its staging directory appears.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while beside(out).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

#[test]
fn an_earlier_output_set_survives_a_failed_and_a_killed_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let logs = fixture("formats");
    faultline()
        .args(["analyze", "-q", "--out"])
        .arg(&out)
        .arg(&logs)
        .assert()
        .success();
    std::fs::write(out.join("NOTES.md"), "kept").unwrap();
    let good = contents(&out);

    // A write failure part-way (a full disk): exit 2, the set untouched.
    let assert = Command::new("bash")
        .arg("-c")
        .arg(r#"trap '' XFSZ; ulimit -f 64; exec "$0" "$@""#)
        .arg(assert_cmd::cargo::cargo_bin("faultline"))
        .args(["analyze", "-q", "--out"])
        .arg(&out)
        .assert()
        .code(2);
    assert!(stderr_of(&assert).contains("File too large"));
    assert!(contents(&out) == good, "a failed run changed the set");

    // kill -9 in the middle of a run: the set untouched.
    let mut run = held_run(&out);
    {
        use std::io::Write;
        let stdin = run.stdin.as_mut().unwrap();
        stdin
            .write_all(&std::fs::read(logs.join("flat_event.jsonl")).unwrap())
            .unwrap();
    }
    run.kill().unwrap();
    run.wait().unwrap();
    assert!(contents(&out) == good, "a killed run changed the set");
    assert!(
        !beside(&out).is_empty(),
        "the killed run's staging is gone already"
    );

    // The next run replaces the set whole, keeps the user's file, and
    // removes the dead run's staging.
    faultline()
        .args(["analyze", "-q", "--out"])
        .arg(&out)
        .arg(logs.join("envelope.jsonl"))
        .assert()
        .success();
    let after = contents(&out);
    assert_ne!(after, good);
    assert_eq!(after[Path::new("NOTES.md")], b"kept");
    assert_eq!(beside(&out), Vec::<String>::new());
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["inputs"].as_array().unwrap().len(), 1, "{summary}");
}

#[test]
fn a_second_run_into_the_same_out_is_refused_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut first = held_run(&out);
    let assert = faultline()
        .args(["analyze", "-q", "--out"])
        .arg(&out)
        .arg(fixture("formats/flat_event.jsonl"))
        .assert()
        .code(2);
    let stderr = stderr_of(&assert);
    assert!(stderr.contains("another faultline run"), "{stderr}");
    assert!(stderr.contains(&format!("pid {}", first.id())), "{stderr}");
    {
        use std::io::Write;
        let mut stdin = first.stdin.take().unwrap();
        stdin
            .write_all(&std::fs::read(fixture("formats/envelope.jsonl")).unwrap())
            .unwrap();
    }
    let status = first.wait().unwrap();
    assert!(status.success(), "the first run failed: {status}");
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["inputs"][0]["name"], "-", "{summary}");
}

#[test]
fn out_inside_the_input_directory_is_never_read() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["flat_event.jsonl", "envelope.jsonl"] {
        std::fs::copy(fixture(&format!("formats/{name}")), dir.path().join(name)).unwrap();
    }
    let out = dir.path().join("out");
    let mut seen = Vec::new();
    for _ in 0..3 {
        faultline()
            .args(["analyze", "-q", "--out"])
            .arg(&out)
            .arg(dir.path())
            .assert()
            .success();
        let summary = read_json(&out.join("summary.json"));
        seen.push((
            summary["inputs"].as_array().unwrap().len(),
            summary["totals"]["bad_lines"].clone(),
            summary["totals"]["records"].clone(),
        ));
    }
    assert_eq!(seen[0].0, 2, "{seen:?}");
    assert!(seen.iter().all(|s| *s == seen[0]), "{seen:?}");
}

#[test]
fn a_new_model_on_every_line_is_bounded_in_the_aggregates_not_the_records() {
    use polars::prelude::*;
    use std::fmt::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    for i in 0..3000 {
        let _ = writeln!(
            log,
            r#"{{"ts":"2025-03-04T12:{:02}:{:02}Z","provider":"openai","model":"gpt-4o-req-{i}","status_code":500,"error":{{"message":"boom {i}"}}}}"#,
            i / 60 % 60,
            i % 60
        );
    }
    let input = dir.path().join("hostile.jsonl");
    std::fs::write(&input, log).unwrap();
    let out = dir.path().join("out");
    let assert = faultline()
        .args(["analyze", "-q", "--out"])
        .arg(&out)
        .arg(&input)
        .assert()
        .success();
    let stderr = stderr_of(&assert);
    assert!(
        stderr.contains("2000 calls of models or services past the first 1000 distinct"),
        "{stderr}"
    );
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["totals"]["calls_counted_as_other"], 2000);
    assert_eq!(summary["totals"]["records"], 3000);

    let distinct = |file: &str| -> (usize, usize) {
        let frame = ParquetReader::new(std::fs::File::open(out.join(file)).unwrap())
            .finish()
            .unwrap();
        let models = frame
            .column("model")
            .unwrap()
            .as_materialized_series()
            .clone();
        let others = models
            .str()
            .unwrap()
            .iter()
            .filter(|m| *m == Some("(other)"))
            .count();
        (models.n_unique().unwrap(), others)
    };
    let (models, _) = distinct("records.parquet");
    assert_eq!(models, 3000, "records keep every model");
    let (models, others) = distinct("rollups.parquet");
    assert_eq!(models, 1001, "rollups: the first 1000 and (other)");
    assert!(others > 0);
}

#[test]
fn a_request_retried_until_it_succeeds_counts_as_one_request_that_did_not_fail() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.jsonl");
    let line = |ts: &str, status: u16, attempt: u16, id: &str| {
        format!(
            r#"{{"ts":"2026-03-10T10:00:{ts}Z","service":"checkout","provider":"openai","model":"gpt-4o-mini","request_id":"{id}","attempt":{attempt},"status_code":{status},"prompt_tokens":1000,"completion_tokens":0}}"#
        )
    };
    let lines = [
        line("00", 500, 0, "op-1"),
        line("02", 500, 1, "op-1"),
        line("05", 200, 2, "op-1"),
        line("10", 429, 0, "op-2"),
    ];
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let out = dir.path().join("out");
    let assert = faultline()
        .args(["analyze", "--out"])
        .arg(&out)
        .arg(&log)
        .assert()
        .success();
    assert!(
        stdout_of(&assert).contains(
            "requests (calls grouped with their retries): 2, failed after retries 1, retried 1"
        ),
        "{}",
        stdout_of(&assert)
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let ops = &summary["operations"];
    assert_eq!(ops["attempts"], 4);
    assert_eq!(ops["failed_attempts"], 3);
    assert_eq!(ops["operations"], 2);
    assert_eq!(ops["failed_operations"], 1);
    assert_eq!(ops["effective_failure_rate"], 0.5);
    assert_eq!(ops["grouped_by"]["request_id"], 2);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("4 calls were 2 requests"), "{report}");

    // A price table that is not one is refused, naming the file, and the
    // last outputs stay.
    let prices = dir.path().join("prices.toml");
    std::fs::write(&prices, "[models.\"gpt-4o\"]\ninput = \"cheap\"\n").unwrap();
    let assert = faultline()
        .args(["analyze", "-q", "--out"])
        .arg(&out)
        .arg("--prices")
        .arg(&prices)
        .arg(&log)
        .assert()
        .code(2);
    assert!(
        stderr_of(&assert).contains("prices.toml"),
        "{}",
        stderr_of(&assert)
    );
    assert!(out.join("operations.parquet").exists());
}

#[test]
fn real_retries_and_fallbacks_are_the_requests_they_were() {
    use polars::prelude::*;
    for config in ["litellm_router", "openai_sdk_retries"] {
        let out = tempfile::tempdir().unwrap();
        faultline()
            .args(["analyze", "-q", "--format", "json", "--out"])
            .arg(out.path())
            .arg(fixture(&format!("operations/{config}.jsonl")))
            .assert()
            .success();
        let ops =
            ParquetReader::new(std::fs::File::open(out.path().join("operations.parquet")).unwrap())
                .finish()
                .unwrap();
        let truth: Vec<Value> =
            std::fs::read_to_string(fixture(&format!("operations/{config}.truth.jsonl")))
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        assert_eq!(
            ops.height(),
            truth.len(),
            "{config}: one operation per request"
        );
        let start = ops.column("start").unwrap().cast(&DataType::Int64).unwrap();
        let start = start.i64().unwrap();
        let attempts = ops.column("attempts").unwrap().u32().unwrap().clone();
        let succeeded = ops.column("succeeded").unwrap().bool().unwrap().clone();
        let fallback = ops.column("fallback").unwrap().bool().unwrap().clone();
        let grouped_by = ops.column("grouped_by").unwrap().str().unwrap().clone();
        for t in &truth {
            let (from, to) = (
                t["t_start_ms"].as_i64().unwrap(),
                t["t_end_ms"].as_i64().unwrap(),
            );
            let rows: Vec<usize> = (0..ops.height())
                .filter(|&i| start.get(i).is_some_and(|s| (from..=to).contains(&s)))
                .collect();
            assert_eq!(rows.len(), 1, "{config} {}: {rows:?}", t["operation"]);
            let i = rows[0];
            assert_eq!(
                (
                    i64::from(attempts.get(i).unwrap()),
                    succeeded.get(i).unwrap(),
                    fallback.get(i).unwrap(),
                    grouped_by.get(i).unwrap(),
                ),
                (
                    t["attempts"].as_i64().unwrap(),
                    t["succeeded"].as_bool().unwrap(),
                    t["fallback"].as_bool().unwrap(),
                    t["grouped_by"].as_str().unwrap(),
                ),
                "{config} {}",
                t["operation"]
            );
        }
    }
}
