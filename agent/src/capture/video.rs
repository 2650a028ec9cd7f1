//! A replay of a video file: a conveyor or kiosk recording (MP4, MKV, AVI, MOV, WebM), paced and looped
//! like a replay of images.
//!
//! Decoding is left to the `ffmpeg` command-line tool (every codec a recorder may use, no codec code
//! linked into the agent): `ffprobe` reads the picture size once, then `ffmpeg` writes raw RGB frames
//! to a pipe that this source reads one frame at a time. Without ffmpeg on `PATH` a video replay is
//! refused at start with one clear message; images need nothing of it.

use std::io::Read;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;
use std::time::Instant;

use hallmark_detect::PixelFormat;

use super::replay::{check_fps, Pacer, ReplayOptions};
use super::{Next, OwnedFrame, Source, SourceError, SourceState};

/// File name endings taken for a video (any case).
pub const EXTENSIONS: [&str; 8] = ["mp4", "m4v", "mkv", "avi", "mov", "webm", "mpg", "ts"];

/// Whether `path` is a file whose name says it is a video.
pub fn is_video(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// How much of ffmpeg's own error output is kept for the message.
const STDERR_KEPT: usize = 2048;

/// The upright picture size of the first video stream, from `ffprobe -of json` output: a stream
/// turned by ±90° (phone recordings) is delivered turned upright by ffmpeg, so its sides swap.
pub fn parse_probe(json: &str) -> Result<(u32, u32), String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("unreadable ffprobe output: {e}"))?;
    let stream = v["streams"]
        .as_array()
        .and_then(|s| s.first())
        .ok_or("no video stream")?;
    let side = |k: &str| {
        stream[k]
            .as_u64()
            .filter(|&n| n > 0 && n <= u32::MAX as u64)
            .map(|n| n as u32)
            .ok_or(format!("the video stream has no {k}"))
    };
    let (w, h) = (side("width")?, side("height")?);
    let rotation = stream["side_data_list"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|d| d["rotation"].as_f64())
        .or_else(|| {
            stream["tags"]["rotate"]
                .as_str()
                .and_then(|r| r.parse().ok())
        })
        .unwrap_or(0.0);
    let quarter_turns = (rotation / 90.0).round() as i64;
    Ok(if quarter_turns.rem_euclid(2) == 1 {
        (h, w)
    } else {
        (w, h)
    })
}

/// Replays a video file's frames.
pub struct VideoReplay {
    opts: ReplayOptions,
    width: u32,
    height: u32,
    decoder: Option<Decoder>,
    /// Frames read from the current pass over the file.
    pass_frames: u64,
    seq: u64,
    pacer: Pacer,
    /// The pass is over and will not start again: `State(Ended)` comes next.
    ending: bool,
    ended: bool,
}

/// One running `ffmpeg`: its frame pipe and the thread that keeps the tail of its error output.
struct Decoder {
    child: Child,
    frames: ChildStdout,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Decoder {
    fn start(path: &Path) -> Result<Decoder, String> {
        let mut child = Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-i"])
            .arg(path)
            .args([
                "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| missing_tool("ffmpeg", &e))?;
        let frames = child.stdout.take().ok_or("ffmpeg has no output pipe")?;
        // Drained on its own thread: a damaged stream can print an error per frame, and a full pipe
        // would stall ffmpeg (and so this source). Only the last STDERR_KEPT bytes are kept; the
        // thread ends when ffmpeg does (its end of the pipe closes).
        let stderr = child.stderr.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let (mut kept, mut buf) = (Vec::new(), [0u8; 1024]);
                while let Ok(n @ 1..) = pipe.read(&mut buf) {
                    kept.extend_from_slice(&buf[..n]);
                    kept.drain(..kept.len().saturating_sub(STDERR_KEPT));
                }
                kept
            })
        });
        Ok(Decoder {
            child,
            frames,
            stderr,
        })
    }

    /// Waits for ffmpeg to exit: `Err` with its last error line when it failed.
    fn finish(mut self) -> Result<(), String> {
        let status = self.child.wait().map_err(|e| e.to_string())?;
        if status.success() {
            return Ok(());
        }
        let kept = self
            .stderr
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        Err(format!("ffmpeg failed ({status}): {}", last_line(&kept)))
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // A replay stopped mid-file: do not leave ffmpeg behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The last non-empty line a tool printed on stderr: its own words for what went wrong.
fn last_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message")
        .to_string()
}

fn missing_tool(tool: &str, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        format!("replaying a video needs {tool} on PATH (Debian: apt install ffmpeg)")
    } else {
        format!("cannot start {tool}: {e}")
    }
}

/// The upright picture size of `path`'s first video stream, asked of `ffprobe`.
fn probe(path: &Path) -> Result<(u32, u32), String> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_streams",
            "-of",
            "json",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| missing_tool("ffprobe", &e))?;
    if !out.status.success() {
        return Err(format!(
            "not a video ffprobe can read: {}",
            last_line(&out.stderr)
        ));
    }
    parse_probe(&String::from_utf8_lossy(&out.stdout))
}

impl VideoReplay {
    /// Probes the file and checks its picture against the image limits; errors here, at start.
    pub fn open(opts: ReplayOptions) -> Result<VideoReplay, SourceError> {
        let open_err = |m: String| SourceError::Open(format!("video {}: {m}", opts.path.display()));
        check_fps(opts.fps)?;
        let (width, height) = probe(&opts.path).map_err(open_err)?;
        let l = opts.limits;
        if width > l.max_width
            || height > l.max_height
            || width as u64 * height as u64 * 3 > l.max_alloc
        {
            return Err(open_err(format!(
                "{width}×{height} frames are over the image limits ({}×{}, {} MiB)",
                l.max_width,
                l.max_height,
                l.max_alloc >> 20
            )));
        }
        Ok(VideoReplay {
            pacer: Pacer::new(opts.fps),
            opts,
            width,
            height,
            decoder: None,
            pass_frames: 0,
            seq: 0,
            ending: false,
            ended: false,
        })
    }

    /// The picture size every frame has.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The end of one pass over the file (`cut`: why its last frame was not whole, if it was not):
    /// loop, or end. A failure of ffmpeg, or a cut frame, is reported once as a skip.
    fn end_of_pass(&mut self, cut: Option<String>) -> Next {
        let failure = self.decoder.take().and_then(|d| d.finish().err());
        let frames = std::mem::take(&mut self.pass_frames);
        // A pass that gave nothing cannot be mended by looping.
        let again = self.opts.looping && frames > 0;
        self.ending = !again;
        let reason = match (failure, cut) {
            (Some(f), Some(c)) => Some(format!("{f}; {c}")),
            (f, c) => f.or(c),
        };
        match reason {
            Some(reason) => Next::Skipped {
                origin: format!("{}#{frames}", self.opts.path.display()),
                reason,
            },
            None => Next::Idle,
        }
    }
}

impl Source for VideoReplay {
    fn name(&self) -> String {
        format!("replay:{}", self.opts.path.display())
    }

    fn next(&mut self) -> Next {
        if self.ended {
            return Next::End;
        }
        if self.ending {
            self.ended = true;
            return Next::State(SourceState::Ended);
        }
        if self.decoder.is_none() {
            match Decoder::start(&self.opts.path) {
                Ok(d) => self.decoder = Some(d),
                Err(reason) => {
                    self.ending = true;
                    return Next::Skipped {
                        origin: self.opts.path.display().to_string(),
                        reason,
                    };
                }
            }
        }
        if !self.pacer.ready() {
            return Next::Idle;
        }
        let mut data = vec![0u8; self.width as usize * self.height as usize * 3];
        let read = match self.decoder.as_mut() {
            Some(d) => read_full(&mut d.frames, &mut data),
            None => Ok(0),
        };
        match read {
            Ok(n) if n == data.len() => {
                let frame = OwnedFrame {
                    seq: self.seq,
                    captured: Instant::now(),
                    origin: format!("{}#{}", self.opts.path.display(), self.pass_frames),
                    width: self.width,
                    height: self.height,
                    stride: self.width as usize * 3,
                    format: PixelFormat::Rgb8,
                    data,
                };
                self.seq += 1;
                self.pass_frames += 1;
                Next::Frame(frame)
            }
            Ok(0) => self.end_of_pass(None),
            // A last frame cut short (a recording still being written, a damaged tail): skipped.
            Ok(n) => self.end_of_pass(Some(format!(
                "last frame cut short: {n} of {} bytes",
                data.len()
            ))),
            Err(e) => self.end_of_pass(Some(format!("reading ffmpeg's frames: {e}"))),
        }
    }
}

/// Reads until `buf` is full or the pipe ends; the number of bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_gives_the_upright_size() {
        let plain = r#"{"streams": [{"codec_type": "video", "width": 1280, "height": 720}]}"#;
        assert_eq!(parse_probe(plain), Ok((1280, 720)));
        // A phone recording: stored landscape, shown portrait.
        let turned = r#"{"streams": [{"width": 1920, "height": 1080,
            "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]}]}"#;
        assert_eq!(parse_probe(turned), Ok((1080, 1920)));
        let upside_down =
            r#"{"streams": [{"width": 640, "height": 480, "tags": {"rotate": "180"}}]}"#;
        assert_eq!(parse_probe(upside_down), Ok((640, 480)));
    }

    #[test]
    fn a_probe_without_a_usable_stream_says_what_is_missing() {
        assert!(parse_probe(r#"{"streams": []}"#)
            .unwrap_err()
            .contains("no video stream"));
        assert!(parse_probe(r#"{"streams": [{"width": 0, "height": 480}]}"#)
            .unwrap_err()
            .contains("width"));
        assert!(parse_probe("not json").unwrap_err().contains("unreadable"));
    }

    #[test]
    fn videos_are_told_by_their_extension() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["belt.MP4", "a.mkv", "b.jpg"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert!(is_video(&dir.path().join("belt.MP4")));
        assert!(is_video(&dir.path().join("a.mkv")));
        assert!(!is_video(&dir.path().join("b.jpg")));
        assert!(!is_video(dir.path()), "a folder is an image replay");
    }

    /// A 3-frame 32×24 test video made by ffmpeg.
    fn tiny_video(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("tiny.mkv");
        let out = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-f", "lavfi", "-i"])
            .args([
                "testsrc=size=32x24:rate=5",
                "-frames:v",
                "3",
                "-c:v",
                "ffv1",
            ])
            .arg(&path)
            .output()
            .expect("ffmpeg (scripts/apt-packages.txt)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        path
    }

    fn opts(path: &Path, looping: bool) -> ReplayOptions {
        ReplayOptions {
            path: path.into(),
            fps: 0.0,
            looping,
            preload: false,
            limits: crate::imageio::ImageLimits::default(),
        }
    }

    /// What `n` calls of `next` give, in words.
    fn play(v: &mut VideoReplay, n: usize) -> Vec<String> {
        (0..n)
            .filter_map(|_| match v.next() {
                Next::Frame(f) => Some(format!(
                    "{} {}x{} {}",
                    f.seq,
                    f.width,
                    f.height,
                    f.origin.rsplit('/').next().unwrap()
                )),
                Next::Skipped { reason, .. } => Some(format!("skipped: {reason}")),
                Next::State(s) => Some(format!("{s:?}")),
                Next::End => Some("end".into()),
                Next::Idle => None,
            })
            .collect()
    }

    #[test]
    fn a_video_plays_its_frames_in_order_then_ends_or_loops() {
        let dir = tempfile::tempdir().unwrap();
        let path = tiny_video(dir.path());
        let mut once = VideoReplay::open(opts(&path, false)).unwrap();
        assert_eq!(once.size(), (32, 24));
        assert_eq!(
            play(&mut once, 6),
            [
                "0 32x24 tiny.mkv#0",
                "1 32x24 tiny.mkv#1",
                "2 32x24 tiny.mkv#2",
                "Ended",
                "end"
            ]
        );
        let mut looping = VideoReplay::open(opts(&path, true)).unwrap();
        assert_eq!(
            play(&mut looping, 5),
            [
                "0 32x24 tiny.mkv#0",
                "1 32x24 tiny.mkv#1",
                "2 32x24 tiny.mkv#2",
                "3 32x24 tiny.mkv#0"
            ]
        );
    }

    #[test]
    fn a_video_ffmpeg_cannot_decode_is_reported_once_and_not_looped() {
        let dir = tempfile::tempdir().unwrap();
        let path = tiny_video(dir.path());
        let mut v = VideoReplay::open(opts(&path, true)).unwrap();
        // Replaced after probing: the file is gone by the time ffmpeg reads it.
        std::fs::write(&path, b"gone").unwrap();
        let seen = play(&mut v, 4);
        assert!(seen[0].starts_with("skipped: ffmpeg failed"), "{seen:?}");
        assert!(
            seen[0].contains("Invalid data"),
            "ffmpeg's own words: {seen:?}"
        );
        assert_eq!(
            seen[1..],
            ["Ended", "end", "end"],
            "a pass with no frame does not loop"
        );
    }

    #[test]
    fn read_full_gathers_short_reads_and_reports_a_short_end() {
        struct Dribble(Vec<u8>);
        impl Read for Dribble {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(3);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0.drain(..n);
                Ok(n)
            }
        }
        let mut buf = [0u8; 8];
        assert_eq!(
            read_full(&mut Dribble((0..10).collect()), &mut buf).unwrap(),
            8
        );
        assert_eq!(buf, [0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(read_full(&mut Dribble(vec![1; 5]), &mut buf).unwrap(), 5);
    }
}
