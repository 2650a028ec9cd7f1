//! `hallmark run` logs JSON lines on stderr when `log.format = "json"` (file or `HALLMARK_LOG_FORMAT`),
//! text otherwise. Runs the real daemon on a one-image replay of the demo samples.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `hallmark run` with a clean environment, its state in `state`, on one sample image.
fn run(state: &Path, extra: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hallmark"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("HALLMARK_") || k == "ORT_DYLIB_PATH" || k == "AWS_IOT_THING_NAME" {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(repo())
        .arg("run")
        .args(args)
        .env("HALLMARK_AGENT_STATE_DIR", state)
        .env("HALLMARK_RUNTIME_INTRA_THREADS", "2")
        // Any free port: another agent (or test) may hold the default 9464.
        .env("HALLMARK_HTTP_LISTEN", "127.0.0.1:0")
        .env(
            "HALLMARK_SOURCE_PATH",
            repo().join("models/samples/northwind/northwind-test-0000.jpg"),
        )
        .envs(extra.iter().copied());
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "hallmark run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The stderr lines that start with `{`, each parsed (a line that does not parse fails the test).
fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

#[test]
fn run_logs_json_lines_when_configured_and_text_otherwise() {
    let state = tempfile::tempdir().unwrap();

    let out = run(state.path(), &[("HALLMARK_LOG_FORMAT", "json")], &[]);
    let lines = json_lines(&out);
    assert!(
        !lines.is_empty(),
        "no JSON log line on stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for l in &lines {
        assert!(
            l["level"].is_string() && l["timestamp"].is_string() && l["target"].is_string(),
            "{l}"
        );
    }
    // The daemon's own `info` is on by default for `run`, with its fields at the top level.
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "INFO" && l["brand"] == "northwind"),
        "no startup line with the brand: {lines:?}"
    );

    // The same from the config file.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hallmark.toml");
    std::fs::write(&config, "[log]\nformat = \"json\"\n").unwrap();
    let out = run(state.path(), &[], &["--config", config.to_str().unwrap()]);
    assert!(!json_lines(&out).is_empty());

    // Default: text, not one JSON line.
    let out = run(state.path(), &[], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(json_lines(&out).is_empty(), "{err}");
    assert!(err.contains("INFO"), "no info line in text logs: {err}");
}
