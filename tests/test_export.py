"""ONNX export: every part and every encoder runs in onnxruntime as in torch, at any batch size."""

import hashlib
import json
import os
import re
import sys

import pytest
import torch

from conftest import REAL_DIR
from fashionae import export, load
from fashionae.cli import main
from fashionae.data import load_fashion_mnist
from fashionae.errors import UserError
from fashionae.export import export_onnx
from fashionae.models import ENCODER_TYPES, ModelConfig
from fashionae.runs import RunConfig, execute
from fashionae.training import TrainConfig
from helpers import QUIET, extra_or_skip, synthetic_images, write_dataset

onnx, ort, _ = extra_or_skip("onnx", "onnx", "onnxruntime", "onnxscript")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Runs of one short epoch, trained when a test first asks for them."""
    root = tmp_path_factory.mktemp("runs")
    data = load_fashion_mnist(write_dataset(root / "data", n_train=600, n_test=100), verify=False)
    t = TrainConfig(epochs=1, batch_size=50, train_subset=100, eval_subset=50, train_eval_subset=50,
                    device="cpu")
    trained = {}

    def run(task="autoencoder", encoder_type="paper", arch="linear"):
        out = root / f"{task}-{encoder_type}-{arch}"
        if out not in trained:
            model = ModelConfig(task=task, encoder_type=encoder_type, arch=arch, latent=16)
            strategy = "scratch" if task == "classifier" else None
            trained[out] = execute(RunConfig(model=model, train=t, strategy=strategy), out, data=data, **QUIET)
        return out
    return run


@pytest.fixture(scope="module")
def hundred(request):
    """100 test images: the real ones where the dataset is installed, synthetic ones otherwise."""
    if REAL_DIR.is_dir():
        return request.getfixturevalue("real").test_images[:100]
    return synthetic_images(100, seed=5)[0]


def run_onnx(path, images: torch.Tensor) -> torch.Tensor:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"images": images.numpy()})[0])


@pytest.mark.parametrize("task, part", [("autoencoder", "encoder"), ("autoencoder", "autoencoder"),
                                        ("classifier", "classifier"), ("classifier", "encoder")])
def test_parts_run_in_onnxruntime_as_in_torch(runs, hundred, tmp_path, task, part):
    run = runs(task)
    path = tmp_path / "model.onnx"
    r = export_onnx(run, path, part if part != task else None, images=hundred)  # default: the task
    assert r["part"] == part and r["max_abs_diff"] <= 1e-4
    # a batch size of neither the export (2) nor the check (100), against the Python API
    x = hundred[:3].unsqueeze(1).float() / 255
    got, model = run_onnx(path, x), load(run, precision="fp32")  # as the file computes
    want = {"encoder": model.embed, "autoencoder": model.reconstruct,
            "classifier": model.predict_proba}[part](x)
    if part == "classifier":
        got = torch.softmax(got, dim=1)  # the file gives logits
    assert got.shape == want.shape and (got - want).abs().max() <= 1e-4
    graph = onnx.load(str(path))
    meta = {p.key: p.value for p in graph.metadata_props}
    assert meta["part"] == part and meta["input"] == "images float32 [N, 1, 28, 28], pixels/255, dark background"
    # the output is named as the metadata and the command call it
    names = {"encoder": "embedding", "autoencoder": "reconstruction", "classifier": "logits"}
    assert [o.name for o in graph.graph.output] == [names[part]] and meta["output"].startswith(names[part] + " ")
    assert json.loads(meta["classes"]) == list(model.classes)
    assert json.loads(meta["model_config"])["task"] == task
    assert meta["source_model_sha256"] == hashlib.sha256((run / "model.safetensors").read_bytes()).hexdigest()
    assert meta["fashionae_version"]
    assert meta["trained_precision"] == json.loads((run / "config.json").read_text())["environment"]["precision"]
    assert json.loads(meta["pictures"]) == {"invert": "auto", "fill": 1.0}  # as Fashion-MNIST's were


def test_a_run_on_light_backgrounds_says_its_input_is_on_light(runs, tmp_path, monkeypatch):
    """A run whose dataset is of dark garments on white takes its images so (its pictures are
    prepared so): its file's input says it, as the dark one's says dark."""
    from fashionae.runfolder import RunFolder
    monkeypatch.setattr(RunFolder, "dataset_levels", lambda self: {"border": 250.0, "background": 252.0})
    export_onnx(runs("autoencoder"), tmp_path / "m.onnx", "encoder", check=False)
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert meta["input"] == "images float32 [N, 1, 28, 28], pixels/255, light background"


@pytest.mark.parametrize("encoder_type", ENCODER_TYPES)
@pytest.mark.parametrize("arch", ["linear", "conv"])
def test_every_encoder_and_arch_exports(runs, tmp_path, encoder_type, arch):
    task = "classifier" if encoder_type == "strong" else "autoencoder"  # both heads see both archs
    r = export_onnx(runs(task, encoder_type, arch), tmp_path / "m.onnx")
    assert r["part"] == task and r["max_abs_diff"] <= 1e-4


def test_wrong_part_is_refused(runs, tmp_path):
    for task, part in (("autoencoder", "classifier"), ("classifier", "autoencoder")):
        with pytest.raises(UserError, match=f"--part {part} is for {part} runs, not {task} runs"):
            export_onnx(runs(task), tmp_path / "m.onnx", part)
    assert not (tmp_path / "m.onnx").exists()


def test_export_command(runs, tmp_path, capsys):
    path = tmp_path / "encoder.onnx"
    assert main(["export", str(runs()), "-o", str(path), "--part", "encoder"]) == 0
    out = capsys.readouterr().out
    diff = float(re.search(r"max abs difference ([0-9.e+-]+)\)", out).group(1))
    assert 0 <= diff <= 1e-4 and "embedding float32 [N, 16]" in out and path.is_file()
    before = path.read_bytes()
    assert main(["export", str(runs()), "-o", str(path), "--part", "encoder"]) == 0  # the same export again
    assert path.read_bytes() == before
    capsys.readouterr()
    # another export over it is refused, and the file kept, unless --force
    assert main(["export", str(runs()), "-o", str(path), "--no-check"]) == 2
    assert capsys.readouterr().err == (f"fashionae: error: {path} already exists with other contents; nothing was "
                                       "written: choose another output, or pass --force to replace it\n")
    assert path.read_bytes() == before
    assert main(["export", str(runs()), "-o", str(path), "--no-check", "--force"]) == 0
    assert "difference" not in capsys.readouterr().out and path.read_bytes() != before
    assert main(["export", str(runs()), "-o", str(path), "--part", "classifier"]) == 2
    assert "fashionae: error: --part classifier is for classifier runs" in capsys.readouterr().err


def test_a_file_in_the_way_is_refused_before_exporting(runs, tmp_path, monkeypatch, capsys):
    # another export, or any other file, is refused before the export's seconds are spent
    # (an export of the same part of the same model goes on, and is compared byte for byte)
    path, own = tmp_path / "m.onnx", tmp_path / "notes.onnx"
    assert main(["export", str(runs()), "-o", str(path), "--part", "encoder", "--no-check"]) == 0
    own.write_text("my own file")
    monkeypatch.setattr(export, "to_onnx", lambda module: pytest.fail("exported before refusing"))
    for target, part in ((path, "autoencoder"), (own, "encoder"), (own, "autoencoder")):
        assert main(["export", str(runs()), "-o", str(target), "--part", part]) == 2
        assert "already exists with other contents; nothing was written" in capsys.readouterr().err
    assert own.read_text() == "my own file"
    (tmp_path / "dir.onnx").mkdir()
    os.mkfifo(tmp_path / "pipe.onnx")  # never read: it would wait for a writer
    for target in ("dir.onnx", "pipe.onnx"):
        assert main(["export", str(runs()), "-o", str(tmp_path / target), "--force"]) == 2
        assert "is a folder (or not a file)" in capsys.readouterr().err


def test_without_the_extra_one_line_names_it(runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if not installed
    with pytest.raises(UserError, match=r"needs onnxscript.*pip install 'fashionae\[onnx\]'"):
        export_onnx(runs(), tmp_path / "m.onnx")


@pytest.mark.parametrize("diff", [float("nan"), 1.0])
def test_a_file_that_differs_from_torch_is_refused_and_not_written(runs, tmp_path, monkeypatch, diff):
    """The check's point: a file whose outputs differ from torch's by more than 1e-4, or by a
    difference that is no number at all (NaN), is refused, and nothing is written."""
    monkeypatch.setattr(export, "max_abs_diff", lambda data, module, images: diff)
    path, shown = tmp_path / "m.onnx", re.escape(f"{diff:.2e}")
    with pytest.raises(UserError, match=rf"^the exported encoder differs from torch by up to {shown} on 100 "
                                        r"images \(more than 1e-04\); nothing was written"):
        export_onnx(runs(), path, "encoder")
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_the_check_measures_differences_either_way(runs):
    """An export whose outputs are below torch's differs from it as much as one above."""
    from torch import nn

    from fashionae.runfolder import RunFolder

    class Shifted(nn.Module):
        def __init__(self, module, by):
            super().__init__()
            self.module, self.by = module, by

        def forward(self, x):
            return self.module(x) + self.by

    module = export.Part(RunFolder(runs()).load_model(), "encoder").eval()
    data = export.to_onnx(module).SerializeToString()
    images = export.check_images(module.model.config.image_size)[:10]
    assert export.max_abs_diff(data, module, images) <= 1e-4
    for by in (0.5, -0.5):  # torch's output above the file's, then below
        assert export.max_abs_diff(data, Shifted(module, by), images) == pytest.approx(0.5, abs=1e-4)


def test_an_onnx_suffix_in_capitals_is_accepted(runs, tmp_path):
    """M.ONNX is an .onnx file (as Windows names them, say)."""
    r = export_onnx(runs(), tmp_path / "M.ONNX", "encoder", check=False)
    assert r["path"] == str(tmp_path / "M.ONNX") and (tmp_path / "M.ONNX").is_file()


def test_the_check_finds_one_output_off_among_many(runs):
    """The check is the largest difference, not a typical one: one embedding value off by 0.5 among
    10 x 16 is refused as 0.5, not averaged away below the tolerance."""
    from torch import nn

    from fashionae.runfolder import RunFolder

    class OneOff(nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, x):
            y = self.module(x).clone()
            y[0, 0] += 0.5
            return y

    module = export.Part(RunFolder(runs()).load_model(), "encoder").eval()
    data = export.to_onnx(module).SerializeToString()
    images = export.check_images(module.model.config.image_size)[:10]
    assert export.max_abs_diff(data, OneOff(module), images) == pytest.approx(0.5, abs=1e-4)


def test_outputs_of_another_shape_are_refused_not_broadcast(runs):
    """torch's [N, 1, 16] against the file's [N, 16] would broadcast into a difference of something
    else: a shape that differs is said as such, a fashionae bug."""
    from torch import nn

    from fashionae.runfolder import RunFolder

    class Reshaped(nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, x):
            return self.module(x)[:, None]

    module = export.Part(RunFolder(runs()).load_model(), "encoder").eval()
    data = export.to_onnx(module).SerializeToString()
    images = export.check_images(module.model.config.image_size)[:4]
    with pytest.raises(UserError, match=r"^the exported file gives outputs of shape \[4, 16\], torch \[4, 1, 16\]; "):
        export.max_abs_diff(data, Reshaped(module), images)


def test_the_check_images_are_the_same_every_time_and_span_the_range():
    """Seeded, so that a check's difference is the same on every try; an all-dark and an all-bright
    image among them, where a layer saturates."""
    a, b = export.check_images((28, 24)), export.check_images((28, 24))
    assert a.shape == (100, 28, 24) and a.dtype == torch.uint8 and torch.equal(a, b)
    assert (a[0] == 0).all() and (a[1] == 255).all()


def test_the_check_runs_on_the_images_given(runs, tmp_path, monkeypatch):
    """images= replaces the 100 random ones (export_onnx's caller's own pictures, say)."""
    seen = []
    monkeypatch.setattr(export, "max_abs_diff", lambda data, module, images: seen.append(images) or 0.0)
    mine = torch.full((3, 28, 28), 7, dtype=torch.uint8)
    assert export_onnx(runs(), tmp_path / "m.onnx", "encoder", images=mine)["max_abs_diff"] == 0.0
    assert len(seen) == 1 and seen[0] is mine


def test_an_unknown_part_is_refused_by_name(runs, tmp_path):
    """In Python, where no option's choices stand guard: a part that is none of the three is named as
    unknown, with the three, not taken for a task of that name."""
    with pytest.raises(UserError, match=r"^unknown part 'decoder'; choose one of encoder, autoencoder, classifier$"):
        export_onnx(runs(), tmp_path / "m.onnx", "decoder")
    assert not (tmp_path / "m.onnx").exists()


def test_an_export_of_the_same_part_and_model_that_differs_is_refused_unless_forced(runs, tmp_path):
    """The same part of the same model goes past the early check, then is compared byte for byte: a
    file there that differs (written by another fashionae version, say) is kept unless --force."""
    path = tmp_path / "m.onnx"
    export_onnx(runs(), path, "encoder", check=False)
    graph = onnx.load(str(path))
    next(p for p in graph.metadata_props if p.key == "fashionae_version").value = "0.0.1"
    onnx.save(graph, str(path))
    before = path.read_bytes()
    with pytest.raises(UserError, match="already exists with other contents; nothing was written"):
        export_onnx(runs(), path, "encoder", check=False)
    assert path.read_bytes() == before
    export_onnx(runs(), path, "encoder", check=False, force=True)
    assert path.read_bytes() != before
