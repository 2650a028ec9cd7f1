//! The systemd deployment (`deploy/systemd/`): the unit says what the agent relies on (notify,
//! watchdog, state directory, restart), and every example configuration in `deploy/` loads as it is
//! — on a machine where none of the paths it names exist, since loading only reads the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hallmark_agent::config::{Config, LogFormat, Mode, SourceKind};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `[Section]` → key → values (a key may repeat), from a systemd unit file.
fn parse_unit(text: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut unit: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value in [{section}]: {line}"));
        assert!(!section.is_empty(), "{line} before any section");
        unit.entry(section.clone())
            .or_default()
            .entry(k.trim().to_string())
            .or_default()
            .push(v.trim().to_string());
    }
    unit
}

fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            toml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "toml") {
            out.push(p);
        }
    }
}

#[test]
fn the_unit_is_a_notify_service_with_a_watchdog_state_and_restarts() {
    let text = std::fs::read_to_string(repo().join("deploy/systemd/hallmark.service")).unwrap();
    let unit = parse_unit(&text);
    let service = &unit["Service"];
    let one = |k: &str| -> &str {
        let v = service
            .get(k)
            .unwrap_or_else(|| panic!("no {k}= in [Service]"));
        assert_eq!(v.len(), 1, "{k}= given {} times", v.len());
        &v[0]
    };
    assert_eq!(one("Type"), "notify");
    assert_eq!(one("NotifyAccess"), "main");
    let watchdog: u64 = one("WatchdogSec").parse().unwrap();
    // The agent pings at half the interval, from a judge tick of ~100 ms: leave it room.
    assert!((10..=120).contains(&watchdog), "WatchdogSec={watchdog}");
    assert_eq!(one("StateDirectory"), "hallmark");
    assert_eq!(one("Restart"), "on-failure");
    assert_eq!(one("RestartSec"), "5");
    assert_eq!(one("KillSignal"), "SIGTERM");
    assert_eq!(one("TimeoutStopSec"), "20");
    assert_eq!(one("User"), "hallmark");
    for group in ["video", "dialout"] {
        assert!(
            one("SupplementaryGroups")
                .split_whitespace()
                .any(|g| g == group),
            "SupplementaryGroups lacks {group}"
        );
    }
    for (k, v) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
    ] {
        assert_eq!(one(k), v, "{k}");
    }
    assert!(
        !service.contains_key("PrivateDevices"),
        "PrivateDevices would hide the camera and the serial port"
    );
    assert!(
        service["Environment"]
            .iter()
            .any(|e| e.starts_with("ORT_DYLIB_PATH=")),
        "no ORT_DYLIB_PATH"
    );
    assert_eq!(unit["Install"]["WantedBy"], vec!["multi-user.target"]);

    // ExecStart runs the daemon with a config whose example is shipped beside the unit.
    let exec: Vec<&str> = one("ExecStart").split_whitespace().collect();
    assert_eq!(&exec[..2], ["/usr/local/bin/hallmark", "run"]);
    let at = exec.iter().position(|a| *a == "--config").unwrap();
    let name = Path::new(exec[at + 1]).file_name().unwrap();
    assert!(
        repo().join("deploy/systemd").join(name).is_file(),
        "no example for {}",
        exec[at + 1]
    );
}

#[test]
fn every_example_config_in_deploy_loads() {
    let mut files = Vec::new();
    toml_files(&repo().join("deploy"), &mut files);
    assert!(!files.is_empty(), "no example TOML in deploy/");
    for f in &files {
        let config = Config::load(Some(f), Vec::<(String, String)>::new())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        // What the example is for: a kiosk with a camera and mutual-TLS MQTT. The certificate paths
        // do not exist here, which proves loading does not open them.
        if f.ends_with("systemd/hallmark.toml") {
            assert_eq!(config.agent.mode, Mode::Kiosk);
            assert_eq!(config.source.kind, SourceKind::Camera);
            assert!(config.mqtt.enabled && config.mqtt.port == 8883);
            let key = config.mqtt.key.as_deref().unwrap();
            assert!(config.mqtt.ca.is_some() && config.mqtt.cert.is_some());
            assert!(
                key.is_absolute() && !key.exists(),
                "the test wants a path that is not there: {}",
                key.display()
            );
            assert_eq!(config.http.listen.as_deref(), Some("127.0.0.1:9464"));
            assert_eq!(config.log.format, LogFormat::Text);
            assert!(config.link.port.is_some());
        }
    }
}

/// A Dockerfile's instructions, continuation lines joined, comments dropped: (INSTRUCTION, arguments).
fn dockerfile(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if current.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(t);
                let (ins, args) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((ins.to_uppercase(), args.trim().to_string()));
                current.clear();
            }
        }
    }
    out
}

#[test]
fn the_jetson_image_builds_on_jetpack_and_runs_the_shipped_configuration() {
    // The image cannot be built here (x86_64, no Docker engine): this checks what can be checked.
    let root = repo();
    let steps =
        dockerfile(&std::fs::read_to_string(root.join("deploy/jetson/Dockerfile")).unwrap());
    let arg = |name: &str| {
        steps
            .iter()
            .find_map(|(i, a)| {
                (i == "ARG")
                    .then(|| a.strip_prefix(&format!("{name}=")))
                    .flatten()
            })
            .unwrap_or_else(|| panic!("no ARG {name}"))
            .to_string()
    };
    // Both stages on NVIDIA's L4T JetPack base (CUDA, cuDNN, TensorRT for the device).
    assert!(arg("L4T_JETPACK").starts_with("nvcr.io/nvidia/l4t-jetpack:r36"));
    let froms: Vec<&str> = steps
        .iter()
        .filter(|(i, _)| i == "FROM")
        .map(|(_, a)| a.as_str())
        .collect();
    assert_eq!(froms.len(), 2, "a build stage and a run stage: {froms:?}");
    assert!(
        froms.iter().all(|f| f.starts_with("${L4T_JETPACK}")),
        "{froms:?}"
    );
    // The toolchain it installs is at least the workspace's rust-version.
    let cargo_toml = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let floor = cargo_toml
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"');
    let version = |v: &str| {
        v.split('.')
            .map(|p| p.parse::<u32>().unwrap())
            .collect::<Vec<_>>()
    };
    assert!(version(&arg("RUST_TOOLCHAIN")) >= version(floor));
    // The ONNX Runtime it installs is the version the agent is built against (its API level).
    let requirements = std::fs::read_to_string(root.join("scripts/requirements.txt")).unwrap();
    assert!(
        requirements.contains(&format!("onnxruntime=={}", arg("ORT_VERSION"))),
        "ORT_VERSION {} is not the project's onnxruntime",
        arg("ORT_VERSION")
    );
    // Every file the build context copies exists.
    for (_, a) in steps.iter().filter(|(i, _)| i == "COPY") {
        if a.starts_with("--from=") {
            continue;
        }
        let parts: Vec<&str> = a.split_whitespace().collect();
        for src in &parts[..parts.len() - 1] {
            assert!(root.join(src).exists(), "COPY {src}: not in the repository");
        }
    }
    // It runs the agent on the configuration it ships, which loads and is what a Jetson needs.
    let has = |ins: &str, needle: &str| steps.iter().any(|(i, a)| i == ins && a.contains(needle));
    assert!(has("ENTRYPOINT", "\"/usr/local/bin/hallmark\""));
    assert!(has(
        "CMD",
        "\"run\", \"--config\", \"/etc/hallmark/hallmark.toml\""
    ));
    assert!(has(
        "COPY",
        "deploy/jetson/hallmark.toml /etc/hallmark/hallmark.toml"
    ));
    assert!(has(
        "COPY",
        "--from=build /src/target/release/hallmark /usr/local/bin/hallmark"
    ));
    assert!(has(
        "ENV",
        "ORT_DYLIB_PATH=/usr/local/lib/libonnxruntime.so"
    ));
    assert!(has("STOPSIGNAL", "SIGTERM") && has("USER", "hallmark"));
    let config = Config::load(
        Some(&root.join("deploy/jetson/hallmark.toml")),
        Vec::<(String, String)>::new(),
    )
    .unwrap();
    use hallmark_agent::runtime::Provider;
    assert_eq!(
        config.runtime.providers,
        vec![Provider::Tensorrt, Provider::Cuda]
    );
    assert!(
        !config.runtime.fallback,
        "no silent CPU fallback on a Jetson"
    );
    assert_eq!(config.agent.mode, Mode::Conveyor);
    assert_eq!(config.agent.state_dir, PathBuf::from("/var/lib/hallmark"));
    assert!(
        has("VOLUME", "/var/lib/hallmark"),
        "engines and the spool outlive the container"
    );
    // The health check asks the port the configuration listens on.
    let listen = config.http.listen.as_deref().unwrap();
    let port = listen.rsplit(':').next().unwrap();
    assert!(has("HEALTHCHECK", &format!("127.0.0.1:{port}/healthz")) && has("EXPOSE", port));
    // The bundles it serves are the ones the image copies.
    for b in &config.bundles {
        assert!(
            has("COPY", &format!(" {}", b.display())),
            "{} is not copied",
            b.display()
        );
    }
}
