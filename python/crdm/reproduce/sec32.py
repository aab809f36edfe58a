"""Section 3.2 / Figure 2 of George et al.: temporal-path embeddings before and after STDP.

The pipeline of the paper's Fig. 2, on the Section-3.1 network ``G`` (:func:`crdm.two_block_sbm`,
784 input + 200 hidden nodes, every edge plastic):

1. **STDP on G.** ``G`` is stimulated by ``n_stdp`` images of two classes (default 1 and 5),
   drawn at random from the training set and alternating between the classes, one after the
   other for ``duration_ms`` each, STDP on. The weights carry over from image to image; the
   node state (membranes, refractoriness, traces) starts afresh with every image, as in every
   crdm run. The last weights make ``G_STDP``. Weight changes are classified per edge (the
   classes partition the edges): *unchanged* (``w' = w``), *turned inhibitory* (``w > 0 > w'``),
   *turned excitatory* (``w < 0 < w'``), otherwise *rose* (``w' > w``) or *fell* (``w' < w``).
   The paper: 29 % rose, 40 % fell, 20 % turned inhibitory, 11 % unchanged.
2. **Encoding, STDP off.** A different ``n_encode`` images of the same classes (disjoint from
   the first set) stimulate ``G`` and ``G_STDP``, one image at a time, exactly as in Section 3.1
   (:func:`crdm.reproduce.fig1.encode_paths`: temporal paths, the same seeds on both graphs).
3. **Embedding.** Each graph's paths train their own Word2Vec (:mod:`crdm.embedding`), one
   vector per image. A third embedding, trained on both graphs' paths together, puts ``G`` and
   ``G_STDP`` in one space (needed by the second SVM reading below).
4. **Classification,** on ``n_splits`` seeded splits of the encoded images (the same splits for
   every feature): the paper's cosine majority ``k``-NN (no training), and an SVM (scikit-learn
   ``SVC``, RBF kernel, ``C = 1``, after standardising). The paper's "SVM (trained on the
   embeddings of G, not the one shot encodings of G_STDP)" has two readings, both reported:
   *within* (each graph's SVM is trained on its own training images) and *trained on G* (one
   SVM trained on ``G``'s training images in the shared space, tested on each graph's test
   images). Raw pixels go through the same classifiers on the same splits.

The paper: k-NN 61 % (G) → 82 % (G_STDP); SVM 91.1 % → 97.6 %.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crdm._checks import integer, sequence
from crdm.datasets import DatasetInfo
from crdm.embedding import embed_paths
from crdm.errors import ValidationError
from crdm.network import Network, load_network, two_block_sbm
from crdm.protocol import (
    GramNeighbours,
    SplitResult,
    split_indices,
    split_seeds,
    wknn_neighbours,
)
from crdm.reproduce.experiment import (
    check_image_shape,
    default_test_size,
    is_mnist,
    labelled_pixels,
    open_results,
)
from crdm.reproduce.fig1 import ChunkCorpora, Fig1Config, PathSettings, encode_paths
from crdm.results import ResultFolder
from crdm.simulation import MODEL_REVISION, RunConfig, Simulator, StdpParams, image_stimulus

__all__ = ["PAPER", "Sec32Config", "edge_changes", "run_sec32", "stdp_stream"]

PAPER = {"edges": {"rose": 29.0, "fell": 40.0, "turned_inhibitory": 20.0, "unchanged": 11.0},
         "knn": {"G": 61.0, "G_STDP": 82.0}, "svm": {"G": 91.1, "G_STDP": 97.6}}

GRAPHS = ("G", "G_STDP")


@dataclass(frozen=True)
class Sec32Config(PathSettings):
    """Everything that determines the numbers of a Section-3.2 run."""

    chunk_size: int = 250
    classes: tuple[int, int] = (1, 5)
    n_stdp: int = 1000
    n_encode: int = 1000
    checkpoint_every: int = 100
    stdp: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        classes = sequence("classes", self.classes)
        if len(classes) != 2 or classes[0] == classes[1]:
            raise ValidationError(f"`classes` must be two different labels, got "
                                  f"{self.classes!r}", "classes", self.classes)
        object.__setattr__(self, "classes", tuple(integer("classes", c) for c in classes))
        integer("n_stdp", self.n_stdp, low=1)
        integer("checkpoint_every", self.checkpoint_every, low=1)
        self._check_paths("n_encode", self.n_encode)
        self.stdp_params()

    @property
    def test_size(self) -> int:
        return default_test_size(self.n_test, self.n_encode, self.k)

    def paths_config(self) -> Fig1Config:
        """The Section-3.1 settings used to encode the images (paths and embedding)."""
        return Fig1Config(n_images=self.n_encode, **self.path_settings())

    def stdp_params(self) -> StdpParams:
        if not isinstance(self.stdp, Mapping):
            raise ValidationError(f"`stdp` must be a mapping of StdpParams fields, got "
                                  f"{self.stdp!r}", "stdp", repr(self.stdp))
        unknown = set(self.stdp) - set(StdpParams.__dataclass_fields__)
        if unknown:
            raise ValidationError(f"unknown STDP parameter(s) {sorted(unknown)}", "stdp",
                                  sorted(unknown))
        return StdpParams(**self.stdp)

    def network(self) -> Network:
        return two_block_sbm(self.n_hidden, seed=self.seed, plastic="all",
                             **self.network_params)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "classes": list(self.classes), "test_size": self.test_size}


def stdp_stream(labels: np.ndarray, config: Sec32Config) -> tuple[np.ndarray, np.ndarray]:
    """``(stdp_indices, encode_indices)`` into ``labels``: disjoint, seeded draws of the two
    classes; the STDP stream alternates ``a, b, a, b, …`` (``a`` first); the encoding set is
    sorted by index (with STDP off, order does not matter)."""
    y = np.asarray(labels)
    rng = np.random.default_rng([config.seed, 32])
    half_stdp = [(config.n_stdp + 1) // 2, config.n_stdp // 2]
    half_enc = [(config.n_encode + 1) // 2, config.n_encode // 2]
    pools = []
    for c, n_s, n_e in zip(config.classes, half_stdp, half_enc, strict=True):
        pool = rng.permutation(np.flatnonzero(y == c))
        if pool.size < n_s + n_e:
            raise ValidationError(f"class {c} has {pool.size} images; {n_s + n_e} are needed "
                                  f"({n_s} for STDP, {n_e} to encode)", "classes", c)
        pools.append(pool)
    stream = np.empty(config.n_stdp, dtype=np.int64)
    stream[0::2] = pools[0][:half_stdp[0]]
    stream[1::2] = pools[1][:half_stdp[1]]
    encode = np.sort(np.concatenate([pools[0][half_stdp[0]:half_stdp[0] + half_enc[0]],
                                     pools[1][half_stdp[1]:half_stdp[1] + half_enc[1]]]))
    return stream, encode


def edge_changes(before: np.ndarray, after: np.ndarray) -> dict[str, float]:
    """Shares of edges (they sum to 1) by how STDP changed their weight (module docstring)."""
    w0 = np.asarray(before, dtype=np.float64)
    w1 = np.asarray(after, dtype=np.float64)
    if w0.shape != w1.shape or w0.ndim != 1 or w0.size == 0:
        raise ValidationError(f"weights before {w0.shape} and after {w1.shape} must be equal, "
                              "non-empty 1-D", "after", w1.shape)
    to_inh = (w0 > 0) & (w1 < 0)
    to_exc = (w0 < 0) & (w1 > 0)
    return {"rose": float(np.mean((w1 > w0) & ~to_exc)),
            "fell": float(np.mean((w1 < w0) & ~to_inh)),
            "turned_inhibitory": float(np.mean(to_inh)),
            "turned_excitatory": float(np.mean(to_exc)),
            "unchanged": float(np.mean(w1 == w0))}


def _train_stdp(config: Sec32Config, x_stream: np.ndarray, folder: ResultFolder,
                progress: bool, say: Callable[[str], None]) -> Network:
    """Runs the STDP stream (images ``x_stream``, in order), checkpointing the weights every
    ``checkpoint_every`` images."""
    from tqdm.auto import tqdm

    if folder.has("g_stdp.npz"):
        return load_network(folder.file("g_stdp.npz"))
    net = config.network()
    cfg = RunConfig(duration_ms=config.duration_ms, dt_ms=config.dt_ms,
                    stdp=config.stdp_params(), record_raster=False, snapshot_interval_ms=None)
    done = [k for k in range(config.checkpoint_every, config.n_stdp + 1, config.checkpoint_every)
            if folder.has(f"stdp/{k:06d}.npz")]
    start, rates = 0, np.zeros(config.n_stdp)
    if done:
        start = done[-1]
        state = folder.read_arrays(f"stdp/{start:06d}.npz")
        net = net.with_weights(state["weights"])
        rates[:start] = state["hidden_rate_hz"][:start]
        say(f"STDP resumes after image {start} of {config.n_stdp}")
    hidden = np.setdiff1d(np.arange(net.n_nodes), net.input_nodes)
    with tqdm(total=config.n_stdp, initial=start, unit="img", disable=not progress,
              desc="STDP on G") as bar:
        for k in range(start, config.n_stdp):
            result = Simulator(net, dt_ms=config.dt_ms).run(
                image_stimulus(x_stream[k], net, cfg), cfg)
            net = net.with_weights(result.final_weights)
            rates[k] = result.spike_counts[hidden].mean() / (config.duration_ms / 1000.0)
            if (k + 1) % config.checkpoint_every == 0 or k + 1 == config.n_stdp:
                folder.write_arrays(f"stdp/{k + 1:06d}.npz", weights=net.weights,
                                    hidden_rate_hz=rates)
            bar.update(1)
    net.save(folder.file("g_stdp.npz"))
    return load_network(folder.file("g_stdp.npz"))


def _svm_accuracy(train_x: np.ndarray, train_y: np.ndarray,
                  tests: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[float]:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    svm = make_pipeline(StandardScaler(), SVC(kernel="rbf", C=1.0))
    svm.fit(train_x, train_y)
    return [float(np.mean(svm.predict(tx) == ty)) for tx, ty in tests]


def _row(model: str, classifier: str, accs: Sequence[float], seeds: list[int],
         **extra: Any) -> dict[str, Any]:
    a = np.asarray(accs)
    return {"model": model, "classifier": classifier, "mean": float(a.mean()),
            "sd": float(a.std(ddof=1)) if a.size > 1 else 0.0, "accuracies": a.tolist(),
            "split_seeds": seeds, **extra}


def _evaluate(features: dict[str, np.ndarray], shared: dict[str, np.ndarray], y: np.ndarray,
              config: Sec32Config) -> list[dict[str, Any]]:
    seeds = split_seeds(config.seed, config.n_splits)
    splits = [split_indices(y.size, config.test_size, s) for s in seeds]
    rows = []
    for model, feats in features.items():
        res: SplitResult = wknn_neighbours(
            {"cosine": GramNeighbours.from_features(feats, "cosine")}, y,
            n_splits=config.n_splits, n_test=config.test_size, k=config.k, seed=config.seed,
            weights="uniform")["cosine"]
        rows.append(_row(model, f"cosine majority {config.k}-NN", res.accuracies.tolist(),
                         seeds, per_class=res.as_dict()["per_class"]))
        accs = [_svm_accuracy(feats[tr], y[tr], [(feats[te], y[te])])[0] for tr, te in splits]
        rows.append(_row(model, "SVM, trained per split", accs, seeds))
    cross = [_svm_accuracy(shared["G"][tr], y[tr],
                           [(shared[g][te], y[te]) for g in GRAPHS]) for tr, te in splits]
    for j, g in enumerate(GRAPHS):
        rows.append(_row(f"{g} (shared space)", "SVM trained on G's split", [c[j] for c in cross],
                         seeds))
    return rows


def run_sec32(config: Sec32Config, images: np.ndarray, labels: np.ndarray,
              out_dir: str | Path, *, dataset: DatasetInfo | None = None,
              n_threads: int | None = None, progress: bool = True,
              log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Runs (or continues) Section 3.2 into ``out_dir``; returns the results record.

    The images must be 28 × 28 (the network's input grid); ``dataset`` names the data in the
    results (the paper's numbers only beside MNIST).
    """
    from tqdm.auto import tqdm

    say = log or (lambda msg: None)
    check_image_shape(images, [(28, 28)], experiment="Section 3.2")
    y_all = np.asarray(labels)
    if y_all.ndim != 1 or y_all.shape[0] != np.shape(images)[0]:
        raise ValidationError(f"`labels` ({y_all.shape}) must hold one label per image "
                              f"({np.shape(images)[0]})", "labels", y_all.shape)
    stream, encode = stdp_stream(y_all.astype(np.int64), config)
    used = np.concatenate([stream, encode])
    x, y = labelled_pixels(np.asarray(images)[used], y_all[used])
    x_stream, xe, ye = x[:stream.size], x[stream.size:], y[stream.size:]
    folder = open_results(out_dir, "sec32", config.as_dict(), dataset, {"images": (x, y)},
                          model_revision=MODEL_REVISION, log=say)
    folder.write_json("images.json", {"stdp": stream.tolist(), "encode": encode.tolist()})

    g = config.network()
    g_stdp = _train_stdp(config, x_stream, folder, progress, say)
    changes = edge_changes(g.weights, g_stdp.weights)
    rates = folder.read_arrays(f"stdp/{config.n_stdp:06d}.npz")["hidden_rate_hz"]

    paths_cfg = config.paths_config()
    chunks = [(a, min(a + config.chunk_size, encode.size))
              for a in range(0, encode.size, config.chunk_size)]
    names = {graph: [f"paths_{graph}/{a:06d}.npz" for a, _ in chunks] for graph in GRAPHS}
    todo = [(graph, net, name, a, b) for graph, net in zip(GRAPHS, (g, g_stdp), strict=True)
            for name, (a, b) in zip(names[graph], chunks, strict=True) if not folder.has(name)]
    with tqdm(total=sum(b - a for *_, a, b in todo), unit="img", disable=not progress,
              desc="paths, STDP off") as bar:
        for _, net, name, a, b in todo:
            folder.write_arrays(name, **encode_paths(paths_cfg, xe[a:b], a, network=net,
                                                     n_threads=n_threads))
            bar.update(b - a)

    if not folder.has("embeddings.npz"):
        say("embedding the paths (gensim Word2Vec, one worker)")
        corpora = {graph: ChunkCorpora(folder, names[graph], config.chunk_size, encode.size)
                   for graph in GRAPHS}
        emb = {graph: embed_paths(corpora[graph], dimension=config.dimension,
                                  method=config.method, epochs=config.epochs, seed=config.seed)
               for graph in GRAPHS}
        both = embed_paths(_Concatenated([corpora[gr] for gr in GRAPHS]),
                           dimension=config.dimension, method=config.method,
                           epochs=config.epochs, seed=config.seed)
        folder.write_arrays("embeddings.npz", **emb, shared_G=both[:encode.size],
                            shared_G_STDP=both[encode.size:])
    stored_emb = folder.read_arrays("embeddings.npz")
    features = {"G": stored_emb["G"], "G_STDP": stored_emb["G_STDP"], "raw_pixels": xe}
    shared = {gr: stored_emb[f"shared_{gr}"] for gr in GRAPHS}
    record = {"config": folder.config, **({"paper": PAPER} if is_mnist(folder.config) else {}),
              "edges": {**changes, "n_edges": int(g.n_edges)},
              "stdp_hidden_rate_hz": {"first": float(rates[0]), "last": float(rates[-1]),
                                      "mean": float(rates.mean())},
              "weights": {"G": _weight_summary(g.weights),
                          "G_STDP": _weight_summary(g_stdp.weights)},
              "rows": _evaluate(features, shared, ye, config)}
    folder.write_json("results.json", record)
    _write_csv(folder, record)
    plot_sec32(features, ye, rates, folder.file("sec32.png"),
               dataset=folder.config["data"]["name"])
    return record


def _weight_summary(w: np.ndarray) -> dict[str, float]:
    return {"min": float(w.min()), "max": float(w.max()), "mean": float(w.mean()),
            "excitatory_share": float(np.mean(w > 0))}


class _Concatenated(Sequence[Any]):
    """Several sequences read as one, without copying them."""

    def __init__(self, parts: Sequence[Sequence[Any]]) -> None:
        self.parts = parts
        self.bounds = np.cumsum([0, *(len(p) for p in parts)])

    def __len__(self) -> int:
        return int(self.bounds[-1])

    def __getitem__(self, k: Any) -> Any:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        if not -len(self) <= k < len(self):
            raise IndexError(k)
        k %= len(self)
        part = int(np.searchsorted(self.bounds, k, side="right")) - 1
        return self.parts[part][k - int(self.bounds[part])]


def _write_csv(folder: ResultFolder, record: dict[str, Any]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["model", "classifier", "mean", "sd"])
    for r in record["rows"]:
        writer.writerow([r["model"], r["classifier"], r["mean"], r["sd"]])
    folder.write_text("results.csv", buf.getvalue())


def plot_sec32(features: dict[str, np.ndarray], labels: np.ndarray, rates: np.ndarray,
               path: str | Path, *, dataset: str = "mnist") -> Path:
    """Top three principal components of G's and G_STDP's embeddings, and the hidden rate
    during the STDP stream; the title names the data set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    from crdm._io import atomic_write

    fig = plt.figure(figsize=(13, 4.2))
    cmap = plt.get_cmap("tab10")
    for j, graph in enumerate(GRAPHS):
        ax = fig.add_subplot(1, 3, j + 1, projection="3d")
        pcs = PCA(n_components=3, random_state=0).fit_transform(features[graph])
        for c in np.unique(labels):
            m = labels == c
            ax.scatter(pcs[m, 0], pcs[m, 1], pcs[m, 2], s=4, color=cmap(int(c) % 10),
                       label=str(c), alpha=0.6)
        ax.set_title(f"{graph}: path embeddings (PCA)", fontsize=9)
        ax.legend(markerscale=3, fontsize=7)
    ax = fig.add_subplot(1, 3, 3)
    ax.plot(np.arange(1, rates.size + 1), rates, lw=0.8)
    ax.set_xlabel("image of the STDP stream")
    ax.set_ylabel("mean hidden rate (Hz)")
    ax.set_title("activity while STDP shapes G", fontsize=9)
    fig.suptitle(f"Section 3.2 on {dataset}", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return atomic_write(Path(path), lambda fh: fh.write(buf.getvalue()))
