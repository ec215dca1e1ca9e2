"""Before a study trains: what each planned run's folder holds, what is refused, what is said.

``plan_states`` gives every run of a plan its state (new, resume, complete, extend, changed) and,
for a changed one, why (the plan shows a run to resume with no training state as ``restart``).
``check_plan`` / ``refuse_before_training`` refuse, all in one message and before anything
trains, the run folders that hold what the study no longer asks for, finished classifiers under
an earlier name, models too large for the machine and data that lacks what a run needs;
``said_before_training`` gives the notes ``study`` and ``study --plan`` print alike.
"""

from __future__ import annotations

from dataclasses import replace

from .baselines import check_classes
from .claims import MIN_SEEDS, seeds_advice, tests_a_claim
from .data import FASHION_MNIST, Dataset, make_splits
from .errors import UserError
from .files import refuse_a_link_to_nothing
from .plan import PlannedRun, clf_run_name, known_config, stem_and_seed
from .progress import count
from .results import comparable
from .runconfig import RunConfig
from .runfolder import RunFolder
from .runs import check_every_class, subset_note, with_data
from .settings import AUTOENCODER, CLASSIFIER
from .study import BEST, Study
from .studyfolder import StudyFolder
from .training import refuse_too_large



EXTENDABLE = "--extend trains it on"  # the end of a changed run's reason, where it can be trained on
ON_EXTENDED = "which --extend trains on"  # the end of a classifier's, where its encoder is to be trained on


def plan_states(plan: list[PlannedRun], study: Study, folder: StudyFolder, data: Dataset,
                extend: bool = False) -> tuple[dict[str, str], dict[str, str], dict[str, tuple[RunConfig, bool]]]:
    """The state of every run ('new', 'resume', 'complete', 'extend': its folder holds the run
    with fewer epochs, to be trained on, as ``extend`` asks; or 'changed': its folder holds a run
    the study file no longer asks for), why each changed one is, and its resolved settings as
    far as they are known (``known_config``: the settings, and whether they are final). A classifier that took
    the weights of an encoder now changed or trained on was trained on an earlier encoder: changed too,
    although its own settings may read the same. One whose encoders (for "best", every one compared)
    are not finished or are trained on, or that takes only its encoder's architecture (scratch,
    random-frozen), is judged on its own settings until they are trained: ``run_planned`` judges it
    again before it trains, ``run_study`` after the runs if it is finished."""
    states, why, known = {}, {}, {}
    for run in plan:
        run_folder = folder.run(run.name)
        unfinished = [n for n in run.needs if not folder.run(n).is_complete()]
        extended = [n for n in run.needs if states.get(n) == "extend"]  # the autoencoders come first in the plan
        cfg, final = known_config(run, study, folder, {*why, *extended})
        cfg = concrete(cfg, run_folder, data)
        known[run.name] = cfg, final
        if not run_folder.is_run():
            states[run.name] = run_folder.state_for(cfg)  # new, or refused: a folder holding no run
            continue
        reason, deferred, diffs, ignore = None, False, [], ()
        if run.kind == CLASSIFIER:
            trained_on = folder.encoder_run_name(run_folder.config())
            # an encoder of the same settings whose folder is gone (deleted, damaged) or unfinished is
            # trained again: on the same threads it comes out bit for bit the same, which the digest
            # a finished classifier recorded shows once it is (``run_study`` checks again)
            again = trained_on in unfinished and trained_on not in why
            weights = "encoder_sha256" not in cfg.unused()  # scratch, random-frozen: its architecture only
            if run.encoder != BEST and trained_on not in run.needs:
                reason = f"trained on {trained_on}, the encoder is now {run.needs[0]}"
            elif (trained_on in why and weights) or trained_on not in run.needs:
                reason = f"trained on an earlier {trained_on}"
            elif trained_on in extended and weights:
                reason = f"trained on {trained_on}, {ON_EXTENDED}"
            elif again and not run_folder.is_complete() and weights:
                # half-trained on the encoder's weights: it cannot resume on another one
                reason = f"its encoder {trained_on} is to be trained again, and it cannot resume on another"
            elif again or unfinished or extended or trained_on in why:
                # judged once its encoder (for "best", every one compared) is trained; one that takes
                # only its encoder's architecture (scratch, random-frozen) is judged by its own settings
                # while that encoder is refused: its folder deleted, the encoder trains again and it stays
                deferred = True
                # its own settings now, as far as they are known ("best" is not chosen yet: its model
                # settings, the chosen encoder's, are a stand-in)
                model = [k for k in cfg.used_identity() if k.startswith("model.")] if run.encoder == BEST else []
                ignore = ("encoder_sha256", *model)
                diffs = run_folder.differences(cfg, ignore=ignore)
            elif cfg.encoder_run and cfg.encoder_name != trained_on:
                reason = f"trained on {trained_on}, the encoder is now {cfg.encoder_name}"
        if reason is None and not deferred:
            diffs = run_folder.differences(cfg)
        if reason is None and diffs:
            reason = "; ".join(run_folder.in_words(d, cfg) for d in diffs[:3])
            if run_folder.other_epochs(cfg, ignore):  # trained on where it can be (``RunFolder.extends``)
                cannot = run_folder.why_not_extend(cfg)
                if extend and not cannot:
                    states[run.name] = "extend"
                    continue
                reason += f"; a run {cannot}" if cannot else f"; {EXTENDABLE}"
            elif run_folder.fewer_epochs(cfg, ignore):
                reason += "; --extend trains a run on to more epochs, never back to fewer"
        if reason and not run_folder.holds_training():  # stopped before its first epoch, say: nothing to keep
            states[run.name] = "new"
        elif reason:
            states[run.name], why[run.name] = "changed", reason
        else:
            states[run.name] = run_folder.progress()
    return states, why, known


def concrete(cfg: RunConfig, run_folder: RunFolder, data: Dataset) -> RunConfig:
    """A run's settings as its folder would hold them: "auto" resolved (as the run there started,
    if it did) and what the data decides."""
    return with_data(replace(cfg, train=cfg.train.validate().resolved(run_folder.started())), data)


def renamed_runs(plan: list[PlannedRun], states: dict[str, str], folder: StudyFolder,
                 data: Dataset) -> dict[str, str]:
    """{autoencoder run to train anew: the folder of a finished run the study no longer asks
    for that holds the same settings}: an autoencoder renamed in the study file, which would be
    trained again, and the classifiers trained on it refused."""
    finished = [folder.run(name) for name in _not_asked(plan, folder) if folder.run(name).is_complete()]
    found = {}
    for run in plan:
        if not finished or run.kind != AUTOENCODER or states[run.name] != "new":
            continue
        cfg = concrete(run.config, folder.run(run.name), data)
        for old in finished:
            try:
                if not old.differences(cfg):
                    found[run.name] = old.path.name
                    break
            except (UserError, KeyError, TypeError, ValueError):  # damaged, or another kind: not that run
                continue
    return found


def renamed_text(renamed: dict[str, str]) -> str:
    """What to say of ``renamed_runs``: which folder holds which run, and how to keep it."""
    new, old = next(iter(renamed.items()))
    more = f" (and {len(renamed) - 1} more such run{'s' * (len(renamed) > 2)})" if len(renamed) > 1 else ""
    return (f"{old} holds the run {new} asks for, with the same settings{more}: if the autoencoder was renamed "
            "in the study file, give it its old name again to keep its runs")


def check_plan(plan: list[PlannedRun], study: Study, folder: StudyFolder, data: Dataset,
               extend: bool = False) -> dict[str, str]:
    """The state of every run, checked before anything runs: run folders holding runs the study
    no longer asks for are refused now, all of them in one message, finished classifiers it asks
    for under another name, and classifiers on data that lacks a class too, not halfway through."""
    states, why, known = plan_states(plan, study, folder, data, extend)
    refuse_before_training(plan, states, why, known, study, folder, data)
    return states


def refuse_before_training(plan: list[PlannedRun], states: dict[str, str], why: dict[str, str],
                           known: dict[str, tuple[RunConfig, bool]], study: Study, folder: StudyFolder,
                           data: Dataset) -> None:
    """Everything a study refuses before it trains, for ``study`` and ``study --plan`` alike:
    run folders that are links to nothing, run folders it no longer asks for (``why``), finished classifiers under an earlier name,
    classifiers and baselines on data that lacks what they need, models too large and ablation
    lines of one model, from each run's settings as far as they are known (``known``,
    ``plan_states``'s) (and, of the layer above, ``explore.refuse_unexplorable``: latent-space
    sections)."""
    # the study's default --out: where a copy of a study file that kept its name writes too
    shared_name = study.name if folder.path.resolve() == study.default_folder.resolve() else None
    for run in plan:  # (said now, not when its turn comes to train)
        refuse_a_link_to_nothing(folder.run(run.name).path)
    refuse_changed(why, folder, renamed_runs(plan, states, folder, data), shared_name)
    refuse_earlier_names(plan, folder)
    refuse_missing_classes(plan, states, data)
    refuse_too_large_models(plan, states, known)
    refuse_lines_of_one_model(plan, states, known, study, folder)
    if study.baselines.enabled:
        check_classes(make_splits(data, study.val, study.baselines.train_subset, study.baselines.eval_subset))


def said_before_training(plan: list[PlannedRun], states: dict[str, str], study: Study, folder: StudyFolder,
                         data: Dataset) -> list[str]:
    """What ``study`` and ``study --plan`` say of its runs once nothing was refused: the notes on
    the runs (``notes_on_runs``), then on the run folders it does not ask for, then on seeds too
    few for a verdict (``too_few_seeds_note``)."""
    return [note for note in (*notes_on_runs(plan, states, folder, data), unasked_runs_note(plan, states, folder, data),
                              too_few_seeds_note(study)) if note]


def too_few_seeds_note(study: Study) -> str | None:
    """Said before the runs of a study whose seeds are too few for the verdicts its report would
    give (its ablation's lines; on Fashion-MNIST, the claims its models test, ``tests_a_claim``; a
    classifier on the "best" encoder may be on any): the seeds are chosen before, never added after
    a look (docs/claims.md)."""
    n = len(study.seeds)
    stage, names = study.classifiers, [a.name for a in study.autoencoders]
    models = {"autoencoders": [{"name": a.name, "arch": a.model.arch, "latent": a.model.latent,
                                "encoder_type": a.model.encoder_type, "settings": comparable(a.trained_with())}
                               for a in study.autoencoders],
              "classifiers": [{"strategy": s, "encoder": name} for e in (stage.encoders if stage else [])
                              for name in (names if e == BEST else [e]) for s in stage.strategies]}
    claims = study.dataset == FASHION_MNIST and tests_a_claim(models)
    judged = " and ".join(what for what, there in (("the claims", claims), ("the ablation", study.ablation)) if there)
    if n >= MIN_SEEDS or not judged:
        return None
    return (f"with {count(n, 'seed')} the report gives no verdict on {judged} ({seeds_advice(False)}); "
            + ("each effect comes with its interval" if n > 1 else "one seed gives no interval either"))


def refuse_too_large_models(plan: list[PlannedRun], states: dict[str, str],
                            known: dict[str, tuple[RunConfig, bool]]) -> None:
    """The autoencoders still to train whose training would not fit in the memory of the device
    they train on (``training.refuse_too_large``), refused by name; a classifier is smaller than
    the autoencoder whose encoder it takes."""
    for run in plan:
        if run.kind == AUTOENCODER and states[run.name] != "complete":
            cfg = known[run.name][0]
            refuse_too_large(cfg.model, cfg.train, run.name)


def refuse_lines_of_one_model(plan: list[PlannedRun], states: dict[str, str],
                              known: dict[str, tuple[RunConfig, bool]], study: Study, folder: StudyFolder) -> None:
    """An ablation line whose two autoencoders, set apart in the study file by "auto" alone
    (precision "auto" against "bf16"), would train the same model on a seed still to train, as
    their runs would record it ("auto" resolved on this machine, or as a kept run started):
    refused before it trains, as a line of two alike autoencoders is when the file is read (a seed
    of one model would count in the line as any other); so is one whose finished seeds are of one
    model and whose seeds to train would not be (the line would mix them). A line of one model on
    every seed, all finished, is kept (``verdicts._one_model``: reported, not judged)."""
    runs = {(r.group, r.seed): r for r in plan if r.kind == AUTOENCODER}
    for c in study.ablation:
        written = [next(a for a in study.autoencoders if a.name == n).trained_with() for n in (c.baseline, c.variant)]
        keys = [k for k in written[0] if written[0][k] != written[1].get(k)]  # (what "auto" may make alike)
        alike, finished_alike, to_train = [], [], []  # seeds
        as_run, kept = {}, False  # (finished or not: the settings of one model)
        for s in study.seeds:
            pair = runs[c.baseline, s], runs[c.variant, s]
            finished = all(states[r.name] == "complete" for r in pair)
            base, variant = (known[r.name][0].trained_with() for r in pair)
            if base == variant:
                (finished_alike if finished else alike).append(s)
                as_run.setdefault(finished, base)
                # where "auto" was resolved as a run kept here started, not on this machine
                kept |= not finished and any(folder.run(r.name).started() for r, w in zip(pair, written)
                                              if any(w[k] == "auto" for k in keys))
            elif not finished:
                to_train.append(s)
        def said(finished: bool) -> str:  # (of seeds alike as run: the settings auto made alike)
            return "; ".join(f"{k.split('.', 1)[-1]} {written[0][k]} and {written[1].get(k)}, "
                             f"both {as_run[finished].get(k)}" for k in keys)
        if alike:
            on = "" if len(alike) == len(study.seeds) else f" on {_seeds_text(alike)}"
            raise UserError(f"ablation {c.change!r}: {c.baseline} and {c.variant} would train the same model{on}, as "
                            "they differ only by what \"auto\" resolves to" + (
                                " on this machine, or resolved to where a kept run started" if kept else " on this machine")
                            + f": {said(False)}; give both the setting explicitly, each its own value, to compare them, or "
                            "remove the line")
        if finished_alike and to_train:
            raise UserError(f"ablation {c.change!r}: {c.baseline} and {c.variant} trained the same model on "
                            f"{_seeds_text(finished_alike)}, as those runs started ({said(True)}), and would train two on "
                            f"{_seeds_text(to_train)}: a line mixing them measures neither; remove the line, or delete "
                            "the runs of one model and give both the setting explicitly, each its own value")


def _seeds_text(seeds: list[int]) -> str:
    return f"seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))}"


def refuse_missing_classes(plan: list[PlannedRun], states: dict[str, str], data: Dataset) -> None:
    """The classifiers still to train need images of every class in what they train and are
    tested on (``runs.check_every_class``): refused before anything trains."""
    pending = [r.config.train for r in plan if r.kind == CLASSIFIER and states[r.name] != "complete"]
    for t in {(t.val, t.train_subset, t.eval_subset): t for t in pending}.values():  # each split once
        check_every_class(make_splits(data, t.val, t.train_subset, t.eval_subset), data, t)


def notes_on_runs(plan: list[PlannedRun], states: dict[str, str], folder: StudyFolder, data: Dataset) -> list[str]:
    """What the study says of its runs before they train (``study`` and ``study --plan``), each note
    once for all it concerns: ``runs.subset_note`` of those still to train (a run alone says its
    own), what keep_state cannot do for a run (``keep_state_note``), and the class names a kept
    run trained with where the data's are others now (``classes_note``)."""
    runs: dict[str, list[str]] = {}
    for run in plan:
        todo = states[run.name] != "complete"
        for note in (todo and subset_note(run.config.train, data), keep_state_note(run, states, folder),
                     classes_note(run, states, folder, data)):
            if note:
                runs.setdefault(note, []).append(run.name)
    return [f"{names[0]}" + (f" and {count(len(names) - 1, 'more run')}" if len(names) > 1 else "") + f": {note}"
            for note, names in runs.items()]


def classes_note(run: PlannedRun, states: dict[str, str], folder: StudyFolder, data: Dataset) -> str | None:
    """A finished run kept names the classes as its data did when it trained: where the dataset
    names them otherwise now (its dataset.toml edited; the names are not in the data's digest), it
    keeps its own, and the report names the classes as its runs do (it reads them, not the data).
    (A run resumed or trained on records the data's names as it starts again.)"""
    if states[run.name] != "complete":
        return None
    theirs = folder.run(run.name).classes()
    if theirs == data.classes:
        return None
    renamed = [f"{old[:20]} as {new[:20]}" for old, new in zip(theirs, data.classes) if old != new]
    if len(theirs) != len(data.classes):
        renamed.append(f"{len(data.classes)} classes, not {len(theirs)}")
    return (f"trained when the data named its classes otherwise (it names {', '.join(renamed[:3])}"
            f"{', …' if len(renamed) > 3 else ''} now): a finished run keeps the names it trained with (its numbers "
            "stand), and the report names the classes as its runs do; delete the runs to train them with the new "
            "names")


def keep_state_note(run: PlannedRun, states: dict[str, str], folder: StudyFolder) -> str | None:
    """Why keep_state = true will not let --extend train this run on, if it will not: a one-cycle
    schedule (fitted to its epochs), or a run finished before keep_state was asked for."""
    t = run.config.train
    if not t.keep_state:
        return None
    if t.fitted_to_epochs:
        return (f"keep_state keeps a training state that --extend cannot use: the {t.schedule} schedule is fitted "
                "to the epochs (--extend trains on runs of a constant schedule)")
    run_folder = folder.run(run.name)
    if states[run.name] == "complete" and not run_folder.has_checkpoint():
        return ("finished before keep_state was asked for, so no training state was kept: --extend cannot train "
                "it on (delete a run to train it anew with keep_state)")
    return None


def unasked_runs_note(plan: list[PlannedRun], states: dict[str, str], folder: StudyFolder,
                      data: Dataset) -> str | None:
    """What to say of run folders the study holds but does not ask for (an autoencoder taken
    out of the file or renamed, or the seeds beyond --seeds): kept, and left out of the results."""
    refused = {old for old, _ in earlier_names(plan, folder)}  # said by their own refusal
    others = [name for name in _not_asked(plan, folder) if name not in refused]
    if not others:
        return None
    renamed = renamed_runs(plan, states, folder, data)
    # runs of seeds beyond --seeds: the report of a study run again with fewer seeds covers those
    # alone, and --seeds N reports them all, where no seed is missing in between
    stems = {stem_and_seed(run.name)[0] for run in plan}
    seeds = {found[1] for name in others if (found := stem_and_seed(name)) and found[0] in stems}
    asked = {run.seed for run in plan}
    every = seeds and seeds | asked == set(range(max(seeds) + 1))
    return (f"{folder.path} also holds {len(others)} run folder(s) this study does not ask for ({', '.join(others[:3])}"
            f"{', …' if len(others) > 3 else ''}): kept, and left out of its results and report"
            + (f" (`--seeds {max(seeds) + 1}` reports them with the others)" if every else "")
            + (f"; {renamed_text(renamed)} (else it trains again)" if renamed else ""))


def _not_asked(plan: list[PlannedRun], folder: StudyFolder) -> list[str]:
    """The folders of runs/ that no run of the plan is named for, sorted."""
    runs, asked = folder / folder.RUNS, {run.name for run in plan}
    return sorted(p.name for p in runs.iterdir() if p.is_dir() and p.name not in asked) if runs.is_dir() else []


def earlier_names(plan: list[PlannedRun], folder: StudyFolder) -> list[tuple[str, str]]:
    """(folder, name the study asks for it by) of each finished classifier the study would train
    again under a new name: a stage that gained a second encoder names its folders
    clf-ENCODER-STRATEGY-seedK, one back to a single encoder clf-STRATEGY-seedK."""
    asked = {run.name for run in plan}
    found = []
    for run in plan:
        if run.kind != CLASSIFIER or folder.run(run.name).is_run():
            continue
        s, k = run.config.strategy, run.seed
        for old in (clf_run_name(s, k), clf_run_name(s, k, run.encoder)):
            if old not in asked and folder.run(old).is_complete() and _holds(folder.run(old), run, folder):
                found.append((old, run.name))
    return found


def _renames_text(renames: list[tuple[str, str]]) -> str:
    shown = ", ".join(f"{old} → {new}" for old, new in renames[:3]) + (", …" if len(renames) > 3 else "")
    return (f"{len(renames)} finished classifier folder(s) hold runs this study asks for under another name, since "
            f"its [classifiers] stage changed its number of encoders ({shown})")


def refuse_earlier_names(plan: list[PlannedRun], folder: StudyFolder) -> None:
    """Before anything trains: finished classifiers are not trained again under a new name."""
    if renames := earlier_names(plan, folder):
        raise UserError(f"{_renames_text(renames)}: rename them to keep them, or delete them to train them anew")


def _trained_on(run_folder: RunFolder, folder: StudyFolder) -> str | None:
    """The run name of the encoder a classifier's folder was trained on (None: not a classifier,
    or damaged)."""
    try:
        return folder.encoder_run_name(run_folder.config()) or None
    except UserError:
        return None


def _holds(old: RunFolder, run: PlannedRun, folder: StudyFolder) -> bool:
    """Whether a classifier folder holds ``run``'s strategy, on an encoder ``run`` needs."""
    try:
        cfg = old.config()
        return cfg.strategy == run.config.strategy and folder.encoder_run_name(cfg) in run.needs
    except (UserError, TypeError, ValueError):  # damaged: not taken for it
        return False


def refuse_changed(why: dict[str, str], folder: StudyFolder, renamed: dict[str, str] | None = None,
                   shared_name: str | None = None) -> None:
    """The runs ``plan_states`` found changed (``why``), refused in one message whose fix names
    what to delete: none where every one of them can be trained on (--extend), else those that
    cannot (and --extend trains the others, or the encoders the deleted classifiers took); where
    an autoencoder was renamed (``renamed_runs``), first how to keep them all; where the folder
    is the default one of every study named ``shared_name``, first how to keep them apart (a
    copy of a study file, changed, that kept the name of the one whose runs these are)."""
    if not why:
        return
    alike: dict[str, list[str]] = {}  # the runs of each reason (an epochs' change of every seed: said once)
    for name, reason in list(why.items())[:6]:
        alike.setdefault(reason, []).append(name)
    shown = [(f"{', '.join(names[:-1])} and {names[-1]} (each: " if len(names) > 1 else f"{names[0]} (") + f"{reason})"
             for reason, names in alike.items()]
    more = f" and {len(why) - 6} more" if len(why) > 6 else ""
    them = "them" if len(why) > 1 else "it"
    gone = [name for name, reason in why.items() if not reason.endswith(EXTENDABLE)]
    extend = len(gone) < len(why) or any(reason.endswith(ON_EXTENDED) for reason in why.values())
    if not gone:
        fix = f"run the study again with --extend to train {them} on, or delete {them} to train anew"
    elif extend:
        named = them if len(gone) == len(why) else ", ".join(gone[:6]) + (f" and {len(gone) - 6} more,"
                                                                         if len(gone) > 6 else "")
        fix = f"delete {named} and run the study again with --extend (its other finished runs are kept)"
    else:
        fix = f"delete {them} and run the study again (its other finished runs are kept), or choose another --out"
    if renamed and all(_trained_on(folder.run(name), folder) in renamed.values() for name in why):  # it keeps them all
        fix = f"{renamed_text(renamed)}; else {fix}"
    elif shared_name:  # (and "choose another --out" said first)
        fix = (f"if {'they are' if len(why) > 1 else 'it is'} another study file's, named {shared_name!r} too (every "
               f"study of that name writes to {folder.path} unless --out says otherwise), give this study a name of "
               f"its own in its file, or another --out, to keep {them}; "
               f"else {fix.removesuffix(', or choose another --out')}")
    raise UserError(f"{count(len(why), 'run folder')} of {folder / folder.RUNS} "
                    f"{'holds a run that differs' if len(why) == 1 else 'hold runs that differ'} from what the study "
                    "asks for now: "
                    f"{', '.join(shown)}{more}; {fix}")
