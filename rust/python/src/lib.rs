//! `crdm._core`: the thin PyO3 layer over `crdm-core`, split like the core. It converts numpy
//! arrays (read-only in, moved out without copying), maps every `CrdmError` variant to its
//! exception in `crdm.errors`, and releases the GIL for every simulation.

mod arrays;
mod engine;
mod errors;
mod readout;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::PyEngine>()?;
    m.add_class::<readout::PySparseProjection>()?;
    m.add_function(wrap_pyfunction!(readout::gram_candidates, m)?)?;
    m.add_function(wrap_pyfunction!(errors::_trigger_panic, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
