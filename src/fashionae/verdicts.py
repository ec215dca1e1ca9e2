"""The study's tables of verdicts: the ablation's lines, and what each table judges together.

A study judges its effects in tables: the claims' parts (``claims.py``), the ablation's changes
of MSE, and its changes of accuracy (a classifier strategy trained on both of a line's encoders).
The intervals of one table are simultaneous (``claims.judged_together``): how many comparisons a
table asks is its family, and each interval is wider the larger it is. A change that compares one
model with itself, as its runs record it (``_one_model``), is shown and not judged, so it does
not widen its siblings'.
"""

from __future__ import annotations

from .claims import center, ci_level, interval, judged_together, points_change, relative_change, test
from .runconfig import FROM_TRAINED_ENCODER
from .study import Study


def ablation(study: Study, autoencoders: list[dict], classifiers: list[dict]) -> list[dict]:
    """Each comparison of the study's ablation: the relative change of validation and test MSE
    from baseline to variant, paired by seed number, with its t-interval (on the log scale, as
    the claims'); and where the classifier stage trained a strategy on both encoders, the change
    of its accuracy, in points. The MSE changes are one family, the accuracy changes another: the
    intervals of each hold all at once with ``FAMILY_CONFIDENCE`` confidence (Bonferroni over them, as for the
    claims)."""
    by_name = {a["name"]: a for a in autoencoders}
    # a comparison is one interval (``judged_together``): validation and test are two, but one
    # where validation is the test set
    split = {"val": "" if study.val == "test" else ", validation", "test": "" if study.val == "test" else ", test"}
    rows = []
    for c in study.ablation:
        base, var = by_name[c.baseline], by_name[c.variant]
        pair = " vs ".join(sorted((c.variant, c.baseline)))  # a line and its reverse: one question
        seeds = sorted(set(base["seeds"]) & set(var["seeds"]))
        encoders = _alike_by_seed(base, var)  # seed -> whether the two trained one model there
        before, after = base["trained_with"], var["trained_with"]  # as the runs ran, every seed
        row = {"change": c.change, "baseline": c.baseline, "variant": c.variant, "seeds": len(seeds),
               "epochs": base["epochs"],  # every setting in which the two differ: one, for a change of one thing
               # (a setting one model does not use follows from another that differs: arch, dropout 0)
               "differs": {k: [v, after[k]] for k, v in before.items() if k in after and after[k] != v}}
        for figure in ("val_mse", "test_mse"):
            effects = relative_change(var, base, figure)
            row[figure] = {"baseline": base[figure], "variant": var[figure], "values": effects,  # a study's runs share its seeds
                           "effect": center(effects, "relative"), "unit": "relative",
                           "comparison": f"{pair}{split[figure.split('_')[0]]}", **_one_model(encoders)}
        row["classifiers"] = {}  # strategy -> its accuracy figures, on the variant's encoder against the baseline's
        for strategy in dict.fromkeys(k["strategy"] for k in classifiers):
            on = {k["encoder"]: k for k in classifiers if k["strategy"] == strategy}
            if c.baseline not in on or c.variant not in on:
                continue
            row["classifiers"][strategy] = figures = {}
            for figure in ("val_acc", "test_acc"):
                effects = points_change(on[c.variant], on[c.baseline], figure)
                figures[figure] = {"baseline": on[c.baseline][figure], "variant": on[c.variant][figure],
                                   "values": effects, "effect": center(effects, "points"), "unit": "points",
                                   "comparison": f"{pair}, {strategy}{split[figure.split('_')[0]]}",
                                   **_one_model(_alike_by_seed(on[c.baseline], on[c.variant], strategy, encoders))}
        rows.append(row)
    for family in ([row[f] for row in rows for f in ("val_mse", "test_mse")],
                   [s[f] for row in rows for s in row["classifiers"].values() for f in ("val_acc", "test_acc")]):
        judge_family([f for f in family if not f.get("same_model")])
        for f in family:
            if f.get("same_model"):
                f.update(ci=None, verdict="not shown", ci_reason=SAME_MODEL if f["same_model"] is True else
                         f"one model on seed{'s' * (len(f['same_model']) > 1)} {', '.join(map(str, f['same_model']))} "
                         "and two on the others, as trained: not judged")
    return rows


SAME_MODEL = "the same model as trained: not judged"


def _by_seed(record: dict) -> dict[int, dict] | None:
    """What a group's runs were trained with, seed by seed: its ``trained_with``, and its
    ``mixed`` where its seeds differ (None: a record without one, as a classifier's before
    format 9)."""
    if record.get("trained_with") is None:
        return None
    mixed = record.get("mixed") or {}
    return {seed: {k: mixed[k][i] if k in mixed else v for k, v in record["trained_with"].items()}
            for i, seed in enumerate(record["seeds"])}


def _alike_by_seed(base: dict, variant: dict, strategy: str | None = None,
                   encoders: dict[int, bool] | None = None) -> dict[int, bool]:
    """Seed by seed, whether an ablation's two groups (autoencoders, or classifiers of one
    ``strategy``) trained one model, as their runs record it: every setting alike, and for a
    classifier that takes its encoder's weights (frozen, finetune) its two ``encoders`` one
    model on that seed too."""
    b, v = _by_seed(base), _by_seed(variant)
    if b is None or v is None:
        return {}
    return {seed: b[seed] == v[seed]
            and (strategy not in FROM_TRAINED_ENCODER or encoders.get(seed, False))
            for seed in sorted(set(b) & set(v))}


def _one_model(alike: dict[int, bool]) -> dict:
    """``{"same_model": True}`` for an ablation's change that compares one model with itself on
    every seed (``_alike_by_seed``): two autoencoders alike once "auto" resolved (precision
    "bf16" where auto chose it); two classifiers recorded alike whose encoders are alike too, or
    whose strategy takes only its encoder's architecture (scratch, random-frozen). Its change
    is noise at most: not judged, and not counted in its family, whose other intervals it would
    widen (known from the runs' settings, before any number is read). ``{"same_model": [seeds]}``
    where it is one model on those seeds alone (machines whose auto chose otherwise): a change
    that measures neither, not judged either; else {}."""
    same = [seed for seed, one in alike.items() if one]
    return {"same_model": True if len(same) == len(alike) else same} if same else {}


def judge_family(figures: list[dict]) -> None:
    """Give each change its simultaneous interval, and its verdict as a claim's part would be
    judged: enough seeds, the interval off 0. ``verdict``: the side of 0 the interval shows
    ("lower", "higher"), or "not shown"."""
    m = judged_together(figures)
    for f in figures:
        f["ci"], f["ci_reason"] = interval(f["values"], m, f["unit"])
        f["intervals"], f["ci_level"] = m, ci_level(m)
        verdict, _ = test(f["values"], 0.0, above=False, intervals=m, unit=f["unit"])  # "it is below 0"
        f["verdict"] = {"confirmed": "lower", "refuted": "higher"}.get(verdict, "not shown")


def classifier_lines(ablation: list[dict]) -> list[dict]:
    """The ablation's changes of classifier accuracy, a line per change and strategy, shaped as
    an ablation line (its figures ``val_acc`` and ``test_acc``)."""
    return [{"change": a["change"], "baseline": a["baseline"], "variant": a["variant"], "strategy": strategy,
             "seeds": len(figures["val_acc"]["values"]), **figures}
            for a in ablation for strategy, figures in a.get("classifiers", {}).items()]


def verdict_tables(results: dict, judged: bool = True) -> dict[str, list[dict]]:
    """The effects each table of verdicts judges together: the claims' parts (a derived claim's
    are the others'), the ablation's changes of MSE, its changes of accuracy (``judged``: not
    those that compare one model with itself, ``_one_model``; else every one it shows)."""
    lines = results.get("ablation") or []
    tables = {"claims": [p for c in results["claims"] if not c.get("derived") for p in c["parts"]],
              "ablation": [a[f] for a in lines for f in ("val_mse", "test_mse")],
              "ablation-classifiers": [a[f] for a in classifier_lines(lines) for f in ("val_acc", "test_acc")]}
    return {t: [e for e in effects if not (judged and e.get("same_model"))] for t, effects in tables.items()}


def without_intervals(results: dict, table: str) -> str | None:
    """Why a table of verdicts holds no interval at all (one seed; a run diverged), as its effects
    say (``claims.interval``), else None: its caption and its figure's say so, not the family's
    confidence."""
    effects = verdict_tables(results, judged=False)[table]
    if not effects or any(e.get("ci") for e in effects):
        return None
    reasons = {e.get("ci_reason") for e in effects}
    return f"{reasons.pop()}, so no intervals" if len(reasons) == 1 and None not in reasons else \
        "no intervals (each line says why)"


def comparisons(results: dict, judged: bool = True) -> dict[str, set[str]]:
    """The comparisons each table of verdicts asks, whatever the seeds (a table that asks none:
    left out; ``judged``: as ``verdict_tables``)."""
    return {table: {e["comparison"] for e in effects}
            for table, effects in verdict_tables(results, judged).items() if effects}


def families(results: dict) -> dict[str, int]:
    """How many comparisons each table of verdicts asks (``comparisons``): its family, whose
    intervals are judged together from 2 seeds on (``claims.judged_together``), each wider the
    more there are."""
    return {table: len(asked) for table, asked in comparisons(results).items()}
