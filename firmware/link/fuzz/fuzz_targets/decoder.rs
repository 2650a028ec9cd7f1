//! Fuzz target for the link decoder: arbitrary bytes, fed as a stream (in chunks the input chooses)
//! and as a single frame body, must never panic; and anything the decoder accepts must survive a
//! re-encode → decode round trip unchanged (no message the encoder could not have produced).
#![no_main]

use hallmark_link::{decode_frame, encode, Decoder, Message, MAX_WIRE_LEN};
use libfuzzer_sys::fuzz_target;

fn round_trips(m: &Message) {
    let mut out = [0u8; MAX_WIRE_LEN];
    let n = encode(m, &mut out).expect("an accepted message must re-encode");
    let got: Vec<_> = Decoder::new().feed(&out[..n]).collect();
    assert_eq!(got, vec![Ok(m.clone())]);
}

fuzz_target!(|data: &[u8]| {
    // Stream: the first byte picks a chunk size, so split points vary too.
    let chunk = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let mut d = Decoder::new();
    for part in data.chunks(chunk) {
        for r in d.feed(part) {
            if let Ok(m) = r {
                round_trips(&m);
            }
        }
    }
    // Single frame body.
    let mut body = data.to_vec();
    if let Ok(m) = decode_frame(&mut body) {
        round_trips(&m);
    }
});
