"""feeds.yaml: the outlets narrwatch polls, loaded with ``yaml.safe_load`` and checked field by field.

Kept light on purpose (pydantic and PyYAML only): Airflow's DAG processor imports it through
``narrwatch.ops.schedule`` every parse cycle.

Format::

    groups:
      <name>: {schedule: "<cron or preset>", description: "..."}
    feeds:
      - id: rts-cyr                 # unique; lower case letters, digits, '-', '_', '.'
        name: RTS (Cyrillic)
        outlet: rts                 # optional, default: id; feeds of one outlet share dedup
        country: RS                 # ISO 3166-1 alpha-2; Kosovo is XK
        languages: [sr]             # ISO 639 codes; "me" is read as "cnr", "sh" as "hbs"
        url: https://...
        group: <a group above>
        state_affiliated: false     # state-owned or state-directed outlet
        tags: [public-broadcaster]
        full_text: false            # optional: fetch article pages (default: the setting)
        poll: {min_interval_s: 900, max_interval_s: 7200, paused: false}   # optional

Every error names the file, the entry (index and id) and the field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_ID = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,99}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
_LANGUAGE_ALIASES = {"me": "cnr", "sh": "hbs", "scr": "hr", "scc": "sr"}

#: ISO 3166-1 alpha-2, plus XK (Kosovo: user-assigned, used by the EU and the IMF).
COUNTRY_CODES = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
    BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG
    EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR
    HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR
    LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG
    NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE
    SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA
    UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XK""".split()
)


class FeedsFileError(ValueError):
    """feeds.yaml could not be used; ``problems`` lists each one with file, entry and field."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(problems))


class PollOverrides(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_interval_s: int | None = Field(None, gt=0, description="Poll at most this often.")
    max_interval_s: int | None = Field(None, gt=0, description="Poll at least this often.")
    paused: bool = Field(False, description="Not polled while true (set here or with `feeds pause`).")

    @model_validator(mode="after")
    def _min_not_above_max(self) -> PollOverrides:
        if (
            self.min_interval_s is not None
            and self.max_interval_s is not None
            and self.min_interval_s > self.max_interval_s
        ):
            raise ValueError("min_interval_s must not exceed max_interval_s")
        return self

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_defaults=True)


class GroupSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schedule: str | None = Field(None, description="Cron expression or preset of the group's ingest DAG.")
    description: str = ""


class FeedSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str
    name: str = Field(min_length=1, max_length=300)
    outlet: str | None = None
    country: str
    languages: list[str] = Field(min_length=1)
    url: str = Field(max_length=2048)
    group: str
    state_affiliated: bool = False
    tags: list[str] = Field(default_factory=list)
    full_text: bool | None = None
    poll: PollOverrides = Field(default_factory=PollOverrides)

    @field_validator("id", "outlet")
    @classmethod
    def _check_id(cls, value: str | None) -> str | None:
        if value is not None and not _ID.match(value):
            raise ValueError(
                "must be 1-100 characters: lower-case letters, digits, '-', '_', '.' (starting with a "
                "letter or digit)"
            )
        return value

    @field_validator("country")
    @classmethod
    def _check_country(cls, value: str) -> str:
        code = value.upper()
        if code not in COUNTRY_CODES:
            raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 code (Kosovo: XK)")
        return code

    @field_validator("languages")
    @classmethod
    def _check_languages(cls, values: list[str]) -> list[str]:
        codes: list[str] = []
        for value in values:
            code = value.strip().lower()
            if not _LANGUAGE.match(code):
                raise ValueError(f"{value!r} is not an ISO 639 language code (two or three letters)")
            code = _LANGUAGE_ALIASES.get(code, code)
            if code not in codes:
                codes.append(code)
        return codes

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 (raises on a malformed port)
        except ValueError as exc:
            raise ValueError(f"malformed URL: {exc}") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http:// or https:// URL")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials")
        return value

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, values: list[str]) -> list[str]:
        return sorted({value.strip() for value in values if value.strip()})

    @model_validator(mode="after")
    def _default_outlet(self) -> FeedSpec:
        if self.outlet is None:
            self.outlet = self.id
        return self

    @property
    def outlet_id(self) -> str:
        return self.outlet or self.id


class FeedsConfig(BaseModel):
    groups: dict[str, GroupSpec]
    feeds: list[FeedSpec]

    def feed(self, feed_id: str) -> FeedSpec | None:
        return next((feed for feed in self.feeds if feed.id == feed_id), None)

    @property
    def outlets(self) -> set[str]:
        return {feed.outlet_id for feed in self.feeds}


def _describe(error: Any) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "(entry)"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{location}: {message}"


def _entry_label(index: int, raw: Any) -> str:
    feed_id = raw.get("id") if isinstance(raw, dict) else None
    return f"feeds[{index}] (id={feed_id!r})" if feed_id is not None else f"feeds[{index}]"


def parse_feeds_document(document: Any, path: Path) -> FeedsConfig:
    """Validate an already loaded document; ``path`` is only used in messages."""
    problems: list[str] = []
    if not isinstance(document, dict):
        raise FeedsFileError(path, [f"{path}: the top level must be a mapping with 'groups' and 'feeds'"])
    unknown = sorted(set(document) - {"groups", "feeds"})
    if unknown:
        problems.append(f"{path}: unknown top-level key(s) {unknown}: only 'groups' and 'feeds'")

    groups: dict[str, GroupSpec] = {}
    raw_groups = document.get("groups")
    if not isinstance(raw_groups, dict) or not raw_groups:
        problems.append(f"{path}: groups: must be a non-empty mapping of group name to its schedule")
        raw_groups = {}
    for name, raw_group in raw_groups.items():
        try:
            groups[str(name)] = GroupSpec.model_validate(raw_group or {})
        except ValidationError as exc:
            problems.extend(f"{path}: groups.{name}.{_describe(error)}" for error in exc.errors())

    feeds: list[FeedSpec] = []
    raw_feeds = document.get("feeds")
    if not isinstance(raw_feeds, list) or not raw_feeds:
        problems.append(f"{path}: feeds: must be a non-empty list of feed entries")
        raw_feeds = []
    seen_ids: dict[str, int] = {}
    seen_urls: dict[str, int] = {}
    for index, raw in enumerate(raw_feeds):
        label = f"{path}: {_entry_label(index, raw)}"
        if not isinstance(raw, dict):
            problems.append(f"{label}: must be a mapping of fields")
            continue
        try:
            feed = FeedSpec.model_validate(raw)
        except ValidationError as exc:
            problems.extend(f"{label}: {_describe(error)}" for error in exc.errors())
            continue
        if feed.id in seen_ids:
            problems.append(f"{label}: id: duplicate of feeds[{seen_ids[feed.id]}]")
        seen_ids.setdefault(feed.id, index)
        if feed.url in seen_urls:
            problems.append(f"{label}: url: same URL as feeds[{seen_urls[feed.url]}]")
        seen_urls.setdefault(feed.url, index)
        if groups and feed.group not in groups:
            problems.append(f"{label}: group: {feed.group!r} is not one of the groups {sorted(groups)}")
        feeds.append(feed)
    if problems:
        raise FeedsFileError(path, problems)
    return FeedsConfig(groups=groups, feeds=feeds)


def load_feeds_file(path: Path | str) -> FeedsConfig:
    """Load and validate feeds.yaml; raises :class:`FeedsFileError` naming file, entry and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FeedsFileError(path, [f"{path}: cannot read the feeds file: {exc}"]) from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise FeedsFileError(path, [f"{path}: not valid YAML{where}: {exc}"]) from exc
    return parse_feeds_document(document, path)
