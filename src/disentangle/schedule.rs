//! How many prototypes per channel each training step uses.
//!
//! Training starts with many prototypes per channel (100) and narrows to few (5),
//! re-selecting them at each step. Three decays, as in the reference code:
//! - `lin`: n_s = start − (start − end)·s/(steps − 1), rounded to nearest. The
//!   paper describes a linear decrease from start to end; **the reference code**
//!   uses slope (start − end)/steps and so stops one slope short, at 14 for
//!   100 → 5 in 10 steps. Epic follows the paper: the last step uses `end`
//!   (a one-step schedule uses `start`).
//!   `lin_reference` reproduces the reference's numbers for comparisons.
//! - `exp`: n_s = ⌊start·γ^s⌋, γ = (end/start)^(1/steps) (as the reference; ends
//!   at 6 for 100 → 5 in 10 steps).
//! - `log`: n_s = ⌊end + (start − end)·ln(1 + c(steps − s))/ln(1 + c·steps)⌋, c = 0.1
//!   (as the reference; ends at 18 for 100 → 5 in 10 steps).
//!
//! Every value is clamped to at least 1.
use crate::error::{Error, Result};
use std::str::FromStr;

/// The shape of the decay (`prototypes.scheduler.type` in the reference's config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleKind {
    /// Linear from start to end, both included (the paper's schedule).
    Lin,
    /// The reference code's linear schedule, which never reaches `end`.
    LinReference,
    /// Exponential decay.
    Exp,
    /// Logarithmic decay.
    Log,
}

impl FromStr for ScheduleKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "lin" => Ok(ScheduleKind::Lin),
            "lin_reference" => Ok(ScheduleKind::LinReference),
            "exp" => Ok(ScheduleKind::Exp),
            "log" => Ok(ScheduleKind::Log),
            other => Err(Error::invalid(
                "scheduler type",
                format!("unknown schedule {other:?}; use \"lin\", \"exp\", \"log\" or \"lin_reference\""),
            )),
        }
    }
}

/// A number-of-prototypes schedule: `steps` values from `start` down towards `end`.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The element type.
    pub kind: ScheduleKind,
    /// Prototypes per channel at the first step.
    pub start: usize,
    /// Prototypes per channel at the last step.
    pub end: usize,
    /// Number of steps.
    pub steps: usize,
    /// Curvature of the `log` schedule (the reference's `c`, 0.1).
    pub log_c: f64,
}

impl Schedule {
    /// A schedule with the reference's `log` curvature c = 0.1.
    ///
    /// Errors unless 1 ≤ end ≤ start and steps ≥ 1.
    pub fn new(kind: ScheduleKind, start: usize, end: usize, steps: usize) -> Result<Self> {
        if end < 1 || end > start || steps < 1 {
            return Err(Error::invalid(
                "scheduler",
                format!("start = {start}, end = {end}, steps = {steps}; need 1 <= end <= start and steps >= 1"),
            ));
        }
        Ok(Schedule { kind, start, end, steps, log_c: 0.1 })
    }

    /// The number of prototypes per channel at step `step` (0-based).
    pub fn value(&self, step: usize) -> usize {
        let (a, b, n, s) = (self.start as f64, self.end as f64, self.steps as f64, step as f64);
        let v = match self.kind {
            ScheduleKind::Lin if self.steps == 1 => a,
            ScheduleKind::Lin => (a - (a - b) * s / (n - 1.0)).round(),
            ScheduleKind::LinReference => (a - (a - b) / n * s).max(b).trunc(),
            ScheduleKind::Exp => (a * ((b / a).powf(1.0 / n)).powf(s)).trunc(),
            ScheduleKind::Log => {
                let c = self.log_c;
                (b + (a - b) * ((1.0 + c * (n - s)).ln() / (1.0 + c * n).ln())).trunc()
            }
        };
        (v as usize).max(1)
    }

    /// All `steps` values in order.
    pub fn values(&self) -> Vec<usize> {
        (0..self.steps).map(|s| self.value(s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(kind: ScheduleKind) -> Vec<usize> {
        Schedule::new(kind, 100, 5, 10).unwrap().values()
    }

    #[test]
    fn lin_goes_from_start_to_end_inclusive() {
        // 100 - 95·s/9, rounded: 100, 89.4, 78.9, 68.3, 57.8, 47.2, 36.7, 26.1, 15.6, 5
        assert_eq!(values(ScheduleKind::Lin), [100, 89, 79, 68, 58, 47, 37, 26, 16, 5]);
    }

    #[test]
    fn lin_reference_stops_at_14_like_the_reference_code() {
        assert_eq!(values(ScheduleKind::LinReference), [100, 90, 81, 71, 62, 52, 43, 33, 24, 14]);
    }

    #[test]
    fn exp_and_log_match_the_reference_decay() {
        assert_eq!(values(ScheduleKind::Exp), [100, 74, 54, 40, 30, 22, 16, 12, 9, 6]);
        assert_eq!(values(ScheduleKind::Log), [100, 92, 85, 77, 69, 60, 51, 40, 29, 18]);
    }

    #[test]
    fn single_step_and_flat_schedules() {
        assert_eq!(Schedule::new(ScheduleKind::Lin, 7, 3, 1).unwrap().values(), [7]);
        assert_eq!(Schedule::new(ScheduleKind::Lin, 5, 5, 4).unwrap().values(), [5, 5, 5, 5]);
        assert!(Schedule::new(ScheduleKind::Lin, 5, 6, 4).is_err());
        assert!(Schedule::new(ScheduleKind::Exp, 5, 0, 4).is_err());
    }

    #[test]
    fn unknown_kind_names_the_valid_ones() {
        let e = "linear".parse::<ScheduleKind>().unwrap_err().to_string();
        assert!(e.contains("\"linear\"") && e.contains("\"exp\""), "{e}");
    }
}
