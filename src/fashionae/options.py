"""The ``fashionae`` command line's options: a parser per command, with each option's help and the
checks argparse makes of it. The model and training settings come from their dataclass fields
(``settings.add_options``); what a command does with its options is ``cli.py``'s (``cmd_<command>``)."""

from __future__ import annotations

import argparse

from . import __version__, settings
from .errors import say_error
from .files import RUNS
from .settings import AUTOENCODER, CLASSIFIER


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
    from .data import DATA_ENV, FASHION_MNIST, SYSTEM_DIR
    from .datasets import DATASET_TOML
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


def build_parser() -> Parser:
    from . import bench
    from .models import ModelConfig
    from .data import IMAGE_SIZE, VAL_SPLITS
    from .images import FILL, INVERT
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

    invert_help = ("negate the picture on its way to light on black: auto (when its border is light, as for a "
                   "product photo), yes, or no (a run on dark garments on white negates it once more, into its form)")
    fill_help = ("the part of the frame the object's longer side spans once prepared: 1 as in Fashion-MNIST; "
                 "less for a dataset whose objects fill only part of each image (MNIST's digits: 0.7)")

    def add_picture_args(p: argparse.ArgumentParser | argparse._ArgumentGroup, of_a_run: bool = True) -> None:
        def default(value: str) -> str:
            return (f" (default: as the run's dataset's pictures were, where it was made of pictures; else {value})"
                    if of_a_run else f" (default: {value}; recorded in its dataset.toml: pictures given to its "
                    "runs are prepared so)")
        p.add_argument("--invert", choices=INVERT, metavar="|".join(INVERT), help=invert_help + default(INVERT[0]))
        p.add_argument("--fill", type=float, help=fill_help + default(f"{FILL:g}"))

    s = add_command("data", help="find, verify and describe the dataset, or make one of your pictures")
    add_data_args(s)
    g = s.add_argument_group("a dataset of your pictures (docs/datasets.md)")
    g.add_argument("--from-pictures", metavar="FOLDER",
                   help="write a new dataset, in the folder --dataset names, of the pictures in FOLDER's "
                   "train/CLASS/ and test/CLASS/ folders (any size and colour, prepared as classify prepares "
                   "one; the classes: train's folders, by name)")
    g.add_argument("--image-size", type=image_size, default=IMAGE_SIZE, metavar="N|HxW",
                   help="with --from-pictures: the images' size, multiples of 4 of at least 8 (default: 28, as "
                   "Fashion-MNIST)")
    add_picture_args(g, of_a_run=False)

    s = add_command("train-ae", help="train an autoencoder into a run folder")
    settings.add_options(s, ModelConfig, "model", AUTOENCODER)
    settings.add_options(s, TrainConfig, "training", AUTOENCODER)
    add_data_args(s)
    s.add_argument("--out", help=f"run folder (default {RUNS}/ae-<arch><latent>-seed<seed>, the latent for "
                   "linear only); an unfinished run there with the same settings is resumed")
    add_extend_arg(s)

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

    s = add_command("baselines", help="PCA, mean-image and pixel logistic-regression reference points")
    s.add_argument("--out", required=True, help="folder for baselines.json")
    s.add_argument("--val", default=TrainConfig.val, choices=VAL_SPLITS, metavar="|".join(VAL_SPLITS),
                   help="as for training")
    s.add_argument("--train-subset", type=int, metavar="N", help="fit on N training images only, as a run's "
                   "--train-subset takes them (default: all)")
    s.add_argument("--eval-subset", type=int, metavar="N",
                   help="measure on N validation and test images only, as a run's --eval-subset takes them "
                   "(default: all)")
    s.add_argument("--logreg-max-iter", type=int, default=Baselines.logreg_max_iter, metavar="N",
                   help=f"iterations of the pixel logistic regression (default: {Baselines.logreg_max_iter})")
    add_data_args(s)

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

    s = add_command("report", help="rebuild results.json and the report from a study folder")
    s.add_argument("study_dir", help="a study folder (the study's --out; default runs/<study>-<profile>), "
                   "finished: its runs and study.json are read, nothing is trained")
    s.add_argument("--self-contained", action="store_true", help="embed the figures in report.html "
                   "(one file to send); without it the page links figures/")

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

    s = add_command("explore", help="latent-space maps, interpolation, k-NN and linear-probe scores")
    s.add_argument("run_dir", help=run_help)
    s.add_argument("--out", help="folder for the figures and explore.json (default RUN_DIR/explore)")
    s.add_argument("--no-tsne", action="store_true", help="skip the t-SNE map (the slowest part)")
    add_data_args(s, dataset=False, of_run=True)

    pictures_help = ("picture files, PNG, JPEG and the like (or folders of them), any size and colour (a note in "
                     "parentheses ends a picture's line where its answer may say little, and says why)")
    s = add_command("reconstruct", help="reconstruct your own pictures with an autoencoder run")
    s.add_argument("run_dir", help=ae_run_help)
    s.add_argument("images", nargs="+", help=pictures_help)
    s.add_argument("-o", "--output", default="reconstructions",
                   help="folder for the side-by-side PNGs (default: ./reconstructions)")
    add_picture_args(s)
    s.add_argument("--force", action="store_true", help="replace files there that hold something else (by "
                   "default they are refused, and nothing is written; the same reconstructions again are not)")

    s = add_command("classify", help="classify your own pictures with a classifier run (top 3)")
    s.add_argument("run_dir", help=clf_run_help)
    s.add_argument("images", nargs="+", help=pictures_help)
    add_picture_args(s)

    s = add_command("eval", help="reload a run's model and print its validation and test figures")
    s.add_argument("run_dir", help=run_help)
    s.add_argument("--device", default=TrainConfig.device, choices=DEVICES, metavar="|".join(DEVICES),
                   help=device_help + "; the run's precision is kept")
    add_data_args(s, dataset=False, of_run=True)

    s = add_command("export", help="export a run's model to ONNX (pip install 'fashionae[onnx]')")
    s.add_argument("run_dir", help=run_help)
    s.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    s.add_argument("--part", choices=PARTS, metavar="|".join(PARTS),
                   help="what to export (default: the whole model of the run)")
    s.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison with torch")
    s.add_argument("--force", action="store_true", help="replace a file there that holds something else (by "
                   "default it is refused; the same export again is not)")
    return p
