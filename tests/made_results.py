"""results.json as ``collect_results`` writes it, built by hand: every branch of the report's
text (Fashion-MNIST or not, a diverged run, a tie, a control, an ablation), so that the report's
and the summary's tests call their functions themselves."""


def stats(*values):
    """A figure over seeds, as results.py records it."""
    from fashionae.results import stats as over_seeds
    return over_seeds(list(values))


def autoencoder(name, latent, test, **kw):
    ae = {"name": name, "arch": "conv" if latent is None else "linear", "latent": latent, "epochs": 2, "train_eval_mse": stats(0.0301, 0.0305),
          "train_mse": stats(0.0402, 0.0406), "val_mse": stats(0.0251, 0.0253), "test_mse": stats(*test),
          "best_epoch": {"mean": 1.5}, "parameters": 3_300_000, "seconds": {"mean": 12.4}, "seeds": list(range(len(test)))}
    return {**ae, **kw}


def classifier(name, strategy, test, encoder="linear-512", **kw):
    c = {"name": name, "strategy": strategy, "encoder": encoder, "paper_head": False, "epochs": 3,
         "train_eval_acc": stats(0.801, 0.803), "train_acc": stats(0.7, 0.71), "val_acc": stats(0.79, 0.8),
         "test_acc": stats(*test), "seconds": {"mean": 7.6}, "seeds": list(range(len(test))),
         "per_class_acc": [stats(test[0] - i / 50, test[-1] - i / 40) for i in range(10)],
         "most_confused": {"true": "Shirt", "predicted": "T-shirt/top", "count": 41}}
    return {**c, **kw}


def claim(name, verdict, parts, derived=False, seeds=3):
    return {"claim": name, "verdict": verdict, "seeds": seeds, "leaning": "supports", "evidence": f"{name}: evidence",
            "derived": derived, "effect": parts[0]["effect"] if parts else None, "ci": None, "unit": "points",
            "ci_reason": "nothing measured" if not parts else None, "parts": parts}


def part(name, effect, ci, unit="relative", verdict="confirmed", intervals=3, leaning=None):
    return {"part": name, "verdict": verdict, "leaning": leaning, "effect": effect, "ci": ci, "unit": unit, "ci_reason": None,
            "threshold_meaning": f"{name}: threshold", "intervals": intervals}


def ablation(change, effect, ci, verdict=None, seeds=3, variant="linear-64", reason=None):
    figure = {"baseline": stats(0.02, 0.021), "variant": stats(0.019, 0.0195), "effect": effect, "ci": ci,
              "ci_reason": reason, **({"verdict": verdict} if verdict else {})}
    differs = {"model.latent": [512, 64]} if variant == "linear-64" else {"model.dropout": [0.2, 0.0],
                                                                          "train.epochs": [2, 4]}
    return {"change": change, "baseline": "linear-512", "variant": variant, "seeds": seeds, "differs": differs,
            "val_mse": figure, "test_mse": {**figure, "verdict": None}}


def results(**kw):
    r = {"study": "paper", "profile": "quick", "seeds": 2, "val": "holdout", "dataset": "fashion-mnist",
         "reference": {"report": {}}, "classes": None,
         "autoencoders": [autoencoder("linear-64", 64, (0.0231, 0.0235)), autoencoder("linear-512", 512, (0.0191, 0.0193)),
                          autoencoder("linear-1024", 1024, (0.0190, 0.0192)),
                          autoencoder("conv", None, (0.0101, 0.0103), explore={"latent": 3136, "knn_acc": 0.8123,
                                                                                "linear_probe_acc": 0.8345, "fit_images": 5000})],
         "classifiers": [classifier("frozen", "frozen", (0.75, 0.76)), classifier("finetune", "finetune", (0.86, 0.87)),
                         classifier("random-frozen", "random-frozen", (0.41, 0.43), paper_head=True),
                         classifier("frozen-1024", "frozen", (0.77, 0.78), encoder="linear-1024")],
         "mean_image": {"val_mse": 0.0951, "test_mse": 0.0949},  # (as collect_results copies the baselines')
         "baselines": {"train_size": 8000, "pca": [{"k": 64, "val_mse": 0.0103, "test_mse": 0.0105},
                                                   {"k": 512, "val_mse": 0.0007, "test_mse": 0.00072}],
                       "mean_image": {"val_mse": 0.0951, "test_mse": 0.0949},
                       "logistic_regression": {"converged": False, "max_iter": 200, "val_acc": 0.8412, "test_acc": 0.8377}},
         "claims": [claim("64 is too small", "inconclusive", [part("worse by 10 %", 0.2161, [0.1, 0.35])]),
                    claim("conv is better", "confirmed", [part("better", -0.31, [-0.4, -0.2]), part("much better", -0.31, [-0.4, -0.2], verdict="inconclusive", leaning="contradicts")]),
                    claim("512 balances", "inconclusive", [part("see above", 0.01, [-0.1, 0.1], intervals=9)],
                          derived=True),
                    claim("nothing here", "not tested", [])],
         "ablation": [],
         "targets": [{"target": "val MSE <= 0.02", "reached": True, "epoch": 2, "seconds_into_study": 31.4, "best": 0.0191},
                     {"target": "val acc >= 0.9", "reached": False, "epoch": None, "seconds_into_study": None, "best": 0.8}]}
    return {**r, **kw}


def other_results():
    """Not Fashion-MNIST; validated on the test set; 3 seeds; an ablation; a diverged run; a tie."""
    nan = float("nan")
    return results(
        reference=None, dataset="digits", seeds=3, val="test", profile="full",
        classes=["zero", "one"],
        autoencoders=[autoencoder("linear-64", 64, (0.0231, 0.0235, 0.0233)),
                      autoencoder("wide", 128, (nan, 0.02, 0.021), epochs=4),
                      autoencoder("linear-512", 512, (0.0191, 0.0193, 0.0192))],
        classifiers=[classifier("frozen", "frozen", (0.86, 0.87, 0.865), encoder=None,
                                per_class_acc=[stats(0.9, 0.91, 0.92), stats(0.8, 0.82, 0.81)],
                                most_confused={"true": "one", "predicted": "zero", "count": 0}),
                     classifier("scratch", "scratch", (0.87, 0.86, 0.865),
                                per_class_acc=[stats(0.7, 0.71, 0.72), stats(0.6, 0.62, 0.61)],
                                most_confused={"true": "one", "predicted": "zero", "count": 3})],
        baselines={"train_size": 1200, "pca": [{"k": 64, "val_mse": 0.0103, "test_mse": 0.0105}],
                   "mean_image": {"val_mse": 0.0951, "test_mse": 0.0949},
                   "logistic_regression": {"converged": True, "max_iter": 100, "val_acc": 0.9412, "test_acc": 0.9377}},
        claims=[claim("a confirmed one", "confirmed", [part("above", 0.3, [0.2, 0.4])]),
                claim("a refuted one", "refuted", [part("below", -0.05, [-0.07, -0.03], unit="points", verdict="refuted")]),
                claim("another confirmed", "confirmed", [part("above", 0.25, [0.1, 0.4])]),
                claim("an open one", "inconclusive", [part("either", 0.01, [-0.1, 0.12], verdict="inconclusive")]),
                claim("restates two", "confirmed", [part("see above", 0.3, [0.2, 0.4])], derived=True),
                claim("untested", "not tested", [])],
        ablation=[ablation("dropout after pooling", -0.12, [-0.2, -0.04], verdict="lower"),
                  ablation("no dropout", 0.08, [0.02, 0.15], verdict="higher", variant="wide"),
                  ablation("k3 decoder", 0.01, [-0.05, 0.07]),
                  ablation("diverging", nan, None, reason="a seed's figure is not a number: a run diverged")],
        targets=[])

