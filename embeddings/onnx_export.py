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
from narrwatch.embeddings.encoder_errors import EncoderError
from narrwatch.embeddings.model_source import DERIVED_DIRS

#: Bump when the export layout changes, so old exports are not reused.
_EXPORT_LAYOUT = "v2"

log = logging.getLogger(__name__)


def onnx_file_name(backend: str, variant: str) -> str:
    """The ONNX file of a backend inside an export directory (sentence-transformers' naming)."""
    if backend == "onnx":
        return "onnx/model.onnx"
    weights = "quint8" if variant == "avx2" else "qint8"
    return f"onnx/model_{weights}_{variant}.onnx"


def ensure_onnx_export(
    source: Path, slug: str, fingerprint: str, models_dir: Path, backend: str
) -> tuple[Path, str]:
    """Export (once) the model to ONNX and, for ``onnx-int8``, quantise it; return (dir, file name).

    Every file appears by an atomic rename: the fp32 export as a whole directory, each int8 file on
    its own, so concurrent first runs are safe and an interrupted export leaves only a temp folder.
    """
    export_dir = models_dir / f"{slug}-{fingerprint}-onnx-{_EXPORT_LAYOUT}"
    if not (export_dir / "onnx" / "model.onnx").is_file():
        _export_fp32(source, export_dir)
    variant = int8_variant()
    file_name = onnx_file_name(backend, variant)
    if backend == "onnx-int8" and not (export_dir / file_name).is_file():
        _quantise(export_dir, variant, export_dir / file_name)
    return export_dir, file_name


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


def _quantise(export_dir: Path, variant: str, target: Path) -> None:
    """Fuse the fp32 graph (ORT's O2 transformer fusions), then quantise it dynamically to int8.

    Fusing first keeps int8 closer to fp32 at the same speed (bench/embed.py: mean cosine 0.994
    instead of 0.991, minimum 0.986 instead of 0.984): the fused attention and layer-norm nodes stay
    in float while the large matrix products go to int8. Models optimum cannot fuse are quantised
    as exported.
    """
    work = Path(tempfile.mkdtemp(dir=export_dir.parent, prefix=f".{export_dir.name}.int8."))
    try:
        with quiet_model_libraries():
            fused = _fuse(export_dir, work)
            produced = work / "model_int8.onnx"
            _quantise_dynamic(fused or export_dir / "onnx" / "model.onnx", produced, variant)
        if not produced.is_file():
            raise EncoderError(f"int8 quantisation of {export_dir} produced no {produced.name}")
        os.replace(produced, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _fuse(export_dir: Path, work: Path) -> Path | None:
    from optimum.onnxruntime import ORTOptimizer
    from optimum.onnxruntime.configuration import AutoOptimizationConfig

    # optimum wants the model's config.json beside the ONNX file.
    staged = work / "fp32"
    staged.mkdir()
    shutil.copy2(export_dir / "config.json", staged / "config.json")
    os.symlink(export_dir / "onnx" / "model.onnx", staged / "model.onnx")
    try:
        optimizer = ORTOptimizer.from_pretrained(staged, file_names=["model.onnx"])
        optimizer.optimize(save_dir=work / "fused", optimization_config=AutoOptimizationConfig.O2())
    except Exception as exc:  # an architecture optimum has no fusions for: quantise unfused
        log.info("no ONNX graph fusion for %s (%s); quantising the plain export", export_dir.name, exc)
        return None
    fused = work / "fused" / "model_optimized.onnx"
    return fused if fused.is_file() else None


def _quantise_dynamic(source: Path, target: Path, variant: str) -> None:
    """Dynamic int8 quantisation with optimum's preset for the CPU family (weights per channel)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    preset = getattr(AutoQuantizationConfig, variant)(is_static=False)
    quantize_dynamic(
        source,
        target,
        op_types_to_quantize=[str(getattr(op, "value", op)) for op in preset.operators_to_quantize],
        per_channel=preset.per_channel,
        reduce_range=preset.reduce_range,
        weight_type=QuantType.QInt8 if preset.weights_dtype.name == "QInt8" else QuantType.QUInt8,
        extra_options={
            "WeightSymmetric": preset.weights_symmetric,
            "ActivationSymmetric": preset.activations_symmetric,
            # Fused nodes (com.microsoft domain) defeat ONNX shape inference; their tensors are float.
            "DefaultTensorType": onnx.TensorProto.FLOAT,
        },
    )


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
