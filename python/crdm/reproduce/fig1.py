"""Section 3.1 / Figure 1 of George et al.: temporal paths of a two-block SBM, embedded.

Each image stimulates the seeded :func:`crdm.two_block_sbm` network (784 input + 200 hidden
nodes; STDP off) for ``duration_ms`` (the paper: 10,000 steps = 1,000 ms at dt = 0.1 ms) with the
causal record on. From its temporal graph (:mod:`crdm.paths`), ``walks`` root firings are drawn
(uniformly, with replacement, by a seed derived from the image's index) and one temporal path
of at most ``max_length`` firings is walked from each. All images' paths train one skip-gram
Word2Vec (:func:`crdm.embedding.embed_paths`, 120 dimensions); each image becomes the
frequency-weighted mean of its nodes' vectors. Outputs: the embeddings' top three principal
components coloured by digit (``fig1.png``), and a cosine majority-vote 5-NN over seeded
splits, average and per-class accuracy, beside raw pixels on the same splits.

The paper: 72 % average, class 1 93 %, class 8 63 %, on the 60,000 training images.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from crdm._checks import integer, real
from crdm._io import atomic_write
from crdm.datasets import DatasetInfo
from crdm.embedding import embed_paths
from crdm.errors import ValidationError
from crdm.network import Network, two_block_sbm
from crdm.paths import temporal_graph, temporal_paths
from crdm.protocol import GramNeighbours, points_under_test, wknn_neighbours
from crdm.reproduce.experiment import (
    check_image_shape,
    check_network_params,
    default_test_size,
    is_mnist,
    labelled_pixels,
    open_results,
)
from crdm.results import ResultFolder
from crdm.simulation import (
    MODEL_REVISION,
    RunConfig,
    Simulator,
    image_stimulus,
)

__all__ = ["ChunkCorpora", "Fig1Config", "PathSettings", "encode_paths", "run_fig1"]

PAPER = {"average": 72.0, "per_class": {1: 93.0, 8: 63.0}}


@dataclass(frozen=True)
class PathSettings:
    """The settings of temporal paths, their embedding and their k-NN (Sections 3.1, 3.2)."""

    n_hidden: int = 200
    duration_ms: float = 1000.0
    dt_ms: float = 0.1
    seed: int = 0
    walks: int = 200
    max_length: int = 20
    dimension: int = 120
    method: str = "mean"
    epochs: int = 5
    k: int = 5
    n_splits: int = 10
    n_test: int | None = None           # None: min(1000, images // 10)
    chunk_size: int = 500
    network_params: dict[str, Any] = field(default_factory=dict)

    def _check_paths(self, images_field: str, n_images: int) -> None:
        integer("k", self.k, low=1)    # first: the other bounds use it
        integer(images_field, n_images, low=self.k + 2)
        integer("n_hidden", self.n_hidden, low=1)
        integer("seed", self.seed, low=0)
        integer("walks", self.walks, low=1)
        integer("max_length", self.max_length, low=1)
        integer("dimension", self.dimension, low=1)
        integer("epochs", self.epochs, low=1)
        integer("n_splits", self.n_splits, low=1)
        integer("chunk_size", self.chunk_size, low=1)
        real("duration_ms", self.duration_ms, low=0.0, low_open=True)
        if self.method not in ("mean", "doc2vec"):
            raise ValidationError(f"invalid value for `method`: {self.method!r}", "method",
                                  self.method)
        default_test_size(self.n_test, n_images, self.k)
        object.__setattr__(self, "network_params",
                           check_network_params(self.network_params, two_block_sbm))
        # values too, before any work: the run's tick range, and a network of two hidden
        # nodes built with the same parameters
        RunConfig(duration_ms=self.duration_ms, dt_ms=self.dt_ms, snapshot_interval_ms=None)
        two_block_sbm(2, seed=self.seed, plastic="none", **self.network_params)

    def path_settings(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(PathSettings)}


@dataclass(frozen=True)
class Fig1Config(PathSettings):
    """Everything that determines the numbers of a Section-3.1 run."""

    n_images: int = 60_000

    def __post_init__(self) -> None:
        self._check_paths("n_images", self.n_images)

    @property
    def test_size(self) -> int:
        return default_test_size(self.n_test, self.n_images, self.k)

    def network(self) -> Network:
        return two_block_sbm(self.n_hidden, seed=self.seed, plastic="none",
                             **self.network_params)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "test_size": self.test_size}


def encode_paths(config: Fig1Config, images: np.ndarray, first_index: int, *,
                 network: Network | None = None, n_threads: int | None = None
                 ) -> dict[str, np.ndarray]:
    """The sampled temporal paths of ``images`` (rows ``first_index …`` of the data set) on
    ``network`` (default ``config.network()``), STDP off.

    Returns ``tokens`` (node ids of every path, concatenated), ``path_lengths`` and
    ``paths_per_image``; each image's walks use a seed from its own index, so chunking and
    threads never change them.
    """
    net = config.network() if network is None else network
    cfg = RunConfig(duration_ms=config.duration_ms, dt_ms=config.dt_ms, record_causal=True,
                    snapshot_interval_ms=None)
    sim = Simulator(net, dt_ms=config.dt_ms)
    # The causal record's worst case is large (≈ 40 MB per run here): batch under the limit.
    per_run = max(sim.recording_bound_bytes(cfg), 1)
    batch = max(1, cfg.memory_limit_bytes // per_run)
    tokens, lengths, per_image = [], [], []
    results = (r for a in range(0, len(images), batch)
               for r in sim.run_batch([image_stimulus(x, net, cfg) for x in images[a:a + batch]],
                                      cfg, n_threads=n_threads))
    for k, result in enumerate(results):
        graph = temporal_graph(result, net, config.dt_ms)
        rng = np.random.default_rng([config.seed, first_index + k])
        roots = (rng.choice(graph.roots, config.walks) if graph.roots.size
                 else np.zeros(0, np.int64))
        paths = temporal_paths(graph, roots=roots, max_length=config.max_length,
                               seed=int(rng.integers(2**32)))
        per_image.append(len(paths))
        lengths.extend(len(p) for p in paths)
        tokens.extend(v for p in paths for v in p)
    return {"tokens": np.asarray(tokens, dtype=np.int32),
            "path_lengths": np.asarray(lengths, dtype=np.int32),
            "paths_per_image": np.asarray(per_image, dtype=np.int32)}


class ChunkCorpora(Sequence[list[list[int]]]):
    """The paths of every image, read from the chunk files one chunk at a time."""

    def __init__(self, folder: ResultFolder, names: list[str], chunk_size: int, n: int):
        self.folder, self.names, self.chunk_size, self.n = folder, names, chunk_size, n
        self._cached: tuple[int, list[list[list[int]]]] | None = None

    def __len__(self) -> int:
        return self.n

    def _chunk(self, c: int) -> list[list[list[int]]]:
        if self._cached is None or self._cached[0] != c:
            data = self.folder.read_arrays(self.names[c])
            paths = np.split(data["tokens"], np.cumsum(data["path_lengths"])[:-1]) \
                if data["path_lengths"].size else []
            bounds = np.cumsum(data["paths_per_image"])[:-1]
            per_image = np.split(np.arange(len(paths)), bounds)
            self._cached = (c, [[paths[i].tolist() for i in idx] for idx in per_image])
        return self._cached[1]

    def __getitem__(self, k: Any) -> Any:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(self.n))]
        return self._chunk(k // self.chunk_size)[k % self.chunk_size]


def run_fig1(config: Fig1Config, images: np.ndarray, labels: np.ndarray, out_dir: str | Path,
             *, dataset: DatasetInfo | None = None, n_threads: int | None = None,
             progress: bool = True, log: Callable[[str], None] | None = None
             ) -> dict[str, Any]:
    """Runs (or continues) Section 3.1 into ``out_dir``; returns the results record.

    The network's input layer is the paper's 28 × 28 grid, so the images must be 28 × 28;
    ``dataset`` names the data in the results (the paper's numbers only beside MNIST).
    """
    from tqdm.auto import tqdm

    say = log or (lambda msg: None)
    n = config.n_images
    check_image_shape(images, [(28, 28)], experiment="Section 3.1")
    x, y = labelled_pixels(images, labels, n)
    folder = open_results(out_dir, "fig1", config.as_dict(), dataset, {"images": (x, y)},
                          model_revision=MODEL_REVISION, log=say)
    chunks = [(f"chunks/{a:06d}.npz", a, min(a + config.chunk_size, n))
              for a in range(0, n, config.chunk_size)]
    todo = [c for c in chunks if not folder.has(c[0])]
    say(f"{len(chunks) - len(todo)} of {len(chunks)} chunks already done")
    with tqdm(total=sum(b - a for _, a, b in todo), unit="img", disable=not progress,
              desc="fig1 paths") as bar:
        for name, a, b in todo:
            folder.write_arrays(name, **encode_paths(config, x[a:b], a, n_threads=n_threads))
            bar.update(b - a)
    if not folder.has("embeddings.npz"):
        say("embedding the paths (gensim Word2Vec, one worker)")
        corpora = ChunkCorpora(folder, [c[0] for c in chunks], config.chunk_size, n)
        emb = embed_paths(corpora, dimension=config.dimension, method=config.method,
                          epochs=config.epochs, seed=config.seed)
        folder.write_arrays("embeddings.npz", embeddings=emb)
    emb = folder.read_arrays("embeddings.npz")["embeddings"]
    record = _evaluate(emb, x, y, config)
    if is_mnist(folder.config):
        record = {"paper": PAPER, **record}
    folder.write_json("results.json", {"config": folder.config, **record})
    _write_csv(folder, record)
    plot_fig1(emb, y, folder.file("fig1.png"), dataset=folder.config["data"]["name"])
    return record


def _evaluate(emb: np.ndarray, x: np.ndarray, y: np.ndarray, config: Fig1Config
              ) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": []}
    # Only the tested points need neighbours, and rows are computed as needed: at 60,000
    # images a Gram matrix would take 29 GB.
    queries = points_under_test(y.size, config.test_size, config.n_splits, config.seed)
    for model, feats in (("crdm_paths", emb), ("raw_pixels", x)):
        nb = GramNeighbours.from_features(feats, "cosine", queries=queries)
        res = wknn_neighbours({"cosine": nb}, y,
                              n_splits=config.n_splits, n_test=config.test_size, k=config.k,
                              seed=config.seed, weights="uniform")["cosine"]
        out["rows"].append({"model": model, "metric": "cosine", "vote": "majority",
                            **res.as_dict()})
    return out


def _write_csv(folder: ResultFolder, record: dict[str, Any]) -> None:
    classes = sorted({c for r in record["rows"] for c in r["per_class"]}, key=int)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["model", "metric", "vote", "mean", "sd",
                     *[f"class_{c}" for c in classes]])
    for r in record["rows"]:
        writer.writerow([r["model"], r["metric"], r["vote"], r["mean"], r["sd"],
                         *[r["per_class"][c] for c in classes]])
    folder.write_text("results.csv", buf.getvalue())


def plot_fig1(embeddings: np.ndarray, labels: np.ndarray, path: str | Path, *,
              dataset: str = "mnist") -> Path:
    """The top three principal components of the embeddings, coloured by class; the title
    names the data set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    pcs = PCA(n_components=3, random_state=0).fit_transform(embeddings)
    fig = plt.figure(figsize=(7, 6))
    ax = fig.add_subplot(projection="3d")
    cmap = plt.get_cmap("tab10")
    for c in np.unique(labels):
        m = labels == c
        ax.scatter(pcs[m, 0], pcs[m, 1], pcs[m, 2], s=3, color=cmap(int(c) % 10),
                   label=str(c), alpha=0.6)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_zlabel("PC 3")
    ax.legend(markerscale=4, fontsize=7, loc="upper left")
    ax.set_title(f"Figure 1 on {dataset}: temporal-path embeddings (PCA), coloured by class",
                 fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write(Path(path), lambda fh: fh.write(buf.getvalue()))
