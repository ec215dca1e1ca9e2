"""One source for each setting: options, study keys, checks and identity come from the fields."""

import argparse
from dataclasses import dataclass, fields

import pytest
import torch

from fashionae import settings, training
from fashionae.errors import UserError
from fashionae.models import ModelConfig
from fashionae.options import build_parser
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
    with pytest.raises(UserError, match="^--width must be a positive integer"):  # named as the option
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
    with pytest.raises(UserError, match="unknown training setting 'epoch'; known: augment, batch_size, "):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(UserError, match="^the training settings must be a table of names and values$"):
        TrainConfig.from_dict(["epochs", 3])
    with pytest.raises(UserError, match=r"^image_size "):  # set by fashionae, not an option: named as the field
        settings.check(ModelConfig(image_size=(0, 28)))
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
    assert TrainConfig.from_dict({"lr": 1e-9}).lr == 1e-9  # (0, 1): the learning rate's low end is open
    with pytest.raises(UserError, match=r"^lr must be a number in \(0, 1\), got 0$"):
        TrainConfig.from_dict({"lr": 0})
    rates, above = settings.number_in(0, 1), settings.number_in(0, 1, closed_low=False, closed_high=True)
    assert rates(0) is None and rates(0.5) is None and rates(1) == "must be a number in [0, 1), got 1"
    assert above(1) is None and above(0) == "must be a number in (0, 1], got 0" and above(1.5)


def test_true_and_false_are_not_numbers_and_numbers_are_not_true_or_false():
    """A study file's ``epochs = true`` is not one epoch, nor ``augment = 1`` a yes: each is refused
    (JSON and TOML tell them apart; Python's bool is an int)."""
    for cls, key, value in ((TrainConfig, "epochs", True), (TrainConfig, "batch_size", False),
                            (ModelConfig, "latent", True), (TrainConfig, "lr", True), (ModelConfig, "dropout", False),
                            (TrainConfig, "augment", 1), (TrainConfig, "channels_last", 0),
                            (ModelConfig, "dropout_after_pool", 1)):
        with pytest.raises(UserError, match=f"^{key} must be "):
            cls.from_dict({key: value})


def test_the_help_shows_each_settings_text_values_and_default():
    """Each option's help is its field's: its text, its choices or metavar, its default where it
    has one (none shown for None), under its group's title; a flag's text too."""
    shown = " ".join(help_of("train-ae").split())  # as argparse wraps it at any width
    assert "\ntraining:\n" in help_of("train-ae")
    assert "--epochs EPOCHS training epochs (default: 60)" in shown
    assert "--schedule constant|onecycle constant (the author's) | onecycle (default: constant)" in shown
    assert ("--train-subset N train on N training images only: the first N of the training set (under holdout, the "
            "first of a fixed shuffle; else as the file orders them) (default: all) --eval-subset N") in shown
    assert "--no-channels-last keep the NCHW memory layout" in shown and "(default: None)" not in shown

    @dataclass(frozen=True)
    class Extended(ModelConfig):  # (a field declared now, as a new setting would be)
        width: int = setting(32, "channels of the first convolution", check=positive_int, metavar="C")

    parser = argparse.ArgumentParser()
    settings.add_options(parser, Extended, "model", AUTOENCODER)
    assert "--width C channels of the first convolution (default: 32)" in " ".join(parser.format_help().split())


def test_the_keys_a_study_file_takes_are_those_of_its_kind_of_run():
    """``keys``: the user's settings (not those fashionae sets), of one kind of run or of every kind."""
    ae, clf, every = (settings.keys(ModelConfig, kind) for kind in (AUTOENCODER, CLASSIFIER, None))
    assert "decoder" in ae and "paper_head" not in ae
    assert "paper_head" in clf and "decoder" not in clf
    assert {"decoder", "paper_head", "latent"} <= every and not {"task", "image_size"} & every


def test_a_command_line_that_gives_no_setting_gave_none():
    parser = argparse.ArgumentParser()
    settings.add_options(parser, TrainConfig, "training", AUTOENCODER)
    assert settings.given(parser.parse_args([])) == frozenset()
    assert settings.given(parser.parse_args(["--epochs", "60"])) == {"epochs"}  # at its default: given all the same


def test_a_list_setting_is_checked_and_each_object_has_its_own():
    """A mutable default (a study's ``[explore] autoencoders``) is copied for each object, and
    its check applies as any setting's."""
    def a_list(v):
        return None if isinstance(v, list) else f"must be a list, got {v!r}"

    @dataclass
    class Listed:
        names: list = setting(["a"], check=a_list)

    one, two = Listed(), Listed()
    one.names.append("b")
    assert two.names == ["a"] and settings.from_dict(Listed, {}).names == ["a"]
    assert settings.from_dict(Listed, {"names": ["b"]}).names == ["b"]  # a list stays a list
    with pytest.raises(UserError, match=r"^names must be a list, got 'a'$"):
        settings.from_dict(Listed, {"names": "a"})


def test_no_subset_is_none_and_a_subset_of_zero_images_is_refused():
    """``train_subset = 0`` is not "all": None is, and 0 is refused, in [train] as in [baselines]."""
    assert settings.optional_positive_int(None) is None
    for key in ("train_subset", "eval_subset"):
        with pytest.raises(UserError, match=f"^{key} must be a positive integer, got 0$"):
            TrainConfig.from_dict({key: 0})


def test_a_setting_with_choices_refuses_none():
    """A JSON null is no choice: a setting with choices takes only them."""
    with pytest.raises(UserError, match="^unknown schedule None; choose one of constant, onecycle$"):
        TrainConfig.from_dict({"schedule": None})


def test_a_list_read_from_json_is_a_tuple_where_the_default_is_one():
    """JSON has no tuples: a model's image size read back is a tuple again, equal to the one it was."""
    size = ModelConfig.from_dict({"image_size": [32, 32]}).image_size
    assert size == (32, 32) and isinstance(size, tuple)
    assert ModelConfig.from_dict({"image_size": [28, 28]}) == ModelConfig()


def test_an_option_given_at_the_value_that_replaces_it_is_not_overridden():
    """``overridden``: only an option given whose value the other settings would change."""
    given = frozenset({"latent", "dropout"})
    assert settings.overridden(ModelConfig(latent=16), ModelConfig(latent=16), given) == []
    assert settings.overridden(ModelConfig(latent=999), ModelConfig(latent=16), given) == ["--latent 999 (its: 16)"]
    assert settings.overridden(ModelConfig(latent=999), ModelConfig(latent=16), frozenset()) == []


def test_a_count_beyond_two_to_the_31_is_refused_as_a_slip():
    """Epochs, a batch or a subset of 10^11 or 10^23 (a key held down) are refused, not planned for
    millions of hours: every count is at most 2**31 - 1, as a latent's size is."""
    assert positive_int(2**31 - 1) is None
    assert positive_int(2**31) == "must be a positive integer of at most 2,147,483,647, got 2,147,483,648"
    for key in ("epochs", "batch_size", "train_subset"):
        with pytest.raises(UserError, match=f"^{key} must be a positive integer of at most 2,147,483,647, got "
                                            "100,000,000,000$"):
            TrainConfig.from_dict({key: 10**11})
    with pytest.raises(UserError, match="^--epochs must be a positive integer of at most 2,147,483,647"):
        settings.from_options(TrainConfig, build_parser().parse_args(["train-ae", "--epochs", str(10**23)]))
