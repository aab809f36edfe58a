//! `CrdmError` → the exceptions of `crdm.errors`, and the GIL-released call that maps errors
//! and panics.

use crdm_core::CrdmError;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// Raises the `crdm.errors` exception that corresponds to `err`. The match is exhaustive:
/// a new core variant does not compile until it has its Python exception.
pub(crate) fn to_pyerr(py: Python<'_>, err: CrdmError) -> PyErr {
    let message = err.to_string();
    let raised = (|| -> PyResult<PyErr> {
        let errors = py.import("crdm.errors")?;
        let (class, field, value): (&str, String, Py<PyAny>) = match err {
            CrdmError::InvalidValue { field, value, .. } => (
                "ValidationError",
                field,
                value.into_pyobject(py)?.into_any().unbind(),
            ),
            CrdmError::ShapeMismatch { field, actual, .. } => (
                "ShapeError",
                field,
                actual.into_pyobject(py)?.into_any().unbind(),
            ),
            CrdmError::IndexOutOfRange { field, index, .. } => (
                "IndexOutOfRangeError",
                field,
                index.into_pyobject(py)?.into_any().unbind(),
            ),
            CrdmError::MemoryLimit { required_bytes, .. } => (
                "MemoryLimitError",
                "memory_limit_bytes".to_string(),
                required_bytes.into_pyobject(py)?.into_any().unbind(),
            ),
        };
        let exc = errors
            .getattr(class)?
            .call1((message.clone(), field, value))?;
        Ok(PyErr::from_value(exc))
    })();
    raised.unwrap_or_else(|import_err| {
        PyRuntimeError::new_err(format!("{message} (and crdm.errors failed: {import_err})"))
    })
}

/// Runs `f` without the GIL and turns a core error, or a panic that escaped the core, into a
/// Python exception. Every long call goes through here.
pub(crate) fn detached<T: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> Result<T, CrdmError> + Send,
) -> PyResult<T> {
    let outcome = py.detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(to_pyerr(py, err)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            let errors = py.import("crdm.errors")?;
            let exc = errors
                .getattr("InternalError")?
                .call1((format!("internal error in crdm-core: {what}"),))?;
            Err(PyErr::from_value(exc))
        }
    }
}

/// Raises a Rust panic inside the GIL-released helper, to test that it becomes
/// `crdm.errors.InternalError` rather than aborting the interpreter.
#[pyfunction]
pub(crate) fn _trigger_panic(py: Python<'_>) -> PyResult<()> {
    detached(py, || -> Result<(), CrdmError> {
        panic!("deliberate panic for testing")
    })
}
