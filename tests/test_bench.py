import json

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
