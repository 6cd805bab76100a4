"""int8 with one activation scale per token row, so a text's vector does not depend on its batch-mates.

ONNX Runtime's dynamic quantisation (``DynamicQuantizeLinear``) takes one scale for the whole input
tensor: in a batch, the text with the widest range sets every other text's scale, and a vector moves
with its batch-mates (cosine 0.991 at worst between batchings of the same texts). ORT has no per-row
mode, so this module rewrites each matrix product with constant weights itself:

    scale = max|x| over the row / 127          (one per token: ReduceMax over the last axis)
    q     = QuantizeLinear(x, scale, 128)      (blocked along the row: uint8, zero point 128)
    y     = MatMulIntegerToFloat(q, W8, 1, w_scale) * scale

The product is integer-exact, so a row's result depends on that row alone: the same text gives the
same bits in any batch. Weights are quantised per output column, symmetric. Per-token scales also
track each token's range, which keeps int8 closer to fp32 than one scale per batch did.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from narrwatch.embeddings.onnx_weights import save_with_side_weights

if TYPE_CHECKING:
    from onnx import NodeProto

#: ONNX opset for QuantizeLinear's blocked form (a scale per block of the last axis).
_OPSET = 21
_ACTIVATION_ZERO_POINT = 128


def unsigned_weights_for(variant: str) -> bool:
    """uint8 weights where u8 x s8 products could saturate 16-bit sums (x86 without VNNI)."""
    return variant not in ("avx512_vnni", "arm64")


def quantise_rows(source: Path, target: Path, *, unsigned_weights: bool) -> int:
    """Write ``target``: ``source`` with every constant-weight MatMul in per-row int8; return how many."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    weights = {tensor.name: tensor for tensor in graph.initializer}
    constants = [
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "rowq_last_axis"),
        numpy_helper.from_array(np.array(1e-12, dtype=np.float32), "rowq_tiny"),
        numpy_helper.from_array(np.array(127.0, dtype=np.float32), "rowq_127"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "rowq_one"),
        numpy_helper.from_array(np.array(_ACTIVATION_ZERO_POINT, dtype=np.uint8), "rowq_zero"),
        numpy_helper.from_array(np.array([_ACTIVATION_ZERO_POINT], dtype=np.uint8), "rowq_zero_1d"),
    ]
    nodes: list[NodeProto] = []
    rows_of: dict[str, tuple[str, str]] = {}  # input tensor -> (its uint8 rows, its row scales)
    replaced: set[str] = set()
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in weights:
            nodes.append(node)
            continue
        source_name, weight_name = node.input
        weight = numpy_helper.to_array(weights[weight_name]).astype(np.float32)
        stem = f"rowq{len(replaced)}"
        quantised, column_scales = _quantise_weight(weight, unsigned_weights)
        constants += [
            numpy_helper.from_array(quantised, f"{stem}_weight"),
            numpy_helper.from_array(column_scales, f"{stem}_weight_scale"),
        ]
        replaced.add(weight_name)
        if source_name not in rows_of:
            # Q, K and V read the same tensor: quantise it once.
            stem_in = f"rowq_in{len(rows_of)}"
            rows_of[source_name] = _quantise_rows_nodes(source_name, stem_in, weight.shape[0], nodes)
        rows, row_scales = rows_of[source_name]
        inputs = [rows, f"{stem}_weight", "rowq_one", f"{stem}_weight_scale", "rowq_zero"]
        if unsigned_weights:
            inputs.append("rowq_zero")
        nodes += [
            helper.make_node("MatMulIntegerToFloat", inputs, [f"{stem}_unscaled"], domain="com.microsoft"),
            helper.make_node("Mul", [f"{stem}_unscaled", row_scales], [node.output[0]]),
        ]
    kept = [tensor for tensor in graph.initializer if tensor.name not in replaced]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept + constants)
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = max(opset.version, _OPSET)
    if not any(opset.domain == "com.microsoft" for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    save_with_side_weights(model, target)
    return len(replaced)


def _quantise_weight(weight: np.ndarray, unsigned: bool) -> tuple[np.ndarray, np.ndarray]:
    """(int8 or uint8 weights, fp32 scale per output column), symmetric."""
    scales = np.maximum(np.abs(weight).max(axis=0), 1e-12) / 127.0
    levels = np.clip(np.round(weight / scales), -127, 127)
    if unsigned:
        return (levels + 128).astype(np.uint8), scales.astype(np.float32)
    return levels.astype(np.int8), scales.astype(np.float32)


def _quantise_rows_nodes(source: str, stem: str, width: int, nodes: list[NodeProto]) -> tuple[str, str]:
    """Append the nodes that quantise ``source`` row by row; return (uint8 rows, row scales)."""
    from onnx import helper

    nodes += [
        helper.make_node("Abs", [source], [f"{stem}_abs"]),
        helper.make_node("ReduceMax", [f"{stem}_abs", "rowq_last_axis"], [f"{stem}_max"], keepdims=1),
        # An all-zero row (never seen in practice) would divide by zero.
        helper.make_node("Max", [f"{stem}_max", "rowq_tiny"], [f"{stem}_range"]),
        helper.make_node("Div", [f"{stem}_range", "rowq_127"], [f"{stem}_scale"]),
        helper.make_node("Shape", [f"{stem}_scale"], [f"{stem}_scale_shape"]),
        helper.make_node("Expand", ["rowq_zero_1d", f"{stem}_scale_shape"], [f"{stem}_zero"]),
        helper.make_node(
            "QuantizeLinear",
            [source, f"{stem}_scale", f"{stem}_zero"],
            [f"{stem}_rows"],
            axis=-1,
            block_size=width,
        ),
    ]
    return f"{stem}_rows", f"{stem}_scale"
