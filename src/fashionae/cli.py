"""The ``fashionae`` command line. Every command is a thin layer over the package."""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from . import __version__
from .errors import UserError


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, as for every other bad input
        print(f"fashionae: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data-dir", help="folder with the four IDX files (.gz or not); also FASHIONAE_DATA. "
                   "Default: the cache, then /usr/share/datasets/fashion-mnist, then a download")
    g.add_argument("--no-verify", action="store_true", help="skip the SHA-256 check (for your own IDX files)")


def add_train_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=60)
    g.add_argument("--batch-size", type=int, default=100)
    g.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (peak, with onecycle)")
    g.add_argument("--schedule", default="constant", help="constant (the author's) | onecycle")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--val", default="holdout",
                   help="holdout: 10,000 fixed training images (default) | test: the test set (the author's)")
    g.add_argument("--train-subset", type=int, help="train on the first N training images only")
    g.add_argument("--eval-subset", type=int, help="validate and test on the first N images only")
    g.add_argument("--train-eval-subset", type=int,
                   help="re-measure the train loss (eval mode) on the first N training images only")
    g.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda")
    g.add_argument("--precision", default="auto",
                   help="auto (bf16 autocast where the hardware has native bf16) | fp32 | bf16")
    g.add_argument("--no-channels-last", action="store_true", help="keep the NCHW memory layout")


def add_model_args(p: argparse.ArgumentParser, decoder: bool) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--arch", default="linear", help="linear (bottleneck of size --latent) | conv")
    g.add_argument("--latent", type=int, default=512, help="the study's l_size (linear arch)")
    g.add_argument("--encoder-type", default="paper", help="paper (Table I) | strided | strong")
    if decoder:
        g.add_argument("--decoder", default="k2", help="k2 (the author's) | k3 | k4 | resize")
    g.add_argument("--dropout", type=float, default=0.2)
    g.add_argument("--dropout-after-pool", action="store_true",
                   help="ablation: Dropout after MaxPool (the author puts it before)")


def train_config(a: argparse.Namespace):
    from .training import TrainConfig
    return TrainConfig(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, schedule=a.schedule,
                       seed=a.seed, val=a.val, train_subset=a.train_subset, eval_subset=a.eval_subset,
                       train_eval_subset=a.train_eval_subset,
                       device=a.device, precision=a.precision, channels_last=not a.no_channels_last,
                       augment=getattr(a, "augment", False)).validate()


# ------------------------------------------------------------------ commands

def cmd_data(a) -> int:
    from .data import load_fashion_mnist
    ds = load_fashion_mnist(a.data_dir, verify=not a.no_verify)
    check = "SHA-256 verified" if ds.verified else "checksums NOT verified (--no-verify)"
    print(f"Fashion-MNIST in {ds.folder}: {len(ds.train_images):,} train + {len(ds.test_images):,} "
          f"test images, {check}")
    return 0


def train_run(a, task: str, out: str, **run) -> dict:
    """Build the run's settings from the shared model/training/data options and execute it."""
    from .models import ModelConfig
    from .runs import RunConfig, execute
    model = ModelConfig(task=task, arch=a.arch, latent=a.latent, encoder_type=a.encoder_type,
                        decoder=getattr(a, "decoder", "k2"), dropout=a.dropout,
                        dropout_after_pool=a.dropout_after_pool,
                        paper_head=getattr(a, "paper_head", False)).validate()
    return execute(RunConfig(model=model, train=train_config(a), **run), out,
                   data_dir=a.data_dir, verify=not a.no_verify)


def cmd_train_ae(a) -> int:
    out = a.out or f"runs/ae-{a.arch}{a.latent if a.arch == 'linear' else ''}-seed{a.seed}"
    s = train_run(a, "autoencoder", out)
    print(f"{out}: val MSE {s['val_loss']:.5f} (best {s['best_val_loss']:.5f} at epoch "
          f"{s['best_epoch']}), test MSE {s['test_loss']:.5f}, {s['seconds_total']:.0f} s, "
          f"{s['images_per_second']:.0f} training images/s")
    return 0


def cmd_train_clf(a) -> int:
    out = a.out or f"runs/clf-{a.strategy}-seed{a.seed}"
    s = train_run(a, "classifier", out, strategy=a.strategy, encoder_run=a.encoder)
    mc = s["most_confused"]
    print(f"{out}: val acc {s['val_acc']:.4f} (best {s['best_val_acc']:.4f}), test acc "
          f"{s['test_acc']:.4f}; most confused: {mc['true']} taken for {mc['predicted']} "
          f"({mc['count']}×); {s['seconds_total']:.0f} s")
    return 0


def cmd_eval(a) -> int:
    import torch
    from .data import load_fashion_mnist, make_splits
    from .files import read_json
    from .models import load_model
    from .runs import RunConfig
    from .training import evaluate, to_inputs
    folder = Path(a.run_dir)
    if not (folder / "config.json").is_file():
        raise UserError(f"{folder} is not a fashionae run folder (no config.json)")
    cfg = RunConfig.from_dict(read_json(folder / "config.json", "run settings"))
    t = cfg.train
    t.device = a.device if a.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    model = load_model(folder / "model.safetensors").to(t.device)
    if model.config != cfg.model:
        raise UserError(f"{folder / 'model.safetensors'} does not match {folder / 'config.json'}")
    splits = make_splits(load_fashion_mnist(a.data_dir, not a.no_verify), t.val, t.train_subset, t.eval_subset)
    dev = torch.device(t.device)
    for name, x, y in (("validation", splits.val_x, splits.val_y), ("test", splits.test_x, splits.test_y)):
        r = evaluate(model, to_inputs(x, dev), y.to(dev), t)
        extra = f"  accuracy {r['acc']:.4f}" if "acc" in r else ""
        what = "MSE" if cfg.model.task == "autoencoder" else "loss"
        print(f"{name}: {what} {r['loss']:.5f}{extra}  ({len(x):,} images)")
    return 0


def cmd_baselines(a) -> int:
    from .baselines import compute_baselines
    from .data import load_fashion_mnist, make_splits
    from .files import FolderLock, write_json
    out = Path(a.out)
    with FolderLock(out):
        splits = make_splits(load_fashion_mnist(a.data_dir, not a.no_verify), a.val, a.train_subset)
        b = compute_baselines(splits, logreg_max_iter=a.logreg_max_iter)
        b["val"] = a.val
        write_json(out / "baselines.json", b)
    pca = ", ".join(f"k={r['k']}: {r['test_mse']:.4f}" for r in b["pca"])
    print(f"PCA test MSE {pca}; mean image {b['mean_image']['test_mse']:.4f}; logistic regression "
          f"on pixels: test accuracy {b['logistic_regression']['test_acc']:.4f}  "
          f"({b['seconds']:.0f} s) -> {out / 'baselines.json'}")
    return 0


def cmd_study(a) -> int:
    from .study import load_study, run_study
    overrides = {k: v for k, v in (("device", a.device), ("precision", a.precision)) if v}
    study = load_study(a.study_file, a.profile, a.seeds, overrides)
    out = a.out or f"runs/{study.name}-{study.profile}"
    results = run_study(study, out, a.data_dir, not a.no_verify, command=a.command_line)
    print_results(results)
    print(f"report: {Path(out) / 'report.html'} (and report.md)")
    return 0


def cmd_report(a) -> int:
    from .report import write_report
    from .study import collect_results
    folder = Path(a.study_dir)
    if not (folder / "study.json").is_file():
        raise UserError(f"{folder} is not a fashionae study folder (no study.json)")
    from .files import FolderLock
    with FolderLock(folder):
        results = collect_results(folder)
        path = write_report(folder, results, a.data_dir, not a.no_verify)
    print_results(results)
    print(f"report: {path} (and report.md)")
    return 0


def print_results(results: dict) -> None:
    from .report import tables
    for caption, header, rows in tables(results):
        if caption.startswith("Baselines"):
            continue
        print(f"\n{caption}")
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
        keep = [i for i, h in enumerate(header) if h not in ("report train / val", "author's code val",
                                                             "author's code train / val", "evidence")]
        print("  ".join(header[i].ljust(widths[i]) for i in keep))
        for r in rows:
            print("  ".join(r[i].ljust(widths[i]) for i in keep))


def cmd_bench(a) -> int:
    from .bench import run_bench
    run_bench(windows=a.windows, as_json=a.json, show_profile=a.profile)
    return 0


def cmd_reconstruct(a) -> int:
    import torch
    from .files import atomic_write
    from .images import load, prepare_image, side_by_side
    run = load(a.run_dir)
    out = Path(a.output)
    for path in a.images:
        x = prepare_image(path, a.invert)
        recon = run.reconstruct(x)[0]
        mse = torch.mean((recon - x) ** 2).item()
        target = out / f"{Path(path).stem}_reconstruction.png"
        atomic_write(target, side_by_side(x, recon))
        print(f"{path}: MSE {mse:.5f} -> {target}")
    return 0


def cmd_classify(a) -> int:
    from .data import CLASSES
    from .images import load, prepare_image
    run = load(a.run_dir)
    for path in a.images:
        probs = run.predict_proba(prepare_image(path, a.invert))[0]
        top = probs.topk(3)
        ranked = ", ".join(f"{CLASSES[i]} {p:.1%}" for p, i in zip(top.values.tolist(), top.indices.tolist()))
        print(f"{path}: {ranked}")
    return 0


def cmd_explore(a) -> int:
    from .explore import explore
    r = explore(a.run_dir, a.out, data_dir=a.data_dir, verify=not a.no_verify, tsne=not a.no_tsne)
    out = Path(a.out) if a.out else Path(a.run_dir) / "explore"
    print(f"{a.run_dir}: latent of {r['latent_dim']} values; k-NN (k=5) test accuracy "
          f"{r['knn_acc']:.4f}, linear probe {r['linear_probe_acc']:.4f} (fitted on "
          f"{r['fit_images']:,} training images); figures in {out}")
    return 0


def build_parser() -> Parser:
    p = Parser(prog="fashionae", description="Train, check and reuse convolutional autoencoders "
               "on Fashion-MNIST.")
    p.add_argument("--version", action="version", version=f"fashionae {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    _add = sub.add_parser
    sub.add_parser = lambda *args, **kw: _add(*args, parents=[common], **kw)

    s = sub.add_parser("data", help="find, verify and describe the Fashion-MNIST files")
    add_data_args(s)
    s.set_defaults(func=cmd_data)

    s = sub.add_parser("train-ae", help="train an autoencoder into a run folder")
    add_model_args(s, decoder=True)
    add_train_args(s)
    add_data_args(s)
    s.add_argument("--out", help="run folder (default runs/ae-<arch><latent>-seed<seed>); an "
                   "unfinished run there with the same settings is resumed")
    s.set_defaults(func=cmd_train_ae)

    s = sub.add_parser("train-clf", help="train a classifier on an autoencoder's encoder")
    s.add_argument("--strategy", required=True, help="frozen | finetune | scratch | random-frozen")
    s.add_argument("--encoder", help="the autoencoder run folder whose encoder is reused")
    s.add_argument("--paper-head", action="store_true",
                   help="the author's defect: Sigmoid before the cross-entropy, dropout active in a frozen encoder")
    s.add_argument("--augment", action="store_true", help="random 2-pixel shifts and horizontal flips")
    add_model_args(s, decoder=False)
    add_train_args(s)
    add_data_args(s)
    s.add_argument("--out", help="run folder (default runs/clf-<strategy>-seed<seed>)")
    s.set_defaults(func=cmd_train_clf)

    s = sub.add_parser("baselines", help="PCA, mean-image and pixel logistic-regression reference points")
    s.add_argument("--out", required=True, help="folder for baselines.json")
    s.add_argument("--val", default="holdout", help="holdout | test (as for training)")
    s.add_argument("--train-subset", type=int, help="fit on the first N training images only")
    s.add_argument("--logreg-max-iter", type=int, default=200)
    add_data_args(s)
    s.set_defaults(func=cmd_baselines)

    s = sub.add_parser("study", help="run a whole study (TOML file) and write its report")
    s.add_argument("study_file", help="e.g. studies/paper.toml")
    s.add_argument("--profile", help="a profile of the study file (default: quick)")
    s.add_argument("--seeds", type=int, help="number of seeds (overrides the profile)")
    s.add_argument("--out", help="study folder (default runs/<study>-<profile>); an interrupted "
                   "study there is resumed, finished runs are kept")
    s.add_argument("--device", help="auto | cpu | cuda (overrides the study file)")
    s.add_argument("--precision", help="auto | fp32 | bf16 (overrides the study file)")
    add_data_args(s)
    s.set_defaults(func=cmd_study)

    s = sub.add_parser("report", help="rebuild results.json and the report from a study folder")
    s.add_argument("study_dir")
    add_data_args(s)  # the reconstruction figure needs the validation images
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("bench", help="training throughput: fashionae's trainer vs an author-style loop")
    s.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    s.add_argument("--windows", type=int, default=5, help="alternating measurement windows")
    s.add_argument("--profile", action="store_true", help="also print the step's top operators")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("explore", help="latent-space maps, interpolation, k-NN and linear-probe scores")
    s.add_argument("run_dir")
    s.add_argument("--out", help="folder for the figures and explore.json (default RUN_DIR/explore)")
    s.add_argument("--no-tsne", action="store_true", help="skip the t-SNE map (the slowest part)")
    add_data_args(s)
    s.set_defaults(func=cmd_explore)

    invert_help = ("negate the picture: auto (when its border is light, as for a product photo), "
                   "yes, or no")
    s = sub.add_parser("reconstruct", help="reconstruct your own pictures with an autoencoder run")
    s.add_argument("run_dir")
    s.add_argument("images", nargs="+", help="PNG or JPEG files, any size and colour")
    s.add_argument("-o", "--output", default="reconstructions", help="folder for the side-by-side PNGs")
    s.add_argument("--invert", default="auto", help=invert_help)
    s.set_defaults(func=cmd_reconstruct)

    s = sub.add_parser("classify", help="classify your own pictures with a classifier run (top 3)")
    s.add_argument("run_dir")
    s.add_argument("images", nargs="+", help="PNG or JPEG files, any size and colour")
    s.add_argument("--invert", default="auto", help=invert_help)
    s.set_defaults(func=cmd_classify)

    s = sub.add_parser("eval", help="reload a run's model and print its validation and test figures")
    s.add_argument("run_dir")
    s.add_argument("--device", default="auto")
    add_data_args(s)
    s.set_defaults(func=cmd_eval)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    args.command_line = " ".join(["fashionae", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except UserError as e:
        if args.debug:
            traceback.print_exc()
        print(f"fashionae: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("fashionae: interrupted; finished epochs are kept, run the same command to resume",
              file=sys.stderr)
        return 130
    except Exception as e:  # a bug in fashionae
        if args.debug:
            traceback.print_exc()
        print(f"fashionae: internal error: {type(e).__name__}: {e} (run with --debug for the "
              "traceback, and please report it)", file=sys.stderr)
        return 1
