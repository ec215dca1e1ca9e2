"""fashionae's compiled CPU kernels (``kernels.cpp``): ReLU + dropout, ReLU + dropout + 2x2
max-pooling, and ReLU + 2x2 max-pooling, each in one pass over memory forward and one backward;
``dropout.py`` runs them (``ReLUDropout``, ``relu_dropout_pool``). And for inference, the paper
encoder's first stage (3x3 convolution of one channel + ReLU + pooling, bf16 or fp32), which
``layers.conv_relu_pool`` runs, and in fp32 the author's decoder's two layers (2x2 transposed
convolutions of stride 2, the first with its ReLU), which ``layers.BlockConvTranspose2d`` runs,
as it runs the last of them under bf16 autocast, in training too (``one_channel_forward`` and
``one_channel_backward``: sums in a fixed order that ``layers.py`` also computes with PyTorch's
ops, to the same bits, where the kernels do not run).

In eager PyTorch the paper model's dropout is a dozen integer passes for the mask bits, four for
the mask, a product forward and one backward, then a ReLU pass and a max-pooling that writes int64
indices as many as its output's values: about a third of a training step on the CPU. The kernels
compute the same thing in one pass each way, bit for bit (the same masks, outputs and gradients:
``tests/test_kernels.py``), so whether they run changes no number, only the speed
(``benchmarks/README.md``). The convolutions' kernels sum in a fixed order, oneDNN's where
``kernels.cpp`` says: in fp32 (an AVX2 EPYC, both layouts; on an AMX Xeon the decoder's layers
but not the first stage, 16-25 % of whose outputs differ in their last bits) ``layers.py`` checks
each shape's first batch against the layers and runs them only where they give the same bits.
The one exception is the first stage in bf16: bit for bit oneDNN's on AVX-512-BF16 in
channels-last memory, while where oneDNN runs other code (NCHW, an AVX2 cap, AMX) a value at a
rounding tie may differ by its last bit (measured: 5 to 18 in 63 million).

They are built on first use by the machine's C++ compiler (``$CXX``, else ``c++``), for this CPU
(``-march=native``, or the ISA that ``ATEN_CPU_CAPABILITY`` caps PyTorch's own kernels to), once
per machine and environment: the library is kept in ``$XDG_CACHE_HOME/fashionae/kernels/``
(``~/.cache/...``) under a name that hashes the source, the compile command, torch's version
and the CPU (``library_path``). Where they cannot be built (no compiler, say; or not Linux: only an
ELF library is taken), PyTorch's ops run instead, after a one-line note; ``FASHIONAE_KERNELS=0``
turns them off without a word.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from .files import cache_dir
from .errors import is_main_process
from .machine import cpu_fields

SOURCE = Path(__file__).with_name("kernels.cpp")
STALE_BUILD_SECONDS = 600  # a partial library this old is a build that was killed: removed
# what -march=native sees of the CPU, in /proc/cpuinfo: x86's fields, then ARM's
CPU_IDENTITY = ("vendor_id", "cpu family", "model", "model name", "stepping", "flags",
                "CPU implementer", "CPU architecture", "CPU variant", "CPU part", "CPU revision", "Features")
X86_MARCH = {"avx2": "x86-64-v3", "default": "x86-64-v2"}  # ATEN_CPU_CAPABILITY -> -march (else native)

_lock = threading.Lock()
_loaded: bool | None = None  # None: not tried yet in this process


def available() -> bool:
    """Whether ``torch.ops.fashionae`` holds the kernels, building and loading them the first
    time it is asked (a few seconds, once per machine and environment)."""
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
        _say(f"fashionae: note: the compiled CPU kernels are not available ({e}); PyTorch's ops run "
             f"instead: the same numbers, slower (FASHIONAE_KERNELS=0 skips this)")
        return False


def torch_uses_libgomp() -> bool:
    """Whether the OpenMP runtime torch has loaded is GCC's ``libgomp.so.1``: then a library built
    with ``-fopenmp`` resolves to that same copy, one thread pool. Elsewhere (another runtime,
    no /proc) the kernels are built without OpenMP, on one thread, rather than with a second pool."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return False
    return any(line.endswith("/libgomp.so.1") for line in maps.splitlines())


def compile_command(source: Path, output: Path) -> list[str]:
    root = Path(torch.__file__).parent  # its headers and libraries, as torch.utils.cpp_extension finds them
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    # the cap read as torch reads it (machine.ATEN_CAPABILITIES: AVX2 in capitals caps nothing)
    march = X86_MARCH.get(os.environ.get("ATEN_CPU_CAPABILITY", ""), "native") if x86 else "native"
    openmp = ["-fopenmp"] if torch_uses_libgomp() else []
    # gcc vectorizes for 256-bit registers on CPUs that have 512-bit ones, unless asked: the dropout
    # kernels' integer mixing runs 1.2-1.3x faster in 512-bit ones on an AMX Xeon (the bits are
    # the same: no float sum is reordered)
    wide = ["-mprefer-vector-width=512"] if x86 else []
    try:
        compiler = shlex.split(cxx := os.environ.get("CXX", "c++")) or ["c++"]  # (CXX="": the default)
    except ValueError as e:  # (an unclosed quote: OSError, so that PyTorch's ops run after one note)
        raise OSError(f"CXX={cxx!r} is no command line: {str(e).lower()}") from None
    return [*compiler, "-O3", f"-march={march}", *wide, *openmp, "-fPIC", "-shared",
            "-std=c++17", "-DNDEBUG", f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}",
            f"-I{root / 'include'}", f"-I{root / 'include' / 'torch' / 'csrc' / 'api' / 'include'}",
            str(source), "-o", str(output), f"-L{root / 'lib'}", "-lc10", "-ltorch_cpu"]


def library_path() -> Path:
    """Where this machine's build is kept: named by a hash of the source, the compile command
    (compiler, flags, torch's paths), torch's version and the CPU, so a machine whose CPU changes
    builds anew instead of running another CPU's instructions. Not by where the source is: every
    copy of the same source (another checkout, an editable install) takes the same build."""
    command = compile_command(Path(SOURCE.name), Path("OUT"))
    cpu = cpu_fields()
    key = hashlib.sha256("\n".join([SOURCE.read_text(), *command, torch.__version__, platform.machine(),
                                    *(cpu.get(k, "") for k in CPU_IDENTITY)]).encode()).hexdigest()[:16]
    return cache_dir() / "kernels" / f"fashionae_kernels_{key}.so"


def whole_elf(path: Path) -> bool:
    """Whether ``path`` is an ELF file as long as its header says (a cut one would crash the
    process that maps it, with no error to catch)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
        size = path.stat().st_size
    except OSError:
        return False
    if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit ELF only
        return False
    order = "<" if head[5] == 1 else ">"
    (sections_at,) = struct.unpack_from(order + "Q", head, 0x28)
    entry, count = struct.unpack_from(order + "HH", head, 0x3A)
    return sections_at + entry * count <= size


def _say(line: str) -> None:
    """A note on stderr, from torchrun's process 0 alone (every process builds and loads)."""
    if is_main_process():
        print(line, file=sys.stderr, flush=True)


def build() -> Path:
    """The kernels' shared library for this machine, compiled unless it already is."""
    library = library_path()
    # a build killed midway (one takes ~10 s) left its partial library: gone once it is old, even
    # where the next build made the library (a younger one may be a build racing this process)
    for stale in library.parent.glob(f"{library.stem}.*.partial"):
        with contextlib.suppress(OSError):  # (another process took it first)
            if time.time() - stale.stat().st_mtime > STALE_BUILD_SECONDS:
                stale.unlink()
    if library.exists() and whole_elf(library):
        return library
    command = compile_command(SOURCE, Path("OUT"))
    if shutil.which(command[0]) is None:
        raise OSError(f"no C++ compiler: {command[0]!r} is not on the PATH")
    library.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own, renamed into place when whole: builders may race, across hosts too
    fd, partial = tempfile.mkstemp(dir=library.parent, prefix=library.stem + ".", suffix=".partial")
    os.close(fd)
    try:
        _say("fashionae: building the CPU kernels for this machine (once, about 10 s)")
        compile_library(compile_command(SOURCE, Path(partial)))
        if not whole_elf(Path(partial)):
            raise OSError(f"{command[0]} wrote no whole library")
        os.replace(partial, library)
    finally:
        Path(partial).unlink(missing_ok=True)
    return library


def compile_library(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        # the first line that says why: a compiler's error, or the linker's own ("final link failed: No space
        # left on device", before collect2's "error: ld returned 1 exit status", which says only that it failed)
        errors = ([line for line in done.stderr.splitlines() if "error" in line or "failed" in line]
                  or done.stderr.splitlines()[-1:])
        raise OSError(f"{command[0]} failed: {errors[0].strip() if errors else 'exit status ' + str(done.returncode)}")
