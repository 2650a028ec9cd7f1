//! The YOLOv5 detector: a decoded frame in, boxes in the frame's own pixels out, exactly as the
//! reference implementation computes them.
//!
//! The pure stages (letterbox, pre-processing, output decoding, NMS, the model check) live in the
//! `hallmark-detect` crate; this file wraps them around one ONNX Runtime session. All buffers live in
//! the `Detector` and are reused: after the first frame of a given size, detecting allocates only what
//! ONNX Runtime allocates for its output.

use std::time::{Duration, Instant};

pub use hallmark_detect::{
    decode, postprocess, Candidate, Detection, Expected, Frame, InputLayout, Layout, LayoutError,
    Letterbox, ModelMismatch, PixelFormat, Port, PreprocessError, Preprocessor, Settings,
    TensorType, MAX_DETECTIONS,
};
use ort::session::Session;
use ort::value::{Tensor, TensorElementType, ValueType};
use thiserror::Error;

use crate::bundle::{Bundle, InputDtype, Manifest};
use crate::runtime::{ModelInfo, Provider, Runtime, RuntimeError};

/// How often a TensorRT engine build still running is reported.
pub const BUILD_REPORT_EVERY: Duration = Duration::from_secs(15);

/// How long each stage of one `detect` took.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimes {
    pub preprocess: Duration,
    pub inference: Duration,
    pub postprocess: Duration,
}

#[derive(Debug, Error)]
pub enum DetectorError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("model bundle {bundle}: {source}")]
    Mismatch {
        bundle: String,
        source: ModelMismatch,
    },
    #[error(transparent)]
    Preprocess(#[from] PreprocessError),
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("model output: {0}")]
    Output(#[from] LayoutError),
}

impl DetectorError {
    /// Whether the next frame may succeed where this one failed (a bad frame, a failed run), as
    /// opposed to a model that can never serve.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            DetectorError::Preprocess(_) | DetectorError::Inference(_)
        )
    }
}

/// A loaded model with its reused buffers.
pub struct Detector {
    session: Session,
    provider: Provider,
    /// The input `detect` uses; `None` only while it is lent to `infer`.
    own: Option<Input>,
    output_name: String,
    layout: Layout,
    shape: InputShape,
    settings: Settings,
    pre: Prep,
    candidates: Vec<Candidate>,
    order: Vec<usize>,
    keep: Vec<usize>,
    detections: Vec<Detection>,
}

impl Detector {
    /// Builds a session for the bundle's model, checks the graph against its manifest and warms it up
    /// (see [`Detector::load`]).
    pub fn new(runtime: &Runtime, bundle: &Bundle) -> Result<Detector, DetectorError> {
        Self::load(runtime, bundle, || {})
    }

    /// Builds a session for the bundle's model and checks the graph against its manifest. The session
    /// is built from the bytes the bundle verified, not from the file. Then runs it once, so a TensorRT
    /// engine is built here and not on the first frame; `building_engine` is called just before that
    /// when the session really runs on TensorRT (the updater reports it).
    pub fn load(
        runtime: &Runtime,
        bundle: &Bundle,
        building_engine: impl FnOnce(),
    ) -> Result<Detector, DetectorError> {
        let manifest = bundle.manifest();
        let loaded = runtime.load_from_memory(
            &bundle.model_path(),
            bundle.model_bytes(),
            Some(ModelInfo {
                sha256: &manifest.model.sha256,
                input: (manifest.model.input.width, manifest.model.input.height),
            }),
        )?;
        let mut detector = Self::from_session(
            loaded.session,
            manifest,
            &bundle.dir().display().to_string(),
        )?;
        detector.provider = loaded.provider;
        if detector.provider == Provider::Tensorrt {
            building_engine();
        }
        detector.warm_up(&manifest.brand, runtime.engine_build_report())?;
        // Debug: `run` says the provider in its start line, and a fall back is an error of its own.
        tracing::debug!(
            bundle = %bundle.dir().display(),
            provider = %loaded.provider,
            requested = ?runtime.providers().iter().map(ToString::to_string).collect::<Vec<_>>(),
            "detector loaded"
        );
        Ok(detector)
    }

    /// Runs the model once on the (blank) input, so that what a provider defers to its first run
    /// happens now, before the model serves: TensorRT builds or loads its engine (minutes on a first
    /// build on a Jetson), CUDA graphs are captured, ONNX Runtime allocates its arenas. With TensorRT it
    /// says so in the log every [`BUILD_REPORT_EVERY`], and to `report` (the daemon asks systemd for
    /// more start time).
    fn warm_up(
        &mut self,
        brand: &str,
        report: Option<crate::runtime::EngineBuildReport>,
    ) -> Result<(), DetectorError> {
        let started = Instant::now();
        if self.provider != Provider::Tensorrt {
            self.run_bare()?;
            tracing::debug!(%brand, ms = started.elapsed().as_millis() as u64, "model warmed up");
            return Ok(());
        }
        tracing::info!(%brand, "building the TensorRT engine (or loading it from the engine cache)");
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let result = std::thread::scope(|s| {
            s.spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    finished.recv_timeout(BUILD_REPORT_EVERY)
                {
                    let elapsed = started.elapsed();
                    tracing::info!(%brand, elapsed_s = elapsed.as_secs(), "still building the TensorRT engine");
                    if let Some(report) = report {
                        report(brand, elapsed);
                    }
                }
            });
            let result = self.run_bare();
            drop(done);
            result
        });
        tracing::info!(%brand, ms = started.elapsed().as_millis() as u64, ok = result.is_ok(), "TensorRT engine ready");
        result
    }

    /// The execution provider this detector's session really got (after any allowed fall back).
    pub fn provider(&self) -> Provider {
        self.provider
    }

    fn from_session(
        session: Session,
        manifest: &Manifest,
        label: &str,
    ) -> Result<Detector, DetectorError> {
        let ports = |outlets: &[ort::value::Outlet]| -> Vec<Port> {
            outlets
                .iter()
                .map(|o| {
                    let (shape, ty) = match o.dtype() {
                        ValueType::Tensor { ty, shape, .. } => (
                            shape.to_vec(),
                            match ty {
                                TensorElementType::Float32 => TensorType::Float32,
                                TensorElementType::Uint8 => TensorType::Uint8,
                                _ => TensorType::Other,
                            },
                        ),
                        _ => (Vec::new(), TensorType::Other),
                    };
                    Port {
                        name: o.name().to_string(),
                        shape,
                        ty,
                    }
                })
                .collect()
        };
        let input_layout = match manifest.model.input.dtype {
            InputDtype::Float32 => InputLayout::F32Nchw,
            InputDtype::Uint8 => InputLayout::U8Nhwc,
        };
        let expected = Expected {
            input_name: manifest.model.input.name.clone(),
            input: input_layout,
            width: manifest.model.input.width,
            height: manifest.model.input.height,
            output_name: manifest.model.output.name.clone(),
            classes: manifest.classes.len(),
        };
        let layout = hallmark_detect::check_model(
            &expected,
            &ports(session.inputs()),
            &ports(session.outputs()),
        )
        .map_err(|source| DetectorError::Mismatch {
            bundle: label.to_string(),
            source,
        })?;
        let shape = InputShape {
            width: manifest.model.input.width,
            height: manifest.model.input.height,
            layout: input_layout,
        };
        let own = Input::new(shape)?;
        Ok(Detector {
            session,
            provider: Provider::Cpu,
            own: Some(own),
            output_name: manifest.model.output.name.clone(),
            layout,
            shape,
            settings: Settings {
                confidence: manifest.thresholds.confidence,
                iou: manifest.thresholds.iou,
                max_detections: MAX_DETECTIONS,
            },
            pre: Prep::new(shape),
            candidates: Vec::with_capacity(1024),
            order: Vec::with_capacity(1024),
            keep: Vec::with_capacity(MAX_DETECTIONS),
            detections: Vec::with_capacity(MAX_DETECTIONS),
        })
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The model's input: size (frames are letterboxed to it) and what the tensor holds.
    pub fn input_shape(&self) -> InputShape {
        self.shape
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    pub fn set_settings(&mut self, settings: Settings) {
        self.settings = settings;
    }

    /// The whole detector on one frame.
    pub fn detect(
        &mut self,
        frame: Frame<'_>,
    ) -> Result<(&[Detection], StageTimes), DetectorError> {
        let t0 = Instant::now();
        self.preprocess(frame)?;
        let t1 = Instant::now();
        let (inference, postprocess) = self.infer_and_postprocess()?;
        Ok((
            &self.detections,
            StageTimes {
                preprocess: t1 - t0,
                inference,
                postprocess,
            },
        ))
    }

    /// An input tensor of this model's size, for a pre-processing stage that runs beside inference.
    pub fn new_input(&self) -> Result<Input, DetectorError> {
        Input::new(self.shape)
    }

    /// A pre-processing stage for this model, to run on another thread than inference.
    pub fn new_prep(&self) -> Prep {
        Prep::new(self.shape)
    }

    /// Stage 1 on the detector's own input: letterboxes the frame into it.
    pub fn preprocess(&mut self, frame: Frame<'_>) -> Result<Letterbox, DetectorError> {
        let own = self
            .own
            .as_mut()
            .ok_or_else(|| DetectorError::Inference("input is in use".into()))?;
        self.pre.run(frame, own)
    }

    /// Stages 2 and 3 on the detector's own input. Returns the time of each.
    pub fn infer_and_postprocess(&mut self) -> Result<(Duration, Duration), DetectorError> {
        let own = self
            .own
            .take()
            .ok_or_else(|| DetectorError::Inference("input is in use".into()))?;
        let result = self.infer(&own).map(|(_, i, p)| (i, p));
        self.own = Some(own);
        result
    }

    /// Stages 2 and 3: runs the model on a prepared input, then decodes, suppresses and scales back.
    /// Returns the detections and the time of each stage.
    pub fn infer(
        &mut self,
        input: &Input,
    ) -> Result<(&[Detection], Duration, Duration), DetectorError> {
        let lb = input
            .letterbox
            .ok_or_else(|| DetectorError::Inference("no frame was preprocessed".into()))?;
        let t0 = Instant::now();
        let outputs = run(&mut self.session, input)?;
        let t1 = Instant::now();
        let output = outputs.get(self.output_name.as_str()).ok_or_else(|| {
            DetectorError::Inference(format!("no output named {:?}", self.output_name))
        })?;
        let (shape, data) = output
            .try_extract_tensor::<f32>()
            .map_err(|e| DetectorError::Inference(e.to_string()))?;
        let layout = self.layout.with_candidates(shape)?;
        decode::decode(layout, data, self.settings.confidence, &mut self.candidates)?;
        postprocess(
            &self.candidates,
            &lb,
            self.settings,
            &mut self.order,
            &mut self.keep,
            &mut self.detections,
        );
        let t2 = Instant::now();
        Ok((&self.detections, t1 - t0, t2 - t1))
    }

    /// A bare `session.run` on the current input tensor, its output dropped (the benchmark's baseline).
    pub fn run_bare(&mut self) -> Result<(), DetectorError> {
        let own = self
            .own
            .as_ref()
            .ok_or_else(|| DetectorError::Inference("input is in use".into()))?;
        drop(run(&mut self.session, own)?);
        Ok(())
    }

    /// The detections of the last frame.
    pub fn detections(&self) -> &[Detection] {
        &self.detections
    }
}

/// One `session.run` on `input`.
fn run<'s>(
    session: &'s mut Session,
    input: &Input,
) -> Result<ort::session::SessionOutputs<'s>, DetectorError> {
    match &input.tensor {
        InputTensor::F32(t) => session.run(ort::inputs![t]),
        InputTensor::U8(t) => session.run(ort::inputs![t]),
    }
    .map_err(|e| DetectorError::Inference(e.to_string()))
}

/// A model's input: its size and what the tensor holds. Brands served together share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputShape {
    pub width: u32,
    pub height: u32,
    pub layout: InputLayout,
}

impl std::fmt::Display for InputShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.layout {
            InputLayout::F32Nchw => "float32 NCHW",
            InputLayout::U8Nhwc => "uint8 NHWC",
        };
        write!(f, "{}×{} {kind}", self.width, self.height)
    }
}

/// A model input: the tensor (float32 NCHW, or uint8 NHWC for a variant that normalises in its graph)
/// and the letterbox of the frame in it.
pub struct Input {
    tensor: InputTensor,
    letterbox: Option<Letterbox>,
}

enum InputTensor {
    F32(Tensor<f32>),
    U8(Tensor<u8>),
}

impl Input {
    /// An input for any model of this shape (brands served together share one).
    pub fn new(shape: InputShape) -> Result<Input, DetectorError> {
        let (w, h) = (shape.width as usize, shape.height as usize);
        let err = |e: ort::Error| DetectorError::Inference(e.to_string());
        let tensor = match shape.layout {
            InputLayout::F32Nchw => InputTensor::F32(
                Tensor::from_array(([1usize, 3, h, w], vec![0f32; 3 * w * h])).map_err(err)?,
            ),
            InputLayout::U8Nhwc => InputTensor::U8(
                Tensor::from_array(([1usize, h, w, 3], vec![0u8; 3 * w * h])).map_err(err)?,
            ),
        };
        Ok(Input {
            tensor,
            letterbox: None,
        })
    }
}

/// The pre-processing stage: letterboxes frames into [`Input`]s of one model size.
pub struct Prep {
    pre: Preprocessor,
    width: u32,
    height: u32,
}

impl Prep {
    /// Pre-processing for any model of this input size.
    pub fn new(shape: InputShape) -> Prep {
        Prep {
            pre: Preprocessor::new(),
            width: shape.width,
            height: shape.height,
        }
    }

    /// Letterboxes `frame` into `input`, in the input's own layout.
    pub fn run(&mut self, frame: Frame<'_>, input: &mut Input) -> Result<Letterbox, DetectorError> {
        let lb = match &mut input.tensor {
            InputTensor::F32(t) => {
                let (_, data) = t.extract_tensor_mut();
                self.pre.run(frame, self.width, self.height, data)?
            }
            InputTensor::U8(t) => {
                let (_, data) = t.extract_tensor_mut();
                self.pre.run_u8(frame, self.width, self.height, data)?
            }
        };
        input.letterbox = Some(lb);
        Ok(lb)
    }
}
