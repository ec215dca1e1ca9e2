import json
import re

import pytest

from fashionae import kernels
from fashionae.bench import machine_kind
from fashionae.machine import cpu_info, describe_cpu
from fashionae.cli import main


def test_bench_json_contract(capsys, tmp_path):
    """The benchmark runs and reports its figures and machine; speed itself is never asserted."""
    assert main(["bench", "--windows", "1", "--images", "300", "--json", "--profile", "--device", "cpu",
                 "--out", str(tmp_path / "b.json")]) == 0
    out, err = capsys.readouterr()
    (line,) = out.strip().splitlines()  # stdout is the JSON document alone; the profile goes to stderr
    result = json.loads(line)
    assert "aten::convolution_backward" in err and "Self CPU time total" in err
    # the operators that take the time themselves, first
    lines = err.splitlines()
    header = next(i for i, line in enumerate(lines) if "Self CPU %" in line)
    rows = lines[header + 2:next(i for i in range(header + 2, len(lines)) if lines[i].startswith("---"))]
    shares = [float(re.split(r"\s{2,}", row.strip())[1].rstrip("%")) for row in rows]
    assert len(shares) == 15 and shares == sorted(shares, reverse=True)
    assert result == json.loads((tmp_path / "b.json").read_text())
    for key in ("reference_img_s", "fashionae_img_s", "ratio", "epoch_ratio", "eval_ratio", "gflops",
                "peak_fraction_fp32"):
        assert result[key] > 0
    assert (result["peak_fraction_bf16"] is None) == (not result["native_bf16"])
    assert abs(result["ratio"] - result["fashionae_img_s"] / result["reference_img_s"]) < 1e-9
    assert abs(result["epoch_ratio"] - result["reference_epoch_s"] / result["fashionae_epoch_s"]) < 1e-9
    assert abs(result["eval_ratio"] - result["reference_eval_s"] / result["fashionae_eval_s"]) < 1e-9
    # one window: its evaluation is its epoch less its training pass
    assert abs(result["fashionae_eval_s"] - (result["fashionae_epoch_s"] - 300 / result["fashionae_img_s"])) < 1e-9
    assert abs(result["reference_eval_s"] - (result["reference_epoch_s"] - 300 / result["reference_img_s"])) < 1e-9
    # one window: its achieved rate against the peaks measured beside it
    assert abs(result["peak_fraction_fp32"] - result["gflops"] / result["peak_gflops_fp32"]) < 1e-9
    if result["native_bf16"]:
        assert abs(result["peak_fraction_bf16"] - result["gflops"] / result["peak_gflops_bf16"]) < 1e-9
    assert result["cpu"]["model_name"] and isinstance(result["isa"], list) and "isa_caps" in result
    assert ("target_ratio" in result) and result["machine_kind"] in ("native-bf16", "avx2", "other")
    assert result["cpu_kernels"] == kernels.available()


def test_the_cpu_and_its_isa_come_from_cpuinfo_and_decide_the_machine_kind(tmp_path, monkeypatch):
    import fashionae.bench as bench
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\n"
                       "model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 fma\n\n"
                       "processor\t: 1\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu\n")
    cpu = cpu_info(cpuinfo)
    assert (cpu["vendor"], cpu["model_name"], cpu["family"], cpu["model"]) == ("AuthenticAMD", "AMD EPYC", "26", "2")
    assert cpu["isa"] == ["AVX2", "AVX-512", "AVX-512-BF16"]  # the first processor's flags, in a fixed order
    assert "family 26, model 2), ISA AVX2 AVX-512 AVX-512-BF16" in describe_cpu(cpu)
    cpuinfo.write_text("flags : fpu sse2\n")
    assert cpu_info(cpuinfo)["isa"] == [] and "ISA none of AVX2" in describe_cpu(cpu_info(cpuinfo))
    assert machine_kind("cpu", []) == "other" and machine_kind("cuda", []) == "gpu"
    monkeypatch.setattr(bench, "native_bf16", lambda device: False)  # e.g. a torch without bf16 kernels
    assert machine_kind("cpu", ["AVX2", "AMX"]) == "avx2"
    monkeypatch.setattr(bench, "native_bf16", lambda device: True)
    assert machine_kind("cpu", ["AVX2", "AMX"]) == machine_kind("cpu", ["AVX-512-BF16"]) == "native-bf16"
    assert machine_kind("cpu", ["AVX2"]) == "avx2"


def test_an_isa_capped_by_the_environment_is_recorded_and_shown(monkeypatch):
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY"):
        monkeypatch.delenv(name, raising=False)
    assert cpu_info()["isa_caps"] == {} and "capped" not in describe_cpu(cpu_info())
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    cpu = cpu_info()
    assert cpu["isa_caps"] == {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    assert "(capped: ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2)" in describe_cpu(cpu)
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "AVX2")  # no value of torch's (it warns, and caps nothing)
    assert cpu_info()["isa_caps"] == {"ONEDNN_MAX_CPU_ISA": "AVX2"}


def test_the_speed_probe_draws_the_masks_its_run_will(monkeypatch):
    """``study --plan`` times each run as it will train: with its own dropout masks (a stock or
    mersenne run, a resumed 0.2 folder, does not get the counter masks' speed), and on the
    device set up as training sets it up (the heap's setting on the CPU, TF32 on CUDA)."""
    from dataclasses import replace

    from fashionae import bench, dropout, training
    from fashionae.models import ModelConfig
    from fashionae.training import TrainConfig
    configured, configure = [], training.configure_device
    monkeypatch.setattr(training, "configure_device", lambda cfg: configured.append(cfg) or configure(cfg))
    calls, real = [], dropout.draw_key  # every draw of counter masks starts with one (kernels or not)
    monkeypatch.setattr(dropout, "draw_key", lambda: calls.append(1) or real())
    t = TrainConfig(batch_size=10, device="cpu", dropout_masks="stock").resolved()
    bench.probe_speed(ModelConfig(latent=16), t, steps=1)
    assert not calls
    bench.probe_speed(ModelConfig(latent=16), replace(t, dropout_masks="counter"), steps=1)
    assert calls and configured == [t, replace(t, dropout_masks="counter")]


def test_the_reference_is_the_paper_autoencoder_in_stock_layers():
    """The baseline trains the same function as fashionae's paper autoencoder (its parameters
    copied over in order: the same reconstruction in eval mode, and in training mode with
    stock dropout drawn from the same seed, so its dropout layers sit where the author's do,
    at the same rate), and none of fashionae's layers, whose kernels would speed it up."""
    import torch
    from fashionae.bench import author_model
    from fashionae.dropout import use_dropout_masks
    from fashionae.models import ModelConfig, build_model
    torch.manual_seed(0)
    ours, reference = build_model(ModelConfig()), author_model()
    assert [p.shape for p in ours.parameters()] == [p.shape for p in reference.parameters()]
    assert all(type(m).__module__.startswith("torch.nn") for m in reference.modules())
    use_dropout_masks(ours, "stock")
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        for mine, theirs in zip(ours.parameters(), reference.parameters()):
            theirs.copy_(mine)
        assert torch.equal(reference.eval()(x), ours.eval().reconstruct(x))
        torch.manual_seed(1); trained = reference.train()(x)
        torch.manual_seed(1); assert torch.equal(trained, ours.train().reconstruct(x))


def test_a_bad_out_is_refused_before_measuring_and_a_file_is_kept(capsys, tmp_path, monkeypatch):
    import fashionae.bench as bench

    def measured(**kwargs):
        raise AssertionError("measured before --out was checked")
    monkeypatch.setattr(bench, "run_bench", measured)
    notes, photo = tmp_path / "notes.json", tmp_path / "photo.jpg"
    notes.write_text("my notes")
    photo.write_text("my photo")
    (tmp_path / "a-file").write_text("")
    for out, said in ((notes, f"--out {notes} already exists; nothing was measured: choose another file, or pass "
                               "--force to replace it"),
                      (tmp_path, f"--out {tmp_path} is a folder; give the JSON file to write"),
                      (tmp_path / "a-file" / "b.json", f"--out's folder {tmp_path / 'a-file'} is a file"),
                      (photo, f"--out {photo} must be a .json file, e.g. bench.json")):
        assert main(["bench", "--out", str(out)]) == 2
        assert said in capsys.readouterr().err
    assert main(["bench", "--out", str(photo), "--force"]) == 2  # --force replaces a JSON file only
    assert notes.read_text() == "my notes" and photo.read_text() == "my photo"


def test_bench_options_reach_the_benchmark_and_force_replaces_a_json_file(capsys, tmp_path, monkeypatch):
    import fashionae.bench as bench
    seen = []
    monkeypatch.setattr(bench, "run_bench", lambda **kwargs: seen.append(kwargs))
    assert main(["bench"]) == 0  # the defaults its help names (--device: auto)
    assert seen.pop() == dict(windows=bench.WINDOWS, as_json=False, show_profile=False, device="auto", out=None,
                              images=bench.IMAGES)
    old = tmp_path / "old.json"
    old.write_text("{}")
    assert main(["bench", "--windows", "2", "--images", "300", "--device", "cpu", "--json", "--profile",
                 "--out", str(old), "--force"]) == 0
    assert seen.pop() == dict(windows=2, as_json=True, show_profile=True, device="cpu", out=str(old), images=300)
    assert main(["bench", "--out", str(tmp_path / "B.JSON")]) == 0  # .json in any case
    assert seen.pop()["out"] == str(tmp_path / "B.JSON")


def test_every_isa_flag_cap_and_number_is_read_and_a_machine_without_cpuinfo_is_described(tmp_path, monkeypatch):
    """AMX is the amx_bf16 flag (not amx_tile alone); each of the three ISA caps is recorded, and
    one set empty is no cap; the stepping is kept; without /proc/cpuinfo (not Linux) the CPU is
    described, not an error."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("vendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\nstepping\t: 8\n"
                       "flags\t\t: avx2 amx_tile amx_int8\n")
    assert cpu_info(cpuinfo)["isa"] == ["AVX2"] and cpu_info(cpuinfo)["stepping"] == "8"
    cpuinfo.write_text("flags\t\t: avx2 amx_tile amx_bf16\n")
    assert cpu_info(cpuinfo)["isa"] == ["AVX2", "AMX"]
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "AVX2")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "")  # set, but empty: no cap
    assert cpu_info(cpuinfo)["isa_caps"] == {"DNNL_MAX_CPU_ISA": "AVX2"}
    missing = cpu_info(tmp_path / "none")
    assert missing["isa"] == [] and missing["model_name"] == "?" and "ISA none of AVX2" in describe_cpu(missing)
    import torch
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)
        assert cpu_info(cpuinfo)["threads"] == threads + 1  # the threads it runs on, as set now
    finally:
        torch.set_num_threads(threads)


def _fake_bench(monkeypatch, ref, mine, peaks, *, isa, native, flops=1e6, images=200, **kwargs):
    """``run_bench`` with its measurements replaced by the figures given (each loop's windows after
    a warm-up window, the (fp32, bf16) matmul peaks of each window), on a CPU of the ISA given:
    what it makes of the figures, with nothing timed."""
    import torch

    import fashionae.bench as bench
    made = {"peaks": []}

    class Loop:
        def __init__(self, images, where, windows):
            made[type(self).__name__] = (len(images), where)
            self.windows = iter([(99.0, 999.0), *windows])  # the warm-up's, never counted

        def window(self):
            return next(self.windows)

    class Reference(Loop):
        def __init__(self, images, device):
            super().__init__(images, device, ref)

    class Trainer(Loop):
        def __init__(self, images, cfg):
            super().__init__(images, cfg.device, mine)

    measured = {torch.float32: iter(p[0] for p in peaks), torch.bfloat16: iter(p[1] for p in peaks)}
    monkeypatch.setattr(bench, "Reference", Reference)
    monkeypatch.setattr(bench, "Trainer", Trainer)
    monkeypatch.setattr(bench, "matmul_peak", lambda dtype, device: made["peaks"].append(device) or next(measured[dtype]))
    monkeypatch.setattr(bench, "flops_per_image", lambda: flops)
    monkeypatch.setattr(bench, "_images", lambda n: torch.zeros((n, 28, 28), dtype=torch.uint8))
    cpu = dict(cpu_info(), isa=isa, vendor="V", model_name="M", family="6", model="143", stepping="8")
    monkeypatch.setattr(bench, "cpu_info", lambda: cpu)
    monkeypatch.setattr(bench, "native_bf16", lambda device: native and device == "cpu")
    return bench.run_bench(windows=len(ref), images=images, **kwargs), made


def test_the_figures_are_medians_over_windows_and_fractions_of_each_windows_own_peak(monkeypatch, capsys):
    """Three windows whose medians, evaluations and peak fractions all differ from the figures a
    slip would give (the mean, the median epoch less the median training pass, the fraction of the
    median peak, a window's rate against another window's peak); --device auto is resolved."""
    ref = [(2.0, 5.0), (1.0, 4.0), (4.0, 6.0)]
    mine = [(0.5, 2.0), (1.0, 1.0), (0.25, 1.5)]
    peaks = [(100.0, 400.0), (200.0, 800.0), (300.0, 1200.0)]
    result, made = _fake_bench(monkeypatch, ref, mine, peaks, isa=["AVX2", "AMX"], native=True, device="auto",
                               as_json=True)
    assert made["Reference"] == made["Trainer"] == (200, "cpu") and made["peaks"] == ["cpu"] * 6
    assert result["device"] == "cpu" and result["windows"] == 3
    assert result["cpu"] == {"vendor": "V", "model_name": "M", "family": "6", "model": "143", "stepping": "8"}
    assert result["isa"] == ["AVX2", "AMX"] and result["machine_kind"] == "native-bf16"
    expected = {"reference_img_s": 100.0, "fashionae_img_s": 400.0, "ratio": 4.0,
                "reference_epoch_s": 5.0, "fashionae_epoch_s": 1.5, "epoch_ratio": 5.0 / 1.5,
                "reference_eval_s": 3.0, "fashionae_eval_s": 1.25, "eval_ratio": 3.0 / 1.25,
                "gflops": 0.4, "mflop_per_image": 1.0, "peak_gflops_fp32": 200.0, "peak_gflops_bf16": 800.0,
                "peak_fraction_fp32": 0.8 / 300, "peak_fraction_bf16": 0.8 / 1200}
    assert {k: result[k] for k in expected} == pytest.approx(expected, rel=1e-12)
    # the native-bf16 kind's target: the training ratio is reached, the whole epoch's is not
    assert (result["target_ratio"], result["target_peak_fraction_bf16"]) == (4.0, 0.25)
    assert result["native_bf16"] is True and result["reached"] is False
    assert json.loads(capsys.readouterr().out) == result


def test_the_target_of_each_machine_kind_is_reached_at_its_bounds(monkeypatch, capsys):
    # native bf16: ratio 4, the whole epoch's ratio as high, a quarter of the bf16 peak: reached, just
    result, _ = _fake_bench(monkeypatch, [(2.0, 4.0)], [(0.5, 1.0)], [(2.0, 4.0)], isa=["AVX-512-BF16"],
                            native=True, flops=2.5e6)
    assert (result["ratio"], result["epoch_ratio"], result["peak_fraction_bf16"]) == (4.0, 4.0, 0.25)
    assert result["reached"] is True
    out = capsys.readouterr().out
    assert "machine kind native-bf16, target ratio 4.0" in out
    assert ("target for the native-bf16 kind: ratio >= 4.0x and >= 25% of the bf16 peak, whole-epoch ratio "
            ">= training ratio: reached") in out
    # a fifth of the bf16 peak is short of it
    result, _ = _fake_bench(monkeypatch, [(2.0, 4.0)], [(0.5, 1.0)], [(2.0, 5.0)], isa=["AVX-512-BF16"],
                            native=True, flops=2.5e6)
    assert result["peak_fraction_bf16"] == 0.2 and result["reached"] is False
    assert "not reached" in capsys.readouterr().out
    # AVX2 (AMX without native bf16 in torch is not native): ratio 2, no bf16 fraction; --images 100 is a batch
    result, _ = _fake_bench(monkeypatch, [(1.0, 2.0)], [(0.5, 1.0)], [(2.0, 4.0)], isa=["AVX2", "AMX"],
                            native=False, images=100)
    assert (result["machine_kind"], result["target_ratio"], result["target_peak_fraction_bf16"]) == ("avx2", 2.0, None)
    assert result["peak_fraction_bf16"] is None and result["native_bf16"] is False and result["reached"] is True
    result, _ = _fake_bench(monkeypatch, [(1.0, 2.0)], [(0.5, 2.0)], [(2.0, 4.0)], isa=["AVX2"], native=False)
    assert result["ratio"] == 2.0 and result["epoch_ratio"] == 1.0 and result["reached"] is False
    # another CPU: no target
    result, _ = _fake_bench(monkeypatch, [(1.0, 2.0)], [(0.5, 1.0)], [(2.0, 4.0)], isa=[], native=False)
    assert (result["machine_kind"], result["target_ratio"], result["reached"]) == ("other", None, None)
    assert "target ratio none set" in capsys.readouterr().out


def test_the_reference_loop_trains_and_evaluates_as_the_authors_did(monkeypatch):
    """Per-sample images scaled to [0, 1], batches of 100, shuffled for training; default Adam,
    one step a batch in training mode; evaluation in eval mode without gradients, its summed MSE
    read back batch by batch; a window is the training pass, then the training set and a sixth
    of it evaluated."""
    from types import SimpleNamespace

    import torch

    import fashionae.bench as bench
    images = torch.randint(0, 256, (300, 28, 28), dtype=torch.uint8)
    torch.manual_seed(5)
    ref = bench.Reference(images, "cpu")
    x, target = ref.train_loader.dataset[3]
    assert torch.equal(x, images[3].unsqueeze(0).float() / 255) and torch.equal(target, x)
    assert ref.train_loader.batch_size == ref.eval_train.batch_size == ref.eval_val.batch_size == 100
    assert isinstance(ref.train_loader.sampler, torch.utils.data.RandomSampler)
    assert len(ref.eval_train.dataset) == 300 and len(ref.eval_val.dataset) == 50
    assert torch.equal(ref.eval_val.dataset[49][0], images[49].unsqueeze(0).float() / 255)
    assert type(ref.opt) is torch.optim.Adam
    assert ref.opt.defaults == torch.optim.Adam(ref.model.parameters()).defaults
    torch.manual_seed(6)
    again = bench.Reference(images, "cpu")  # seeded: the same weights whatever ran before
    assert all(torch.equal(a, b) for a, b in zip(ref.model.parameters(), again.model.parameters()))
    seen, zeroed = [], []
    ref.model.register_forward_pre_hook(lambda m, a: seen.append((m.training, torch.is_grad_enabled(), len(a[0]))))
    zero_grad = ref.opt.zero_grad
    monkeypatch.setattr(ref.opt, "zero_grad", lambda *a, **k: zeroed.append(1) or zero_grad(*a, **k))
    ref.model.eval()
    ref.train_pass()
    assert seen == [(True, True, 100)] * 3 and len(zeroed) == 3
    assert all(s["step"] == 3 for s in ref.opt.state.values()) and len(ref.opt.state) == len(list(ref.model.parameters()))
    seen.clear()
    ref.model.train()
    total = ref.eval_pass(ref.eval_train)
    assert seen == [(False, False, 100)] * 3
    with torch.no_grad():
        xs = images.unsqueeze(1).float() / 255
        mse = [torch.nn.functional.mse_loss(ref.model(xs[i:i + 100]), xs[i:i + 100]).item() for i in (0, 100, 200)]
    assert type(total) is float and total == pytest.approx(100 * sum(mse), rel=1e-6)
    ref.model.train()
    with torch.no_grad():
        expected = torch.nn.functional.mse_loss(ref.model.eval()(xs[:50]), xs[:50]).item() * 50
    assert ref.eval_pass(ref.eval_val) == pytest.approx(expected, rel=1e-6)
    # a window, on a clock that the passes move on
    now, calls = [0.0], []
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    monkeypatch.setattr(ref, "train_pass", lambda: calls.append("train") or now.__setitem__(0, now[0] + 2.0))
    monkeypatch.setattr(ref, "eval_pass", lambda loader: calls.append(loader) or now.__setitem__(
        0, now[0] + (1.0 if loader is ref.eval_train else 0.25)))
    assert ref.window() == (2.0, 3.25)
    assert calls == ["train", ref.eval_train, ref.eval_val]


def test_the_trainer_window_is_one_epoch_of_fit_with_a_sixth_held_out(monkeypatch):
    import torch

    import fashionae.bench as bench
    from fashionae.training import TrainConfig
    images = torch.randint(0, 256, (300, 28, 28), dtype=torch.uint8)
    fitted = []

    def fit(model, train, val, cfg):
        fitted.append((model, train, val, cfg))
        return [{"train_images_per_second": 150.0, "seconds": 4.5}]
    monkeypatch.setattr(bench, "fit", fit)
    cfg = TrainConfig(epochs=1, batch_size=100, device="cpu").validate().resolved()
    torch.manual_seed(5)
    trainer = bench.Trainer(images, cfg)
    assert trainer.window() == (2.0, 4.5)
    ((model, (x, y), (xv, yv), c),) = fitted
    assert model is trainer.model and c is cfg and torch.equal(x, images) and torch.equal(xv, images[:50])
    assert len(y) == 300 and len(yv) == 50
    torch.manual_seed(6)
    again = bench.Trainer(images, cfg)  # seeded: the same weights whatever ran before
    assert all(torch.equal(a, b) for a, b in zip(trainer.model.parameters(), again.model.parameters()))


def test_without_the_dataset_the_bench_times_random_images_and_downloads_nothing(monkeypatch):
    import torch

    import fashionae.bench as bench
    import fashionae.data as data
    from fashionae.errors import UserError
    asked = []

    def missing(*args, **kwargs):
        asked.append(kwargs)
        raise UserError("no dataset here")
    monkeypatch.setattr(data, "load_fashion_mnist", missing)
    images = bench._images(150)
    assert asked == [{"download": False}]
    assert images.shape == (150, 28, 28) and images.dtype == torch.uint8


def test_the_flops_per_image_are_those_of_a_training_step_counted_by_torch():
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import fashionae.bench as bench
    from fashionae.models import ModelConfig, build_model
    with FlopCounterMode(display=False) as counter:
        build_model(ModelConfig())(torch.rand(2, 1, 28, 28)).loss.backward()
    assert bench.flops_per_image() == counter.get_total_flops() / 2


def test_the_matmul_peak_counts_2_n_cubed_per_product_timed_after_a_warm_up(monkeypatch):
    from types import SimpleNamespace

    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    import fashionae.bench as bench
    ticks = []
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=lambda: ticks.append(float(len(ticks))) or ticks[-1]))
    products = []

    class Products(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten.mm.default:
                products.append((args[0].dtype, args[1].dtype, tuple(args[0].shape), tuple(args[1].shape)))
            return func(*args, **(kwargs or {}))
    with Products():
        peak = bench.matmul_peak(torch.bfloat16, "cpu", seconds=2.5)
    # the clock reads 0 after the warm-up, 1 and 2 before the two timed products, 3 to stop, 4 at the end
    n = 1024
    assert products == [(torch.bfloat16, torch.bfloat16, (n, n), (n, n))] * 3 and ticks == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert peak == pytest.approx(2 * n ** 3 * 2 / 4.0 / 1e9, rel=1e-12)


def test_the_speed_probe_is_the_best_of_three_timings_a_step_after_a_warm_up(monkeypatch):
    from dataclasses import replace
    from types import SimpleNamespace

    import fashionae.bench as bench
    from fashionae import training
    from fashionae.errors import UserError
    from fashionae.models import ModelConfig
    now, shapes = [0.0], []
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    step_times = iter([50.0, 3.0, 3.0, 1.0, 2.0, 4.0, 4.0])  # the warm-up, then three timings of two steps
    eval_times = iter([50.0, 1.0, 1.0, 0.5, 0.5, 2.0, 2.0])

    def train_step(model, opt, x, y, t):
        shapes.append((tuple(x.shape), len(y)))
        now[0] += next(step_times)

    def evaluate(model, x, y, t):
        shapes.append((tuple(x.shape), len(y)))
        now[0] += next(eval_times)
    monkeypatch.setattr(training, "train_step", train_step)
    monkeypatch.setattr(training, "evaluate", evaluate)
    t = training.TrainConfig(batch_size=30, device="cpu").resolved()
    model = ModelConfig(latent=16, image_size=(16, 24))
    assert bench.probe_speed(model, t, steps=2) == (30 / 1.5, 2 * training.EVAL_BATCH / 0.5)
    e = 2 * training.EVAL_BATCH  # two batches
    assert shapes == [((30, 1, 16, 24), 30)] * 7 + [((e, 1, 16, 24), e)] * 7
    # a model too large for the machine is refused before it is built
    monkeypatch.setattr(training, "memory_bytes", lambda device: 1)
    monkeypatch.setattr(bench, "build_model", lambda *a: (_ for _ in ()).throw(AssertionError("built")))
    with pytest.raises(UserError, match="more than this machine's"):
        bench.probe_speed(model, replace(t), steps=1)


def test_the_profile_is_of_an_epoch_after_a_first_one(monkeypatch):
    import torch

    import fashionae.bench as bench
    from fashionae.training import TrainConfig
    profiled = []

    def fit(model, train, val, cfg):
        profiled.append(torch.autograd._profiler_enabled())
        torch.ones(4) @ torch.ones(4)
    monkeypatch.setattr(bench, "fit", fit)
    table = bench.profile_step(TrainConfig(epochs=1, batch_size=100, device="cpu").validate().resolved())
    assert profiled == [False, True] and "aten::dot" in table
