import json
import math
import re
import shutil
from pathlib import Path

import pytest

from fashionae.cli import main
from fashionae.errors import UserError
from fashionae.models import ModelConfig
from fashionae.results import collect_results, model_cost, stats
from fashionae.studyfolder import StudyFolder
from helpers import PAPER, unsealed, write_dataset


def test_model_cost_counts_parameters_and_flops_per_image():
    """The paper's linear autoencoder at l_size 512, counted by hand: multiply-adds per image of
    conv 1 -> 32 (28x28x32x9), conv 32 -> 64 (14x14x64x288), Linear 3136 -> 512 and back, and the
    transposed convolutions 64 -> 32 (14x14x32x64) and 32 -> 1 (28x28x32), two FLOPs each."""
    macs = 28 * 28 * 32 * 9 + 14 * 14 * 64 * 288 + 2 * 3136 * 512 + 14 * 14 * 32 * 64 + 28 * 28 * 32
    params = (32 * 9 + 32) + (64 * 288 + 64) + (3136 * 512 + 512) + (512 * 3136 + 3136) + (64 * 32 * 4 + 32) + (32 * 4 + 1)
    assert model_cost(ModelConfig(latent=512)) == {"parameters": params, "latent_size": 512,
                                                   "mflops_per_image": pytest.approx(2 * macs / 1e6, rel=1e-9)}
    assert model_cost(ModelConfig(arch="conv"))["latent_size"] == 64 * 7 * 7


def test_stats_over_seeds():
    assert stats([0.1]) == {"mean": 0.1, "std": 0.0, "values": [0.1]}  # one seed: no spread to show
    assert stats([1.0, 3.0]) == {"mean": 2.0, "std": pytest.approx(2 ** 0.5), "values": [1.0, 3.0]}
    diverged = stats([1.0, math.nan])  # a diverged seed: no mean to give
    assert math.isnan(diverged["mean"]) and math.isnan(diverged["std"]) and diverged["values"][0] == 1.0


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory) -> Path:
    """The paper's smoke study with two seeds, finished."""
    root = tmp_path_factory.mktemp("results")
    data = write_dataset(root / "data", n_train=11_000, n_test=300)
    out = root / "study"
    assert main(["study", str(PAPER), "--profile", "smoke", "--seeds", "2", "--data-dir", str(data), "--no-verify",
                 "--out", str(out)]) == 0
    return out


def test_each_groups_figures_are_its_runs_own(two_seeds):
    """What results.json derives from each run's summary.json and config.json: seconds per epoch,
    the rise of validation MSE after its best epoch, the images seen, the epochs, the confusion of
    seed 0, the encoders the classifiers start from, and each run's provenance."""
    results = json.loads((two_seeds / "results.json").read_text())
    folder = StudyFolder(two_seeds)

    def summaries(entry):
        return [folder.run(Path(r).name).summary() for r in entry["runs"]]
    for ae in results["autoencoders"]:
        s = summaries(ae)
        assert len(s) == 2 and ae["epochs"] == s[0]["epochs"] == 1
        assert ae["seconds_per_epoch"]["values"] == [x["seconds_total"] / x["epochs"] for x in s]
        assert ae["val_rise_after_best"]["values"] == [(x["val_loss"] - x["best_val_loss"]) / x["best_val_loss"]
                                                       for x in s]
        seen = folder.run(Path(ae["runs"][0]).name).data_record()
        assert ae["images"] == {"train": seen["train_size"], "val": seen["val_size"], "test": seen["test_size"]}
        assert ae["images"]["test"] == 300
    for c in results["classifiers"]:
        s = summaries(c)
        assert c["epochs"] == s[0]["epochs"] and c["most_confused"] == s[0]["most_confused"]
        assert c["confusion_matrices"] == [x["confusion_matrix"] for x in s]
        assert [p["values"] for p in c["per_class_acc"]] == [list(v) for v in zip(*(x["per_class_acc"] for x in s))]
    assert results["classifier_encoders"] == ["linear-512"]
    for r in results["runs"]:
        run = folder.run(r["run"])
        env = run.environment()
        assert (r["seconds"], r["sessions"]) == (run.summary()["seconds_total"], 1)
        assert (r["device"], r["precision"], r["threads"], r["host"]) == \
            (env["device"], env["precision"], env["threads"], env["host"])


def test_a_runs_provenance_gives_its_last_sessions_device_and_each_change_of_the_others():
    """A run stopped and resumed twice: its device and precision are its last session's; threads
    and host list each change in turn, a return to an earlier value included."""
    from types import SimpleNamespace
    from fashionae.results import _run_info
    sessions = [{"device": "cuda", "precision": "bf16", "threads": 2, "host": "a", "gpu": "H100"},
                {"device": "cpu", "precision": "fp32", "threads": 1, "host": "b", "cpu": "x86"},
                {"device": "cpu", "precision": "fp32", "threads": 2, "host": "b", "cpu": "x86"}]
    run = SimpleNamespace(sessions=lambda: sessions, data_record=lambda: {"val_indices_sha256": "ab"},
                          summary=lambda: {"seconds_total": 12.5})
    assert _run_info("r", run) == {
        "run": "r", "device": "cpu", "precision": "fp32", "hardware": "H100 → x86", "threads": "2 → 1 → 2",
        "host": "a → b", "processes": 1, "executor": "local", "sessions": 3, "seconds": 12.5,
        "val_indices_sha256": "ab"}


def test_an_unfinished_study_names_its_first_run_left(two_seeds, tmp_path):
    """And says that its last report is still there."""
    out = tmp_path / "study"
    shutil.copytree(two_seeds, out)
    names = [r["run"] for r in json.loads((out / "results.json").read_text())["runs"]]
    left = [name for name in names if name.endswith("-seed1")][1:3]
    for name in left:  # stopped before these two finished: no summary.json, no model yet
        for file in ("summary.json", "model.safetensors"):
            (out / "runs" / name / file).unlink()
    recorded = json.loads((out / "study.json").read_text())
    assert " fashionae study " in recorded.pop("command")  # (kept by the study's command line, the fixture's)
    (out / "study.json").write_text(json.dumps(recorded))  # as 0.3.29 wrote it: no line kept
    with pytest.raises(UserError, match=rf"^study {re.escape(str(out))} is not finished: 2 of its {len(names)} runs "
                                        rf"are left \({re.escape(left[0])} first\); run the same `fashionae study "
                                        rf"\.\.\. --out {re.escape(str(out))}` command again to resume it \("
                                        rf"{re.escape(str(out / 'report.html'))}, its last report, is still there\)$"):
        collect_results(out)
    (out / "report.html").unlink()
    with pytest.raises(UserError, match=r"command again to resume it$"):
        collect_results(out)
    # the line that ran it, kept by the study (0.3.30): said whole, its --seeds too, as from here
    line = f"cd {tmp_path} && OMP_NUM_THREADS=1 fashionae study s.toml --seeds 2 --out study"
    (out / "study.json").write_text(json.dumps({**recorded, "command": line}))
    with pytest.raises(UserError, match=rf"\(.*-seed1 first\); run its command again to resume it: {re.escape(line)}$"):
        collect_results(out)
    for edited in ("garbage words", "cd /nowhere && rm -rf ~", f"cd {tmp_path} && fashionae train-ae --out study", [1]):
        (out / "study.json").write_text(json.dumps({**recorded, "command": edited}))  # not said as the line to run
        with pytest.raises(UserError, match=r"; run the same `fashionae study \.\.\. --out .*` command again to resume "
                                            r"it$"):
            collect_results(out)
    (out / "study.json").write_text(json.dumps({**recorded, "command": line}))
    (out / "report.html").write_text("")
    shutil.move(out, tmp_path / "moved")
    with pytest.raises(UserError, match=rf"; run its command again to resume it \({re.escape(str(tmp_path / 'moved'))}"
                                        rf"/report.html, its last report, is still there\): cd {re.escape(str(tmp_path))} "
                                        rf"&& OMP_NUM_THREADS=1 fashionae study s.toml --seeds 2 --out {re.escape(str(tmp_path / 'moved'))}$"):
        collect_results(tmp_path / "moved")


def test_a_study_whose_run_lost_its_settings_says_so_as_eval_does(two_seeds, tmp_path):
    """It said "run settings .../config.json is missing", with no fix."""
    out = tmp_path / "study"
    shutil.copytree(two_seeds, out)
    run = out / "runs" / "ae-linear-512-seed1"
    (run / "config.json").unlink()
    with pytest.raises(UserError, match=f"^{re.escape(str(run))} holds a run's files but not its config.json: it was "
                                        "deleted or moved; put back a copy of it, or delete"):
        collect_results(out)


def with_history(run: Path, val_loss: list[float], seconds: list[float], val_acc: list[float] | None = None) -> None:
    """A finished run's metrics.jsonl and summary.json rewritten to a history of these epochs, its
    other figures those of its one epoch trained; the summary's figures of the epochs put in by hand."""
    row = json.loads((run / "metrics.jsonl").read_text())
    rows = [row | {"epoch": i + 1, "val_loss": v, "seconds": t} for i, (v, t) in enumerate(zip(val_loss, seconds))]
    summary = json.loads((run / "summary.json").read_text())
    best = min(val_loss)
    summary |= {"epochs": len(rows), "best_epoch": val_loss.index(best) + 1, "val_loss": val_loss[-1],
                "best_val_loss": best, "seconds_total": sum(seconds)}
    if val_acc is not None:
        rows = [r | {"val_acc": a} for r, a in zip(rows, val_acc)]
        summary |= {"val_acc": val_acc[-1], "best_val_acc": max(val_acc),
                    "best_val_acc_epoch": val_acc.index(max(val_acc)) + 1}
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "summary.json").write_text(json.dumps(summary))
    unsealed(run)


@pytest.fixture
def four_epochs(two_seeds, tmp_path) -> dict:
    """The two-seed study's results with every run given four epochs, the best validation epoch
    not the last: seed 0's best at epoch 2 (MSE 0.5, 0.3, 0.4, 0.45), seed 1's at epoch 3; a
    classifier's best accuracy at another epoch than its best loss."""
    out = tmp_path / "study"
    shutil.copytree(two_seeds, out)
    for run in (out / "runs").iterdir():
        seed = int(run.name[-1])
        val_loss, seconds = ([0.5, 0.3, 0.4, 0.45], [2.0, 3.0, 4.0, 7.0]) if seed == 0 else \
            ([0.5, 0.4, 0.25, 0.3], [1.0, 2.0, 3.0, 6.0])
        val_acc = [0.6, 0.7, 0.8, 0.75] if seed == 0 else [0.6, 0.9, 0.8, 0.85]
        with_history(run, val_loss, seconds, val_acc if run.name.startswith("clf-") else None)
    return collect_results(out)


def test_seconds_per_epoch_is_each_seeds_total_over_all_its_epochs(four_epochs):
    for ae in four_epochs["autoencoders"]:  # (2 + 3 + 4 + 7) / 4 and (1 + 2 + 3 + 6) / 4
        assert ae["seconds_per_epoch"] == {"mean": 3.5, "std": pytest.approx(0.5 ** 0.5), "values": [4.0, 3.0]}
        assert ae["seconds"]["values"] == [16.0, 12.0]


def test_val_rise_after_best_is_the_last_epochs_mse_over_the_best_epochs(four_epochs):
    """The rise is relative to the best validation MSE, not the first epoch's nor the last's."""
    for ae in four_epochs["autoencoders"]:  # (0.45 - 0.3) / 0.3 and (0.3 - 0.25) / 0.25
        assert ae["val_rise_after_best"]["values"] == pytest.approx([0.5, 0.2])
        assert ae["val_rise_after_best"]["mean"] == pytest.approx(0.35)
        assert ae["val_mse"]["values"] == [0.45, 0.3] and ae["best_val_mse"]["values"] == [0.3, 0.25]


def test_epochs_are_all_epochs_trained_and_best_epoch_the_lowest_val_mses(four_epochs):
    for ae in four_epochs["autoencoders"]:
        assert ae["epochs"] == 4
        assert ae["best_epoch"] == {"mean": 2.5, "std": pytest.approx(0.5 ** 0.5), "values": [2, 3]}
    assert four_epochs["classifiers"]
    for c in four_epochs["classifiers"]:  # neither its best loss's epoch (2, 3) nor its best accuracy's (3, 2)
        assert c["epochs"] == 4
        assert c["val_acc"]["values"] == [0.75, 0.85] and c["best_val_acc"]["values"] == [0.8, 0.9]


def test_each_report_keeps_the_seeds_of_the_looks_before_and_a_damaged_history_starts_again():
    """``seed_history``: a report adds its seeds where they differ from the last report's (a
    rebuild adds no look); of a history that is not a list of counts of seeds (damaged), its counts
    are kept, then the seeds that report had; none (from before it was kept): those alone, or
    anew where those are no count."""
    from fashionae.results import _counts, history

    def seeds(before: dict, now: int) -> list:
        return history(before, "seed_history", now, before.get("seeds"), _counts)
    assert seeds({}, 2) == [2]  # the first report
    assert seeds({"seeds": 2, "seed_history": [2]}, 2) == [2]  # the same seeds again: no new look
    assert seeds({"seeds": 2, "seed_history": [1, 2]}, 2) == [1, 2]
    assert seeds({"seeds": 2, "seed_history": [1, 2]}, 3) == [1, 2, 3]
    assert seeds({"seeds": 1, "seed_history": [1, 2, 1]}, 1) == [1, 2, 1]
    assert seeds({"seeds": 1, "seed_history": [1]}, 2) == [1, 2]  # 1 seed is a count
    for damaged in (None, "12", [], [1.0], {"1": 2}):
        assert seeds({"seeds": 3, "seed_history": damaged}, 2) == [3, 2], damaged
    for damaged, kept in (([1, 0], [1]), ([1, -2], [1]), ([1, True], [1]), ([2, "3"], [2]), ([5, None, 3], [5, 3])):
        # its looks that can be read are kept (an earlier one is not lost with a damaged one), the report's own after
        assert seeds({"seeds": 3, "seed_history": damaged}, 2) == [*kept, *([3] if kept[-1] != 3 else []), 2], damaged
    for no_count in (None, 0, True, "3", 2.0):
        assert seeds({"seeds": no_count, "seed_history": "12"}, 2) == [2], no_count


def test_the_epochs_each_model_is_read_at_keep_an_autoencoder_and_a_classifier_of_one_name_apart():
    from fashionae.results import epochs_read
    models = {"autoencoders": [{"name": "frozen", "epochs": 3}, {"name": "a", "epochs": 3}],
              "classifiers": [{"name": "frozen", "epochs": 2}, {"name": "scratch", "epochs": 2}]}
    assert epochs_read(models) == {"autoencoder frozen": 3, "a": 3, "classifier frozen": 2, "scratch": 2}
    assert epochs_read({"autoencoders": [{"name": "a"}], "classifiers": []}) is None  # (damaged: none read)
    # an earlier report's one entry for the two (before 0.3.31) was the classifier's, and is read as its
    from fashionae.summary import _epochs_changed
    assert _epochs_changed([{"frozen": 2, "a": 3}, {"frozen": 4, "a": 3}, epochs_read(models)]) == {
        "classifier frozen": [2, 4, 2]}
    assert _epochs_changed([{"autoencoder frozen": 1, "classifier frozen": 2}, epochs_read(models)]) == {
        "autoencoder frozen": [1, 3]}
