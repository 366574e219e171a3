"""Tests of rlbook.utils: seeds repeat every generator a chapter uses; the device is chosen
by RLBOOK_DEVICE or defaults to the CPU."""

import random

import numpy as np
import pytest
import torch

from rlbook.utils import device, inverse_cdf, set_seed


def draw() -> tuple:
    """One number from each global generator, and one from a fresh torch network."""
    net = torch.nn.Linear(3, 1)
    return (
        random.random(),
        float(np.random.rand()),  # noqa: NPY002 -- set_seed seeds the legacy global state too
        float(torch.rand(())),
        tuple(net.weight.detach().flatten().tolist()),
    )


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**32 + 5, np.int64(7)])
def test_set_seed_repeats_python_numpy_and_torch(seed) -> None:
    set_seed(seed)
    first = draw()
    set_seed(seed)
    assert draw() == first


def test_different_seeds_give_different_numbers() -> None:
    set_seed(0)
    a = draw()
    set_seed(1)
    b = draw()
    assert all(x != y for x, y in zip(a, b, strict=True))


def test_set_seed_returns_a_fresh_generator_for_that_seed() -> None:
    rng = set_seed(42)
    assert isinstance(rng, np.random.Generator)
    assert rng.random(5).tolist() == np.random.default_rng(42).random(5).tolist()
    # a fresh one each call, not a shared one that has moved on
    assert set_seed(42).random() == np.random.default_rng(42).random()


@pytest.mark.parametrize("seed", [-1, 1.5, 2.0, True, "3", None, [1]])
def test_set_seed_rejects_bad_seeds(seed) -> None:
    with pytest.raises((TypeError, ValueError), match="seed"):
        set_seed(seed)


def test_device_defaults_to_the_cpu(monkeypatch) -> None:
    monkeypatch.delenv("RLBOOK_DEVICE", raising=False)
    assert device() == torch.device("cpu")
    monkeypatch.setenv("RLBOOK_DEVICE", "")
    assert device() == torch.device("cpu")


@pytest.mark.parametrize("name", ["cpu", "cuda", "cuda:1", "meta"])
def test_device_honours_rlbook_device(monkeypatch, name: str) -> None:
    # naming a device is enough; it need not exist on this machine until a tensor goes there
    monkeypatch.setenv("RLBOOK_DEVICE", name)
    assert device() == torch.device(name)
    assert isinstance(device(), torch.device)


@pytest.mark.parametrize("name", ["garbage", "cuda:x", "gpu"])
def test_device_rejects_garbage(monkeypatch, name: str) -> None:
    monkeypatch.setenv("RLBOOK_DEVICE", name)
    with pytest.raises(ValueError, match="RLBOOK_DEVICE") as info:
        device()
    assert name in str(info.value)


def test_seed_offset_shifts_every_stream(monkeypatch):
    from rlbook import exact
    from rlbook.rollout import evaluate  # noqa: F401  (imported for its reset path)
    from rlbook.utils import generator, offset, rng, seed_offset

    monkeypatch.delenv("RLBOOK_SEED_OFFSET", raising=False)
    base = (rng(3).random(), torch.randn(2, generator=generator(3)), offset(3))
    base_mdp = exact.random_mdp(seed=0).P
    monkeypatch.setenv("RLBOOK_SEED_OFFSET", "1000")
    assert seed_offset() == 1000 and offset(3) == 1003 and offset(None) is None
    assert rng(3).random() != base[0]
    assert not torch.equal(torch.randn(2, generator=generator(3)), base[1])
    # a random MDP's seed names the object the book analyses: it is not shifted
    assert torch.equal(exact.random_mdp(seed=0).P, base_mdp)
    # the shift is a shift: offset k and seed s give the stream of seed s + k
    assert rng(3).random() == np.random.default_rng(1003).random()
    set_seed(3)
    a = torch.rand(1)
    monkeypatch.setenv("RLBOOK_SEED_OFFSET", "0")
    set_seed(1003)
    assert torch.equal(torch.rand(1), a)


@pytest.mark.parametrize("bad", ["-1", "x", "1.5"])
def test_seed_offset_rejects_nonsense(monkeypatch, bad):
    from rlbook.utils import seed_offset

    monkeypatch.setenv("RLBOOK_SEED_OFFSET", bad)
    with pytest.raises(ValueError, match="RLBOOK_SEED_OFFSET"):
        seed_offset()


def test_set_seed_runs_torch_on_one_thread_unless_told(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("RLBOOK_THREADS", raising=False)
        torch.set_num_threads(2)
        set_seed(0)
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("RLBOOK_THREADS", "2")
        set_seed(0)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("bad", ["0", "-2", "two", "1.5"])
def test_threads_rejects_nonsense(monkeypatch, bad):
    monkeypatch.setenv("RLBOOK_THREADS", bad)
    with pytest.raises(ValueError, match="RLBOOK_THREADS"):
        set_seed(0)


def test_inverse_cdf_draws_each_index_with_its_probability() -> None:
    p = np.array([0.1, 0.0, 0.6, 0.3])
    grid = (np.arange(10_000) + 0.5) / 10_000  # evenly spread u in (0, 1)
    draws = inverse_cdf(np.tile(p.cumsum(), (len(grid), 1)), grid)
    np.testing.assert_allclose(
        np.bincount(draws, minlength=4) / len(grid), p, atol=1e-4
    )


def test_inverse_cdf_boundaries_and_zero_probabilities() -> None:
    cdf = np.array([0.0, 0.25, 0.25, 1.0])  # index 0 and 2 have probability 0
    u = np.array([1e-300, 0.25, np.nextafter(0.25, 1), 1.0])
    assert inverse_cdf(np.tile(cdf, (4, 1)), u).tolist() == [1, 1, 3, 3]
    # rounding left the total below u = 1: the index stays in range
    assert inverse_cdf(np.array([[0.5, 0.9999999]]), np.array([1.0])).tolist() == [1]


def test_inverse_cdf_gives_numpy_and_torch_the_same_draws() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=200)
    u = 1.0 - rng.random(200)
    from_numpy = inverse_cdf(probs.cumsum(-1), u)
    from_torch = inverse_cdf(torch.tensor(probs).cumsum(-1), torch.tensor(u))
    assert from_torch.tolist() == from_numpy.tolist()
