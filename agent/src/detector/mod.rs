//! The YOLOv5 detector: a decoded frame in, boxes in the frame's own pixels out, exactly as the
//! reference implementation computes them.
//!
//! The pure stages (letterbox, pre-processing, output decoding, NMS, the model check) live in the
//! `hallmark-detect` crate; this file wraps them around one ONNX Runtime session. All buffers live in
//! the `Detector` and are reused: after the first frame of a given size, detecting allocates only what
//! ONNX Runtime allocates for its output.

use std::time::{Duration, Instant};

pub use hallmark_detect::{
    decode, postprocess, Candidate, Detection, Expected, Frame, Layout, LayoutError, Letterbox,
    ModelMismatch, PixelFormat, Port, PreprocessError, Preprocessor, Settings, MAX_DETECTIONS,
};
use ort::session::Session;
use ort::value::{Tensor, TensorElementType, ValueType};
use thiserror::Error;

use crate::bundle::{Bundle, Manifest};
use crate::runtime::{ModelInfo, Provider, Runtime, RuntimeError};

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
    width: u32,
    height: u32,
    settings: Settings,
    pre: Prep,
    candidates: Vec<Candidate>,
    order: Vec<usize>,
    keep: Vec<usize>,
    detections: Vec<Detection>,
}

impl Detector {
    /// Builds a session for the bundle's model and checks the graph against its manifest. The session
    /// is built from the bytes the bundle verified, not from the file.
    pub fn new(runtime: &Runtime, bundle: &Bundle) -> Result<Detector, DetectorError> {
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
        // Debug: `run` says the provider in its start line, and a fall back is an error of its own.
        tracing::debug!(
            bundle = %bundle.dir().display(),
            provider = %loaded.provider,
            requested = ?runtime.providers().iter().map(ToString::to_string).collect::<Vec<_>>(),
            "detector loaded"
        );
        Ok(detector)
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
                    let (shape, is_f32_tensor) = match o.dtype() {
                        ValueType::Tensor { ty, shape, .. } => {
                            (shape.to_vec(), *ty == TensorElementType::Float32)
                        }
                        _ => (Vec::new(), false),
                    };
                    Port {
                        name: o.name().to_string(),
                        shape,
                        is_f32_tensor,
                    }
                })
                .collect()
        };
        let expected = Expected {
            input_name: manifest.model.input.name.clone(),
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
        let (width, height) = (manifest.model.input.width, manifest.model.input.height);
        let own = Input::new(width, height)?;
        Ok(Detector {
            session,
            provider: Provider::Cpu,
            own: Some(own),
            output_name: manifest.model.output.name.clone(),
            layout,
            width,
            height,
            settings: Settings {
                confidence: manifest.thresholds.confidence,
                iou: manifest.thresholds.iou,
                max_detections: MAX_DETECTIONS,
            },
            pre: Prep::new(width, height),
            candidates: Vec::with_capacity(1024),
            order: Vec::with_capacity(1024),
            keep: Vec::with_capacity(MAX_DETECTIONS),
            detections: Vec::with_capacity(MAX_DETECTIONS),
        })
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The model's input width and height (frames are letterboxed to it).
    pub fn input_size(&self) -> (u32, u32) {
        (self.width, self.height)
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
        Input::new(self.width, self.height)
    }

    /// A pre-processing stage for this model, to run on another thread than inference.
    pub fn new_prep(&self) -> Prep {
        Prep::new(self.width, self.height)
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
        let outputs = self
            .session
            .run(ort::inputs![&input.tensor])
            .map_err(|e| DetectorError::Inference(e.to_string()))?;
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
        let outputs = self
            .session
            .run(ort::inputs![&own.tensor])
            .map_err(|e| DetectorError::Inference(e.to_string()))?;
        drop(outputs);
        Ok(())
    }

    /// The detections of the last frame.
    pub fn detections(&self) -> &[Detection] {
        &self.detections
    }
}

/// A model input: the float32 NCHW tensor and the letterbox of the frame in it.
pub struct Input {
    tensor: Tensor<f32>,
    letterbox: Option<Letterbox>,
}

impl Input {
    /// An input for any model of this input size (brands served together share one).
    pub fn new(width: u32, height: u32) -> Result<Input, DetectorError> {
        let len = 3 * width as usize * height as usize;
        let tensor = Tensor::from_array((
            [1usize, 3, height as usize, width as usize],
            vec![0f32; len],
        ))
        .map_err(|e| DetectorError::Inference(e.to_string()))?;
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
    pub fn new(width: u32, height: u32) -> Prep {
        Prep {
            pre: Preprocessor::new(),
            width,
            height,
        }
    }

    /// Letterboxes `frame` into `input`.
    pub fn run(&mut self, frame: Frame<'_>, input: &mut Input) -> Result<Letterbox, DetectorError> {
        let (_, data) = input.tensor.extract_tensor_mut();
        let lb = self.pre.run(frame, self.width, self.height, data)?;
        input.letterbox = Some(lb);
        Ok(lb)
    }
}
