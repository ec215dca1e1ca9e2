import numpy as np
import pytest

from fashionae.baselines import compute_baselines
from fashionae.data import make_splits
from fashionae.errors import UserError


def test_baselines_match_a_direct_computation(tiny):
    splits = make_splits(tiny, "holdout", train_subset=800, eval_subset=300)
    b = compute_baselines(splits, logreg_max_iter=100)
    pca_test = {r["k"]: r["test_mse"] for r in b["pca"]}
    train = splits.train_x.reshape(800, -1).double().numpy() / 255
    test = splits.test_x.reshape(len(splits.test_x), -1).double().numpy() / 255
    # PCA by hand: the top-k right singular vectors of the centred training data
    mean = train.mean(0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    for k in (16, 64):
        w = vt[:k]
        direct = np.mean(((test - mean) @ w.T @ w + mean - test) ** 2)
        assert abs(pca_test[k] - direct) < 1e-5
    assert abs(b["mean_image"]["test_mse"] - np.mean((test - mean) ** 2)) < 1e-6
    assert [r["k"] for r in b["pca"]] == [16, 32, 64, 128, 256, 512, 784]
    errors = [r["test_mse"] for r in b["pca"]]
    assert errors == sorted(errors, reverse=True)
    assert b["logistic_regression"]["test_acc"] > 0.5  # the synthetic classes are separable


def test_a_single_class_is_refused_before_any_fit(tiny):
    splits = make_splits(tiny, train_subset=1)
    with pytest.raises(UserError, match=r"^the baselines' training set \(1 images\) holds a single class; a classifier "
                                        r"needs two at least: use a larger --train-subset$"):
        compute_baselines(splits)
