"""The report's summary (summary.py), from results.json built by hand (made_results.py): what
was run, the rankings, the verdicts of the claims and the ablation, and the caveats of another
look and of a family that changed."""

from made_results import ablation, autoencoder, claim, classifier, other_results, part, results


def test_the_summary_names_each_derived_claim_that_was_tested_and_no_other():
    from fashionae.summary import summary
    study = other_results()
    study["claims"] += [claim("restates more", "refuted", [part("see above", -0.3, [-0.4, -0.2])], derived=True),
                        claim("restates nothing", "not tested", [], derived=True)]
    text = "\n".join(summary(study))
    assert ("“restates two”, which follows from the first two, is confirmed. “restates more”, which follows "
            "from the first two, is refuted.") in text
    assert "restates nothing" not in text



def test_the_summary_joins_one_or_two_kinds_of_verdict_as_a_sentence():
    from fashionae.summary import summary
    one, two, other = (claim("one", "confirmed", [part("above", 0.3, [0.2, 0.4])]),
                       claim("two", "confirmed", [part("above", 0.2, [0.1, 0.3])]),
                       claim("other", "refuted", [part("below", -0.05, [-0.07, -0.03], verdict="refuted")]))
    for claims, sentence in (([one, two], "2 are confirmed (“one”; “two”)."),
                             ([one, other], "1 is confirmed (“one”) and 1 is refuted (“other”).")):
        text = "\n".join(summary(other_results() | {"claims": claims}))
        assert text.endswith(f"Of the study's {len(claims)} claims with a test of their own, {sentence}")



def test_under_three_seeds_the_summary_counts_the_claims_the_study_tests():
    from fashionae.summary import summary
    one = claim("one", "inconclusive", [part("above", 0.3, [0.2, 0.4])])
    untested = claim("untested", "not tested", [])
    for claims, sentence in (([one, untested], "the one claim the study tests cannot be confirmed or refuted (that "
                                               "takes 3 seeds, chosen before the runs: a new experiment with --seeds 3 or more); the claims table gives the side it leans to; 1 more is "
                                               "not tested."),
                             ([one, one], "none of the 2 claims the study tests can be confirmed or refuted (that "
                                          "takes 3 seeds, chosen before the runs: a new experiment with --seeds 3 or more); the claims table gives the side each leans to."),
                             # a claim that restates others is in the table, not in the count: said so
                             ([one, one, {**one, "claim": "both", "derived": True}],
                              "none of the 2 claims the study tests can be confirmed or refuted (that takes 3 seeds, chosen before the runs: a new experiment with --seeds 3 or more); "
                              "the claims table gives the side each leans to; “both” follows from the first two.")):
        text = "\n".join(summary(results() | {"claims": claims}))
        assert f"With 2 seeds {sentence}" in text



def test_a_diverged_classifier_is_named_and_left_out_of_the_ranking():
    from fashionae.summary import summary
    r = other_results()
    r["classifiers"].append(classifier("finetune", "finetune", (float("nan"), 0.99, 0.99)))
    lines = summary(r)
    assert ("finetune had a run that diverged (scores that are not numbers, so no accuracy): left out of the "
            "ranking below.") in lines
    assert "The highest mean test accuracy is shared by frozen and scratch, 86.50 ± 0.50 % (a uniform guess: 50.00 %; " \
           "logistic regression on the pixels: 93.77 %)." in lines



def test_a_family_changed_is_said_under_its_own_table_and_only_where_verdicts_are_given():
    from fashionae.report import terminal_tables
    from fashionae.summary import other_family, summary
    r = other_results()
    r["family_history"] = [{"claims": 3, "ablation": 2}, {"claims": 3, "ablation": 4, "ablation-classifiers": 2},
                           {"claims": 3, "ablation": 4, "ablation-classifiers": 1}]
    said = ("In an earlier report of this study folder the ablation's accuracy table made 2 comparisons, and makes 1 "
            "now: more comparisons make each interval wider, fewer narrower, so a verdict may read otherwise than it "
            "did for that alone; and a comparison dropped after a look leaves the others' verdicts weaker than their "
            "intervals say (docs/claims.md).")
    assert other_family(r) == said and other_family(r, ("ablation",)) is None and said in summary(r)
    captions = [c for c, _, _ in terminal_tables(r)]
    assert not any(said in c for c in captions)  # no accuracy table here: said under none of the others
    r["family_history"][-1]["ablation"] = 2
    ablation = next(c for c in terminal_tables(r) if "baseline → variant" in c[1])[0]
    assert ablation.endswith("). Not one change alone: “no dropout” changes dropout 0.2 → 0; epochs 2 → 4. In an "
                             "earlier report of this study folder the ablation's MSE table made 4 comparisons, and "
                             "makes 2 now: more comparisons make each interval wider, fewer narrower, so a verdict may "
                             "read otherwise than it did for that alone; and a comparison dropped after a look leaves "
                             "the others' verdicts weaker than their intervals say (docs/claims.md).")
    assert other_family({**r, "seeds": 2}) is None  # no verdict below 3 seeds: nothing to read otherwise



def test_the_ablation_summary_says_what_its_seeds_allow():
    from fashionae.summary import _ablation_summary
    one = ablation("no dropout", 0.08, None, seeds=1, reason="one seed: no spread to measure")
    assert _ablation_summary([one]) == ("With 1 seed the ablation gives no verdict (that takes 3 seeds, chosen before the runs: a new experiment with --seeds 3 or more); "
                                        "its table gives each change.")
    assert _ablation_summary([{**one, "seeds": 2}, {**one, "seeds": 3}]) == (
        "With 2 seeds the ablation gives no verdict (that takes 3 seeds, chosen before the runs: a new experiment with --seeds 3 or more); its table gives each change "
        "with its interval.")
    lower, higher = ablation("a", -0.12, [-0.2, -0.04], "lower"), ablation("b", 0.08, [0.02, 0.15], "higher")
    unsure = ablation("c", 0.01, [-0.05, 0.07])
    diverged = ablation("d", float("nan"), None, reason="a run diverged")
    assert _ablation_summary([lower]) == "The ablation's change “a” (-12.0 %) lowers the validation MSE at 95 % confidence."
    assert _ablation_summary([higher]) == "The ablation's change “b” (+8.0 %) raises the validation MSE at 95 % confidence."
    assert _ablation_summary([unsure, diverged]) == (
        "The ablation's change “c” (+1.0 %) is not shown to move the validation MSE: its interval holds 0. "
        "“d”: a run diverged, so no verdict.")
    assert _ablation_summary([diverged]) == "“d”: a run diverged, so no verdict."
    same = ablation("s", 0.0, None, reason="the same effect on every seed: no spread to measure")
    assert _ablation_summary([same]) == ("The ablation's change “s” (+0.0 %) is not shown to move the validation MSE: "
                                         "the same effect on every seed: no spread to measure.")
    assert _ablation_summary([lower, {**lower, "change": "e"}]) == (
        "Of the ablation's 2 changes, 2 lower the validation MSE at 95 % confidence (“a”, -12.0 %; “e”, -12.0 %).")
    assert _ablation_summary([higher, higher, lower]) == (
        "Of the ablation's 3 changes, 1 lowers the validation MSE at 95 % confidence (“a”, -12.0 %); 2 raise it at 95 % "
        "confidence (“b”, +8.0 %; “b”, +8.0 %).")
    assert _ablation_summary([unsure, unsure]) == \
        "Of the ablation's 2 changes, none moves the validation MSE at 95 % confidence."
    assert _ablation_summary([unsure, unsure, higher]) == (
        "Of the ablation's 3 changes, 1 raises the validation MSE at 95 % confidence (“b”, +8.0 %); 2 are not shown "
        "to move it (no interval wholly on one side of 0).")



def test_lines_of_one_model_are_said_beside_a_diverged_one_and_two_seeds_give_them_no_seed_note():
    """Lines that compare one model with itself (``verdicts._one_model``) are named together, after
    a diverged line's note (which they add to, not replace); and below 3 seeds such a line is
    still "not judged", not "no verdict" for its seeds."""
    from fashionae.report import _ablation_effect
    from fashionae.summary import _ablation_summary
    from fashionae.verdicts import SAME_MODEL

    def one_model(change):
        line = ablation(change, 0.01, None, reason=SAME_MODEL)
        return {**line, "val_mse": {**line["val_mse"], "same_model": True, "verdict": "not shown"},
                "test_mse": {**line["test_mse"], "same_model": True, "verdict": "not shown"}}
    diverged = ablation("d", float("nan"), None, reason="a run diverged")
    assert _ablation_summary([diverged, one_model("s"), one_model("t")]) == (
        "“d”: a run diverged, so no verdict. “s”, “t” compare one model with itself, as the runs record them "
        "(nothing they use differs: a setting given where the other's auto chose the same), so no verdict.")
    two = {**one_model("s"), "seeds": 2}
    assert _ablation_summary([{**ablation("x", 0.01, [0.0, 0.02]), "seeds": 2}, two]).startswith(
        "With 2 seeds the ablation gives no verdict (that takes 3 seeds, chosen before the runs: a new experiment with --seeds 3 or more); its table gives each change with its "
        "interval where it has one. “s” compares one model")
    assert _ablation_summary([two]) == (  # said below 3 seeds too, and no interval promised for it
        "With 2 seeds the ablation gives no verdict (that takes 3 seeds, chosen before the runs: a new experiment with --seeds 3 or more); its table gives each change. “s” "
        "compares one model with itself, as the runs record them (nothing they use differs: a setting given where the "
        "other's auto chose the same), so no verdict.")
    assert _ablation_effect(two, "val_mse").endswith(SAME_MODEL) and "no verdict" not in _ablation_effect(two, "val_mse")
    assert _ablation_effect({**ablation("x", 0.01, None, reason="r"), "seeds": 2}, "val_mse").endswith("(2 seeds: no verdict)")



def test_the_summary_of_a_bare_study_and_of_one_with_ties_and_diverged_runs():
    """No seeds, dataset or reference recorded, one autoencoder and nothing else; then two runs
    diverged (one autoencoder left to rank), three classifiers tied, the control above them all."""
    from fashionae.summary import summary
    nan = float("nan")
    bare = results(reference=None, classifiers=[], claims=[], ablation=[], targets=[], baselines=None,
                   autoencoders=[autoencoder("solo", 64, (0.02,))])
    del bare["seeds"], bare["dataset"]
    assert summary(bare) == ["The paper study (quick profile) trained 1 autoencoder on its dataset with 1 seed, "
                             "validated on held-out training images.",
                             "The lowest mean test MSE per pixel is solo's, 0.0200."]
    ties = results(reference=None, dataset="digits", seeds=1, claims=[], ablation=[], targets=[],
                   autoencoders=[autoencoder("a", 64, (nan,)), autoencoder("b", 64, (nan,)),
                                 autoencoder("c", 64, (0.02,))],
                   classifiers=[classifier("random-frozen", "random-frozen", (0.99,)), classifier("x", "frozen", (0.8,)),
                                classifier("y", "finetune", (0.8,)), classifier("z", "scratch", (0.8,))])
    assert summary(ties) == [
        "The paper study (quick profile) trained 3 autoencoders and 4 classifiers on digits with 1 seed, validated "
        "on held-out training images.",
        "a, b had a run that diverged (a figure that is not a number): left out of the ranking below.",
        "The lowest mean test MSE per pixel is c's, 0.0200; PCA with 64 components reaches 0.0105 (c: 0.0200).",
        "The highest mean test accuracy is shared by x, y and z, 80.00 % (a uniform guess: 10.00 %; the random-frozen "
        "control: 99.00 %; logistic regression on the pixels: 83.77 %).",
        "These rank means over seeds, and say nothing of which differences are real."]



def test_a_family_changed_in_two_tables_is_said_for_each_and_a_new_table_is_no_change():
    from fashionae.summary import other_family
    r = other_results()
    r["family_history"] = [{"claims": 3, "ablation": 2}, {"claims": 4, "ablation": 4, "ablation-classifiers": 2}]
    assert other_family(r) == (
        "In an earlier report of this study folder the claims made 3 comparisons, and makes 4 now; the ablation's MSE "
        "table made 2 comparisons, and makes 4 now: more comparisons make each interval wider, fewer narrower, so a "
        "verdict may read otherwise than it did for that alone.")  # more alone: no word of one dropped
    r["family_history"] = [{"claims": 3}, {"claims": 3, "ablation": 2}]  # a table no earlier report had: no change
    assert other_family(r) is None
    r["family_history"] = [{"ablation": 2}]
    assert other_family(r) is None


def test_below_three_seeds_a_line_of_one_model_on_some_seeds_has_no_interval_promised():
    """A line that is one model on some seeds alone (``same_model``: a list) has no interval, as a
    line of one model on every seed has none: below 3 seeds the summary promises an interval only
    "where it has one"."""
    from fashionae.summary import _ablation_summary
    line = ablation("s", 0.01, None, seeds=2, reason="one model on seed 0 and two on the others, as trained: not judged")
    partly = {**line, "val_mse": {**line["val_mse"], "same_model": [0], "verdict": "not shown"},
              "test_mse": {**line["test_mse"], "same_model": [0], "verdict": "not shown"}}
    assert _ablation_summary([{**ablation("x", 0.01, [0.0, 0.02]), "seeds": 2}, partly]) == (
        "With 2 seeds the ablation gives no verdict (that takes 3 seeds, chosen before the runs: a new experiment with "
        "--seeds 3 or more); its table gives each change with its interval where it has one. “s” compares one model "
        "on some seeds and two on the others, as the runs record them (machines whose auto chose otherwise), so no "
        "verdict.")


def test_the_summary_gives_the_image_counts_only_when_every_autoencoder_shares_them():
    from fashionae.summary import summary
    r = results()
    for ae in r["autoencoders"]:
        ae["images"] = {"train": 8000, "val": 2000, "test": 10000}
    assert summary(r)[0].endswith(" Each autoencoder trained on 8,000 images and was validated on 2,000 and tested "
                                  "on 10,000.")
    r["autoencoders"][0]["images"] = {"train": 4000, "val": 2000, "test": 10000}  # (one trained on fewer)
    assert "Each autoencoder" not in summary(r)[0]


def test_what_a_line_changes_is_said_by_setting_name_with_a_flag_and_all_images_as_a_study_file_writes_them():
    """``differs`` in a run's own order (its settings' fields: latent before dropout_after_pool):
    said sorted by name, a flag as a study file writes it (true, false), no subset as "all"."""
    from fashionae.summary import not_one_change
    line = {**ablation("several", 0.01, None), "differs": {
        "model.latent": [512, 64], "model.dropout_after_pool": [False, True], "train.train_subset": [None, 500]}}
    assert not_one_change({"ablation": [line]}) == ("Not one change alone: “several” changes dropout_after_pool false "
                                                    "→ true; latent 512 → 64; train_subset all → 500.")


def test_a_verdict_within_the_test_sets_own_noise_is_named_and_no_other():
    from fashionae.summary import summary
    close = dict(part("finetune − scratch", 0.8, [0.1, 1.5], unit="points"), threshold=0.0, test_set_error=1.34)
    far = dict(part("finetune − frozen", 5.0, [4.0, 6.0], unit="points"), threshold=2.0, test_set_error=1.34)
    undecided = dict(close, verdict="inconclusive")
    claims = [claim("fine-tuning beats training from scratch", "confirmed", [close]),
              claim("fine-tuning beats the frozen encoder by a wide margin", "confirmed", [far]),
              claim("undecided", "inconclusive", [undecided])]
    text = "\n".join(summary(other_results() | {"claims": claims, "seeds": 3}))
    assert ("Within the test set's own noise, which the intervals over seeds leave out: “fine-tuning beats training "
            "from scratch” is confirmed at +0.80 pts against a threshold of +0.00 pts, where the test set alone "
            "typically moves it by about 1.34 pts: such a verdict holds on these test images, and might not on "
            "another test set of their size.") in text
    assert "wide margin” is confirmed at" not in text and "“undecided” is" not in text
    claims[1]["parts"][0]["effect"] = 4.0  # 2 points above its threshold: within 2 × 1.34
    assert "; “fine-tuning beats the frozen encoder by a wide margin” is confirmed at +4.00 pts against a threshold " \
           "of +2.00 pts" in "\n".join(summary(other_results() | {"claims": claims, "seeds": 3}))
