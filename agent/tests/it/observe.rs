//! The operator's HTTP endpoint, over real HTTP/1.1 on a loopback socket: `/metrics` shows what the
//! observer was told, `/healthz` follows the model and the frames, a busy address is a clear error.
//! Every wait is bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hallmark_agent::observe::http::Limits;
use hallmark_agent::observe::{serve, Observer, Stage};

const LIMITS: Limits = Limits {
    max_connections: 32,
    idle_timeout: Duration::from_secs(10),
};

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection (`Connection: close`: the server ends the response by closing).
fn get(addr: SocketAddr, path: &str) -> Response {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_string(),
    }
}

#[test]
fn metrics_show_every_family_after_the_calls_that_set_it() {
    let observer = Arc::new(Observer::new("kiosk-7"));
    let server = serve(
        "127.0.0.1:0",
        observer.clone(),
        Duration::from_secs(10),
        LIMITS,
    )
    .unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);

    observer.model_loaded("northwind", 7);
    for _ in 0..3 {
        observer.frame();
    }
    observer.set_dropped(4);
    observer.frame_error();
    observer.stage(Stage::Inference, Duration::from_millis(25));
    observer.stage(Stage::Publish, Duration::from_millis(150));
    observer.verdict("counterfeit");
    observer.verdict("counterfeit");
    observer.verdict("genuine");
    observer.spool(3, 2048);
    observer.set_spool_dropped(9);
    observer.mqtt_connected(true);
    observer.mqtt_reconnect();
    observer.published();
    observer.command("malformed");
    observer.camera_state("streaming");
    observer.link_state("disconnected");

    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let lines: Vec<&str> = r.body.lines().collect();
    for want in [
        "hallmark_info{version=\"0.1.0\",thing=\"kiosk-7\"} 1",
        "hallmark_model_revision{brand=\"northwind\"} 7",
        "hallmark_frames_total 3",
        "hallmark_frames_dropped_total 4",
        "hallmark_frame_errors_total 1",
        "hallmark_stage_seconds_count{stage=\"inference\"} 1",
        "hallmark_stage_seconds_bucket{le=\"0.032\",stage=\"inference\"} 1",
        "hallmark_stage_seconds_bucket{le=\"0.016\",stage=\"inference\"} 0",
        "hallmark_stage_seconds_count{stage=\"publish\"} 1",
        "hallmark_verdicts_total{verdict=\"counterfeit\"} 2",
        "hallmark_verdicts_total{verdict=\"genuine\"} 1",
        "hallmark_spool_depth 3",
        "hallmark_spool_bytes 2048",
        "hallmark_spool_dropped_total 9",
        "hallmark_mqtt_connected 1",
        "hallmark_mqtt_reconnects_total 1",
        "hallmark_verdicts_published_total 1",
        "hallmark_commands_total{outcome=\"malformed\"} 1",
        "hallmark_source_state{state=\"streaming\"} 1",
        "hallmark_source_state{state=\"opening\"} 0",
        "hallmark_link_state{state=\"disconnected\"} 1",
        "hallmark_link_state{state=\"connected\"} 0",
        "# EOF",
    ] {
        assert!(lines.contains(&want), "no line {want:?} in\n{}", r.body);
    }
    let fps = lines
        .iter()
        .find_map(|l| l.strip_prefix("hallmark_fps "))
        .unwrap_or_else(|| panic!("no hallmark_fps in\n{}", r.body));
    assert!(fps.parse::<f64>().unwrap() >= 0.0);

    // The next scrape sees later changes.
    observer.verdict("counterfeit");
    observer.camera_state("stalled");
    let body = get(addr, "/metrics").body;
    assert!(body.contains("hallmark_verdicts_total{verdict=\"counterfeit\"} 3\n"));
    assert!(body.contains("hallmark_source_state{state=\"streaming\"} 0\n"));
    assert!(body.contains("hallmark_source_state{state=\"stalled\"} 1\n"));

    assert_eq!(get(addr, "/").status, 404);
    assert_eq!(get(addr, "/metrics/extra").status, 404);
    server.close();
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "still listening after close"
    );
}

#[test]
fn healthz_follows_the_model_and_the_age_of_the_last_frame() {
    let max_age = Duration::from_millis(200);
    let observer = Arc::new(Observer::new("t"));
    let server = serve("127.0.0.1:0", observer.clone(), max_age, LIMITS).unwrap();
    let addr = server.local_addr();

    let r = get(addr, "/healthz");
    assert_eq!(r.status, 503);
    assert!(r.body.contains("no model loaded"), "{}", r.body);

    observer.model_loaded("northwind", 7);
    let r = get(addr, "/healthz");
    assert_eq!(r.status, 503);
    assert!(r.body.contains("no frame"), "{}", r.body);

    observer.frame();
    let r = get(addr, "/healthz");
    assert_eq!((r.status, r.body.trim()), (200, "ok"));

    // No more frames: unhealthy once max_age has passed, and the reason names the limit.
    let start = Instant::now();
    let r = loop {
        std::thread::sleep(Duration::from_millis(50));
        let r = get(addr, "/healthz");
        if r.status != 200 || start.elapsed() > Duration::from_secs(3) {
            break r;
        }
    };
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        start.elapsed() >= max_age - Duration::from_millis(60),
        "unhealthy too soon"
    );
    assert!(
        r.body.contains("no frame for") && r.body.contains("(limit 0.2 s)"),
        "{}",
        r.body
    );

    // A frame again: healthy again.
    observer.frame();
    assert_eq!(get(addr, "/healthz").status, 200);
    drop(server); // Drop stops it too
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

#[test]
fn a_busy_or_bad_address_is_an_error_that_names_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let observer = Arc::new(Observer::new("t"));
    let err = serve(&addr, observer.clone(), Duration::from_secs(10), LIMITS)
        .err()
        .expect("a busy port must be an error");
    let msg = err.to_string();
    assert!(msg.contains(&addr), "{msg}");

    let err = serve("not an address", observer, Duration::from_secs(10), LIMITS)
        .err()
        .expect("a malformed address must be an error");
    assert!(err.to_string().contains("not an address"), "{err}");
}
