"""The study's conclusions, each checked against our numbers.

A difference counts only when it exceeds the noise: twice the standard error over seeds,
and never less than a floor (3 % of the MSE; 0.5 percentage points of accuracy, about the
sampling error of comparing two classifiers on the same 10,000 test images).
"""

from __future__ import annotations

import math

MSE_FLOOR = 0.03    # relative
ACC_FLOOR = 0.005   # absolute


def _noise(a: dict, b: dict, floor: float) -> float:
    na, nb = len(a["values"]), len(b["values"])
    se = math.sqrt(a["std"] ** 2 / na + b["std"] ** 2 / nb) if na > 1 and nb > 1 else 0.0
    return max(2 * se, floor)


def _fmt(s: dict, digits: int = 4, pct: bool = False) -> str:
    scale = 100 if pct else 1
    text = f"{s['mean'] * scale:.{digits}f}"
    if len(s["values"]) > 1:
        text += f" ± {s['std'] * scale:.{digits}f}"
    return text + ("%" if pct else "")


def _find_ae(results: dict, arch: str, latent: int | None = None) -> dict | None:
    for ae in results["autoencoders"]:
        if ae["arch"] == arch and (latent is None or ae["latent"] == latent) \
                and ae.get("encoder_type", "paper") == "paper":
            return ae
    return None


def _find_clf(results: dict, strategy: str) -> dict | None:
    return next((c for c in results["classifiers"] if c["strategy"] == strategy), None)


def _claim(text: str, verdict: str, evidence: str) -> dict:
    return {"claim": text, "verdict": verdict, "evidence": evidence}


def _lower_mse(text: str, better: tuple[str, dict] | None, worse: tuple[str, dict] | None,
               note: str, missing: str) -> dict:
    """The claim "``better`` has a lower test MSE than ``worse``", given (label, entry) pairs."""
    if not (better and worse):
        return _claim(text, "not tested", f"the study lacks the {missing} autoencoder")
    a, b = better[1]["test_mse"], worse[1]["test_mse"]
    noise = _noise(a, b, MSE_FLOOR * b["mean"])
    verdict = ("confirmed" if b["mean"] - a["mean"] > noise else
               "refuted" if a["mean"] - b["mean"] > noise else "inconclusive")
    return _claim(text, verdict, f"MSE {better[0]}: {_fmt(a)} vs {worse[0]}: {_fmt(b)}{note}")


def assess_claims(results: dict) -> list[dict]:
    claims = []
    seeds = len(results["autoencoders"][0]["seeds"]) if results["autoencoders"] else 0
    note = f" (test set, {seeds} seed{'s' if seeds != 1 else ''})"
    ae64, ae512, ae1024 = (_find_ae(results, "linear", k) for k in (64, 512, 1024))
    conv = _find_ae(results, "conv")


    def pair(label: str, entry: dict | None):
        return (label, entry) if entry else None

    claims.append(_lower_mse("l_size 64 is too small", pair("512", ae512), pair("64", ae64), note,
                             "linear 64 or 512"))

    text = "l_size 512 balances quality and cost: 1024 adds little"
    if ae512 and ae1024:
        a, b = ae512["test_mse"], ae1024["test_mse"]
        gain = (a["mean"] - b["mean"]) / a["mean"]
        noise = _noise(a, b, MSE_FLOOR * a["mean"])
        verdict = "refuted" if a["mean"] - b["mean"] > max(noise, 0.10 * a["mean"]) else "confirmed"
        claims.append(_claim(text, verdict, f"MSE 512: {_fmt(a)} vs 1024: {_fmt(b)}, 1024 is "
                             f"{100 * gain:+.1f}% better (little = under 10%){note}"))
    else:
        claims.append(_claim(text, "not tested", "the study lacks the linear 512 or 1024 autoencoder"))

    claims.append(_lower_mse("the fully convolutional autoencoder is slightly better than l_size 512",
                             pair("conv", conv), pair("512", ae512), note, "conv or linear 512"))

    text = "fine-tuning beats frozen and scratch"
    ft, fr, sc = (_find_clf(results, s) for s in ("finetune", "frozen", "scratch"))
    if ft and fr and sc:
        f = ft["test_acc"]
        margins = [(f["mean"] - o["test_acc"]["mean"], _noise(f, o["test_acc"], ACC_FLOOR)) for o in (fr, sc)]
        verdict = ("confirmed" if all(d > n for d, n in margins) else
                   "refuted" if any(d < -n for d, n in margins) else "inconclusive")
        claims.append(_claim(text, verdict, f"test accuracy finetune {_fmt(f, 2, True)}, frozen "
                             f"{_fmt(fr['test_acc'], 2, True)}, scratch {_fmt(sc['test_acc'], 2, True)}"))
    else:
        claims.append(_claim(text, "not tested", "the study lacks one of the three strategies"))

    text = "Shirt is the class most confused (with T-shirt/top)"
    clf = ft or sc or (results["classifiers"][0] if results["classifiers"] else None)
    if clf:
        mc = clf["most_confused"]
        pair = {mc["true"], mc["predicted"]}
        verdict = "confirmed" if pair == {"Shirt", "T-shirt/top"} else "refuted"
        claims.append(_claim(text, verdict, f"{clf['strategy']}: most errors are {mc['true']} taken "
                             f"for {mc['predicted']} ({mc['count']} test images, seed 0)"))
    else:
        claims.append(_claim(text, "not tested", "the study trains no classifier"))
    return claims
