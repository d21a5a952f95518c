"""Read a plan file (YAML or CSV) into checked records; every bad row is named with its reason.

YAML holds sections ``partners``, ``actions`` (each with ``budget`` and ``indicators`` lists),
``places`` and ``updates``. CSV holds one record per row, its kind in the ``record`` column
(partner, action, budget, indicator, place, update); budget and indicator rows name their
``action``. docs/plan.md describes both. Nothing is written here: see ``plan.store``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml

from geo_monitor.errors import InputFileError, PlanFileError
from geo_monitor.plan.objectives import DIRECTIONS, PLACE_TYPES, STATUSES, objective_id

FIELDS = {
    "partner": {"code", "name"},
    "action": {"id", "objective", "title", "lead_partner", "partners", "starts_on", "ends_on", "source",
               "budget", "indicators"},
    "budget": {"action", "partner", "year", "amount"},
    "indicator": {"action", "code", "label", "unit", "target", "direction"},
    "place": {"id", "type", "operator", "places", "arrondissement", "opens_on", "closes_on", "action"},
    "update": {"action", "date", "status", "committed", "spent", "payer", "values", "note", "author"},
}
CSV_COLUMNS = sorted({"record"} | set().union(*FIELDS.values()) - {"budget", "indicators"})


class Bad(ValueError):
    """One reason a record is refused."""


@dataclass
class PlanRecords:
    """The checked content of a plan file, ready for the store."""

    partners: list[dict] = field(default_factory=list)
    actions: list[dict] = field(default_factory=list)
    places: list[dict] = field(default_factory=list)
    updates: list[dict] = field(default_factory=list)


def read_plan_file(path: Path) -> list[tuple[str, str, dict]]:
    """Return (where, record kind, raw fields) for every record of a YAML or CSV plan file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path.name}: cannot read the plan file ({exc})") from exc
    if path.suffix.lower() in (".yaml", ".yml"):
        return _yaml_records(path.name, text)
    if path.suffix.lower() == ".csv":
        return _csv_records(path.name, text)
    raise InputFileError(f"{path.name}: a plan file is .yaml, .yml or .csv")


def _yaml_records(name: str, text: str) -> list[tuple[str, str, dict]]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise InputFileError(f"{name}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(data, dict):
        raise InputFileError(f"{name}: expected sections partners, actions, places, updates")
    unknown = set(data) - {"partners", "actions", "places", "updates"}
    if unknown:
        raise InputFileError(f"{name}: unknown section(s) {', '.join(sorted(map(str, unknown)))}; "
                             "expected partners, actions, places, updates")
    out = []
    for section, kind in (("partners", "partner"), ("actions", "action"), ("places", "place"), ("updates", "update")):
        items = data.get(section) or []
        if not isinstance(items, list):
            raise InputFileError(f"{name}: section {section} must be a list")
        for i, item in enumerate(items, start=1):
            where = f"{section}[{i}]" + (f" ({item.get('id') or item.get('code') or item.get('action')})"
                                         if isinstance(item, dict) else "")
            out.append((where, kind, item if isinstance(item, dict) else {"_not_a_mapping": item}))
    return out


def _csv_records(name: str, text: str) -> list[tuple[str, str, dict]]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "record" not in reader.fieldnames:
        raise InputFileError(f"{name}: a CSV plan file needs a 'record' column "
                             "(partner, action, budget, indicator, place or update)")
    out = []
    for line, row in enumerate(reader, start=2):
        kind = (row.pop("record") or "").strip().lower()
        fields = {k: v for k, v in row.items() if k is not None and v not in (None, "")}
        if None in row:
            fields["_extra_cells"] = row[None]
        out.append((f"line {line} ({kind or '?'} {fields.get('id') or fields.get('code') or fields.get('action') or ''})".replace(" )", ")"),
                    kind, fields))
    return out


def check_records(raw: list[tuple[str, str, dict]], known_partners: set[str], known_actions: set[str],
                  author: str) -> PlanRecords:
    """Check every record; raise PlanFileError naming every bad one, else return the records."""
    problems: list[str] = []
    result = PlanRecords()
    partners = set(known_partners) | {str(f.get("code", "")).strip() for _, k, f in raw if k == "partner"}
    action_ids = set(known_actions) | {str(f.get("id", "")).strip() for _, k, f in raw if k == "action"}
    seen: dict[str, set] = {"partner": set(), "action": set(), "place": set()}
    actions: dict[str, dict] = {}
    children: list[tuple[str, str, dict]] = []
    for where, kind, fields in raw:
        try:
            if kind not in FIELDS:
                raise Bad(f"unknown record kind {kind!r} (expected {', '.join(FIELDS)})")
            extra = sorted(set(fields) - FIELDS[kind] - ({"action"} if kind in ("budget", "indicator") else set()))
            if extra:
                raise Bad(f"unexpected field(s) {', '.join(map(str, extra))[:80]}"
                          + (" (a place is stored by arrondissement, never by address)" if kind == "place" else ""))
            if kind in ("budget", "indicator"):
                children.append((where, kind, fields))
                continue
            if kind in seen:  # also when the first record of that id was bad
                key = str(fields.get("code" if kind == "partner" else "id", "")).strip()
                if key and key in seen[kind]:
                    raise Bad(f"duplicate id {key!r}")
                seen[kind].add(key)
            record = CHECKS[kind](fields, partners, action_ids, author)
            if kind == "action":
                record["budget"] = [_budget(b, partners) for b in _list(fields.get("budget"), "budget")]
                record["indicators"] = [_indicator(i) for i in _list(fields.get("indicators"), "indicators")]
                _no_duplicates(record)
                actions[record["id"]] = record
            getattr(result, f"{kind}s" if kind != "partner" else "partners").append(record)
        except Bad as exc:
            problems.append(f"{where}: {exc}")
    for where, kind, fields in children:  # CSV rows of an action's budget or indicators
        try:
            owner = str(fields.get("action", "")).strip()
            if owner not in actions:
                raise Bad(f"unknown action {owner!r} (a {kind} row follows its action in the same file)")
            rest = {k: v for k, v in fields.items() if k != "action"}
            target = actions[owner]["budget" if kind == "budget" else "indicators"]
            target.append(_budget(rest, partners) if kind == "budget" else _indicator(rest))
            _no_duplicates(actions[owner])
        except Bad as exc:
            problems.append(f"{where}: {exc}")
    if problems:
        raise PlanFileError(f"the plan file has {len(problems)} bad record(s); nothing was loaded:", problems)
    return result


def _list(value: object, name: str) -> list[dict]:
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise Bad(f"{name} must be a list of mappings")
    return value


def _no_duplicates(action: dict) -> None:
    keys = [(b["partner"], b["year"]) for b in action["budget"]]
    if len(keys) != len(set(keys)):
        raise Bad(f"duplicate budget line (partner and year) in action {action['id']!r}")
    codes = [i["code"] for i in action["indicators"]]
    if len(codes) != len(set(codes)):
        raise Bad(f"duplicate indicator code in action {action['id']!r}")


def _text(fields: dict, name: str, required: bool = True) -> str | None:
    value = fields.get(name)
    text = "" if value is None else str(value).strip()
    if not text:
        if required:
            raise Bad(f"missing {name}")
        return None
    return text


def _date(fields: dict, name: str, required: bool = False) -> date | None:
    value = fields.get(name)
    if value in (None, ""):
        if required:
            raise Bad(f"missing {name}")
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise Bad(f"{name} {str(value)[:20]!r} is not a date (YYYY-MM-DD)") from None


def _amount(fields: dict, name: str, required: bool = False) -> Decimal | None:
    value = fields.get(name)
    if value in (None, ""):
        if required:
            raise Bad(f"missing {name}")
        return None
    try:
        amount = Decimal(str(value).strip().replace("_", ""))
    except InvalidOperation:
        raise Bad(f"{name} {str(value)[:20]!r} is not a number") from None
    if not amount.is_finite():
        raise Bad(f"{name} is not a finite number")
    if amount < 0:
        raise Bad(f"negative amount in {name} ({amount})")
    return amount


def _partner(value: str | None, partners: set[str], name: str) -> str:
    if value not in partners:
        raise Bad(f"unknown partner {value!r} in {name} (add it to the partners section first)")
    return value


def _check_partner(fields: dict, *_: object) -> dict:
    code = _text(fields, "code")
    if not code.replace("_", "").isalnum() or not code.islower() or not 2 <= len(code) <= 40:
        raise Bad(f"partner code {code[:40]!r} must be 2-40 lower-case letters, digits or _")
    return {"code": code, "name": _text(fields, "name")}


def _check_action(fields: dict, partners: set[str], *_: object) -> dict:
    action_id = _text(fields, "id")
    objective = objective_id(fields.get("objective", ""))
    if objective is None:
        raise Bad(f"unknown objective {str(fields.get('objective'))[:30]!r} (1-4 or accompany, accommodation, "
                  "public_space, knowledge)")
    others = fields.get("partners") or []
    if isinstance(others, str):
        others = [p.strip() for p in others.split(";") if p.strip()]
    record = {"id": action_id, "objective_id": objective, "title": _text(fields, "title"),
              "lead_partner": _partner(_text(fields, "lead_partner"), partners, "lead_partner"),
              "partners": sorted({_partner(str(p), partners, "partners") for p in others}),
              "starts_on": _date(fields, "starts_on"), "ends_on": _date(fields, "ends_on"),
              "source": _text(fields, "source", required=False)}
    if record["starts_on"] and record["ends_on"] and record["ends_on"] < record["starts_on"]:
        raise Bad(f"end before start ({record['ends_on']} < {record['starts_on']})")
    return record


def _budget(fields: dict, partners: set[str]) -> dict:
    extra = set(fields) - FIELDS["budget"]
    if extra:
        raise Bad(f"unexpected budget field(s) {', '.join(sorted(map(str, extra)))[:60]}")
    year = _text(fields, "year")
    if not year.isdigit() or not 2000 <= int(year) <= 2100:
        raise Bad(f"budget year {year[:10]!r} is not a year")
    return {"partner": _partner(_text(fields, "partner"), partners, "budget partner"), "year": int(year),
            "amount": _amount(fields, "amount", required=True)}


def _indicator(fields: dict) -> dict:
    extra = set(fields) - FIELDS["indicator"]
    if extra:
        raise Bad(f"unexpected indicator field(s) {', '.join(sorted(map(str, extra)))[:60]}")
    direction = _text(fields, "direction")
    if direction not in DIRECTIONS:
        raise Bad(f"unknown direction {direction[:20]!r} (up or down)")
    target = fields.get("target")
    try:
        target = None if target in (None, "") else Decimal(str(target))
    except InvalidOperation:
        raise Bad(f"indicator target {str(target)[:20]!r} is not a number") from None
    return {"code": _text(fields, "code"), "label": _text(fields, "label"), "unit": _text(fields, "unit"),
            "target": target, "direction": direction}


def _arrondissement(value: object) -> int:
    text = str(value or "").strip()
    number = int(text) if text.isdigit() else -1
    code = 75100 + number if 1 <= number <= 20 else number
    if not 75101 <= code <= 75120:
        raise Bad(f"arrondissement {text[:10]!r} is not a Paris arrondissement (1-20 or 75101-75120)")
    return code


def _check_place(fields: dict, partners: set[str], actions: set[str], *_: object) -> dict:
    kind = _text(fields, "type")
    if kind not in PLACE_TYPES:
        raise Bad(f"unknown place type {kind[:30]!r} ({', '.join(PLACE_TYPES)})")
    places = _amount(fields, "places", required=True)
    if places != places.to_integral_value():
        raise Bad("places must be a whole number")
    action = _text(fields, "action", required=False)
    if action is not None and action not in actions:
        raise Bad(f"unknown action {action!r}")
    record = {"id": _text(fields, "id"), "type": kind, "operator": _text(fields, "operator"), "places": int(places),
              "arrondissement": _arrondissement(fields.get("arrondissement")),
              "opens_on": _date(fields, "opens_on", required=True), "closes_on": _date(fields, "closes_on"),
              "action_id": action}
    if record["closes_on"] and record["closes_on"] < record["opens_on"]:
        raise Bad(f"end before start (closes_on {record['closes_on']} < opens_on {record['opens_on']})")
    return record


def _check_update(fields: dict, partners: set[str], actions: set[str], author: str) -> dict:
    action = _text(fields, "action")
    if action not in actions:
        raise Bad(f"unknown action {action!r}")
    status = _text(fields, "status")
    if status not in STATUSES:
        raise Bad(f"unknown status {status[:20]!r} ({', '.join(STATUSES)})")
    values = fields.get("values") or {}
    if isinstance(values, str):
        try:
            values = dict(part.split("=", 1) for part in values.split(";") if part.strip())
        except ValueError:
            raise Bad("values must read code=number;code=number") from None
    if not isinstance(values, dict):
        raise Bad("values must map indicator codes to numbers")
    try:
        values = {str(k).strip(): float(v) for k, v in values.items()}
    except (TypeError, ValueError):
        raise Bad("an indicator value is not a number") from None
    payer = _text(fields, "payer", required=False)
    return {"action_id": action, "on_date": _date(fields, "date", required=True), "status": status,
            "committed": _amount(fields, "committed"), "spent": _amount(fields, "spent"),
            "payer": None if payer is None else _partner(payer, partners, "payer"),
            "indicator_values": values, "note": _text(fields, "note", required=False),
            "author": _text(fields, "author", required=False) or author}


CHECKS = {"partner": _check_partner, "action": _check_action, "place": _check_place, "update": _check_update}


@dataclass
class LoadReport:
    """What a plan load did, per record kind: added, changed, unchanged."""

    file_name: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """Whether anything was written."""
        return any(n for kind in self.counts.values() for what, n in kind.items() if what != "unchanged")

    def summary(self) -> list[str]:
        """One line per record kind."""
        return [f"{kind}: " + ", ".join(f"{n} {what}" for what, n in counts.items())
                for kind, counts in self.counts.items() if counts]


def load_plan(conn, path: Path, *, author: str = "cli") -> LoadReport:
    """Load a plan file in one transaction: every record, or nothing when any record is bad.

    Loading the same file again changes nothing; updates are appended (never edited).
    """
    from geo_monitor.plan.actions import save_action
    from geo_monitor.plan.objectives import partners
    from geo_monitor.plan.places import save_place
    from geo_monitor.plan.updates import add_update

    raw = read_plan_file(path)
    with conn.transaction():
        known = {r[0] for r in conn.execute("SELECT id FROM plan_actions")}
        records = check_records(raw, set(partners(conn)), known, author)
        report = LoadReport(Path(path).name)
        for partner in records.partners:
            row = conn.execute("INSERT INTO plan_partners (code, name) VALUES (%s, %s) ON CONFLICT (code) DO UPDATE "
                               "SET name = EXCLUDED.name WHERE plan_partners.name <> EXCLUDED.name RETURNING xmax = 0",
                               (partner["code"], partner["name"])).fetchone()
            _count(report, "partners", "unchanged" if row is None else "added" if row[0] else "changed")
        for action in records.actions:
            _count(report, "actions", save_action(conn, action))
        for place in records.places:
            _count(report, "places", save_place(conn, place))
        for update in records.updates:
            _count(report, "updates", "added" if add_update(conn, update) else "unchanged")
    return report


def _count(report: LoadReport, kind: str, what: str) -> None:
    report.counts.setdefault(kind, {}).setdefault(what, 0)
    report.counts[kind][what] += 1
