"""Per-row int8 (``embeddings.int8_rows``) on a small graph: rows do not see each other; near fp32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from narrwatch.embeddings.backends import int8_variant
from narrwatch.embeddings.int8_rows import quantise_rows, unsigned_weights_for

WIDTH, OUT = 64, 48


def _two_layer_graph(path: Path, rng: np.random.Generator) -> None:
    """x -> MatMul -> Add bias -> MatMul (same weights shape as a small feed-forward block)."""
    first = rng.normal(size=(WIDTH, OUT)).astype(np.float32)
    second = rng.normal(size=(OUT, WIDTH)).astype(np.float32)
    bias = rng.normal(size=(OUT,)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "first"], ["h"]),
        helper.make_node("Add", ["h", "bias"], ["hb"]),
        helper.make_node("MatMul", ["hb", "second"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "ffn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "tokens", WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "tokens", WIDTH])],
        [numpy_helper.from_array(a, n) for a, n in ((first, "first"), (second, "second"), (bias, "bias"))],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0])


# The weight type this CPU gets: int8 weights beside uint8 rows saturate 16-bit sums without VNNI
# (measured on AVX2 with this graph: cosine 0.988), so only the CPU's own choice has to hold.
@pytest.mark.parametrize("unsigned_weights", [unsigned_weights_for(int8_variant())])
def test_a_rows_result_is_the_same_whatever_its_batch_mates(tmp_path: Path, unsigned_weights: bool) -> None:
    rng = np.random.default_rng(7)
    _two_layer_graph(tmp_path / "fp32.onnx", rng)
    int8 = tmp_path / "int8.onnx"
    replaced = quantise_rows(tmp_path / "fp32.onnx", int8, unsigned_weights=unsigned_weights)
    assert replaced == 2
    text = rng.normal(size=(1, 5, WIDTH)).astype(np.float32)
    # A batch-mate with a range 1,000 times wider: with one scale per batch it would crush ``text``.
    loud = 1000 * rng.normal(size=(1, 5, WIDTH)).astype(np.float32)
    alone = _run(tmp_path / "int8.onnx", text)
    batched = _run(tmp_path / "int8.onnx", np.concatenate([loud, text]))
    np.testing.assert_array_equal(batched[1:], alone)

    exact = _run(tmp_path / "fp32.onnx", text).reshape(5, WIDTH)
    quantised = alone.reshape(5, WIDTH)
    cosines = np.sum(exact * quantised, axis=1) / (
        np.linalg.norm(exact, axis=1) * np.linalg.norm(quantised, axis=1)
    )
    assert cosines.min() > 0.999, cosines


def test_a_graph_without_constant_weights_is_left_as_it_is(tmp_path: Path) -> None:
    node = helper.make_node("MatMul", ["a", "b"], ["y"])
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 2]) for n in ("a", "b")]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])
    graph = helper.make_graph([node], "g", inputs, [output])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(tmp_path / "m.onnx"))
    assert quantise_rows(tmp_path / "m.onnx", tmp_path / "q.onnx", unsigned_weights=True) == 0
