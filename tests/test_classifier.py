import json
import shutil
from pathlib import Path

import pytest
import torch

from fashionae.cli import main
from fashionae.data import load_fashion_mnist
from fashionae.errors import UserError
from fashionae.modelfile import load_model
from fashionae.models import ModelConfig
from fashionae.runs import RunConfig, execute
from fashionae.training import TrainConfig
from helpers import ON_DEVICE, QUIET



def train_cfg(**kw):
    return TrainConfig(**{**dict(epochs=2, batch_size=50, train_subset=600, eval_subset=300,
                                 **ON_DEVICE), **kw})


@pytest.fixture(scope="module")
def ae_run(data_dir, tmp_path_factory):
    """One autoencoder for the module's classifiers; a test that changes it works on a copy."""
    out = tmp_path_factory.mktemp("ae") / "ae"
    execute(RunConfig(model=ModelConfig(latent=32), train=train_cfg()), out,
            data=load_fashion_mnist(data_dir, verify=False), **QUIET)
    return out


def clf(strategy, encoder, **kw):
    model = ModelConfig(task="classifier", latent=32, paper_head=kw.pop("paper_head", False))
    return RunConfig(model=model,
                     train=train_cfg(**kw), strategy=strategy,
                     encoder_run=str(encoder) if encoder else None)


def encoder_tensors(path, prefix="encoder."):
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)}


def test_strategies(tiny, ae_run, tmp_path):
    ae = encoder_tensors(ae_run / "model.safetensors")
    results = {}
    for strategy in ("frozen", "finetune", "scratch", "random-frozen"):
        out = tmp_path / strategy
        results[strategy] = execute(clf(strategy, ae_run, batch_size=10), out, data=tiny, **QUIET)
        enc = encoder_tensors(out / "model.safetensors")
        same = [torch.equal(ae[k], enc[k]) for k in ae]
        if strategy == "frozen":
            assert all(same)  # bit-identical to the autoencoder's encoder
        else:
            assert not any(same)  # changed by training, or never loaded
        s = results[strategy]
        cm = torch.tensor(s["confusion_matrix"])
        assert cm.sum() == 300 and cm.shape == (10, 10)
        assert len(s["per_class_acc"]) == 10 and s["most_confused"]["true"]
        rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
        assert {"train_acc", "train_eval_acc", "val_acc"} <= rows[0].keys()
    # the synthetic classes are easy: every strategy that trains its encoder beats chance (at
    # batch 10: in 48 steps of 25, fine-tuning learned in some seeds and not in others)
    for strategy in ("finetune", "scratch"):
        assert results[strategy]["test_acc"] > 0.3, {k: v["test_acc"] for k, v in results.items()}


@pytest.mark.parametrize("strategy", ["frozen", "finetune", "random-frozen", "scratch"])
def test_frozen_and_finetune_start_from_the_autoencoders_encoder(ae_run, strategy):
    """Before its first step a classifier's encoder is the autoencoder's, bit for bit, where its
    strategy takes the weights (fine-tuning's training then changes them: test_strategies cannot
    tell that from weights never loaded)."""
    from fashionae.runs import build, classifier_from_encoder
    model = build(*classifier_from_encoder(clf(strategy, ae_run)))
    ae, start = encoder_tensors(ae_run / "model.safetensors"), model.state_dict()
    same = [torch.equal(ae[k], start[k]) for k in ae]
    assert same and all(same) if strategy in ("frozen", "finetune") else not any(same)


@pytest.mark.parametrize("strategy", ["random-frozen", "scratch"])
def test_random_frozen_and_scratch_start_from_random_weights(tiny, ae_run, tmp_path, strategy):
    """With --encoder they use that encoder's architecture but not its weights: the same model
    as without it, from the seed alone."""
    execute(clf(strategy, ae_run, epochs=1), tmp_path / "with", data=tiny, **QUIET)
    execute(clf(strategy, None, epochs=1), tmp_path / "without", data=tiny, **QUIET)
    with_encoder, without = (encoder_tensors(tmp_path / name / "model.safetensors", prefix="")
                             for name in ("with", "without"))
    assert with_encoder.keys() == without.keys()
    assert all(torch.equal(with_encoder[k], without[k]) for k in without)  # seeded init, nothing loaded


def test_paper_head(tiny, ae_run, tmp_path):
    s = execute(clf("frozen", ae_run, paper_head=True, epochs=1), tmp_path / "p", data=tiny, **QUIET)
    model = load_model(tmp_path / "p" / "model.safetensors")
    out = model(torch.rand(16, 1, 28, 28), torch.zeros(16, dtype=torch.long))
    assert out.output.min().item() >= 0 and out.output.max().item() <= 1
    assert s["val_loss"] > 1.46


def test_a_classifier_trained_on_is_the_longer_run_and_one_on_an_encoder_trained_on_is_refused(tiny, ae_run,
                                                                                                   tmp_path):
    """--extend on a classifier (fine-tuned, augmented, the paper's head with its dropout) is the
    longer run bit for bit; a classifier whose encoder was trained on since says so, not digests."""
    from helpers import read_metrics, same_weights
    run = dict(augment=True, paper_head=True)
    execute(clf("finetune", ae_run, epochs=3, **run), tmp_path / "straight", data=tiny, **QUIET)
    execute(clf("finetune", ae_run, epochs=1, keep_state=True, **run), tmp_path / "kept", data=tiny, **QUIET)
    execute(clf("finetune", ae_run, epochs=3, **run), tmp_path / "kept", data=tiny, extend=True, **QUIET)
    assert read_metrics(tmp_path / "kept") == read_metrics(tmp_path / "straight")
    assert same_weights(tmp_path / "kept" / "model.safetensors", tmp_path / "straight" / "model.safetensors")
    encoder = tmp_path / "ae"
    execute(RunConfig(model=ModelConfig(latent=32), train=train_cfg(epochs=1, keep_state=True)), encoder,
            data=tiny, **QUIET)
    execute(clf("frozen", encoder, epochs=1), tmp_path / "frozen", data=tiny, **QUIET)
    execute(RunConfig(model=ModelConfig(latent=32), train=train_cfg(epochs=2)), encoder, data=tiny, extend=True,
            **QUIET)
    with pytest.raises(UserError, match=r"/frozen holds a run with other settings \(trained on an earlier ae\); "
                                        r"choose another --out"):
        execute(clf("frozen", encoder, epochs=1), tmp_path / "frozen", data=tiny, **QUIET)


def test_a_diverged_classifier_has_no_accuracy(tiny, ae_run, tmp_path, monkeypatch, data_dir, capsys):
    """A classifier whose weights became NaN: argmax answers class 0 for every image, a finite
    share of the test set that the claims would judge. Its accuracies are not numbers instead, and
    the run still finishes, its summary sound (the report names it diverged)."""
    import math

    from fashionae import training
    from fashionae.runfolder import RunFolder
    real = training.prepare

    def diverging(model, cfg):
        opt = real(model, cfg)
        step = opt.step
        opt.step = lambda: (step(), [p.data.fill_(math.nan) for p in model.parameters()])
        return opt
    monkeypatch.setattr(training, "prepare", diverging)
    summary = execute(clf("finetune", ae_run, epochs=1), tmp_path / "ft", data=tiny, **QUIET)
    assert math.isnan(summary["test_loss"])
    assert all(math.isnan(summary[k]) for k in ("test_acc", "val_acc", "best_val_acc", "train_acc", "train_eval_acc"))
    assert math.isnan(RunFolder(tmp_path / "ft").summary()["test_acc"])
    # nor a confusion: argmax's answers for logits that are not numbers confuse nothing
    assert summary["most_confused"] == {"true": None, "predicted": None, "count": None}
    assert all(math.isnan(a) for a in summary["per_class_acc"])
    monkeypatch.undo()
    # the paper head's Sigmoid makes infinite logits finite scores, and a finite loss: diverged all the same
    from fashionae.models import build_model
    paper = build_model(ModelConfig(task="classifier", latent=32, paper_head=True))
    with torch.no_grad():
        paper.head.bias.fill_(math.inf)
    out = paper(torch.rand(4, 1, 28, 28), torch.zeros(4, dtype=torch.long))
    assert out.loss.isfinite() and math.isnan(paper.metrics(out, torch.zeros(4, dtype=torch.long))["acc"])
    assert main(["eval", str(tmp_path / "ft"), "--data-dir", str(data_dir), "--no-verify"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("  (the model diverged: its outputs are not numbers)")


def test_bad_encoders(tiny, ae_run, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        execute(clf("frozen", tmp_path / "nope"), tmp_path / "o", data=tiny, **QUIET)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a fashionae run folder"):
        execute(clf("frozen", tmp_path / "empty"), tmp_path / "o", data=tiny, **QUIET)
    execute(clf("scratch", None, epochs=1), tmp_path / "c", data=tiny, **QUIET)
    with pytest.raises(UserError, match="is a classifier run"):
        execute(clf("finetune", tmp_path / "c"), tmp_path / "o", data=tiny, **QUIET)
    # a model file that does not match its run's settings
    other = tmp_path / "other"
    execute(RunConfig(model=ModelConfig(latent=16), train=train_cfg(epochs=1)), other, data=tiny, **QUIET)
    copy = shutil.copytree(ae_run, tmp_path / "ae")
    shutil.copy(other / "model.safetensors", copy / "model.safetensors")
    with pytest.raises(UserError, match="does not match"):
        execute(clf("finetune", copy), tmp_path / "o", data=tiny, **QUIET)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("strategy", ["frozen", "finetune"])
def test_a_strategy_that_starts_from_a_trained_encoder_is_refused_without_one(tiny, tmp_path, strategy):
    """frozen and finetune without --encoder would train on a random encoder (random-frozen or
    scratch under another name): refused before anything is made."""
    with pytest.raises(UserError, match=f"^strategy {strategy} starts from a trained encoder: pass --encoder"):
        execute(clf(strategy, None, epochs=1), tmp_path / "o", data=tiny, **QUIET)
    assert not (tmp_path / "o").exists()


def test_an_encoders_folder_is_recorded_by_the_name_it_was_given_its_parents_links_followed(tmp_path, monkeypatch):
    """A run folder that is a link keeps its own name (a study knows its runs by name); the folders
    above it are followed, ".." as the system does: "lnk/../ae" is the ae beside lnk's target."""
    from fashionae.runs import named_as_given
    (tmp_path / "deep" / "a" / "b").mkdir(parents=True)
    (tmp_path / "lnk").symlink_to(tmp_path / "deep" / "a" / "b")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "ae-a-seed0").symlink_to(tmp_path / "deep" / "a")
    monkeypatch.chdir(tmp_path)
    assert named_as_given(Path("lnk/../ae")) == tmp_path / "deep" / "a" / "ae"
    assert named_as_given(Path("runs/ae-a-seed0")) == tmp_path / "runs" / "ae-a-seed0"
    assert named_as_given(Path("runs/ae-a-seed0/")) == tmp_path / "runs" / "ae-a-seed0"
    assert named_as_given(Path("lnk/..")) == tmp_path / "deep" / "a"
    assert named_as_given(Path(".")) == tmp_path
