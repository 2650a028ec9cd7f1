//! The hand-over between capture and the detector: a one-frame slot. With `drop_when_busy` the
//! freshest frame wins (a camera must never wait for inference; overwritten frames are counted as
//! dropped); without it the source waits for the slot to empty (a recording's every frame counts).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

use crate::capture::OwnedFrame;

#[derive(Default)]
struct Inner {
    frame: Option<OwnedFrame>,
    closed: bool,
}

/// A one-frame slot between two threads.
#[derive(Default)]
pub struct FrameSlot {
    inner: Mutex<Inner>,
    changed: Condvar,
    dropped: AtomicU64,
}

impl FrameSlot {
    /// Puts a frame in; returns false once the slot is closed.
    pub fn put(&self, frame: OwnedFrame, drop_when_busy: bool) -> bool {
        let Ok(mut inner) = self.inner.lock() else {
            return false;
        };
        if !drop_when_busy {
            while inner.frame.is_some() && !inner.closed {
                inner = match self.changed.wait(inner) {
                    Ok(g) => g,
                    Err(_) => return false,
                };
            }
        }
        if inner.closed {
            return false;
        }
        if inner.frame.replace(frame).is_some() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.changed.notify_all();
        true
    }

    /// Takes the frame, waiting for one; `None` once the slot is closed and empty.
    pub fn take(&self) -> Option<OwnedFrame> {
        let mut inner = self.inner.lock().ok()?;
        loop {
            if let Some(f) = inner.frame.take() {
                self.changed.notify_all();
                return Some(f);
            }
            if inner.closed {
                return None;
            }
            inner = self.changed.wait(inner).ok()?;
        }
    }

    /// No more frames will come (what is in the slot is still taken).
    pub fn close(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.closed = true;
        }
        self.changed.notify_all();
    }

    /// Frames overwritten before the detector took them.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hallmark_detect::PixelFormat;
    use std::sync::Arc;
    use std::time::Instant;

    fn frame(seq: u64) -> OwnedFrame {
        OwnedFrame {
            seq,
            captured: Instant::now(),
            origin: String::new(),
            width: 1,
            height: 1,
            stride: 3,
            format: PixelFormat::Rgb8,
            data: vec![0; 3],
        }
    }

    #[test]
    fn the_freshest_frame_wins_and_the_rest_are_counted() {
        let slot = FrameSlot::default();
        for s in 0..5 {
            assert!(slot.put(frame(s), true));
        }
        assert_eq!(slot.take().map(|f| f.seq), Some(4));
        assert_eq!(slot.dropped(), 4);
    }

    #[test]
    fn without_dropping_the_source_waits_and_nothing_is_lost() {
        let slot = Arc::new(FrameSlot::default());
        let producer = {
            let slot = slot.clone();
            std::thread::spawn(move || {
                for s in 0..50 {
                    slot.put(frame(s), false);
                }
                slot.close();
            })
        };
        let mut seqs = Vec::new();
        while let Some(f) = slot.take() {
            seqs.push(f.seq);
        }
        producer.join().unwrap();
        assert_eq!(seqs, (0..50).collect::<Vec<_>>());
        assert_eq!(slot.dropped(), 0);
    }
}
