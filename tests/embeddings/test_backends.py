"""``auto`` picks the encoder backend from the CPU's instruction sets."""

from __future__ import annotations

import pytest

from narrwatch.embeddings import backends


@pytest.mark.parametrize(
    ("flags", "machine", "expected"),
    [
        ({"avx512f", "avx512_vnni", "amx_bf16", "amx_tile"}, "x86_64", "torch-bf16"),
        ({"avx512f", "amx_bf16", "amx_tile"}, "x86_64", "torch-bf16"),
        ({"avx512f", "avx512_vnni", "avx512_bf16"}, "x86_64", "onnx-int8"),
        ({"avx2", "avx_vnni"}, "x86_64", "onnx-int8"),
        ({"avx2", "fma"}, "x86_64", "onnx-int8"),
        ({"sse4_2"}, "x86_64", "torch"),
        ({"asimd", "asimddp"}, "aarch64", "onnx-int8"),
        ({"asimd"}, "aarch64", "torch"),
        (set(), "x86_64", "torch"),
    ],
)
def test_auto_follows_the_cpu(
    monkeypatch: pytest.MonkeyPatch, flags: set[str], machine: str, expected: str
) -> None:
    monkeypatch.setattr(backends, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(backends.platform, "machine", lambda: machine)
    assert backends.resolve_backend("auto") == expected


def test_named_backends_pass_through_and_unknown_ones_are_refused() -> None:
    for name in backends.CONCRETE_BACKENDS:
        assert backends.resolve_backend(name) == name
    with pytest.raises(ValueError, match="unknown embedding backend 'gpu'"):
        backends.resolve_backend("gpu")
