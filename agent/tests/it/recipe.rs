//! The Greengrass component recipe (`deploy/greengrass/recipe.yaml`): both platforms have an archive
//! artifact and a Run step that starts the agent from it, its version is the workspace's, and every
//! configuration key it sets — each leaf of DefaultConfiguration and each `HALLMARK_*` variable in the
//! lifecycle — is one the agent knows, proven by loading it with `Config::load`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hallmark_agent::config::Config;
use serde_norway::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn recipe() -> Value {
    let text = std::fs::read_to_string(repo().join("deploy/greengrass/recipe.yaml")).unwrap();
    serde_norway::from_str(&text).unwrap()
}

fn str_of<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v:?}"))
}

/// A scalar as the text Greengrass puts into a recipe variable.
fn scalar(v: &Value, what: &str) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("{what}: not a scalar: {other:?}"),
    }
}

/// DefaultConfiguration as `section.key` → value.
fn default_configuration(recipe: &Value) -> BTreeMap<String, Value> {
    let config = recipe["ComponentConfiguration"]["DefaultConfiguration"]
        .as_mapping()
        .expect("ComponentConfiguration.DefaultConfiguration");
    let mut leaves = BTreeMap::new();
    for (section, keys) in config {
        let section = str_of(section, "a section name");
        let keys = keys
            .as_mapping()
            .unwrap_or_else(|| panic!("DefaultConfiguration.{section} is not a section of keys"));
        for (key, value) in keys {
            let key = str_of(key, "a key name");
            assert!(
                !matches!(value, Value::Mapping(_)),
                "{section}.{key}: the agent's configuration has two levels"
            );
            leaves.insert(format!("{section}.{key}"), value.clone());
        }
    }
    leaves
}

/// `section.key` → `HALLMARK_SECTION_KEY`.
fn env_name(key: &str) -> String {
    format!(
        "HALLMARK_{}",
        key.replacen('.', "_", 1).to_ascii_uppercase()
    )
}

/// Replaces the recipe variables in `text` with values of the kind Greengrass would put there.
fn resolve(text: &str, defaults: &BTreeMap<String, Value>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .unwrap_or_else(|| panic!("unclosed recipe variable in {text:?}"))
            + start;
        let var = &rest[start + 1..end];
        let value = if let Some(pointer) = var.strip_prefix("configuration:/") {
            let key = pointer.replacen('/', ".", 1);
            let v = defaults
                .get(&key)
                .unwrap_or_else(|| panic!("{text:?} refers to {key}, not in DefaultConfiguration"));
            scalar(v, &key)
        } else {
            match var {
                "iot:thingName" => "store-12-kiosk-1".into(),
                "work:path" => "/greengrass/v2/work/com.hallmark.agent".into(),
                "kernel:rootPath" => "/greengrass/v2".into(),
                "artifacts:path" | "artifacts:decompressedPath" => {
                    "/greengrass/v2/packages/artifacts-unarchived/com.hallmark.agent/0.1.0".into()
                }
                other => panic!("unknown recipe variable {{{other}}} in {text:?}"),
            }
        };
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Every `HALLMARK_*` name in `text`.
fn hallmark_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("HALLMARK_") {
        let tail = &rest[at..];
        let len = tail
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..len].to_string());
        rest = &tail[len..];
    }
    names
}

/// The agent knows `name` (`HALLMARK_<SECTION>_<KEY>`): neither as an environment variable nor as the
/// same key in a file does loading say "unknown key". The file catches a misspelt section too: an
/// environment variable whose section the agent lacks is not configuration (such as HALLMARK_LOG) and
/// is ignored, not refused. Other errors are allowed here (mqtt.cert alone is refused without
/// mqtt.key); the whole recipe's environment is loaded together, and must load, elsewhere.
fn assert_known(name: &str, value: &str, origin: &str) {
    // An empty value is the agent's default (and skipped); any string shows whether the key exists.
    let value = if value.trim().is_empty() { "x" } else { value };
    if let Err(e) = Config::load(None, vec![(name.to_string(), value.to_string())]) {
        assert!(
            !e.to_string().contains("unknown key"),
            "{origin}: {name} is not a key the agent knows: {e}"
        );
    }
    let (section, key) = name
        .strip_prefix("HALLMARK_")
        .and_then(|r| r.split_once('_'))
        .unwrap_or_else(|| panic!("{origin}: {name} is not HALLMARK_<SECTION>_<KEY>"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hallmark.toml");
    std::fs::write(
        &file,
        format!(
            "[{}]\n{} = {}\n",
            section.to_ascii_lowercase(),
            key.to_ascii_lowercase(),
            toml::Value::String(value.to_string())
        ),
    )
    .unwrap();
    if let Err(e) = Config::load(Some(&file), Vec::<(String, String)>::new()) {
        assert!(
            !e.to_string().contains("unknown key"),
            "{origin}: {}.{} is not a key the agent knows: {e}",
            section.to_ascii_lowercase(),
            key.to_ascii_lowercase()
        );
    }
}

/// The agent starts with all of `vars` at once (values of the right type, keys that go together).
fn assert_loads(vars: Vec<(String, String)>, origin: &str) {
    if let Err(e) = Config::load(None, vars.clone()) {
        panic!("{origin}: the agent refuses {vars:?}: {e}");
    }
}

fn manifest_for<'a>(recipe: &'a Value, arch: &str) -> &'a Value {
    recipe["Manifests"]
        .as_sequence()
        .expect("Manifests")
        .iter()
        .find(|m| m["Platform"]["os"] == "linux" && m["Platform"]["architecture"] == arch)
        .unwrap_or_else(|| panic!("no manifest for linux/{arch}"))
}

#[test]
fn the_recipe_has_the_workspace_version_and_both_platforms_run_the_agent_from_their_archive() {
    let recipe = recipe();
    assert_eq!(recipe["RecipeFormatVersion"], "2020-01-25");
    assert_eq!(recipe["ComponentName"], "com.hallmark.agent");
    let cargo: toml::Table =
        toml::from_str(&std::fs::read_to_string(repo().join("Cargo.toml")).unwrap()).unwrap();
    let version = cargo["workspace"]["package"]["version"].as_str().unwrap();
    assert_eq!(recipe["ComponentVersion"], version);

    for (arch, target) in [
        ("amd64", "x86_64-unknown-linux-gnu"),
        ("aarch64", "aarch64-unknown-linux-gnu"),
    ] {
        let m = manifest_for(&recipe, arch);
        let artifacts = m["Artifacts"].as_sequence().expect("Artifacts");
        assert!(!artifacts.is_empty(), "{arch}: no artifact");
        for a in artifacts {
            assert_eq!(a["Algorithm"], "SHA-256", "{arch}: {a:?}");
            assert!(!str_of(&a["Digest"], "Digest").is_empty());
            // Greengrass unpacks ZIP only (or NONE: a plain file).
            assert!(a["Unarchive"] == "ZIP" || a["Unarchive"] == "NONE");
        }
        let zip = format!("hallmark-{target}.zip");
        let artifact = artifacts
            .iter()
            .find(|a| str_of(&a["URI"], "URI").ends_with(&format!("/{zip}")))
            .unwrap_or_else(|| panic!("{arch}: no artifact {zip}"));
        assert!(str_of(&artifact["URI"], "URI").starts_with("s3://"));
        assert_eq!(artifact["Unarchive"], "ZIP");
        let script = str_of(&m["Lifecycle"]["Run"]["Script"], "Lifecycle.Run.Script");
        // A ZIP unpacks into a folder named after the archive: the Run step must start it from there.
        let binary = format!("{{artifacts:decompressedPath}}/hallmark-{target}/bin/hallmark");
        assert!(
            script.contains(&binary) && script.trim_end().ends_with(" run"),
            "{arch}: Run does not start {binary} run: {script}"
        );
        let env = m["Lifecycle"]["Setenv"].as_mapping().expect("Setenv");
        assert_eq!(env[&Value::from("HALLMARK_AGENT_THING")], "{iot:thingName}");
        assert_eq!(env[&Value::from("HALLMARK_AGENT_STATE_DIR")], "{work:path}");
        assert!(
            str_of(&env[&Value::from("ORT_DYLIB_PATH")], "ORT_DYLIB_PATH").starts_with(&format!(
                "{{artifacts:decompressedPath}}/hallmark-{target}/"
            ))
        );
    }

    // The two platforms configure the agent alike (only the archive's name differs).
    let env = |arch: &str, target: &str| -> String {
        serde_norway::to_string(&manifest_for(&recipe, arch)["Lifecycle"]["Setenv"])
            .unwrap()
            .replace(target, "TARGET")
    };
    assert_eq!(
        env("amd64", "x86_64-unknown-linux-gnu"),
        env("aarch64", "aarch64-unknown-linux-gnu")
    );
}

#[test]
fn every_configuration_key_the_recipe_sets_is_one_the_agent_knows() {
    let recipe = recipe();
    let defaults = default_configuration(&recipe);
    assert!(defaults.contains_key("mqtt.host") && defaults.contains_key("agent.mode"));

    // Each leaf of DefaultConfiguration, as the variable the agent reads; and all of them together.
    for (key, value) in &defaults {
        assert_known(
            &env_name(key),
            &scalar(value, key),
            &format!("DefaultConfiguration {key}"),
        );
    }
    assert_loads(
        defaults
            .iter()
            .map(|(k, v)| (env_name(k), scalar(v, k)))
            .collect(),
        "DefaultConfiguration",
    );

    // Each HALLMARK_* variable the lifecycles set or mention, with its recipe variables resolved.
    let mut handed_over = Vec::new();
    for m in recipe["Manifests"].as_sequence().unwrap() {
        let lifecycle = &m["Lifecycle"];
        let arch = scalar(&m["Platform"]["architecture"], "architecture");
        let mut vars = Vec::new();
        for (name, value) in lifecycle["Setenv"].as_mapping().into_iter().flatten() {
            let name = str_of(name, "a Setenv name");
            let raw = scalar(value, name);
            let resolved = resolve(&raw, &defaults); // its recipe variables must exist too
            if name.starts_with("HALLMARK_") {
                assert_known(name, &resolved, &format!("{arch} Setenv"));
                vars.push((name.to_string(), resolved));
                handed_over.push((name.to_string(), raw));
            }
        }
        assert_loads(vars, &format!("{arch} Setenv"));
        let script = scalar(&lifecycle["Run"]["Script"], "Run.Script");
        for name in hallmark_names(&script) {
            assert_known(&name, "x", &format!("{arch} Run.Script"));
        }
    }

    // And each default reaches the agent: a DefaultConfiguration key no variable refers to would be
    // a setting that silently does nothing.
    for key in defaults.keys() {
        let pointer = format!("{{configuration:/{}}}", key.replacen('.', "/", 1));
        assert!(
            handed_over
                .iter()
                .any(|(name, raw)| *name == env_name(key) && *raw == pointer),
            "DefaultConfiguration {key} is never handed to the agent as {}={pointer}",
            env_name(key)
        );
    }
}

#[test]
fn the_checks_themselves_catch_a_misspelt_key_or_section() {
    // Guard the guard: what the test above relies on must really fail.
    let refused = |name: &str, value: &str| {
        std::panic::catch_unwind(|| assert_known(name, value, "probe")).is_err()
    };
    assert!(refused("HALLMARK_MQTT_HOTS", "broker"), "misspelt key");
    assert!(refused("HALLMARK_MQQT_HOST", "broker"), "misspelt section");
    assert!(!refused("HALLMARK_MQTT_CERT", "/c.pem"), "a known key");
    assert!(!refused("HALLMARK_MQTT_HOST", "broker"));
    assert!(!refused("HALLMARK_SOURCE_LOOP", "true"));
}
