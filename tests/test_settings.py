"""One source for each setting: options, study keys, checks and identity come from the fields."""

import argparse
from dataclasses import dataclass, fields

import pytest
import torch

from fashionae import settings, training
from fashionae.cli import build_parser
from fashionae.errors import UserError
from fashionae.models import ModelConfig
from fashionae.settings import AUTOENCODER, CLASSIFIER, positive_int, setting
from fashionae.study import AE_KEYS, CLF_KEYS
from fashionae.training import TrainConfig


def help_of(command: str) -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command].format_help()


def test_every_user_setting_is_an_option_and_a_study_key():
    ae_help, clf_help = help_of("train-ae"), help_of("train-clf")
    for cls in (ModelConfig, TrainConfig):
        for f in fields(cls):
            if not f.metadata.get("option", True):
                continue
            flag = f"--{'no-' if f.default is True else ''}{f.name.replace('_', '-')}"
            only = f.metadata.get("only")
            assert (flag in ae_help) == (only != CLASSIFIER), (f.name, "train-ae")
            assert (flag in clf_help) == (only != AUTOENCODER), (f.name, "train-clf")
    assert settings.keys(ModelConfig, AUTOENCODER) - {"paper_head"} <= AE_KEYS
    assert "paper_head" in CLF_KEYS and "decoder" not in CLF_KEYS
    assert "task" not in AE_KEYS and "image_size" not in AE_KEYS  # set by the command / the data


def test_adding_a_setting_is_one_field():
    """A new field, declared once, is an option with its default and check, a study key, part
    of the identity, and absent from files written before it existed (they get the default)."""
    @dataclass(frozen=True)
    class Extended(ModelConfig):
        width: int = setting(32, "channels of the first convolution", check=positive_int)

    parser = argparse.ArgumentParser()
    settings.add_options(parser, Extended, "model", AUTOENCODER)
    assert parser.parse_args([]).width == 32 and parser.parse_args(["--width", "48"]).width == 48
    assert settings.from_options(Extended, parser.parse_args(["--width", "48"]), task="autoencoder").width == 48
    with pytest.raises(UserError, match="width must be a positive integer"):
        settings.from_options(Extended, parser.parse_args(["--width", "0"]))
    assert "width" in settings.keys(Extended, AUTOENCODER)
    assert settings.identity(Extended(width=48))["width"] == 48
    assert settings.from_dict(Extended, {"arch": "conv"}).width == 32  # an old file without it


def test_a_setting_can_say_what_files_from_before_it_did():
    """``before``: a file written before the setting existed reads as what those versions did,
    while new runs take the default (the dropout masks: mersenne until 0.2, counter since)."""
    @dataclass(frozen=True)
    class Extended(ModelConfig):
        kernel: str = setting("fast", "how", choices=("fast", "old"), before="old")

    assert Extended().kernel == "fast" and settings.from_dict(Extended, {"arch": "conv"}).kernel == "old"
    assert settings.from_dict(Extended, {"kernel": "fast"}).kernel == "fast"
    assert TrainConfig().dropout_masks == "auto" and TrainConfig.from_dict({}).dropout_masks == "mersenne"
    assert TrainConfig().resolved().dropout_masks == "counter"  # a new run
    assert TrainConfig().resolved(started=TrainConfig.from_dict({})).dropout_masks == "mersenne"  # a resumed one
    assert TrainConfig(dropout_masks="stock").resolved(TrainConfig.from_dict({})).dropout_masks == "stock"


def test_a_resumed_run_keeps_the_device_and_precision_it_started_with(monkeypatch):
    """"auto" is settled once, when a run starts: resumed where CUDA now shows (a Ray worker kept
    off the GPU started it; the driver sees one), it goes on as it began, and is not "changed"."""
    started = TrainConfig(device="cpu", precision="fp32").resolved()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(training, "native_bf16", lambda device: True)
    assert (TrainConfig().resolved().device, TrainConfig().resolved().precision) == ("cuda", "bf16")  # a new run
    again = TrainConfig().resolved(started)
    assert (again.device, again.precision, again.dropout_masks) == ("cpu", "fp32", "counter")
    assert TrainConfig(device="cuda").resolved(started).device == "cuda"  # said: then refused as other settings
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # started on a GPU, resumed without one
    with pytest.raises(UserError, match="^this run started on CUDA, which a resumed run keeps, and no CUDA device is "
                                        "visible here; resume it where one is"):
        TrainConfig().resolved(TrainConfig(device="cuda", precision="bf16"))


def test_settings_that_change_no_number_are_not_identity():
    base = TrainConfig()
    assert settings.identity(base) == settings.identity(TrainConfig(tensorboard=True))
    assert settings.identity(base) != settings.identity(TrainConfig(lr=2e-3))


def test_unknown_and_bad_values_are_refused():
    with pytest.raises(UserError, match="unknown training setting 'epoch'"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(UserError, match="unknown schedule 'step'; choose one of constant, onecycle"):
        TrainConfig.from_dict({"schedule": "step"})
    with pytest.raises(UserError, match="^unknown val true; choose one of holdout, test$"):  # as TOML spells it
        TrainConfig.from_dict({"val": True})


def test_a_run_says_which_settings_it_does_not_use():
    """What TensorBoard's hparams leave out: the other kind of run's settings, and the latent
    size of a conv model."""
    assert ModelConfig().unused() == {"paper_head"}
    assert ModelConfig(arch="conv").unused() == {"paper_head", "latent"}
    assert ModelConfig(task=CLASSIFIER).unused() == {"decoder"}
    assert settings.unused(TrainConfig(), AUTOENCODER) == {"augment"} and not settings.unused(TrainConfig(), CLASSIFIER)


def test_a_flag_turns_its_setting_away_from_its_default():
    """A boolean setting is a flag: ``--x`` where it is off by default, ``--no-x`` where it is on;
    given, it sets the other value, and a flag not given keeps the default."""
    parser = argparse.ArgumentParser()
    settings.add_options(parser, TrainConfig, "training", CLASSIFIER)
    assert settings.from_options(TrainConfig, parser.parse_args([])).channels_last is True
    given = settings.from_options(TrainConfig, parser.parse_args(["--no-channels-last", "--augment"]))
    assert (given.channels_last, given.augment, given.tensorboard) == (False, True, False)


def test_the_ends_of_a_range_are_checked_as_its_message_says():
    """An integer range includes both ends; a number range [low, high) or (low, high) excludes
    high; a setting's file value is checked with them (the largest seed is a seed)."""
    assert TrainConfig.from_dict({"seed": 2**32 - 1}).seed == 2**32 - 1
    with pytest.raises(UserError, match=r"^seed must be an integer from 0 to "):
        TrainConfig.from_dict({"seed": 2**32})
    seeds = settings.integer_in(1, 100)
    assert seeds(1) is None and seeds(100) is None and seeds(0) and seeds(101)
    assert ModelConfig.from_dict({"dropout": 0}).dropout == 0
    with pytest.raises(UserError, match=r"^dropout must be a number in "):
        ModelConfig.from_dict({"dropout": 1})


def test_true_and_false_are_not_numbers_and_numbers_are_not_true_or_false():
    """A study file's ``epochs = true`` is not one epoch, nor ``augment = 1`` a yes: each is refused
    (JSON and TOML tell them apart; Python's bool is an int)."""
    for cls, key, value in ((TrainConfig, "epochs", True), (TrainConfig, "batch_size", False),
                            (ModelConfig, "latent", True), (TrainConfig, "lr", True), (ModelConfig, "dropout", False),
                            (TrainConfig, "augment", 1), (TrainConfig, "channels_last", 0),
                            (ModelConfig, "dropout_after_pool", 1)):
        with pytest.raises(UserError, match=f"^{key} must be "):
            cls.from_dict({key: value})
