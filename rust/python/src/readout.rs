//! The read-out kernels: `gram_candidates` and `SparseProjection`.

use crdm_core::{CrdmError, GramRows, Metric, SparseProjection};
use numpy::{
    IntoPyArray, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use crate::arrays::{row_major, slice};
use crate::errors::{detached, to_pyerr};

/// Candidate indices and distances, as `gram_candidates` returns them.
type Candidates<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f64>>);

/// The `n_candidates` nearest other points of each listed Gram row, nearest first, ties to
/// the smaller index: `(indices, distances)`, each `(len(rows), n_candidates)`.
#[pyfunction]
#[pyo3(signature = (gram, rows, points, diag, metric, *, offset_dot, offset_sq, n_candidates, n_threads))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn gram_candidates<'py>(
    py: Python<'py>,
    gram: PyReadonlyArray2<'_, f64>,
    rows: PyReadonlyArray1<'_, i64>,
    points: PyReadonlyArray1<'_, i64>,
    diag: PyReadonlyArray1<'_, f64>,
    metric: &str,
    offset_dot: Option<PyReadonlyArray1<'_, f64>>,
    offset_sq: f64,
    n_candidates: usize,
    n_threads: usize,
) -> PyResult<Candidates<'py>> {
    let metric = match metric {
        "euclidean" => Metric::Euclidean,
        "cosine" => Metric::Cosine,
        other => {
            return Err(to_pyerr(
                py,
                CrdmError::InvalidValue {
                    field: "metric".to_string(),
                    value: other.to_string(),
                    reason: "'euclidean' or 'cosine'".to_string(),
                },
            ))
        }
    };
    let n_points = gram.shape()[1];
    let gram = row_major(py, "gram", &gram)?;
    let offset = match &offset_dot {
        Some(dot) => Some((slice(py, "offset_dot", dot)?, offset_sq)),
        None => None,
    };
    let input = GramRows {
        gram,
        n_points,
        rows: slice(py, "rows", &rows)?,
        points: slice(py, "points", &points)?,
        diag: slice(py, "diag", &diag)?,
        offset,
    };
    let q = input.rows.len();
    let (idx, dist) = detached(py, || {
        crdm_core::gram_candidates(&input, metric, n_candidates, n_threads)
    })?;
    let shape = [q, n_candidates];
    Ok((
        idx.into_pyarray(py).reshape(shape)?,
        dist.into_pyarray(py).reshape(shape)?,
    ))
}

/// A sparse matrix in compressed-row form (scipy's CSR arrays), checked once, that projects
/// weight changes: `changes(snapshots, w0, first=f)` is `P·(snapshots[s, f:f + n_cols] − w0)`
/// for every row `s`, as `float32`, bit for bit scipy's product and cast.
#[pyclass(module = "crdm._core", frozen, name = "SparseProjection")]
pub(crate) struct PySparseProjection {
    inner: SparseProjection,
}

#[pymethods]
impl PySparseProjection {
    #[new]
    fn new(
        py: Python<'_>,
        n_rows: usize,
        n_cols: usize,
        indptr: PyReadonlyArray1<'_, i64>,
        indices: PyReadonlyArray1<'_, i64>,
        data: PyReadonlyArray1<'_, f64>,
    ) -> PyResult<Self> {
        let (indptr, indices, data) = (
            slice(py, "indptr", &indptr)?,
            slice(py, "indices", &indices)?,
            slice(py, "data", &data)?,
        );
        let inner = detached(py, || {
            SparseProjection::new(n_rows, n_cols, indptr, indices, data)
        })?;
        Ok(PySparseProjection { inner })
    }

    #[getter]
    fn shape(&self) -> (usize, usize) {
        (self.inner.n_rows(), self.inner.n_cols())
    }

    #[pyo3(signature = (snapshots, w0, *, first = 0))]
    fn changes<'py>(
        &self,
        py: Python<'py>,
        snapshots: PyReadonlyArray2<'_, f64>,
        w0: PyReadonlyArray1<'_, f64>,
        first: usize,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let (n_snapshots, row_len) = (snapshots.shape()[0], snapshots.shape()[1]);
        let snapshots = row_major(py, "snapshots", &snapshots)?;
        let w0 = slice(py, "w0", &w0)?;
        let out = detached(py, || self.inner.changes(snapshots, row_len, first, w0))?;
        out.into_pyarray(py)
            .reshape([n_snapshots, self.inner.n_rows()])
    }
}
