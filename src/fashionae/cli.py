"""The ``fashionae`` command line: a function per command (``cmd_<command>``) that reads its
options (``options.py``), calls the package and prints what it answers; ``main`` runs one."""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from . import settings
from .errors import (TRAINING_MEMORY, UserError, exit_process, import_whole, late_stop, ready_streams, run_command,
                     say_error, started_by_torchrun)
from .files import RUNS
from .options import build_parser
from .progress import seconds_text
from .settings import AUTOENCODER, CLASSIFIER

if TYPE_CHECKING:  # the command line imports torch only when a command needs it
    from .models import ModelConfig

MEMORY_SETTINGS = {  # a command's options that ask it for less memory, said where it runs out (else none)
    "train-ae": TRAINING_MEMORY, "train-clf": TRAINING_MEMORY, "study": TRAINING_MEMORY,
    "baselines": "use smaller subsets (--train-subset, --eval-subset)",
    "data --from-pictures": "use a smaller --image-size"}


def cmd_data(a) -> int:
    import torch
    from .data import FASHION_MNIST, IMAGE_SIZE, held_out_classes
    from .datasets import load_dataset
    from .images import FILL, INVERT, light_background_line
    if a.from_pictures is not None:
        from .picturefiles import picture_dataset
        if a.dataset == FASHION_MNIST:
            raise UserError("--from-pictures writes a new dataset: name its folder with --dataset NEW_FOLDER")
        if given := [option for option, value in (("--data-dir", a.data_dir), ("--no-verify", a.no_verify)) if value]:
            raise UserError(f"{given[0]} reads a dataset, and --from-pictures writes one: leave {given[0]} out")
        ds, notes = picture_dataset(a.from_pictures, a.dataset, a.image_size, a.invert or INVERT[0],
                                    FILL if a.fill is None else a.fill, log=print)
        as_toml = json.dumps(a.dataset, ensure_ascii=False).replace("\x7f", "\\u007f")  # (JSON's escapes are TOML's,
        # and TOML escapes DEL too)
        print(f"wrote {ds.folder}: the pictures of {a.from_pictures}, prepared at {a.image_size[0]}x{a.image_size[1]}; "
              f"use it with --dataset {shlex.quote(a.dataset)} (or dataset = {as_toml} in a study file)")
        for note in notes:
            print(f"note: {note}")
    else:
        if given := [f"--{k.replace('_', '-')}" for k, default in (("image_size", IMAGE_SIZE), ("invert", None),
                                                                    ("fill", None)) if getattr(a, k) != default]:
            raise UserError(f"{given[0]} goes with --from-pictures (how pictures are made a dataset): add "
                            f"--from-pictures FOLDER, or leave {given[0]} out")
        ds = load_dataset(a.dataset, a.data_dir, verify=not a.no_verify)
    check = "SHA-256 verified" if ds.verified else f"checksums not verified ({ds.unverified_because})"
    h, w = ds.image_size
    print(f"{ds.name} in {ds.folder}: {len(ds.train_images):,} train + {len(ds.test_images):,} test images "
          f"of {h}x{w}, {len(ds.classes)} classes, {check}")
    if ds.pictures:
        print(f"pictures prepared with --invert {ds.pictures['invert']} --fill {ds.pictures['fill']:g}, as classify and "
              "reconstruct prepare those given to its runs")
    if line := light_background_line(ds.train_images):
        print(line)
    counts = torch.bincount(ds.train_labels, minlength=len(ds.classes)).tolist()
    tested = torch.bincount(ds.test_labels, minlength=len(ds.classes)).tolist()
    print("classes (training / test images): " + ", ".join(f"{c} ({n:,} / {m:,})"
                                                          for c, n, m in zip(ds.classes, counts, tested)))
    if empty := [c for c, n, m in zip(ds.classes, counts, tested) if not n or not m]:
        none = any(not n and not m for n, m in zip(counts, tested))  # (a class of no image: a gap in the numbers)
        print(f"note: {len(empty)} class{'es' if len(empty) > 1 else ''} ({', '.join(empty[:3])}"
              f"{', …' if len(empty) > 3 else ''}) lack{'' if len(empty) > 1 else 's'} training or test images: "
              "autoencoders train, but a classifier needs both for every class ("
              + (f"add its pictures to train/CLASS/ and test/CLASS/, delete {a.dataset} and write it again)"
                 if a.from_pictures is not None else
                 "give it images of both sets" + ("; a class without any: number the classes from 0 without gaps)"
                                                  if none else ")")))
    if held := held_out_classes(ds):
        print(f"note: {', '.join(held[:3])}{', …' if len(held) > 3 else ''}: every training image of "
              f"{'this class is' if len(held) == 1 else 'these classes is'} among those --val holdout (the default) "
              "keeps for validation, so a classifier would train without "
              f"{'it' if len(held) == 1 else 'them'}: give {'it' if len(held) == 1 else 'them'} more images, or "
              "validate on the test set (--val test)")
    if ds.train_images.numel() and int(ds.train_images.max()) <= 1:
        print("note: the pixels reach only 1 of 255: images of 0 and 1? scale them to 0-255 (x * 255) before "
              "saving, or the models see them nearly black")
    return 0


def model_options(a, task: str) -> ModelConfig:
    """The model settings of the command line; a latent size given to a model without one is
    refused rather than ignored."""
    from .models import ModelConfig
    model = settings.from_options(ModelConfig, a, task=task)
    if "latent" in model.unused() and "latent" in settings.given(a):
        raise UserError(f"--latent sets the linear arch's bottleneck; the {model.arch} arch has none "
                        "(its latent is the encoder's feature map): drop --latent or use --arch linear")
    return model


def refuse_what_the_encoder_sets(model: ModelConfig, encoder: str, given: frozenset[str]) -> None:
    """A model option given beside --encoder (``given``, at any value) that the encoder's settings
    replace (all but --paper-head): refused rather than ignored."""
    from .runs import classifier_model, encoder_folder
    theirs = classifier_model(encoder_folder(encoder).config().model, model.paper_head)
    ignored = settings.overridden(model, theirs, given)
    if ignored:
        raise UserError(f"{', '.join(ignored)}: a classifier on --encoder {encoder} takes the encoder's model "
                        f"settings (all but --paper-head); leave {'them' if len(ignored) > 1 else 'it'} out")


def resuming_command(a) -> str | None:
    """The shell line that runs this command again from anywhere, which resumes its run: its
    folder, the data as this process found it, and torchrun on one machine (None on several:
    each has its own line)."""
    from .data import DATA_ENV
    from .distributed import torchrun_variable, world_size
    from .resumeline import resume_line
    world = world_size()
    if world > 1 and torchrun_variable("LOCAL_WORLD_SIZE", world, least=1) != world:
        return None
    return resume_line(a.command_line, None if a.data_dir else os.environ.get(DATA_ENV), world)


def train_run(a, model: ModelConfig, out: str, **run) -> dict | None:
    """Execute a run of ``model`` (``model_options``) with the training/data options; the
    summary to print (None on torchrun's processes other than 0)."""
    from .errors import is_main_process
    from .runs import RunConfig, execute
    from .studyfolder import StudyFolder
    from .training import TrainConfig
    if StudyFolder(out).is_study():
        raise UserError(f"--out {out} is a study folder, not a run's; choose another --out")
    train = settings.from_options(TrainConfig, a)
    summary = execute(RunConfig(model=model, train=train, dataset=a.dataset, **run), out,
                      data_dir=a.data_dir, verify=not a.no_verify, extend=a.extend, command=resuming_command(a))
    return summary if is_main_process() else None


def cmd_train_ae(a) -> int:
    from .plan import ae_run_name
    model = model_options(a, AUTOENCODER)
    out = a.out or f"{RUNS}/{ae_run_name(model.shape_text().replace(' ', ''), a.seed)}"  # ae-linear512-seed0
    s = train_run(a, model, out)
    if s is None:
        return 0
    print(f"{out}: val MSE {s['val_loss']:.5f} (best {s['best_val_loss']:.5f} at epoch "
          f"{s['best_epoch']}), test MSE {s['test_loss']:.5f}, {seconds_text(s['seconds_total'])} s, "
          f"{s['images_per_second']:.0f} training images/s")
    return 0


def cmd_train_clf(a) -> int:
    from .plan import clf_run_name
    out = a.out or f"{RUNS}/{clf_run_name(a.strategy, a.seed)}"
    model = model_options(a, CLASSIFIER)
    if a.encoder:
        # (refused as a run of other settings, the encoder was to be deleted)
        if Path(a.encoder).is_dir() and Path(out).resolve() == Path(a.encoder).resolve():
            raise UserError(f"--out {out} is the --encoder run; give the classifier a folder of its own")
        refuse_what_the_encoder_sets(model, a.encoder, settings.given(a))
    s = train_run(a, model, out, strategy=a.strategy, encoder_run=a.encoder)
    if s is None:
        return 0
    from .results import confusion_text
    print(f"{out}: val acc {s['val_acc']:.4f} (best {s['best_val_acc']:.4f}), test acc "
          f"{s['test_acc']:.4f}; most confused: {confusion_text(s['most_confused'])}; "
          f"{seconds_text(s['seconds_total'])} s")
    return 0


def cmd_eval(a) -> int:
    from .runs import evaluate_run
    for name, r, n in evaluate_run(a.run_dir, a.device, a.data_dir, not a.no_verify):
        extra = f"  accuracy {r['acc']:.4f}" if "acc" in r else ""
        diverged = math.isnan(r["loss"]) or math.isnan(r.get("acc", 0))
        note = "  (the model diverged: its outputs are not numbers)" if diverged else ""
        print(f"{name}: {'loss' if 'acc' in r else 'MSE'} {r['loss']:.5f}{extra}  ({n:,} images){note}")
    return 0


def cmd_baselines(a) -> int:
    from .baselines import write_baselines
    from .datasets import load_dataset
    from .files import refuse_unwritable_folder
    from .lock import FolderLock
    from .runs import stderr
    from .study import Baselines
    from .studyfolder import StudyFolder, refuse_a_model_folder
    settings.check(Baselines(logreg_max_iter=a.logreg_max_iter, train_subset=a.train_subset,
                             eval_subset=a.eval_subset))
    out = Path(a.out)
    refuse_a_model_folder(out, "whose baselines `fashionae study` computes with the study's settings")
    refuse_unwritable_folder(out)
    with FolderLock(out):
        data = load_dataset(a.dataset, a.data_dir, not a.no_verify)
        b = write_baselines(out / StudyFolder.BASELINES, data, a.val, a.train_subset, a.eval_subset,
                            a.logreg_max_iter, stderr, keep_others=True)
    pca = ", ".join(f"k={r['k']}: {r['test_mse']:.4f}" for r in b["pca"])
    print(f"PCA test MSE {pca}; mean image {b['mean_image']['test_mse']:.4f}; logistic regression "
          f"on pixels: test accuracy {b['logistic_regression']['test_acc']:.4f}  "
          f"({seconds_text(b['seconds'])} s) -> {out / StudyFolder.BASELINES}")
    return 0


def cmd_study(a) -> int:
    from .runs import RAY
    from .study import bundled_note, kept_words_note, load_study
    from .studyfolder import StudyFolder
    if a.json and not a.plan:
        raise UserError("--json goes with --plan (the plan as JSON); the study itself writes results.json")
    if a.address is not None and not a.address.strip():  # (a shell's "$HEAD" unset: not a local Ray, unsaid)
        raise UserError("--address is empty; give the cluster's HOST:PORT (or auto), or leave it out to start Ray "
                        "on this machine")
    ray_options = {k: getattr(a, k) for k in ("address", "cpus_per_run", "gpus_per_run")
                   if getattr(a, k) is not None}
    if ray_options and a.executor != RAY:
        given = [f"--{k.replace('_', '-')}" for k in ray_options]
        raise UserError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for Ray's executor: add "
                        "--executor ray, or leave it out")
    executor = None
    if a.executor == RAY:  # its options checked now, under --plan too
        from .ray_executor import RayExecutor
        executor = RayExecutor(**ray_options)
    overrides = {k: v for k, v in (("device", a.device), ("precision", a.precision)) if v}
    if a.tensorboard:
        overrides["tensorboard"] = True
    if note := bundled_note(a.study_file):
        print(f"note: {note}", file=sys.stderr)
    study = load_study(a.study_file, a.profile, a.seeds, overrides)  # (said as given)
    if note := kept_words_note(study, a.study_file):
        print(f"note: {note}", file=sys.stderr)
    for names in study.twins():
        quoted = ", ".join(map(repr, names[:-1])) + f" and {names[-1]!r}"
        print(f"note: autoencoders {quoted} have the same settings, so on the same seeds they train the same models "
              + ("twice; change one of them, or remove it" if len(names) == 2 else
                 f"{len(names)} times; change or remove all of them but one"), file=sys.stderr)
    out = a.out or study.default_folder
    if a.plan:
        from .preview import show_plan
        show_plan(study, out, a.data_dir, not a.no_verify, a.json, a.extend)
        if executor is not None:
            print("note: under Ray the runs overlap, each on --cpus-per-run CPUs of the cluster, so the study "
                  "takes less than the estimate, which is of one run at a time on this machine", file=sys.stderr)
        return 0
    from .pipeline import run_study
    from .plan import make_plan
    # a missing extra is said before the study writes anything (ray's: by RayExecutor, above)
    if any(run.config.train.tensorboard for run in make_plan(study)):
        from .tracking import need_tensorboard
        need_tensorboard()
    results = run_study(study, out, a.data_dir, not a.no_verify, command=a.command_line, executor=executor,
                        extend=a.extend, resume=resuming_command(a))
    print_results(results)
    print(f"report: {Path(out) / StudyFolder.REPORT_HTML} (and {StudyFolder.REPORT_MD})")
    return 0


def cmd_report(a) -> int:
    from .lock import FolderLock
    from .report import write_report
    from .results import collect_results
    from .studyfolder import StudyFolder
    folder = StudyFolder(a.study_dir).require()
    if not os.access(folder.path, os.W_OK | os.X_OK):  # a read-only mount, another's study: its tables all the same
        try:
            print_results(collect_results(folder.path))
        except UserError as e:  # (its advice writes there: a copy first)
            raise UserError(f"{e} (in a copy: {folder.path} cannot be written)") from None
        raise UserError(f"cannot write in {folder.path}, so its report is not written (the tables above are its "
                        f"results); {folder.REPORT_ELSEWHERE}")
    with FolderLock(folder.path, tidy=True, elsewhere=folder.REPORT_ELSEWHERE,
                    busy="wait for it to finish, then report it"):
        results = collect_results(folder.path)
        path = write_report(folder.path, results, self_contained=a.self_contained)
    print_results(results)
    print(f"report: {path} " + ("(the figures embedded: one file to send)" if a.self_contained
                                else f"(and {StudyFolder.REPORT_MD}; the figures in {StudyFolder.FIGURES}/)"))
    return 0


def print_results(results: dict) -> None:
    from .pages import text_table
    from .report import terminal_tables
    for caption, header, rows in terminal_tables(results):
        print(f"\n{caption}\n{text_table(header, rows)}")


def cmd_bench(a) -> int:
    from .bench import run_bench
    from .files import refuse_unwritable_folder
    if a.out:  # said before the minutes of measuring, not after
        out = Path(a.out)
        if out.is_dir():
            raise UserError(f"--out {out} is a folder; give the JSON file to write")
        if out.suffix.lower() != ".json":  # never a file of another kind, under --force either
            raise UserError(f"--out {out} must be a .json file, e.g. bench.json")
        if out.exists() and not a.force:
            raise UserError(f"--out {out} already exists; nothing was measured: choose another file, or pass "
                            "--force to replace it")
        refuse_unwritable_folder(out.absolute().parent, "--out's folder")
    run_bench(windows=a.windows, as_json=a.json, show_profile=a.profile, device=a.device, out=a.out,
              images=a.images)
    return 0


def cmd_reconstruct(a) -> int:
    import torch
    from .files import atomic_write, refuse_to_replace
    from .images import is_light
    from .picturefiles import reconstruction_files, side_by_side
    from .inference import LoadedRun
    run = LoadedRun(a.run_dir)
    run.needs(AUTOENCODER)
    notes = [_pictures_as_asked(run, a)]
    sources = reconstruction_files(a.images, Path(a.output), notes.append)
    # every picture is read, and every reconstruction made, before anything is written
    read = run.read_pictures(list(sources.values()))
    for note in filter(None, notes):
        print(note, file=sys.stderr)
    made, light = {}, is_light(run.dataset_levels["background"])
    for target, path in sources.items():
        x = read[path].pixels
        recon = run.reconstruct(x)[0]
        made[target] = (side_by_side(x, recon, light), torch.mean((recon - x) ** 2).item())
    refuse_to_replace({target: png for target, (png, _) in made.items()}, a.force)
    for target, (png, mse) in made.items():
        atomic_write(target, png)
        print(f"{_one_line(sources[target])}: MSE {mse:.5f} -> {_one_line(target)}{_caveats(read[sources[target]])}")
    return 0


def _pictures_as_asked(run, a) -> str:
    """The run's pictures prepared as --invert and --fill ask, else as its dataset's were; the
    notes (one per line) that say so where that is not as Fashion-MNIST's, and where the run
    records no background level of its dataset (said once the pictures are read)."""
    from .images import PICTURES, preparation_problem
    invert, fill = a.invert or run.invert, run.fill if a.fill is None else a.fill
    if problem := preparation_problem(invert, fill):
        raise UserError(f"--{problem}")
    run.invert, run.fill = invert, fill
    kept = [f"--{k} {v:g}" if k == "fill" else f"--{k} {v}" for k, v in run.dataset_pictures.items()
            if v != PICTURES[k] and getattr(a, k) is None]
    return "\n".join(note for note, said in (
        (f"note: pictures prepared as {a.run_dir}'s dataset's were ({', '.join(kept)}; give the option to change it)",
         kept),
        (f"note: {a.run_dir} was trained before 0.3.29 and records no background level of its dataset: pictures are "
         "prepared for a dark background, Fashion-MNIST's (if its images are dark on light, train it again)",
         run.folder.levels_unknown())) if said)


def _one_line(path) -> str:
    """A picture's path as its answer's line starts: quoted where it would break the line (a
    newline in a file name), as it is otherwise."""
    from .datasets import garbles_a_line
    return repr(str(path)) if garbles_a_line(str(path)) else str(path)


def _caveats(picture) -> str:
    """What makes the answer for a picture say little, as the end of its line."""
    return "".join(f" ({c})" for c in picture.caveats)


def cmd_classify(a) -> int:
    from .picturefiles import picture_files
    from .inference import LoadedRun
    run = LoadedRun(a.run_dir)
    run.needs(CLASSIFIER)
    notes = [_pictures_as_asked(run, a)]
    pictures = run.read_pictures(picture_files(a.images, notes.append))
    for note in filter(None, notes):  # once every picture is read
        print(note, file=sys.stderr)
    if run.task == CLASSIFIER and (cap := run.model.max_probability()) < 1:
        print(f"note: {a.run_dir} has the author's paper head (a Sigmoid before the cross-entropy), so its "
              f"probabilities cannot exceed {cap:.1%}: read them as a ranking", file=sys.stderr)
    for path, picture in pictures.items():  # every picture is read before a line is printed
        probs = run.predict_proba(picture.pixels)[0]
        top = probs.topk(min(3, len(probs)))
        ranked = ", ".join(f"{run.classes[i]} {p:.1%}" for p, i in zip(top.values.tolist(), top.indices.tolist()))
        print(f"{_one_line(path)}: {ranked}{_caveats(picture)}")
    return 0


def cmd_explore(a) -> int:
    from .explore import KNN_K, PROBE_MAX_ITER, explore
    from .runs import stderr
    r = explore(a.run_dir, a.out, data_dir=a.data_dir, verify=not a.no_verify, tsne=not a.no_tsne,
                log=stderr)
    print(f"{a.run_dir}: latent of {r['latent']} values; k-NN (k={KNN_K}) test accuracy "
          f"{r['knn_acc']:.4f}, linear probe {r['linear_probe_acc']:.4f} ("
          + ("" if r["linear_probe_converged"] else f"not converged in {PROBE_MAX_ITER} iterations, ")
          + f"fitted on {r['fit_images']:,} training images); figures in {r['out']}")
    return 0


def cmd_export(a) -> int:
    from .export import export_onnx
    r = export_onnx(a.run_dir, a.output, a.part, check=not a.no_check, force=a.force)
    check = (f"; onnxruntime matches PyTorch in fp32 (max abs difference {r['max_abs_diff']:.2e})"
             if "max_abs_diff" in r else "")
    print(f"{a.output}: {r['part']} of {a.run_dir}, input {r['input']}, output {r['output']}{check}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parsed = []  # the arguments: parsed under run_command, so that a stop while torch loads says one line too

    def parse() -> int:
        import_whole("numpy", "torch")  # (the parser's modules load them: a stop meanwhile is held back)
        parser = build_parser()
        try:
            parsed.append(parser.parse_args(argv))
            if not parsed[0].command:
                parser.print_help()
                return 2
            return 0
        finally:  # --help, --version, no command: argparse drops a write that failed
            if failed := getattr(sys.stdout, "failed", None):
                raise failed from None  # (said as any output's: > /dev/full, >&-)
    if code := run_command(parse, debug="--debug" in argv, resumable=False):
        return code
    args = parsed[0]
    args.command_line = shlex.join(["fashionae", *argv])
    def command() -> int:
        from .distributed import NAMES, lost_process, world_size
        if args.command not in ("train-ae", "train-clf") and world_size() > 1:
            if not started_by_torchrun():  # (a shell's leftovers from another job: the command is not under torchrun)
                raise UserError(f"WORLD_SIZE={world_size()} is set, but torchrun did not start this command "
                                f"(`fashionae {args.command}` runs in one process): `unset {' '.join(NAMES)}` "
                                "(left over from another job)")
            raise UserError(f"{args.command} runs in one process: torchrun splits one run (train-ae, train-clf) over "
                            "processes; " + ("to spread a study's runs, use --executor ray" if args.command == "study"
                                             else "run it without torchrun"))
        for option in ("out", "output"):  # an empty path would fall back to a default, or be "."
            if getattr(args, option, None) == "":
                raise UserError(f"--{option} is empty; give a path")
        if getattr(args, "run_dir", None) is not None:
            from .studyfolder import refuse_a_study_folder
            refuse_a_study_folder(args.run_dir)
        try:
            return globals()[f"cmd_{args.command.replace('-', '_')}"](args)  # train-ae: cmd_train_ae
        except RuntimeError as e:
            if world_size() > 1 and (said := lost_process(e)):
                group, again = (("this torchrun", "run the same torchrun command again") if started_by_torchrun()
                                else (f"the {world_size()}", f"start the {world_size()} again as before"))
                raise UserError(f"another process of {group} was lost ({said}); finished epochs are kept: {again} "
                                "to resume") from None
            raise
    trains = args.command in ("train-ae", "train-clf") or (args.command == "study" and not args.plan)
    return run_command(command, debug=args.debug, resumable=trains, memory=MEMORY_SETTINGS.get(
        "data --from-pictures" if getattr(args, "from_pictures", None) else args.command))


def entry() -> NoReturn:
    """The ``fashionae`` program (``python -m fashionae`` too): ``main``, then the process ends
    with its status (``errors.exit_process``). Its output is flushed line by line, so that where it
    goes to one file with the notes on stderr (``> log 2>&1``) each line stays whole and in order;
    streams closed or unwritable are made safe first (``errors.ready_streams``)."""
    ready_streams()
    try:
        os.getcwd()
    except FileNotFoundError:  # (torch would not even load: oneMKL's "FATAL ERROR: Cannot load libtorch_cpu.so")
        say_error("the folder this command runs in was deleted or moved away; cd to a folder and run it again")
        exit_process(2)
    try:
        code = main()
    except KeyboardInterrupt as e:  # a stop after its command's own handling: no traceback
        code = late_stop(e)
    exit_process(code)
