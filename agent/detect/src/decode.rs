//! Decoding the raw detector output into scored candidate boxes.
//!
//! Two layouts are understood, told apart by the output's shape alone:
//! - YOLOv5: `[1, N, 5 + C]`, rows of `cx, cy, w, h, objectness, C class scores`; a candidate's score is
//!   objectness × best class score, and (as the reference does) rows whose objectness is not above the
//!   confidence threshold are dropped before that product is taken.
//! - Anchor-free (YOLOv5u / YOLOv8): `[1, 4 + C, N]`, one column per candidate, `cx, cy, w, h, C class
//!   scores`, no objectness.
//!
//! Boxes come out as `[x1, y1, x2, y2]` in model-input pixels. Pure functions, no allocation beyond the
//! caller's reused output vector.

use thiserror::Error;

/// Which output layout a model uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `[1, N, 5 + C]`.
    Yolov5 { candidates: usize, classes: usize },
    /// `[1, 4 + C, N]`.
    AnchorFree { candidates: usize, classes: usize },
}

impl Layout {
    /// Tells the layout from an output shape and the number of classes the manifest declares. A dimension
    /// of `-1` (dynamic) matches any count of candidates.
    pub fn from_shape(shape: &[i64], classes: usize) -> Result<Layout, LayoutError> {
        let unknown = || LayoutError::Unknown {
            shape: shape.to_vec(),
            classes,
        };
        if shape.len() != 3 || shape[0] != 1 || classes == 0 {
            return Err(unknown());
        }
        let (a, b) = (shape[1], shape[2]);
        let v5 = b == 5 + classes as i64;
        let af = a == 4 + classes as i64;
        match (v5, af) {
            (true, false) => Ok(Layout::Yolov5 {
                candidates: a.max(0) as usize,
                classes,
            }),
            (false, true) => Ok(Layout::AnchorFree {
                candidates: b.max(0) as usize,
                classes,
            }),
            _ => Err(unknown()),
        }
    }

    pub fn classes(&self) -> usize {
        match *self {
            Layout::Yolov5 { classes, .. } | Layout::AnchorFree { classes, .. } => classes,
        }
    }

    /// The same layout with the candidate count of an actual output (dynamic models).
    pub fn with_candidates(self, shape: &[i64]) -> Result<Layout, LayoutError> {
        let actual = Layout::from_shape(shape, self.classes())?;
        match (self, actual) {
            (Layout::Yolov5 { .. }, Layout::Yolov5 { .. })
            | (Layout::AnchorFree { .. }, Layout::AnchorFree { .. }) => Ok(actual),
            _ => Err(LayoutError::Unknown {
                shape: shape.to_vec(),
                classes: self.classes(),
            }),
        }
    }

    fn len(&self) -> usize {
        match *self {
            Layout::Yolov5 {
                candidates,
                classes,
            } => candidates * (5 + classes),
            Layout::AnchorFree {
                candidates,
                classes,
            } => candidates * (4 + classes),
        }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Layout::Yolov5 {
                candidates,
                classes,
            } => write!(f, "YOLOv5 [1, {candidates}, 5 + {classes}]"),
            Layout::AnchorFree {
                candidates,
                classes,
            } => {
                write!(f, "anchor-free [1, 4 + {classes}, {candidates}]")
            }
        }
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum LayoutError {
    #[error(
        "unknown output layout: shape {shape:?} is neither YOLOv5 [1, N, 5 + {classes}] nor anchor-free \
         [1, 4 + {classes}, N] for the manifest's {classes} classes"
    )]
    Unknown { shape: Vec<i64>, classes: usize },
    #[error("output holds {actual} values, but its layout {layout} needs {expected}")]
    Length {
        layout: String,
        expected: usize,
        actual: usize,
    },
}

/// One scored box before non-maximum suppression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// `[x1, y1, x2, y2]` in model-input pixels.
    pub bbox: [f32; 4],
    pub score: f32,
    pub class: u32,
}

/// Appends to `out` (cleared first) every candidate whose score is above `conf`.
pub fn decode(
    layout: Layout,
    data: &[f32],
    conf: f32,
    out: &mut Vec<Candidate>,
) -> Result<(), LayoutError> {
    out.clear();
    if data.len() != layout.len() {
        return Err(LayoutError::Length {
            layout: layout.to_string(),
            expected: layout.len(),
            actual: data.len(),
        });
    }
    match layout {
        Layout::Yolov5 { classes, .. } => {
            for row in data.chunks_exact(5 + classes) {
                let obj = row[4];
                if obj <= conf {
                    continue;
                }
                let (class, cls) = argmax(&row[5..]);
                let score = cls * obj;
                if score > conf {
                    out.push(Candidate {
                        bbox: xywh_to_xyxy(row[0], row[1], row[2], row[3]),
                        score,
                        class,
                    });
                }
            }
        }
        Layout::AnchorFree {
            candidates: n,
            classes,
        } => {
            for i in 0..n {
                // Column i: strided reads; the class loop is short.
                let mut best = (0u32, f32::NEG_INFINITY);
                for c in 0..classes {
                    let s = data[(4 + c) * n + i];
                    if s > best.1 {
                        best = (c as u32, s);
                    }
                }
                if best.1 > conf {
                    let bbox = xywh_to_xyxy(data[i], data[n + i], data[2 * n + i], data[3 * n + i]);
                    out.push(Candidate {
                        bbox,
                        score: best.1,
                        class: best.0,
                    });
                }
            }
        }
    }
    Ok(())
}

/// First index of the largest value (torch's `max` picks the first on ties).
fn argmax(scores: &[f32]) -> (u32, f32) {
    let mut best = (0u32, f32::NEG_INFINITY);
    for (i, &s) in scores.iter().enumerate() {
        if s > best.1 {
            best = (i as u32, s);
        }
    }
    best
}

fn xywh_to_xyxy(cx: f32, cy: f32, w: f32, h: f32) -> [f32; 4] {
    [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yolov5_and_anchor_free_layouts_are_told_apart_by_shape() {
        assert_eq!(
            Layout::from_shape(&[1, 6300, 11], 6),
            Ok(Layout::Yolov5 {
                candidates: 6300,
                classes: 6
            })
        );
        assert_eq!(
            Layout::from_shape(&[1, 10, 2100], 6),
            Ok(Layout::AnchorFree {
                candidates: 2100,
                classes: 6
            })
        );
        assert_eq!(
            Layout::from_shape(&[1, -1, 11], 6),
            Ok(Layout::Yolov5 {
                candidates: 0,
                classes: 6
            })
        );
    }

    #[test]
    fn shapes_that_fit_neither_layout_are_refused_with_the_shape_in_the_message() {
        let err = Layout::from_shape(&[1, 6300, 12], 6).unwrap_err();
        assert!(err.to_string().contains("[1, 6300, 12]"), "{err}");
        assert!(Layout::from_shape(&[6300, 11], 6).is_err());
        assert!(Layout::from_shape(&[2, 6300, 11], 6).is_err());
        // Both readings possible: refuse rather than guess.
        assert!(Layout::from_shape(&[1, 10, 11], 6).is_err());
    }

    #[test]
    fn yolov5_score_is_objectness_times_best_class_and_filtered() {
        let layout = Layout::Yolov5 {
            candidates: 3,
            classes: 2,
        };
        #[rustfmt::skip]
        let data = [
            100.0, 50.0, 20.0, 10.0, 0.9, 0.2, 0.8, // 0.72 class 1
            10.0, 10.0, 4.0, 4.0, 0.2, 1.0, 0.0,    // objectness below threshold
            30.0, 30.0, 10.0, 10.0, 0.5, 0.5, 0.4,  // 0.25: not above 0.25
        ];
        let mut out = Vec::new();
        decode(layout, &data, 0.25, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].class, 1);
        assert!((out[0].score - 0.72).abs() < 1e-6);
        assert_eq!(out[0].bbox, [90.0, 45.0, 110.0, 55.0]);
    }

    #[test]
    fn anchor_free_reads_columns() {
        let layout = Layout::AnchorFree {
            candidates: 2,
            classes: 2,
        };
        #[rustfmt::skip]
        let data = [
            100.0, 10.0, // cx
            50.0, 10.0,  // cy
            20.0, 4.0,   // w
            10.0, 4.0,   // h
            0.1, 0.3,    // class 0
            0.7, 0.05,   // class 1
        ];
        let mut out = Vec::new();
        decode(layout, &data, 0.25, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].class, out[0].score), (1, 0.7));
        assert_eq!(out[0].bbox, [90.0, 45.0, 110.0, 55.0]);
        assert_eq!((out[1].class, out[1].score), (0, 0.3));
    }

    #[test]
    fn ties_pick_the_first_class_like_torch() {
        assert_eq!(argmax(&[0.5, 0.5, 0.1]), (0, 0.5));
    }

    #[test]
    fn wrong_length_is_an_error_not_a_panic() {
        let layout = Layout::Yolov5 {
            candidates: 3,
            classes: 2,
        };
        let mut out = Vec::new();
        assert!(matches!(
            decode(layout, &[0.0; 20], 0.25, &mut out),
            Err(LayoutError::Length { .. })
        ));
    }
}
