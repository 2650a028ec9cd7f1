//! The link client without a controller: bad messages fail at the caller, a missing port is retried
//! quietly, and dropping the client stops it promptly. (The connected behaviour, reconnection included,
//! is tested end to end against the simulator in `firmware/sim/tests/pty_e2e.rs`.)

use std::time::{Duration, Instant};

use hallmark_host_link::link::*;
use hallmark_host_link::{LinkClient, LinkError, Options};

fn client_on_missing_port() -> LinkClient {
    LinkClient::spawn(
        "/nonexistent/ttyHALLMARK",
        Options {
            reconnect_min: Duration::from_millis(10),
            ..Options::default()
        },
    )
}

#[test]
fn an_out_of_range_message_is_refused_at_send() {
    let c = client_on_missing_port();
    let bad = Message::Status(Status::ModelUpdating {
        brand: text_truncated("Acme"),
        progress: Progress(150),
    });
    match c.send(bad) {
        Err(LinkError::Encode(EncodeError::Invalid(why))) => assert!(why.contains("progress")),
        other => panic!("expected an encode error, got {other:?}"),
    }
    assert!(c.send(Message::Status(Status::Idle)).is_ok());
}

#[test]
fn a_missing_port_gives_no_connection_and_drop_is_prompt() {
    let c = client_on_missing_port();
    assert!(matches!(
        c.recv_timeout(Duration::from_millis(300)),
        Err(LinkError::Timeout)
    ));
    let t = Instant::now();
    drop(c);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "drop took {:?}",
        t.elapsed()
    );
}
