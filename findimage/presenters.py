"""What the CLI prints: results, status and index reports, as lines for people or as JSON.

Each report has its plain-data view (`*_dict`, what `--json` prints) and its text beside it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from findimage.documents import IndexReport, SearchHit, Skipped, StoreStatus
from findimage.filters import picture_date
from findimage.library import joined
from findimage.terminal import printable, results_table, shortened


def hit_dict(hit: SearchHit, root: str | None = None) -> dict[str, Any]:
    """The document, its score, `location` (its absolute path when the library is known), and
    `date` with `date_from`: the date filters compare, and whether it is when the picture
    was "taken" (EXIF) or its "file" date."""
    location = joined(root, hit.document.path) if root else None
    day, origin = picture_date(hit.document)
    return {
        **hit.document.to_record(),
        "score": round(hit.score, 6),
        "location": location,
        "date": day.isoformat(),
        "date_from": origin,
    }


def results_dict(hits: list[SearchHit], root: str | None = None) -> dict[str, Any]:
    return {"results": [hit_dict(hit, root) for hit in hits]}


def status_dict(
    status: StoreStatus, text_vectors: str | None = None, text_model_problem: str | None = None
) -> dict[str, Any]:
    """The index's state; with `text_vectors`, where text queries are embedded and any problem
    with that model."""
    models = status.models
    data = {
        "backend": status.backend,
        "count": status.count,
        "image_model": models.image_model if models else None,
        "text_model": models.text_model if models else None,
        "dims": models.dims if models else None,
        "image_engine": f"{models.engine} {models.precision}" if models else None,
        "last_indexed_at": _iso(status.last_indexed_at),
        "location": status.location,
        "library": status.library_root,
    }
    if text_vectors is not None:
        data.update(text_vectors=text_vectors, text_model_problem=text_model_problem)
    if status.shards:
        data["shards"] = [
            {
                "index": report.index,
                "shard": report.label,
                "written": report.written,
                "done": report.done,
                "updated_at": _iso(report.updated_at),
            }
            for report in status.shards
        ]
    return data


def report_dict(report: IndexReport) -> dict[str, Any]:
    result: dict[str, Any] = {
        "indexed": report.indexed,
        "unchanged": report.unchanged,
        "deleted": report.deleted,
        "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
    }
    if report.dry_run:
        result.update(dry_run=True, to_index=report.to_index, to_delete=report.to_delete)
    if report.incomplete:
        result["incomplete"] = True
    return result


def results_output(
    hits: list[SearchHit], root: str | None, title: str, as_json: bool, links: bool
) -> str:
    if as_json:
        return to_json(results_dict(hits, root))
    if not hits:
        return "No pictures found."
    return results_table(hits, root, title, links)


def no_pictures_in_folder(folder: str) -> str:
    """What a search in a folder with no indexed pictures prints (the bot says the same)."""
    return (
        f"The library has no pictures in a folder “{printable(folder)}”: check the name after "
        "--in, from the library's root or as a path."
    )


def status_output(data: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return to_json(data)
    lines = [
        f"{key.replace('_', ' ')}: {printable(str(value)) if value is not None else '-'}"
        for key, value in data.items()
        if key != "shards"
    ]
    for shard in data.get("shards", []):
        state = (
            "done" if shard["done"] else f"running or stopped (last report {shard['updated_at']})"
        )
        lines.append(
            f"shard {shard['shard']} into {printable(shard['index'])}: "
            f"{shard['written']} written in its current run, {state}"
        )
    return "\n".join(lines)


def report_output(
    report: IndexReport, as_json: bool, new_skips: list[Skipped] | None = None
) -> str:
    """The report; with `new_skips`, only those skipped files are named (the others were
    named by an earlier run), and a line says how many are left out."""
    if as_json:
        return to_json(report_dict(report))
    if report.dry_run:
        lines = [
            f"Would embed up to {len(report.to_index)} pictures, remove {len(report.to_delete)}.",
            *(f"  + {printable(path)}" for path in report.to_index),
            *(f"  - {printable(path)}" for path in report.to_delete),
        ]
    else:
        named = report.skipped if new_skips is None else new_skips
        lines = [
            f"Indexed {report.indexed}, unchanged {report.unchanged}, "
            f"removed {report.deleted}, skipped {len(report.skipped)}.",
            *(
                f"  skipped {shortened(printable(skipped.path))}: {printable(skipped.reason)}"
                for skipped in named
            ),
        ]
        if len(named) < len(report.skipped):
            left_out = len(report.skipped) - len(named)
            lines.append(
                f"  ({left_out} skipped as on the last run, for the same reason; "
                "`findimage index --json` names them.)"
            )
        if report.incomplete:
            lines.append(
                "Incomplete: what could not be read keeps its place in the index; "
                "run again once it can be read."
            )
    return "\n".join(lines)


def to_json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
