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

import numbers
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

    ``corpora[k]`` is the list of paths (lists of non-negative integer node ids) of stimulus
    ``k``. A stimulus without any path gets the zero vector. The node ids are checked while
    gensim builds its vocabulary (the first pass over the corpora), so checking costs no
    extra pass.
    """
    dimension = integer("dimension", dimension, low=1, high=MAX_DIMENSION)
    window = integer("window", window, low=1)
    epochs = integer("epochs", epochs, low=1)
    negative = integer("negative", negative, low=1)
    seed = integer("seed", seed, low=0)
    if method not in ("mean", "doc2vec"):
        raise ValidationError(f"invalid value for `method`: {method!r} ('mean' or 'doc2vec')",
                              "method", method)
    common = dict(vector_size=dimension, window=window, min_count=1, negative=negative,
                  epochs=epochs, seed=seed, workers=1, hashfxn=stable_hash, sample=0)
    if method == "doc2vec":
        from gensim.models.doc2vec import Doc2Vec

        documents = _Documents(corpora)
        model = Doc2Vec(documents, dm=0, dbow_words=1, **common)
        return np.array([model.dv[k] if documents.has_tokens[k] else np.zeros(dimension)
                         for k in range(len(corpora))], dtype=np.float64)
    from gensim.models import Word2Vec

    sentences = _Sentences(corpora)
    model = Word2Vec(sentences, sg=1, **common)
    out = np.zeros((len(corpora), dimension))
    for k, corpus in enumerate(corpora):
        if not sentences.has_tokens[k]:
            continue
        nodes, counts = np.unique(np.concatenate([np.asarray(p, dtype=np.int64)
                                                  for p in corpus]), return_counts=True)
        vectors = np.stack([model.wv[str(v)] for v in nodes])
        out[k] = counts @ vectors / counts.sum()
    return out


MAX_DIMENSION = 100_000


def _words(path: Sequence[int], k: int) -> list[str]:
    """A path's node ids as words, checked: non-negative integers (``bool`` is not one)."""
    words = []
    for v in path:
        if type(v) is not int and (isinstance(v, bool) or not isinstance(v, numbers.Integral)):
            raise ValidationError(f"corpora[{k}] holds {v!r}; node ids must be integers",
                                  f"corpora[{k}]", repr(v))
        if v < 0:
            raise ValidationError(f"corpora[{k}] holds the negative node id {v}",
                                  f"corpora[{k}]", int(v))
        words.append(str(int(v)))
    return words


class _Sentences:
    """Every path of every stimulus as a sentence of node-id words; restartable, so gensim can
    stream it once per epoch without holding all sentences as strings. The first pass (gensim's
    vocabulary scan, in the calling thread) checks the node ids and notes which stimuli have
    any; later passes (in gensim's producer thread) trust them."""

    def __init__(self, corpora: Sequence[Sequence[Sequence[int]]]) -> None:
        self.corpora = corpora
        self.has_tokens: list[bool] | None = None

    def __iter__(self) -> Iterator[Any]:
        if self.has_tokens is not None:
            yield from self._items(lambda path, k: [str(v) for v in path])
            return
        seen = []
        for k, corpus in enumerate(self.corpora):
            seen.append(False)
            for item in self._corpus_items(corpus, k, _words):
                seen[k] = seen[k] or bool(self._length(item))
                yield item
        if not any(seen):
            raise ValidationError("no temporal paths in any corpus: nothing to embed",
                                  "corpora", len(self.corpora))
        self.has_tokens = seen

    def _items(self, words: Any) -> Iterator[Any]:
        for k, corpus in enumerate(self.corpora):
            yield from self._corpus_items(corpus, k, words)

    def _corpus_items(self, corpus: Sequence[Sequence[int]], k: int, words: Any
                      ) -> Iterator[Any]:
        for path in corpus:
            yield words(path, k)

    @staticmethod
    def _length(item: Any) -> int:
        return len(item)


class _Documents(_Sentences):
    """One tagged document per stimulus (its paths, concatenated)."""

    def _corpus_items(self, corpus: Sequence[Sequence[int]], k: int, words: Any
                      ) -> Iterator[Any]:
        from gensim.models.doc2vec import TaggedDocument

        yield TaggedDocument([w for path in corpus for w in words(path, k)], [k])

    @staticmethod
    def _length(item: Any) -> int:
        return len(item.words)
