//! The camera frame source: a V4L2 camera through nokhwa, read on its own thread, watched by the stall
//! [`watchdog`](super::watchdog) and reopened with backoff when its frames stop.
//!
//! How a frame travels: the reader thread blocks in the driver for the next buffer, turns it into an
//! [`OwnedFrame`] (MJPEG decoded by TurboJPEG to packed RGB8; YUYV copied once out of the driver's
//! buffer, as it is, with its stride) and puts it in a queue of two frames where the newest wins: when
//! the daemon is slower than the camera, the oldest waiting frame is dropped and counted
//! ([`CameraStats::dropped`]). [`Source::next`] waits on that queue at most [`POLL`].
//!
//! A read can hang forever inside the driver (nokhwa waits for a buffer with no timeout, and a wedged
//! USB camera never answers), and a thread stuck in an ioctl cannot be interrupted. So a stalled or
//! failed reader is *abandoned*, never joined: its queue is closed (its generation is obsolete), the
//! camera opens again on a new thread with a new queue, and the old thread exits on its own if its read
//! ever returns (it finds its queue closed). While an abandoned reader still holds the device, a reopen
//! may fail with "busy"; the watchdog retries with backoff until the old one lets go.
//!
//! No camera at start-up is one clear error from [`Camera::open`]; a camera lost later is waited for
//! forever, reported as [`SourceState::Reconnecting`].
//!
//! Everything but opening the device (resolving the device string, choosing the mode, the queue, the
//! reader, the watchdog loop) is platform-independent and tested with a scripted fake device; the
//! nokhwa part is built only with the `camera` feature on Linux, and without it [`Camera::open`] says
//! the build has no camera support.
#![cfg_attr(not(all(feature = "camera", target_os = "linux")), allow(dead_code))]

use std::borrow::Cow;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hallmark_detect::PixelFormat;
use tracing::{debug, info, warn};

use super::watchdog::{Action, Event, Policy, Step, Watchdog};
use super::{Next, OwnedFrame, Source, SourceError, SourceState, POLL};

use crate::imageio::jpeg;

/// What to open and how (the `source.*` configuration keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraOptions {
    /// `"0"` (an index), `"/dev/video2"` (a path; links such as `/dev/v4l/by-id/…` are followed), or a
    /// part of the camera's name (`"C920"`, any case).
    pub device: String,
    /// Wanted size; the closest the camera offers is used. Neither: [`DEFAULT_SIZE`].
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Wanted frame rate; the closest offered is used. None (or 0): the highest at that size.
    pub fps: Option<u32>,
    /// `"mjpeg"` or `"yuyv"`; None: whichever fits the size and rate best.
    pub format: Option<String>,
    /// No good frame for this long: the camera is reopened.
    pub stall_after: Duration,
}

impl Default for CameraOptions {
    fn default() -> Self {
        CameraOptions {
            device: "0".into(),
            width: None,
            height: None,
            fps: None,
            format: None,
            stall_after: Duration::from_secs(2),
        }
    }
}

/// The size asked for when neither width nor height is given: enough for barcodes, cheap to decode.
pub const DEFAULT_SIZE: (u32, u32) = (1280, 720);

/// Frames the queue between the reader and [`Source::next`] holds; older ones are dropped.
const QUEUE_FRAMES: usize = 2;

/// Counters of one camera, shared with the reader threads; the daemon reads them for telemetry.
#[derive(Debug, Default)]
pub struct CameraStats {
    frames: AtomicU64,
    dropped: AtomicU64,
    skipped: AtomicU64,
    reconnects: AtomicU64,
}

impl CameraStats {
    /// Frames handed out by [`Source::next`].
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }
    /// Frames the camera delivered that were dropped because newer ones arrived first.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
    /// Garbled frames (reported as [`Next::Skipped`]).
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }
    /// Reopens after the stream stalled or failed.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------------------------------------------
// Device strings and modes (pure)

/// What `source.device` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    /// `/dev/video<N>`.
    Index(u32),
    /// A device node or a link to one.
    Path(PathBuf),
    /// A case-insensitive part of the camera's name.
    Name(String),
}

impl DeviceSpec {
    pub fn parse(device: &str) -> Result<DeviceSpec, String> {
        let d = device.trim();
        if d.is_empty() {
            return Err(
                "source.device is empty: give an index (0), a path (/dev/video0) or a camera name"
                    .into(),
            );
        }
        if d.bytes().all(|b| b.is_ascii_digit()) {
            return d
                .parse()
                .map(DeviceSpec::Index)
                .map_err(|_| format!("source.device {d:?} is not a camera index"));
        }
        if d.starts_with('/') {
            return Ok(DeviceSpec::Path(PathBuf::from(d)));
        }
        Ok(DeviceSpec::Name(d.to_lowercase()))
    }
}

/// `N` of a `/dev/videoN` path.
fn video_index(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    let digits = name.strip_prefix("video")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A V4L2 device node the system lists.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DeviceInfo {
    index: u32,
    name: String,
}

impl DeviceInfo {
    fn describe(&self) -> String {
        format!("/dev/video{} \"{}\"", self.index, self.name)
    }
}

/// The devices `spec` (asked as `asked`) may mean, best first; `path_index` is the path's
/// `/dev/videoN` number after following links. One clear error when there is none.
fn resolve(
    asked: &str,
    spec: &DeviceSpec,
    path_index: Option<u32>,
    devices: &[DeviceInfo],
) -> Result<Vec<DeviceInfo>, String> {
    if let DeviceSpec::Path(p) = spec {
        if path_index.is_none() {
            return Err(format!(
                "no camera {asked:?}: {} is not a V4L2 device node (/dev/videoN, or a link to one)",
                p.display()
            ));
        }
    }
    if devices.is_empty() {
        return Err(format!(
            "no camera {asked:?}: no V4L2 devices found (is the camera plugged in, and is the user in the `video` group?)"
        ));
    }
    let mut sorted = devices.to_vec();
    sorted.sort_by_key(|d| d.index);
    let found: Vec<DeviceInfo> = match spec {
        DeviceSpec::Index(i) => sorted.iter().filter(|d| d.index == *i).cloned().collect(),
        DeviceSpec::Path(_) => sorted
            .iter()
            .filter(|d| Some(d.index) == path_index)
            .cloned()
            .collect(),
        // Design: a UVC camera lists two nodes with one name (video capture, then metadata); all that
        // match are tried in index order, so the capture node wins.
        DeviceSpec::Name(n) => sorted
            .iter()
            .filter(|d| d.name.to_lowercase().contains(n.as_str()))
            .cloned()
            .collect(),
    };
    if found.is_empty() {
        let list: Vec<String> = sorted.iter().map(DeviceInfo::describe).collect();
        return Err(format!(
            "no camera {asked:?}: the V4L2 devices are {}",
            list.join(", ")
        ));
    }
    Ok(found)
}

/// The pixel encodings the camera source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fourcc {
    Mjpeg,
    Yuyv,
}

impl Fourcc {
    /// `source.format`: `mjpeg` (or `mjpg`) or `yuyv` (or `yuy2`), any case.
    pub fn parse(format: &str) -> Result<Fourcc, String> {
        match format.trim().to_ascii_lowercase().as_str() {
            "mjpeg" | "mjpg" => Ok(Fourcc::Mjpeg),
            "yuyv" | "yuy2" => Ok(Fourcc::Yuyv),
            other => Err(format!(
                "source.format {other:?} is not supported: use \"mjpeg\" or \"yuyv\""
            )),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Fourcc::Mjpeg => "MJPEG",
            Fourcc::Yuyv => "YUYV",
        }
    }
}

/// One capture mode a camera offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mode {
    fourcc: Fourcc,
    width: u32,
    height: u32,
    fps: u32,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}×{} at {} fps",
            self.fourcc.label(),
            self.width,
            self.height,
            self.fps
        )
    }
}

/// What the options ask for (zeros already turned into None).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Want {
    fourcc: Option<Fourcc>,
    width: Option<u32>,
    height: Option<u32>,
    fps: Option<u32>,
}

impl Want {
    fn from_options(opts: &CameraOptions) -> Result<Want, String> {
        let nonzero = |v: Option<u32>| v.filter(|&v| v > 0);
        Ok(Want {
            fourcc: opts.format.as_deref().map(Fourcc::parse).transpose()?,
            width: nonzero(opts.width),
            height: nonzero(opts.height),
            fps: nonzero(opts.fps),
        })
    }
}

/// The offered mode closest to what is wanted: the asked format only; then the nearest size (to
/// [`DEFAULT_SIZE`] when none is asked; a lone width or height is matched alone); then the nearest frame
/// rate (the highest when none is asked); then YUYV over MJPEG (lossless, nothing to decode).
///
/// Design: nokhwa's own `RequestedFormatType::Closest` finds no mode unless the exact size is offered,
/// so the choice is made here over the camera's list.
fn choose_mode(modes: &[Mode], want: &Want) -> Option<Mode> {
    let (tw, th) = match (want.width, want.height) {
        (None, None) => (Some(DEFAULT_SIZE.0), Some(DEFAULT_SIZE.1)),
        other => other,
    };
    let gap = |a: u32, b: Option<u32>| b.map_or(0, |b| a.abs_diff(b) as u64);
    modes
        .iter()
        .filter(|m| want.fourcc.is_none_or(|f| f == m.fourcc))
        .min_by_key(|m| {
            let size = gap(m.width, tw) + gap(m.height, th);
            let rate = match want.fps {
                Some(f) => m.fps.abs_diff(f),
                None => u32::MAX - m.fps,
            };
            (
                size,
                rate,
                m.fourcc != Fourcc::Yuyv,
                std::cmp::Reverse(m.width as u64 * m.height as u64),
            )
        })
        .copied()
}

/// The row stride of a YUYV buffer of `len` bytes.
///
/// Design: nokhwa does not pass on V4L2's `bytesperline`. A buffer of exactly `height` rows of a
/// slightly longer, 16-byte-aligned stride is taken as padded rows (some SoC drivers align rows);
/// anything longer is packed rows followed by padding.
fn yuyv_stride(len: usize, width: u32, height: u32) -> Result<usize, String> {
    let row = PixelFormat::Yuyv.row_bytes(width);
    let h = height as usize;
    if row == 0 || h == 0 {
        return Err(format!("YUYV frame of {width}×{height} has no pixels"));
    }
    if len < row * h {
        return Err(format!(
            "short YUYV frame: {len} bytes for {width}×{height} (needs {})",
            row * h
        ));
    }
    if len % h == 0 {
        let stride = len / h;
        if stride > row && stride - row <= 128 && stride % 16 == 0 {
            return Ok(stride);
        }
    }
    Ok(row)
}

// ---------------------------------------------------------------------------------------------------
// The reader side: a device, the queue, the thread

/// An open capture device, owned by its reader thread (nokhwa's camera is not `Send`: it is opened,
/// read and dropped on that thread).
trait Device {
    /// Blocks until the next buffer (maybe forever: see the module docs).
    fn read(&mut self) -> Result<Cow<'_, [u8]>, String>;
}

/// What an open gave: a display name (the frames' origin) and the mode it streams.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Opened {
    name: String,
    mode: Mode,
}

/// Opens the device; called on each new reader thread.
type OpenFn = dyn Fn() -> Result<(Box<dyn Device>, Opened), String> + Send + Sync;

/// What a reader sends.
#[derive(Debug)]
enum Msg {
    Opened(Opened),
    OpenFailed(String),
    Frame(OwnedFrame),
    Garbled(String),
    /// Reading failed; the reader has stopped.
    Failed(String),
}

impl Msg {
    /// Frames and garbled frames come at the camera's rate and are what the queue bounds.
    fn is_frame(&self) -> bool {
        matches!(self, Msg::Frame(_) | Msg::Garbled(_))
    }
}

/// The queue between one reader (one generation) and the camera.
#[derive(Debug)]
struct Link {
    queue: Mutex<Queue>,
    ready: Condvar,
    stats: Arc<CameraStats>,
}

#[derive(Debug, Default)]
struct Queue {
    msgs: VecDeque<Msg>,
    /// The camera abandoned this generation: the reader must stop.
    closed: bool,
    /// The pixel buffer of a dropped frame, for the reader to decode the next one into.
    spare: Option<Vec<u8>>,
}

impl Link {
    fn new(stats: Arc<CameraStats>) -> Arc<Link> {
        Arc::new(Link {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            stats,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A reader that panicked while holding the lock left the queue consistent (pushes are one step).
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a message; false when the generation is obsolete (the reader should stop).
    fn push(&self, msg: Msg) -> bool {
        let mut q = self.lock();
        if q.closed {
            return false;
        }
        // Design: at most QUEUE_FRAMES frames wait; the newest wins. Control messages are never
        // dropped (there is at most one of each per generation).
        if msg.is_frame() && q.msgs.iter().filter(|m| m.is_frame()).count() >= QUEUE_FRAMES {
            if let Some(pos) = q.msgs.iter().position(Msg::is_frame) {
                if let Some(Msg::Frame(old)) = q.msgs.remove(pos) {
                    q.spare = Some(old.data);
                }
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        q.msgs.push_back(msg);
        self.ready.notify_one();
        true
    }

    fn take_spare(&self) -> Vec<u8> {
        self.lock().spare.take().unwrap_or_default()
    }

    fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The next message, waiting until `until` at most.
    fn recv(&self, until: Instant) -> Option<Msg> {
        let mut q = self.lock();
        loop {
            if let Some(m) = q.msgs.pop_front() {
                return Some(m);
            }
            let now = Instant::now();
            if now >= until {
                return None;
            }
            q = match self.ready.wait_timeout(q, until - now) {
                Ok((q, _)) => q,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Abandons the generation: pending messages are dropped, the reader's next push fails.
    fn close(&self) {
        let mut q = self.lock();
        q.closed = true;
        q.msgs.clear();
        q.spare = None;
    }
}

/// The reader thread's body: open, then read until the stream fails or the generation is abandoned.
fn reader(generation: u64, open: &OpenFn, link: &Link) {
    let mut opened = false;
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (mut device, info) = match open() {
            Ok(d) => d,
            Err(e) => {
                link.push(Msg::OpenFailed(e));
                return;
            }
        };
        opened = true;
        if !link.push(Msg::Opened(info.clone())) {
            return;
        }
        loop {
            if link.is_closed() {
                break;
            }
            let raw = match device.read() {
                Ok(raw) => raw,
                Err(e) => {
                    link.push(Msg::Failed(e));
                    break;
                }
            };
            let captured = Instant::now();
            let msg = convert(&raw, info.mode, &info.name, captured, link.take_spare());
            drop(raw);
            if !link.push(msg) {
                break;
            }
        }
        // The device is dropped here, on its own thread: the stream stops and the node is closed.
    }));
    if let Err(panic) = run {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let msg = format!("the camera driver binding panicked: {what}");
        link.push(if opened {
            Msg::Failed(msg)
        } else {
            Msg::OpenFailed(msg)
        });
    }
    debug!(generation, "camera reader exits");
}

/// One raw buffer as a frame message (or a garbled one). `buf` is reused for the pixels.
fn convert(raw: &[u8], mode: Mode, origin: &str, captured: Instant, mut buf: Vec<u8>) -> Msg {
    let frame = |width, height, stride, format, data| {
        Msg::Frame(OwnedFrame {
            seq: 0,
            captured,
            origin: origin.to_string(),
            width,
            height,
            stride,
            format,
            data,
        })
    };
    match mode.fourcc {
        Fourcc::Mjpeg => {
            if raw.is_empty() {
                return Msg::Garbled("empty MJPEG frame".into());
            }
            let (w, h, rgb) = match jpeg::header(raw) {
                Ok(hd) => hd,
                Err(e) => return Msg::Garbled(format!("garbled MJPEG frame: {e}")),
            };
            // A garbled header can claim any size; never allocate for more than twice the stream's.
            if w == 0
                || h == 0
                || !rgb
                || w > mode.width.saturating_mul(2)
                || h > mode.height.saturating_mul(2)
            {
                return Msg::Garbled(format!(
                    "garbled MJPEG frame: it says {w}×{h}{}, the stream is {}×{}",
                    if rgb { "" } else { " CMYK" },
                    mode.width,
                    mode.height
                ));
            }
            match jpeg::decode_rgb_into(raw, w, h, &mut buf) {
                Ok(()) => frame(w, h, w as usize * 3, PixelFormat::Rgb8, buf),
                Err(e) => Msg::Garbled(format!("garbled MJPEG frame: {e}")),
            }
        }
        Fourcc::Yuyv => match yuyv_stride(raw.len(), mode.width, mode.height) {
            Ok(stride) => {
                buf.clear();
                buf.extend_from_slice(&raw[..raw.len().min(stride * mode.height as usize)]);
                frame(mode.width, mode.height, stride, PixelFormat::Yuyv, buf)
            }
            Err(e) => Msg::Garbled(e),
        },
    }
}

// ---------------------------------------------------------------------------------------------------
// The camera

/// The current reader.
struct Reader {
    generation: u64,
    link: Arc<Link>,
}

/// A V4L2 camera as a [`Source`]. See the module docs.
pub struct Camera {
    name: String,
    open: Arc<OpenFn>,
    watchdog: Watchdog,
    reader: Option<Reader>,
    generation: u64,
    /// The next frame's [`OwnedFrame::seq`].
    seq: u64,
    /// The camera's name once open (frames' and skips' origin).
    origin: String,
    /// What [`Source::next`] returns before anything new (a frame behind a state change).
    pending: VecDeque<Next>,
    stats: Arc<CameraStats>,
}

impl Camera {
    /// Opens the camera and waits (bounded) for its stream to start. Fails with one clear message when
    /// the options are wrong, the camera is not there or cannot be opened at start-up.
    pub fn open(opts: &CameraOptions) -> Result<Camera, SourceError> {
        let spec = DeviceSpec::parse(&opts.device).map_err(SourceError::Open)?;
        let want = Want::from_options(opts).map_err(SourceError::Open)?;
        let open = v4l::opener(opts.device.trim().to_string(), spec, want)?;
        Camera::start(
            format!("camera:{}", opts.device.trim()),
            open,
            Policy::new(opts.stall_after),
            seed(),
        )
    }

    /// The counters, for the daemon to read at any time.
    pub fn stats(&self) -> Arc<CameraStats> {
        Arc::clone(&self.stats)
    }

    /// The state the camera is in.
    pub fn state(&self) -> SourceState {
        self.watchdog.state()
    }

    /// Starts the first reader and waits for its open (at most the policy's open timeout).
    fn start(
        name: String,
        open: Arc<OpenFn>,
        policy: Policy,
        seed: u64,
    ) -> Result<Camera, SourceError> {
        let mut cam = Camera {
            name,
            open,
            watchdog: Watchdog::new(policy, seed),
            reader: None,
            generation: 0,
            seq: 0,
            origin: String::new(),
            pending: VecDeque::new(),
            stats: Arc::new(CameraStats::default()),
        };
        let step = cam.watchdog.start(Instant::now());
        cam.act(step);
        cam.pending.push_back(Next::State(SourceState::Opening));
        loop {
            let step = cam.watchdog.on(Event::Tick, Instant::now());
            let until = match step.action {
                Action::Wait(until) => until,
                Action::Fail => {
                    return Err(SourceError::Open(format!(
                        "{} did not open within {} s (a driver that hangs? replug the camera)",
                        cam.name,
                        policy.open_timeout.as_secs_f32()
                    )))
                }
                Action::Open | Action::Close => {
                    return Err(SourceError::Open(format!(
                        "{}: the watchdog did not wait for the first open",
                        cam.name
                    )))
                }
            };
            let Some(reader) = &cam.reader else {
                return Err(SourceError::Open(format!("{}: no reader", cam.name)));
            };
            match reader.link.recv(until) {
                None => continue,
                Some(Msg::Opened(info)) => {
                    cam.opened(info);
                    let step = cam.watchdog.on(Event::Opened, Instant::now());
                    cam.act(step);
                    return Ok(cam);
                }
                Some(Msg::OpenFailed(e) | Msg::Failed(e)) => {
                    let step = cam.watchdog.on(Event::OpenFailed, Instant::now());
                    cam.act(step);
                    return Err(SourceError::Open(e));
                }
                // A reader sends nothing before its open's outcome.
                Some(Msg::Frame(_) | Msg::Garbled(_)) => continue,
            }
        }
    }

    fn opened(&mut self, info: Opened) {
        info!(camera = %self.name, device = %info.name, mode = %info.mode, generation = self.generation, "camera open");
        self.origin = info.name;
    }

    /// Carries out the watchdog's action; the instant to wait until, if any.
    fn act(&mut self, step: Step) -> Option<Instant> {
        self.stats
            .reconnects
            .store(self.watchdog.reconnects(), Ordering::Relaxed);
        match step.action {
            Action::Open => {
                self.spawn();
                None
            }
            // Fail comes only from the first open, which `start` handles; anything later is a loss.
            Action::Close | Action::Fail => {
                self.abandon();
                None
            }
            Action::Wait(until) => Some(until),
        }
    }

    fn spawn(&mut self) {
        self.abandon();
        self.generation += 1;
        let generation = self.generation;
        let link = Link::new(Arc::clone(&self.stats));
        let (open, thread_link) = (Arc::clone(&self.open), Arc::clone(&link));
        let spawned = std::thread::Builder::new()
            .name(format!("camera-{generation}"))
            .spawn(move || reader(generation, &*open, &thread_link));
        if let Err(e) = spawned {
            link.push(Msg::OpenFailed(format!(
                "cannot start a camera thread: {e}"
            )));
        }
        debug!(camera = %self.name, generation, "camera reader started");
        self.reader = Some(Reader { generation, link });
    }

    /// Gives up on the current reader. Design: it is never joined (it may be stuck in the driver); it
    /// stops at its next push, which finds the link closed.
    fn abandon(&mut self) {
        if let Some(r) = self.reader.take() {
            r.link.close();
            debug!(camera = %self.name, generation = r.generation, "camera reader abandoned");
        }
    }

    /// One message from the reader; what `next` returns for it, if anything.
    fn handle(&mut self, msg: Msg) -> Option<Next> {
        let now = Instant::now();
        match msg {
            Msg::Frame(mut frame) => {
                let step = self.watchdog.on(Event::Frame, now);
                self.act(step);
                frame.seq = self.seq;
                self.seq += 1;
                self.stats.frames.fetch_add(1, Ordering::Relaxed);
                match step.report {
                    Some(state) => {
                        self.pending.push_back(Next::Frame(frame));
                        Some(Next::State(state))
                    }
                    None => Some(Next::Frame(frame)),
                }
            }
            Msg::Garbled(reason) => {
                // Design: a garbled frame is not proof of a working camera; it does not feed the
                // watchdog, so a camera that sends only garbage is reopened like a silent one.
                self.stats.skipped.fetch_add(1, Ordering::Relaxed);
                debug!(camera = %self.name, %reason, "camera frame skipped");
                Some(Next::Skipped {
                    origin: self.origin.clone(),
                    reason,
                })
            }
            Msg::Opened(info) => {
                self.opened(info);
                let step = self.watchdog.on(Event::Opened, now);
                self.act(step);
                step.report.map(Next::State)
            }
            Msg::OpenFailed(e) => {
                warn!(camera = %self.name, error = %e, "camera did not open; retrying");
                let step = self.watchdog.on(Event::OpenFailed, now);
                self.act(step);
                step.report.map(Next::State)
            }
            Msg::Failed(e) => {
                warn!(camera = %self.name, error = %e, "camera stream failed; reopening");
                let step = self.watchdog.on(Event::ReadError, now);
                self.act(step);
                step.report.map(Next::State)
            }
        }
    }
}

impl Source for Camera {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn next(&mut self) -> Next {
        if let Some(next) = self.pending.pop_front() {
            return next;
        }
        let end = Instant::now() + POLL;
        loop {
            let now = Instant::now();
            // Design: what already waits in the queue is handled before time is judged, so a daemon
            // that was slow to ask (a long inference) never makes a live camera look stalled.
            if let Some(msg) = self.reader.as_ref().and_then(|r| r.link.recv(now)) {
                match self.handle(msg) {
                    Some(next) => return next,
                    None => continue,
                }
            }
            let before = self.watchdog.state();
            let step = self.watchdog.on(Event::Tick, now);
            let wait = self.act(step);
            if let Some(state) = step.report {
                if before == SourceState::Streaming && state == SourceState::Reconnecting {
                    warn!(camera = %self.name, "camera stalled; reopening");
                }
                return Next::State(state);
            }
            if now >= end {
                return Next::Idle;
            }
            let until = wait.map_or(end, |w| w.min(end));
            let msg = match &self.reader {
                Some(r) => r.link.recv(until),
                None => {
                    std::thread::sleep(until.saturating_duration_since(now));
                    None
                }
            };
            if let Some(next) = msg.and_then(|m| self.handle(m)) {
                return next;
            }
        }
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.abandon();
    }
}

/// A seed for the backoff's jitter that differs between processes.
fn seed() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

// ---------------------------------------------------------------------------------------------------
// nokhwa (V4L2)

#[cfg(all(feature = "camera", target_os = "linux"))]
mod v4l {
    use std::borrow::Cow;
    use std::sync::Arc;

    use nokhwa::utils::{
        ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
    };
    use nokhwa::NokhwaError;
    use tracing::warn;

    use super::{
        choose_mode, resolve, video_index, Device, DeviceInfo, DeviceSpec, Fourcc, Mode, OpenFn,
        Opened, Want,
    };
    use crate::capture::SourceError;

    struct V4lDevice(nokhwa::Camera);

    impl Device for V4lDevice {
        fn read(&mut self) -> Result<Cow<'_, [u8]>, String> {
            // Design: `frame_raw` borrows the driver's mmap buffer; the caller decodes or copies it once.
            self.0.frame_raw().map_err(|e| e.to_string())
        }
    }

    pub(super) fn opener(
        asked: String,
        spec: DeviceSpec,
        want: Want,
    ) -> Result<Arc<OpenFn>, SourceError> {
        Ok(Arc::new(move || open(&asked, &spec, &want)))
    }

    fn to_mode(f: &CameraFormat) -> Option<Mode> {
        let fourcc = match f.format() {
            FrameFormat::MJPEG => Fourcc::Mjpeg,
            FrameFormat::YUYV => Fourcc::Yuyv,
            _ => return None,
        };
        Some(Mode {
            fourcc,
            width: f.width(),
            height: f.height(),
            fps: f.frame_rate(),
        })
    }

    /// A nokhwa error with a hint for the usual causes.
    fn hint(e: &NokhwaError) -> String {
        let text = e.to_string();
        let hint = if text.contains("os error 13") || text.contains("ermission denied") {
            " (is the user in the `video` group?)"
        } else if text.contains("os error 16") || text.contains("busy") {
            " (is another program, or a stalled earlier stream, using it?)"
        } else {
            ""
        };
        format!("{text}{hint}")
    }

    fn open(
        asked: &str,
        spec: &DeviceSpec,
        want: &Want,
    ) -> Result<(Box<dyn Device>, Opened), String> {
        let devices: Vec<DeviceInfo> = nokhwa::query(ApiBackend::Video4Linux)
            .map_err(|e| format!("no camera {asked:?}: cannot list V4L2 devices: {e}"))?
            .into_iter()
            .filter_map(|c| match c.index() {
                CameraIndex::Index(i) => Some(DeviceInfo {
                    index: *i,
                    name: c.human_name(),
                }),
                CameraIndex::String(_) => None,
            })
            .collect();
        let path_index = match spec {
            DeviceSpec::Path(p) => video_index(p)
                .or_else(|| std::fs::canonicalize(p).ok().and_then(|c| video_index(&c))),
            _ => None,
        };
        let candidates = resolve(asked, spec, path_index, &devices)?;
        let mut errors = Vec::new();
        for dev in &candidates {
            match open_one(dev, want) {
                Ok(opened) => return Ok(opened),
                Err(e) => errors.push(e),
            }
        }
        Err(errors.join("; "))
    }

    fn open_one(dev: &DeviceInfo, want: &Want) -> Result<(Box<dyn Device>, Opened), String> {
        let what = dev.describe();
        let fail = |stage: &str, e: NokhwaError| format!("camera {what}: {stage}: {}", hint(&e));
        // Open at whatever mode the driver lists first, then choose from the full list (see choose_mode).
        let all = [
            FrameFormat::MJPEG,
            FrameFormat::YUYV,
            FrameFormat::NV12,
            FrameFormat::GRAY,
            FrameFormat::RAWRGB,
            FrameFormat::RAWBGR,
        ];
        let mut cam = nokhwa::Camera::with_backend(
            CameraIndex::Index(dev.index),
            RequestedFormat::with_formats(RequestedFormatType::None, &all),
            ApiBackend::Video4Linux,
        )
        .map_err(|e| fail("cannot open", e))?;
        let current = to_mode(&cam.camera_format());
        let modes: Vec<Mode> = match cam.compatible_camera_formats() {
            Ok(list) => list.iter().filter_map(to_mode).collect(),
            Err(e) => {
                warn!(camera = %what, error = %e, "cannot list the camera's modes; keeping its current one");
                current.into_iter().collect()
            }
        };
        let Some(mode) = choose_mode(&modes, want) else {
            let mut offered: Vec<String> = modes.iter().take(12).map(Mode::to_string).collect();
            if offered.is_empty() {
                offered.push("no MJPEG or YUYV modes".into());
            }
            return Err(format!(
                "camera {what} has no mode for {}: it offers {}",
                want.fourcc.map_or("MJPEG or YUYV", Fourcc::label),
                offered.join(", ")
            ));
        };
        if want.width.is_some_and(|w| w != mode.width)
            || want.height.is_some_and(|h| h != mode.height)
            || want.fps.is_some_and(|f| f != mode.fps)
        {
            warn!(camera = %what, %mode, "the camera does not offer the asked size or rate; using the closest");
        }
        if Some(mode) != current {
            let ff = match mode.fourcc {
                Fourcc::Mjpeg => FrameFormat::MJPEG,
                Fourcc::Yuyv => FrameFormat::YUYV,
            };
            let exact = RequestedFormatType::Exact(CameraFormat::new_from(
                mode.width,
                mode.height,
                ff,
                mode.fps,
            ));
            cam.set_camera_requset(RequestedFormat::with_formats(exact, &[ff]))
                .map_err(|e| fail(&format!("cannot set {mode}"), e))?;
        }
        cam.open_stream()
            .map_err(|e| fail("cannot start streaming", e))?;
        let name = format!("{} (/dev/video{})", dev.name, dev.index);
        Ok((Box::new(V4lDevice(cam)), Opened { name, mode }))
    }
}

#[cfg(not(all(feature = "camera", target_os = "linux")))]
mod v4l {
    use std::sync::Arc;

    use super::{DeviceSpec, OpenFn, Want};
    use crate::capture::SourceError;

    pub(super) fn opener(
        _asked: String,
        _spec: DeviceSpec,
        _want: Want,
    ) -> Result<Arc<OpenFn>, SourceError> {
        Err(SourceError::Open(
            "this build has no camera support (feature `camera`)".into(),
        ))
    }
}

// ---------------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn dev(index: u32, name: &str) -> DeviceInfo {
        DeviceInfo {
            index,
            name: name.into(),
        }
    }

    #[test]
    fn device_strings_parse() {
        assert_eq!(DeviceSpec::parse("0"), Ok(DeviceSpec::Index(0)));
        assert_eq!(DeviceSpec::parse(" 12 "), Ok(DeviceSpec::Index(12)));
        assert_eq!(
            DeviceSpec::parse("/dev/video2"),
            Ok(DeviceSpec::Path("/dev/video2".into()))
        );
        assert_eq!(
            DeviceSpec::parse("HD Pro Webcam C920"),
            Ok(DeviceSpec::Name("hd pro webcam c920".into()))
        );
        assert!(DeviceSpec::parse("  ").unwrap_err().contains("empty"));
        assert!(DeviceSpec::parse("99999999999").is_err());
        assert_eq!(video_index(Path::new("/dev/video12")), Some(12));
        assert_eq!(video_index(Path::new("/dev/video")), None);
        assert_eq!(video_index(Path::new("/dev/videoX")), None);
        assert_eq!(
            video_index(Path::new("/dev/v4l/by-id/usb-046d_C920-video-index0")),
            None
        );
    }

    #[test]
    fn devices_resolve_by_index_path_and_name() {
        let list = [
            dev(2, "Metadata C920"),
            dev(0, "HD Pro Webcam C920"),
            dev(1, "HD Pro Webcam C920"),
        ];
        let idx = |r: Result<Vec<DeviceInfo>, String>| {
            r.map(|v| v.iter().map(|d| d.index).collect::<Vec<_>>())
        };
        assert_eq!(
            idx(resolve("1", &DeviceSpec::Index(1), None, &list)),
            Ok(vec![1])
        );
        let path = DeviceSpec::Path("/dev/video2".into());
        assert_eq!(
            idx(resolve("/dev/video2", &path, Some(2), &list)),
            Ok(vec![2])
        );
        // By name: every match, in index order (the capture node before the metadata node).
        let name = DeviceSpec::parse("c920").unwrap();
        assert_eq!(idx(resolve("c920", &name, None, &list)), Ok(vec![0, 1, 2]));
        let err = resolve(
            "/dev/video5",
            &DeviceSpec::Path("/dev/video5".into()),
            Some(5),
            &list,
        )
        .unwrap_err();
        assert_eq!(
            err,
            "no camera \"/dev/video5\": the V4L2 devices are /dev/video0 \"HD Pro Webcam C920\", \
             /dev/video1 \"HD Pro Webcam C920\", /dev/video2 \"Metadata C920\""
        );
        let err = resolve("/tmp/x", &DeviceSpec::Path("/tmp/x".into()), None, &list).unwrap_err();
        assert!(err.contains("not a V4L2 device node"), "{err}");
    }

    #[test]
    fn no_devices_is_one_clear_error() {
        let err = resolve(
            "/dev/video0",
            &DeviceSpec::Path("/dev/video0".into()),
            Some(0),
            &[],
        )
        .unwrap_err();
        assert_eq!(
            err,
            "no camera \"/dev/video0\": no V4L2 devices found (is the camera plugged in, and is the user in the `video` group?)"
        );
    }

    #[test]
    fn formats_parse() {
        assert_eq!(Fourcc::parse("MJPEG"), Ok(Fourcc::Mjpeg));
        assert_eq!(Fourcc::parse("mjpg"), Ok(Fourcc::Mjpeg));
        assert_eq!(Fourcc::parse(" yuyv "), Ok(Fourcc::Yuyv));
        assert!(Fourcc::parse("h264").unwrap_err().contains("\"h264\""));
        let opts = CameraOptions {
            fps: Some(0),
            width: Some(0),
            ..CameraOptions::default()
        };
        assert_eq!(Want::from_options(&opts), Ok(Want::default()));
    }

    fn m(fourcc: Fourcc, width: u32, height: u32, fps: u32) -> Mode {
        Mode {
            fourcc,
            width,
            height,
            fps,
        }
    }

    #[test]
    fn the_closest_mode_is_chosen() {
        use Fourcc::{Mjpeg as J, Yuyv as Y};
        let modes = [
            m(Y, 640, 480, 30),
            m(Y, 1280, 720, 10),
            m(Y, 1920, 1080, 5),
            m(J, 640, 480, 30),
            m(J, 1280, 720, 30),
            m(J, 1280, 720, 15),
            m(J, 1920, 1080, 30),
        ];
        let want = |fourcc, width, height, fps| Want {
            fourcc,
            width,
            height,
            fps,
        };
        let cases = [
            // Nothing asked: 1280×720 at the highest rate.
            (want(None, None, None, None), m(J, 1280, 720, 30)),
            // Exact size, lossless YUYV wins a tie.
            (want(None, Some(640), Some(480), None), m(Y, 640, 480, 30)),
            (
                want(Some(J), Some(640), Some(480), None),
                m(J, 640, 480, 30),
            ),
            // Closest size when the exact one is not offered.
            (want(None, Some(1000), Some(700), None), m(J, 1280, 720, 30)),
            (
                want(Some(Y), Some(1920), Some(1080), Some(30)),
                m(Y, 1920, 1080, 5),
            ),
            // The rate: the closest asked, the size first.
            (
                want(None, Some(1280), Some(720), Some(12)),
                m(Y, 1280, 720, 10),
            ),
            (
                want(Some(J), Some(1280), Some(720), Some(14)),
                m(J, 1280, 720, 15),
            ),
            // A lone width.
            (want(None, Some(1900), None, None), m(J, 1920, 1080, 30)),
        ];
        for (w, expected) in cases {
            assert_eq!(choose_mode(&modes, &w), Some(expected), "{w:?}");
        }
        assert_eq!(
            choose_mode(&modes[..3], &want(Some(J), None, None, None)),
            None
        );
        assert_eq!(choose_mode(&[], &Want::default()), None);
    }

    #[test]
    fn yuyv_strides() {
        assert_eq!(yuyv_stride(1280 * 480, 640, 480), Ok(1280));
        // Rows padded to 64 bytes (a 636-pixel-wide SoC stream).
        assert_eq!(yuyv_stride(1280 * 480, 636, 480), Ok(1280));
        // Padding after the image.
        assert_eq!(yuyv_stride(1280 * 480 + 4096, 640, 480), Ok(1280));
        assert!(yuyv_stride(1000, 640, 480).unwrap_err().contains("short"));
        assert!(yuyv_stride(0, 0, 480).is_err());
    }

    #[test]
    fn the_newest_frames_win() {
        let stats = Arc::new(CameraStats::default());
        let link = Link::new(Arc::clone(&stats));
        let frame = |n: u8| {
            Msg::Frame(OwnedFrame {
                seq: 0,
                captured: Instant::now(),
                origin: "t".into(),
                width: 1,
                height: 1,
                stride: 3,
                format: PixelFormat::Rgb8,
                data: vec![n; 3],
            })
        };
        assert!(link.push(Msg::Opened(Opened {
            name: "t".into(),
            mode: m(Fourcc::Mjpeg, 1, 1, 30)
        })));
        for n in 0..5 {
            assert!(link.push(frame(n)));
        }
        assert_eq!(stats.dropped(), 3);
        // The spare buffer is a dropped frame's, for the next decode.
        assert_eq!(link.take_spare(), vec![2; 3]);
        let now = Instant::now();
        assert!(matches!(link.recv(now), Some(Msg::Opened(_))));
        let data: Vec<u8> = std::iter::from_fn(|| match link.recv(now) {
            Some(Msg::Frame(f)) => Some(f.data[0]),
            _ => None,
        })
        .collect();
        assert_eq!(data, [3, 4]);
        link.close();
        assert!(!link.push(frame(9)));
        assert!(link.recv(now).is_none());
    }

    // -- The camera with a scripted device -------------------------------------------------------

    #[derive(Debug, Clone)]
    enum Read {
        Bytes(Vec<u8>),
        Error(&'static str),
    }

    /// What each open does: fail, hang, stream these reads and then hang (like a wedged driver), or
    /// stream one frame every 5 ms for ever (setting the flag when the device is dropped).
    #[derive(Debug, Clone)]
    enum Script {
        Fail(&'static str),
        Stream(Vec<Read>),
        HangInOpen,
        Endless(Vec<u8>, Arc<AtomicBool>),
    }

    struct Fake {
        reads: VecDeque<Read>,
        current: Vec<u8>,
        /// Endless: set when dropped.
        endless: Option<Arc<AtomicBool>>,
    }

    impl Device for Fake {
        fn read(&mut self) -> Result<Cow<'_, [u8]>, String> {
            match self.reads.pop_front() {
                Some(Read::Bytes(b)) => {
                    self.current = b;
                    Ok(Cow::Borrowed(&self.current))
                }
                Some(Read::Error(e)) => Err(e.into()),
                None if self.endless.is_some() => {
                    std::thread::sleep(Duration::from_millis(5));
                    Ok(Cow::Borrowed(&self.current))
                }
                None => loop {
                    std::thread::park();
                },
            }
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            if let Some(flag) = &self.endless {
                flag.store(true, Ordering::SeqCst);
            }
        }
    }

    fn fake(mode: Mode, scripts: Vec<Script>) -> Arc<OpenFn> {
        let scripts = Mutex::new(VecDeque::from(scripts));
        Arc::new(move || {
            let next = scripts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
            let (reads, current, endless) = match next.unwrap_or(Script::Fail("script over")) {
                Script::Fail(e) => return Err(e.to_string()),
                Script::HangInOpen => loop {
                    std::thread::park();
                },
                Script::Stream(reads) => (reads.into(), Vec::new(), None),
                Script::Endless(bytes, flag) => (VecDeque::new(), bytes, Some(flag)),
            };
            let device = Fake {
                reads,
                current,
                endless,
            };
            Ok((
                Box::new(device) as Box<dyn Device>,
                Opened {
                    name: "fake".into(),
                    mode,
                },
            ))
        })
    }

    fn policy() -> Policy {
        Policy {
            stall_after: Duration::from_millis(150),
            first_frame_within: Duration::from_millis(150),
            open_timeout: Duration::from_millis(300),
            backoff_first: Duration::from_millis(10),
            backoff_max: Duration::from_millis(40),
            jitter: 0.0,
        }
    }

    const YUYV_2X2: Mode = Mode {
        fourcc: Fourcc::Yuyv,
        width: 2,
        height: 2,
        fps: 30,
    };

    fn yuyv(n: u8) -> Read {
        Read::Bytes(vec![n; 8])
    }

    /// What `next` says, compactly: `S:<state>`, `F<seq>`, `skip`; Idle is left out. Stops once
    /// `enough` says so, or after 10 s (a bound, not a timing).
    fn drive(cam: &mut Camera, enough: impl Fn(&[String]) -> bool) -> Vec<String> {
        let bound = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while !enough(&seen) && Instant::now() < bound {
            match cam.next() {
                Next::Frame(f) => seen.push(format!("F{}", f.seq)),
                Next::State(s) => seen.push(format!("S:{s:?}")),
                Next::Skipped { .. } => seen.push("skip".into()),
                Next::Idle => {}
                Next::End => seen.push("end".into()),
            }
        }
        seen
    }

    fn states(seen: &[String]) -> Vec<&str> {
        seen.iter()
            .filter(|s| s.starts_with("S:"))
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn a_stalled_camera_is_reopened_and_streams_again() {
        // Three frames, then the driver hangs; the first reopen finds the device busy; the second
        // streams one frame (and hangs).
        let open = fake(
            YUYV_2X2,
            vec![
                Script::Stream(vec![yuyv(1), yuyv(2), yuyv(3)]),
                Script::Fail("busy"),
                Script::Stream(vec![yuyv(4)]),
            ],
        );
        let mut cam = Camera::start("camera:fake".into(), open, policy(), 7).expect("opens");
        let seen = drive(&mut cam, |s| {
            states(s).len() >= 7 && s.last().is_some_and(|l| l.starts_with('F'))
        });
        assert_eq!(
            states(&seen),
            [
                "S:Opening",
                "S:Streaming",
                "S:Reconnecting",
                "S:Opening",
                "S:Reconnecting",
                "S:Opening",
                "S:Streaming"
            ],
            "{seen:?}"
        );
        // Every frame the fake made was handed out or dropped as stale; sequence numbers have no gaps.
        let frames: Vec<&String> = seen.iter().filter(|s| s.starts_with('F')).collect();
        let stats = cam.stats();
        assert_eq!(stats.frames(), frames.len() as u64);
        assert_eq!(stats.frames() + stats.dropped(), 4, "{seen:?}");
        assert_eq!(stats.reconnects(), 2);
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(**f, format!("F{i}"));
        }
    }

    #[test]
    fn a_slow_daemon_does_not_make_a_live_camera_look_stalled_and_a_dropped_camera_stops_its_reader(
    ) {
        let gone = Arc::new(AtomicBool::new(false));
        let open = fake(
            YUYV_2X2,
            vec![Script::Endless(vec![1; 8], Arc::clone(&gone))],
        );
        let mut cam = Camera::start("camera:fake".into(), open, policy(), 7).expect("opens");
        drive(&mut cam, |s| s.iter().any(|x| x.starts_with('F')));
        // The daemon takes longer than stall_after per frame; the queued frames prove the camera alive.
        for _ in 0..3 {
            std::thread::sleep(policy().stall_after * 2);
            let next = cam.next();
            assert!(matches!(next, Next::Frame(_)), "{next:?}");
        }
        let stats = cam.stats();
        assert_eq!(stats.reconnects(), 0);
        assert!(stats.dropped() > 0);
        drop(cam);
        let bound = Instant::now() + Duration::from_secs(10);
        while !gone.load(Ordering::SeqCst) && Instant::now() < bound {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            gone.load(Ordering::SeqCst),
            "the reader still holds the device 10 s after the drop"
        );
    }

    #[test]
    fn a_read_error_reopens_the_camera() {
        let open = fake(
            YUYV_2X2,
            vec![
                Script::Stream(vec![yuyv(1), Read::Error("device gone")]),
                Script::Stream(vec![yuyv(2)]),
            ],
        );
        let mut cam = Camera::start("camera:fake".into(), open, policy(), 7).expect("opens");
        let seen = drive(&mut cam, |s| states(s).len() >= 5);
        assert_eq!(
            states(&seen),
            [
                "S:Opening",
                "S:Streaming",
                "S:Reconnecting",
                "S:Opening",
                "S:Streaming"
            ],
            "{seen:?}"
        );
        assert_eq!(cam.stats().reconnects(), 1);
        assert_eq!(cam.state(), SourceState::Streaming);
    }

    #[test]
    fn no_camera_at_start_is_one_clear_error() {
        let open = fake(
            YUYV_2X2,
            vec![Script::Fail("no camera \"0\": no V4L2 devices found")],
        );
        let err = Camera::start("camera:0".into(), open, policy(), 7)
            .err()
            .expect("fails");
        assert_eq!(err.to_string(), "no camera \"0\": no V4L2 devices found");
    }

    #[test]
    fn an_open_that_hangs_at_start_times_out() {
        let open = fake(YUYV_2X2, vec![Script::HangInOpen]);
        let err = Camera::start("camera:0".into(), open, policy(), 7)
            .err()
            .expect("fails");
        assert!(
            err.to_string()
                .contains("camera:0 did not open within 0.3 s"),
            "{err}"
        );
    }

    #[test]
    fn mjpeg_is_decoded_and_a_garbled_frame_is_skipped() {
        use image::{codecs::jpeg::JpegEncoder, ExtendedColorType, ImageEncoder};
        let (w, h) = (16u32, 8u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
        let mut jpg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpg, 90)
            .write_image(&rgb, w, h, ExtendedColorType::Rgb8)
            .expect("encodes");
        let mode = Mode {
            fourcc: Fourcc::Mjpeg,
            width: w,
            height: h,
            fps: 30,
        };
        let open = fake(
            mode,
            vec![Script::Stream(vec![
                Read::Bytes(b"\xff\xd8garbage".to_vec()),
                Read::Bytes(jpg),
            ])],
        );
        let mut cam = Camera::start("camera:fake".into(), open, policy(), 7).expect("opens");
        let mut got = Vec::new();
        let bound = Instant::now() + Duration::from_secs(10);
        while got.len() < 4 && Instant::now() < bound {
            match cam.next() {
                Next::Idle => {}
                n => got.push(n),
            }
        }
        assert!(
            matches!(got[0], Next::State(SourceState::Opening)),
            "{got:?}"
        );
        assert!(
            matches!(&got[1], Next::Skipped { origin, reason } if origin == "fake" && reason.contains("MJPEG")),
            "{got:?}"
        );
        assert!(
            matches!(got[2], Next::State(SourceState::Streaming)),
            "{got:?}"
        );
        let Next::Frame(f) = &got[3] else {
            panic!("{got:?}")
        };
        assert_eq!(
            (f.width, f.height, f.stride, f.format, f.seq),
            (w, h, w as usize * 3, PixelFormat::Rgb8, 0)
        );
        assert!(f.view().validate().is_ok());
        assert_eq!(cam.stats().skipped(), 1);
    }

    #[test]
    fn yuyv_passes_through_with_its_stride() {
        let open = fake(YUYV_2X2, vec![Script::Stream(vec![yuyv(5)])]);
        let mut cam = Camera::start("camera:fake".into(), open, policy(), 7).expect("opens");
        let bound = Instant::now() + Duration::from_secs(10);
        while Instant::now() < bound {
            if let Next::Frame(f) = cam.next() {
                assert_eq!(
                    (f.width, f.height, f.stride, f.format),
                    (2, 2, 4, PixelFormat::Yuyv)
                );
                assert_eq!(f.data, vec![5; 8]);
                return;
            }
        }
        panic!("no frame within 10 s");
    }

    /// On this machine (no V4L2) and with any real devices: a missing node fails fast and says so.
    #[test]
    fn a_missing_camera_fails_fast_with_the_message() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let opts = CameraOptions {
                device: "/dev/video99".into(),
                ..CameraOptions::default()
            };
            let _ = tx.send(Camera::open(&opts).err().map(|e| e.to_string()));
        });
        let err = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("Camera::open returned within 20 s")
            .expect("fails");
        if cfg!(all(feature = "camera", target_os = "linux")) {
            assert!(err.starts_with("no camera \"/dev/video99\": "), "{err}");
            let any_video = std::fs::read_dir("/dev")
                .map(|d| {
                    d.flatten()
                        .any(|e| e.file_name().to_string_lossy().starts_with("video"))
                })
                .unwrap_or(false);
            if !any_video {
                assert!(err.contains("no V4L2 devices found"), "{err}");
            }
        } else {
            assert_eq!(err, "this build has no camera support (feature `camera`)");
        }
    }
}
