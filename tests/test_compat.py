"""Folders written by fashionae 0.1 (before the settings, dataset and run-folder changes) still
load, resume and stay finished. tests/data/v0.1 was written by 0.1's own code: a finished run
and the same run stopped after its first epoch (2 epochs of a latent-4 autoencoder on the first
200 images of the synthetic data below), and the study.json of 0.1's smoke profile."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from fashionae.data import load_fashion_mnist
from fashionae.models import ModelConfig
from fashionae.plan import make_plan
from fashionae.inference import LoadedRun
from fashionae.runconfig import RunConfig
from fashionae.runfolder import RunFolder
from fashionae.machine import cpu_info
from fashionae.runs import execute
from fashionae.study import Study
from fashionae.training import TrainConfig
from helpers import QUIET, read_metrics, write_dataset

V01 = Path(__file__).parent / "data" / "v0.1"


def run_config() -> RunConfig:
    t = TrainConfig(epochs=2, batch_size=50, train_subset=200, eval_subset=100, device="cpu", precision="fp32")
    return RunConfig(model=ModelConfig(latent=4), train=t)


# The folders were written on an Intel Xeon with AMX, where ATen runs its AVX-512 kernels. Other
# CPUs sum the same floats in another order, so there the result of the same code differs in
# the last bits of fp32 and only closeness can be asked for: an AVX2-only EPYC (ATen's AVX2
# kernels), and a Zen 5 EPYC (AVX-512, no AMX: oneDNN blocks the evaluation's sums otherwise;
# one validation loss differed there, 0.08328603 against 0.08328602).
def written_here() -> bool:
    cpu = cpu_info()  # and no cap on the kernels' ISA set in the environment
    return torch.backends.cpu.get_cpu_capability() == "AVX512" and "AMX" in cpu["isa"] and not cpu["isa_caps"]


def test_v01_run_folders_resume_exactly_and_stay_finished(tmp_path):
    # bit for bit at the thread count the folders were written with (their environment says 2):
    # the float sums of a convolution split differently over another number of threads
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _resume_v01(tmp_path)
    finally:
        torch.set_num_threads(threads)


def _resume_v01(tmp_path):
    # 60,000 training images, as 0.1's held-out split assumed, so the split is the same
    data = load_fashion_mnist(write_dataset(tmp_path / "data", 60_000, 100, gz=False), verify=False)
    for name in ("finished", "unfinished"):
        shutil.copytree(V01 / name, tmp_path / name)
    messages = []
    execute(run_config(), tmp_path / "finished", data=data, log=messages.append)
    assert "already finished" in messages[0]
    execute(run_config(), tmp_path / "unfinished", data=data, **QUIET)
    # 0.1's checkpoint resumed by today's code gives 0.1's own uninterrupted result, bit for bit
    # on the kernels that wrote it
    exact = written_here()
    resumed, finished = read_metrics(tmp_path / "unfinished"), read_metrics(V01 / "finished")
    assert [row.keys() for row in resumed] == [row.keys() for row in finished]
    for got, want in zip(resumed, finished):
        assert got == want if exact else got == pytest.approx(want, rel=1e-5)
    old, new = RunFolder(V01 / "finished").load_model(), RunFolder(tmp_path / "unfinished").load_model()
    for a, b in zip(old.state_dict().values(), new.state_dict().values()):
        assert torch.equal(a, b) if exact else torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    run = LoadedRun(V01 / "finished")
    assert run.classes[6] == "Shirt" and run.embed(torch.rand(2, 1, 28, 28)).shape == (2, 4)
    # it drew its masks as 0.1 did, and its settings now say so
    assert RunFolder(tmp_path / "unfinished").config().train.dropout_masks == "mersenne"


def test_a_run_from_before_counter_masks_resumes_with_its_own_and_refuses_others(tmp_path):
    """A folder whose settings predate ``dropout_masks`` drew torch's Mersenne Twister masks:
    auto resumes it with those, and asking for other masks is refused before anything trains."""
    from fashionae.errors import UserError
    shutil.copytree(V01 / "unfinished", tmp_path / "unfinished")
    folder = RunFolder(tmp_path / "unfinished")
    assert folder.started().dropout_masks == "mersenne"
    assert run_config().train.resolved(folder.started()).dropout_masks == "mersenne"
    asked = run_config()
    asked = replace(asked, train=replace(asked.train, dropout_masks="counter"))
    with pytest.raises(UserError, match=r"holds a run with other settings \(train.dropout_masks: 'mersenne' "
                                        r"there, 'counter' now\)"):
        execute(asked, folder.path, data=load_fashion_mnist(write_dataset(tmp_path / "data", 300, 100), verify=False),
                **QUIET)


def test_v01_study_json_reads_as_the_same_study():
    study = Study.from_dict(json.loads((V01 / "study.json").read_text()))
    assert study.profile == "smoke" and study.seeds == [0]
    names = [r.name for r in make_plan(study)]
    assert names[:4] == ["ae-linear-64-seed0", "ae-linear-512-seed0", "ae-linear-1024-seed0", "ae-conv-seed0"]
    assert names[4:] == [f"clf-{s}-seed0" for s in ("frozen", "finetune", "scratch", "random-frozen")]
    assert study.autoencoders[1].train.train_subset == 400 and study.autoencoders[1].model.dropout == 0.2
