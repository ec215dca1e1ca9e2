"""The verdict rules: t-intervals over seeds, thresholds, leanings, and each claim of the study."""

import math

import pytest

from fashionae.claims import MIN_SEEDS, THRESHOLDS, assess_claims, interval, t_quantile, test as verdict

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot"]


def stat(values):
    values = list(values)
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return {"mean": mean, "std": std, "values": values}


def test_t_interval():
    assert t_quantile(2) == pytest.approx(4.3027, abs=1e-4)  # 3 seeds
    assert t_quantile(9) == pytest.approx(2.2622, abs=1e-4)  # 10 seeds
    low, high = interval([1.0, 2.0, 3.0])[0]
    assert (low, high) == pytest.approx((2 - 4.3027 / math.sqrt(3), 2 + 4.3027 / math.sqrt(3)), abs=1e-4)
    assert interval([1.0]) == (None, "one seed: no spread to measure")


@pytest.mark.parametrize("values, threshold, above, expected", [
    # one or two seeds never decide, however clear; the leaning says where the mean falls
    ([0.5], 0.1, True, ("inconclusive", "supports")),
    ([0.50, 0.51], 0.1, True, ("inconclusive", "supports")),
    ([0.05], 0.1, True, ("inconclusive", "contradicts")),
    ([0.1], 0.1, True, ("inconclusive", "neither")),
    # three seeds: the whole interval must clear the threshold
    ([0.50, 0.51, 0.52], 0.1, True, ("confirmed", "supports")),
    ([0.01, 0.02, 0.03], 0.1, True, ("refuted", "contradicts")),
    ([0.0, 0.2, 0.4], 0.1, True, ("inconclusive", "supports")),        # mean 0.2, interval wide
    ([0.1040, 0.1045, 0.1050], 0.1, True, ("confirmed", "supports")),  # just above, tight
    ([0.101, 0.102, 0.103], 0.1, True, ("inconclusive", "supports")),  # above, but t(2) = 4.3 is wide
    ([0.0950, 0.0955, 0.0960], 0.1, True, ("refuted", "contradicts")),  # just below, tight
    ([0.099, 0.100, 0.102], 0.1, True, ("inconclusive", "supports")),  # straddles it
    ([0.01, 0.02, 0.03], 0.1, False, ("confirmed", "supports")),       # "below" claims mirror
    ([0.50, 0.51, 0.52], 0.1, False, ("refuted", "contradicts")),
])
def test_verdict_rule(values, threshold, above, expected):
    assert verdict(values, threshold, above) == expected


def test_min_seeds_is_three():
    assert MIN_SEEDS == 3


def ae(name, mse, rise=(0.0,), best_epoch=3, epochs=3):
    arch = "conv" if name == "conv" else "linear"
    return {"name": name, "arch": arch, "latent": None if arch == "conv" else int(name.split("-")[1]),
            "encoder_type": "paper", "seeds": list(range(len(mse))), "test_mse": stat(mse),
            "val_rise_after_best": stat(rise), "best_epoch": stat([best_epoch] * len(mse)), "epochs": epochs,
            "parameters": 1000, "mflops_per_image": 1.0, "seconds_per_epoch": stat([1.0] * len(mse))}


def confusion(shirt_acc=0.6, shirt_taken_for="T-shirt/top", n=100):
    cm = [[n if i == j else 0 for j in range(10)] for i in range(10)]
    s, t = CLASSES.index("Shirt"), CLASSES.index(shirt_taken_for)
    cm[s][s] = int(shirt_acc * n)
    cm[s][t] = n - cm[s][s]
    return cm


def clf(strategy, acc, shirt=(0.6,), partner="T-shirt/top"):
    per_class = [[1.0] * 10 for _ in acc]
    for seed, value in enumerate(shirt):
        per_class[seed][CLASSES.index("Shirt")] = value
        per_class[seed][0] = 0.9
    return {"strategy": strategy, "encoder": "linear-512", "seeds": list(range(len(acc))),
            "test_acc": stat(acc), "per_class_acc": [stat(v) for v in zip(*per_class)],
            "confusion_matrices": [confusion(s, partner) for s in shirt]}


def results(aes, clfs):
    return {"autoencoders": aes, "classifiers": clfs, "classes": CLASSES}


def by_claim(claims):
    return {c["claim"]: c for c in claims}


def test_one_seed_decides_nothing_and_every_claim_has_its_fields():
    r = results([ae("linear-64", [0.020]), ae("linear-512", [0.010]), ae("linear-1024", [0.0098]),
                 ae("conv", [0.009])],
                [clf("frozen", [0.85]), clf("finetune", [0.91]), clf("scratch", [0.90])])
    claims = assess_claims(r)
    assert len(claims) == 8
    for c in claims:
        assert c["verdict"] not in ("confirmed", "refuted")
        assert {"effect", "ci95", "threshold", "seeds", "verdict", "leaning"} <= c.keys()
        assert c["ci95"] is not None or c["ci_reason"]
    c = by_claim(claims)
    assert c["l_size 64 is too small"]["leaning"] == "supports"
    assert c["l_size 64 is too small"]["effect"] == pytest.approx(1.0)  # 100 % worse than 512


def test_three_seeds_reach_verdicts():
    r = results([ae("linear-64", [0.020, 0.021, 0.022], rise=(0.12, 0.13, 0.14), best_epoch=10, epochs=60),
                 ae("linear-512", [0.0100, 0.0101, 0.0102]), ae("linear-1024", [0.0080, 0.0081, 0.0082]),
                 ae("conv", [0.0064, 0.0065, 0.0066])],
                [clf("frozen", [0.86, 0.865, 0.87], shirt=(0.6, 0.6, 0.6)),
                 clf("finetune", [0.910, 0.912, 0.914], shirt=(0.6, 0.61, 0.62)),
                 clf("scratch", [0.911, 0.913, 0.915])])
    c = by_claim(assess_claims(r))
    assert c["l_size 64 is too small"]["verdict"] == "confirmed"
    assert c["l_size 64 is too small"]["overfits"] is True
    assert c["l_size 1024 adds little over 512"]["verdict"] == "refuted"  # a 20 % gain is not "little"
    assert c["l_size 512 balances quality and cost"]["verdict"] == "refuted"
    conv = c["the fully convolutional autoencoder is slightly better than l_size 512"]
    assert conv["verdict"] == "refuted"  # 35 % better: better, but not slightly
    assert [p["verdict"] for p in conv["parts"]] == ["confirmed", "refuted"]
    assert c["fine-tuning beats the frozen encoder by a wide margin"]["verdict"] == "confirmed"
    assert c["fine-tuning beats training from scratch"]["verdict"] == "refuted"  # scratch ahead by 0.1
    assert c["training from scratch is competitive with fine-tuning"]["verdict"] == "confirmed"
    assert c["Shirt is the class most confused (with T-shirt/top)"]["verdict"] == "confirmed"


def test_small_gains_and_a_different_confusion():
    r = results([ae("linear-512", [0.0100, 0.0101, 0.0102]), ae("linear-1024", [0.0097, 0.0098, 0.0099]),
                 ae("conv", [0.0095, 0.0096, 0.0097])],
                [clf("finetune", [0.91, 0.91, 0.91], shirt=(0.6, 0.6, 0.6), partner="Pullover")])
    c = by_claim(assess_claims(r))
    assert c["l_size 1024 adds little over 512"]["verdict"] == "confirmed"  # 3 % gain
    assert c["the fully convolutional autoencoder is slightly better than l_size 512"]["verdict"] == "confirmed"
    assert c["l_size 64 is too small"]["verdict"] == "not tested"
    assert c["l_size 64 is too small"]["leaning"] is None
    shirt = c["Shirt is the class most confused (with T-shirt/top)"]
    assert shirt["verdict"] == "refuted" and [p["verdict"] for p in shirt["parts"]] == ["confirmed", "refuted"]


def test_every_threshold_is_documented():
    from pathlib import Path
    doc = (Path(__file__).parent.parent / "docs" / "claims.md").read_text()
    for name, (value, unit, meaning) in THRESHOLDS.items():
        assert f"| {name} |" in doc, name
