//! The check, at load time, that an ONNX graph is the model its manifest describes: one float32 input
//! named as the manifest says with shape `[1, 3, height, width]`, and an output named as the manifest
//! says whose shape is one of the known layouts for the manifest's classes. Pure: it takes the names
//! and shapes the runtime reports.

use thiserror::Error;

use crate::decode::{Layout, LayoutError};

/// What the manifest says the graph must look like.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    pub input_name: String,
    pub width: u32,
    pub height: u32,
    pub output_name: String,
    pub classes: usize,
}

/// A graph input or output as the runtime reports it (`-1` = dynamic dimension).
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    pub name: String,
    pub shape: Vec<i64>,
    pub is_f32_tensor: bool,
}

#[derive(Debug, Error, PartialEq)]
pub enum ModelMismatch {
    #[error("model/manifest mismatch: the manifest names input {expected:?}, the model's inputs are {actual:?}")]
    InputName {
        expected: String,
        actual: Vec<String>,
    },
    #[error("model/manifest mismatch: input {name:?} has shape {actual:?}, the manifest says [1, 3, {height}, {width}]")]
    InputShape {
        name: String,
        actual: Vec<i64>,
        height: u32,
        width: u32,
    },
    #[error("model/manifest mismatch: the manifest names output {expected:?}, the model's outputs are {actual:?}")]
    OutputName {
        expected: String,
        actual: Vec<String>,
    },
    #[error("model/manifest mismatch: {port:?} is not a float32 tensor")]
    NotFloat { port: String },
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
    if !input.is_f32_tensor {
        return Err(ModelMismatch::NotFloat {
            port: input.name.clone(),
        });
    }
    let want = [1, 3, spec.height as i64, spec.width as i64];
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
            height: spec.height,
            width: spec.width,
        });
    }
    let Some(output) = outputs.iter().find(|p| p.name == spec.output_name) else {
        return Err(ModelMismatch::OutputName {
            expected: spec.output_name.clone(),
            actual: names(outputs),
        });
    };
    if !output.is_f32_tensor {
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
            is_f32_tensor: true,
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
}
