//! numpy arrays in: read-only views of C-contiguous data, refused with a named error
//! otherwise.

use crdm_core::CrdmError;
use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::errors::to_pyerr;

/// The values of a 1-D array argument named `field`.
pub(crate) fn slice<'a, T: numpy::Element>(
    py: Python<'_>,
    field: &str,
    array: &'a PyReadonlyArray1<'_, T>,
) -> PyResult<&'a [T]> {
    array.as_slice().map_err(|_| not_contiguous(py, field))
}

/// The values of a C-contiguous (row-major) 2-D array. `as_slice` alone also accepts a
/// Fortran-ordered one, whose values it would hand over in the wrong order.
pub(crate) fn row_major<'a, T: numpy::Element>(
    py: Python<'_>,
    field: &str,
    array: &'a PyReadonlyArray2<'_, T>,
) -> PyResult<&'a [T]> {
    if !array.is_c_contiguous() {
        return Err(not_contiguous(py, field));
    }
    array.as_slice().map_err(|_| not_contiguous(py, field))
}

/// The error for an array argument that is not C-contiguous.
fn not_contiguous(py: Python<'_>, field: &str) -> PyErr {
    to_pyerr(
        py,
        CrdmError::InvalidValue {
            field: field.to_string(),
            value: "non-contiguous array".to_string(),
            reason: "must be C-contiguous".to_string(),
        },
    )
}
