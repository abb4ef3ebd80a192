//! The sequential specification of one key: a register that is initially absent.
//!
//! Values are interned to small integers so that a model state is one `u32` and the search's
//! memo table hashes and compares integers, not strings.

use std::collections::HashMap;

use super::history::{Op, OpKind, Outcome};

/// An interned register value; [`ABSENT`] is the initial state.
pub(crate) type Value = u32;

/// The register holds nothing (the key was never written).
pub(crate) const ABSENT: Value = 0;

/// Interns the values seen on one key.
#[derive(Debug, Default)]
pub(crate) struct Values<'h> {
    ids: HashMap<&'h str, Value>,
    names: Vec<&'h str>,
}

impl<'h> Values<'h> {
    pub(crate) fn intern(&mut self, value: &'h Option<String>) -> Value {
        let Some(name) = value.as_deref() else {
            return ABSENT;
        };
        let next = Value::try_from(self.names.len() + 1)
            .expect("fewer than 2^32 distinct values on one key: the key's op count is below that");
        *self.ids.entry(name).or_insert_with(|| {
            self.names.push(name);
            next
        })
    }

    /// The value as it appears in the history, for explanations.
    pub(crate) fn show(&self, value: Value) -> String {
        match value {
            ABSENT => "absent".to_owned(),
            id => format!("{:?}", self.names[id as usize - 1]),
        }
    }
}

/// What one operation does to, and requires of, the register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Step {
    /// A put that took effect, or may have (unknown outcome): always possible.
    Write(Value),
    /// A get that returned this value.
    Read(Value),
    /// A cas that swapped: requires `expect`, then holds `new`.
    Swap { expect: Value, new: Value },
    /// A cas whose outcome is unknown: swaps if the register holds `expect`, else does nothing.
    MaybeSwap { expect: Value, new: Value },
    /// A cas whose comparison failed: requires anything but `expect`, changes nothing.
    CompareFailed(Value),
}

impl Step {
    /// The model's step for `op`, or `None` if the operation constrains nothing (a get that did
    /// not succeed, a put that was rejected before it was proposed).
    pub(crate) fn of<'h>(op: &'h Op, values: &mut Values<'h>) -> Option<Step> {
        let step = match (op.kind, op.outcome) {
            (OpKind::Get, Outcome::Ok) => Step::Read(values.intern(&op.output)),
            (OpKind::Get, Outcome::Fail | Outcome::Unknown) | (OpKind::Put, Outcome::Fail) => {
                return None
            }
            (OpKind::Put, Outcome::Ok | Outcome::Unknown) => Step::Write(values.intern(&op.input)),
            (OpKind::Cas, Outcome::Ok) => Step::Swap {
                expect: values.intern(&op.expect),
                new: values.intern(&op.input),
            },
            (OpKind::Cas, Outcome::Unknown) => Step::MaybeSwap {
                expect: values.intern(&op.expect),
                new: values.intern(&op.input),
            },
            (OpKind::Cas, Outcome::Fail) => Step::CompareFailed(values.intern(&op.expect)),
        };
        Some(step)
    }

    /// The register after this step from `state`, or `None` if the step cannot happen there.
    pub(crate) fn apply(self, state: Value) -> Option<Value> {
        match self {
            Step::Write(new) => Some(new),
            Step::Read(seen) => (seen == state).then_some(state),
            Step::Swap { expect, new } => (expect == state).then_some(new),
            Step::MaybeSwap { expect, new } => Some(if expect == state { new } else { state }),
            Step::CompareFailed(expect) => (expect != state).then_some(state),
        }
    }

    /// Whether the step only observes the register (when it is possible at all, it leaves the
    /// register as it was).
    pub(crate) fn is_observation(self) -> bool {
        matches!(self, Step::Read(_) | Step::CompareFailed(_))
    }

    /// Why the step cannot happen from `state` (only meaningful when [`Step::apply`] refused it).
    pub(crate) fn refusal(self, state: Value, values: &Values<'_>) -> String {
        let held = values.show(state);
        match self {
            Step::Read(seen) => {
                format!("it read {} but the register held {held}", values.show(seen))
            }
            Step::Swap { expect, .. } => format!(
                "it swapped expecting {} but the register held {held}",
                values.show(expect)
            ),
            Step::CompareFailed(_) => {
                format!("its comparison failed, yet the register held the expected {held}",)
            }
            Step::Write(_) | Step::MaybeSwap { .. } => {
                unreachable!("writes and unknown-outcome cas are possible from every state")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_semantics() {
        let (a, b) = (1, 2);
        assert_eq!(Step::Write(a).apply(ABSENT), Some(a));
        assert_eq!(Step::Read(a).apply(a), Some(a));
        assert_eq!(Step::Read(a).apply(b), None);
        assert_eq!(Step::Read(ABSENT).apply(ABSENT), Some(ABSENT));
        assert_eq!(Step::Swap { expect: a, new: b }.apply(a), Some(b));
        assert_eq!(Step::Swap { expect: a, new: b }.apply(ABSENT), None);
        assert_eq!(Step::MaybeSwap { expect: a, new: b }.apply(a), Some(b));
        assert_eq!(Step::MaybeSwap { expect: a, new: b }.apply(b), Some(b));
        assert_eq!(
            Step::MaybeSwap { expect: a, new: b }.apply(ABSENT),
            Some(ABSENT)
        );
        assert_eq!(Step::CompareFailed(a).apply(a), None);
        assert_eq!(Step::CompareFailed(a).apply(b), Some(b));
    }

    #[test]
    fn interning_keeps_absent_apart_from_every_string() {
        let (none, empty, x): (Option<String>, Option<String>, Option<String>) =
            (None, Some(String::new()), Some("x".into()));
        let mut values = Values::default();
        assert_eq!(values.intern(&none), ABSENT);
        let empty_id = values.intern(&empty);
        assert_ne!(empty_id, ABSENT);
        assert_eq!(values.intern(&x), values.intern(&x));
        assert_eq!(values.show(empty_id), "\"\"");
        assert_eq!(values.show(ABSENT), "absent");
    }
}
