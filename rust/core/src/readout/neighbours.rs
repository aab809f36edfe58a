//! Nearest-neighbour candidates from rows of a Gram matrix, for the k-NN read-out.
//!
//! The read-out of Section 4 (`crdm.protocol.GramNeighbours`) needs, for every test point,
//! its `m` nearest other points under a Euclidean or cosine distance computed from inner
//! products. numpy did this with one `argpartition` per row (about 100 µs for 10,000 points)
//! and five full passes over each block of distances; here each row is turned into distances
//! and reduced to its `m` nearest in one pass, rows spread over threads.
//!
//! The distances are the same floating-point operations, in the same order, as
//! `crdm.protocol._distances_in_place`, so both give the same bits. With `g` the Gram entry,
//! `n_i = diag[i]`, and for cosine an offset `c` shared by every vector (`s_i = x_i·c`,
//! `q = c·c`):
//!
//! * Euclidean: `sqrt(max((-2·g + n_i) + n_j, 0))`;
//! * cosine: `clip(1 - ((g + s_i) + (s_j + q))·inv_i·inv_j, 0, 2)` with
//!   `inv = 1/sqrt(max((n + 2·s) + q, 0))`, or 0 for a zero vector (distance 1 to everything).
//!
//! A point's distance to itself is 0 by definition and it is never its own candidate.
//! Candidates are ordered by (distance, index): ties go to the smaller index. A NaN distance
//! sorts after every number.

use std::cmp::Ordering;

use crate::error::{check_indices, check_len, CrdmError, Result};

/// The distance the candidates are ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Euclidean,
    Cosine,
}

/// Rows of a Gram matrix over `n_points` points: row `rows[k]` of the row-major `gram`
/// (`gram.len() / n_points` rows) holds the inner products of point `points[k]` with every
/// point.
#[derive(Debug, Clone, Copy)]
pub struct GramRows<'a> {
    pub gram: &'a [f64],
    pub n_points: usize,
    pub rows: &'a [i64],
    pub points: &'a [i64],
    /// `x_j·x_j` for every point.
    pub diag: &'a [f64],
    /// `(x_j·c, c·c)` for a shared offset `c` (cosine only; Euclidean distances ignore it).
    pub offset: Option<(&'a [f64], f64)>,
}

/// The `m` nearest candidates of each listed row: `(indices, distances)`, `rows.len() × m`
/// row-major, nearest first. Rows are split over up to `n_threads` threads; the answer does
/// not depend on how many.
pub fn gram_candidates(
    input: &GramRows<'_>,
    metric: Metric,
    m: usize,
    n_threads: usize,
) -> Result<(Vec<i64>, Vec<f64>)> {
    let n = input.n_points;
    if n < 2 {
        return Err(CrdmError::invalid(
            "n_points",
            n,
            "needs at least 2 points to have a neighbour",
        ));
    }
    if m == 0 || m >= n {
        return Err(CrdmError::invalid(
            "n_candidates",
            m,
            format!("must be in [1, {}] for {n} points", n - 1),
        ));
    }
    if !input.gram.len().is_multiple_of(n) {
        return Err(CrdmError::ShapeMismatch {
            field: "gram".to_string(),
            expected: input.gram.len().next_multiple_of(n),
            actual: input.gram.len(),
        });
    }
    let n_rows = input.gram.len() / n;
    check_len("points", input.points, input.rows.len())?;
    check_len("diag", input.diag, n)?;
    check_indices("rows", input.rows, n_rows as u64)?;
    check_indices("points", input.points, n as u64)?;
    if let Some((dot, _)) = input.offset {
        check_len("offset_dot", dot, n)?;
    }
    let columns = Columns::new(input, metric);
    let q = input.rows.len();
    let mut idx = vec![0i64; q * m];
    let mut dist = vec![0f64; q * m];
    let per_thread = q.div_ceil(n_threads.clamp(1, q.max(1))).max(1);
    std::thread::scope(|scope| {
        let parts = idx
            .chunks_mut(per_thread * m)
            .zip(dist.chunks_mut(per_thread * m))
            .enumerate();
        for (part, (idx_part, dist_part)) in parts {
            let columns = &columns;
            scope.spawn(move || {
                let first = part * per_thread;
                let mut heap = Vec::with_capacity(m);
                let rows = idx_part.chunks_mut(m).zip(dist_part.chunks_mut(m));
                for (k, (idx_row, dist_row)) in rows.enumerate() {
                    let row = input.rows[first + k] as usize;
                    let point = input.points[first + k] as usize;
                    let gram_row = &input.gram[row * n..(row + 1) * n];
                    columns.nearest(gram_row, point, &mut heap, m);
                    for (slot, (d, j)) in heap.iter().enumerate() {
                        idx_row[slot] = *j as i64;
                        dist_row[slot] = *d;
                    }
                }
            });
        }
    });
    Ok((idx, dist))
}

/// Per-point terms of the distance, computed once for every row.
struct Columns {
    metric: Metric,
    /// Euclidean: `diag`; cosine: `inv`.
    scale: Vec<f64>,
    /// Cosine with an offset: `s_j` and `s_j + q`; else empty.
    offset_row: Vec<f64>,
    offset_col: Vec<f64>,
}

impl Columns {
    fn new(input: &GramRows<'_>, metric: Metric) -> Self {
        match (metric, input.offset) {
            (Metric::Euclidean, _) => Columns {
                metric,
                scale: input.diag.to_vec(),
                offset_row: Vec::new(),
                offset_col: Vec::new(),
            },
            (Metric::Cosine, None) => Columns {
                metric,
                scale: input.diag.iter().map(|&d| inverse_norm(d)).collect(),
                offset_row: Vec::new(),
                offset_col: Vec::new(),
            },
            (Metric::Cosine, Some((dot, sq))) => Columns {
                metric,
                scale: input
                    .diag
                    .iter()
                    .zip(dot)
                    .map(|(&d, &s)| inverse_norm((d + 2.0 * s) + sq))
                    .collect(),
                offset_row: dot.to_vec(),
                offset_col: dot.iter().map(|&s| s + sq).collect(),
            },
        }
    }

    /// Fills `heap` with the `m` nearest other points of `point`, sorted by (distance, index).
    fn nearest(&self, gram_row: &[f64], point: usize, heap: &mut Vec<(f64, usize)>, m: usize) {
        heap.clear();
        match self.metric {
            Metric::Euclidean => {
                let own = self.scale[point];
                select(
                    heap,
                    m,
                    point,
                    gram_row.iter().zip(&self.scale),
                    |(&g, &nj)| {
                        let d = (-2.0 * g + own) + nj;
                        // np.maximum(d, 0): NaN stays NaN
                        (if d < 0.0 { 0.0 } else { d }).sqrt()
                    },
                );
            }
            Metric::Cosine if self.offset_col.is_empty() => {
                let own = self.scale[point];
                select(
                    heap,
                    m,
                    point,
                    gram_row.iter().zip(&self.scale),
                    |(&g, &inv)| (1.0 - g * own * inv).clamp(0.0, 2.0),
                );
            }
            Metric::Cosine => {
                let own = self.scale[point];
                let s_i = self.offset_row[point];
                let cols = self.scale.iter().zip(&self.offset_col);
                select(
                    heap,
                    m,
                    point,
                    gram_row.iter().zip(cols),
                    |(&g, (&inv, &s_j))| (1.0 - ((g + s_i) + s_j) * own * inv).clamp(0.0, 2.0),
                );
            }
        }
        heap.sort_unstable_by(|a, b| rank(*a, *b));
    }
}

/// `1/sqrt(max(v, 0))`, or 0 for a zero vector (numpy's `where(norm > 0, 1/norm, 0)`).
fn inverse_norm(v: f64) -> f64 {
    let norm = (if v < 0.0 { 0.0 } else { v }).sqrt();
    if norm > 0.0 {
        1.0 / norm
    } else {
        0.0
    }
}

/// Order by distance (NaN last), then by index.
fn rank(a: (f64, usize), b: (f64, usize)) -> Ordering {
    let key = |d: f64| if d.is_nan() { f64::INFINITY } else { d };
    key(a.0)
        .total_cmp(&key(b.0))
        .then(a.0.is_nan().cmp(&b.0.is_nan()))
        .then(a.1.cmp(&b.1))
}

/// Keeps in `heap` the `m` smallest (distance, index) of every column but `skip`. `heap` is a
/// max-heap by [`rank`] while it fills: a later column can only enter with a strictly
/// smaller distance, since ties go to the smaller index.
fn select<T>(
    heap: &mut Vec<(f64, usize)>,
    m: usize,
    skip: usize,
    columns: impl Iterator<Item = T>,
    distance: impl Fn(T) -> f64,
) {
    for (j, column) in columns.enumerate() {
        if j == skip {
            continue;
        }
        let d = distance(column);
        if heap.len() < m {
            heap.push((d, j));
            let last = heap.len() - 1;
            sift_up(heap, last);
        } else if d < heap[0].0 || (heap[0].0.is_nan() && !d.is_nan()) {
            // = rank((d, j), heap[0]) == Less, as j is above every index in the heap
            heap[0] = (d, j);
            sift_down(heap, 0);
        }
    }
}

fn sift_up(heap: &mut [(f64, usize)], mut i: usize) {
    while i > 0 {
        let parent = (i - 1) / 2;
        if rank(heap[i], heap[parent]) != Ordering::Greater {
            break;
        }
        heap.swap(i, parent);
        i = parent;
    }
}

fn sift_down(heap: &mut [(f64, usize)], mut i: usize) {
    loop {
        let (left, right) = (2 * i + 1, 2 * i + 2);
        let mut largest = i;
        if left < heap.len() && rank(heap[left], heap[largest]) == Ordering::Greater {
            largest = left;
        }
        if right < heap.len() && rank(heap[right], heap[largest]) == Ordering::Greater {
            largest = right;
        }
        if largest == i {
            return;
        }
        heap.swap(i, largest);
        i = largest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gram(x: &[[f64; 2]]) -> Vec<f64> {
        x.iter()
            .flat_map(|a| x.iter().map(move |b| a[0] * b[0] + a[1] * b[1]))
            .collect()
    }

    #[test]
    fn nearest_by_distance_then_index_on_any_thread_count() {
        // points on a line at 0, 1, 1, 3, 4 (points 1 and 2 coincide)
        let x = [[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [3.0, 0.0], [4.0, 0.0]];
        let g = gram(&x);
        let diag: Vec<f64> = (0..5).map(|i| g[i * 5 + i]).collect();
        let rows: Vec<i64> = (0..5).collect();
        let input = GramRows {
            gram: &g,
            n_points: 5,
            rows: &rows,
            points: &rows,
            diag: &diag,
            offset: None,
        };
        for threads in [1, 2, 7] {
            let (idx, dist) = gram_candidates(&input, Metric::Euclidean, 3, threads).unwrap();
            assert_eq!(&idx[..3], &[1, 2, 3]);
            assert_eq!(&dist[..3], &[1.0, 1.0, 3.0]);
            assert_eq!(&idx[3..6], &[2, 0, 3]); // point 1: its twin at 0, then 0 and 3 at 1, 2
            assert_eq!(&idx[12..15], &[3, 1, 2]);
        }
    }

    #[test]
    fn bad_shapes_and_sizes_are_errors() {
        let g = vec![1.0; 6];
        let diag = vec![1.0; 3];
        let input = GramRows {
            gram: &g,
            n_points: 3,
            rows: &[0, 2],
            points: &[0, 1],
            diag: &diag,
            offset: None,
        };
        let err = gram_candidates(&input, Metric::Cosine, 1, 1).unwrap_err();
        assert!(matches!(err, CrdmError::IndexOutOfRange { ref field, .. } if field == "rows[1]"));
        let ok = GramRows {
            rows: &[0, 1],
            ..input
        };
        let err = gram_candidates(&ok, Metric::Cosine, 3, 1).unwrap_err();
        assert!(
            matches!(err, CrdmError::InvalidValue { ref field, .. } if field == "n_candidates")
        );
        let short = GramRows {
            gram: &g[..5],
            ..ok
        };
        assert!(matches!(
            gram_candidates(&short, Metric::Cosine, 1, 1),
            Err(CrdmError::ShapeMismatch { .. })
        ));
    }
}
