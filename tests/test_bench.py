import json

from fashionae.cli import main


def test_bench_json_contract(capsys):
    """The benchmark runs and reports its figures; speed itself is never asserted in tests."""
    assert main(["bench", "--windows", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("reference_img_s", "fashionae_img_s", "ratio", "gflops", "peak_fraction_fp32"):
        assert result[key] > 0
    assert (result["peak_fraction_bf16"] is None) == (not result["native_bf16"])
    assert abs(result["ratio"] - result["fashionae_img_s"] / result["reference_img_s"]) < 1e-9
