"""Seed narratives kept in SQL, with ``narratives/`` as their import/export format.

Until something is imported the store is empty and seeds come from the YAML files, exactly as
before. Once ``narrwatch narratives import`` (or ``narrwatch serve``) has filled ``seed_heads``, SQL is
the source of truth: the app edits it, every save is a new revision, and ``narrwatch narratives export``
writes the files back. A file edited on disk after its last import or export is imported by the next
run that loads the seeds, unless the seed was also edited in the app since (then the app's text is
kept and the conflict is reported), so the file workflow of before keeps working.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from narrwatch.context import AppContext
from narrwatch.db.models import SeedHead, SeedRevision
from narrwatch.steps.match.seed_schema import Seed, SeedProblem
from narrwatch.steps.match.seed_yaml import parse_seed_file, seed_files
from narrwatch.steps.match.seeds import (
    LoadedSeed,
    NarrativeError,
    NarrativeSet,
    _set_problems,
    check_narratives,
    load_narratives,
    load_usable_narratives,
)

#: Field order of an exported file: what a reader needs first, the long lists last.
FIELD_ORDER = (
    "id",
    "title",
    "description",
    "parent",
    "status",
    "owner",
    "version",
    "languages",
    "tags",
    "thresholds",
    "examples",
    "negatives",
    "keywords",
)


def file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def seed_document(seed: Seed) -> dict[str, Any]:
    """The stored form of a seed: every field as plain JSON data (what versions are made of)."""
    return seed.definition()


def seed_yaml(document: Mapping[str, Any]) -> str:
    """A git-friendly YAML text of a seed: stable field order, one phrase per line, no empty fields.

    Parsing it gives the same seed back (fields left out take their defaults).
    """
    ordered: dict[str, Any] = {}
    for name in FIELD_ORDER:
        value = document.get(name)
        if value is None or value == [] or value == {}:
            continue
        if name == "thresholds":
            value = {key: item for key, item in value.items() if item is not None}
            if not value:
                continue
        ordered[name] = value
    return yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False)


def has_seed_store(session: Session) -> bool:
    return session.scalar(select(SeedHead.narrative_id).limit(1)) is not None


def _narrative_set(
    heads: Sequence[SeedHead], directory: Path
) -> tuple[NarrativeSet | None, list[SeedProblem]]:
    loaded = [
        LoadedSeed(Seed.model_validate(head.document), directory / f"{head.narrative_id}.yaml")
        for head in heads
    ]
    display = {item.seed.id: f"seed {item.seed.id} (SQL)" for item in loaded}
    problems = _set_problems(loaded, display)
    if problems:
        return None, problems
    return NarrativeSet(loaded), []


def _stored(ctx: AppContext) -> bool:
    try:
        with ctx.transaction() as session:
            return has_seed_store(session)
    except (OperationalError, ProgrammingError):
        # No store or not migrated yet (`narratives test` works without one): the files decide.
        return False


def _from_sql(ctx: AppContext) -> NarrativeSet:
    with ctx.transaction() as session:
        heads = session.scalars(select(SeedHead).order_by(SeedHead.narrative_id)).all()
        narratives, problems = _narrative_set(heads, Path(ctx.settings.narratives_dir))
    if narratives is None:
        raise NarrativeError(problems)
    return narratives


def load_seeds(ctx: AppContext, now: dt.datetime | None = None) -> NarrativeSet:
    """The seeds to score with: SQL once seeds were imported, else the YAML files.

    Given ``now``, files edited on disk since their last import or export are imported first.
    """
    if not _stored(ctx):
        return load_narratives(ctx.settings.narratives_dir)
    if now is not None:
        refresh_from_files(ctx, now)
    return _from_sql(ctx)


def load_usable_seeds(ctx: AppContext, now: dt.datetime) -> tuple[NarrativeSet, list[SeedProblem]]:
    """What the match step scores with, and the problems of seed files it could not use.

    Without a seed store: the usable files (``load_usable_narratives``). With one: the stored seeds
    after importing the files changed on disk (a bad file is named and left out, its stored seed kept).
    """
    if not _stored(ctx):
        return load_usable_narratives(ctx.settings.narratives_dir)
    report = refresh_from_files(ctx, now)
    return _from_sql(ctx), report.problems


# --- writing ------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)  # "seed-id@revision"
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # edited in the app and on disk
    problems: list[SeedProblem] = field(default_factory=list)  # files that could not be read

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": len(self.unchanged),
            "conflicts": self.conflicts,
            "problems": [str(problem) for problem in self.problems],
        }


def _record(
    session: Session,
    head: SeedHead | None,
    document: dict[str, Any],
    *,
    source: str,
    author: str,
    now: dt.datetime,
    sha: str | None,
) -> SeedHead:
    revision = head.revision + 1 if head is not None else 1
    narrative_id = str(document["id"])
    session.add(
        SeedRevision(
            narrative_id=narrative_id,
            revision=revision,
            document=document,
            source=source,
            author=author,
            created_at=now,
        )
    )
    if head is None:
        head = SeedHead(narrative_id=narrative_id)
        session.add(head)
    head.revision = revision
    head.document = document
    head.source = source
    if sha is not None:
        head.file_sha, head.synced_revision = sha, revision
    head.updated_at = now
    head.updated_by = author
    return head


def import_seeds(
    ctx: AppContext, directory: Path, now: dt.datetime, author: str, *, force: bool = False
) -> ImportReport:
    """Import every seed file of ``directory`` (checked as a whole first; nothing is written if any
    file is bad). A seed edited in the app since its last import/export is kept unless ``force``."""
    narratives, problems = check_narratives(directory)
    if narratives is None:
        raise NarrativeError(problems)
    return _import(ctx, narratives, now, author, force=force)


def refresh_from_files(ctx: AppContext, now: dt.datetime) -> ImportReport:
    """Import the seed files changed on disk since their last import or export; a bad file is left
    out (and named in ``problems``) without stopping the others."""
    if not Path(ctx.settings.narratives_dir).is_dir():
        return ImportReport()
    narratives, problems = load_usable_narratives(ctx.settings.narratives_dir)
    report = _import(ctx, narratives, now, "files", force=False)
    report.problems = list(problems)
    return report


def _import(
    ctx: AppContext,
    narratives: NarrativeSet,
    now: dt.datetime,
    author: str,
    *,
    force: bool,
) -> ImportReport:
    for attempt in range(3):
        report = ImportReport()
        try:
            with ctx.transaction() as session:
                heads = {head.narrative_id: head for head in session.scalars(select(SeedHead))}
                for seed in narratives:
                    path = narratives.path_of(seed.id)
                    sha = file_sha(path)
                    head = heads.get(seed.id)
                    document = seed_document(seed)
                    if head is not None and head.document == document:
                        head.file_sha, head.synced_revision = sha, head.revision
                        report.unchanged.append(seed.id)
                        continue
                    if head is not None and head.file_sha == sha and not force:
                        # The file is as last synced: the stored text is the newer one.
                        report.unchanged.append(seed.id)
                        continue
                    if head is not None and head.synced_revision != head.revision and not force:
                        report.conflicts.append(
                            f"{path}: seed {seed.id} was edited in the app (revision {head.revision} by "
                            f"{head.updated_by}) and on disk; the app's text is kept: export it, or "
                            "import with --force"
                        )
                        continue
                    row = _record(session, head, document, source="import", author=author, now=now, sha=sha)
                    (report.updated if head is not None else report.created).append(
                        f"{seed.id}@{row.revision}"
                    )
            return report
        except IntegrityError:
            # Another process recorded the same revision first: read its result and try again.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class SeedSaveError(ValueError):
    """The edited seed is not valid: the message names the field."""


def validate_document(document: Mapping[str, Any]) -> Seed:
    try:
        return Seed.model_validate(dict(document))
    except ValidationError as exc:
        parts = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(seed)"
            parts.append(f"{where}: {error['msg']}")
        raise SeedSaveError("; ".join(parts)) from None


def save_seed(
    ctx: AppContext,
    document: Mapping[str, Any],
    author: str,
    now: dt.datetime,
    *,
    expected_revision: int | None,
    source: str = "web",
) -> SeedHead:
    """Store an edited seed as a new revision (nothing if it is unchanged).

    ``expected_revision`` is the revision the editor started from (None for a new seed): a save over
    somebody else's newer save is refused rather than silently overwriting it.
    """
    seed = validate_document(document)
    clean = seed_document(seed)
    directory = Path(ctx.settings.narratives_dir)
    with ctx.transaction() as session:
        heads = list(session.scalars(select(SeedHead)))
        head = next((row for row in heads if row.narrative_id == seed.id), None)
        current = head.revision if head is not None else None
        if current != expected_revision:
            raise SeedSaveError(
                f"seed {seed.id} changed since you opened it (now revision {current}, you edited "
                f"{expected_revision}): reload and apply your edit again"
            )
        others = [row for row in heads if row.narrative_id != seed.id]
        candidate = [LoadedSeed(Seed.model_validate(row.document), directory) for row in others]
        candidate.append(LoadedSeed(seed, directory))
        problems = _set_problems(candidate, {item.seed.id: item.seed.id for item in candidate})
        if problems:
            raise SeedSaveError("; ".join(f"{p.field}: {p.message}" for p in problems))
        if head is not None and head.document == clean:
            return head
        row = _record(session, head, clean, source=source, author=author, now=now, sha=None)
        session.flush()
        session.expunge(row)
        return row


@dataclass
class ExportReport:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"written": self.written, "unchanged": len(self.unchanged)}


def export_seeds(ctx: AppContext, directory: Path) -> ExportReport:
    """Write every stored seed to ``directory``: a file already holding the same seed is left as it is
    (hand formatting survives), others get ``seed_yaml``. Records each file's hash as exported."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    existing: dict[str, Path] = {}
    for path in seed_files(directory):
        existing.setdefault(path.stem, path)
    report = ExportReport()
    with ctx.transaction() as session:
        for head in session.scalars(select(SeedHead).order_by(SeedHead.narrative_id)):
            path = existing.get(head.narrative_id, directory / f"{head.narrative_id}.yaml")
            if path.exists():
                on_disk, problems = parse_seed_file(path)
                if on_disk is not None and not problems and seed_document(on_disk) == head.document:
                    head.file_sha, head.synced_revision = file_sha(path), head.revision
                    report.unchanged.append(head.narrative_id)
                    continue
            tmp = path.with_suffix(".yaml.tmp")
            tmp.write_text(seed_yaml(head.document), encoding="utf-8")
            tmp.replace(path)
            head.file_sha, head.synced_revision = file_sha(path), head.revision
            report.written.append(str(path))
    return report


def revisions(session: Session, narrative_id: str) -> list[SeedRevision]:
    return list(
        session.scalars(
            select(SeedRevision)
            .where(SeedRevision.narrative_id == narrative_id)
            .order_by(SeedRevision.revision.desc())
        )
    )


def changed_fields(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[str]:
    """Names of the fields that differ between two stored texts of a seed."""
    if before is None:
        return ["(new seed)"]
    return [name for name in FIELD_ORDER if before.get(name) != after.get(name)]
