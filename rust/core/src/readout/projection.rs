//! Sparse random projections of weight changes, for the Figure-3 read-out.
//!
//! Figure 3 reduces each image's weight snapshots `w(t_s)` to `P·(w(t_s) − w(0))` for a sparse
//! matrix `P` of a few thousand rows (scikit-learn's `SparseRandomProjection`, which multiplies
//! by the matrix in compressed-row form). scipy does that one snapshot at a time: it reads the
//! whole matrix (12 bytes per entry, 15 MB for the two matrices at N = 400) once per snapshot
//! and gathers the changes at random columns, so memory traffic sets its speed. Here the matrix
//! is read once per image, for up to [`LANES`] snapshots together, and in blocks of
//! [`BLOCK_COLS`] columns: the changes of a block's columns, all snapshots of one column side
//! by side in one cache line, stay in the cache while every row's entries in the block are
//! applied to that row's sums.
//!
//! Each output is computed with the same operations, in the same order, as scipy's
//! `csr_matvec` (the sum starts at `0.0` and adds `data[k]·x[indices[k]]` for the row's
//! entries in stored order, with no fused multiply-add), then rounded to `f32`: the same bits.
//! Blocks of columns keep that order only when each row's entries are sorted by column (as
//! scikit-learn's matrices are); other matrices are multiplied one snapshot at a time. A
//! snapshot equal to `w(0)` projects to `+0.0` everywhere (every product is `±0.0` and
//! `+0.0 + −0.0 = +0.0`), so such snapshots are filled in instead of computed.

use std::cell::RefCell;

use crate::error::{check_len, CrdmError, Result};

/// Snapshots projected in one pass: their changes for one column fill a 64-byte cache line.
const LANES: usize = 8;

/// Columns per block: their changes take 512 KB, which stays in a 2 MB level-2 cache beside
/// the sums (16 KB per 256 rows).
const BLOCK_COLS: usize = 8192;

/// A sparse matrix in compressed-row form, validated once: row `r` has the entries
/// `data[indptr[r]..indptr[r + 1]]`, in columns `indices[..]`.
#[derive(Debug, Clone)]
pub struct SparseProjection {
    n_rows: usize,
    n_cols: usize,
    indptr: Vec<u32>,
    indices: Vec<u32>,
    data: Vec<f64>,
    /// The same entries by (block of columns, row), when every row is sorted by column.
    blocks: Option<Blocks>,
}

/// The entries of a row-sorted matrix reordered by (block, row, column): those of row `r` in
/// block `b` are `data[ptr[b * n_rows + r]..ptr[b * n_rows + r + 1]]`, in columns
/// `b * BLOCK_COLS + col[..]`.
#[derive(Debug, Clone)]
struct Blocks {
    ptr: Vec<u32>,
    col: Vec<u16>,
    data: Vec<f64>,
}

/// What one thread keeps between calls: a fresh buffer per image (the sums, a block of
/// changes) cost a page fault per 4 kB.
#[derive(Default)]
struct Scratch {
    sums: Vec<[f64; LANES]>,
    changes: Vec<[f64; LANES]>,
    diff: Vec<f64>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl SparseProjection {
    /// Checks the arrays (as scipy stores a CSR matrix: `indptr` of `n_rows + 1` offsets,
    /// starting at 0, never decreasing, ending at the number of entries; every column index
    /// below `n_cols`; every value finite) and keeps a copy.
    pub fn new(
        n_rows: usize,
        n_cols: usize,
        indptr: &[i64],
        indices: &[i64],
        data: &[f64],
    ) -> Result<Self> {
        if n_cols == 0 {
            return Err(CrdmError::invalid("n_cols", 0, "at least 1"));
        }
        check_len("indptr", indptr, n_rows + 1)?;
        check_len("indices", indices, data.len())?;
        if data.len() > u32::MAX as usize || n_cols > u32::MAX as usize {
            return Err(CrdmError::invalid(
                "data",
                data.len(),
                "at most 2^32 - 1 entries and columns",
            ));
        }
        if indptr[0] != 0 {
            return Err(CrdmError::invalid("indptr[0]", indptr[0], "must be 0"));
        }
        if let Some(r) = (0..n_rows).find(|&r| indptr[r + 1] < indptr[r]) {
            return Err(CrdmError::invalid(
                format!("indptr[{}]", r + 1),
                indptr[r + 1],
                "offsets never decrease",
            ));
        }
        if indptr[n_rows] != data.len() as i64 {
            return Err(CrdmError::invalid(
                format!("indptr[{n_rows}]"),
                indptr[n_rows],
                format!("must be the number of entries, {}", data.len()),
            ));
        }
        if let Some(k) = indices
            .iter()
            .position(|&c| c < 0 || c as u64 >= n_cols as u64)
        {
            return Err(CrdmError::IndexOutOfRange {
                field: format!("indices[{k}]"),
                index: indices[k],
                bound: n_cols as u64,
            });
        }
        if let Some(k) = data.iter().position(|v| !v.is_finite()) {
            return Err(CrdmError::invalid(
                format!("data[{k}]"),
                data[k],
                "must be finite",
            ));
        }
        let mut projection = SparseProjection {
            n_rows,
            n_cols,
            indptr: indptr.iter().map(|&p| p as u32).collect(),
            indices: indices.iter().map(|&c| c as u32).collect(),
            data: data.to_vec(),
            blocks: None,
        };
        projection.blocks = projection.blocks();
        Ok(projection)
    }

    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    pub fn n_cols(&self) -> usize {
        self.n_cols
    }

    fn row(&self, r: usize) -> std::ops::Range<usize> {
        self.indptr[r] as usize..self.indptr[r + 1] as usize
    }

    /// [`Blocks`], if every row is sorted by column (else `None`).
    fn blocks(&self) -> Option<Blocks> {
        let sorted = (0..self.n_rows).all(|r| self.indices[self.row(r)].is_sorted());
        if !sorted {
            return None;
        }
        let n_blocks = self.n_cols.div_ceil(BLOCK_COLS);
        let mut ptr = Vec::with_capacity(n_blocks * self.n_rows + 1);
        let mut col = Vec::with_capacity(self.data.len());
        let mut data = Vec::with_capacity(self.data.len());
        // each row's entries of blocks before `b` come first: `next[r]` is its first in `b`
        let mut next: Vec<usize> = (0..self.n_rows).map(|r| self.row(r).start).collect();
        ptr.push(0);
        for b in 0..n_blocks {
            let end = (b + 1) * BLOCK_COLS;
            for (r, next) in next.iter_mut().enumerate() {
                while *next < self.row(r).end && (self.indices[*next] as usize) < end {
                    col.push((self.indices[*next] as usize - b * BLOCK_COLS) as u16);
                    data.push(self.data[*next]);
                    *next += 1;
                }
                ptr.push(data.len() as u32);
            }
        }
        Some(Blocks { ptr, col, data })
    }

    /// `P·(x_s − w0)` for every snapshot `s`, where `x_s` is `snapshots[s * row_len + first..]`
    /// (`n_cols` values; `snapshots` holds rows of `row_len`), rounded to `f32`:
    /// `n_snapshots × n_rows` values, row-major, bit for bit what scipy's product and a cast
    /// to `float32` give.
    pub fn changes(
        &self,
        snapshots: &[f64],
        row_len: usize,
        first: usize,
        w0: &[f64],
    ) -> Result<Vec<f32>> {
        let c = self.n_cols;
        check_len("w0", w0, c)?;
        if first.saturating_add(c) > row_len {
            return Err(CrdmError::invalid(
                "first",
                first,
                format!("the {c} columns must fit in rows of {row_len}"),
            ));
        }
        if !snapshots.len().is_multiple_of(row_len) {
            return Err(CrdmError::ShapeMismatch {
                field: "snapshots".to_string(),
                expected: snapshots.len().div_ceil(row_len) * row_len,
                actual: snapshots.len(),
            });
        }
        let n_snapshots = snapshots.len() / row_len;
        let x = |s: usize| &snapshots[s * row_len + first..s * row_len + first + c];
        let mut out = vec![0.0f32; n_snapshots * self.n_rows];
        // the snapshots that differ from `w0` somewhere; the others stay +0.0
        let moved: Vec<usize> = (0..n_snapshots).filter(|&s| x(s) != w0).collect();
        SCRATCH.with_borrow_mut(|scratch| {
            for group in moved.chunks(LANES) {
                let rows: Vec<&[f64]> = group.iter().map(|&s| x(s)).collect();
                let mut put = |q: usize, r: usize, value: f32| {
                    out[group[q] * self.n_rows + r] = value;
                };
                match &self.blocks {
                    Some(blocks) => self.project_blocks(blocks, &rows, w0, scratch, &mut put),
                    None => self.project_rows(&rows, w0, &mut scratch.diff, &mut put),
                }
            }
        });
        Ok(out)
    }

    /// The outputs of up to [`LANES`] snapshots (`rows`) from the blocks, given to
    /// `put(lane, matrix row, value)`.
    fn project_blocks(
        &self,
        blocks: &Blocks,
        rows: &[&[f64]],
        w0: &[f64],
        scratch: &mut Scratch,
        put: &mut impl FnMut(usize, usize, f32),
    ) {
        let Scratch { sums, changes, .. } = scratch;
        sums.clear();
        sums.resize(self.n_rows, [0.0; LANES]);
        // unused lanes hold 0 and are never written out
        changes.clear();
        changes.resize(BLOCK_COLS, [0.0; LANES]);
        for (b, first) in (0..self.n_cols).step_by(BLOCK_COLS).enumerate() {
            let width = BLOCK_COLS.min(self.n_cols - first);
            for (q, row) in rows.iter().enumerate() {
                let (x, w0) = (&row[first..first + width], &w0[first..first + width]);
                for ((change, &x), &w0) in changes.iter_mut().zip(x).zip(w0) {
                    change[q] = x - w0;
                }
            }
            let ptr = &blocks.ptr[b * self.n_rows..=(b + 1) * self.n_rows];
            for (r, sums) in sums.iter_mut().enumerate() {
                let entries = ptr[r] as usize..ptr[r + 1] as usize;
                // a local copy stays in registers (through the slice, every sum was stored
                // and loaded again for each entry)
                let mut acc = *sums;
                for (&col, &a) in blocks.col[entries.clone()]
                    .iter()
                    .zip(&blocks.data[entries])
                {
                    let change = &changes[col as usize];
                    for q in 0..LANES {
                        acc[q] += a * change[q];
                    }
                }
                *sums = acc;
            }
        }
        for (r, sums) in sums.iter().enumerate() {
            for (q, &sum) in sums.iter().enumerate().take(rows.len()) {
                put(q, r, sum as f32);
            }
        }
    }

    /// The same, one snapshot at a time in scipy's order (matrices with unsorted rows).
    fn project_rows(
        &self,
        rows: &[&[f64]],
        w0: &[f64],
        diff: &mut Vec<f64>,
        put: &mut impl FnMut(usize, usize, f32),
    ) {
        for (q, row) in rows.iter().enumerate() {
            diff.clear();
            diff.extend(row.iter().zip(w0).map(|(&x, &w0)| x - w0));
            for r in 0..self.n_rows {
                let mut sum = 0.0f64;
                for k in self.row(r) {
                    sum += self.data[k] * diff[self.indices[k] as usize];
                }
                put(q, r, sum as f32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scipy's `csr_matvec` on `x`, then a cast to `f32`.
    fn scipy_order(p: &SparseProjection, x: &[f64]) -> Vec<u32> {
        (0..p.n_rows)
            .map(|r| {
                let mut sum = 0.0f64;
                for k in p.row(r) {
                    sum += p.data[k] * x[p.indices[k] as usize];
                }
                (sum as f32).to_bits()
            })
            .collect()
    }

    /// A matrix of `n_rows` × `n_cols` with about `per_row` entries per row (row 1 empty),
    /// sorted by column or not.
    fn matrix(n_rows: usize, n_cols: usize, per_row: usize, sorted: bool) -> SparseProjection {
        let (mut indptr, mut indices, mut data) = (vec![0i64], Vec::new(), Vec::new());
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 33
        };
        for r in 0..n_rows {
            let mut cols: Vec<i64> = if r == 1 {
                Vec::new()
            } else {
                (0..per_row + r % 3)
                    .map(|_| (next() % n_cols as u64) as i64)
                    .collect()
            };
            cols.sort_unstable();
            cols.dedup();
            if !sorted {
                cols.reverse();
            }
            for c in cols {
                indices.push(c);
                data.push(if next() % 2 == 0 { 1.5 } else { -1.5 } * (1.0 + r as f64 / 7.0));
            }
            indptr.push(indices.len() as i64);
        }
        SparseProjection::new(n_rows, n_cols, &indptr, &indices, &data).unwrap()
    }

    #[test]
    fn every_snapshot_gets_the_bits_of_one_product_at_a_time() {
        // 11 snapshots (two groups), the 4th equal to w0; columns over three blocks
        let n_cols = 2 * BLOCK_COLS + 100;
        for sorted in [true, false] {
            let p = matrix(9, n_cols, 40, sorted);
            assert_eq!(p.blocks.is_some(), sorted);
            let w0: Vec<f64> = (0..n_cols).map(|i| (i % 17) as f64 * 0.1 - 0.5).collect();
            let mut snapshots = Vec::new();
            for s in 0..11 {
                snapshots.extend(w0.iter().enumerate().map(|(i, &w)| {
                    if s == 3 {
                        w
                    } else {
                        w + ((s * 7 + i * 3) % 11) as f64 * 0.013 - 0.05
                    }
                }));
            }
            let out = p.changes(&snapshots, n_cols, 0, &w0).unwrap();
            for s in 0..11 {
                let x: Vec<f64> = (0..n_cols)
                    .map(|i| snapshots[s * n_cols + i] - w0[i])
                    .collect();
                let got: Vec<u32> = out[s * 9..(s + 1) * 9]
                    .iter()
                    .map(|v| v.to_bits())
                    .collect();
                assert_eq!(got, scipy_order(&p, &x), "snapshot {s}, sorted {sorted}");
            }
            assert!(out[27..36].iter().all(|v| v.to_bits() == 0));
            assert!(out[9..18].iter().any(|&v| v != 0.0));
            // the same columns inside wider rows
            let wide: Vec<f64> = snapshots
                .chunks(n_cols)
                .flat_map(|x| [&[9.0], x, &[-9.0]].concat())
                .collect();
            assert_eq!(p.changes(&wide, n_cols + 2, 1, &w0).unwrap(), out);
        }
    }

    #[test]
    fn malformed_matrices_and_shapes_are_errors() {
        let ok = SparseProjection::new(2, 3, &[0, 1, 2], &[0, 2], &[1.0, 2.0]).unwrap();
        let bad = [
            SparseProjection::new(2, 3, &[0, 1], &[0, 2], &[1.0, 2.0]),
            SparseProjection::new(2, 3, &[1, 1, 2], &[0, 2], &[1.0, 2.0]),
            SparseProjection::new(2, 3, &[0, 2, 1], &[0, 2], &[1.0, 2.0]),
            SparseProjection::new(2, 3, &[0, 1, 1], &[0, 2], &[1.0, 2.0]),
            SparseProjection::new(2, 3, &[0, 1, 2], &[0, 3], &[1.0, 2.0]),
            SparseProjection::new(2, 3, &[0, 1, 2], &[0, 2], &[1.0, f64::NAN]),
            SparseProjection::new(0, 0, &[0], &[], &[]),
        ];
        let fields: Vec<String> = bad
            .into_iter()
            .map(|r| match r.unwrap_err() {
                CrdmError::InvalidValue { field, .. }
                | CrdmError::ShapeMismatch { field, .. }
                | CrdmError::IndexOutOfRange { field, .. } => field,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            fields,
            [
                "indptr",
                "indptr[0]",
                "indptr[2]",
                "indptr[2]",
                "indices[1]",
                "data[1]",
                "n_cols"
            ]
        );
        assert!(ok.changes(&[0.0; 5], 3, 0, &[0.0; 3]).is_err());
        assert!(ok.changes(&[0.0; 6], 3, 0, &[0.0; 2]).is_err());
        assert!(ok.changes(&[0.0; 6], 3, 1, &[0.0; 3]).is_err());
        assert_eq!(
            ok.changes(&[0.0; 6], 3, 0, &[0.0; 3]).unwrap(),
            vec![0.0; 4]
        );
    }
}
