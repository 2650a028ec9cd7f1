//! GPU execution providers against the real ONNX Runtime CPU library (the PyPI `onnxruntime` wheel),
//! which has neither the CUDA nor the TensorRT provider: asking for one really fails here, so these
//! tests pin what a device without a working GPU stack sees — an error naming the provider, or, when
//! `runtime.fallback` allows it, a loud fall back to the CPU with the CPU's exact results.
//! `hallmark scan` here serves the Aurora bundle: it names no default variant per mode, so
//! `model.precision = "auto"` alone picks the encoding.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{free_port, hallmark_run, http_get, metric, wait_until, Agent};

use crate::support::{demo_public_key, repo};

fn models() -> PathBuf {
    std::env::var_os("HALLMARK_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("models"))
}

fn sample_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(models().join("samples/aurora"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    v.sort();
    v.truncate(3);
    assert!(!v.is_empty(), "no sample images");
    v
}

/// `hallmark scan` of a few samples with a clean environment plus `env`, its state in `state`.
fn scan(state: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hallmark"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("HALLMARK_") || k == "ORT_DYLIB_PATH" || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("HALLMARK_TRUST_PUBLIC_KEYS", demo_public_key())
        .env("HALLMARK_AGENT_STATE_DIR", state)
        .envs(env.iter().copied())
        .arg("scan")
        .arg("--model")
        .arg(models().join("aurora"))
        .args(sample_files());
    cmd.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Each record without its timings and the encoding's name.
fn results(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("timings_ms");
            v.as_object_mut().unwrap().remove("model_variant");
            v
        })
        .collect()
}

/// The bundle variant each record names (`None`: the main model).
fn variants(out: &Output) -> Vec<Option<String>> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["model_variant"].as_str().map(str::to_string)
        })
        .collect()
}

const GPU: [(&str, &str); 2] = [("cuda", "CUDA"), ("tensorrt", "TensorRT")];

#[test]
fn an_unavailable_gpu_provider_is_a_one_line_error_naming_it_and_why() {
    let state = tempfile::tempdir().unwrap();
    for (provider, ort_name) in GPU {
        let out = scan(state.path(), &[("HALLMARK_RUNTIME_PROVIDERS", provider)]);
        assert_eq!(out.status.code(), Some(2), "{provider}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "{provider}: {err}");
        assert!(
            err.contains(&format!("execution provider {provider} failed to register"))
                && err.contains(&format!("{ort_name} execution provider is not enabled"))
                && err.contains("runtime.fallback"),
            "{provider}: {err}"
        );
        assert!(out.stdout.is_empty(), "{provider}: no results on stdout");
    }
}

#[test]
fn an_allowed_fall_back_is_logged_at_error_level_and_gives_the_cpu_results() {
    let state = tempfile::tempdir().unwrap();
    let cpu = scan(state.path(), &[]);
    assert!(cpu.status.success(), "{}", stderr(&cpu));
    let expected = results(&cpu);
    assert_eq!(expected.len(), sample_files().len());
    assert!(
        variants(&cpu).iter().all(Option::is_none),
        "the CPU runs the main model"
    );
    for providers in ["cuda", "tensorrt", "tensorrt,cuda", "tensorrt,cuda,cpu"] {
        let out = scan(
            state.path(),
            &[
                ("HALLMARK_RUNTIME_PROVIDERS", providers),
                ("HALLMARK_RUNTIME_FALLBACK", "true"),
                ("HALLMARK_RUNTIME_FP16", "true"),
                ("HALLMARK_RUNTIME_DEVICE_ID", "0"),
            ],
        );
        let err = stderr(&out);
        assert!(out.status.success(), "{providers}: {err}");
        for provider in providers.split(',').filter(|p| *p != "cpu") {
            assert!(
                err.lines().any(|l| l.contains("ERROR")
                    && l.contains("falling back")
                    && l.contains(&format!("provider={provider}"))),
                "{providers}: the fall back from {provider} is not logged at error level: {err}"
            );
        }
        // A GPU provider was asked for, so `model.precision = "auto"` chose the bundle's uint8
        // variant; falling back runs that on the CPU, with the main model's exact results.
        assert!(
            variants(&out).iter().all(|v| v.as_deref() == Some("u8")),
            "{providers}: {:?}",
            variants(&out)
        );
        assert_eq!(results(&out), expected, "{providers}: CPU results differ");
    }
    // A TensorRT engine folder made for an engine that was never built is not left behind.
    let engines = state.path().join("engines");
    let left: Vec<_> = std::fs::read_dir(&engines)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn an_explicit_cpu_after_a_failing_gpu_provider_does_not_hide_the_failure() {
    let state = tempfile::tempdir().unwrap();
    let out = scan(state.path(), &[("HALLMARK_RUNTIME_PROVIDERS", "cuda,cpu")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("execution provider cuda failed to register"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_bad_provider_option_is_a_config_error_naming_the_key() {
    let state = tempfile::tempdir().unwrap();
    let out = scan(
        state.path(),
        &[
            ("HALLMARK_RUNTIME_PROVIDERS", "cuda"),
            ("HALLMARK_RUNTIME_DEVICE_ID", "first"),
        ],
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("HALLMARK_RUNTIME_DEVICE_ID"),
        "{}",
        stderr(&out)
    );
}

/// `hallmark run` (looping replay) with `providers` and fallback allowed, until a frame is inferred;
/// then SIGTERM. Returns the last `/metrics` page and stderr (the run must have ended with 0).
fn run_with_fallback(state: &std::path::Path, providers: &str) -> (String, String) {
    let http = free_port();
    let agent = Agent::spawn(hallmark_run(
        state,
        &[
            ("HALLMARK_RUNTIME_PROVIDERS", providers.into()),
            ("HALLMARK_RUNTIME_FALLBACK", "true".into()),
            ("HALLMARK_SOURCE_LOOP", "true".into()),
            ("HALLMARK_HTTP_LISTEN", format!("127.0.0.1:{http}")),
        ],
    ));
    let mut page = String::new();
    let seen = wait_until(std::time::Duration::from_secs(60), || {
        page = http_get(http, "/metrics").map(|r| r.1).unwrap_or_default();
        metric(&page, "hallmark_frames_total").unwrap_or(0.0) >= 1.0
    });
    let (code, _, stderr) = agent.terminate();
    assert!(seen, "frames in time: {page}\n{stderr}");
    assert_eq!(code, Some(0), "{stderr}");
    (page, stderr)
}

#[test]
fn run_with_an_allowed_fall_back_shows_the_provider_really_used_in_metrics() {
    let state = tempfile::tempdir().unwrap();
    let (page, stderr) = run_with_fallback(state.path(), "cuda");
    assert_eq!(
        metric(
            &page,
            "hallmark_provider{brand=\"northwind\",provider=\"cpu\"}"
        ),
        Some(1.0),
        "{page}"
    );
    assert!(!page.contains("provider=\"cuda\""), "{page}");
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("ERROR") && l.contains("falling back") && l.contains("cuda")),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("model loaded, source open") && l.contains("provider=cpu")),
        "{stderr}"
    );
    // `models list`, another process, says it too, and that the agent has stopped.
    let list = Command::new(env!("CARGO_BIN_EXE_hallmark"))
        .args(["models", "list"])
        .current_dir(repo())
        .env("HALLMARK_AGENT_STATE_DIR", state.path())
        .output()
        .unwrap();
    let list = format!(
        "{}{}",
        String::from_utf8_lossy(&list.stdout),
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(
        list.lines().any(|l| l.starts_with("serving (hallmark run")
            && l.contains("stopped")
            && l.contains("northwind on cpu")
            && l.contains("(asked: cuda)")),
        "{list}"
    );
}

#[test]
fn run_with_tensorrt_removes_stale_engine_folders_at_start() {
    let state = tempfile::tempdir().unwrap();
    let stale = state.path().join("engines/0123456789ab-stale");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("model.engine"), b"old").unwrap();
    let (page, stderr) = run_with_fallback(state.path(), "tensorrt");
    assert!(!stale.exists(), "stale engine kept: {stderr}");
    assert!(
        stderr.contains("stale TensorRT engines removed"),
        "{stderr}"
    );
    assert_eq!(
        metric(
            &page,
            "hallmark_provider{brand=\"northwind\",provider=\"cpu\"}"
        ),
        Some(1.0),
        "{page}"
    );
}
