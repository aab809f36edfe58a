//! The one error type of the core. Every variant names the offending field (with its index
//! where the field is an array) and the value, so the binding can raise a precise Python
//! exception without parsing strings.

use thiserror::Error;

/// Everything that can go wrong in `crdm-core`. Nothing in the core panics on user input.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CrdmError {
    /// A scalar or array element is outside its allowed domain (NaN, infinite, negative, ...).
    #[error("invalid value for `{field}`: {value} ({reason})")]
    InvalidValue {
        field: String,
        value: String,
        reason: String,
    },
    /// An array has the wrong length.
    #[error("`{field}` has length {actual}, expected {expected}")]
    ShapeMismatch {
        field: String,
        expected: usize,
        actual: usize,
    },
    /// An index (node id, edge id, tick) is outside its range `[0, bound)`.
    #[error("`{field}` = {index} is out of range [0, {bound})")]
    IndexOutOfRange {
        field: String,
        index: i64,
        bound: u64,
    },
    /// A recorder would need more memory than the configured limit.
    #[error("{what} would need {required_bytes} bytes, over the limit of {limit_bytes} bytes")]
    MemoryLimit {
        what: String,
        required_bytes: u64,
        limit_bytes: u64,
    },
}

pub type Result<T> = std::result::Result<T, CrdmError>;

impl CrdmError {
    /// The same error with `prefix` put before the field it names (e.g. `stimuli[3].`).
    pub fn prefixed(mut self, prefix: &str) -> Self {
        match &mut self {
            CrdmError::InvalidValue { field, .. }
            | CrdmError::ShapeMismatch { field, .. }
            | CrdmError::IndexOutOfRange { field, .. } => field.insert_str(0, prefix),
            CrdmError::MemoryLimit { .. } => {}
        }
        self
    }

    pub(crate) fn invalid(
        field: impl Into<String>,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        CrdmError::InvalidValue {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// Checks that `values` has `expected` elements.
pub(crate) fn check_len<T>(field: &str, values: &[T], expected: usize) -> Result<()> {
    if values.len() == expected {
        Ok(())
    } else {
        Err(CrdmError::ShapeMismatch {
            field: field.to_string(),
            expected,
            actual: values.len(),
        })
    }
}

/// Checks every element with `ok`; the first failure names `field[index]`.
pub(crate) fn check_each(
    field: &str,
    values: &[f64],
    ok: impl Fn(f64) -> bool,
    reason: &str,
) -> Result<()> {
    match values.iter().position(|&v| !ok(v)) {
        None => Ok(()),
        Some(i) => Err(CrdmError::invalid(
            format!("{field}[{i}]"),
            values[i],
            reason,
        )),
    }
}

/// Checks that every index lies in `[0, bound)`.
pub(crate) fn check_indices(field: &str, values: &[i64], bound: u64) -> Result<()> {
    match values.iter().position(|&v| v < 0 || (v as u64) >= bound) {
        None => Ok(()),
        Some(i) => Err(CrdmError::IndexOutOfRange {
            field: format!("{field}[{i}]"),
            index: values[i],
            bound,
        }),
    }
}
