"""Which encoder backend a machine should run, from the instruction sets its CPU offers.

``auto`` resolves, in order (bench/embed.py measures every backend and prints whether ``auto``
is within 10 % of the fastest):

* ``torch-bf16``: sentence-transformers on torch with the model in bfloat16, where the CPU has AMX
  (``amx_bf16``): on a 2-core Xeon with AMX and VNNI (other processes paused) it ran
  multilingual-e5-small at 3.2x torch fp32 against 1.4x for ONNX int8, cosine 0.99996 to fp32 at
  worst. Its kernels follow the batch's shape, so the encoder runs every text at a shape set by its
  own length (``encoder._BF16_WIDTH_STEP``) and a text gets the same bits in any batch;
* ``onnx-int8``: ONNX Runtime with int8 matrix products, where the CPU has AVX-512 VNNI (or AVX-VNNI)
  or is an ARM64 with dot-product instructions. bf16 instructions without AMX do not change that: on
  a 2-core AMD EPYC with AVX-512 VNNI and bf16, int8 ran at 1.90-2.01x torch fp32 and bf16 at
  1.51-1.53x in two runs;
* ``onnx-int8`` again on other x86 CPUs with AVX2 (uint8 x uint8 products): on a 2-core AMD EPYC
  (AVX2, no VNNI) it was the fastest backend in every run, 1.6-2.3x torch fp32 when the machine was
  busy but only 1.1-1.2x when quiet;
* ``torch``: fp32 everywhere else.

int8 quantises each token row with its own scale (``embeddings.int8_rows``), so it too gives a text
the same bits in any batch.
"""

from __future__ import annotations

import os
import platform
from functools import lru_cache

#: Backends a user may name; ``auto`` is resolved to one of the others.
CONCRETE_BACKENDS = ("torch", "torch-bf16", "onnx", "onnx-int8")


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass  # not Linux: no flags, so the portable choices below
    return frozenset()


def is_arm64() -> bool:
    return platform.machine().lower() in {"arm64", "aarch64"}


def has_amx() -> bool:
    return "amx_bf16" in cpu_flags()


def has_int8_dot_product() -> bool:
    flags = cpu_flags()
    return bool({"avx512_vnni", "avx_vnni"} & flags) or (is_arm64() and "asimddp" in flags)


def resolve_backend(name: str) -> str:
    """``auto`` -> the backend for this CPU; any other name is returned as given (checked)."""
    if name != "auto":
        if name not in CONCRETE_BACKENDS:
            raise ValueError(f"unknown embedding backend {name!r}; choose auto or one of {CONCRETE_BACKENDS}")
        return name
    if has_amx():
        return "torch-bf16"
    if has_int8_dot_product():
        return "onnx-int8"
    if "avx2" in cpu_flags():
        return "onnx-int8"
    return "torch"


def int8_variant() -> str:
    """The dynamic-quantisation preset for this CPU (sentence-transformers' / optimum's names)."""
    if is_arm64():
        return "arm64"
    flags = cpu_flags()
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    return "avx2"


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
