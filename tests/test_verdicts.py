"""The ablation's lines and the tables of verdicts (verdicts.py): paired by seed, judged as a
family, a line of one model shown and not judged, each table's comparisons counted once."""

import pytest

from fashionae.report import _ablation_effect


# what the ablation's autoencoders were trained with, as their runs record it: a base with
# dropout, a lean one without
TRAINED_WITH = {"base": {"model.dropout": 0.2}, "lean": {"model.dropout": 0.0}, "edge": {"model.dropout": 0.1},
                "far": {"model.dropout": 0.3}, "third": {"model.dropout": 0.5}}


def test_ablation_pairs_by_seed_number_and_its_intervals_are_simultaneous():
    from types import SimpleNamespace
    from fashionae.claims import interval
    from fashionae.results import stats
    from fashionae.verdicts import ablation

    def ae(name, seeds, val, test):
        return {"name": name, "seeds": seeds, "epochs": 2, "val_mse": stats(val), "test_mse": stats(test),
                "trained_with": TRAINED_WITH[name]}
    # the variant lists its seeds in another order, and one more: every shared seed is 10 % lower in
    # validation; paired by position the changes would be +170 %, -10 %, -70 %
    base = ae("base", [0, 1, 2], [0.010, 0.020, 0.030], [0.010, 0.020, 0.030])
    lean = ae("lean", [2, 1, 0, 3], [0.027, 0.018, 0.009, 0.5], [0.0282, 0.018, 0.0088, 0.5])
    study = SimpleNamespace(val="holdout", ablation=[SimpleNamespace(change="no dropout", baseline="base", variant="lean"),
                                      SimpleNamespace(change="back", baseline="lean", variant="base")])
    rows = ablation(study, [base, lean], [])
    assert [r["differs"] for r in rows] == [{"model.dropout": [0.2, 0.0]}, {"model.dropout": [0.0, 0.2]}]
    val, test = rows[0]["val_mse"], rows[0]["test_mse"]
    assert rows[0]["seeds"] == 3 and val["values"] == pytest.approx([-0.1] * 3)
    assert val["ci"] is None and "same effect on every seed" in val["ci_reason"]
    assert test["values"] == pytest.approx([-0.12, -0.1, -0.06])
    # the effect is the geometric mean of the ratios, as a claim's (the arithmetic mean is -0.0933...)
    assert test["effect"] == pytest.approx((0.88 * 0.9 * 0.94) ** (1 / 3) - 1) and val["effect"] == pytest.approx(-0.1)
    # a validation and a test change: 2 intervals, each at 1 - 0.05/2, counted whether their numbers give one
    # or not (validation's here have no spread), as the family is fixed before they are read; the second row
    # asks the same of the same two models, the other way round: no interval more
    assert test["intervals"] == 2 and test["ci"] == pytest.approx(interval(test["values"], 2, "relative")[0])
    assert test["ci_level"] == pytest.approx(1 - 0.05 / 2) and rows[0]["epochs"] == 2
    assert val["verdict"] == test["verdict"] == "not shown"  # no interval; an interval that holds 0


def test_an_ablation_line_of_one_model_as_it_ran_is_shown_not_judged_nor_counted():
    """Two autoencoders set apart in the study file by "auto" alone (precision "auto" where it
    resolved to bf16, against "bf16") trained the same model: their line is shown with its
    changes, marked, and neither judged nor counted in the family (whose other intervals it would
    widen); known from the runs' settings, before any number is read."""
    from types import SimpleNamespace
    from fashionae.report import _family
    from fashionae.summary import _ablation_summary
    from fashionae.results import stats
    from fashionae.verdicts import SAME_MODEL, ablation, classifier_lines, families

    def ae(name, val, trained_with):
        return {"name": name, "seeds": [0, 1, 2], "epochs": 2, "val_mse": stats(val), "test_mse": stats(val),
                "trained_with": trained_with}
    bf16 = {"train.precision": "bf16", "model.dropout": 0.2}
    aes = [ae("auto", [0.010, 0.020, 0.030], bf16), ae("bf16", [0.0101, 0.0198, 0.0303], bf16),
           ae("lean", [0.0070, 0.0138, 0.0213], {**bf16, "model.dropout": 0.0})]
    lines = [SimpleNamespace(change="bf16", baseline="auto", variant="bf16"),
             SimpleNamespace(change="no dropout", baseline="auto", variant="lean")]
    same, lean = ablation(SimpleNamespace(val="holdout", ablation=lines), aes, [])
    assert same["differs"] == {} and same["val_mse"]["values"] == pytest.approx([0.01, -0.01, 0.01])
    assert same["val_mse"]["same_model"] and "same_model" not in lean["val_mse"]
    assert same["val_mse"]["ci"] is None and same["val_mse"]["ci_reason"] == SAME_MODEL
    assert same["val_mse"]["verdict"] == same["test_mse"]["verdict"] == "not shown"
    (alone,) = ablation(SimpleNamespace(val="holdout", ablation=lines[1:]), aes, [])
    assert lean["val_mse"] == alone["val_mse"] and lean["val_mse"]["intervals"] == 2  # as if the line were not there
    results = {"claims": [], "ablation": [same, lean]}
    assert families(results) == {"ablation": 2} and "2 intervals" in _family(results, "ablation")  # lean's val, test
    assert _ablation_summary([same, lean]).endswith(
        "“bf16” compares one model with itself, as the runs record them (nothing they use differs: a setting given "
        "where the other's auto chose the same), so no verdict.")
    assert _ablation_summary([same, lean]).startswith("The ablation's change “no dropout” (-30.0 %) lowers")
    assert _family({"claims": [], "ablation": [same]}, "ablation") == f"{SAME_MODEL}, so no intervals"
    # a folder's last report written before such lines were left out (format 8) counted them: its family is
    # read as counted now, not as a comparison dropped after a look; one that asked otherwise stays as it was
    from fashionae.results import _counted_as_now
    old = {**results, "format": 8, "family_history": [{"ablation": 2}, {"ablation": 4}]}
    assert _counted_as_now(old, results)["family_history"] == [{"ablation": 2}]  # (the same family twice: one entry)
    other = {**old, "ablation": [same, {**lean, "val_mse": {**lean["val_mse"], "comparison": "another"}}]}
    assert _counted_as_now({**old, "format": 9}, results)["family_history"] == [{"ablation": 2}]  # (partly: 10)
    for kept in ({**old, "format": 10}, {**old, "format": None}, {**old, "format": "8"}, {"format": 8}, other,
                 {"format": 8, "family_history": [{"ablation": 4}]}):  # (no comparisons to read: damaged)
        assert _counted_as_now(kept, results) == kept  # another comparison asked, the same count: a change kept
    assert _ablation_effect(same, "val_mse").endswith(SAME_MODEL)
    # scratch takes only its encoder's architecture: on two encoders of one, the same classifier
    # (as its runs record it); finetune starts from their weights, which differ
    def clf(strategy, encoder, val):
        return {"strategy": strategy, "encoder": encoder, "seeds": [0, 1, 2], "val_acc": stats(val),
                "test_acc": stats(val), "trained_with": {"strategy": strategy, "model.arch": "linear"}}
    classifiers = [clf(s, e, v) for s in ("scratch", "finetune") for e, v in
                   (("auto", [0.80, 0.81, 0.82]), ("lean", [0.805, 0.81, 0.821]))]
    (line,) = ablation(SimpleNamespace(val="holdout", ablation=lines[1:]), aes, classifiers)
    scratch, finetune = (line["classifiers"][s]["val_acc"] for s in ("scratch", "finetune"))
    assert scratch["same_model"] and scratch["ci_reason"] == SAME_MODEL and "same_model" not in finetune
    assert finetune["intervals"] == 2 and finetune["ci"] is not None  # its validation and test changes alone
    assert _ablation_summary(classifier_lines([line]), "val_acc").endswith(
        "“no dropout” on scratch compares one model with itself, as the runs record them (nothing they use differs), "
        "so no verdict.")
    # on two autoencoders that are one model, a classifier is one model too only where it is recorded alike: a
    # frozen one trained again on a machine whose auto chose fp32 is another, judged
    other = [{**k, "encoder": "bf16"} if k["encoder"] == "lean" else k for k in classifiers]
    other = [{**k, "trained_with": {**k["trained_with"], "train.precision": "fp32"}}
             if (k["encoder"], k["strategy"]) == ("bf16", "finetune") else k for k in other]
    (line,) = ablation(SimpleNamespace(val="holdout", ablation=lines[:1]), aes, other)
    assert line["val_mse"]["same_model"] and line["classifiers"]["scratch"]["val_acc"]["same_model"]
    assert "same_model" not in line["classifiers"]["finetune"]["val_acc"]
    assert line["classifiers"]["finetune"]["val_acc"]["intervals"] == 2


def test_an_ablation_change_clear_of_zero_says_which_way_with_enough_seeds():
    from types import SimpleNamespace
    from fashionae.summary import _ablation_summary
    from fashionae.results import stats
    from fashionae.verdicts import ablation

    def ae(name, seeds, val):
        return {"name": name, "seeds": seeds, "epochs": 2, "val_mse": stats(val), "test_mse": stats(val),
                "trained_with": TRAINED_WITH.get(name, {})}
    base = ae("base", [0, 1, 2], [0.010, 0.020, 0.030])
    lean = ae("lean", [0, 1, 2], [0.0070, 0.0138, 0.0213])  # 30 %, 31 %, 29 % lower
    study = SimpleNamespace(val="holdout", ablation=[SimpleNamespace(change="no dropout", baseline="base", variant="lean"),
                                      SimpleNamespace(change="dropout", baseline="lean", variant="base")])
    rows = ablation(study, [base, lean], [])
    assert [r["val_mse"]["verdict"] for r in rows] == ["lower", "higher"]
    assert rows[0]["val_mse"]["ci"][1] < 0 < rows[1]["val_mse"]["ci"][0]
    lo, hi = rows[0]["val_mse"]["ci"]
    assert _ablation_effect(rows[0], "val_mse") == f"-30.0 % [{100 * lo:+.1f} %, {100 * hi:+.1f} %]: lower"
    assert _ablation_summary(rows) == ("Of the ablation's 2 changes, 1 lowers the validation MSE at 95 % confidence "
                                       "(“no dropout”, -30.0 %); 1 raises it at 95 % confidence (“dropout”, +42.9 %).")
    two = ablation(study, [{**base, "seeds": [0, 1]}, {**lean, "seeds": [0, 1]}], [])  # too few seeds for a verdict
    assert [r["val_mse"]["verdict"] for r in two] == ["not shown", "not shown"]
    assert _ablation_summary(two[:1]).startswith("With 2 seeds the ablation gives no verdict")
    # judged on the log scale, as the effect and its interval: -12 %, -25 %, -17 % are clear of 0
    # as relative differences, not as log ratios
    edge = ae("edge", [0, 1, 2], [0.0088, 0.015, 0.0249])
    (row,) = ablation(SimpleNamespace(val="holdout", ablation=[SimpleNamespace(change="x", baseline="base", variant="edge")]),
                      [base, edge], [])
    assert row["val_mse"]["values"] == pytest.approx([-0.12, -0.25, -0.17])
    assert row["val_mse"]["verdict"] == "not shown" and row["val_mse"]["ci"][0] < 0 < row["val_mse"]["ci"][1]
    # and the other way: -60 %, -70 %, -99 % have an interval clear of 0 as relative differences
    # ([-149, -4] %, at m = 2), not as log ratios, whose spread the -99 % widens
    far = ae("far", [0, 1, 2], [0.004, 0.006, 0.0003])
    (row,) = ablation(SimpleNamespace(val="holdout", ablation=[SimpleNamespace(change="x", baseline="base", variant="far")]),
                      [base, far], [])
    assert row["val_mse"]["values"] == pytest.approx([-0.6, -0.7, -0.99])
    assert row["val_mse"]["verdict"] == "not shown" and row["val_mse"]["intervals"] == 2


def test_an_ablation_line_compares_the_classifiers_trained_on_both_its_encoders():
    """A strategy trained on the baseline's and the variant's encoders gets a line of accuracy
    changes in points, paired by seed, judged as a family of their own (higher is better); a
    strategy on one of the two only, or another line's encoders, gets none."""
    from types import SimpleNamespace
    from fashionae.claims import interval
    from fashionae.summary import _ablation_summary
    from fashionae.results import stats
    from fashionae.verdicts import ablation, classifier_lines

    def ae(name):
        return {"name": name, "seeds": [0, 1, 2], "epochs": 2, "val_mse": stats([0.01, 0.02, 0.03]),
                "test_mse": stats([0.01, 0.02, 0.03]), "trained_with": TRAINED_WITH.get(name, {})}

    def clf(strategy, encoder, seeds, val, test=None):
        return {"strategy": strategy, "encoder": encoder, "seeds": seeds, "val_acc": stats(val),
                "test_acc": stats(test or val)}
    classifiers = [clf("frozen", "base", [0, 1, 2], [0.80, 0.81, 0.82]),     # on the baseline alone
                   clf("finetune", "base", [0, 1, 2], [0.90, 0.91, 0.92]),
                   clf("finetune", "lean", [2, 1, 0], [0.935, 0.93, 0.921],  # +2.1, +2.0, +1.5 points
                       [0.925, 0.92, 0.911]),                                # tested: +1.1, +1.0, +0.5
                   clf("scratch", "base", [0, 1, 2], [0.90, 0.91, 0.92]),
                   clf("scratch", "lean", [0, 1, 2], [0.899, 0.912, 0.921])]  # -0.1, +0.2, +0.1
    study = SimpleNamespace(val="holdout", ablation=[SimpleNamespace(change="no dropout", baseline="base", variant="lean"),
                                      SimpleNamespace(change="other", baseline="base", variant="third")])
    rows = ablation(study, [ae("base"), ae("lean"), ae("third")], classifiers)
    assert list(rows[0]["classifiers"]) == ["finetune", "scratch"] and rows[1]["classifiers"] == {}
    fine, scratch = rows[0]["classifiers"]["finetune"]["val_acc"], rows[0]["classifiers"]["scratch"]["val_acc"]
    assert fine["values"] == pytest.approx([2.1, 2.0, 1.5]) and fine["unit"] == "points"
    assert scratch["values"] == pytest.approx([-0.1, 0.2, 0.1]) and fine["effect"] == pytest.approx(5.6 / 3)
    tested = rows[0]["classifiers"]["finetune"]["test_acc"]  # each split's own figures, and both encoders' records
    assert tested["values"] == pytest.approx([1.1, 1.0, 0.5])
    assert (tested["baseline"], tested["variant"]) == (classifiers[1]["test_acc"], classifiers[2]["test_acc"])
    # the accuracy intervals, a family apart from the MSE's: 2 strategies x (val, test), 4 however alike
    # validation's and test's numbers are (where validation is the test set, one question each: 2)
    assert fine["intervals"] == 4 and fine["ci"] == pytest.approx(interval(fine["values"], 4)[0])
    on_test = ablation(SimpleNamespace(val="test", ablation=study.ablation), [ae("base"), ae("lean"), ae("third")],
                       classifiers)
    assert on_test[0]["classifiers"]["finetune"]["val_acc"]["intervals"] == on_test[0]["val_mse"]["intervals"] == 2
    # each comparison named as results.json keeps it: the pair, the strategy, the split (none where one)
    assert [rows[0][f]["comparison"] for f in ("val_mse", "test_mse")] == ["base vs lean, validation", "base vs lean, test"]
    assert [rows[0]["classifiers"]["finetune"][f]["comparison"] for f in ("val_acc", "test_acc")] == [
        "base vs lean, finetune, validation", "base vs lean, finetune, test"]
    assert {on_test[0][f]["comparison"] for f in ("val_mse", "test_mse")} == {"base vs lean"}
    # the same MSE on both encoders of each line: no interval, but the family is what the study asks: its 2
    # lines' validation and test changes
    assert rows[0]["val_mse"]["intervals"] == 4
    assert (fine["verdict"], scratch["verdict"]) == ("higher", "not shown")
    lines = classifier_lines(rows)
    assert [(a["strategy"], a["seeds"]) for a in lines] == [("finetune", 3), ("scratch", 3)]
    lo, hi = fine["ci"]
    assert _ablation_effect(lines[0], "val_acc") == f"+1.87 pts [{lo:+.2f} pts, {hi:+.2f} pts]: higher"
    assert _ablation_summary(lines, "val_acc") == (
        "Of the ablation's 2 classifier comparisons (their intervals a family of their own, apart from the MSE's), "
        "1 raises the classifiers' validation accuracy at 95 % "
        "confidence (“no dropout” on finetune, +1.87 pts); 1 is not shown to move it (no interval wholly on one side of 0).")
    assert _ablation_summary(lines[:1], "val_acc") == (
        "The ablation's change “no dropout” on finetune (+1.87 pts) raises the classifiers' validation accuracy at "
        "95 % confidence.")
    two = [{**a, "seeds": 2} for a in lines]
    assert _ablation_summary(two, "val_acc") == (
        "With 2 seeds the ablation's classifier comparisons give no verdict (that takes 3 seeds, chosen before the runs: a new experiment with --seeds 3 or more); their table "
        "gives each comparison with its interval.")


def test_each_table_of_verdicts_counts_its_comparisons_once_and_a_table_that_asks_none_is_left_out():
    """``families``, which the report compares with an earlier report's: the claims' comparisons (a
    derived claim's parts are the others', counted once), each ablation change's on validation and
    test, and each strategy's of accuracy; a line and its reverse ask one question."""
    from fashionae.verdicts import families

    def effect(comparison: str) -> dict:
        return {"comparison": comparison, "values": [0.1, 0.3], "intervals": 3}

    def line(baseline: str, variant: str, split=(", validation", ", test"), **classifiers) -> dict:
        pair = " vs ".join(sorted((baseline, variant)))
        return {"change": f"{baseline} to {variant}", "baseline": baseline, "variant": variant,
                "val_mse": effect(pair + split[0]), "test_mse": effect(pair + split[1]),
                "classifiers": {s: {"val_acc": effect(f"{pair}, {s}{split[0]}"),
                                    "test_acc": effect(f"{pair}, {s}{split[1]}")} for s in classifiers}}
    small, large = effect("linear-512 vs linear-64"), effect("linear-1024 vs linear-512")
    claims = [{"claim": "64 is worse", "parts": [small, dict(small, direction="below")]},  # one comparison, two thresholds
              {"claim": "1024 is no better", "parts": [large]},
              {"claim": "Shirt is the hardest", "parts": [effect("Shirt vs T-shirt/top"), effect("Shirt vs Pullover")]},
              {"claim": "512 balances", "derived": True, "parts": [dict(small, part="theirs"), dict(large, part="theirs")]},
              {"claim": "not tested", "parts": []}]
    results = {"claims": claims,
               "ablation": [line("a", "b", frozen=1, finetune=1), line("b", "a", frozen=1), line("a", "c")]}
    assert families(results) == {"claims": 4, "ablation": 4, "ablation-classifiers": 4}
    # a study validated on its test split: the two figures of a change ask one question
    results["ablation"] = [line("a", "b", ("", ""), frozen=1)]
    assert families(results) == {"claims": 4, "ablation": 1, "ablation-classifiers": 1}
    # no classifiers, no ablation, no claims (another dataset than Fashion-MNIST): those tables left out
    assert families({"claims": claims, "ablation": [line("a", "b")]}) == {"claims": 4, "ablation": 2}
    assert families({"claims": claims, "ablation": []}) == families({"claims": claims}) == {"claims": 4}
    assert families({"claims": [], "ablation": None}) == {}


def test_an_ablation_line_of_one_model_on_some_seeds_alone_is_shown_not_judged_nor_counted():
    """Seeds trained by machines whose auto chose otherwise (a Ray cluster of CPUs with and
    without native bf16): "auto" against "fp32" is one model on the seeds where auto chose fp32
    and two on the others, a change that measures neither. Shown, each seed named, not judged,
    not counted; a classifier on those encoders is one model where its own records are alike and,
    if it takes their weights, where they are."""
    from types import SimpleNamespace
    from fashionae.summary import _ablation_summary
    from fashionae.results import stats
    from fashionae.verdicts import ablation, classifier_lines, families

    def group(name, trained_with, mixed=None, **figures):
        return {"name": name, "seeds": [0, 1, 2], "epochs": 2, "trained_with": trained_with, "mixed": mixed or {},
                **{k: stats(v) for k, v in figures.items()}}
    auto = group("auto", {"train.precision": "by seed: bf16, fp32, bf16"},
                 {"train.precision": ["bf16", "fp32", "bf16"]}, val_mse=[0.010, 0.020, 0.030], test_mse=[0.010, 0.020, 0.030])
    fp32 = group("fp32", {"train.precision": "fp32"}, val_mse=[0.0102, 0.020, 0.0305], test_mse=[0.0102, 0.020, 0.0305])
    lean = group("lean", {"train.precision": "fp32", "model.dropout": 0.0}, val_mse=[0.007, 0.0138, 0.0213],
                 test_mse=[0.007, 0.0138, 0.0213])
    for a in (auto, fp32):
        a["trained_with"]["model.dropout"] = 0.2
    lines = [SimpleNamespace(change="fp32", baseline="auto", variant="fp32"),
             SimpleNamespace(change="no dropout", baseline="fp32", variant="lean")]
    acc = [0.80, 0.81, 0.82]
    classifiers = [  # finetune as its encoder resolved auto; frozen pinned to fp32; scratch as finetune
        group("ft-auto", auto["trained_with"] | {"strategy": "finetune"}, auto["mixed"], val_acc=acc, test_acc=acc),
        group("ft-fp32", fp32["trained_with"] | {"strategy": "finetune"}, val_acc=acc, test_acc=acc),
        group("fr-auto", {"train.precision": "fp32", "strategy": "frozen"}, val_acc=acc, test_acc=acc),
        group("fr-fp32", {"train.precision": "fp32", "strategy": "frozen"}, val_acc=[0.81, 0.8, 0.83],
              test_acc=acc),
        group("sc-auto", auto["trained_with"] | {"strategy": "scratch"}, auto["mixed"], val_acc=acc, test_acc=acc),
        group("sc-fp32", fp32["trained_with"] | {"strategy": "scratch"}, val_acc=acc, test_acc=acc)]
    for k in classifiers:
        k["strategy"], k["encoder"] = k["name"].split("-")
        k["strategy"] = {"ft": "finetune", "fr": "frozen", "sc": "scratch"}[k["strategy"]]
    partly, judged = ablation(SimpleNamespace(val="holdout", ablation=lines), [auto, fp32, lean], classifiers)
    assert partly["differs"] == {"train.precision": ["by seed: bf16, fp32, bf16", "fp32"]}
    for figure in ("val_mse", "test_mse"):
        assert partly[figure]["same_model"] == [1] and partly[figure]["ci"] is None
        assert partly[figure]["ci_reason"] == "one model on seed 1 and two on the others, as trained: not judged"
        assert partly[figure]["verdict"] == "not shown" and "same_model" not in judged[figure]
    assert judged["val_mse"]["intervals"] == 2 and families({"claims": [], "ablation": [partly, judged]}) == {"ablation": 2}
    # each classifier one model on seed 1 alone: finetune and scratch as their records, frozen (alike on every
    # seed) as its encoders
    assert {s: f["val_acc"]["same_model"] for s, f in partly["classifiers"].items()} == {
        "finetune": [1], "frozen": [1], "scratch": [1]}
    assert _ablation_summary([partly, judged]).endswith(
        " “fp32” compares one model on some seeds and two on the others, as the runs record them (machines whose "
        "auto chose otherwise), so no verdict.")
    assert "2 seeds" not in _ablation_summary(classifier_lines([partly]), "val_acc")
    # a classifier's seed whose encoders are not known (not a seed of theirs) is not called one model
    more = [{**k, "seeds": [0, 1, 2, 3], "mixed": {}, "trained_with": fp32["trained_with"] | {"strategy": "finetune"},
             "val_acc": stats([*acc, 0.8]), "test_acc": stats([*acc, 0.8])} for k in classifiers[:2]]
    (line,) = ablation(SimpleNamespace(val="holdout", ablation=lines[:1]), [fp32, {**fp32, "name": "auto"}], more)
    assert line["val_mse"]["same_model"] is True and line["classifiers"]["finetune"]["val_acc"]["same_model"] == [0, 1, 2]
    # two seeds of one model: named as such
    both = {**fp32, "trained_with": {**fp32["trained_with"], "train.precision": "by seed: fp32, fp32, bf16"},
            "mixed": {"train.precision": ["fp32", "fp32", "bf16"]}}
    (line,) = ablation(SimpleNamespace(val="holdout", ablation=lines[:1]), [auto, both], [])
    assert line["val_mse"]["same_model"] == [1, 2]
    assert line["val_mse"]["ci_reason"].startswith("one model on seeds 1, 2 and two on the others")
    # alike on every seed, each seed of its own precision: one model, as a line alike throughout
    (line,) = ablation(SimpleNamespace(val="holdout", ablation=lines[:1]), [auto, {**auto, "name": "fp32"}], [])
    assert line["val_mse"]["same_model"] is True


def test_a_table_without_intervals_whose_effects_record_no_reason_is_not_given_one():
    """Effects without an interval and without a ``ci_reason`` (a record that gives none): the
    caption says each line says why, not "None, so no intervals"."""
    from fashionae.verdicts import without_intervals
    line = {"val_mse": {"ci": None, "comparison": "a vs b, validation"},
            "test_mse": {"ci": None, "ci_reason": None, "comparison": "a vs b, test"}}
    assert without_intervals({"claims": [], "ablation": [line]}, "ablation") == "no intervals (each line says why)"


def test_a_classifier_line_counts_the_seeds_its_classifiers_share_not_its_encoders():
    """Classifiers trained on 2 of their encoders' 3 seeds: their line has 2 seeds, and says so."""
    from types import SimpleNamespace
    from fashionae.results import stats
    from fashionae.summary import _ablation_summary
    from fashionae.verdicts import ablation, classifier_lines

    def ae(name):
        return {"name": name, "seeds": [0, 1, 2], "epochs": 2, "val_mse": stats([0.01, 0.02, 0.03]),
                "test_mse": stats([0.01, 0.02, 0.03]), "trained_with": TRAINED_WITH[name]}

    def clf(encoder, val):
        return {"strategy": "finetune", "encoder": encoder, "seeds": [0, 1], "val_acc": stats(val), "test_acc": stats(val)}
    study = SimpleNamespace(val="holdout", ablation=[SimpleNamespace(change="no dropout", baseline="base", variant="lean")])
    (row,) = ablation(study, [ae("base"), ae("lean")], [clf("base", [0.90, 0.91]), clf("lean", [0.92, 0.935])])
    (line,) = classifier_lines([row])
    assert (row["seeds"], line["seeds"]) == (3, 2)
    assert _ablation_summary([line], "val_acc").startswith(
        "With 2 seeds the ablation's classifier comparisons give no verdict")
