//! The read-out kernels of the experiments: sparse random projections of weight changes
//! (Figure 3) and nearest-neighbour candidates from Gram rows (the k-NN read-out).

mod neighbours;
mod projection;

pub use neighbours::{gram_candidates, GramRows, Metric};
pub use projection::SparseProjection;
