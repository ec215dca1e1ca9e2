"""The numbers a reproduction is compared with: the source document's tables ("report"), the
author's published code's result files ("author_code"), and reference points from outside the
study ("external"). docs/study.md says where each comes from.

The report's classifier numbers are for the l_size-512 encoder, the author's code's for the
l_size-1024 encoder with the Sigmoid head: each is set beside the classifier stage on its own
encoder only (``for_classifier``)."""

import json
from pathlib import Path

REFERENCE = {
    "report": {  # the source document's Table II and classification figures
        "autoencoders": {
            "linear-64": {"train_mse": 0.0085, "val_mse": 0.0087},
            "linear-512": {"train_mse": 0.0072, "val_mse": 0.0074},
            "linear-1024": {"train_mse": 0.0074, "val_mse": 0.0076},
            "conv": {"note": "slightly better than 512"},
        },
        "classifiers": {
            "frozen": {"train_acc": 0.89, "val_acc": 0.87},
            "finetune": {"train_acc": 0.931, "val_acc": 0.902},
            "scratch": {"train_acc": 0.928, "val_acc": 0.89},
        },
    },
    "author_code": {  # the author's result files: 60 epochs, validation = test set
        "autoencoders": {
            "linear-64": {"val_mse": 0.0222, "best_val_mse": 0.0196},
            "linear-512": {"val_mse": 0.00895, "best_val_mse": 0.00857},
            "linear-1024": {"val_mse": 0.00808, "best_val_mse": 0.00769},
            "conv": {"val_mse": 0.00577},
        },
        "classifiers": {  # on the l_size-1024 encoder, with the Sigmoid head
            "frozen": {"train_eval_acc": 0.880, "val_acc": 0.869},  # train: re-measured in eval mode
            "finetune": {"train_eval_acc": 0.969, "val_acc": 0.923},
            "scratch": {"train_eval_acc": 0.972, "val_acc": 0.924},
        },
    },
    "external": {
        "pca_test_mse": {"16": 0.0205, "32": 0.0151, "64": 0.0104, "128": 0.0063, "256": 0.0030,
                         "512": 0.0006},
        "mean_image_test_mse": 0.0866,
        "pixel_logistic_regression_acc": 0.84,
        "two_conv_cnn_acc": 0.92,
        "two_conv_cnn_flip_acc": 0.939,
        "resnet18_acc": 0.949,
        "test_sampling_error": 0.003,
    },
}


def reference_model(ae: dict | None) -> str | None:
    """The name the references give the autoencoder ``ae`` (a results.json record), found by
    what it is, not by what a study calls it: the paper's encoder and the author's k2 decoder,
    linear at a latent size ("linear-512") or conv; None for any other model."""
    if ae is None or ae.get("encoder_type", "paper") != "paper" or ae.get("decoder", "k2") != "k2":
        return None
    return "conv" if ae["arch"] == "conv" else f"linear-{ae['latent']}"


def for_classifier(source: str, encoder: dict | None) -> dict:
    """The reference classifier figures of ``source`` that apply to a stage on the autoencoder
    ``encoder`` (its results.json record)."""
    return REFERENCE[source]["classifiers"] if reference_model(encoder) == CLASSIFIER_ENCODER[source] else {}


CLASSIFIER_ENCODER = {"report": "linear-512", "author_code": "linear-1024"}


def author_curves() -> dict:
    """The author's per-epoch curves (see the file's "source")."""
    return json.loads((Path(__file__).parent / "author_curves.json").read_text())
