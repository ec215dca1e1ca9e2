"""Short trainings on a subset of the real Fashion-MNIST: numbers a user can check against
known figures (a minute or two each on 2 cores; `make test-all` runs them)."""

import pytest
import torch

from fashionae.data import make_splits
from fashionae.models import ModelConfig
from fashionae.runs import RunConfig, execute
from fashionae.training import TrainConfig
from helpers import ON_DEVICE, QUIET

pytestmark = pytest.mark.slow

SUBSET = dict(train_subset=6000, eval_subset=2000, train_eval_subset=1000, batch_size=50, **ON_DEVICE)


@pytest.fixture(scope="module")
def autoencoder(real, tmp_path_factory):
    out = tmp_path_factory.mktemp("real") / "ae"
    summary = execute(RunConfig(model=ModelConfig(latent=64, dropout=0.0),
                                train=TrainConfig(epochs=2, **SUBSET)), out, data=real, **QUIET)
    return out, summary


def test_autoencoder_beats_the_mean_image(real, autoencoder):
    """The validation MSE of a short training is well below predicting the mean training image
    (about 0.087 on Fashion-MNIST): the model learned the images, not their average."""
    _, summary = autoencoder
    splits = make_splits(real, "holdout", SUBSET["train_subset"], SUBSET["eval_subset"])
    mean = splits.train_x.double().div(255).mean(0)
    mean_image_mse = ((splits.val_x.double().div(255) - mean) ** 2).mean().item()
    assert 0.06 < mean_image_mse < 0.11  # the real data, as expected
    assert summary["val_loss"] < 0.5 * mean_image_mse
    assert summary["test_loss"] < 0.5 * mean_image_mse


def clf(real, ae, strategy, out, epochs=1, **kw):
    return execute(RunConfig(model=ModelConfig(task="classifier", dropout=0.0), strategy=strategy,
                             encoder_run=str(ae), train=TrainConfig(epochs=epochs, **SUBSET, **kw)),
                   out, data=real, **QUIET)


def test_trained_encoder_beats_a_random_one(real, autoencoder, tmp_path):
    """The same frozen layers and linear head: with the autoencoder's weights, and with random
    ones (the control). Training the encoder to reconstruct must be worth several points."""
    ae, _ = autoencoder
    frozen = clf(real, ae, "frozen", tmp_path / "frozen")
    control = clf(real, ae, "random-frozen", tmp_path / "random")
    assert frozen["test_acc"] > control["test_acc"] + 0.05


def test_finetuned_classifier_is_above_80_percent(real, autoencoder, tmp_path):
    ae, _ = autoencoder
    # 3 one-cycle epochs of 6,000 images (2 plain epochs at 1e-3 reach only about 75 %)
    s = clf(real, ae, "finetune", tmp_path / "ft", epochs=3, lr=3e-3, schedule="onecycle")
    assert s["test_acc"] > 0.80 and s["val_acc"] > 0.80
    # the confusion matrix's rows are the test set's classes
    cm = torch.tensor(s["confusion_matrix"])
    assert cm.sum().item() == SUBSET["eval_subset"]
    assert torch.equal(cm.sum(1), torch.bincount(real.test_labels[:SUBSET["eval_subset"]], minlength=10))
