"""Path embeddings: determinism (also across processes), shapes, and sense."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from crdm.embedding import embed_paths
from crdm.errors import ValidationError


def corpora(seed=0):
    """Stimuli of kind A walk over nodes 0-9, kind B over nodes 10-19."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(12):
        base = 0 if k % 2 == 0 else 10
        out.append([list(base + rng.integers(0, 10, rng.integers(2, 6))) for _ in range(30)])
    return out


@pytest.mark.parametrize("method", ["mean", "doc2vec"])
def test_same_seed_same_vectors_and_kinds_separate(method):
    a = embed_paths(corpora(), dimension=16, method=method, seed=3)
    b = embed_paths(corpora(), dimension=16, method=method, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (12, 16)
    unit = a / np.linalg.norm(a, axis=1, keepdims=True)
    sim = unit @ unit.T
    same = np.equal.outer(np.arange(12) % 2, np.arange(12) % 2)
    assert sim[same].mean() > sim[~same].mean() + 0.1


def test_vectors_are_the_same_in_another_process(tmp_path):
    code = ("import numpy as np, sys; sys.path.insert(0, %r); from test_embedding import "
            "corpora; from crdm.embedding import embed_paths; np.save(%r, embed_paths("
            "corpora(), dimension=8, seed=1))")
    outs = []
    for k, hashseed in enumerate(("1", "2")):
        path = str(tmp_path / f"v{k}.npy")
        subprocess.run([sys.executable, "-c", code % (str(__import__("pathlib").Path(
            __file__).parent), path)], check=True, env={"PYTHONHASHSEED": hashseed,
                                                        "PATH": "/usr/bin:/bin"})
        outs.append(np.load(path))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_a_stimulus_without_paths_is_the_zero_vector():
    c = corpora()
    c[3] = []
    v = embed_paths(c, dimension=8)
    assert np.all(v[3] == 0) and np.all(np.linalg.norm(np.delete(v, 3, 0), axis=1) > 0)


def test_bad_arguments():
    with pytest.raises(ValidationError, match="method"):
        embed_paths(corpora(), method="skipgram")
    with pytest.raises(ValidationError, match="no temporal paths"):
        embed_paths([[], []])
    with pytest.raises(ValidationError, match="dimension"):
        embed_paths(corpora(), dimension=0)
