//! When a model counts as failing while it serves (pure): a non-transient inference error at once,
//! or transient ones `limit` times in a row. A swapped-in model that fails is swapped back to the
//! one it replaced (`rolled_back`); one bad frame is not enough to doubt a model.

#[derive(Debug, Clone)]
pub struct FailureWatch {
    in_a_row: u32,
    limit: u32,
}

/// One inference's outcome, as the watch sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// An error that may pass (a frame the model could not take, a busy device).
    Transient,
    /// An error that will not pass (a broken session, a provider gone).
    Fatal,
}

impl FailureWatch {
    pub fn new(limit: u32) -> FailureWatch {
        FailureWatch {
            in_a_row: 0,
            limit: limit.max(1),
        }
    }

    /// A new model starts with a clean record.
    pub fn reset(&mut self) {
        self.in_a_row = 0;
    }

    /// Records one inference; true when the model now counts as failing.
    pub fn record(&mut self, outcome: Outcome) -> bool {
        match outcome {
            Outcome::Ok => {
                self.in_a_row = 0;
                false
            }
            Outcome::Fatal => {
                self.in_a_row += 1;
                true
            }
            Outcome::Transient => {
                self.in_a_row += 1;
                self.in_a_row >= self.limit
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::*;

    fn run(limit: u32, outcomes: &[Outcome]) -> Vec<bool> {
        let mut w = FailureWatch::new(limit);
        outcomes.iter().map(|&o| w.record(o)).collect()
    }

    #[test]
    fn fatal_errors_fail_at_once_and_transient_ones_only_in_a_row() {
        assert_eq!(run(3, &[Fatal]), vec![true]);
        assert_eq!(
            run(3, &[Transient, Transient, Transient]),
            vec![false, false, true]
        );
        assert_eq!(
            run(3, &[Transient, Transient, Ok, Transient, Transient]),
            vec![false, false, false, false, false],
            "a good frame clears the record"
        );
        assert_eq!(run(1, &[Transient]), vec![true]);
        let mut w = FailureWatch::new(2);
        w.record(Transient);
        w.reset();
        assert!(!w.record(Transient), "a new model starts clean");
    }
}
