"""Tests of rlbook.policies: distributions with the right shapes and the right numbers.

Probabilities are compared with a softmax of the network's logits, Gaussian log-densities with
the closed form summed over action dimensions, sample frequencies with probabilities (within
4 standard errors), and entropies with -E[log pi].
"""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from rlbook.policies import (
    CategoricalPolicy,
    GaussianPolicy,
    ValueNet,
    check_policy_fits,
    make_policy,
    mlp,
)

BOX_1D = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
OBS_SPACE = gym.spaces.Box(-np.inf, np.inf, (4,), dtype=np.float32)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# ---------------------------------------------------------------------------------------------
# mlp
# ---------------------------------------------------------------------------------------------


def test_mlp_layers_and_activations() -> None:
    net = mlp([3, 8, 5, 2])
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (3, 8),
        (8, 5),
        (5, 2),
    ]
    assert [type(m) for m in net] == [nn.Linear, nn.Tanh, nn.Linear, nn.Tanh, nn.Linear]
    assert net(torch.zeros(7, 3)).shape == (7, 2)


def test_mlp_output_activation_and_custom_activation() -> None:
    net = mlp([2, 4, 3], activation=nn.ReLU, output_activation=nn.Sigmoid)
    assert [type(m) for m in net] == [nn.Linear, nn.ReLU, nn.Linear, nn.Sigmoid]
    out = net(torch.randn(10, 2) * 100)
    assert torch.all((out >= 0) & (out <= 1))


def test_mlp_without_hidden_layers_is_linear() -> None:
    net = mlp([4, 2])
    x, y = torch.randn(4), torch.randn(4)
    torch.testing.assert_close(net(x + y) - net(y), net(x) - net(torch.zeros(4)))


@pytest.mark.parametrize("sizes", [[], [4], [4, 0], [4, -1, 2], [4, 2.5], (4, "8", 2)])
def test_mlp_rejects_bad_sizes(sizes) -> None:
    with pytest.raises((TypeError, ValueError), match="sizes"):
        mlp(sizes)


# ---------------------------------------------------------------------------------------------
# CategoricalPolicy
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [(), (5,), (3, 4)])
def test_categorical_dist_shapes_and_probabilities(batch) -> None:
    policy = CategoricalPolicy(4, 3, hidden=(16,))
    obs = torch.randn(*batch, 4)
    dist = policy.dist(obs)
    assert dist.batch_shape == batch
    assert dist.sample().shape == batch
    assert dist.probs.shape == (*batch, 3)
    torch.testing.assert_close(dist.probs.sum(-1), torch.ones(batch))
    torch.testing.assert_close(dist.probs, torch.softmax(policy(obs), dim=-1))
    actions = dist.sample()
    assert dist.log_prob(actions).shape == batch


def test_categorical_sample_frequencies_match_probabilities() -> None:
    policy = CategoricalPolicy(4, 3, hidden=(16,))
    obs = torch.randn(4)
    dist = policy.dist(obs)
    n = 40_000
    samples = dist.sample((n,))
    freq = torch.bincount(samples, minlength=3).double() / n
    probs = dist.probs.double().detach()
    se = (probs * (1 - probs) / n).sqrt()
    assert torch.all((freq - probs).abs() < 4 * se), (freq, probs)


def test_categorical_entropy_is_minus_expected_log_prob() -> None:
    policy = CategoricalPolicy(4, 5, hidden=(8,))
    dist = policy.dist(torch.randn(6, 4))
    actions = torch.arange(5)[:, None].expand(5, 6)
    expected = -(dist.probs.T * dist.log_prob(actions)).sum(0)
    torch.testing.assert_close(dist.entropy(), expected)


def test_categorical_log_probs_stay_finite_for_extreme_logits() -> None:
    # logits, not probabilities: log(softmax) would underflow to -inf here
    policy = CategoricalPolicy(2, 2, hidden=())
    with torch.no_grad():
        policy.net[0].weight.zero_()
        policy.net[0].bias.copy_(torch.tensor([1000.0, -1000.0]))
    dist = policy.dist(torch.zeros(2))
    assert dist.log_prob(torch.tensor(1)).item() == pytest.approx(-2000.0)
    assert dist.log_prob(torch.tensor(0)).item() == pytest.approx(0.0)


def test_categorical_log_prob_has_gradient_and_numpy_obs_are_accepted() -> None:
    policy = CategoricalPolicy(3, 2, hidden=(4,))
    obs = np.ones((2, 3), dtype=np.float64)
    log_probs = policy.dist(obs).log_prob(torch.tensor([0, 1]))
    log_probs.sum().backward()
    assert all(p.grad is not None for p in policy.parameters())


@pytest.mark.parametrize("n_actions", [1, 0, 2.0, "2"])
def test_categorical_rejects_bad_n_actions(n_actions) -> None:
    with pytest.raises((TypeError, ValueError), match="n_actions"):
        CategoricalPolicy(4, n_actions)


def test_categorical_accepts_the_action_count_of_a_discrete_space() -> None:
    # gymnasium's Discrete.n is a NumPy integer; a reader writes CategoricalPolicy(4, space.n)
    space = gym.spaces.Discrete(3)
    policy = CategoricalPolicy(4, space.n)
    assert policy.dist(torch.zeros(4)).probs.shape == (3,)
    check_policy_fits(policy, space)


@pytest.mark.parametrize("shape", [(5,), (2, 3), (3, 5)])
def test_bad_obs_last_dimension_names_obs(shape) -> None:
    for policy in (CategoricalPolicy(4, 2), GaussianPolicy(4, 2)):
        with pytest.raises(ValueError, match="obs"):
            policy.dist(torch.zeros(shape))
    with pytest.raises(ValueError, match="obs"):
        ValueNet(4)(torch.zeros(shape))


# ---------------------------------------------------------------------------------------------
# GaussianPolicy
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [(), (5,), (3, 4)])
def test_gaussian_dist_shapes(batch) -> None:
    policy = GaussianPolicy(4, 2, hidden=(16,))
    dist = policy.dist(torch.randn(*batch, 4))
    assert dist.batch_shape == batch
    assert dist.event_shape == (2,)
    actions = dist.sample()
    assert actions.shape == (*batch, 2)
    assert dist.log_prob(actions).shape == batch


def test_gaussian_log_prob_sums_the_closed_form_over_action_dimensions() -> None:
    policy = GaussianPolicy(3, 2, hidden=(8,), log_std_init=-0.3)
    obs = torch.randn(7, 3)
    actions = torch.randn(7, 2)
    mu = policy(obs).detach()
    sigma = math.exp(-0.3)
    closed_form = (
        -0.5 * ((actions - mu) / sigma) ** 2
        - math.log(sigma)
        - 0.5 * math.log(2 * math.pi)
    ).sum(-1)
    torch.testing.assert_close(policy.dist(obs).log_prob(actions).detach(), closed_form)


def test_gaussian_samples_have_the_policy_mean_and_std() -> None:
    policy = GaussianPolicy(3, 2, hidden=(8,), log_std_init=0.2)
    obs = torch.randn(3)
    n = 40_000
    samples = policy.dist(obs).sample((n,))
    mu = policy(obs).detach()
    sigma = math.exp(0.2)
    assert torch.all((samples.mean(0) - mu).abs() < 4 * sigma / math.sqrt(n))
    # the standard error of a sample std is about sigma / sqrt(2n)
    assert torch.all((samples.std(0) - sigma).abs() < 4 * sigma / math.sqrt(2 * n))


def test_gaussian_entropy_is_minus_expected_log_prob() -> None:
    policy = GaussianPolicy(3, 2, hidden=(8,))
    dist = policy.dist(torch.randn(3))
    samples = dist.sample((100_000,))
    log_probs = dist.log_prob(samples)
    se = log_probs.std() / math.sqrt(len(log_probs))
    assert abs(dist.entropy().item() + log_probs.mean().item()) < 4 * se


def test_gaussian_log_std_is_a_trained_state_independent_parameter() -> None:
    policy = GaussianPolicy(3, 2, log_std_init=-1.0)
    assert any(p is policy.log_std for p in policy.parameters())
    torch.testing.assert_close(policy.log_std.detach(), torch.full((2,), -1.0))
    dist = policy.dist(torch.randn(5, 3))
    torch.testing.assert_close(
        dist.base_dist.scale.detach(), torch.full((5, 2), math.exp(-1.0))
    )
    dist.log_prob(torch.zeros(5, 2)).sum().backward()
    assert policy.log_std.grad is not None and torch.all(policy.log_std.grad != 0)


def test_gaussian_mode_is_the_mean() -> None:
    policy = GaussianPolicy(3, 2)
    obs = torch.randn(4, 3)
    torch.testing.assert_close(policy.dist(obs).mode, policy(obs))


@pytest.mark.parametrize("act_dim", [0, -1, 1.0])
def test_gaussian_rejects_bad_act_dim(act_dim) -> None:
    with pytest.raises((TypeError, ValueError), match="act_dim"):
        GaussianPolicy(3, act_dim)


# ---------------------------------------------------------------------------------------------
# ValueNet
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [(), (5,), (3, 4)])
def test_value_net_maps_observations_to_scalars(batch) -> None:
    value_fn = ValueNet(4, hidden=(8,))
    obs = torch.randn(*batch, 4)
    values = value_fn(obs)
    assert values.shape == batch
    torch.testing.assert_close(values, value_fn.net(obs)[..., 0])


# ---------------------------------------------------------------------------------------------
# check_policy_fits and make_policy
# ---------------------------------------------------------------------------------------------


def test_matching_policies_fit() -> None:
    check_policy_fits(CategoricalPolicy(4, 3), gym.spaces.Discrete(3))
    check_policy_fits(GaussianPolicy(4, 2), BOX_1D)


def test_categorical_policy_on_a_box_says_to_use_a_gaussian_policy() -> None:
    with pytest.raises(TypeError, match="continuous") as info:
        check_policy_fits(CategoricalPolicy(4, 2), BOX_1D)
    assert "GaussianPolicy" in str(info.value)


def test_gaussian_policy_on_a_discrete_space_says_to_use_a_categorical_policy() -> None:
    with pytest.raises(TypeError, match="discrete") as info:
        check_policy_fits(GaussianPolicy(4, 2), gym.spaces.Discrete(2))
    assert "CategoricalPolicy" in str(info.value)


def test_wrong_number_of_actions_or_action_dimensions() -> None:
    with pytest.raises(ValueError, match="3 actions"):
        check_policy_fits(CategoricalPolicy(4, 3), gym.spaces.Discrete(2))
    with pytest.raises((TypeError, ValueError), match="act_dim"):
        check_policy_fits(GaussianPolicy(4, 3), BOX_1D)
    with pytest.raises((TypeError, ValueError), match="act_dim"):
        check_policy_fits(GaussianPolicy(4, 2), gym.spaces.Box(-1, 1, (2, 2)))


def test_unsupported_space_and_non_policy() -> None:
    with pytest.raises(TypeError, match="not supported"):
        check_policy_fits(CategoricalPolicy(4, 2), gym.spaces.MultiDiscrete([2, 2]))
    with pytest.raises(TypeError, match="dist"):
        check_policy_fits(nn.Linear(4, 2), gym.spaces.Discrete(2))


def test_make_policy_picks_the_natural_policy() -> None:
    policy = make_policy(OBS_SPACE, gym.spaces.Discrete(3), hidden=(8,))
    assert isinstance(policy, CategoricalPolicy)
    assert (policy.obs_dim, policy.n_actions) == (4, 3)
    assert isinstance(policy.n_actions, int)
    policy = make_policy(OBS_SPACE, BOX_1D, hidden=(8,))
    assert isinstance(policy, GaussianPolicy)
    assert (policy.obs_dim, policy.act_dim) == (4, 2)
    linears = [m for m in policy.net if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [8, 2]


def test_make_policy_rejects_unsupported_spaces() -> None:
    with pytest.raises(TypeError, match="observation_space"):
        make_policy(gym.spaces.Discrete(5), gym.spaces.Discrete(2))
    with pytest.raises(TypeError, match="observation_space"):
        make_policy(gym.spaces.Box(0, 1, (3, 3)), gym.spaces.Discrete(2))
    with pytest.raises(TypeError, match="action_space"):
        make_policy(OBS_SPACE, gym.spaces.Box(-1, 1, (2, 2)))
    with pytest.raises(TypeError, match="action_space"):
        make_policy(OBS_SPACE, gym.spaces.MultiBinary(3))
