"""The ``fashionae`` command line: its parser, and a function per command that reads the options,
calls the package and prints what it answers. The options of the model and training settings
come from their dataclass fields (``settings.py``)."""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from . import __version__, settings
from .errors import (TRAINING_MEMORY, UserError, exit_process, import_whole, late_stop, ready_streams, run_command,
                     say_error)
from .files import RUNS
from .progress import seconds_text
from .settings import AUTOENCODER, CLASSIFIER

if TYPE_CHECKING:  # the command line imports torch only when a command needs it
    from .models import ModelConfig

MEMORY_SETTINGS = {  # a command's options that ask it for less memory, said where it runs out (else none)
    "train-ae": TRAINING_MEMORY, "train-clf": TRAINING_MEMORY, "study": TRAINING_MEMORY,
    "baselines": "use smaller subsets (--train-subset, --eval-subset)",
    "data --from-pictures": "use a smaller --image-size"}


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, as for every other bad input
        if message.endswith("expected one argument"):  # (argparse takes a value of a leading - for an option)
            option = message.split(":")[0].split("/")[-1].removeprefix("argument ")
            message += f", or its value starts with '-': write it as {option}=-value, or a path as ./-name"
        say_error(f"{message} (see `{self.prog} --help`)")
        raise SystemExit(2)

    def parse_args(self, args=None, namespace=None):
        # argparse reports unknown options at the top level; name the command's own help
        a, unknown = self.parse_known_args(args, namespace)
        if unknown:
            prog = f"{self.prog} {a.command}" if getattr(a, "command", None) else self.prog
            Parser(prog=prog).error(f"unrecognized arguments: {' '.join(unknown)}")
        return a


def add_data_args(p: argparse.ArgumentParser, dataset: bool = True, of_run: bool = False) -> None:
    from .data import DATA_ENV, DATASET_TOML, FASHION_MNIST, SYSTEM_DIR
    g = p.add_argument_group("data")
    if dataset:
        g.add_argument("--dataset", default=FASHION_MNIST,
                       help=f"{FASHION_MNIST} (default), or a folder with your own data: four IDX files or "
                       f"one .npz (x_train, y_train, x_test, y_test), and an optional {DATASET_TOML} "
                       "(docs/datasets.md)")
    g.add_argument("--data-dir", help="where Fashion-MNIST's four IDX files are (.gz or not); also "
                   f"{DATA_ENV}. Default: the cache, then {SYSTEM_DIR}, then a download"
                   + (". For a run trained on your own data: the folder of that dataset, if it moved "
                      "since" if of_run else ""))
    g.add_argument("--no-verify", action="store_true",
                   help=f"skip the SHA-256 checks (Fashion-MNIST's, or your {DATASET_TOML}'s)")


def image_size(text: str) -> tuple[int, int]:
    """``--image-size``: N (square) or HxW, as the encoders take it (``data.image_size_problem``)."""
    from .data import image_size_problem
    height, _, width = text.lower().partition("x")
    try:
        size = (int(height), int(width or height))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be N or HxW (28, 32x24), got {text!r}") from None
    if problem := image_size_problem(size):
        raise argparse.ArgumentTypeError(problem)
    return size


def add_extend_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--extend", action="store_true",
                   help="train the run in --out on to --epochs from its training state: a finished run (which "
                   "keeps it with --keep-state) to more epochs, an unfinished one to any number it has not trained "
                   "past; the same as a run of that many epochs from the start, with a constant schedule")


# ------------------------------------------------------------------ commands

def cmd_data(a) -> int:
    import torch
    from .data import FASHION_MNIST, FILL, IMAGE_SIZE, INVERT, load_dataset
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
    counts = torch.bincount(ds.train_labels, minlength=len(ds.classes)).tolist()
    tested = torch.bincount(ds.test_labels, minlength=len(ds.classes)).tolist()
    print("classes (training / test images): " + ", ".join(f"{c} ({n:,} / {m:,})"
                                                          for c, n, m in zip(ds.classes, counts, tested)))
    if empty := [c for c, n, m in zip(ds.classes, counts, tested) if not n or not m]:
        print(f"note: {len(empty)} class{'es' if len(empty) > 1 else ''} ({', '.join(empty[:3])}"
              f"{', …' if len(empty) > 3 else ''}) lack{'' if len(empty) > 1 else 's'} training or test images: "
              "autoencoders train, but a classifier needs both for every class ("
              + (f"add its pictures to train/CLASS/ and test/CLASS/, delete {a.dataset} and write it again)"
                 if a.from_pictures is not None else "number the classes from 0 without gaps)"))
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
    world = world_size()
    if world > 1 and torchrun_variable("LOCAL_WORLD_SIZE", world, least=1) != world:
        return None
    data = f"{DATA_ENV}={shlex.quote(os.environ[DATA_ENV])} " if os.environ.get(DATA_ENV) and not a.data_dir else ""
    torchrun = f"torchrun --nproc-per-node {world} -m " if world > 1 else ""
    return f"cd {shlex.quote(os.getcwd())} && {data}{torchrun}{a.command_line}"


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
    from .data import load_dataset
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
    from .study import bundled_note, load_study
    from .studyfolder import StudyFolder
    if a.json and not a.plan:
        raise UserError("--json goes with --plan (the plan as JSON); the study itself writes results.json")
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
                        extend=a.extend)
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
                        "results); copy the study folder somewhere writable and report it there")
    with FolderLock(folder.path, tidy=True, elsewhere="copy the study folder somewhere writable and report it there",
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
    from .picturefiles import reconstruction_files, side_by_side
    from .inference import LoadedRun
    run = LoadedRun(a.run_dir)
    run.needs(AUTOENCODER)
    note = _pictures_as_asked(run, a)
    sources = reconstruction_files(a.images, Path(a.output))
    # every picture is read, and every reconstruction made, before anything is written
    read = run.read_pictures(list(sources.values()))
    if note:
        print(note, file=sys.stderr)
    made = {}
    for target, path in sources.items():
        x = read[path].pixels
        recon = run.reconstruct(x)[0]
        made[target] = (side_by_side(x, recon), torch.mean((recon - x) ** 2).item())
    refuse_to_replace({target: png for target, (png, _) in made.items()}, a.force)
    for target, (png, mse) in made.items():
        atomic_write(target, png)
        print(f"{_one_line(sources[target])}: MSE {mse:.5f} -> {_one_line(target)}{_caveats(read[sources[target]])}")
    return 0


def _pictures_as_asked(run, a) -> str:
    """The run's pictures prepared as --invert and --fill ask, else as its dataset's were; the
    note that says so where that is not as Fashion-MNIST's (said once they are read)."""
    from .data import FILL, INVERT
    run.invert, run.fill = a.invert or run.invert, run.fill if a.fill is None else a.fill
    kept = [f"--{k} {v:g}" if k == "fill" else f"--{k} {v}" for k, v in run.dataset_pictures.items()
            if v != {"invert": INVERT[0], "fill": FILL}[k] and getattr(a, k) is None]
    return f"note: pictures prepared as {a.run_dir}'s dataset's were ({', '.join(kept)}; give the option to " \
           "change it)" if kept else ""


def _one_line(path) -> str:
    """A picture's path as its answer's line starts: quoted where it would break the line (a
    newline in a file name), as it is otherwise."""
    from .data import garbles_a_line
    return repr(str(path)) if garbles_a_line(str(path)) else str(path)


def _caveats(picture) -> str:
    """What makes the answer for a picture say little, as the end of its line."""
    return "".join(f" ({c})" for c in picture.caveats)


def cmd_classify(a) -> int:
    from .picturefiles import picture_files
    from .inference import LoadedRun
    run = LoadedRun(a.run_dir)
    run.needs(CLASSIFIER)
    note = _pictures_as_asked(run, a)
    pictures = run.read_pictures(picture_files(a.images))
    if note:
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


def build_parser() -> Parser:
    from . import bench
    from .models import ModelConfig
    from .data import IMAGE_SIZE, INVERT, VAL_SPLITS
    from .export import PARTS
    from .runconfig import STRATEGIES
    from .runs import LOCAL, RAY
    from .study import BUNDLED, Baselines, bundled_studies
    from .training import DEVICES, PRECISIONS, TrainConfig
    p = Parser(prog="fashionae", description="Train, check and reuse convolutional autoencoders "
               "on Fashion-MNIST.", epilog="Start with `fashionae study paper`, the study of the source document "
               "(a bundled study file); `fashionae COMMAND --help` for a command. README.md and docs/ say more.")
    p.add_argument("--version", action="version", version=f"fashionae {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def add_command(name: str, **kw) -> Parser:  # every command takes --debug after its name too
        return sub.add_parser(name, parents=[common], **kw)
    run_help = "a run folder (of train-ae or train-clf, or a study's runs/<run>)"
    ae_run_help = "an autoencoder's run folder (of train-ae, or an ae-... folder of a study's runs/)"
    clf_run_help = "a classifier's run folder (of train-clf, or a clf-... folder of a study's runs/)"
    device_help = "auto (CUDA when present; the default), cpu or cuda"

    invert_help = ("negate the picture: auto (when its border is light, as for a product photo), "
                   "yes, or no")
    fill_help = ("the part of the frame the object's longer side spans once prepared: 1 as in Fashion-MNIST; "
                 "less for a dataset whose objects fill only part of each image (MNIST's digits: 0.7)")

    def add_picture_args(p: argparse.ArgumentParser | argparse._ArgumentGroup, of_a_run: bool = True) -> None:
        def default(value: str) -> str:
            return (f" (default: as the run's dataset's pictures were, where it was made of pictures; else {value})"
                    if of_a_run else f" (default: {value}; recorded in its dataset.toml: pictures given to its "
                    "runs are prepared so)")
        p.add_argument("--invert", choices=INVERT, metavar="|".join(INVERT), help=invert_help + default(INVERT[0]))
        p.add_argument("--fill", type=float, help=fill_help + default("1"))

    s = add_command("data", help="find, verify and describe the dataset, or make one of your pictures")
    add_data_args(s)
    g = s.add_argument_group("a dataset of your pictures (docs/datasets.md)")
    g.add_argument("--from-pictures", metavar="FOLDER",
                   help="write a new dataset, in the folder --dataset names, of the pictures in FOLDER's "
                   "train/CLASS/ and test/CLASS/ folders (any size and colour, prepared as classify prepares "
                   "one; the classes: train's folders, by name)")
    g.add_argument("--image-size", type=image_size, default=IMAGE_SIZE, metavar="N|HxW",
                   help="with --from-pictures: the images' size, multiples of 4 (default: 28, as Fashion-MNIST)")
    add_picture_args(g, of_a_run=False)
    s.set_defaults(func=cmd_data)

    s = add_command("train-ae", help="train an autoencoder into a run folder")
    settings.add_options(s, ModelConfig, "model", AUTOENCODER)
    settings.add_options(s, TrainConfig, "training", AUTOENCODER)
    add_data_args(s)
    s.add_argument("--out", help=f"run folder (default {RUNS}/ae-<arch><latent>-seed<seed>, the latent for "
                   "linear only); an unfinished run there with the same settings is resumed")
    add_extend_arg(s)
    s.set_defaults(func=cmd_train_ae)

    s = add_command("train-clf", help="train a classifier on an autoencoder's encoder")
    s.add_argument("--strategy", required=True, choices=STRATEGIES, metavar="|".join(STRATEGIES),
                   help="frozen: the encoder's weights kept, the linear layer alone trained; finetune: both "
                   "trained; scratch: the same network from random weights; random-frozen: a random encoder, "
                   "kept (the control frozen must beat)")
    s.add_argument("--encoder", help="the autoencoder run folder whose encoder is reused")
    settings.add_options(s, ModelConfig, "model (with --encoder, the encoder's: another value is refused; "
                         "--paper-head applies either way)", CLASSIFIER)
    settings.add_options(s, TrainConfig, "training", CLASSIFIER)
    add_data_args(s)
    s.add_argument("--out", help=f"run folder (default {RUNS}/clf-<strategy>-seed<seed>)")
    add_extend_arg(s)
    s.set_defaults(func=cmd_train_clf)

    s = add_command("baselines", help="PCA, mean-image and pixel logistic-regression reference points")
    s.add_argument("--out", required=True, help="folder for baselines.json")
    s.add_argument("--val", default=TrainConfig.val, choices=VAL_SPLITS, metavar="|".join(VAL_SPLITS),
                   help="as for training")
    s.add_argument("--train-subset", type=int, metavar="N", help="fit on the first N training images only (default: all)")
    s.add_argument("--eval-subset", type=int, metavar="N",
                   help="measure on the first N validation and test images only (default: all)")
    s.add_argument("--logreg-max-iter", type=int, default=Baselines.logreg_max_iter, metavar="N",
                   help=f"iterations of the pixel logistic regression (default: {Baselines.logreg_max_iter})")
    add_data_args(s)
    s.set_defaults(func=cmd_baselines)

    s = add_command("study", help="run a whole study (TOML file) and write its report",
                    epilog=f"Bundled studies ({', '.join(bundled_studies())}) are in {BUNDLED}: copy one "
                    "to change it (docs/study-files.md).")
    s.add_argument("study_file", help="a study file, or the name of a bundled study: "
                   f"{', '.join(bundled_studies())}")
    s.add_argument("--profile", help="a profile of the study file (default: the file's default_profile, "
                   "else quick where there is one, else the top level alone: profile 'default')")
    s.add_argument("--seeds", type=int, help="number of seeds (overrides the profile)")
    s.add_argument("--out", help=f"study folder (default {RUNS}/<study>-<profile>); an interrupted "
                   "study there is resumed, finished runs are kept")
    s.add_argument("--device", choices=DEVICES, metavar="|".join(DEVICES), help="overrides the study file")
    s.add_argument("--precision", choices=PRECISIONS, metavar="|".join(PRECISIONS), help="overrides the study file")
    s.add_argument("--tensorboard", action="store_true", help="log every run to its tensorboard/ folder")
    s.add_argument("--plan", action="store_true", help="print every run with its settings, whether it is "
                   "finished, and an estimated wall time; train nothing")
    s.add_argument("--json", action="store_true", help="with --plan: one JSON object per run")
    s.add_argument("--extend", action="store_true",
                   help="train on the finished runs the study file now asks for with more epochs, all else alike, "
                   "from the training state they kept (keep_state = true; a constant schedule), and aim unfinished "
                   "ones at the epochs it asks for now: each comes out as the run of that many epochs from the start")
    g = s.add_argument_group("executor")
    g.add_argument("--executor", default=LOCAL, choices=(LOCAL, RAY), metavar=f"{LOCAL}|{RAY}",
                   help="local: one run after the other in this process (default); ray: runs as Ray "
                   "tasks, in parallel (pip install 'fashionae[ray]')")
    g.add_argument("--address", help="ray: an existing cluster (auto, or HOST:PORT); default: a local Ray")
    g.add_argument("--cpus-per-run", type=int, help="ray: CPUs (and torch threads) per run (default 1)")
    g.add_argument("--gpus-per-run", type=float, help="ray: GPUs per run (default 0; 0.25 packs four on one)")
    add_data_args(s, dataset=False)
    s.set_defaults(func=cmd_study)

    s = add_command("report", help="rebuild results.json and the report from a study folder")
    s.add_argument("study_dir", help="a study folder (the study's --out; default runs/<study>-<profile>), "
                   "finished: its runs and study.json are read, nothing is trained")
    s.add_argument("--self-contained", action="store_true", help="embed the figures in report.html "
                   "(one file to send); without it the page links figures/")
    s.set_defaults(func=cmd_report)

    s = add_command("bench", help="training speed: fashionae's trainer vs an author-style loop")
    s.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    s.add_argument("--windows", type=int, default=bench.WINDOWS,
                   help=f"alternating measurement windows (default: {bench.WINDOWS})")
    s.add_argument("--profile", action="store_true", help="also print the step's top operators (on stderr with --json)")
    s.add_argument("--device", default=TrainConfig.device, choices=DEVICES, metavar="|".join(DEVICES),
                   help=device_help)
    s.add_argument("--out", help="also write the figures, the machine and its target to this JSON file")
    s.add_argument("--force", action="store_true", help="replace --out if it exists")
    s.add_argument("--images", type=int, default=bench.IMAGES, help=f"training images per window (default "
                   f"{bench.IMAGES}: {bench.IMAGES // bench.BATCH} steps)")
    s.set_defaults(func=cmd_bench)

    s = add_command("explore", help="latent-space maps, interpolation, k-NN and linear-probe scores")
    s.add_argument("run_dir", help=run_help)
    s.add_argument("--out", help="folder for the figures and explore.json (default RUN_DIR/explore)")
    s.add_argument("--no-tsne", action="store_true", help="skip the t-SNE map (the slowest part)")
    add_data_args(s, dataset=False, of_run=True)
    s.set_defaults(func=cmd_explore)

    pictures_help = ("picture files, PNG, JPEG and the like (or folders of them), any size and colour (a note in "
                     "brackets ends a picture's line where its answer may say little, and says why)")
    s = add_command("reconstruct", help="reconstruct your own pictures with an autoencoder run")
    s.add_argument("run_dir", help=ae_run_help)
    s.add_argument("images", nargs="+", help=pictures_help)
    s.add_argument("-o", "--output", default="reconstructions",
                   help="folder for the side-by-side PNGs (default: ./reconstructions)")
    add_picture_args(s)
    s.add_argument("--force", action="store_true", help="replace files there that hold something else (by "
                   "default they are refused, and nothing is written; the same reconstructions again are not)")
    s.set_defaults(func=cmd_reconstruct)

    s = add_command("classify", help="classify your own pictures with a classifier run (top 3)")
    s.add_argument("run_dir", help=clf_run_help)
    s.add_argument("images", nargs="+", help=pictures_help)
    add_picture_args(s)
    s.set_defaults(func=cmd_classify)

    s = add_command("eval", help="reload a run's model and print its validation and test figures")
    s.add_argument("run_dir", help=run_help)
    s.add_argument("--device", default=TrainConfig.device, choices=DEVICES, metavar="|".join(DEVICES),
                   help=device_help + "; the run's precision is kept")
    add_data_args(s, dataset=False, of_run=True)
    s.set_defaults(func=cmd_eval)

    s = add_command("export", help="export a run's model to ONNX (pip install 'fashionae[onnx]')")
    s.add_argument("run_dir", help=run_help)
    s.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    s.add_argument("--part", choices=PARTS, metavar="|".join(PARTS),
                   help="what to export (default: the whole model of the run)")
    s.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison with torch")
    s.add_argument("--force", action="store_true", help="replace a file there that holds something else (by "
                   "default it is refused; the same export again is not)")
    s.set_defaults(func=cmd_export)
    return p


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
        from .distributed import lost_process, world_size
        if args.command not in ("train-ae", "train-clf") and world_size() > 1:
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
            return args.func(args)
        except RuntimeError as e:
            if world_size() > 1 and (said := lost_process(e)):
                raise UserError(f"another process of this torchrun was lost ({said}); finished epochs are kept: "
                                "run the same torchrun command again to resume") from None
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
