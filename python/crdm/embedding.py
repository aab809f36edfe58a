"""Embeddings of temporal paths: node2vec with temporal paths as the walks (gensim).

Every stimulus gives a corpus of temporal paths (:mod:`crdm.paths`); each path is a sentence
whose words are node ids. One skip-gram Word2Vec (gensim) is trained on the sentences of all
stimuli together, so that node vectors share one space, and each stimulus becomes one vector:

* ``method="mean"`` (default): the frequency-weighted mean of the node vectors,
  ``g = Σ_v f_v · x_v / Σ_v f_v`` with ``f_v`` the number of times node ``v`` occurs in the
  stimulus's paths. It is cheap, and identical vectors mean identical node-usage profiles.
* ``method="doc2vec"``: graph2vec-style, gensim's Doc2Vec in PV-DBOW mode (``dm=0``) with one
  document per stimulus; the document vectors are learnt together with the word vectors.

The dimension is 120 by default (the paper's Fig. 2). Training runs on one gensim worker with a
fixed seed and a process-independent hash (Python's ``hash`` of a string changes between
processes), so the same corpora give the same vectors in every process.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from crdm._checks import integer
from crdm.errors import ValidationError

__all__ = ["embed_paths", "stable_hash"]


def stable_hash(text: str) -> int:
    """A hash of ``text`` that is the same in every process (gensim seeds vectors with it)."""
    return zlib.crc32(text.encode())


def embed_paths(corpora: Sequence[Sequence[Sequence[int]]], *, dimension: int = 120,
                method: str = "mean", window: int = 5, epochs: int = 5, negative: int = 5,
                seed: int = 0) -> np.ndarray:
    """One vector per stimulus, ``(len(corpora), dimension)``, from its temporal paths.

    ``corpora[k]`` is the list of paths (lists of node ids) of stimulus ``k``. A stimulus
    without any path gets the zero vector.
    """
    dimension = integer("dimension", dimension, low=1)
    window = integer("window", window, low=1)
    epochs = integer("epochs", epochs, low=1)
    negative = integer("negative", negative, low=1)
    seed = integer("seed", seed, low=0)
    if method not in ("mean", "doc2vec"):
        raise ValidationError(f"invalid value for `method`: {method!r} ('mean' or 'doc2vec')",
                              "method", method)
    if not any(len(corpus) for corpus in corpora):
        raise ValidationError("no temporal paths in any corpus: nothing to embed", "corpora",
                              len(corpora))
    common = dict(vector_size=dimension, window=window, min_count=1, negative=negative,
                  epochs=epochs, seed=seed, workers=1, hashfxn=stable_hash, sample=0)
    if method == "doc2vec":
        from gensim.models.doc2vec import Doc2Vec

        model = Doc2Vec(_Documents(corpora), dm=0, dbow_words=1, **common)
        return np.array([model.dv[k] if len(corpora[k]) else np.zeros(dimension)
                         for k in range(len(corpora))], dtype=np.float64)
    from gensim.models import Word2Vec

    model = Word2Vec(_Sentences(corpora), sg=1, **common)
    out = np.zeros((len(corpora), dimension))
    for k, corpus in enumerate(corpora):
        if not len(corpus):
            continue
        nodes, counts = np.unique(np.concatenate([np.asarray(p, dtype=np.int64)
                                                  for p in corpus]), return_counts=True)
        vectors = np.stack([model.wv[str(v)] for v in nodes])
        out[k] = counts @ vectors / counts.sum()
    return out


class _Sentences:
    """Every path of every stimulus as a sentence of node-id words; restartable, so gensim can
    stream it once per epoch without holding all sentences as strings."""

    def __init__(self, corpora: Sequence[Sequence[Sequence[int]]]) -> None:
        self.corpora = corpora

    def __iter__(self) -> Iterator[list[str]]:
        for corpus in self.corpora:
            for path in corpus:
                yield [str(v) for v in path]


class _Documents(_Sentences):
    """One tagged document per stimulus (its paths, concatenated)."""

    def __iter__(self) -> Iterator[Any]:
        from gensim.models.doc2vec import TaggedDocument

        for k, corpus in enumerate(self.corpora):
            yield TaggedDocument([str(v) for path in corpus for v in path], [k])
