"""ONNX export of a model and its int8 quantisation, made once into the models directory by atomic renames."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from narrwatch.embeddings.backends import int8_variant
from narrwatch.embeddings.build_lock import exclusive_build
from narrwatch.embeddings.encoder_errors import EncoderError
from narrwatch.embeddings.int8_rows import quantise_rows, unsigned_weights_for
from narrwatch.embeddings.model_source import DERIVED_DIRS
from narrwatch.embeddings.onnx_weights import save_with_side_weights, side_weights_file

#: Bump when the export layout changes, so old exports are not reused. v3: weights in side files.
_EXPORT_LAYOUT = "v3"


def onnx_file_name(backend: str, variant: str) -> str:
    """The ONNX file of a backend inside an export directory (sentence-transformers' naming)."""
    if backend == "onnx":
        return "onnx/model.onnx"
    # "rows": activations quantised per token row (``embeddings.int8_rows``), not per batch.
    return f"onnx/model_int8_rows_{variant}.onnx"


def ensure_onnx_export(
    source: Path, slug: str, fingerprint: str, models_dir: Path, backend: str
) -> tuple[Path, str]:
    """Export (once) the model to ONNX and, for ``onnx-int8``, quantise it; return (dir, file name).

    Every file appears by an atomic rename: the fp32 export as a whole directory, each int8 file on
    its own, so concurrent first runs are safe and an interrupted export leaves only a temp folder.
    """
    stem = f"{slug}-{fingerprint}-onnx-"  # then the layout
    export_dir = models_dir / f"{stem}{_EXPORT_LAYOUT}"
    variant = int8_variant()
    file_name = onnx_file_name(backend, variant)
    if _exported(export_dir, backend, file_name):
        return export_dir, file_name
    with exclusive_build(export_dir):  # other processes wait here rather than export it too
        if not (export_dir / "onnx" / "model.onnx").is_file():
            _export_fp32(source, export_dir)
            _remove_older_layouts(export_dir, stem)
        if backend == "onnx-int8" and not (export_dir / file_name).is_file():
            _quantise(export_dir, variant, export_dir / file_name)
    return export_dir, file_name


def _exported(export_dir: Path, backend: str, file_name: str) -> bool:
    fp32 = (export_dir / "onnx" / "model.onnx").is_file()
    return fp32 and (backend != "onnx-int8" or (export_dir / file_name).is_file())


def _export_fp32(source: Path, export_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    export_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=export_dir.parent, prefix=f".{export_dir.name}."))
    try:
        staged = work / "model"
        shutil.copytree(source, staged, ignore=shutil.ignore_patterns(*DERIVED_DIRS))
        with quiet_model_libraries():
            model = SentenceTransformer(str(staged), device="cpu", backend="onnx")
            model.save_pretrained(str(staged))
        if not (staged / "onnx" / "model.onnx").is_file():
            raise EncoderError(f"ONNX export of {source} produced no onnx/model.onnx")
        _move_weights_aside(staged / "onnx" / "model.onnx")
        for weights in (*staged.glob("*.safetensors"), *staged.glob("pytorch_model*.bin")):
            weights.unlink()  # the ONNX file holds the weights now; the copy would only take space
        try:
            os.rename(staged, export_dir)
        except OSError:
            if not (export_dir / "onnx" / "model.onnx").is_file():
                raise
            # Another process finished the same export first; its files are identical.
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _remove_older_layouts(export_dir: Path, stem: str) -> None:
    """Delete exports of the same model files (``stem``) in an older layout: nothing reads them any more.

    Each held a copy of the weights (about 0.9 GB for multilingual-e5-small), left behind by an upgrade.
    """
    for folder in export_dir.parent.iterdir():
        if folder.name.startswith(stem) and folder != export_dir and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)


def _quantise(export_dir: Path, variant: str, target: Path) -> None:
    """int8 with one activation scale per token row (``embeddings.int8_rows``), into ``target``.

    Per-row scales make a text's vector independent of its batch-mates, so int8 runs batched; they
    also keep it closer to fp32 than ORT's per-batch scales did (bench/embed.py prints the cosines).
    """
    work = Path(tempfile.mkdtemp(dir=export_dir.parent, prefix=f".{export_dir.name}.int8."))
    try:
        produced = work / target.name
        replaced = quantise_rows(
            export_dir / "onnx" / "model.onnx", produced, unsigned_weights=unsigned_weights_for(variant)
        )
        if not replaced or not produced.is_file():
            raise EncoderError(f"int8 quantisation of {export_dir}: no matrix product with constant weights")
        weights = side_weights_file(produced)
        if weights.is_file():
            # The weights first: the graph file's presence is what tells a reader the pair is complete.
            os.replace(weights, side_weights_file(target))
        os.replace(produced, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _move_weights_aside(graph_file: Path) -> None:
    import onnx

    save_with_side_weights(onnx.load(str(graph_file)), graph_file)


@contextmanager
def quiet_model_libraries() -> Iterator[None]:
    """Silence the export's and loader's chatter: tracer and deprecation warnings, info logs."""
    names = ("sentence_transformers", "transformers", "optimum", "onnxruntime", "torch.onnx", "")
    levels = {name: logging.getLogger(name).level for name in names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
