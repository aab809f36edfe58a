"""Builders, geometry, and the network file format."""

from __future__ import annotations

import numpy as np
import pytest

import crdm
from crdm.errors import DataError, ValidationError


def test_input_recurrent_structure():
    n = 30
    net = crdm.input_recurrent(n, seed=4)
    n_in = 784
    assert net.n_nodes == n_in + n
    assert net.n_edges == n_in * n + n * (n - 1)
    src, dst = net.edge_src, net.edge_dst
    assert np.all(src[: n_in * n] < n_in) and np.all(dst >= n_in)  # nothing into the input
    assert not np.any(src == dst)
    rec = slice(n_in * n, None)
    assert net.plastic[rec].all() and not net.plastic[: n_in * n].any()
    assert np.mean(net.weights > 0) == pytest.approx(0.7, abs=0.01)
    # input nodes on the 28x28 grid, pixel p at (col, row) * pitch
    assert np.array_equal(net.positions_um[29], [50.0, 50.0, 0.0])
    assert np.all(net.positions_um[n_in:, 2] >= 200.0)
    lat = net.latency_ms()
    assert lat.min() < 2.0 < 8.0 < lat.max()  # latencies spread over milliseconds
    assert np.allclose(net.length_um, np.linalg.norm(
        net.positions_um[dst] - net.positions_um[src], axis=1))


def test_input_recurrent_density_and_plastic_choice():
    net = crdm.input_recurrent(40, seed=1, density=0.25, plastic="all")
    n_rec_edges = net.n_edges - 784 * 40
    assert n_rec_edges == pytest.approx(0.25 * 40 * 39, rel=0.15)
    assert net.plastic.all()


def test_builders_are_seeded():
    a, b = crdm.input_recurrent(10, seed=7), crdm.input_recurrent(10, seed=7)
    assert a == b
    assert a != crdm.input_recurrent(10, seed=8)
    assert crdm.two_block_sbm(20, seed=3) == crdm.two_block_sbm(20, seed=3)


def test_two_block_sbm_block_probabilities():
    p = ((0.0, 0.05), (0.0, 0.3))
    net = crdm.two_block_sbm(100, seed=2, block_probabilities=p)
    n_in = 784
    src_in = net.edge_src < n_in
    assert not np.any(net.edge_dst < n_in)  # p into the input block is 0
    assert src_in.sum() == pytest.approx(0.05 * n_in * 100, rel=0.05)
    assert (~src_in).sum() == pytest.approx(0.3 * 100 * 99, rel=0.05)
    assert not np.any(net.edge_src == net.edge_dst)


@pytest.mark.parametrize("bad", [dict(block_probabilities=((0, 1.5), (0, 0))),
                                 dict(block_probabilities=(0.1, 0.2)),
                                 dict(plastic="some"), dict(n_hidden=0)])
def test_two_block_sbm_rejects(bad):
    with pytest.raises(ValidationError):
        crdm.two_block_sbm(**{"n_hidden": 10, **bad})


@pytest.mark.parametrize("bad", [dict(density=1.5), dict(excitatory_fraction=-0.1),
                                 dict(n_recurrent=0), dict(velocity_m_s=0.0),
                                 dict(velocity_m_s=(0.5, 0.1)), dict(plastic="x"),
                                 dict(seed=-1), dict(tau_m_ms=float("nan"))])
def test_input_recurrent_rejects(bad):
    with pytest.raises(ValidationError):
        crdm.input_recurrent(**{"n_recurrent": 5, **bad})


def test_from_arrays_defaults_to_euclidean_lengths():
    net = crdm.Network.from_arrays([[0, 0], [3, 4]], [[0, 1], [1, 0]], [1.0, -1.0])
    assert net.length_um.tolist() == [5.0, 5.0]
    assert net.positions_um.shape == (2, 3)
    empty = crdm.Network.from_arrays([[0, 0, 0]], np.zeros((0, 2), int), [])
    assert empty.n_edges == 0


def test_arrays_are_read_only_copies():
    weights = np.array([1.0])
    net = crdm.Network.from_arrays([[0, 0], [1, 0]], [[0, 1]], weights)
    weights[0] = 5.0
    assert net.weights[0] == 1.0
    with pytest.raises(ValueError):
        net.weights[0] = 2.0


def test_save_load_round_trip_is_exact(tmp_path):
    net = crdm.input_recurrent(15, seed=9, velocity_m_s=(0.1, 0.4))
    path = net.save(tmp_path / "net")
    assert path.name == "net.npz"
    loaded = crdm.load_network(path)
    assert loaded == net
    for name in ("weights", "length_um", "velocity_m_s", "positions_um"):
        assert getattr(loaded, name).tobytes() == getattr(net, name).tobytes()
    assert loaded.meta == net.meta


def test_with_weights_keeps_everything_else():
    net = crdm.input_recurrent(5, seed=0)
    other = net.with_weights(np.zeros(net.n_edges))
    assert not other.weights.any()
    assert np.array_equal(other.edge_dst, net.edge_dst) and other.meta == net.meta


def test_load_rejects_foreign_and_corrupt_files(tmp_path):
    np.savez(tmp_path / "foreign.npz", x=np.arange(3))
    with pytest.raises(DataError, match="not a crdm network"):
        crdm.load_network(tmp_path / "foreign.npz")
    good = crdm.input_recurrent(3, seed=0).save(tmp_path / "good.npz")
    data = good.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError):
        crdm.load_network(tmp_path / "truncated.npz")
    (tmp_path / "garbage.npz").write_bytes(b"not a zip at all")
    with pytest.raises(DataError):
        crdm.load_network(tmp_path / "garbage.npz")
    with pytest.raises(DataError, match="no crdm network file"):
        crdm.load_network(tmp_path / "missing.npz")
    arrays = dict(np.load(good))
    arrays["header"] = np.array('{"format": "crdm-network", "version": 99}')
    np.savez(tmp_path / "future.npz", **arrays)
    with pytest.raises(DataError, match="version 99"):
        crdm.load_network(tmp_path / "future.npz")
