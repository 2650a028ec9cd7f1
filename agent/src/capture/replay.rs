//! A replay source: the image files of a folder (sorted, recursively, as `scan` collects them) or one
//! image, decoded as a camera would deliver them, paced at `fps` (0 = as fast as the daemon takes them),
//! optionally looped.
//!
//! A file that cannot be decoded is reported ([`Next::Skipped`]) and the replay goes on; a whole pass
//! without one decodable file (a looping folder of broken files) rests before the next pass, from
//! [`REST_FIRST`] doubling to [`REST_MAX`], instead of spinning. With `preload` every file is decoded
//! once up front, so a benchmark measures the daemon rather than JPEG decoding.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hallmark_detect::PixelFormat;

use super::{Next, OwnedFrame, Source, SourceError, SourceState, POLL};
use crate::imageio::{self, ImageLimits};

/// The slowest pace a replay takes (one frame every 1000 s).
pub const MIN_FPS: f64 = 0.001;
/// The first rest after a whole pass with no decodable file, and the longest.
pub const REST_FIRST: Duration = Duration::from_secs(1);
pub const REST_MAX: Duration = Duration::from_secs(30);

/// How a replay runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayOptions {
    pub path: PathBuf,
    /// Frames per second; 0 means unthrottled.
    pub fps: f64,
    pub looping: bool,
    /// Decode every file once at start.
    pub preload: bool,
    pub limits: ImageLimits,
}

/// Replays image files as frames.
#[derive(Debug)]
pub struct Replay {
    opts: ReplayOptions,
    files: Vec<PathBuf>,
    cache: Vec<Option<OwnedFrame>>,
    next_index: usize,
    seq: u64,
    pacer: Pacer,
    ended: bool,
    /// Files skipped in a row, and the rest after a pass of nothing but skips.
    skipped_in_a_row: usize,
    rest: Duration,
    resting_until: Option<Instant>,
}

impl Replay {
    /// Lists the files; an empty or missing path is an error here, at start.
    pub fn open(opts: ReplayOptions) -> Result<Replay, SourceError> {
        let path = &opts.path;
        if !path.exists() {
            return Err(SourceError::Open(format!(
                "replay path {} does not exist",
                path.display()
            )));
        }
        let files = crate::imageio::inputs::collect_inputs(std::slice::from_ref(path))
            .map_err(|e| SourceError::Open(format!("replay folder: {e}")))?;
        if files.is_empty() {
            return Err(SourceError::Open(format!(
                "replay folder {} holds no JPEG, PNG, WebP, BMP, TIFF or PNM images",
                path.display()
            )));
        }
        check_fps(opts.fps)?;
        let mut cache = vec![None; files.len()];
        if opts.preload {
            for (slot, file) in cache.iter_mut().zip(&files) {
                *slot = decode(file, opts.limits, 0).ok();
            }
        }
        Ok(Replay {
            files,
            cache,
            next_index: 0,
            seq: 0,
            pacer: Pacer::new(opts.fps),
            opts,
            ended: false,
            skipped_in_a_row: 0,
            rest: REST_FIRST,
            resting_until: None,
        })
    }

    /// The files in replay order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

fn decode(path: &Path, limits: ImageLimits, seq: u64) -> Result<OwnedFrame, String> {
    let decoded = imageio::load(path, limits).map_err(|e| e.to_string())?;
    let (width, height) = decoded.rgb.dimensions();
    Ok(OwnedFrame {
        seq,
        captured: Instant::now(),
        origin: path.display().to_string(),
        width,
        height,
        stride: width as usize * 3,
        format: PixelFormat::Rgb8,
        data: decoded.rgb.into_raw(),
    })
}

/// A replay's pace must be 0 (unthrottled) or at least [`MIN_FPS`].
pub(crate) fn check_fps(fps: f64) -> Result<(), SourceError> {
    if fps == 0.0 || (fps >= MIN_FPS && fps.is_finite()) {
        Ok(())
    } else {
        Err(SourceError::Open(format!(
            "replay fps {fps} must be 0 (unthrottled) or at least {MIN_FPS}"
        )))
    }
}

/// Paces a replay (of images or of a video) at `fps` frames a second; 0 is unthrottled.
#[derive(Debug)]
pub(crate) struct Pacer {
    fps: f64,
    due: Option<Instant>,
}

impl Pacer {
    pub(crate) fn new(fps: f64) -> Pacer {
        Pacer { fps, due: None }
    }

    /// Waits for the next frame's slot, at most [`POLL`]: true when the slot has come (the frame
    /// may be handed out), false when the caller should return [`Next::Idle`] and ask again.
    pub(crate) fn ready(&mut self) -> bool {
        if self.fps <= 0.0 {
            return true;
        }
        let now = Instant::now();
        let due = *self.due.get_or_insert(now);
        if due > now {
            let wait = due - now;
            if wait > POLL {
                std::thread::sleep(POLL);
                return false;
            }
            std::thread::sleep(wait);
        }
        // Design: the next slot follows this one, not "now", so pacing does not drift; after a
        // long stall it restarts from now instead of bursting to catch up.
        let period = Duration::from_secs_f64(1.0 / self.fps);
        let next = due + period;
        self.due = Some(if next + period < Instant::now() {
            Instant::now()
        } else {
            next
        });
        true
    }
}

impl Source for Replay {
    fn name(&self) -> String {
        format!("replay:{}", self.opts.path.display())
    }

    fn next(&mut self) -> Next {
        if self.ended {
            return Next::End;
        }
        if let Some(until) = self.resting_until {
            let now = Instant::now();
            if now < until {
                std::thread::sleep((until - now).min(POLL));
                return Next::Idle;
            }
            self.resting_until = None;
        }
        if self.next_index >= self.files.len() {
            if !self.opts.looping {
                self.ended = true;
                return Next::State(SourceState::Ended);
            }
            self.next_index = 0;
        }
        if !self.pacer.ready() {
            return Next::Idle;
        }
        let index = self.next_index;
        self.next_index += 1;
        let seq = self.seq;
        let frame = match &self.cache[index] {
            Some(cached) => Ok(OwnedFrame {
                seq,
                captured: Instant::now(),
                ..cached.clone()
            }),
            None => decode(&self.files[index], self.opts.limits, seq),
        };
        match frame {
            Ok(f) => {
                self.seq += 1;
                self.skipped_in_a_row = 0;
                self.rest = REST_FIRST;
                Next::Frame(f)
            }
            Err(reason) => {
                self.skipped_in_a_row += 1;
                if self.opts.looping && self.skipped_in_a_row >= self.files.len() {
                    tracing::warn!(folder = %self.opts.path.display(), files = self.files.len(), rest_s = self.rest.as_secs(), "replay: no frame could be decoded in a whole pass; resting before the next");
                    self.skipped_in_a_row = 0;
                    self.resting_until = Some(Instant::now() + self.rest);
                    self.rest = (self.rest * 2).min(REST_MAX);
                }
                Next::Skipped {
                    origin: self.files[index].display().to_string(),
                    reason,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path, w: u32, h: u32) {
        image::RgbImage::from_pixel(w, h, image::Rgb([9, 8, 7]))
            .save(path)
            .unwrap();
    }

    fn opts(path: &Path) -> ReplayOptions {
        ReplayOptions {
            path: path.into(),
            fps: 0.0,
            looping: false,
            preload: false,
            limits: ImageLimits::default(),
        }
    }

    #[test]
    fn a_folder_replays_in_order_skips_a_corrupt_file_and_ends() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("a.png"), 4, 3);
        std::fs::write(dir.path().join("b.jpg"), b"\xFF\xD8\xFFnot really").unwrap();
        write_png(&dir.path().join("c.png"), 5, 2);
        let mut r = Replay::open(opts(dir.path())).unwrap();
        let mut seen = Vec::new();
        for _ in 0..10 {
            match r.next() {
                Next::Frame(f) => seen.push(format!("frame {} {}x{}", f.seq, f.width, f.height)),
                Next::Skipped { origin, .. } => seen.push(format!(
                    "skipped {}",
                    Path::new(&origin).file_name().unwrap().to_string_lossy()
                )),
                Next::State(s) => seen.push(format!("{s:?}")),
                Next::End => {
                    seen.push("end".into());
                    break;
                }
                Next::Idle => {}
            }
        }
        assert_eq!(
            seen,
            [
                "frame 0 4x3",
                "skipped b.jpg",
                "frame 1 5x2",
                "Ended",
                "end"
            ]
        );
    }

    #[test]
    fn a_looping_replay_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("a.png"), 2, 2);
        let mut r = Replay::open(ReplayOptions {
            looping: true,
            preload: true,
            ..opts(dir.path())
        })
        .unwrap();
        let seqs: Vec<u64> = (0..3)
            .map(|_| match r.next() {
                Next::Frame(f) => f.seq,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(seqs, [0, 1, 2]);
    }

    #[test]
    fn an_empty_or_missing_path_is_an_open_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Replay::open(opts(dir.path())).is_err());
        assert!(Replay::open(opts(&dir.path().join("nope")))
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
    }

    #[test]
    fn a_looping_folder_of_broken_files_rests_between_passes_instead_of_spinning() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..3 {
            std::fs::write(dir.path().join(format!("{i}.jpg")), b"\xFF\xD8\xFFbroken").unwrap();
        }
        let mut r = Replay::open(ReplayOptions {
            looping: true,
            ..opts(dir.path())
        })
        .unwrap();
        let started = Instant::now();
        let mut skipped = 0;
        while started.elapsed() < Duration::from_millis(1500) {
            if let Next::Skipped { .. } = r.next() {
                skipped += 1;
            }
        }
        assert_eq!(skipped, 6, "a pass, a rest of 1 s, a pass, a rest of 2 s");
    }
}
