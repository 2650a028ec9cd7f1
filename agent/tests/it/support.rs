//! What the delivery tests share: a real `mosquitto` on a free loopback port (stopped and started
//! at will, its state kept between), a recording MQTT subscriber, `hallmark` processes, and plain
//! HTTP GETs. Every wait is bounded; children are killed when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, Incoming, MqttOptions, QoS};
use serde_json::Value;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `cond` every 20 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mosquitto_bin() -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/local/sbin"])
    {
        let p = Path::new(dir).join("mosquitto");
        if p.exists() {
            return p;
        }
    }
    panic!("mosquitto not found: install it (scripts/apt-packages.txt) or run scripts/setup.sh");
}

/// A real mosquitto on 127.0.0.1, persistent (retained messages and sessions survive a restart).
pub struct Broker {
    pub port: u16,
    dir: tempfile::TempDir,
    conf: PathBuf,
    child: Option<Child>,
}

impl Broker {
    /// A plain listener on a free port.
    pub fn start() -> Broker {
        Broker::with_config(|port, _| format!("listener {port} 127.0.0.1\n"))
    }

    /// A plain listener on `port` (a broker that comes where an agent already tries to connect).
    pub fn start_on(port: u16) -> Broker {
        Broker::on(port, |port, _| format!("listener {port} 127.0.0.1\n"))
    }

    /// `listeners(port, dir)` writes the listener lines (the persistence settings are added).
    pub fn with_config(listeners: impl FnOnce(u16, &Path) -> String) -> Broker {
        Broker::on(free_port(), listeners)
    }

    fn on(port: u16, listeners: impl FnOnce(u16, &Path) -> String) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        // Design: started as root, mosquitto drops to its own user; it must still be able to write
        // its database and log here, or "persistent" would silently mean "forgotten on restart".
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let conf = dir.path().join("mosquitto.conf");
        let text = format!(
            "{}allow_anonymous true\npersistence true\npersistence_location {}/\nmax_queued_messages 1000000\nmax_inflight_messages 0\nlog_dest file {}/mosquitto.log\nlog_type error\nlog_type warning\nlog_type notice\n",
            listeners(port, dir.path()),
            dir.path().display(),
            dir.path().display(),
        );
        std::fs::write(&conf, text).unwrap();
        let mut b = Broker {
            port,
            dir,
            conf,
            child: None,
        };
        b.up();
        b
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts it (again) and waits until it accepts connections.
    pub fn up(&mut self) {
        assert!(self.child.is_none());
        let child = Command::new(mosquitto_bin())
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let port = self.port;
        assert!(
            wait_until(Duration::from_secs(10), || TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "mosquitto did not come up on {port}: {}",
            std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
        );
    }

    /// Stops it the way a service manager does (SIGTERM: it saves its state) and waits.
    pub fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, "TERM");
            if !wait_exit(&mut child, Duration::from_secs(10)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn signal(child: &Child, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status();
}

pub fn wait_exit(child: &mut Child, limit: Duration) -> bool {
    wait_until(limit, || matches!(child.try_wait(), Ok(Some(_))))
}

/// One received message.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

impl Message {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload)
            .unwrap_or_else(|e| panic!("not JSON on {}: {e}", self.topic))
    }
}

/// A subscriber with a persistent session that records everything and reconnects by itself.
pub struct Subscriber {
    got: Arc<Mutex<Vec<Message>>>,
    subscribed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    client: Client,
}

impl Subscriber {
    pub fn start(port: u16, id: &str, topics: &[&str]) -> Subscriber {
        let mut opts = MqttOptions::new(id, "127.0.0.1", port);
        opts.set_clean_session(false)
            .set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(4 << 20, 4 << 20);
        let (client, mut connection) = Client::new(opts, 64);
        let got = Arc::new(Mutex::new(Vec::new()));
        let subscribed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        let thread = {
            let (got, subscribed, stop, client) = (
                got.clone(),
                subscribed.clone(),
                stop.clone(),
                client.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match connection.recv_timeout(Duration::from_millis(100)) {
                        Ok(Ok(Event::Incoming(Incoming::ConnAck(_)))) => {
                            for t in &topics {
                                let _ = client.try_subscribe(t.clone(), QoS::AtLeastOnce);
                            }
                        }
                        Ok(Ok(Event::Incoming(Incoming::SubAck(_)))) => {
                            subscribed.store(true, Ordering::Relaxed);
                        }
                        Ok(Ok(Event::Incoming(Incoming::Publish(p)))) => {
                            got.lock().unwrap().push(Message {
                                topic: p.topic.clone(),
                                payload: p.payload.to_vec(),
                                retain: p.retain,
                            });
                        }
                        Ok(Ok(_)) => {}
                        Ok(Err(_)) => std::thread::sleep(Duration::from_millis(100)),
                        Err(_) => {}
                    }
                }
            })
        };
        let s = Subscriber {
            got,
            subscribed,
            stop,
            thread: Some(thread),
            client,
        };
        assert!(
            wait_until(Duration::from_secs(10), || s
                .subscribed
                .load(Ordering::Relaxed)),
            "the test subscriber could not subscribe on {port}"
        );
        s
    }

    pub fn messages(&self) -> Vec<Message> {
        self.got.lock().unwrap().clone()
    }

    pub fn on(&self, topic_end: &str) -> Vec<Message> {
        self.messages()
            .into_iter()
            .filter(|m| m.topic.ends_with(topic_end))
            .collect()
    }

    /// Publishes (QoS 1) from the test.
    pub fn publish(&self, topic: &str, payload: Vec<u8>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .unwrap();
    }

    /// Publishes (QoS 1) a retained message from the test.
    pub fn publish_retained(&self, topic: &str, payload: Vec<u8>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, true, payload)
            .unwrap();
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.client.try_disconnect();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The demo publisher's public key, which signs the shipped bundles.
pub fn demo_public_key() -> PathBuf {
    repo().join("models/keys/demo-publisher.pub.pem")
}

/// `bin` in the repository, with the caller's HALLMARK_ settings cleared and the demo key trusted
/// explicitly, as an operator's configuration names its keys: a release build trusts no key by
/// default for a named bundle, so without it these tests would pass in debug builds only.
pub fn clean_command(bin: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(bin);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("HALLMARK_") || k == "ORT_DYLIB_PATH" || k == "AWS_IOT_THING_NAME" {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(repo())
        .env("HALLMARK_TRUST_PUBLIC_KEYS", demo_public_key());
    cmd
}

/// `hallmark run` with a clean environment, its state in `state`, on the sample replay.
pub fn hallmark_run(state: &Path, env: &[(&str, String)]) -> Command {
    // HALLMARK_TEST_BIN: a copy of the binary, so a long soak is not hit by a rebuild.
    let bin = std::env::var_os("HALLMARK_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_hallmark")));
    let mut cmd = clean_command(bin);
    cmd.arg("run")
        .env("HALLMARK_AGENT_STATE_DIR", state)
        .env("HALLMARK_RUNTIME_INTRA_THREADS", "1")
        .env("HALLMARK_LOG", "hallmark_agent=info")
        .env("HALLMARK_EVIDENCE_ENABLED", "false")
        // The daemon's tests are about delivery, updates, faults and serving, at the main model's frame
        // rate; Northwind's bundle names quarter-turns (four passes) the default of both modes, which
        // `run.rs`'s conveyor tests and `brands.rs` exercise. A test's own `env` may name another.
        .env("HALLMARK_MODEL_VARIANT", "main");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// A running agent whose stdout (verdict events) and stderr are collected as they come.
pub struct Agent {
    pub child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Agent {
    pub fn spawn(mut cmd: Command) -> Agent {
        let mut child = cmd.spawn().expect("start hallmark");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for (pipe, sink) in [
            (Box::new(out) as Box<dyn Read + Send>, stdout.clone()),
            (Box::new(err) as Box<dyn Read + Send>, stderr.clone()),
        ] {
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    sink.lock().unwrap().push(line);
                }
            }));
        }
        Agent {
            child,
            stdout,
            stderr,
            readers,
        }
    }

    /// Every stdout line so far.
    pub fn lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// The verdict ids printed so far (a line cut by a kill is not an event).
    pub fn ids(&self) -> Vec<String> {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["id"].as_str().map(String::from))
            .collect()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// SIGTERM, then waits for the exit; returns the exit code.
    pub fn terminate(mut self) -> (Option<i32>, Vec<String>, String) {
        signal(&self.child, "TERM");
        assert!(
            wait_exit(&mut self.child, Duration::from_secs(30)),
            "hallmark did not stop on SIGTERM: {}",
            self.stderr()
        );
        self.finish()
    }

    /// SIGKILL (no goodbye).
    pub fn kill(mut self) -> (Option<i32>, Vec<String>, String) {
        let _ = self.child.kill();
        self.finish()
    }

    /// Waits for a run that ends by itself.
    pub fn wait(mut self, limit: Duration) -> (Option<i32>, Vec<String>, String) {
        assert!(
            wait_exit(&mut self.child, limit),
            "hallmark did not finish within {limit:?}: {}",
            self.stderr()
        );
        self.finish()
    }

    /// Waits for a run that ends by itself; returns its exit code, every stdout line and stderr.
    pub fn wait_lines(mut self, limit: Duration) -> (Option<i32>, Vec<String>, String) {
        let (code, _, stderr) = {
            assert!(
                wait_exit(&mut self.child, limit),
                "hallmark did not finish within {limit:?}: {}",
                self.stderr()
            );
            self.finish()
        };
        (code, self.lines(), stderr)
    }

    fn finish(&mut self) -> (Option<i32>, Vec<String>, String) {
        let status = self.child.wait().unwrap();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        (status.code(), self.ids(), self.stderr())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `path` on 127.0.0.1:`port`: (status, body). None when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// The value of one metric line (`name{labels} value`) in a Prometheus text page.
pub fn metric(page: &str, name_and_labels: &str) -> Option<f64> {
    page.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A TCP proxy in front of a broker whose connections can be cut at will: an uplink that drops,
/// with the broker itself staying up.
pub struct Proxy {
    pub port: u16,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (conns, stop) = (conns.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok((client, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    let _ = client.set_nonblocking(false);
                    let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                        continue;
                    };
                    let mut list = conns.lock().unwrap();
                    for (mut from, mut to) in [
                        (client.try_clone().unwrap(), server.try_clone().unwrap()),
                        (server.try_clone().unwrap(), client.try_clone().unwrap()),
                    ] {
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut from, &mut to);
                            let _ = to.shutdown(std::net::Shutdown::Both);
                        });
                    }
                    list.push(client);
                    list.push(server);
                }
            });
        }
        Proxy { port, conns, stop }
    }

    /// Drops every connection through the proxy (both ends see a reset).
    pub fn cut(&self) {
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.cut();
    }
}

/// Serves `router` on 127.0.0.1 (a free port) from a thread and runtime of its own, until the test
/// process ends; returns its address.
pub fn serve(router: axum::Router) -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, router).await.unwrap();
        });
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the test HTTP server did not start")
}

/// A real HTTP server (axum + tower-http's ServeDir, which honours `Range`) serving a folder on
/// loopback, for model downloads.
pub struct FileServer {
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl FileServer {
    pub fn start() -> FileServer {
        let dir = tempfile::tempdir().unwrap();
        let addr = serve(
            axum::Router::new().fallback_service(tower_http::services::ServeDir::new(dir.path())),
        );
        FileServer {
            url: format!("http://{addr}"),
            dir,
        }
    }
}

/// A shipped bundle's manifest (`models/<brand>/manifest.json`) as JSON.
pub fn manifest(brand: &str) -> Value {
    serde_json::from_slice(
        &std::fs::read(repo().join(format!("models/{brand}/manifest.json"))).unwrap(),
    )
    .unwrap()
}

/// The labelled packs of a sample image: (role, product, box in pixels).
pub fn labels(brand: &str, image: &Path) -> Vec<(String, String, Vec<f64>)> {
    let m = manifest(brand);
    let (w, h) = image::image_dimensions(image).unwrap();
    let text = std::fs::read_to_string(image.with_extension("txt")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Vec<f64> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
            let class = &m["classes"][v[0] as usize];
            let (cx, cy, bw, bh) = (
                v[1] * w as f64,
                v[2] * h as f64,
                v[3] * w as f64,
                v[4] * h as f64,
            );
            (
                class["role"].as_str().unwrap().to_string(),
                class["product"].as_str().unwrap().to_string(),
                vec![cx - bw / 2.0, cy - bh / 2.0, cx + bw / 2.0, cy + bh / 2.0],
            )
        })
        .collect()
}

pub fn iou(a: &[f64], b: &[f64]) -> f64 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// A JSON box `[x1, y1, x2, y2]` as numbers.
pub fn boxed(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}
