"""ONNX graphs saved with their weights in a side file, which ONNX Runtime maps instead of copying."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx


def side_weights_file(graph_file: Path) -> Path:
    """Where a graph file's weights live: ONNX Runtime maps this file instead of copying it.

    With the weights inside the graph file, loading multilingual-e5-small in int8 peaked at 854 MB
    (the file read, then its tensors copied out of it); with them in a side file, at 105 MB.
    """
    return graph_file.with_name(f"{graph_file.name}.data")


def save_with_side_weights(model: onnx.ModelProto, target: Path) -> None:
    import onnx

    weights = side_weights_file(target)
    weights.unlink(missing_ok=True)  # onnx appends to an existing weights file
    onnx.save(
        model,
        str(target),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=weights.name,
        size_threshold=1024,  # small constants stay in the graph
    )
    # onnx creates the weights file readable by its owner only; a models directory shared with
    # Airflow workers running as another user needs it readable like the graph file.
    if weights.is_file():  # a graph with only small constants has none
        weights.chmod(target.stat().st_mode & 0o777)
