"""Tests of rlbook.checkpoint: a saved and reloaded policy acts exactly like the original, the
file is readable with ``weights_only=True``, and anything else gets a clear error."""

import pickle

import pytest
import torch

from rlbook.checkpoint import CheckpointError, load_policy, save_policy
from rlbook.policies import CategoricalPolicy, GaussianPolicy, ValueNet, mlp


def _trained_like(policy: torch.nn.Module) -> torch.nn.Module:
    # perturb every parameter, so that a reload from the constructor's defaults would differ
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(torch.randn_like(p))
    return policy


@pytest.mark.parametrize(
    "make",
    [
        lambda: CategoricalPolicy(4, 2, hidden=(16,)),
        lambda: CategoricalPolicy(7, 3, hidden=(8, 5)),
        lambda: CategoricalPolicy(3, 2, hidden=()),
        lambda: GaussianPolicy(4, 1, hidden=(16,)),
        lambda: GaussianPolicy(5, 3, hidden=(6, 6), log_std_init=0.3),
    ],
)
def test_round_trip_gives_the_same_distribution(make, tmp_path) -> None:
    torch.manual_seed(0)
    policy = _trained_like(make())
    path = save_policy(policy, tmp_path / "sub" / "policy.pt")
    loaded = load_policy(path)
    assert type(loaded) is type(policy)
    assert loaded is not policy
    obs = torch.randn(64, policy.obs_dim) * 3
    d0, d1 = policy.dist(obs), loaded.dist(obs)
    actions = d0.sample()
    torch.testing.assert_close(
        d1.log_prob(actions), d0.log_prob(actions), rtol=0, atol=0
    )
    torch.testing.assert_close(d1.mode, d0.mode, rtol=0, atol=0)
    torch.testing.assert_close(d1.entropy(), d0.entropy(), rtol=0, atol=0)
    # the same seed gives the same sampled actions
    torch.manual_seed(1)
    a0 = policy.dist(obs).sample()
    torch.manual_seed(1)
    a1 = loaded.dist(obs).sample()
    torch.testing.assert_close(a1, a0, rtol=0, atol=0)


def test_round_trip_of_a_value_net(tmp_path) -> None:
    torch.manual_seed(0)
    value_fn = _trained_like(ValueNet(4, hidden=(8,)))
    loaded = load_policy(save_policy(value_fn, tmp_path / "v.pt"))
    obs = torch.randn(10, 4)
    torch.testing.assert_close(loaded(obs), value_fn(obs), rtol=0, atol=0)


def test_file_is_plain_data_readable_with_weights_only(tmp_path) -> None:
    policy = CategoricalPolicy(4, 2, hidden=(8,))
    path = save_policy(policy, tmp_path / "p.pt")
    data = torch.load(path, weights_only=True)
    assert data["class"] == "CategoricalPolicy"
    assert data["kwargs"] == {"obs_dim": 4, "n_actions": 2, "hidden": [8]}
    assert set(data["state_dict"]) == set(policy.state_dict())


def test_loaded_policy_is_independent_of_the_original(tmp_path) -> None:
    policy = CategoricalPolicy(4, 2, hidden=(8,))
    loaded = load_policy(save_policy(policy, tmp_path / "p.pt"))
    with torch.no_grad():
        next(policy.parameters()).add_(1.0)
    assert not torch.equal(next(policy.parameters()), next(loaded.parameters()))


def test_missing_file_is_named(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_policy(tmp_path / "nope.pt")


def test_a_text_file_is_rejected(tmp_path) -> None:
    path = tmp_path / "notes.pt"
    path.write_text("these are not weights")
    with pytest.raises(CheckpointError, match="not a policy checkpoint"):
        load_policy(path)


def test_a_bare_state_dict_is_rejected(tmp_path) -> None:
    path = tmp_path / "state.pt"
    torch.save(CategoricalPolicy(4, 2).state_dict(), path)
    with pytest.raises(CheckpointError, match="format"):
        load_policy(path)


def test_a_pickled_module_is_refused_without_unpickling_it(tmp_path) -> None:
    # a whole module needs a full unpickle, which can run arbitrary code; weights_only refuses it
    path = tmp_path / "module.pt"
    torch.save(CategoricalPolicy(4, 2), path)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_policy(path)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_raw_pickle_is_refused(tmp_path) -> None:
    path = tmp_path / "raw.pt"
    path.write_bytes(pickle.dumps({"format": "rlbook-policy", "fn": print}))
    with pytest.raises(CheckpointError):
        load_policy(path)


def test_an_unknown_class_and_wrong_weights_are_named(tmp_path) -> None:
    path = save_policy(CategoricalPolicy(4, 2, hidden=(8,)), tmp_path / "p.pt")
    data = torch.load(path, weights_only=True)
    torch.save({**data, "class": "os.system"}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="os.system"):
        load_policy(tmp_path / "evil.pt")
    torch.save(
        {**data, "kwargs": {**data["kwargs"], "hidden": [9]}}, tmp_path / "bad.pt"
    )
    with pytest.raises(CheckpointError, match="CategoricalPolicy"):
        load_policy(tmp_path / "bad.pt")


def test_only_the_books_networks_can_be_saved(tmp_path) -> None:
    with pytest.raises(TypeError, match="policy"):
        save_policy(torch.nn.Linear(3, 2), tmp_path / "x.pt")
    policy = CategoricalPolicy(4, 2, hidden=(8,))
    policy.net = mlp([4, 8, 2], activation=torch.nn.ReLU)
    with pytest.raises(ValueError, match="ReLU"):
        save_policy(policy, tmp_path / "relu.pt")
