import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fashionae
from fashionae.errors import UserError, out_of_memory
from fashionae.images import prepare_image
from helpers import PAPER, cli, run_python

SMALL = ["--epochs", "1", "--batch-size", "50", "--train-subset", "300", "--eval-subset", "200",
         "--no-verify"]


def test_train_ae_eval_and_refusals(capsys, data_dir, tmp_path):
    out = tmp_path / "ae"
    code, stdout, _ = cli(capsys, "train-ae", "--latent", 16, *SMALL, "--data-dir", data_dir, "--out", out)
    assert code == 0 and "val MSE" in stdout
    code, stdout, _ = cli(capsys, "eval", out, "--data-dir", data_dir, "--no-verify")
    assert code == 0 and "validation: MSE" in stdout and "test: MSE" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert f"{summary['test_loss']:.5f}" in stdout.split("test: MSE")[1]
    # the run's speed is its epochs' (of one epoch, that epoch's: its figure is test_training's)
    (row,) = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert summary["images_per_second"] == pytest.approx(row["train_images_per_second"])
    # the same --out with other settings is refused, and nothing is touched
    before = (out / "summary.json").read_text()
    code, _, err = cli(capsys, "train-ae", "--latent", 32, *SMALL, "--data-dir", data_dir, "--out", out)
    assert code == 2 and err.startswith("fashionae: error: ") and "latent" in err
    assert (out / "summary.json").read_text() == before
    # eval prints both figures of the run, and how many images each is over
    code, stdout, _ = cli(capsys, "eval", out, "--data-dir", data_dir, "--no-verify")
    assert f"validation: MSE {summary['val_loss']:.5f}  (200 images)" in stdout
    assert f"test: MSE {summary['test_loss']:.5f}  (200 images)" in stdout


def test_a_run_that_kept_its_state_is_trained_on_with_extend(capsys, data_dir, tmp_path):
    out = tmp_path / "ae"
    assert cli(capsys, "train-ae", "--latent", 16, *SMALL, "--keep-state", "--data-dir", data_dir, "--out", out)[0] == 0
    more = [*SMALL[:1], "2", *SMALL[2:]]  # --epochs 2
    code, _, err = cli(capsys, "train-ae", "--latent", 16, *more, "--data-dir", data_dir, "--out", out)
    assert code == 2 and err.strip().endswith("add --extend to train it on to 2 from its training state, or choose "
                                              "another --out")
    code, stdout, err = cli(capsys, "train-ae", "--latent", 16, *more, "--extend", "--data-dir", data_dir, "--out", out)
    assert code == 0 and "training it on from epoch 1 to 2" in err and "epoch 2/2" in err and "val MSE" in stdout
    assert json.loads((out / "summary.json").read_text())["epochs"] == 2


def test_a_conv_autoencoder_without_latent_trains(capsys, data_dir, tmp_path):
    """--latent is refused for an arch without one only where it is given: left out, conv trains."""
    code, stdout, err = cli(capsys, "train-ae", "--arch", "conv", *SMALL, "--data-dir", data_dir,
                            "--out", tmp_path / "conv")
    assert code == 0 and "error" not in err and "val MSE" in stdout


def test_a_subset_larger_than_the_data_is_said_to_be_all_of_it(capsys, tmp_path):
    from helpers import write_dataset
    data = write_dataset(tmp_path / "data", n_train=300, n_test=100)  # 250 to train on, 50 to validate
    code, _, err = cli(capsys, "train-ae", "--latent", 16, "--epochs", "1", "--train-subset", "1000", "--eval-subset",
                       "50", "--no-verify", "--data-dir", data, "--out", tmp_path / "ae")
    assert code == 0 and "train_subset 1,000 is more than the 250 training images; all of them are used" in err
    assert "eval_subset" not in err
    assert json.loads((tmp_path / "ae" / "config.json").read_text())["data"]["train_size"] == 250


def test_default_out_folders_are_the_ones_the_docs_name(capsys, data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli(capsys, "train-ae", "--latent", 16, *SMALL, "--data-dir", data_dir)[0] == 0
    assert (tmp_path / "runs" / "ae-linear16-seed0" / "summary.json").is_file()
    assert cli(capsys, "train-clf", "--strategy", "finetune", "--encoder", "runs/ae-linear16-seed0", *SMALL,
               "--data-dir", data_dir)[0] == 0
    assert (tmp_path / "runs" / "clf-finetune-seed0" / "summary.json").is_file()
    # the encoder's model settings are the classifier's: an option beside --encoder that would
    # change them is refused, not ignored (the encoder's own value is accepted, and --paper-head)
    code, _, err = cli(capsys, "train-clf", "--strategy", "frozen", "--encoder", "runs/ae-linear16-seed0", *SMALL,
                       "--latent", 16, "--paper-head", "--data-dir", data_dir, "--out", "c1")
    assert code == 0 and err.count("fashionae: error") == 0
    code, _, err = cli(capsys, "train-clf", "--strategy", "frozen", "--encoder", "runs/ae-linear16-seed0", *SMALL,
                       "--latent", 999, "--dropout", 0.5, "--data-dir", data_dir, "--out", "c2")
    assert (code, err) == (2, "fashionae: error: --latent 999 (its: 16), --dropout 0.5 (its: 0.2): a classifier on "
                              "--encoder runs/ae-linear16-seed0 takes the encoder's model settings (all but "
                              "--paper-head); leave them out\n")
    assert not (tmp_path / "c2").exists()
    # given at its default value, an option the encoder sets otherwise is refused all the same
    code, _, err = cli(capsys, "train-clf", "--strategy", "frozen", "--encoder", "runs/ae-linear16-seed0", *SMALL,
                       "--latent", 512, "--data-dir", data_dir, "--out", "c3")
    assert (code, err) == (2, "fashionae: error: --latent 512 (its: 16): a classifier on --encoder "
                              "runs/ae-linear16-seed0 takes the encoder's model settings (all but --paper-head); "
                              "leave it out\n")
    assert not (tmp_path / "c3").exists()


def test_every_command_of_the_parser_has_its_function_and_every_function_its_command():
    """``main`` runs a command by its name (train-ae: ``cli.cmd_train_ae``): none is left without one."""
    import argparse
    from fashionae import cli
    from fashionae.options import build_parser
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    functions = {name.removeprefix("cmd_").replace("_", "-") for name in vars(cli) if name.startswith("cmd_")}
    assert set(sub.choices) == functions and len(functions) == 12


def test_no_command_prints_the_help_and_a_folder_that_is_no_study_is_one_line(capsys, tmp_path):
    code, out, _ = cli(capsys)
    assert code == 2 and out.startswith("usage: fashionae") and "train-ae" in out
    code, _, err = cli(capsys, "report", tmp_path)
    assert (code, err) == (2, f"fashionae: error: {tmp_path} is not a fashionae study folder (no study.json)\n")
    code, _, err = cli(capsys, "report", tmp_path / "typo")
    assert (code, err) == (2, f"fashionae: error: {tmp_path / 'typo'} does not exist; give the --out folder of a "
                              "study (fashionae study)\n")
    run, study = tmp_path / "run", tmp_path / "study"
    run.mkdir(), study.mkdir()
    (run / "config.json").write_text("{}")
    (study / "study.json").write_text("{}")
    code, _, err = cli(capsys, "report", run)
    assert (code, err) == (2, f"fashionae: error: {run} is a run folder, not a study folder; a report is of a study "
                              f"(fashionae study), and `fashionae eval {run}` measures a run again\n")
    code, _, err = cli(capsys, "classify", study, "shoe.png")
    assert (code, err) == (2, f"fashionae: error: {study} is a study folder; give one of its runs, in {study / 'runs'}\n")
    with pytest.raises(UserError, match=f"^{study} is a study folder; give one of its runs"):  # the Python API too
        fashionae.load(study)
    (tmp_path / "notes.txt").write_text("")
    code, _, err = cli(capsys, "report", tmp_path / "notes.txt")
    assert (code, err) == (2, f"fashionae: error: {tmp_path / 'notes.txt'} is a file; give the --out folder of a "
                              "study (fashionae study)\n")
    code, _, err = cli(capsys, "classify", tmp_path, "shoe.png", "--invert", "maybe")
    assert code == 2 and "argument --invert: invalid choice: 'maybe' (choose from 'auto', 'yes', 'no')" in err


@pytest.mark.parametrize("args, message", [
    (["train-ae", "--arch", "mlp"], "unknown --arch 'mlp'"),
    (["train-ae", "--decoder", "k9"], "unknown --decoder"),
    (["train-ae", "--latent", "0"], "--latent must be an integer from 1 to 2147483647, got 0"),
    (["train-ae", "--latent", str(2**64)], f"--latent must be an integer from 1 to 2147483647, got {2**64}"),  # (torch overflowed)
    (["train-ae", "--arch", "conv", "--latent", "64"], "the conv arch has none"),
    (["train-ae", "--arch", "conv", "--latent", "512"], "the conv arch has none"),  # given at its default
    (["train-clf", "--strategy", "scratch", "--arch", "conv", "--latent", "64"], "the conv arch has none"),
    (["train-ae", "--epochs", "0"], "--epochs must be a positive integer"),
    (["train-ae", "--batch-size", "-5"], "--batch-size must be a positive integer"),
    (["train-ae", "--dropout", "1.0"], "--dropout must be a number in [0, 1)"),
    (["train-ae", "--epochs", "ten"], "invalid int value"),
    (["train-clf", "--strategy", "frozen"], "pass --encoder"),
    (["train-clf", "--strategy", "sideways"], "invalid choice: 'sideways'"),
])
def test_bad_settings_one_line_exit_2(capsys, data_dir, tmp_path, args, message):
    code, _, err = cli(capsys, *args, "--data-dir", data_dir, "--no-verify", "--out", tmp_path / "o")
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, message", [
    (["train-ae", "--seed", "4294967296"], "--seed must be an integer from 0 to 4294967295, got 4294967296"),
    (["baselines", "--logreg-max-iter", "-1"], "--logreg-max-iter must be a positive integer, got -1"),
    (["baselines", "--train-subset", "0"], "--train-subset must be a positive integer, got 0"),
    (["bench", "--windows", "0"], "--windows must be a positive integer, got 0"),
    (["study", "s.toml", "--json"], "--json goes with --plan (the plan as JSON); the study itself writes "
                                    "results.json"),
    (["study", "s.toml", "--cpus-per-run", "2"], "--cpus-per-run is for Ray's executor: add --executor ray, "
                                                  "or leave it out"),
    (["study", "s.toml", "--address", "auto", "--gpus-per-run", "0.5", "--plan"],
     "--address, --gpus-per-run are for Ray's executor: add --executor ray, or leave it out"),
    (["study", "s.toml", "--executor", "ray", "--cpus-per-run", "0", "--plan"], "--cpus-per-run must be at least 1, "
                                                                                 "got 0"),
    (["study", "s.toml", "--executor", "ray", "--address", " ", "--plan"],  # ("$HEAD" unset: no local Ray unsaid)
     "--address is empty; give the cluster's HOST:PORT (or auto), or leave it out to start Ray on this machine"),
    (["bench", "--images", "99"], "--images must be at least 100 (one batch), got 99"),
    (["export", "runs/ae", "-o", "runs/ae/model.safetensors"],
     "--output runs/ae/model.safetensors must be an .onnx file, e.g. encoder.onnx"),
])
def test_bad_numbers_are_refused_before_any_work(capsys, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    if args[0] in ("train-ae", "baselines"):
        args = [*args, "--out", "o"]
    code, _, err = cli(capsys, *args)
    assert (code, err) == (2, f"fashionae: error: {message}\n")
    assert not (tmp_path / "o").exists()


def test_a_path_too_long_is_one_line(capsys, tmp_path):
    code, _, err = cli(capsys, "eval", tmp_path / ("a" * 300))
    assert code == 2 and err.startswith("fashionae: error: cannot use the path ") and err.count("\n") == 1
    assert err.endswith(": File name too long; give another path\n")


def test_a_symlink_loop_is_one_line(capsys, tmp_path, own_run):
    """Path.resolve raises RuntimeError on a loop before Python 3.13, OSError (ELOOP) from it."""
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    code, _, err = cli(capsys, "reconstruct", own_run[1], tmp_path / "loop.png", "-o", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("fashionae: error: ") and "loop.png" in err


def test_a_symlink_loop_raised_as_runtime_error_is_one_line(capsys):
    from fashionae.errors import run_command

    for path in ("/x/loop.png", "/x/it's \"a\"\tloop.png"):
        def resolve():
            raise RuntimeError(f"Symlink loop from {path!r}")  # as pathlib words it
        assert run_command(resolve, debug=False, resumable=False) == 2
        assert capsys.readouterr().err == (f"fashionae: error: cannot use the path {path}: Too many levels of "
                                           "symbolic links; give another path\n")


def test_a_symlink_loop_raised_as_os_error_is_one_line(capsys):
    """Python 3.13's Path.resolve, and any open of a looping link, raise OSError (ELOOP)."""
    import errno
    from fashionae.errors import run_command

    def resolve():
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), "/x/loop.png")
    assert run_command(resolve, debug=False, resumable=False) == 2
    assert capsys.readouterr().err == ("fashionae: error: cannot use the path /x/loop.png: Too many levels of "
                                       "symbolic links; give another path\n")


def test_a_study_under_torchrun_is_refused_before_any_work(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")  # (torchrun's agent set it)
    code, _, err = cli(capsys, "study", PAPER, "--out", "s")
    assert (code, err) == (2, "fashionae: error: study runs in one process: torchrun splits one run (train-ae, "
                              "train-clf) over processes; to spread a study's runs, use --executor ray\n")
    # and so does every other command but the two that torchrun splits (each process would run it)
    code, _, err = cli(capsys, "baselines", "--out", "b")
    assert (code, err) == (2, "fashionae: error: baselines runs in one process: torchrun splits one run (train-ae, "
                              "train-clf) over processes; run it without torchrun\n")
    # torchrun's variables left over in a shell, no torchrun: they are what to remove
    monkeypatch.delenv("TORCHELASTIC_RUN_ID")
    code, _, err = cli(capsys, "study", PAPER, "--out", "s")
    assert (code, err) == (2, "fashionae: error: WORLD_SIZE=2 is set, but torchrun did not start this command "
                              "(`fashionae study` runs in one process): `unset WORLD_SIZE RANK LOCAL_RANK "
                              "LOCAL_WORLD_SIZE MASTER_ADDR MASTER_PORT` (left over from another job)\n")
    assert list(tmp_path.iterdir()) == []


def test_torchruns_variables_left_over_or_malformed_are_one_line_and_make_nothing(capsys, tmp_path, data_dir,
                                                                                      monkeypatch):
    """WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE are torchrun's to set: one that makes no sense
    (a shell's leftover from another job), or a group it cannot join (no MASTER_ADDR: not started
    by torchrun), is one line that says so, before anything is written."""
    monkeypatch.chdir(tmp_path)
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    fix = ("torchrun sets it: start the command with torchrun, or unset WORLD_SIZE, RANK, LOCAL_RANK, "
           "LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT if they are left over from another job\n")
    train = ("train-ae", "--arch", "linear", "--latent", "8", "--epochs", "1", "--train-subset", "200",
             "--eval-subset", "100", "--data-dir", data_dir, "--no-verify", "--out", "ae")
    for env, command, said in (
            ({"WORLD_SIZE": "abc"}, ("data", "--data-dir", data_dir, "--no-verify"),
             "the environment's WORLD_SIZE='abc' is not a whole number of at least 1; "),
            ({"WORLD_SIZE": "0"}, train, "the environment's WORLD_SIZE='0' is not a whole number of at least 1; "),
            ({"WORLD_SIZE": "2"}, train, "WORLD_SIZE=2 is set in the environment and RANK is not; "),
            ({"WORLD_SIZE": "2", "RANK": "x"}, train, "the environment's RANK='x' is not a whole number; "),
            ({"WORLD_SIZE": "2", "RANK": "2"}, train, "the environment's RANK=2 is not below its WORLD_SIZE=2; "),
            ({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "-1"}, train,
             "the environment's LOCAL_RANK='-1' is not a whole number; "),
            ({"WORLD_SIZE": "2", "RANK": "0"}, train, "cannot join torchrun's processes (")):
        with monkeypatch.context() as m:
            for k, v in env.items():
                m.setenv(k, v)
            code, _, err = cli(capsys, *command)
        assert code == 2 and err.startswith("fashionae: error: " + said) and err.endswith(fix), err
        assert err.count("\n") == 1
        assert list(tmp_path.iterdir()) == []


def test_a_whole_set_of_torchruns_variables_left_over_says_what_it_waits_for_and_gives_up(capsys, tmp_path, data_dir,
                                                                                          monkeypatch):
    """WORLD_SIZE, RANK, MASTER_ADDR and MASTER_PORT left over from another job: process 0 waits for
    others that never come. It says so once it has waited a while, and when torch's wait ends
    (30 minutes; here a second), one line; nothing is written."""
    import signal
    import socket
    from datetime import timedelta

    from fashionae import distributed
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(distributed, "RENDEZVOUS_TIMEOUT", timedelta(seconds=1.5))
    monkeypatch.setattr(distributed, "WAIT_NOTE_SECONDS", 0.5)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for k, v in {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2",
                 "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}.items():
        monkeypatch.setenv(k, v)
    code, _, err = cli(capsys, "train-ae", "--arch", "linear", "--latent", "8", "--epochs", "1", "--train-subset",
                       "200", "--data-dir", data_dir, "--no-verify", "--out", "ae")
    note, error = err.splitlines()
    assert code == 2 and note == (f"fashionae: process 0 of 2 waits for the others at 127.0.0.1:{port} "
                                  "(for up to 0.025 minutes; Ctrl-C stops it); without torchrun, unset WORLD_SIZE, RANK, "
                                  "LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT")
    assert error.startswith("fashionae: error: cannot join torchrun's processes (") and "1/2 clients joined" in error
    assert error.endswith("if they are left over from another job")
    assert list(tmp_path.iterdir()) == []
    assert signal.set_wakeup_fd(-1) == -1  # (the wait's own descriptor not left in place)


def test_an_empty_output_path_is_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli(capsys, "train-ae", "--out", "")[::2] == (2, "fashionae: error: --out is empty; give a path\n")
    assert cli(capsys, "reconstruct", tmp_path, tmp_path, "-o", "")[::2] == (2, "fashionae: error: --output is empty; "
                                                                            "give a path\n")
    assert list(tmp_path.iterdir()) == []


def test_a_lost_torchrun_process_is_one_line_in_the_others(capsys, tmp_path, monkeypatch):
    from fashionae import cli as cli_module
    gloo = ("[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by peer "
            "[127.0.0.1]:31134. This is typically caused by a remote worker crashing. GLHF!")

    def lost(*args):
        raise RuntimeError(gloo)

    monkeypatch.setattr(cli_module, "train_run", lost)
    monkeypatch.setenv("WORLD_SIZE", "2")  # processes another launcher started with torchrun's variables
    code, _, err = cli(capsys, "train-ae", "--out", tmp_path / "ae")
    assert (code, err) == (2, "fashionae: error: another process of the 2 was lost (Connection closed by peer "
                              "[127.0.0.1]:31134); finished epochs are kept: start the 2 again as before to resume\n")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "j")  # torchrun's
    code, _, err = cli(capsys, "train-ae", "--out", tmp_path / "ae")
    assert (code, err) == (2, "fashionae: error: another process of this torchrun was lost (Connection closed by "
                              "peer [127.0.0.1]:31134); finished epochs are kept: run the same torchrun command "
                              "again to resume\n")
    from fashionae.distributed import lost_process  # only a peer's loss: not this process's own troubles
    assert lost_process(RuntimeError("[pair.cc:537] Read error [127.0.0.1]:10983: Connection reset by peer")) == \
        "Read error [127.0.0.1]:10983: Connection reset by peer"
    assert lost_process(RuntimeError("[gloo/transport/tcp/device.cc:84] no interface named eth9")) is None
    assert lost_process(__import__("torch").distributed.DistStoreError("timed out after 900 s")) is None
    monkeypatch.setenv("WORLD_SIZE", "1")  # without torchrun, such an error is not ours to explain
    code, _, err = cli(capsys, "train-ae", "--out", tmp_path / "ae")
    assert code == 1 and err.startswith("fashionae: internal error: RuntimeError: [/__w/")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a CUDA device is here")
def test_a_plan_for_cuda_without_cuda_says_so(capsys, data_dir, tmp_path):
    paper = PAPER
    code, _, err = cli(capsys, "study", paper, "--profile", "smoke", "--device", "cuda", "--plan",
                       "--out", tmp_path / "s", "--data-dir", data_dir, "--no-verify")
    assert (code, err) == (2, "fashionae: error: device cuda was asked for (--device cuda, or device = \"cuda\" in a "
                              "study file) but no CUDA device is available here; use cpu, or auto to take CUDA "
                              "where there is one\n")
    (tmp_path / "cuda.toml").write_text('[train]\ndevice = "cuda"\n[[autoencoders]]\nname = "a"\narch = "conv"\n')
    code, _, err = cli(capsys, "study", tmp_path / "cuda.toml", "--plan",
                       "--out", tmp_path / "s", "--data-dir", data_dir, "--no-verify")
    assert code == 2 and 'device = "cuda" in a study file' in err


def test_a_bundled_study_by_its_name_says_where_its_file_is(capsys, data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, "study", "paper", "--profile", "smoke", "--plan", "--data-dir", data_dir,
                         "--no-verify")
    bundled = Path(fashionae.__file__).parent / "studies" / "paper.toml"
    assert code == 0 and err.startswith(f"note: the bundled study paper ({bundled}); copy it to change it\n")
    assert "ae-linear-64-seed0" in out and not (tmp_path / "runs").exists()  # a plan writes nothing


def test_bad_data_and_no_traceback_in_a_real_process(tmp_path):
    """The whole program, as a user runs it: one line on stderr, exit 2."""
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    proc = subprocess.run([sys.executable, "-m", "fashionae", "data", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("fashionae: error: ") and proc.stderr.count("\n") == 1
    proc = subprocess.run([sys.executable, "-m", "fashionae", "data", "--data-dir", str(tmp_path),
                           "--debug"], capture_output=True, text=True)
    assert "Traceback" in proc.stderr


def test_data_command_on_real_files(capsys, real):
    code, out, _ = cli(capsys, "data")
    assert code == 0 and "SHA-256 verified" in out


def test_what_was_given_is_named_as_what_it_is(capsys, tmp_path):
    """An unknown option points at the command's own help; a file where a run folder is
    wanted, or a folder where a picture is, is called what it is."""
    picture = tmp_path / "shoe.png"
    picture.write_bytes(b"not read")
    assert cli(capsys, "eval", tmp_path, "--bogus")[:3:2] == (
        2, "fashionae: error: unrecognized arguments: --bogus (see `fashionae eval --help`)\n")
    assert cli(capsys, "classify", picture, picture)[:3:2] == (
        2, f"fashionae: error: {picture} is a file; give a fashionae run folder\n")
    with pytest.raises(UserError, match=rf"^image {tmp_path} is a folder, not a picture file$"):
        prepare_image(tmp_path)


def test_a_model_too_large_for_the_machine_is_one_line_and_blocks_nothing(capsys, data_dir, tmp_path):
    out = tmp_path / "ae"
    code, _, err = cli(capsys, "train-ae", "--latent", 2**31 - 1, *SMALL, "--data-dir", data_dir, "--out", out)
    # refused from its parameters' count, before anything is allocated
    assert code == 2 and re.fullmatch(r"fashionae: error: the model has 13,47\d(,\d{3}){3} parameters: training it "
                                      r"takes at least [\d,]+ GiB \(its weights, and the gradients and Adam's "
                                      r"moments of those it trains\), more "
                                      r"than this machine's [\d,]+ GiB; use a smaller latent or smaller images\n", err)
    assert not (out / "config.json").exists()  # the folder is free for the next try
    # one that fits the count but not the memory left fails when it allocates: said in one line too
    said = out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has ..."))
    assert said == ("out of memory (CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has ...); use a smaller latent, "
                    "batch or training subset (--latent, --batch-size, --train-subset; in a study file latent, "
                    "batch_size, train_subset), or a machine with more memory")
    code, _, _ = cli(capsys, "train-ae", "--latent", 8, *SMALL, "--data-dir", data_dir, "--out", out)
    assert code == 0


def test_out_of_memory_in_a_command_that_does_not_train_names_no_training_setting(capsys, monkeypatch, tmp_path):
    """Out of memory, each command names its own settings that ask for less (`report` has none,
    `data --from-pictures` its --image-size: not --latent); a MemoryError that says nothing more is
    no empty "()"."""
    from fashionae import cli as cli_module
    def short(a):
        raise MemoryError
    monkeypatch.setattr(cli_module, "cmd_report", short)
    code, _, err = cli(capsys, "report", tmp_path)
    assert (code, err) == (2, "fashionae: error: out of memory; close what else takes memory, or use a machine with "
                              "more\n")
    monkeypatch.setattr(cli_module, "cmd_train_ae", short)
    code, _, err = cli(capsys, "train-ae", "--out", tmp_path / "ae")
    assert code == 2 and err.startswith("fashionae: error: out of memory; use a smaller latent, batch or training subset")
    monkeypatch.setattr(cli_module, "cmd_train_clf", short)
    code, _, err = cli(capsys, "train-clf", "--strategy", "scratch", "--out", tmp_path / "clf")
    assert code == 2 and err.startswith("fashionae: error: out of memory; use a smaller latent, batch or training subset")
    monkeypatch.setattr(cli_module, "cmd_baselines", short)  # each command's own settings that ask for less
    code, _, err = cli(capsys, "baselines", "--out", tmp_path / "b")
    assert (code, err) == (2, "fashionae: error: out of memory; use smaller subsets (--train-subset, --eval-subset), "
                              "or a machine with more memory\n")
    monkeypatch.setattr(cli_module, "cmd_data", short)
    code, _, err = cli(capsys, "data", "--from-pictures", tmp_path, "--dataset", tmp_path / "d")
    assert (code, err) == (2, "fashionae: error: out of memory; use a smaller --image-size, or a machine with more "
                              "memory\n")


def test_a_file_this_user_may_not_read_is_one_line_wherever_it_is_met(capsys, monkeypatch, tmp_path):
    """A folder or file without access (as root, chmod denies nothing: the error is raised here as the
    system raises it) is the environment's limit, not a bug: one line naming it, exit 2."""
    from fashionae import cli as cli_module
    def denied(a):
        raise PermissionError(13, "Permission denied", str(tmp_path / "study.json"))
    monkeypatch.setattr(cli_module, "cmd_report", denied)
    code, _, err = cli(capsys, "report", tmp_path)
    assert code == 2 and err == (f"fashionae: error: permission denied: {tmp_path / 'study.json'} (Permission denied); "
                                 "give this user access to it, or choose another folder\n")


@pytest.mark.parametrize("command, said", [
    ("train-ae", "fashionae: interrupted; finished epochs are kept, run the same command to resume\n"),
    ("explore", "fashionae: interrupted\n"),  # nothing of it is kept to resume
    ("study", "fashionae: interrupted; finished epochs are kept, run the same command to resume\n"),
    ("study --plan", "fashionae: interrupted\n"),  # it trains nothing
    ("train-clf --strategy scratch", "fashionae: interrupted; finished epochs are kept, run the same command to resume\n"),
])
def test_ctrl_c_says_what_is_kept(capsys, monkeypatch, tmp_path, command, said):
    import fashionae.cli as cli_module

    def interrupted(a):
        raise KeyboardInterrupt
    command, *options = command.split()
    monkeypatch.setattr(cli_module, f"cmd_{command.replace('-', '_')}", interrupted)
    path = {"explore": [tmp_path], "study": [tmp_path / "s.toml"]}.get(command, [])
    assert cli(capsys, command, *path, *options)[:3:2] == (130, said)


def test_ctrl_c_while_the_command_line_is_read_says_one_line(capsys, monkeypatch):
    """The first seconds of every command import torch (to build the options): a Ctrl-C then
    says one line, as later, not a traceback."""
    import fashionae.cli as cli_module

    def loading():
        raise KeyboardInterrupt
    monkeypatch.setattr(cli_module, "build_parser", loading)
    assert cli(capsys, "data")[:3:2] == (130, "fashionae: interrupted\n")


def test_a_sigterm_that_a_library_turns_into_its_own_error_is_still_a_stop(capsys, monkeypatch):
    """Ray's driver, once a SIGTERM has reached its workers, may fail with an error of its own
    (lost objects) rather than our Terminated: the command still says it was terminated."""
    import os
    import signal
    import fashionae.cli as cli_module
    from fashionae.errors import Terminated

    def stopped(a):
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # its handler runs before the next line
        except Terminated:
            raise RuntimeError("Attempting to recover 1 lost objects") from None
        return 0
    monkeypatch.setattr(cli_module, "cmd_train_ae", stopped)  # (the command torchrun splits)
    said = "fashionae: terminated; finished epochs are kept, run the same command to resume\n"
    assert cli(capsys, "train-ae")[:3:2] == (143, said)
    monkeypatch.setenv("RANK", "1")  # a RANK alone (left in a shell): no torchrun, the one process speaks
    assert cli(capsys, "train-ae")[:3:2] == (143, said)
    monkeypatch.setenv("WORLD_SIZE", "2")  # torchrun's other processes: a SIGTERM may have reached one alone
    code, _, err = cli(capsys, "train-ae")
    assert code == 143 and err.startswith("fashionae: process 1 of 2: terminated"), err  # (no torchrun started it)

    def interrupted(a):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli_module, "cmd_train_ae", interrupted)
    said = "fashionae: process 1 of 2: interrupted; finished epochs are kept, run the same command to resume\n"
    assert cli(capsys, "train-ae")[:3:2] == (130, said)  # no torchrun started it: no process 0 may be there
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "j")  # torchrun's: its Ctrl-C reaches every process, process 0 says it
    assert cli(capsys, "train-ae")[:3:2] == (130, "")
    monkeypatch.setattr(cli_module, "cmd_train_ae", stopped)  # its SIGTERM, each its own, named as torchrun's
    code, _, err = cli(capsys, "train-ae")
    assert code == 143 and err.startswith("fashionae: process 1 of this torchrun: terminated"), err


@pytest.fixture
def ctrl_c_raises():
    """Ctrl-C raising KeyboardInterrupt, as in a terminal, also where the suite runs in the
    background of a shell (which starts it with SIGINT ignored)."""
    import signal
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_a_stop_while_torch_loads_is_held_until_it_is_loaded_then_said(monkeypatch, ctrl_c_raises, capsys):
    """Ctrl-C or SIGTERM while numpy and torch load (the first second of every command): held back
    until they are whole, then raised, the command's one line (inside torch's import it was
    swallowed, or killed the process, or left numpy half-imported)."""
    import importlib
    import signal
    import threading
    import time
    from fashionae.errors import import_whole
    loaded = []

    real = importlib.import_module

    def loading(name, stop=signal.SIGINT):
        if name not in ("numpy", "torch"):
            return real(name)
        # a stop while the module loads (to this thread: before torch loads, a command has no other,
        # and the threads torch starts hold stops back as this one did as they were made)
        signal.pthread_kill(threading.main_thread().ident, stop)
        time.sleep(0.05)  # (a signal not held back is raised here, at the latest)
        loaded.append(name)
    monkeypatch.setattr(importlib, "import_module", loading)
    with pytest.raises(KeyboardInterrupt):
        import_whole("numpy", "torch")
    assert loaded == ["numpy", "torch"]  # both loaded whole, the stop raised after
    loaded.clear()
    monkeypatch.setattr(importlib, "import_module", lambda name: loading(name, signal.SIGTERM))
    assert cli(capsys, "data", "--data-dir", "/nowhere")[::2] == (143, "fashionae: terminated\n")
    assert loaded == ["numpy", "torch"]


def test_a_ctrl_c_as_the_programs_modules_load_is_one_line_said_by_process_0_alone(monkeypatch, capsys):
    """Before any handler is set (the program's modules loading): one line and 130, not a traceback;
    under torchrun, from process 0 alone, as any stop."""
    import sys
    import types
    import fashionae.__main__ as program

    class Loading(types.ModuleType):
        def __getattr__(self, name):
            raise KeyboardInterrupt

    def exit_now(code):
        raise SystemExit(code)
    import signal
    import threading
    import time
    monkeypatch.setitem(sys.modules, "fashionae.cli", Loading("fashionae.cli"))
    monkeypatch.setattr(os, "_exit", exit_now)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # (as a terminal starts it; not as
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a test before left them: Ray's, say)
    try:
        # a torchrun's Ctrl-C reaches its machine's processes: its first says it (of two machines of 2, process 2)
        torchrun = {"WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "j"}
        for env, said in (({}, "fashionae: interrupted\n"), ({**torchrun, "RANK": "1"}, ""),
                          ({**torchrun, "RANK": "0"}, "fashionae: interrupted\n"), ({**torchrun, "RANK": "3"}, ""),
                          ({**torchrun, "RANK": "2"}, "fashionae: process 2 of this torchrun: interrupted\n"),
                          ({"WORLD_SIZE": "2", "RANK": "1"}, "fashionae: process 1 of 2: interrupted\n")):
            with monkeypatch.context() as m:  # (the last: variables left over, no process 0 to say it)
                m.delenv("TORCHELASTIC_RUN_ID", raising=False)
                for k, v in env.items():
                    m.setenv(k, v)
                with pytest.raises(SystemExit) as e:
                    program.run()
            assert (e.value.code, capsys.readouterr().err) == (130, said)
        with monkeypatch.context() as m:  # fashionae.errors itself not loaded: which process it is cannot be
            m.setitem(sys.modules, "fashionae.errors", Loading("fashionae.errors"))  # asked, and it speaks
            with pytest.raises(SystemExit) as e:
                program._stopped_early(2, None)
        assert (e.value.code, capsys.readouterr().err) == (130, "fashionae: interrupted\n")

        class Terminated(types.ModuleType):  # a SIGTERM as they load: one line and 143 (it ended the process unsaid)
            def __getattr__(self, name):
                signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)
                time.sleep(0.05)
        monkeypatch.setitem(sys.modules, "fashionae.cli", Terminated("fashionae.cli"))
        with pytest.raises(SystemExit) as e:
            program.run()
        assert (e.value.code, capsys.readouterr().err) == (143, "fashionae: terminated\n")
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # (the stop above ended "the process")
        with monkeypatch.context() as m:  # under torchrun each process says its own SIGTERM, naming itself
            m.setenv("WORLD_SIZE", "2")
            m.setenv("RANK", "1")
            with pytest.raises(SystemExit) as e:
                program.run()
        assert (e.value.code, capsys.readouterr().err) == (143, "fashionae: process 1 of 2: terminated\n")
        # loaded: the handlers are as they were, for the command's own to take over from
        signal.signal(signal.SIGINT, signal.default_int_handler)  # (the stops above ended "the process")
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        ran = []
        monkeypatch.setitem(sys.modules, "fashionae.cli", types.SimpleNamespace(
            entry=lambda: ran.append((signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)))))
        program.run()
        assert ran == [(signal.default_int_handler, signal.SIG_DFL)]
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])


def test_a_second_ctrl_c_while_the_first_is_said_changes_nothing(monkeypatch, ctrl_c_raises):
    """Ctrl-C pressed twice: the second came as the first was said, and ended the process with a
    traceback. Now it is ignored until the command has returned, and Ctrl-C works again after."""
    import io
    import signal
    from fashionae.errors import run_command

    class Stderr(io.StringIO):
        def write(self, text):
            if not self.getvalue():
                os.kill(os.getpid(), signal.SIGINT)  # its handler would raise here
            return super().write(text)

    def command():
        raise KeyboardInterrupt
    monkeypatch.setattr(sys, "stderr", Stderr())
    assert run_command(command, debug=False, resumable=True) == 130
    assert sys.stderr.getvalue() == "fashionae: interrupted; finished epochs are kept, run the same command to resume\n"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C raises again


def test_a_sigterm_that_a_library_turns_into_a_keyboard_interrupt_is_still_a_terminate(capsys, monkeypatch):
    """Ray's wait raises its own KeyboardInterrupt for any signal that arrives while it waits: a
    SIGTERM is still said as one (143, terminated), not as a Ctrl-C."""
    import signal
    import fashionae.cli as cli_module
    from fashionae.errors import Terminated

    def stopped(a):
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # its handler runs before the next line
        except Terminated:
            raise KeyboardInterrupt from None
        return 0
    monkeypatch.setattr(cli_module, "cmd_data", stopped)
    assert cli(capsys, "data")[:3:2] == (143, "fashionae: terminated\n")


@pytest.mark.parametrize("sig, said", [("SIGTERM", (143, "fashionae: terminated\n")),
                                        ("SIGINT", (130, "fashionae: interrupted\n"))])
def test_a_stop_that_comes_while_a_finalizer_runs_still_stops_the_command(capsys, monkeypatch, sig, said, ctrl_c_raises):
    """Python ignores an exception raised in a finalizer (a weak reference's callback, here as
    matplotlib's caches drop a figure): a stop arriving there would print a traceback and let the
    command run to its end with status 0. It is delivered again, and stops the command."""
    import gc
    import signal
    import time
    import weakref
    import fashionae.cli as cli_module

    class Figure:
        pass

    def stopped(a):
        figure = Figure()
        ref = weakref.ref(figure, lambda _: os.kill(os.getpid(), getattr(signal, sig)))  # its handler raises here
        del figure
        gc.collect()
        for _ in range(100):  # the command goes on meanwhile: stopped within it, not at its end
            time.sleep(0.05)
        return 0 if ref is not None else 1
    monkeypatch.setattr(cli_module, "cmd_data", stopped)
    assert cli(capsys, "data")[:3:2] == said


def test_a_reader_that_goes_away_ends_the_command_quietly(capsys, monkeypatch, data_dir):
    """`fashionae data | head -1`: once head has read enough, our writes fail with EPIPE, in
    the command or when its buffered output is flushed; that is no error of the user's nor a
    bug, so nothing is printed about it."""
    import os
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    gone = os.fdopen(write_end, "w")  # buffered: the lines go out at the flush
    monkeypatch.setattr(sys, "stdout", gone)
    from fashionae.cli import main
    try:
        code = main(["data", "--data-dir", str(data_dir), "--no-verify"])
        gone.flush()  # what exit would flush: stdout now leads to /dev/null
    finally:
        gone.close()
    assert code == 1 and capsys.readouterr().err == ""


def test_streams_closed_full_or_of_another_encoding_end_in_no_internal_error(data_dir, tmp_path):
    """The whole program: stdout closed at the start (``>&-``) is /dev/null, not the next file
    opened, and the command's output there is said lost (status 1, as ``ls >&-``); stdout (its help
    too, asked for or given for want of a command) on a full disk is one line; stderr on a full disk (the notes, the progress) is
    dropped and the run goes on to the end; a locale that cannot encode a character (LC_ALL=C)
    gets it escaped, not an internal error once the work is done."""
    import os
    import stat
    if not os.path.exists("/dev/full") or not stat.S_ISCHR(os.stat("/dev/full").st_mode):
        pytest.skip("no /dev/full here (or a plain file in its place, which takes every write)")
    fashionae = [sys.executable, "-m", "fashionae"]
    data = ["data", "--data-dir", str(data_dir), "--no-verify"]
    closed = subprocess.run(["sh", "-c", " ".join(map(shlex.quote, fashionae + data)) + " >&-"],
                            stderr=subprocess.PIPE, text=True)
    assert (closed.returncode, closed.stderr) == (1, "fashionae: error: cannot write the output: the output is "
                                                     "closed; send it elsewhere (what the command wrote to its files "
                                                     "is kept)\n")
    with open("/dev/full", "w") as full:
        for args in (data, ["--help"], ["--version"], []):  # (argparse drops a failed write of what it prints)
            proc = subprocess.run(fashionae + args, stdout=full, stderr=subprocess.PIPE, text=True)
            assert (proc.returncode, proc.stderr) == (1, "fashionae: error: cannot write the output: No space left "
                                                         "on device; send it where there is room (what the command "
                                                         "wrote to its files is kept)\n")
        run = tmp_path / os.fsdecode(b"caf\xe9")  # a name in another encoding than the file system's
        proc = subprocess.run(fashionae + ["train-ae", "--data-dir", str(data_dir), "--no-verify", "--epochs", "2",
                                           "--train-subset", "300", "--eval-subset", "200", "--out", str(run)],
                              stdout=subprocess.PIPE, stderr=full, env={**os.environ, "LC_ALL": "C.UTF-8"})
        assert proc.returncode == 0 and (run / "summary.json").exists()
        assert os.fsencode(str(run)) + b": val MSE" in proc.stdout  # its bytes as they are, to copy
    ascii_only = {**os.environ, "LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0",
                  "PYTHONIOENCODING": "ascii"}
    proc = subprocess.run(fashionae + ["study", "paper", "--profile", "smoke", "--plan", "--data-dir", str(data_dir),
                                       "--no-verify", "--out", str(tmp_path / "plan")],
                          capture_output=True, text=True, env=ascii_only)
    assert proc.returncode == 0 and "internal error" not in proc.stderr and "\\u" in proc.stdout + proc.stderr
    gone = tmp_path / "gone"  # run from a folder deleted since: torch would not even load
    proc = subprocess.run(["sh", "-c", f"mkdir {gone} && cd {gone} && rmdir {gone} && exec "
                           + " ".join(map(shlex.quote, fashionae + data))], capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (2, "fashionae: error: the folder this command runs in was deleted or "
                                                 "moved away; cd to a folder and run it again\n")


def test_a_standard_streams_failed_writes_are_dropped_or_known():
    """stderr's (notes, progress) dropped, write, writelines and flush alike; stdout's raised and
    kept in ``failed``, which says it was the output that failed."""
    from fashionae.errors import _Stream

    class Full:
        def write(self, text):
            raise OSError(28, "No space left on device")

        def flush(self):
            raise OSError(28, "No space left on device")

        def isatty(self):
            return False
    err, out = _Stream(Full(), drops=True), _Stream(Full(), drops=False)
    assert err.write("note\n") == 5 and err.flush() is None and err.writelines(["a\n", "b\n"]) is None
    assert not err.isatty() and err.failed is None
    for write in (lambda: out.write("x"), out.flush, lambda: out.writelines(["y"])):
        out.failed = None
        with pytest.raises(OSError) as e:
            write()
        assert out.failed is e.value


def test_a_value_that_starts_with_a_dash_is_told_how_to_give_it(capsys):
    for option in ("--out", "-o"):
        command = ("train-ae", "--out") if option == "--out" else ("reconstruct", "run", "a.png", "-o")
        code, _, err = cli(capsys, *command, "-dash")
        assert code == 2 and err == (f"fashionae: error: argument {'--out' if option == '--out' else '-o/--output'}: "
                                     "expected one argument, or its value starts with '-': write it as "
                                     f"{'--out' if option == '--out' else '--output'}=-value, or a path as ./-name "
                                     f"(see `fashionae {command[0]} --help`)\n")


def test_a_dumb_terminal_gets_plain_lines(monkeypatch):
    """TERM=dumb (an editor's shell) shows escape codes as they are: no line redrawn there."""
    from fashionae.progress import redraws

    class Terminal:
        def isatty(self):
            return True
    monkeypatch.setenv("TERM", "xterm")
    assert redraws(Terminal())
    monkeypatch.setenv("TERM", "dumb")
    assert not redraws(Terminal())


def test_a_broken_pipe_that_is_not_our_output_is_an_internal_error(capsys, monkeypatch):
    import fashionae.cli as cli_module

    def lost_connection(a):
        raise BrokenPipeError(32, "Broken pipe")
    monkeypatch.setattr(cli_module, "cmd_data", lost_connection)
    code, _, err = cli(capsys, "data")
    assert code == 1 and err.startswith("fashionae: internal error: BrokenPipeError: ")


def test_a_classifier_validating_on_images_its_encoder_trained_on_says_so(capsys, data_dir, tmp_path):
    """An encoder trained with --val test has seen the held-out images a --val holdout
    classifier validates on: a note says so; with the same --val, or from scratch, none."""
    ae = tmp_path / "ae"
    assert cli(capsys, "train-ae", "--latent", 16, *SMALL, "--val", "test", "--data-dir", data_dir, "--out", ae)[0] == 0
    note = "this classifier validates on those, so its validation figures may flatter it"
    for strategy, val, noted in (("frozen", "holdout", True), ("finetune", "test", False),
                                 ("scratch", "holdout", False)):
        code, _, err = cli(capsys, "train-clf", "--strategy", strategy, *(["--encoder", ae] if strategy != "scratch"
                           else []), *SMALL, "--val", val, "--data-dir", data_dir, "--out", tmp_path / strategy)
        assert code == 0 and (note in err) == noted, (strategy, err)
    # the encoder's own folder as --out (a slip of copy and paste): refused as such, never "delete it"
    before = sorted((p.name, p.stat().st_mtime_ns) for p in ae.iterdir())
    code, _, err = cli(capsys, "train-clf", "--strategy", "frozen", "--encoder", ae, *SMALL, "--data-dir", data_dir,
                       "--out", f"{ae}/")
    assert (code, err) == (2, f"fashionae: error: --out {ae}/ is the --encoder run; give the classifier a folder of "
                              "its own\n")
    assert sorted((p.name, p.stat().st_mtime_ns) for p in ae.iterdir()) == before
    code, _, err = cli(capsys, "train-clf", "--strategy", "frozen", "--encoder", tmp_path / "nosuch", *SMALL,
                       "--data-dir", data_dir, "--out", tmp_path / "nosuch")  # no encoder there: that is what is wrong
    assert code == 2 and "--encoder" in err and "does not exist" in err


def test_a_study_folder_given_to_a_run_is_said_to_be_one(capsys, data_dir, tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    (study / "study.json").write_text("{}")
    for command in (["train-ae"], ["train-clf", "--strategy", "scratch"]):
        code, _, err = cli(capsys, *command, *SMALL, "--data-dir", data_dir, "--out", study)
        assert (code, err) == (2, f"fashionae: error: --out {study} is a study folder, not a run's; choose another "
                                  "--out\n")
    assert sorted(p.name for p in study.iterdir()) == ["study.json"]


def test_a_ray_study_without_ray_is_refused_under_plan_too(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # not installed
    code, _, err = cli(capsys, "study", PAPER, "--executor", "ray", "--plan")
    assert code == 2 and err.startswith("fashionae: error: --executor ray needs ray") and err.count("\n") == 1
    assert "pip install 'fashionae[ray]'" in err


def test_the_modules_the_docs_name_are_reached_from_the_package_alone():
    # the README's `fashionae.images.prepare_image(path)`, datasets.md's `fashionae.datasets.write_npz_dataset`,
    # in a fresh interpreter where nothing else imported them
    code = ("import sys, fashionae; assert 'torch' not in sys.modules; "
            "print(fashionae.images.prepare_image.__name__, fashionae.datasets.write_npz_dataset.__name__); "
            "fashionae.nothing")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout == "prepare_image write_npz_dataset\n"
    assert proc.stderr.rstrip().endswith("AttributeError: module 'fashionae' has no attribute 'nothing'")


def test_output_and_notes_keep_their_order_in_one_file():
    """``fashionae ... > log 2>&1``: stdout is flushed line by line, so a note on stderr lands after
    the lines printed before it, not before them all (nor inside one of them)."""
    program = ("import sys; from fashionae import cli; "
               "cli.main = lambda: print('a line of output') or print('a note', file=sys.stderr) or 0; cli.entry()")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as most users run it
    proc = subprocess.run([sys.executable, "-c", program], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=env)
    assert proc.returncode == 0 and proc.stdout == "a line of output\na note\n"


def test_the_command_line_is_recorded_as_a_shell_takes_it_again(monkeypatch):
    """What timing.json and the report's provenance record: paths with spaces or quotes kept whole."""
    import shlex
    from fashionae import cli
    seen = []
    monkeypatch.setattr(cli, "cmd_study", lambda a: seen.append(a.command_line) or 0)
    argv = ["study", "my studies/p.toml", "--out", "it's here"]
    assert cli.main(argv) == 0
    assert shlex.split(seen[0]) == ["fashionae", *argv]


def test_default_run_folders_name_the_seed_given(capsys, data_dir, tmp_path, monkeypatch):
    """The docs' runs/ae-<arch><latent>-seed<seed> and runs/clf-<strategy>-seed<seed>: another
    --seed is another folder, not a refusal of (or a resume in) seed 0's."""
    monkeypatch.chdir(tmp_path)
    assert cli(capsys, "train-ae", "--latent", 16, "--seed", 1, *SMALL, "--data-dir", data_dir)[0] == 0
    assert cli(capsys, "train-clf", "--strategy", "scratch", "--seed", 2, *SMALL, "--data-dir", data_dir)[0] == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["ae-linear16-seed1", "clf-scratch-seed2"]
    assert json.loads((tmp_path / "runs" / "clf-scratch-seed2" / "config.json").read_text())["train"]["seed"] == 2


def test_train_clf_without_a_strategy_is_refused_by_the_parser(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "train-clf", "--epochs", 1)
    assert (code, err) == (2, "fashionae: error: the following arguments are required: "
                              "--strategy (see `fashionae train-clf --help`)\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a CUDA device is here")
def test_eval_measures_on_the_device_asked_for(capsys, own_run):
    data, run = own_run
    code, _, err = cli(capsys, "eval", run, "--device", "cuda", "--no-verify")
    assert code == 2 and err.startswith("fashionae: error: device cuda was asked for (--device cuda")
    code, out, _ = cli(capsys, "eval", run, "--device", "cpu", "--no-verify")
    assert code == 0 and "test: MSE" in out
    code, _, err = cli(capsys, "eval", run, "--device", "gpu")
    assert code == 2 and "argument --device: invalid choice: 'gpu' (choose from 'auto', 'cpu', 'cuda')" in err


def test_debug_before_or_after_the_command_shows_the_traceback(capsys, tmp_path):
    for argv in (["--debug", "data", "--data-dir", tmp_path], ["data", "--data-dir", tmp_path, "--debug"]):
        code, _, err = cli(capsys, *argv)
        assert code == 2 and "Traceback" in err, argv
        assert err.rstrip().splitlines()[-1].startswith("fashionae: error: "), argv
    code, _, err = cli(capsys, "data", "--data-dir", tmp_path)
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1


def dark_on_white(path, size=(60, 40)):
    """A dark box on a white background, as a product photo is: auto negates it."""
    from PIL import Image, ImageDraw
    im = Image.new("L", size, 255)
    ImageDraw.Draw(im).rectangle((size[0] // 4, size[1] // 5, size[0] * 3 // 4, size[1] * 4 // 5), fill=30)
    im.save(path)
    return path


@pytest.fixture(scope="module")
def own_clf(own_run, tmp_path_factory):
    """A classifier from scratch on own_run's dataset (16 x 24 images, 5 classes)."""
    from fashionae.cli import main
    out = tmp_path_factory.mktemp("own_clf") / "clf"
    assert main(["train-clf", "--strategy", "scratch", "--dataset", str(own_run[0]), "--epochs", "1",
                 "--batch-size", "40", "--out", str(out)]) == 0
    return out


def test_reconstruct_and_classify_take_invert_and_reconstruct_writes_to_reconstructions(capsys, own_run, own_clf,
                                                                                        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    picture = dark_on_white(tmp_path / "box.png")
    lost = "(most of the object is darker than its background once kept as it is, so it is lost; try --invert yes)"
    code, out, _ = cli(capsys, "reconstruct", own_run[1], picture)  # auto: negated, as it should be
    assert code == 0 and out.endswith(f"-> {os.path.join('reconstructions', 'box_reconstruction.png')}\n")
    assert (tmp_path / "reconstructions" / "box_reconstruction.png").is_file()
    code, out, _ = cli(capsys, "reconstruct", own_run[1], picture, "-o", "kept", "--invert", "no")
    assert code == 0 and out.endswith(f"{lost}\n") and (tmp_path / "kept" / "box_reconstruction.png").is_file()
    code, out, _ = cli(capsys, "classify", own_clf, picture)
    assert code == 0 and "try --invert" not in out
    code, out, _ = cli(capsys, "classify", own_clf, picture, "--invert", "no")
    assert code == 0 and out.endswith(f"{lost}\n")


def test_debug_shows_the_traceback_of_a_failure_while_the_command_line_is_read(capsys, monkeypatch):
    """A broken install fails as the options are built (they import torch): --debug shows where."""
    import fashionae.cli as cli_module

    def broken():
        raise ImportError("libtorch_cpu.so: cannot open shared object file")
    monkeypatch.setattr(cli_module, "build_parser", broken)
    code, _, err = cli(capsys, "data", "--debug")
    assert code == 1 and "Traceback" in err and "ImportError: libtorch_cpu.so" in err
    code, _, err = cli(capsys, "data")
    assert code == 1 and "Traceback" not in err and err.startswith("fashionae: internal error: ImportError: ")


def test_a_study_goes_to_runs_study_profile_by_default(capsys, data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "paper-smoke").write_text("not a study")
    code, _, err = cli(capsys, "study", PAPER, "--profile", "smoke", "--plan", "--data-dir", data_dir, "--no-verify")
    assert (code, err) == (2, "fashionae: error: --out runs/paper-smoke is not a folder; choose another --out\n")
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["paper-smoke"]


def test_a_command_puts_back_the_handlers_and_hook_it_found(monkeypatch):
    """run_command sets SIGTERM's handler and the unraisable hook for the command alone: once it
    has returned (or failed), the caller's are back (a program that embeds fashionae, the suite)."""
    import signal
    from fashionae.errors import UserError, run_command

    def on_term(signum, frame):
        pass

    def hook(u):
        pass
    before = signal.signal(signal.SIGTERM, on_term), signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(sys, "unraisablehook", hook)
    try:
        for command in (lambda: 0, lambda: (_ for _ in ()).throw(UserError("bad")),
                        lambda: (_ for _ in ()).throw(KeyboardInterrupt)):
            run_command(command, debug=False, resumable=False)
            assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == (on_term, before[1])
            assert sys.unraisablehook is hook
    finally:
        signal.signal(signal.SIGTERM, before[0])


def test_a_terminated_raised_without_our_handler_is_said_as_a_sigterm(capsys):
    """Ray's own SIGTERM handler takes the signal as Ray starts (ray_executor raises Terminated):
    none of ours noted it, and it is still a SIGTERM, 143."""
    from fashionae.errors import Terminated, run_command

    def command():
        raise Terminated
    assert run_command(command, debug=False, resumable=False) == 143
    assert capsys.readouterr().err == "fashionae: terminated\n"


def test_a_late_stop_is_said_of_this_command_not_of_one_before_in_the_process(capsys):
    """The status a stop after a command's return gets: this command's own stop said, else the
    late one now; a stop said by an earlier command in the same process is not this one's."""
    from fashionae.errors import Terminated, late_stop, run_command

    def interrupted():
        raise KeyboardInterrupt
    assert run_command(interrupted, debug=False, resumable=False) == 130
    assert late_stop(KeyboardInterrupt()) == 130  # said already: not said twice
    assert capsys.readouterr().err == "fashionae: interrupted\n"
    assert run_command(lambda: 0, debug=False, resumable=False) == 0
    assert late_stop(Terminated()) == 143 and capsys.readouterr().err == "fashionae: terminated\n"


def test_a_closed_standard_stream_is_dropped_or_known_as_a_full_one_is():
    """A stream closed under us (ValueError: I/O operation on closed file): stderr's notes dropped,
    stdout's failure kept in ``failed``."""
    import io
    from fashionae.errors import _Stream
    gone = io.StringIO()
    gone.close()
    err, out = _Stream(gone, drops=True), _Stream(gone, drops=False)
    assert err.write("note\n") == 5 and err.flush() is None and err.failed is None
    with pytest.raises(ValueError) as e:
        out.write("x")
    assert out.failed is e.value


def test_stdout_closed_at_the_start_fails_writes_alone_not_the_flush():
    """``>&-``: a command that writes no output is not said to have lost it (the flush after the
    command, and exit's, find nothing to write)."""
    import errno
    from fashionae.errors import _Stream

    class Null:
        def write(self, text):
            return len(text)

        def flush(self):
            pass
    out = _Stream(Null(), drops=False, closed=True)
    assert out.flush() is None and out.failed is None
    with pytest.raises(OSError) as e:
        out.write("line\n")
    assert e.value.errno == errno.EBADF and out.failed is e.value


def test_the_process_ends_with_its_status_once_the_exit_handlers_have_run(tmp_path):
    """exit_process leaves without Python's teardown, but after what Python runs first at exit: the
    atexit handlers (Ray's shutdown, a temporary cache's removal) and the streams' flush."""
    code = ("import atexit, sys\nfrom fashionae.errors import exit_process\n"
            "atexit.register(lambda: print('atexit ran'))\nsys.stdout.write('buffered')\nexit_process(3)\n")
    proc = run_python(code)
    assert (proc.returncode, proc.stdout) == (3, "bufferedatexit ran\n")


def test_a_sigterm_in_a_finalizer_stops_a_command_started_with_ctrl_c_ignored(capsys, monkeypatch):
    """Started in the background (``cmd &``: SIGINT ignored), a SIGTERM that came while a
    finalizer ran is delivered again as a SIGTERM: as a SIGINT, ignored, it was lost."""
    import gc
    import signal
    import time
    import weakref
    import fashionae.cli as cli_module

    class Figure:
        pass

    def stopped(a):
        figure = Figure()
        ref = weakref.ref(figure, lambda _: os.kill(os.getpid(), signal.SIGTERM))
        del figure
        gc.collect()
        for _ in range(40):
            time.sleep(0.05)
        return 0 if ref is not None else 1
    monkeypatch.setattr(cli_module, "cmd_data", stopped)
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert cli(capsys, "data")[:3:2] == (143, "fashionae: terminated\n")
    finally:
        signal.signal(signal.SIGINT, before)


def test_the_cpu_allocators_error_is_said_as_out_of_memory():
    """torch's CPU allocator raises a RuntimeError ("DefaultCPUAllocator: can't allocate memory")."""
    e = RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried "
                     "to allocate 137438953472 bytes. Error code 12 (Cannot allocate memory)")
    assert out_of_memory(e, None) == ("out of memory (tried to allocate 137438953472 bytes. Error code 12 (Cannot "
                                      "allocate memory)); close what else takes memory, or use a machine with more")
    assert out_of_memory(RuntimeError("shape mismatch"), None) is None


def test_which_process_speaks(monkeypatch):
    """RANK counts only where WORLD_SIZE says several processes run; a value that is no number speaks."""
    from fashionae.errors import is_main_process
    for world, rank, speaks in (("1", "3", True), ("2", "0", True), ("2", "1", False), ("x", "1", True),
                                ("2", "y", True)):
        monkeypatch.setenv("WORLD_SIZE", world)
        monkeypatch.setenv("RANK", rank)
        assert is_main_process() is speaks, (world, rank)


def test_an_optional_dependency_that_fails_to_import_is_one_line(monkeypatch):
    """Not only missing (ModuleNotFoundError): one whose own import fails (a shared library gone)
    is the same one line, not an internal error."""
    import importlib
    from fashionae.errors import require

    def broken(name):
        raise ImportError("libonnxruntime.so: cannot open shared object file")
    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(UserError, match=r"^export needs onnxruntime, which is not installed: pip install "
                                        r"'fashionae\[onnx\]'$"):
        require("onnxruntime.capi", "onnx", "export")


def test_a_stop_once_the_command_is_done_leaves_its_status(tmp_path):
    """A SIGTERM while the process waits for its threads at exit: the command is done and its
    files written, so the status stays the command's (it was 143, unsaid)."""
    code = ("import os, signal, threading, time\nfrom fashionae.errors import exit_process\n"
            "def late():\n    for _ in range(500):  # (until exit_process is at the exit, not a fixed 0.2 s)\n"
            "        if signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:\n            break\n"
            "        time.sleep(0.01)\n    os.kill(os.getpid(), signal.SIGTERM)\n    time.sleep(0.2)\n"
            "threading.Thread(target=late).start()\nexit_process(0)\n")
    proc = run_python(code)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_data_refuses_options_of_the_other_kind_of_dataset(capsys, tmp_path):
    """The options that make a dataset of pictures are refused without --from-pictures, and those
    that read a dataset with it: named, not ignored."""
    for given in (["--invert", "yes"], ["--fill", "0.5"], ["--image-size", "32"]):
        code, _, err = cli(capsys, "data", "--dataset", tmp_path / "nowhere", *given)
        assert (code, err) == (2, f"fashionae: error: {given[0]} goes with --from-pictures (how pictures are made a "
                                  f"dataset): add --from-pictures FOLDER, or leave {given[0]} out\n")
    for given in (["--data-dir", tmp_path], ["--no-verify"]):
        code, _, err = cli(capsys, "data", "--from-pictures", tmp_path, "--dataset", tmp_path / "ds", *given)
        assert (code, err) == (2, f"fashionae: error: {given[0]} reads a dataset, and --from-pictures writes one: "
                                  f"leave {given[0]} out\n")
    assert not (tmp_path / "ds").exists()


def test_an_image_size_is_n_or_h_by_w_and_anything_else_is_said_so(capsys):
    from fashionae.options import image_size
    assert image_size("20") == (20, 20) and image_size("32x24") == image_size("32X24") == (32, 24)
    code, _, err = cli(capsys, "data", "--image-size", "big")
    assert (code, err) == (2, "fashionae: error: argument --image-size: must be N or HxW (28, 32x24), got 'big' "
                              "(see `fashionae data --help`)\n")


def test_the_resuming_command_runs_from_its_folder_with_the_data_this_process_found(monkeypatch, tmp_path):
    """A run's recorded command, as a shell takes it again from anywhere: its folder, the data
    folder of the environment unless --data-dir names one, the threads it trains on (on others a
    resumed run is not the same arithmetic), torchrun on one machine (none for several: each
    machine has its own line)."""
    from types import SimpleNamespace
    from fashionae.cli import resuming_command
    from fashionae.data import DATA_ENV
    for name in ("WORLD_SIZE", "LOCAL_WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "my runs").mkdir()
    monkeypatch.chdir(tmp_path / "my runs")
    here = f"{shlex.quote(os.getcwd())} && OMP_NUM_THREADS={torch.get_num_threads()}"
    line = "fashionae train-ae --epochs 2"
    monkeypatch.setenv(DATA_ENV, "/data/fashion mnist")
    where = shlex.quote(os.getcwd())
    threads = f"OMP_NUM_THREADS={torch.get_num_threads()}"
    assert resuming_command(SimpleNamespace(data_dir=None, command_line=line)) == (
        f"cd {where} && {DATA_ENV}='/data/fashion mnist' {threads} {line}")
    assert resuming_command(SimpleNamespace(data_dir="/mine", command_line=line)) == f"cd {here} {line}"
    monkeypatch.delenv(DATA_ENV)
    assert resuming_command(SimpleNamespace(data_dir=None, command_line=line)) == f"cd {here} {line}"
    with monkeypatch.context() as m:  # the threads it trains on, whatever set them
        m.setattr(torch, "get_num_threads", lambda: 1)
        assert resuming_command(SimpleNamespace(data_dir=None, command_line=line)) == (
            f"cd {where} && OMP_NUM_THREADS=1 {line}")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert resuming_command(SimpleNamespace(data_dir=None, command_line=line)) == (
        f"cd {here} torchrun --nproc-per-node 2 -m {line}")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")  # two machines
    assert resuming_command(SimpleNamespace(data_dir=None, command_line=line)) is None


def test_the_parser_requires_refuses_and_defaults_as_the_help_says(capsys, tmp_path, monkeypatch):
    from fashionae.options import build_parser
    monkeypatch.chdir(tmp_path)
    parser = build_parser()
    # --device auto by default (CUDA where there is one), for eval and bench as for training
    assert parser.parse_args(["eval", "runs/ae"]).device == parser.parse_args(["bench"]).device == "auto"
    code, _, err = cli(capsys, "baselines")
    assert (code, err) == (2, "fashionae: error: the following arguments are required: --out "
                              "(see `fashionae baselines --help`)\n")
    # a study's dataset is its study file's, a run's its own: study and eval take no --dataset
    for command in (["study", "s.toml"], ["eval", "runs/ae"]):
        code, _, err = cli(capsys, *command, "--dataset", "mine")
        assert (code, err) == (2, "fashionae: error: unrecognized arguments: --dataset mine "
                                  f"(see `fashionae {command[0]} --help`)\n")
    code, _, err = cli(capsys, "export", "runs/ae", "-o", "ae.onnx", "--part", "wing")
    assert code == 2 and "argument --part: invalid choice: 'wing' (choose from " in err
    assert list(tmp_path.iterdir()) == []


def test_the_program_ends_with_the_status_of_a_late_stop_or_of_a_folder_deleted_under_it(capsys, monkeypatch, tmp_path):
    """entry: a stop that comes once the command returned is one line and 130, not a traceback; a
    command run in a folder deleted meanwhile is one line and 2."""
    from fashionae import cli as cli_module
    from fashionae.errors import run_command
    assert run_command(lambda: 0, debug=False, resumable=False) == 0  # (no stop said before, in this process)

    def late(argv=None):
        raise KeyboardInterrupt

    def exit_process(code):
        raise SystemExit(code)
    monkeypatch.setattr(cli_module, "ready_streams", lambda: None)
    monkeypatch.setattr(cli_module, "main", late)
    monkeypatch.setattr(cli_module, "exit_process", exit_process)
    with pytest.raises((SystemExit, KeyboardInterrupt)) as e:  # (a KeyboardInterrupt let out would stop pytest)
        cli_module.entry()
    assert e.type is SystemExit and (e.value.code, capsys.readouterr().err) == (130, "fashionae: interrupted\n")
    gone = tmp_path / "gone"
    gone.mkdir()
    proc = run_python(f"import os, sys\nfrom fashionae.cli import entry\nos.chdir({str(gone)!r})\nos.rmdir({str(gone)!r})\n"
                      "sys.argv = ['fashionae', 'data']\nentry()\n")
    assert (proc.returncode, proc.stderr) == (2, "fashionae: error: the folder this command runs in was deleted or "
                                                 "moved away; cd to a folder and run it again\n")


def test_eval_prints_each_figure_and_says_a_diverged_model(capsys, monkeypatch, tmp_path):
    """A classifier's loss and accuracy, an autoencoder's MSE, the image count with separators, and
    the note of a model whose outputs are not numbers: a loss or (the paper head's finite loss)
    an accuracy that is NaN."""
    from fashionae import runs
    nan = float("nan")
    figures = {"clf": [("validation", {"loss": 0.25, "acc": 0.875}, 12000), ("test", {"loss": 0.5, "acc": nan}, 10000)],
               "ae": [("validation", {"loss": nan}, 300), ("test", {"loss": 0.0125}, 1000)]}
    monkeypatch.setattr(runs, "evaluate_run", lambda run_dir, *_: figures[Path(run_dir).name])
    assert cli(capsys, "eval", tmp_path / "clf")[:2] == (0, (
        "validation: loss 0.25000  accuracy 0.8750  (12,000 images)\n"
        "test: loss 0.50000  accuracy nan  (10,000 images)  (the model diverged: its outputs are not numbers)\n"))
    assert cli(capsys, "eval", tmp_path / "ae")[:2] == (0, (
        "validation: MSE nan  (300 images)  (the model diverged: its outputs are not numbers)\n"
        "test: MSE 0.01250  (1,000 images)\n"))


def test_train_ae_and_train_clf_print_each_figure_of_the_summary_and_pass_their_options(capsys, monkeypatch,
                                                                                        tmp_path):
    """A run's last line gives its summary's figures, each its own (val, best and its epoch, test;
    for a classifier its accuracies and most confused pair), and the run is made with the
    dataset, data and --extend given: a summary of figures that all differ tells them apart."""
    from fashionae import runs
    monkeypatch.chdir(tmp_path)
    seen = []
    summaries = {"autoencoder": {"val_loss": 0.01234, "best_val_loss": 0.01111, "best_epoch": 3, "epochs": 5,
                                 "test_loss": 0.02222, "seconds_total": 12.4, "images_per_second": 5432.1},
                 "classifier": {"val_acc": 0.91234, "best_val_acc": 0.93456, "test_acc": 0.87654, "epochs": 5,
                                "best_epoch": 4, "most_confused": {"true": "Shirt", "predicted": "Coat", "count": 7},
                                "seconds_total": 0.42}}
    monkeypatch.setattr(runs, "execute", lambda cfg, out, **kw: seen.append((cfg, str(out), kw))
                        or summaries[cfg.model.task])
    code, out, _ = cli(capsys, "train-ae", "--latent", 16, "--dataset", "mine", "--data-dir", "here", "--no-verify",
                       "--extend", "--out", "ae")
    assert (code, out) == (0, "ae: val MSE 0.01234 (best 0.01111 at epoch 3), test MSE 0.02222, 12 s, 5432 "
                              "training images/s\n")
    cfg, folder, kw = seen.pop()
    assert (cfg.dataset, folder, kw["data_dir"], kw["verify"], kw["extend"]) == ("mine", "ae", "here", False, True)
    code, out, _ = cli(capsys, "train-clf", "--strategy", "scratch", "--out", "clf")
    assert (code, out) == (0, "clf: val acc 0.9123 (best 0.9346), test acc 0.8765; most confused: Shirt taken for "
                              "Coat (7×); 0.4 s\n")
    cfg, folder, kw = seen.pop()
    assert (cfg.strategy, cfg.dataset, folder, kw["data_dir"], kw["verify"], kw["extend"]) == (
        "scratch", "fashion-mnist", "clf", None, True, False)


def test_a_torchrun_process_other_than_0_prints_no_summary(capsys, monkeypatch, tmp_path):
    """Every process of a torchrun returns from the run; process 0 alone prints its line."""
    from fashionae import errors, runs
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runs, "execute", lambda cfg, out, **kw: {"val_acc": 0.5, "best_val_acc": 0.5,
                                                                 "test_acc": 0.5, "seconds_total": 1.0,
                                                                 "most_confused": {"count": 0}})
    monkeypatch.setattr(errors, "is_main_process", lambda: False)
    for command in (["train-ae", "--out", "ae"], ["train-clf", "--strategy", "scratch", "--out", "clf"]):
        assert cli(capsys, *command)[:2] == (0, "")


def test_study_passes_tensorboard_extend_and_its_folder_on_and_checks_the_extra_first(capsys, monkeypatch, tmp_path):
    """study --tensorboard logs every run (its extra checked before anything is written);
    --extend reaches the plan and the study; without --out the study goes to runs/<study>-<profile>."""
    from fashionae import cli as cli_module, pipeline, preview, tracking
    from fashionae.plan import make_plan
    monkeypatch.chdir(tmp_path)
    seen = []
    monkeypatch.setattr(tracking, "need_tensorboard", lambda: seen.append("needed"))
    monkeypatch.setattr(pipeline, "run_study", lambda study, out, data_dir, verify, **kw: seen.append(
        (study, str(out), data_dir, verify, kw["extend"], kw["command"])) or {})
    monkeypatch.setattr(cli_module, "print_results", lambda results: None)
    for given in ([], ["--tensorboard"], ["--extend", "--data-dir", "d", "--no-verify"]):
        code, out, _ = cli(capsys, "study", PAPER, "--profile", "smoke", *given)
        assert code == 0 and out == f"report: {Path('runs', 'paper-smoke', 'report.html')} (and report.md)\n"
        study, folder, data_dir, verify, extend, command = seen.pop()
        assert seen == (["needed"] if "--tensorboard" in given else [])
        seen.clear()
        assert {run.config.train.tensorboard for run in make_plan(study)} == {"--tensorboard" in given}
        assert (folder, data_dir, verify, extend) == (str(Path("runs", "paper-smoke")), "d" if given[1:] else None,
                                                      not given[1:], "--extend" in given)
        assert shlex.split(command) == ["fashionae", "study", str(PAPER), "--profile", "smoke", *given]
    planned = []
    monkeypatch.setattr(preview, "show_plan", lambda *args: planned.append(args))
    for given in ([], ["--extend", "--json"]):
        code, _, err = cli(capsys, "study", PAPER, "--profile", "smoke", "--plan", *given, "--out", "s")
        assert (code, err) == (0, "")  # (the note of Ray's overlapping runs is Ray's alone)
        assert planned.pop()[1:] == ("s", None, True, "--json" in given, "--extend" in given)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "s").exists()


def test_report_prints_each_table_under_its_caption_then_the_page_written(capsys, monkeypatch, tmp_path):
    """report prints the study's tables (each under its caption), writes the page asked for
    (self-contained or linked) and names it; a read-only folder gets the tables all the same."""
    from fashionae import cli as cli_module, report, results as results_module
    from fashionae.pages import text_table
    study = tmp_path / "study"
    study.mkdir()
    (study / "study.json").write_text("{}")
    written = []
    monkeypatch.setattr(results_module, "collect_results", lambda folder: {"of": str(folder)})
    monkeypatch.setattr(report, "write_report", lambda folder, results, self_contained: written.append(
        (str(folder), results, self_contained)) or study / "report.html")
    monkeypatch.setattr(report, "terminal_tables", lambda results: [
        ("Table A: the first", ["model", "MSE"], [["ae", "0.0100"]]), ("Table B", ["x"], [["1"]])])
    tables = (f"\nTable A: the first\n{text_table(['model', 'MSE'], [['ae', '0.0100']])}\n"
              f"\nTable B\n{text_table(['x'], [['1']])}\n")
    code, out, _ = cli(capsys, "report", study)
    assert (code, out) == (0, tables + f"report: {study / 'report.html'} (and report.md; the figures in figures/)\n")
    assert written.pop() == (str(study), {"of": str(study)}, False)
    code, out, _ = cli(capsys, "report", study, "--self-contained")
    assert (code, out) == (0, tables + f"report: {study / 'report.html'} (the figures embedded: one file to send)\n")
    assert written.pop() == (str(study), {"of": str(study)}, True)
    monkeypatch.setattr(cli_module.os, "access", lambda path, mode: False)  # (root may write anywhere)
    code, out, err = cli(capsys, "report", study)
    assert (code, out) == (2, tables) and err.startswith(f"fashionae: error: cannot write in {study}, so its report")
    assert written == []


def test_reconstruct_refuses_a_classifier_and_says_how_its_runs_dataset_prepared_the_pictures(capsys, own_clf,
                                                                                              tmp_path, monkeypatch):
    """reconstruct takes an autoencoder run alone (said first); on a dataset whose pictures were prepared
    otherwise than Fashion-MNIST's, it says so (the options not given), once they are read."""
    from fashionae.datasets import write_npz_dataset
    from helpers import synthetic_images
    monkeypatch.chdir(tmp_path)
    picture = dark_on_white(tmp_path / "box.png")
    code, _, err = cli(capsys, "reconstruct", own_clf, tmp_path / "missing.png")  # said before any picture is read
    assert (code, err) == (2, f"fashionae: error: {own_clf} is a classifier run; reconstruct needs an autoencoder "
                              "run\n")
    assert not (tmp_path / "reconstructions").exists()
    x, y = synthetic_images(240, 0, size=16, classes=3)
    xt, yt = synthetic_images(60, 1, size=16, classes=3)
    write_npz_dataset(tmp_path / "ds", x, y, xt, yt, pictures={"invert": "yes", "fill": 0.75})
    assert cli(capsys, "train-ae", "--dataset", tmp_path / "ds", "--latent", 4, "--epochs", 1, "--batch-size", 40,
               "--out", tmp_path / "ae")[0] == 0
    for given, said in (([], "--invert yes, --fill 0.75"), (["--fill", "0.5"], "--invert yes"),
                        (["--invert", "no"], "--fill 0.75"), (["--invert", "no", "--fill", "1"], None)):
        code, out, err = cli(capsys, "reconstruct", tmp_path / "ae", picture, "-o", "out", "--force", *given)
        assert code == 0 and out.startswith(f"{picture}: MSE ")
        assert err == (f"note: pictures prepared as {tmp_path / 'ae'}'s dataset's were ({said}; give the option to "
                       "change it)\n" if said else "")
    # the file written: the picture as prepared (as asked: negated, --invert yes), then its reconstruction
    import numpy as np
    from PIL import Image
    code, _, _ = cli(capsys, "reconstruct", tmp_path / "ae", picture, "-o", "pair", "--fill", "0.75")
    assert code == 0
    got = torch.from_numpy(np.asarray(Image.open(tmp_path / "pair" / "box_reconstruction.png"))[::8, ::8].copy())
    run = fashionae.load(tmp_path / "ae")  # (as its dataset's pictures were: --invert yes, --fill 0.75)
    x = run.read_pictures([str(picture)])[str(picture)].pixels  # (on its dataset's background, noise's median)
    recon = run.reconstruct(x)[0]
    assert got.shape == (16, 34) and not torch.equal(got[:, :16], got[:, 18:])
    assert torch.equal(got[:, :16], (x[0] * 255).to(torch.uint8))
    assert torch.equal(got[:, 18:], (recon[0].clamp(0, 1) * 255).to(torch.uint8))


def test_classify_refuses_an_autoencoder_before_it_reads_a_picture(capsys, own_run, tmp_path):
    """The run is the first thing classify checks: an autoencoder is said to be one, whatever the
    pictures (here one that does not exist)."""
    code, out, err = cli(capsys, "classify", own_run[1], tmp_path / "missing.png")
    assert (code, out, err) == (2, "", f"fashionae: error: {own_run[1]} is an autoencoder run; predicting classes "
                                       "needs a classifier run (fashionae train-clf)\n")


def test_every_command_parses_to_the_defaults_and_types_its_help_names(capsys, monkeypatch, tmp_path):
    """Each command's options as parsed when left out (the defaults the help and the docs give),
    their types when given, and the required arguments and choices refused in one line."""
    from fashionae import bench
    from fashionae.options import build_parser
    monkeypatch.chdir(tmp_path)
    parser = build_parser()
    data = {"dataset": "fashion-mnist", "data_dir": None, "no_verify": False}
    of_run = {"data_dir": None, "no_verify": False}
    expected = {
        ("data",): {**data, "from_pictures": None, "image_size": (28, 28), "invert": None, "fill": None},
        ("baselines", "--out", "b"): {"out": "b", "val": "holdout", "train_subset": None, "eval_subset": None,
                                      "logreg_max_iter": 200, **data},
        ("study", "s.toml"): {"study_file": "s.toml", "profile": None, "seeds": None, "out": None, "device": None,
                              "precision": None, "tensorboard": False, "plan": False, "json": False, "extend": False,
                              "executor": "local", "address": None, "cpus_per_run": None, "gpus_per_run": None,
                              **of_run},
        ("report", "r"): {"study_dir": "r", "self_contained": False},
        ("bench",): {"json": False, "windows": bench.WINDOWS, "profile": False, "device": "auto", "out": None,
                     "force": False, "images": bench.IMAGES},
        ("explore", "r"): {"run_dir": "r", "out": None, "no_tsne": False, **of_run},
        ("reconstruct", "r", "a.png"): {"run_dir": "r", "images": ["a.png"], "output": "reconstructions",
                                        "invert": None, "fill": None, "force": False},
        ("classify", "r", "a.png", "b.png"): {"run_dir": "r", "images": ["a.png", "b.png"], "invert": None,
                                              "fill": None},
        ("eval", "r"): {"run_dir": "r", "device": "auto", **of_run},
        ("export", "r", "-o", "m.onnx"): {"run_dir": "r", "output": "m.onnx", "part": None, "no_check": False,
                                          "force": False},
    }
    for argv, options in expected.items():
        assert vars(parser.parse_args(list(argv))) == {"debug": False, "command": argv[0], **options}
    for command in (["train-ae"], ["train-clf", "--strategy", "frozen"]):
        a = vars(parser.parse_args(command))
        assert {k: a[k] for k in ("out", "extend", *data)} == {"out": None, "extend": False, **data}
    assert parser.parse_args(["train-clf", "--strategy", "frozen"]).encoder is None
    # given, each is of its type
    a = parser.parse_args(["study", "s.toml", "--seeds", "2", "--cpus-per-run", "3", "--gpus-per-run", "0.5"])
    assert (a.seeds, a.cpus_per_run, a.gpus_per_run) == (2, 3, 0.5) and type(a.seeds) is type(a.cpus_per_run) is int
    a = parser.parse_args(["baselines", "--out", "b", "--train-subset", "5", "--eval-subset", "6",
                           "--logreg-max-iter", "7"])
    assert (a.train_subset, a.eval_subset, a.logreg_max_iter) == (5, 6, 7)
    assert parser.parse_args(["classify", "r", "a.png", "--fill", "0.5"]).fill == 0.5
    assert parser.parse_args(["data", "--image-size", "32x24"]).image_size == (32, 24)
    # required, and choices
    for argv, said in ((["export", "r"], "the following arguments are required: -o/--output"),
                       (["classify", "r"], "the following arguments are required: images"),
                       (["reconstruct", "r"], "the following arguments are required: images"),
                       (["explore", "r", "--dataset", "mine"], "unrecognized arguments: --dataset mine"),
                       (["study", "s.toml", "--precision", "fp8"], "argument --precision: invalid choice: 'fp8'"),
                       (["study", "s.toml", "--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
                       (["study", "s.toml", "--executor", "dask"], "argument --executor: invalid choice: 'dask'"),
                       (["baselines", "--out", "b", "--val", "train"], "argument --val: invalid choice: 'train'"),
                       (["bench", "--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
                       (["reconstruct", "r", "a.png", "--invert", "maybe"], "argument --invert: invalid choice")):
        code, out, err = cli(capsys, *argv)
        assert code == 2 and out == "" and err.startswith(f"fashionae: error: {said}") and err.count("\n") == 1, err
        assert err.endswith(f" (see `fashionae {argv[0]} --help`)\n")
    assert list(tmp_path.iterdir()) == []


def test_explore_prints_its_scores_each_under_its_name_and_passes_its_options(capsys, monkeypatch, tmp_path):
    """explore's line: the latent's size, the k-NN and the probe accuracies (each its own), the
    probe said unconverged where it is, the images it was fitted on and the figures' folder."""
    from fashionae import explore
    monkeypatch.chdir(tmp_path)
    seen = []
    result = {"latent": 16, "knn_acc": 0.8125, "linear_probe_acc": 0.6875, "linear_probe_converged": True,
              "fit_images": 12345, "out": "ae/explore"}
    monkeypatch.setattr(explore, "explore", lambda run_dir, out, **kw: seen.append((run_dir, out, kw)) or result)
    code, out, _ = cli(capsys, "explore", "ae")
    assert (code, out) == (0, f"ae: latent of 16 values; k-NN (k={explore.KNN_K}) test accuracy 0.8125, linear probe "
                              "0.6875 (fitted on 12,345 training images); figures in ae/explore\n")
    run_dir, folder, kw = seen.pop()
    assert (run_dir, folder, kw["data_dir"], kw["verify"], kw["tsne"]) == ("ae", None, None, True, True)
    result["linear_probe_converged"] = False
    code, out, _ = cli(capsys, "explore", "ae", "--out", "maps", "--no-tsne", "--data-dir", "d", "--no-verify")
    assert (code, out) == (0, f"ae: latent of 16 values; k-NN (k={explore.KNN_K}) test accuracy 0.8125, linear probe "
                              f"0.6875 (not converged in {explore.PROBE_MAX_ITER} iterations, fitted on 12,345 "
                              "training images); figures in ae/explore\n")
    run_dir, folder, kw = seen.pop()
    assert (run_dir, folder, kw["data_dir"], kw["verify"], kw["tsne"]) == ("ae", "maps", "d", False, False)


def test_export_prints_what_goes_in_and_what_comes_out_and_passes_its_options(capsys, monkeypatch, tmp_path):
    """export's line: the part, its input and its output (each where it is), and the check's
    difference where it ran."""
    from fashionae import export
    monkeypatch.chdir(tmp_path)
    seen = []
    result = {"part": "encoder", "input": "image float32 [N, 1, 28, 28]", "output": "embedding float32 [N, 16]",
              "max_abs_diff": 1.5e-07}
    monkeypatch.setattr(export, "export_onnx", lambda run_dir, output, part, **kw: seen.append(
        (run_dir, output, part, kw)) or dict(result))
    code, out, _ = cli(capsys, "export", "ae", "-o", "e.onnx", "--part", "encoder")
    assert (code, out) == (0, "e.onnx: encoder of ae, input image float32 [N, 1, 28, 28], output embedding float32 "
                              "[N, 16]; onnxruntime matches PyTorch in fp32 (max abs difference 1.50e-07)\n")
    assert seen.pop() == ("ae", "e.onnx", "encoder", {"check": True, "force": False})
    del result["max_abs_diff"]
    code, out, _ = cli(capsys, "export", "ae", "-o", "e.onnx", "--no-check", "--force")
    assert (code, out) == (0, "e.onnx: encoder of ae, input image float32 [N, 1, 28, 28], output embedding float32 "
                              "[N, 16]\n")
    assert seen.pop() == ("ae", "e.onnx", None, {"check": False, "force": True})


def test_an_image_size_the_encoders_cannot_take_is_refused_as_the_option_given(capsys):
    """Not a multiple of 4, or under 8: refused by the parser, as --image-size's own error."""
    for size, said in (("30", "30x30"), ("4", "4x4"), ("32x10", "32x10")):
        code, _, err = cli(capsys, "data", "--image-size", size)
        assert (code, err) == (2, "fashionae: error: argument --image-size: must be multiples of 4 of at least 8 "
                                  f"(the encoder halves them twice), got {said} (see `fashionae data --help`)\n")
