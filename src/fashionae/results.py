"""``results.json``: every figure of a study, gathered from its run folders.

Each figure is ``{"mean", "std", "values"}`` over seeds. Names say the mode a train figure
was measured in, the same as in ``metrics.jsonl``: ``train_mse`` / ``train_acc`` are averaged
during the epoch in training mode (dropout on), ``train_eval_mse`` / ``train_eval_acc`` are
the train set re-measured in eval mode. The claims (``claims.py``), the ablation's lines
(``verdicts.py``) and the targets are judged here; the report is drawn from this file and the
run folders.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from .data import CLASSES, FASHION_MNIST
from .errors import UserError
from .files import read_json, read_rebuildable_json
from .plan import PlannedRun, explored_run, known_config, make_plan
from .runconfig import RunConfig
from .runfolder import RunFolder
from .runs import DATA_DECIDED, LOCAL
from .settings import AUTOENCODER, CLASSIFIER, LARGEST
from .study import Study
from .studyfolder import StudyFolder
from .verdicts import ablation, comparisons, families

RESULTS_FORMAT = 12  # 3: simultaneous intervals ("ci", "intervals", "ci_level"), a claim's parts all judged;
# 4: an ablation line's "classifiers" (accuracy changes by strategy) and each change's "unit";
# 5: each effect's "comparison"; an autoencoder's "trained_with" and every group's "mixed" (as the runs ran);
# 6: a run's "sessions" (1, or more where it was stopped and resumed), its host and executor each session's;
# 7: "seed_history", the seeds of each report of the folder that had other seeds than the one before;
# 8: "family_history", the same of the comparisons each table of verdicts asks (``families``);
# 9: a classifier's "trained_with", and an ablation change's "same_model" where it compares one model (``_one_model``);
# 10: "same_model" a list of seeds where a change compares one model on those seeds alone; "mean_image",
# its MSE (whether or not the baselines were computed), by which a seed that learned nothing is named;
# 11: "epochs_history", each model's epochs in each report where they changed (``epochs_read``)
# 12: an accuracy part's "test_set_error", the test set's own sampling error of its effect (``claims``)

# results.json figure -> summary.json key
AE_FIGURES = {"train_eval_mse": "train_eval_loss", "train_mse": "train_loss", "val_mse": "val_loss",
              "best_val_mse": "best_val_loss", "test_mse": "test_loss", "best_epoch": "best_epoch",
              "seconds": "seconds_total"}
CLF_FIGURES = {"train_eval_acc": "train_eval_acc", "train_acc": "train_acc", "val_acc": "val_acc",
               "best_val_acc": "best_val_acc", "test_acc": "test_acc", "seconds": "seconds_total"}


def stats(values: list[float]) -> dict:
    """Mean and std over seeds; not a number when a seed's is not (a diverged run)."""
    if not all(math.isfinite(v) for v in values):
        return {"mean": math.nan, "std": math.nan, "values": values}
    return {"mean": statistics.mean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0, "values": values}


def _figures(summaries: list[dict], table: dict) -> dict:
    return {name: stats([s[key] for s in summaries]) for name, key in table.items()}


def model_cost(model_config) -> dict:
    """Parameters, forward FLOPs per image (counted by torch) and the latent's size."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from .models import build_model
    model = build_model(model_config).eval()
    x = torch.rand(2, 1, *model_config.image_size)
    with FlopCounterMode(display=False) as counter, torch.enable_grad():  # the layers one by one, each
        model(x)                                                          # counted (fused ones are not)
    return {"parameters": sum(p.numel() for p in model.parameters()),
            "mflops_per_image": counter.get_total_flops() / 2 / 1e6, "latent_size": model.encoder.latent}


# what a claim compares: the architecture and the latent size
NOT_COMPARED = ("model.arch", "model.latent")


def trained_with(configs: list[RunConfig]) -> tuple[dict, dict]:
    """What a group's runs (its seeds) were trained with, as they ran ("auto" made concrete), and
    where its seeds differ (a precision chosen otherwise by another machine, or by an invocation
    with other options): {setting: value}, its value "by seed: ..." where they differ, and
    {setting: [value of each seed]} for those (``RunConfig.trained_with``)."""
    ids = [c.trained_with() for c in configs]
    keys = dict.fromkeys(k for i in ids for k in i)
    mixed = {k: [i.get(k) for i in ids] for k in keys if any(i.get(k) != ids[0].get(k) for i in ids)}
    return {k: "by seed: " + ", ".join(map(str, mixed[k])) if k in mixed else ids[0][k] for k in keys}, mixed


def comparable(settings: dict) -> dict:
    """What an autoencoder was trained with beside ``NOT_COMPARED``: the claims compare
    autoencoders only where these are equal, so that a comparison changes one thing."""
    return {k: v for k, v in settings.items() if k not in NOT_COMPARED}


def _groups(plan: list[PlannedRun], kind: str) -> dict[str, list[PlannedRun]]:
    groups: dict[str, list[PlannedRun]] = {}
    for run in plan:
        if run.kind == kind:
            groups.setdefault(run.group, []).append(run)
    return groups


def _run_info(name: str, run) -> dict:
    """A run's provenance. Where its sessions (a run stopped and resumed) differed in threads or
    hardware, which moves its result, or in host or executor, each session's in turn: "2 → 1"."""
    sessions, data = run.sessions(), run.data_record()
    env = sessions[-1]  # the last session's

    def each(value_of):
        values = [value_of(s) for s in sessions]
        changes = [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]
        return changes[0] if len(changes) == 1 else " → ".join(map(str, changes))
    return {"run": name, "device": env.get("device"), "precision": env.get("precision"),
            "hardware": each(lambda s: s.get("gpu") or s.get("cpu") or s.get("platform")),
            "threads": each(lambda s: s.get("threads")), "host": each(lambda s: s.get("host")),
            "processes": env.get("processes", 1), "executor": each(lambda s: s.get("executor", LOCAL)),
            "sessions": len(sessions), "seconds": run.summary()["seconds_total"],
            "val_indices_sha256": data.get("val_indices_sha256")}


def _baselines(folder: StudyFolder, study: Study) -> dict:
    """The study's baselines.json ({} when the study computes none), checked: there, sound, and
    computed with the study's settings."""
    from .baselines import baselines_fault, changed_settings, setting_text, study_settings
    if not study.baselines.enabled:
        return {}
    path = folder / folder.BASELINES
    fix = "run the study command again: it computes them again"
    if not path.is_file():
        raise UserError(f"baselines {path} are missing (the study was stopped before it computed them?); {fix}")
    baselines = read_json(path, "baselines", fix=fix)
    if fault := baselines_fault(baselines):
        raise UserError(f"baselines {path} are damaged or were edited ({fault}); {fix}")
    theirs = baselines["settings"] if isinstance(baselines.get("settings"), dict) else {}
    if changed := changed_settings(theirs, study_settings(study)):
        key, there, asked = changed[0]
        raise UserError(f"baselines {path} were computed with other settings ({key} {setting_text(key, there)} there, "
                        f"{setting_text(key, asked)} in the study); {fix}")
    return baselines


def _explore_result(study: Study, name: str, run: RunFolder) -> dict | None:
    """The latent-space section of autoencoder ``name``, where the study's [explore] asks for it: one
    that ``fashionae explore`` made of a run it does not name is not the study's, and one made
    otherwise than it asks (with t-SNE or without) is said, to be made again."""
    if name not in study.explore.autoencoders:
        return None
    result = run.explore_result()
    if result is None:
        raise UserError(f"{run.explore_json()} {run.explore_fault()}; run the study command again: it computes it "
                        "again")
    if result.get("model_sha256") not in (None, run.model_sha256()):  # (None: written before 0.3.2)
        raise UserError(f"{run.explore_json()} holds the latent space of another model than {run.path}'s (copied from "
                        "another run, or made before the run was trained on); run the study command again: it maps "
                        "it again")
    if not run.mapped_as_asked(result, study.explore.tsne):
        raise UserError(f"{run.explore_json()} was mapped {'without' if study.explore.tsne else 'with'} t-SNE "
                        f"(by fashionae explore, or before the study's [explore] changed), where the study asks for "
                        f"tsne = {str(study.explore.tsne).lower()}; run the study command again: it maps it again")
    return result


def _meanwhile(folder: StudyFolder) -> str:
    """What an unfinished study's folder still gives: its last report, which stays until the study
    writes the next. (Not a report of its finished seeds alone: each report is a look at the
    verdicts, which weakens those of the finished study; and a classifier on the "best" encoder
    of fewer seeds may be another run.)"""
    if (folder / folder.REPORT_HTML).is_file():
        return f" ({folder / folder.REPORT_HTML}, its last report, is still there)"
    return ""


def collect_results(out: str | Path, check_files: bool = True) -> dict:
    """What results.json holds (``report.write_report`` writes it with the pages), from the study
    folder's study.json and run folders alone; ``check_files``:
    every run's files as written (its model's checksum, its summary's seals), which the study
    command checked before its runs (``preflight.check_plan``) and wrote since."""
    from .claims import assess_claims, listed
    from .reference import REFERENCE
    folder = StudyFolder(out).require()
    study = folder.study()
    plan = make_plan(study)
    unfinished = [r.name for r in plan if not folder.run(r.name).is_complete()]
    for r in plan:  # a run that lost its settings, as eval says it (its settings are read next)
        if not (run := folder.run(r.name)).is_run():
            run.refuse_lost_config(str(run.path))
    for name in unfinished:  # one that finished and lost its summary cannot be resumed: said first
        folder.run(name).refuse_lost_summary()
    # runs of fewer epochs than the study asks for: a study stopped while --extend trained them on
    shorter = [r.name for r in plan if (run := folder.run(r.name)).is_complete()
               and run.config().train.epochs < r.config.train.epochs]
    if left := [r.name for r in plan if r.name in unfinished or r.name in shorter]:
        line = None if shorter else folder.resume_command()  # (the line it kept ran it without --extend)
        if line:
            again = f"run its command again to resume it{_meanwhile(folder)}: {line}"
        else:
            again = (f"run the same `fashionae study ... --out {folder.path}{' --extend' if shorter else ''}` command "
                     f"again to {'train them on' if shorter else 'resume it'}{_meanwhile(folder)}")
        raise UserError(f"study {folder.path} is not finished: {len(left)} of its {len(plan)} runs "
                        f"{'is' if len(left) == 1 else 'are'} left ({left[0]} first"
                        + (f"; {len(shorter)} to train on to more epochs" if shorter else "") + f"); {again}")
    runs = {r.name: folder.run(r.name).require() for r in plan}
    for r in plan:  # each folder holds the run the study names there, not one moved or renamed into its place
        if check_files:
            runs[r.name].progress()
        cfg = known_config(r, study, folder)[0]
        chosen = tuple(k for k, v in cfg.used_identity().items() if v == "auto")  # what the run chose
        if diffs := runs[r.name].differences(cfg, ignore=DATA_DECIDED + chosen, asked="in the study"):
            said = runs[r.name].in_words(diffs[0], cfg)
            raise UserError(f"{runs[r.name].path} holds another run than the study's {r.name} ({said}): "
                            + ("its encoder was trained on or again since; run" if said != diffs[0] else
                               "a run folder was moved, renamed or edited; put it back, or run")
                            + f" `fashionae study ... --out {folder.path}` to see what to train again")
    ae_names = {r.name: r.group for r in plan if r.kind == AUTOENCODER}

    autoencoders = []
    for name, group in _groups(plan, AUTOENCODER).items():
        summaries = [runs[r.name].summary() for r in group]
        first = runs[group[0].name]
        m, seen = first.config().model, first.data_record()
        epochs = summaries[0]["epochs"]
        settings, mixed = trained_with([runs[r.name].config() for r in group])
        autoencoders.append({
            "name": name, "runs": [folder.entry(r.name) for r in group], "arch": m.arch,
            "latent": None if "latent" in m.unused() else m.latent, "decoder": m.decoder,
            "encoder_type": m.encoder_type, "dropout": m.dropout, "seeds": [r.seed for r in group],
            "settings": comparable(settings), "trained_with": settings, "mixed": mixed,
            **_figures(summaries, AE_FIGURES), "epochs": epochs,
            "images": {k: seen.get(f"{k}_size") for k in ("train", "val", "test")},  # seed 0's (test: 0.3.3 on)
            "seconds_per_epoch": stats([s["seconds_total"] / s["epochs"] for s in summaries]),
            "val_rise_after_best": stats([(s["val_loss"] - s["best_val_loss"]) / s["best_val_loss"]
                                          for s in summaries]),
            **model_cost(m), "explore": _explore_result(study, name, runs[explored_run(study, name)]),
        })
    classifiers = []
    for name, group in _groups(plan, CLASSIFIER).items():
        summaries = [runs[r.name].summary() for r in group]
        configs = [runs[r.name].config() for r in group]
        encoder = ae_names.get(configs[0].encoder_name, group[0].encoder)
        classifiers.append({
            "name": name, "strategy": group[0].config.strategy, "encoder": encoder,
            "trained_with": trained_with(configs)[0], "mixed": trained_with(configs)[1],
            "seeds": [r.seed for r in group], "runs": [folder.entry(r.name) for r in group],
            "paper_head": configs[0].model.paper_head, **_figures(summaries, CLF_FIGURES),
            "epochs": summaries[0]["epochs"],
            "per_class_acc": [stats(list(v)) for v in zip(*(s["per_class_acc"] for s in summaries))],
            "most_confused": summaries[0]["most_confused"],
            "confusion_matrices": [s["confusion_matrix"] for s in summaries],
        })
    baselines = _baselines(folder, study)
    fashion = study.dataset == FASHION_MNIST
    results = {
        "format": RESULTS_FORMAT, "study": study.name, "profile": study.profile,
        "description": study.description, "profile_note": study.profile_note,
        "dataset": runs[plan[0].name].config().dataset, "classes": list(runs[plan[0].name].classes()),
        "val": study.val, "seeds": len(study.seeds),
        "classifier_encoders": list(dict.fromkeys(c["encoder"] for c in classifiers)),
        "autoencoders": autoencoders, "classifiers": classifiers, "baselines": baselines,
        "reference": REFERENCE if fashion else None,
        # (the baselines' where they were computed, as their table shows it; none: before 0.3.23)
        "mean_image": (baselines or {}).get("mean_image") or folder.mean_image(),
        "runs": [_run_info(name, run) for name, run in runs.items()],
    }
    results["claims"] = listed(assess_claims(results)) if fashion else []
    results["ablation"] = ablation(study, autoencoders, classifiers)
    # the last report's, its histories as kept apart (a results.json deleted to rebuild it loses no look)
    before = _counted_as_now((read_rebuildable_json(folder / folder.RESULTS) or {}) | folder.looks(), results)
    results["seed_history"] = history(before, "seed_history", len(study.seeds), before.get("seeds"), _counts)
    results["family_history"] = history(before, "family_history", families(results), None,  # (kept from 0.3.20)
                                        lambda f: isinstance(f, dict) and all(map(_counts, f.values())))
    results["epochs_history"] = history(before, "epochs_history", epochs_read(results), epochs_read(before),
                                        lambda e: isinstance(e, dict) and bool(e) and all(map(_counts, e.values())))
    results["targets"] = reached_targets(study, folder, plan)
    if timing := folder.timing():  # damaged: left out, written again by the next study that trains
        results["timing"] = timing
    return results


def _counted_as_now(before: dict, results: dict) -> dict:
    """The last report's results.json (``before``), its last family as this version counts it
    where it was written before lines of one model were left out of their family (format 9; on
    some seeds alone, 10) and asked the very comparisons this report asks: the family changed by
    that rule alone, not by a look."""
    kept, written = before.get("family_history"), before.get("format")
    if not (isinstance(written, int) and written < 10 and isinstance(kept, list) and kept):
        return before
    try:
        same = comparisons(before, judged=False) == comparisons(results, judged=False)
    except (KeyError, TypeError, AttributeError):  # a damaged results.json: its history is history()'s to judge
        return before
    if not same:
        return before
    counted = [*kept[:-1], families(results)]
    return {**before, "family_history": counted[:-1] if counted[-2:-1] == counted[-1:] else counted}


def history(before: dict, key: str, now, then, valid) -> list:
    """``now`` (the seeds, ``families``) of each report of this folder, this one's last, where it
    changed from the one before: each report is a look at the study, and a verdict read after
    several looks, or after its family changed, is weaker than its interval says (the report says
    so). Carried from the last report's results.json (``before``): of a damaged history, its entries
    that are ``valid`` (an earlier look is not lost with a damaged one), then that report's own
    (``then``) where it is valid and not the last of them (a history from before it was kept: that
    alone)."""
    kept = [v for v in before.get(key) if valid(v)] if isinstance(before.get(key), list) else []
    if valid(then) and kept[-1:] != [then]:
        kept.append(then)
    return kept + [now] if kept[-1:] != [now] else kept


def epochs_read(results: dict) -> dict | None:
    """The epochs each model of a report was read at (its name's): a report after its runs were
    trained on (``--extend``), or trained again for other epochs, is another look at the study (None:
    a results.json without them, damaged)."""
    try:
        aes, clfs = ({m["name"]: m["epochs"] for m in results[kind]} for kind in ("autoencoders", "classifiers"))
    except (KeyError, TypeError):
        return None
    both = aes.keys() & clfs.keys()  # an autoencoder named as a classifier group is (a strategy's name): two models
    return {**{f"autoencoder {n}" if n in both else n: e for n, e in aes.items()},
            **{f"classifier {n}" if n in both else n: e for n, e in clfs.items()}}


def _counts(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 < v <= LARGEST


def reached_targets(study: Study, folder: StudyFolder, plan: list[PlannedRun]) -> list[dict]:
    """For each target of the profile (validation figures only): reached or not, and when —
    in training seconds into the study (the runs' epoch times added up in plan order, seed 0),
    so a resumed study reports the same figure."""
    t = study.targets
    goals = []
    if t.autoencoder is not None:  # with its val_mse: load_study checks both are set
        goals.append((AUTOENCODER, t.autoencoder, "val_loss", t.val_mse, f"{t.autoencoder} val MSE <= {t.val_mse}"))
    if t.classifier is not None:  # with its val_acc
        goals.append((CLASSIFIER, t.classifier, "val_acc", t.val_acc, f"{t.classifier} val accuracy >= {t.val_acc}"))
    rows, elapsed = [], 0.0
    for run in (r for r in plan if r.seed == 0):
        metrics = folder.run(run.name).metrics()
        for kind, who, key, goal, text in goals:  # an autoencoder by its name, a classifier by its group
            if run.kind == kind and who == run.group:
                better = (lambda v: v <= goal) if key == "val_loss" else (lambda v: v >= goal)
                seconds, hit = elapsed, None
                for row in metrics:
                    seconds += row["seconds"]
                    if better(row[key]):
                        hit = (row["epoch"], seconds)
                        break
                best = (min if key == "val_loss" else max)(row[key] for row in metrics)
                rows.append({"target": text, "reached": hit is not None, "epoch": hit and hit[0],
                             "seconds_into_study": hit and hit[1], "best": best})
        elapsed += sum(row["seconds"] for row in metrics)
    return rows


def encoder_of(results: dict, classifier: dict) -> dict | None:
    """The record of the autoencoder a classifier stage (its results.json record) started from."""
    return next((a for a in results["autoencoders"] if a["name"] == classifier["encoder"]), None)


def classes_of(results: dict) -> tuple[str, ...]:
    return tuple(results.get("classes") or CLASSES)


def confusion_text(most_confused: dict) -> str:
    """A classifier's most frequent confusion (its summary's ``most_confused``), in words."""
    if most_confused["count"] is None:
        return "none: the run diverged"
    if most_confused["count"] == 0:
        return "none (no test image misclassified)"
    return f"{most_confused['true']} taken for {most_confused['predicted']} ({most_confused['count']}×)"


def pca_row(results: dict, k: int | None) -> dict | None:
    """The baselines' PCA with as many components as a latent of size ``k`` (capped at what was fitted)."""
    rows = (results["baselines"] or {}).get("pca", [])
    return max((r for r in rows if r["k"] <= k), key=lambda r: r["k"], default=None) if k else None


# a seed that learned next to nothing: its test figure this near a trivial answer's (trained models
# are far from both: this study's autoencoders reach a third of the mean image's MSE after 2 epochs)
NEAR_MEAN_IMAGE = 0.9  # of the mean image's test MSE, or more
NEAR_GUESS = 0.05  # above a uniform guess's accuracy, or less (15 % of 10 classes, 55 % of 2)


def near_trivial(results: dict, kind: str) -> tuple[list[tuple[dict, int, float]], float | None]:
    """The seeds of ``kind`` ("autoencoders", "classifiers") whose test figure is next to a trivial
    answer's, each (its group's record, seed, figure), and that answer's figure: the mean image's
    MSE (results.json's ``mean_image``: none where a folder of 0.3.22 or before computed no
    baselines), a uniform guess's accuracy. Not a divergence (a figure that is not a number) but a collapse, the same output for
    every image, or a blow-up short of one, which the means and the comparisons take in as any
    seed's figure. The random-frozen control too: a random encoder's features, with a trained
    layer, are far from a guess (75 % on Fashion-MNIST)."""
    if kind == "autoencoders":
        if not (mean := results.get("mean_image")):
            return [], None
        trivial, key = mean["test_mse"], "test_mse"
        near = lambda v: v >= NEAR_MEAN_IMAGE * trivial  # noqa: E731
    else:
        trivial, key = 1 / len(classes_of(results)), "test_acc"
        near = lambda v: v <= trivial + NEAR_GUESS  # noqa: E731
    return [(r, s, v) for r in results[kind] for s, v in zip(r["seeds"], r[key]["values"])
            if math.isfinite(v) and near(v)], trivial
