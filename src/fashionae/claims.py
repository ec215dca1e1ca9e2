"""The study's conclusions, each tested against our numbers.

Every claim compares two figures seed by seed (paired: both sides of a comparison share the
study's seeds) and reduces them to one effect per seed: a relative difference of test MSE,
or a difference of test accuracy in percentage points. Each claim implies a threshold
(``THRESHOLDS``; docs/claims.md says why each value). A relative effect is a ratio of two
MSEs, so it is averaged and given its interval on the log scale (``LOG_SCALE``): its effect is
the geometric mean, and its interval never reaches below -100 % (a gain's, above +100 %).

The claims are judged together, so their intervals are simultaneous: with m intervals in a
report, each is the t-interval over seeds at level 1 - 0.05 / m (mean ± t(1 - 0.025 / m, n - 1)
· sd / √n; Bonferroni), so that all of them hold at once with ``FAMILY_CONFIDENCE`` (95 %)
confidence. A verdict reads its interval:

- ``confirmed`` when there are at least ``MIN_SEEDS`` seeds and the whole interval lies on
  the claim's side of the threshold; ``refuted`` when it lies wholly on the other side;
- otherwise ``inconclusive``, with a ``leaning``: which side the mean falls on (supports /
  contradicts / neither), printed lighter in the report;
- ``not tested`` (``leaning: null``) when the study lacks one side, or its two sides share no seed.

There is no interval, so no verdict, with one seed, with the same effect on every seed (no
spread to measure), or when a seed's figure is not a number (a run diverged).

A claim with a direction and a size ("slightly better": better, by a small gap) is tested
in both parts; it is confirmed only when both are, refuted when either is.
"""

from __future__ import annotations

import math
import statistics

from .progress import count

MIN_SEEDS = 3
FAMILY_CONFIDENCE = 0.95  # all the intervals of one table hold at once with this confidence
CONFIDENCE = f"{100 * FAMILY_CONFIDENCE:.0f} %"  # as the report and its figures say it
FAR = 100  # a relative change beyond 100 times (10,000 %): a number that long reads as noise (``far``)

# name -> (value, unit, what the word means: its {percent} or {points} the value's, ``threshold_meaning``);
# the single table behind every verdict
THRESHOLDS = {
    "too small": (0.10, "relative", "l_size 64's test MSE is at least {percent} above l_size 512's"),
    "little": (0.10, "relative gain", "l_size 1024 lowers the test MSE by less than {percent} of l_size 512's"),
    "slightly": (0.15, "relative gain", "the convolutional model lowers the test MSE by less than {percent} of "
                 "l_size 512's"),
    "better": (0.0, "relative gain", "a lower test MSE (the interval of the relative gain above 0)"),
    "beats": (0.0, "points", "a higher test accuracy (the interval of the difference above 0)"),
    "wide margin": (2.0, "points", "at least {points} percentage points of test accuracy (the full 10,000-image "
                    "test set's own sampling error is about 0.3 points; a smaller test set's is larger)"),
    "competitive": (-1.5, "points", "scratch's test accuracy is at most {points} points below fine-tuning's "
                    "(the source document's own gap is 1.2 points)"),
    "most confused": (0.0, "points", "Shirt's per-class accuracy is below every other class's (the gap "
                      "to the next-worst class below 0)"),
    "taken for": (0.0, "points", "more of Shirt's test images are taken for T-shirt/top than for any other "
                  "class (the difference, in points of Shirt's images, above 0)"),
    # not a claim of the study, so outside the claims' family: the evidence of "too small"
    "overfits": (0.02, "relative", "l_size 64's validation MSE ends at least {percent} above its lowest"),
}


def threshold_meaning(name: str) -> str:
    """What a threshold's word means, its value written in (so that the two cannot disagree)."""
    value, _, words = THRESHOLDS[name]
    return words.format(percent=_percent(name), points=f"{abs(value):g}")


# unit -> (to the log scale, back): a relative difference a/b - 1 is log(a/b) there, and a
# relative gain 1 - a/b (the difference with its sign turned) is log(b/a); points stay points
LOG_SCALE = {"relative": (math.log1p, math.expm1),
             "relative gain": (lambda g: -math.log1p(-g), lambda y: -math.expm1(-y))}


def seeds_advice(reported: bool) -> str:
    """Why fewer than MIN_SEEDS seeds give no verdict, and what to do: said before a study runs, and in
    its report (``reported``), where seeds added to the same study are another look: a new experiment."""
    return (f"that takes {MIN_SEEDS} seeds, chosen before the runs: " + ("a new experiment with " if reported else "")
            + f"--seeds {MIN_SEEDS} or more")


def ci_level(intervals: int) -> float:
    """The confidence of each of ``intervals`` simultaneous intervals (Bonferroni)."""
    return 1 - (1 - FAMILY_CONFIDENCE) / intervals


def t_quantile(df: int, intervals: int = 1) -> float:
    """t's quantile for one of ``intervals`` simultaneous two-sided intervals."""
    from scipy.stats import t
    return float(t.ppf(1 - (1 - ci_level(intervals)) / 2, df))


def interval(values: list[float], intervals: int = 1,
             unit: str = "points") -> tuple[list[float] | None, str | None]:
    """The t-interval of the mean (of a relative unit: on the log scale, mapped back), one of
    ``intervals`` that hold together with ``FAMILY_CONFIDENCE`` confidence, or why there is none."""
    if not all(math.isfinite(v) for v in values):
        return None, "a seed's figure is not a number: a run diverged"
    if len(values) < 2:
        return None, "one seed: no spread to measure"
    to_log, back = LOG_SCALE.get(unit, (float, float))
    logs = [to_log(v) for v in values]
    sd = statistics.stdev(logs)
    if sd <= 1e-9 * max(abs(v) for v in logs):  # equal, but for the rounding of the effects' arithmetic
        return None, "the same effect on every seed: no spread to measure"
    half = t_quantile(len(values) - 1, intervals) * sd / math.sqrt(len(values))
    mean = statistics.mean(logs)
    return [back(mean - half), back(mean + half)], None


def test(values: list[float], threshold: float, above: bool, intervals: int = 1,
         unit: str = "points") -> tuple[str, str]:
    """(verdict, leaning) of "the effect is above (or below) the threshold"."""
    mean = center(values, unit)
    if mean is None or not math.isfinite(mean):
        return "inconclusive", "neither"
    side = (mean > threshold) if above else (mean < threshold)
    leaning = "neither" if mean == threshold else ("supports" if side else "contradicts")
    ci, _ = interval(values, intervals, unit)
    if len(values) >= MIN_SEEDS and ci is not None:
        low, high = ci
        holds = low > threshold if above else high < threshold
        fails = high < threshold if above else low > threshold
        if holds:
            return "confirmed", "supports"
        if fails:
            return "refuted", "contradicts"
    return "inconclusive", leaning


def judged_together(effects: list[dict]) -> int:
    """How many intervals a table of these effects holds, the Bonferroni m: one per
    ``comparison`` asked of two seeds or more. The effects of one comparison read one interval:
    conv's "better" and "by under 15 %" (one interval, two thresholds), "beats scratch" and
    "competitive" (one difference, its sign turned), an ablation's validation and test change
    where validation is the test set. A comparison whose numbers give no interval (a run
    diverged, no spread) still counts: the family is what the study asks, fixed before its
    numbers are read, so that a run diverging in one comparison never narrows another's."""
    return max(1, len({e["comparison"] for e in effects if len(e["values"]) >= 2}))


def far(x: float) -> str | None:
    """A relative change (or gain) beyond FAR times, as the report and its figures write it
    ("> +10,000", in %): only an interval's end of few seeds reaches there; else None."""
    if abs(x) > FAR:
        return f"{'>' if x > 0 else '<'} {'+' if x > 0 else '-'}{100 * FAR:,.0f}"
    return None


def center(values: list[float], unit: str = "points") -> float | None:
    """The effect over seeds: the mean, on the log scale for a relative unit (the geometric mean
    of the ratios), so it lies inside its interval; NaN when a seed's value is, None for no seed."""
    if not values:
        return None
    if not all(math.isfinite(v) for v in values):
        return math.nan
    to_log, back = LOG_SCALE.get(unit, (float, float))
    return back(statistics.mean(to_log(v) for v in values))


def _part(name: str, values: list[float], threshold_name: str, above: bool, quantity: str,
          comparison: str, test_set_error: float | None = None) -> dict:
    """One question a claim asks of its seeds; ``judge`` answers it. Parts of one ``comparison``
    (what its values compare: their opposite compares the same) share one interval
    (``judged_together``). ``test_set_error``: the effect's standard error from the test set's own
    sampling (an accuracy's, in points), which the interval over seeds does not hold."""
    threshold, unit, _ = THRESHOLDS[threshold_name]
    meaning = threshold_meaning(threshold_name)
    return {"part": name, "quantity": quantity, "effect": center(values, unit), "values": values, "unit": unit,
            "threshold": threshold, "threshold_name": threshold_name, "threshold_meaning": meaning,
            "direction": "above" if above else "below", "comparison": comparison,
            "test_set_error": test_set_error if test_set_error is not None and math.isfinite(test_set_error) else None}


# ------------------------------------------------------------------ the test set's own sampling error
# The intervals are over seeds on one test set; another test set of the same size would move an
# accuracy by about its binomial error, √(p(1 − p)/n) (0.3 points at 90 % on 10,000 images).

def accuracy_error(p: float, n: int) -> float:
    """In points, the standard error of an accuracy ``p`` (a fraction) measured on ``n`` images."""
    return 100 * math.sqrt(p * (1 - p) / n) if n > 0 and 0 <= p <= 1 else math.nan


def test_images(clf: dict) -> int:
    """How many test images a classifier group was scored on (its first seed's confusion matrix)."""
    return sum(map(sum, clf["confusion_matrices"][0])) if clf.get("confusion_matrices") else 0


def difference_error(a: dict, b: dict) -> float:
    """In points, the test set's error of a difference of two classifiers' mean test accuracies, as if
    they erred independently on its images (errors on the same images make it smaller)."""
    n = min(test_images(a), test_images(b))
    return math.hypot(accuracy_error(a["test_acc"]["mean"], n), accuracy_error(b["test_acc"]["mean"], n))


def near_threshold(part: dict) -> bool:
    """Whether a decided part's effect lies within two of the test set's errors (``test_set_error``)
    of its threshold: its verdict holds on this test set and might not on another of its size."""
    error = part.get("test_set_error")
    return (part.get("verdict") in ("confirmed", "refuted") and error is not None
            and abs(part["effect"] - part["threshold"]) < 2 * error)


def judge(claims: list[dict]) -> None:
    """Every part's simultaneous interval and verdict, then each claim's from its parts."""
    parts = [p for c in claims for p in c["parts"]]
    m = judged_together(parts)
    for p in parts:
        p["ci"], p["ci_reason"] = interval(p["values"], m, p["unit"])
        p["verdict"], p["leaning"] = test(p["values"], p["threshold"], p["direction"] == "above", m, p["unit"])
        p["intervals"], p["ci_level"] = m, ci_level(m)
    for c in claims:
        if c["parts"]:
            c.update(_verdict_of(c["parts"]))


def _verdict_of(parts: list[dict]) -> dict:
    verdicts = [p["verdict"] for p in parts]
    leanings = [p["leaning"] for p in parts]
    first = parts[0]
    return {"verdict": ("refuted" if "refuted" in verdicts else
                        "confirmed" if all(v == "confirmed" for v in verdicts) else "inconclusive"),
            "leaning": ("contradicts" if "contradicts" in leanings else
                        "supports" if all(l == "supports" for l in leanings) else "neither"),
            "effect": first["effect"], "ci": first["ci"], "ci_reason": first["ci_reason"]}


def _claim(text: str, parts: list[dict], evidence: str, seeds: int, **extra) -> dict:
    if not seeds:
        return _not_tested(text, "its two sides share no seed")
    first = parts[0]
    return {"claim": text, "quantity": first["quantity"], "unit": first["unit"], "threshold": first["threshold"],
            "threshold_meaning": "; ".join(p["threshold_meaning"] for p in parts), "seeds": seeds,
            "parts": parts, "evidence": evidence, **extra}


def _not_tested(text: str, why: str) -> dict:
    return {"claim": text, "quantity": None, "effect": None, "ci": None, "ci_reason": why,
            "threshold": None, "threshold_meaning": None, "seeds": 0, "verdict": "not tested",
            "leaning": None, "parts": [], "evidence": why}


def _percent(threshold_name: str) -> str:
    """A relative threshold as a claim's part names it: 0.10 -> "10 %"."""
    return f"{100 * THRESHOLDS[threshold_name][0]:g} %"


ALIKE = " (of the paper's encoder, trained alike)"  # what _find_ae requires, as a not-tested claim says


def _find_ae(results: dict, arch: str, latent: int | None = None, like: dict | None = None) -> dict | None:
    """The first autoencoder of the paper's encoder with this architecture and latent size, and,
    given ``like``, trained as it was (the same ``settings``: the comparison changes one thing)."""
    for ae in results["autoencoders"]:
        if ae.get("mixed"):  # its seeds trained differently: no one thing changes against it
            continue
        if ae["arch"] == arch and (latent is None or ae["latent"] == latent) \
                and ae.get("encoder_type", "paper") == "paper" \
                and (like is None or ae.get("settings") == like.get("settings")):
            return ae
    return None


def _find_clf(results: dict, strategy: str, encoder: str) -> dict | None:
    """The classifier of a strategy on the autoencoder named ``encoder`` (its seeds trained alike)."""
    return next((c for c in results["classifiers"]
                 if c["strategy"] == strategy and c.get("encoder", encoder) == encoder and not c.get("mixed")), None)


def _paired(a: dict, b: dict, key: str) -> tuple[list[float], list[float]]:
    """The figure of both sides on the seeds they share, in seed order."""
    seeds = sorted(set(a["seeds"]) & set(b["seeds"]))
    pick = lambda e: [e[key]["values"][e["seeds"].index(s)] for s in seeds]  # noqa: E731
    return pick(a), pick(b)


def mean_std(s: dict, digits: int = 4, pct: bool = False) -> str:
    """"mean ± std" over seeds (the std only with several seeds), with more digits where the
    std would otherwise print as zero: 0.00374 ± 0.00004, not 0.0037 ± 0.0000."""
    scale = 100 if pct else 1
    if len(s["values"]) < 2:
        return f"{s['mean'] * scale:.{digits}f}"
    std = s["std"] * scale
    if 0 < std < 0.5 * 10 ** -digits:
        digits = -math.floor(math.log10(std))
    return f"{s['mean'] * scale:.{digits}f} ± {std:.{digits}f}"


def _fmt(s: dict, digits: int = 4, pct: bool = False) -> str:
    return mean_std(s, digits, pct) + ("%" if pct else "")


def relative_change(a: dict, b: dict, key: str = "test_mse") -> list[float]:
    """Per seed they share, (figure of a) / (figure of b) - 1; NaN where a figure is not a
    positive number (no ratio of MSEs to speak of)."""
    xa, xb = _paired(a, b, key)
    return [x / y - 1 if 0 < x < math.inf and 0 < y < math.inf else math.nan for x, y in zip(xa, xb)]


def points_change(a: dict, b: dict, key: str = "test_acc") -> list[float]:
    """Per seed they share, accuracy of a minus accuracy of b, in percentage points."""
    xa, xb = _paired(a, b, key)
    return [100 * (x - y) for x, y in zip(xa, xb)]


def _cost(ae: dict) -> str:
    return (f"{ae['parameters']:,} parameters, {ae['mflops_per_image']:.1f} MFLOP per image, "
            f"{ae['seconds_per_epoch']['mean']:.1f} s per epoch")


def assess_claims(results: dict) -> list[dict]:
    """The study's claims in its order, judged together (``judge``)."""
    claims = []
    ae512 = _find_ae(results, "linear", 512)
    ae64, ae1024 = (_find_ae(results, "linear", k, like=ae512) for k in (64, 1024))
    conv = _find_ae(results, "conv", like=ae512)

    text = "l_size 64 is too small"
    if ae64 and ae512:
        v = relative_change(ae64, ae512)
        overfits, overfitting = _overfitting(ae64)
        claims.append(_claim(text, [_part(f"worse than 512 by at least {_percent('too small')}", v, "too small",
                                          True, "relative difference of test MSE, 64 vs 512", "64 vs 512")],
                             f"test MSE 64: {_fmt(ae64['test_mse'])} vs 512: {_fmt(ae512['test_mse'])}; "
                             + overfitting, len(v), overfits=overfits))
    else:
        claims.append(_not_tested(text, f"the study lacks the linear 64 or 512 autoencoder{ALIKE}"))

    text = "l_size 1024 adds little over 512"
    if ae512 and ae1024:
        v = [-x for x in relative_change(ae1024, ae512)]  # the gain: how much lower 1024's MSE is
        claims.append(_claim(text, [_part(f"gain under {_percent('little')}", v, "little", False,
                                          "relative gain in test MSE, 1024 over 512", "1024 vs 512")],
                             f"test MSE 512: {_fmt(ae512['test_mse'])} vs 1024: {_fmt(ae1024['test_mse'])}",
                             len(v)))
    else:
        claims.append(_not_tested(text, f"the study lacks the linear 512 or 1024 autoencoder{ALIKE}"))

    text = "the fully convolutional autoencoder is slightly better than l_size 512"
    if conv and ae512:
        gain = [-x for x in relative_change(conv, ae512)]  # how much lower conv's MSE is: one figure, two questions
        quantity = "relative gain in test MSE, conv over 512"
        claims.append(_claim(text, [
            _part("better", gain, "better", True, quantity, "conv vs 512"),
            _part(f"by under {_percent('slightly')}", gain, "slightly", False, quantity, "conv vs 512")],
            f"test MSE conv: {_fmt(conv['test_mse'])} vs 512: {_fmt(ae512['test_mse'])}", len(gain)))
    else:
        claims.append(_not_tested(text, f"the study lacks the conv or linear 512 autoencoder{ALIKE}"))

    # the classifiers on the report's encoder: the study's l_size 512 (of the paper's encoder), whatever its name
    ft, fr, sc = ((_find_clf(results, s, ae512["name"]) if ae512 else None) for s in ("finetune", "frozen", "scratch"))
    acc = lambda c: _fmt(c["test_acc"], 2, True)  # noqa: E731
    for text, a, b, name, threshold, above in (
            ("fine-tuning beats training from scratch", ft, sc, "finetune − scratch", "beats", True),
            ("fine-tuning beats the frozen encoder by a wide margin", ft, fr, "finetune − frozen",
             "wide margin", True),
            ("training from scratch is competitive with fine-tuning", sc, ft, "scratch − finetune",
             "competitive", True)):
        if a and b:
            v = points_change(a, b)
            pair = " vs ".join(sorted((a["strategy"], b["strategy"])))  # "beats" and "competitive": one interval
            claims.append(_claim(text, [_part(name, v, threshold, above, f"test accuracy, {name} (points)", pair,
                                              difference_error(a, b))],
                                 f"test accuracy {a['strategy']} {acc(a)}, {b['strategy']} {acc(b)}", len(v)))
        else:
            claims.append(_not_tested(text, "the study lacks one of the strategies on the l_size-512 encoder"))

    # the fine-tuned classifier's confusions, or the scratch one's where fine-tuning diverged
    steady = [c for c in (ft, sc) if c and all(math.isfinite(v) for v in c["test_acc"]["values"])]
    claims.append(_shirt_claim(results, (steady or [ft or sc])[0]))
    judge(claims)
    claims.insert(2, _balance_claim(claims[:2], ae64, ae512, ae1024))
    return claims


def tests_a_claim(results: dict) -> bool:
    """Whether models such as ``results``' test a claim (``assess_claims``, which finds them alike):
    its autoencoders' names, architectures, latent sizes, encoders and settings, its classifiers'
    strategies and encoders, without figures (a study's, before its runs)."""
    if (ae512 := _find_ae(results, "linear", 512)) is None:
        return False
    pairs = (("linear", 64), ("linear", 1024), ("conv", None))  # 64, 1024 and conv beside 512
    return (any(_find_ae(results, arch, k, like=ae512) for arch, k in pairs)
            or any(_find_clf(results, s, ae512["name"]) for s in ("finetune", "scratch")))  # (the Shirt claim: either)


def listed(claims: list[dict]) -> list[dict]:
    """The claims a study's results list: all of them where it tests one, the untested saying why;
    none where it tests none (a study of other models than the source's)."""
    return claims if any(c["verdict"] != "not tested" for c in claims) else []


def _overfitting(ae: dict) -> tuple[bool | None, str]:
    """Whether the autoencoder overfits (True, False, or None: undecided), judged as a claim's
    part is, on its own 95 % interval over seeds, and the evidence that says so."""
    rise, best = ae["val_rise_after_best"], ae["best_epoch"]
    if not math.isfinite(rise["mean"]):
        return None, "l_size 64's validation MSE is not a number: a run diverged"
    threshold, unit, _ = THRESHOLDS["overfits"]
    lowest, highest = min(best["values"]), max(best["values"])
    epochs = f"epoch {lowest}" if lowest == highest else f"epochs {lowest}–{highest}"  # (no seed's is their mean)
    mean = center(rise["values"], unit)
    amount = f"more than {100 * FAR:,.0f} %" if far(mean) else f"{100 * mean:.1f} %"  # a diverging run's
    said = f"l_size 64's validation MSE ends {amount} above its best ({epochs} of {ae['epochs']}): "
    if ae["epochs"] < 2:
        return None, said + "overfitting undecided (one epoch has no later epoch to rise in)"
    within = f"no overfitting within its {ae['epochs']} epochs"  # a longer run may still show it
    n = len(rise["values"])
    if all(x == 0 for x in rise["values"]):  # (as a verdict over seeds: MIN_SEEDS of them, as any other)
        return (False, said + within + " (every seed's best epoch is its last)") if n >= MIN_SEEDS else (
            None, said + f"overfitting undecided ({count(n, 'seed')}, whose best epoch"
                         f"{'s are their' if n > 1 else ' is its'} last; a rise of at least {_percent('overfits')} "
                         "is its sign)")
    verdict, _ = test(rise["values"], threshold, True, unit=unit)
    alone = f" (on its own {CONFIDENCE} interval, outside the claims' family)"
    if verdict == "confirmed":
        return True, said + "it overfits" + alone
    if verdict == "refuted":
        return False, said + within + alone
    why = (count(n, "seed") if n < MIN_SEEDS else
           interval(rise["values"], unit=unit)[1] or f"its interval straddles {_percent('overfits')}")
    return None, said + f"overfitting undecided ({why}; a rise of at least {_percent('overfits')} is its sign)"


def _balance_claim(size_claims: list[dict], *aes: dict | None) -> dict:
    """"512 balances quality and cost": the two claims on l_size, with the cost beside them.
    It adds no test of its own (its parts are theirs, already judged), so it is ``derived``."""
    text = "l_size 512 balances quality and cost"
    if not all(c["parts"] for c in size_claims):
        return _not_tested(text, "the study lacks one of the linear 64, 512, 1024 autoencoders") | {"derived": True}
    parts = [dict(p, part=f"{c['claim']}: {p['part']}") for c in size_claims for p in c["parts"]]
    cost = "; ".join(f"{n}: {_cost(a)}" for n, a in zip(("64", "512", "1024"), aes))
    claim = _claim(text, parts, f"cost — {cost}; quality: the two claims above", size_claims[0]["seeds"],
                   derived=True)
    return claim | _verdict_of(parts)


def _shirt_claim(results: dict, clf: dict | None) -> dict:
    text = "Shirt is the class most confused (with T-shirt/top)"
    classes = results.get("classes") or []
    if clf is None:
        return _not_tested(text, "the study trains no classifier on the l_size-512 encoder")
    if "Shirt" not in classes or "T-shirt/top" not in classes:
        return _not_tested(text, "the dataset has no Shirt or no T-shirt/top class")
    shirt = classes.index("Shirt")
    per_seed = list(zip(*(s["values"] for s in clf["per_class_acc"])))  # per seed: accuracy of each class
    gaps = [100 * (accs[shirt] - min(a for i, a in enumerate(accs) if i != shirt)) for accs in per_seed]
    tshirt = classes.index("T-shirt/top")
    margins = []  # per seed: points of Shirt's images taken for T-shirt/top minus for the next wrong class
    gap_errors, margin_errors = [], []  # per seed: the test set's error of each (points)
    for cm, accs in zip(clf["confusion_matrices"], per_seed):
        row, sizes = cm[shirt], [sum(r) for r in cm]
        others = max(n for j, n in enumerate(row) if j not in (shirt, tshirt))
        margins.append(100 * (row[tshirt] - others) / max(1, sum(row)))
        # two classes' accuracies are measured on disjoint images; two shares of one class's images
        # are a multinomial's, whose difference has the variance (q1 + q2 - (q1 - q2)^2) / n
        worst = min((i for i in range(len(accs)) if i != shirt), key=lambda i: accs[i])
        gap_errors.append(math.hypot(accuracy_error(accs[shirt], sizes[shirt]), accuracy_error(accs[worst], sizes[worst])))
        q1, q2 = (x / max(1, sizes[shirt]) for x in (row[tshirt], others))
        variance = q1 + q2 - (q1 - q2) ** 2  # (not a number where the seed diverged: nor is its error)
        margin_errors.append(100 * math.sqrt(max(0.0, variance) / max(1, sizes[shirt])) if math.isfinite(variance)
                             else math.nan)
    parts = [_part("lowest per-class accuracy", gaps, "most confused", False,
                   "Shirt's accuracy minus the next-worst class's (points)", "Shirt vs the next-worst class",
                   statistics.mean(gap_errors)),
             _part("taken for T-shirt/top most often", margins, "taken for", True,
                   "Shirt's test images taken for T-shirt/top minus for the next most frequent wrong class "
                   "(points of Shirt's images)", "Shirt taken for T-shirt/top vs for another class",
                   statistics.mean(margin_errors))]
    return _claim(text, parts, f"{clf['strategy']}: Shirt's test accuracy is "
                  f"{_fmt(clf['per_class_acc'][shirt], 1, True)}; it is taken for T-shirt/top more often than "
                  f"for any other class in {sum(m > 0 for m in margins)} of {len(margins)} seed(s)", len(gaps))
