import math

import pytest

from fashionae.models import ModelConfig
from fashionae.results import model_cost, stats


def test_model_cost_counts_parameters_and_flops_per_image():
    """The paper's linear autoencoder at l_size 512, counted by hand: multiply-adds per image of
    conv 1 -> 32 (28x28x32x9), conv 32 -> 64 (14x14x64x288), Linear 3136 -> 512 and back, and the
    transposed convolutions 64 -> 32 (14x14x32x64) and 32 -> 1 (28x28x32), two FLOPs each."""
    macs = 28 * 28 * 32 * 9 + 14 * 14 * 64 * 288 + 2 * 3136 * 512 + 14 * 14 * 32 * 64 + 28 * 28 * 32
    params = (32 * 9 + 32) + (64 * 288 + 64) + (3136 * 512 + 512) + (512 * 3136 + 3136) + (64 * 32 * 4 + 32) + (32 * 4 + 1)
    assert model_cost(ModelConfig(latent=512)) == {"parameters": params, "latent_size": 512,
                                                   "mflops_per_image": pytest.approx(2 * macs / 1e6, rel=1e-9)}
    assert model_cost(ModelConfig(arch="conv"))["latent_size"] == 64 * 7 * 7


def test_stats_over_seeds():
    assert stats([0.1]) == {"mean": 0.1, "std": 0.0, "values": [0.1]}  # one seed: no spread to show
    assert stats([1.0, 3.0]) == {"mean": 2.0, "std": pytest.approx(2 ** 0.5), "values": [1.0, 3.0]}
    diverged = stats([1.0, math.nan])  # a diverged seed: no mean to give
    assert math.isnan(diverged["mean"]) and math.isnan(diverged["std"]) and diverged["values"][0] == 1.0
