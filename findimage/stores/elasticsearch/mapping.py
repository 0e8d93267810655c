"""The Elasticsearch index findimage writes: its mapping, its `_meta`, and documents in and out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from findimage.documents import RECORD_FIELDS, Fingerprint, ImageDocument, ModelInfo
from findimage.errors import BackendUnavailableError, ConfigError, ModelMismatchError
from findimage.filters import Filters, Place, utc_timestamp

VECTOR_FIELD = "vector"
META_KEY = "findimage"
# Everything a result shows (the id is the hit's _id); the vector stays out of responses.
DOCUMENT_FIELDS = tuple(name for name in RECORD_FIELDS if name != "id")
FINGERPRINT_FIELDS = ("path", "size", "mtime", "sha256")
# What every findimage document has; the rest (taken_at, gps) may be empty.
REQUIRED_FIELDS = (*FINGERPRINT_FIELDS, "name", "folder", "width", "height", "indexed_at")

IndexType = Literal["hnsw", "int8_hnsw", "bbq_hnsw"]


@dataclass(frozen=True)
class VectorIndexOptions:
    """The `index_options` of the vector field, stated so no server default decides them."""

    type: IndexType = "hnsw"
    m: int = 16
    ef_construction: int = 100

    def as_mapping(self) -> dict[str, Any]:
        return {"type": self.type, "m": self.m, "ef_construction": self.ef_construction}


def index_mappings(models: ModelInfo, options: VectorIndexOptions) -> dict[str, Any]:
    return {
        "dynamic": "strict",
        "_meta": {META_KEY: models_meta(models)},
        "properties": {
            "id": {"type": "keyword"},
            "path": {"type": "keyword"},
            "name": {"type": "keyword"},
            "folder": {"type": "keyword"},
            "size": {"type": "long"},
            "mtime": {"type": "double"},
            "sha256": {"type": "keyword"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "taken_at": {"type": "date"},
            "indexed_at": {"type": "date"},
            "gps": {"type": "geo_point"},
            VECTOR_FIELD: {
                "type": "dense_vector",
                "dims": models.dims,
                "similarity": "cosine",
                "index": True,
                "index_options": options.as_mapping(),
            },
        },
    }


def models_meta(models: ModelInfo) -> dict[str, Any]:
    return {
        "image_model": models.image_model,
        "text_model": models.text_model,
        "dims": models.dims,
        "engine": models.engine,
        "precision": models.precision,
    }


def has_findimage_mark(mappings: dict[str, Any]) -> bool:
    """Whether an index's mapping carries findimage's `_meta`: the mark of what it made."""
    meta = mappings.get("_meta")
    return isinstance(meta, dict) and isinstance(meta.get(META_KEY), dict)


def not_created_by_findimage(index: str) -> ConfigError:
    return ConfigError(
        f"The Elasticsearch index {index} was not created by findimage (its mapping has no "
        "findimage _meta), so findimage leaves it alone: set FINDIMAGE_ES_INDEX to another "
        "name, or delete that index yourself if nothing needs it."
    )


def read_models(index: str, mappings: dict[str, Any]) -> ModelInfo:
    """The models an index was built with, after checking its mapping agrees with them."""
    if not has_findimage_mark(mappings):
        raise not_created_by_findimage(index)
    meta = mappings["_meta"][META_KEY]
    try:
        models = ModelInfo(
            image_model=str(meta["image_model"]),
            text_model=str(meta["text_model"]),
            dims=int(meta["dims"]),
            # Indexes made before engines were recorded were all written by PyTorch fp32.
            engine=str(meta.get("engine", "torch")),
            precision=str(meta.get("precision", "fp32")),
        )
    except (KeyError, TypeError, ValueError):
        raise ConfigError(
            f"The findimage _meta of the Elasticsearch index {index} is damaged: "
            "rebuild it with `findimage index --rebuild`."
        ) from None
    vector = mappings.get("properties", {}).get(VECTOR_FIELD, {})
    if vector.get("type") != "dense_vector" or vector.get("dims") != models.dims:
        raise ModelMismatchError(
            f"The Elasticsearch index {index} maps '{VECTOR_FIELD}' as "
            f"{vector.get('type', 'nothing')} with {vector.get('dims', 'no')} dims, but its "
            f"models give {models.dims}: rebuild it with `findimage index --rebuild`."
        )
    if vector.get("similarity", "cosine") != "cosine":
        raise ModelMismatchError(
            f"The Elasticsearch index {index} compares vectors by {vector['similarity']}, not "
            "cosine: rebuild it with `findimage index --rebuild`."
        )
    return models


def to_source(doc: ImageDocument, vector: np.ndarray) -> dict[str, Any]:
    return {**doc.to_record(), VECTOR_FIELD: [float(x) for x in np.asarray(vector, np.float32)]}


def to_document(doc_id: str, source: dict[str, Any], index: str) -> ImageDocument:
    _require_fields(doc_id, source, index, REQUIRED_FIELDS)
    try:
        return ImageDocument.from_record({**source, "id": doc_id})
    except (KeyError, TypeError, ValueError) as exc:
        raise _damaged(doc_id, index, f"a field findimage cannot read ({exc})") from None


def to_fingerprint(doc_id: str, source: dict[str, Any], index: str) -> Fingerprint:
    _require_fields(doc_id, source, index, FINGERPRINT_FIELDS)
    try:
        return Fingerprint(
            path=source["path"],
            size=int(source["size"]),
            mtime=float(source["mtime"]),
            sha256=source["sha256"],
        )
    except (TypeError, ValueError) as exc:
        raise _damaged(doc_id, index, f"a field findimage cannot read ({exc})") from None


def _require_fields(doc_id: str, source: dict[str, Any], index: str, fields: tuple) -> None:
    missing = [name for name in fields if source.get(name) is None]
    if missing:
        raise _damaged(doc_id, index, f"no '{missing[0]}' field")


def _damaged(doc_id: str, index: str, problem: str) -> BackendUnavailableError:
    return BackendUnavailableError(
        f"The document {doc_id} in the Elasticsearch index {index} has {problem}: something "
        "other than findimage wrote it; run `findimage index --rebuild` to rebuild the index."
    )


# The fields a date or place filter reads, with the type each needs in the mapping.
FILTER_FIELDS = {"taken_at": "date", "gps": "geo_point"}


def date_filter(filters: Filters) -> dict[str, Any]:
    """The picture's date in [after, before): `taken_at` where the picture has one, else the
    file's `mtime` (epoch seconds, a double). A `range` on a `date` field reads ISO text in the
    field's default format, strict_date_optional_time, as UTC (https://www.elastic.co/docs/
    reference/query-languages/query-dsl/query-dsl-range-query)."""
    taken: dict[str, Any] = {}
    stamped: dict[str, Any] = {}
    if filters.after is not None:
        taken["gte"] = filters.after.isoformat()
        stamped["gte"] = utc_timestamp(filters.after)
    if filters.before is not None:
        taken["lt"] = filters.before.isoformat()
        stamped["lt"] = utc_timestamp(filters.before)
    return {
        "bool": {
            "should": [
                {"range": {"taken_at": taken}},
                {
                    "bool": {
                        "must_not": [{"exists": {"field": "taken_at"}}],
                        "filter": [{"range": {"mtime": stamped}}],
                    }
                },
            ],
            "minimum_should_match": 1,
        }
    }


def place_filter(near: Place) -> dict[str, Any]:
    """Within `km` of a point, by arc distance (https://www.elastic.co/docs/reference/
    query-languages/query-dsl/query-dsl-geo-distance-query); documents without `gps` never
    match."""
    return {"geo_distance": {"distance": f"{near.km}km", "gps": {"lat": near.lat, "lon": near.lon}}}


def knn_filter(folder: str | None, filters: Filters | None) -> dict[str, Any] | None:
    """The kNN `filter`: the folder, dates and place, applied during the search so that k
    hits come back when k documents match (https://www.elastic.co/docs/solutions/search/
    vector/knn/filtered-knn-search)."""
    clauses = [clause for clause in (folder_filter(folder or ""),) if clause is not None]
    if filters is not None and filters.by_date:
        clauses.append(date_filter(filters))
    if filters is not None and filters.near is not None:
        clauses.append(place_filter(filters.near))
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"bool": {"filter": clauses}}


def missing_filter_field(properties: dict[str, Any], filters: Filters) -> str | None:
    """The first field a filter needs that the index does not map with the right type."""
    needed = (["taken_at"] if filters.by_date else []) + (["gps"] if filters.near else [])
    for name in needed:
        if properties.get(name, {}).get("type") != FILTER_FIELDS[name]:
            return name
    return None


def folder_filter(folder: str) -> dict[str, Any] | None:
    """The folder and everything below it: "a/b" matches "a/b" and "a/b/c", never "a/bc"."""
    wanted = folder.strip("/")
    if not wanted:
        return None
    return {
        "bool": {
            "should": [
                {"term": {"folder": wanted}},
                {"prefix": {"folder": f"{wanted}/"}},
            ],
            "minimum_should_match": 1,
        }
    }
