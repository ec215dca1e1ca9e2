"""The machine fashionae runs on, as every run and benchmark records it: the CPU (vendor, model,
family/model numbers), its ISA extensions, and any cap on the ISA set in the environment."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

CPUINFO = Path("/proc/cpuinfo")
CGROUP_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))  # v2, v1
ISA_CAPS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")  # env settings that
# keep oneDNN and PyTorch's own kernels below what the CPU has (say, AVX2 code on an AMX Xeon)
ATEN_CAPABILITIES = ("default", "avx2", "avx512", "vsx", "zvector", "sve256")  # the values torch takes for
# ATEN_CPU_CAPABILITY, spelt so (it warns of any other, AVX2 in capitals too, and caps nothing)


def cpu_fields(cpuinfo: Path = CPUINFO) -> dict[str, str]:
    """The first processor's lines of /proc/cpuinfo, by name (empty where there is none)."""
    fields: dict[str, str] = {}
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_info(cpuinfo: Path = CPUINFO) -> dict:
    """Vendor, model name, family/model numbers and the ISA extensions that matter here, from
    /proc/cpuinfo (some virtual machines name themselves only "AMD EPYC": the numbers tell), and
    the environment settings that cap the ISA the kernels use (``isa_caps``)."""
    fields = cpu_fields(cpuinfo)
    flags = set(fields.get("flags", "").split())
    isa = [name for name, flag in (("AVX2", "avx2"), ("AVX-512", "avx512f"), ("AVX-512-BF16", "avx512_bf16"),
                                   ("AMX", "amx_bf16")) if flag in flags]
    return {"vendor": fields.get("vendor_id", platform.machine()), "model_name": fields.get("model name", "?"),
            "family": fields.get("cpu family"), "model": fields.get("model"), "stepping": fields.get("stepping"),
            "isa": isa, "isa_caps": {k: v for k in ISA_CAPS if (v := os.environ.get(k))
                                     and (k != "ATEN_CPU_CAPABILITY" or v in ATEN_CAPABILITIES)},
            "threads": torch.get_num_threads()}


def describe_cpu(cpu: dict) -> str:
    """``cpu_info()`` in one line, as every benchmark prints it."""
    caps = " ".join(f"{k}={v}" for k, v in cpu["isa_caps"].items())
    return (f"{cpu['model_name']} (vendor {cpu['vendor']}, family {cpu['family']}, model {cpu['model']}), "
            f"ISA {' '.join(cpu['isa']) or 'none of AVX2/AVX-512/AVX-512-BF16/AMX'}"
            + (f" (capped: {caps})" if caps else "") + f", {cpu['threads']} threads")


def memory_bytes(device: str) -> int | None:
    """The memory a run on ``device`` ("cpu" or "cuda") has at most: the GPU's, or this machine's
    (less a container's limit); None where it cannot be told."""
    if device == "cuda":
        return torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        return None
    for limit in CGROUP_LIMITS:  # a container's limit: "max" (v2), or a huge number (v1), where there is none
        try:
            text = limit.read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total
