//! The check, at load time, that an ONNX graph is the model its manifest describes: one input named as
//! the manifest says, float32 `[1, 3, height, width]` or (a variant that normalises inside its graph)
//! uint8 `[1, height, width, 3]`, and an output named as the manifest says whose shape is one of the
//! known layouts for the manifest's classes. Pure: it takes the names and shapes the runtime reports.

use thiserror::Error;

use crate::decode::{Layout, LayoutError};

/// What the manifest says the graph must look like.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    pub input_name: String,
    pub input: InputLayout,
    pub width: u32,
    pub height: u32,
    pub output_name: String,
    pub classes: usize,
}

/// What a model's input tensor holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum InputLayout {
    /// float32 `[1, 3, H, W]`, RGB scaled to [0, 1]: the exported YOLOv5 model.
    #[default]
    F32Nchw,
    /// uint8 `[1, H, W, 3]`, RGB bytes: the graph casts, scales and transposes itself.
    U8Nhwc,
}

impl InputLayout {
    /// The input shape for `width × height`.
    pub fn shape(self, width: u32, height: u32) -> [i64; 4] {
        let (w, h) = (i64::from(width), i64::from(height));
        match self {
            InputLayout::F32Nchw => [1, 3, h, w],
            InputLayout::U8Nhwc => [1, h, w, 3],
        }
    }

    /// The element type, as it is named in messages.
    pub fn element(self) -> TensorType {
        match self {
            InputLayout::F32Nchw => TensorType::Float32,
            InputLayout::U8Nhwc => TensorType::Uint8,
        }
    }
}

/// The element type of a graph port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TensorType {
    Float32,
    Uint8,
    /// Any other tensor element type, or not a tensor.
    Other,
}

/// A graph input or output as the runtime reports it (`-1` = dynamic dimension).
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    pub name: String,
    pub shape: Vec<i64>,
    pub ty: TensorType,
}

#[derive(Debug, Error, PartialEq)]
pub enum ModelMismatch {
    #[error("model/manifest mismatch: the manifest names input {expected:?}, the model's inputs are {actual:?}")]
    InputName {
        expected: String,
        actual: Vec<String>,
    },
    #[error("model/manifest mismatch: input {name:?} has shape {actual:?}, the manifest says {expected:?}")]
    InputShape {
        name: String,
        actual: Vec<i64>,
        expected: [i64; 4],
    },
    #[error("model/manifest mismatch: the manifest names output {expected:?}, the model's outputs are {actual:?}")]
    OutputName {
        expected: String,
        actual: Vec<String>,
    },
    #[error("model/manifest mismatch: {port:?} is not a float32 tensor")]
    NotFloat { port: String },
    #[error("model/manifest mismatch: input {port:?} is a {actual:?} tensor, the manifest says {expected:?}")]
    InputType {
        port: String,
        actual: TensorType,
        expected: TensorType,
    },
    #[error("model/manifest mismatch: output {name:?}: {source}")]
    Layout { name: String, source: LayoutError },
}

/// Returns the output layout when the graph matches the manifest.
pub fn check_model(
    spec: &Expected,
    inputs: &[Port],
    outputs: &[Port],
) -> Result<Layout, ModelMismatch> {
    let names = |ports: &[Port]| ports.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    let input = match inputs {
        [only] if only.name == spec.input_name => only,
        _ => {
            return Err(ModelMismatch::InputName {
                expected: spec.input_name.clone(),
                actual: names(inputs),
            })
        }
    };
    if input.ty != spec.input.element() {
        return Err(ModelMismatch::InputType {
            port: input.name.clone(),
            actual: input.ty,
            expected: spec.input.element(),
        });
    }
    let want = spec.input.shape(spec.width, spec.height);
    let fits = input.shape.len() == 4
        && input
            .shape
            .iter()
            .zip(want)
            .all(|(&a, w)| a == w || (a == -1 && w == 1));
    if !fits {
        return Err(ModelMismatch::InputShape {
            name: input.name.clone(),
            actual: input.shape.clone(),
            expected: want,
        });
    }
    let Some(output) = outputs.iter().find(|p| p.name == spec.output_name) else {
        return Err(ModelMismatch::OutputName {
            expected: spec.output_name.clone(),
            actual: names(outputs),
        });
    };
    if output.ty != TensorType::Float32 {
        return Err(ModelMismatch::NotFloat {
            port: output.name.clone(),
        });
    }
    let mut shape = output.shape.clone();
    if shape.first() == Some(&-1) {
        shape[0] = 1;
    }
    Layout::from_shape(&shape, spec.classes).map_err(|source| ModelMismatch::Layout {
        name: output.name.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(classes: usize) -> Expected {
        Expected {
            input_name: "images".into(),
            input: InputLayout::F32Nchw,
            width: 320,
            height: 320,
            output_name: "output0".into(),
            classes,
        }
    }

    fn port(name: &str, shape: &[i64]) -> Port {
        Port {
            name: name.into(),
            shape: shape.to_vec(),
            ty: TensorType::Float32,
        }
    }

    #[test]
    fn a_matching_yolov5_graph_gives_its_layout() {
        let l = check_model(
            &manifest(6),
            &[port("images", &[1, 3, 320, 320])],
            &[port("output0", &[1, 6300, 11])],
        )
        .unwrap();
        assert_eq!(
            l,
            Layout::Yolov5 {
                candidates: 6300,
                classes: 6
            }
        );
    }

    #[test]
    fn wrong_input_name_size_or_output_name_are_each_named() {
        let m = manifest(6);
        let out = [port("output0", &[1, 6300, 11])];
        assert!(matches!(
            check_model(&m, &[port("x", &[1, 3, 320, 320])], &out),
            Err(ModelMismatch::InputName { .. })
        ));
        assert!(matches!(
            check_model(&m, &[port("images", &[1, 3, 640, 640])], &out),
            Err(ModelMismatch::InputShape { .. })
        ));
        assert!(matches!(
            check_model(
                &m,
                &[port("images", &[1, 3, 320, 320])],
                &[port("output", &[1, 6300, 11])]
            ),
            Err(ModelMismatch::OutputName { .. })
        ));
    }

    #[test]
    fn a_class_count_that_disagrees_with_the_output_is_an_unknown_layout() {
        let err = check_model(
            &manifest(2),
            &[port("images", &[1, 3, 320, 320])],
            &[port("output0", &[1, 6300, 11])],
        )
        .unwrap_err();
        assert!(matches!(err, ModelMismatch::Layout { .. }));
        assert!(err.to_string().contains("unknown output layout"), "{err}");
    }

    #[test]
    fn a_dynamic_batch_is_accepted() {
        assert!(check_model(
            &manifest(6),
            &[port("images", &[-1, 3, 320, 320])],
            &[port("output0", &[-1, 6300, 11])]
        )
        .is_ok());
    }

    #[test]
    fn a_uint8_variant_must_be_nhwc_bytes() {
        let m = Expected {
            input: InputLayout::U8Nhwc,
            input_name: "images_u8".into(),
            ..manifest(6)
        };
        let out = [port("output0", &[1, 6300, 11])];
        let u8_port = |shape: &[i64]| Port {
            ty: TensorType::Uint8,
            ..port("images_u8", shape)
        };
        assert!(check_model(&m, &[u8_port(&[1, 320, 320, 3])], &out).is_ok());
        assert!(matches!(
            check_model(&m, &[u8_port(&[1, 3, 320, 320])], &out),
            Err(ModelMismatch::InputShape { .. })
        ));
        // A float graph where the manifest says uint8, and the other way round.
        let err = check_model(&m, &[port("images_u8", &[1, 320, 320, 3])], &out).unwrap_err();
        assert!(matches!(err, ModelMismatch::InputType { .. }), "{err}");
        let err = check_model(
            &manifest(6),
            &[u8_port(&[1, 3, 320, 320])].map(|p| Port {
                name: "images".into(),
                ..p
            }),
            &out,
        )
        .unwrap_err();
        assert!(err.to_string().contains("Uint8"), "{err}");
    }
}
