"""fashionae's compiled CPU kernels (``kernels.cpp``): ReLU + dropout, ReLU + dropout + 2x2
max-pooling, and ReLU + 2x2 max-pooling, each in one pass over memory forward and one backward;
``dropout.py`` runs them (``ReLUDropout``, ``relu_dropout_pool``).

In eager PyTorch the paper model's dropout is a dozen integer passes for the mask bits, four for
the mask, a product forward and one backward, then a ReLU pass and a max-pooling that writes int64
indices as many as its output's values: about a third of a training step on the CPU. The kernels
compute the same thing in one pass each way, bit for bit (the same masks, outputs and gradients:
``tests/test_kernels.py``), so whether they run changes no number, only the speed
(``benchmarks/README.md``).

They are built on first use by the machine's C++ compiler (``$CXX``, else ``c++``), for this CPU
(``-march=native``, or the ISA that ``ATEN_CPU_CAPABILITY`` caps PyTorch's own kernels to), once
per machine: the library is kept in ``~/.cache/fashionae/kernels/`` under a name that hashes the
source, the flags, torch's version and the CPU. Where they cannot be built (no compiler, say),
PyTorch's ops run instead, after a one-line note; ``FASHIONAE_KERNELS=0`` turns them off.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import torch
from torch.utils import cpp_extension

from .data import cache_dir
from .machine import cpu_fields

SOURCE = Path(__file__).with_name("kernels.cpp")
CPU_IDENTITY = ("vendor_id", "cpu family", "model", "model name", "stepping", "flags")  # what -march=native sees
MARCH = {"avx2": "x86-64-v3", "default": "x86-64-v2"}  # ATEN_CPU_CAPABILITY -> -march (else native)

_lock = threading.Lock()
_loaded: bool | None = None  # None: not tried yet in this process


def available() -> bool:
    """Whether ``torch.ops.fashionae`` holds the kernels, building and loading them the first
    time it is asked (a few seconds, once per machine)."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = _load()
        return _loaded


def _load() -> bool:
    if os.environ.get("FASHIONAE_KERNELS", "1") == "0":
        return False
    try:
        torch.ops.load_library(str(build()))
        return True
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        print(f"fashionae: note: the compiled CPU kernels are not available ({e}); PyTorch's ops run "
              f"instead: the same numbers, slower (FASHIONAE_KERNELS=0 skips this)", file=sys.stderr)
        return False


def compile_command(source: Path, output: Path) -> list[str]:
    march = MARCH.get(os.environ.get("ATEN_CPU_CAPABILITY", "").lower(), "native")
    includes = [f"-I{p}" for p in cpp_extension.include_paths()]
    libraries = [f"-L{p}" for p in cpp_extension.library_paths()]
    # -fopenmp links libgomp.so.1, which resolves to the copy torch has loaded: one OpenMP pool
    return [os.environ.get("CXX", "c++"), "-O3", f"-march={march}", "-fopenmp", "-fPIC", "-shared",
            "-std=c++17", *includes, str(source), "-o", str(output), *libraries, "-lc10", "-ltorch_cpu"]


def build() -> Path:
    """The kernels' shared library for this machine, compiled unless it already is."""
    command = compile_command(SOURCE, Path("OUT"))
    cpu = cpu_fields()
    key = hashlib.sha256("\n".join([SOURCE.read_text(), *command, torch.__version__,
                                    *(cpu.get(k, "") for k in CPU_IDENTITY)]).encode()).hexdigest()[:16]
    library = cache_dir() / "kernels" / f"fashionae_kernels_{key}.so"
    if library.exists():
        return library
    if shutil.which(command[0]) is None:
        raise OSError(f"no C++ compiler: {command[0]!r} is not on the PATH")
    library.parent.mkdir(parents=True, exist_ok=True)
    partial = library.with_suffix(f".{os.getpid()}.partial")  # renamed when whole: builders may race
    print("fashionae: building the CPU kernels for this machine (once, about 10 s)", file=sys.stderr, flush=True)
    done = subprocess.run(compile_command(SOURCE, partial), capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        errors = [line for line in done.stderr.splitlines() if "error" in line] or done.stderr.splitlines()[-1:]
        raise OSError(f"{command[0]} failed: {errors[0].strip() if errors else 'exit status ' + str(done.returncode)}")
    os.replace(partial, library)
    return library
