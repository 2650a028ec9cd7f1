//! The `/healthz` decision, pure: healthy only while a model is loaded, frames are arriving and the
//! verdict spool can write. A process that is up but sees no frames (a wedged camera, a stuck
//! pipeline) or cannot keep its verdicts (a full disk) is not doing its job, and an orchestrator or
//! load balancer should be told so.

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    pub ok: bool,
    /// `"ok"`, or every reason it is not, joined by `"; "`.
    pub reason: String,
}

/// `last_frame_age`: time since the last inferred frame, `None` when there has been none;
/// `spool_failing`: why the verdict spool cannot write, while it cannot.
pub fn decide(
    models_loaded: usize,
    last_frame_age: Option<Duration>,
    max_frame_age: Duration,
    spool_failing: Option<&str>,
) -> Health {
    let mut reasons = Vec::new();
    if models_loaded == 0 {
        reasons.push("no model loaded".to_string());
    }
    match last_frame_age {
        None => reasons.push("no frame yet".to_string()),
        Some(age) if age > max_frame_age => reasons.push(format!(
            "no frame for {:.1} s (limit {} s)",
            age.as_secs_f64(),
            seconds(max_frame_age)
        )),
        Some(_) => {}
    }
    if let Some(why) = spool_failing {
        reasons.push(format!("the verdict spool cannot write ({why})"));
    }
    if reasons.is_empty() {
        Health {
            ok: true,
            reason: "ok".into(),
        }
    } else {
        Health {
            ok: false,
            reason: reasons.join("; "),
        }
    }
}

/// `10` for whole seconds, `0.2` otherwise: the limit as the operator wrote it.
fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{}", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(10);

    #[test]
    fn healthy_only_with_a_model_and_a_recent_frame() {
        let h = decide(1, Some(Duration::from_secs(3)), LIMIT, None);
        assert_eq!(
            h,
            Health {
                ok: true,
                reason: "ok".into()
            }
        );
        // Exactly at the limit still counts as recent.
        assert!(decide(2, Some(LIMIT), LIMIT, None).ok);
    }

    #[test]
    fn each_failure_says_why() {
        let h = decide(1, Some(Duration::from_millis(12_340)), LIMIT, None);
        assert!(!h.ok);
        assert_eq!(h.reason, "no frame for 12.3 s (limit 10 s)");
        let h = decide(0, Some(Duration::from_secs(1)), LIMIT, None);
        assert_eq!((h.ok, h.reason.as_str()), (false, "no model loaded"));
        let h = decide(1, None, LIMIT, None);
        assert_eq!((h.ok, h.reason.as_str()), (false, "no frame yet"));
        let h = decide(0, None, LIMIT, None);
        assert_eq!(h.reason, "no model loaded; no frame yet");
        let h = decide(
            1,
            Some(Duration::from_millis(460)),
            Duration::from_millis(200),
            None,
        );
        assert_eq!(h.reason, "no frame for 0.5 s (limit 0.2 s)");
    }

    #[test]
    fn a_spool_that_cannot_write_is_unhealthy_and_says_why() {
        let h = decide(
            1,
            Some(Duration::from_secs(1)),
            LIMIT,
            Some("No space left on device"),
        );
        assert!(!h.ok);
        assert!(
            h.reason
                .contains("spool cannot write (No space left on device)"),
            "{}",
            h.reason
        );
    }
}
