"""Date and place filters on an Elasticsearch index whose mapping lacks their fields."""

from __future__ import annotations

from datetime import datetime

import pytest

from findimage.documents import ModelInfo
from findimage.errors import ConfigError
from findimage.factory import build_store
from findimage.filters import Filters, Place
from findimage.settings import load_settings
from findimage.stores.elasticsearch.mapping import VectorIndexOptions, index_mappings
from tests.support.store_cases import DIMS, library_document, unit_vector

MODELS = ModelInfo("clip-image", "clip-text", DIMS)


@pytest.mark.parametrize(
    ("missing", "filters", "kind"),
    [
        ("gps", Filters(near=Place(48.85, 2.35, 10)), "geo_point field 'gps' to filter by place"),
        ("taken_at", Filters(before=datetime(2025, 1, 1)), "date field"),
    ],
)
def test_an_index_without_a_filters_field_says_to_rebuild(
    es_env: dict[str, str],
    missing: str,
    filters: Filters,
    kind: str,
) -> None:
    """An index made by another tool's template or by hand, with findimage's _meta but not
    every field: the filtered search is refused with the way out; an unfiltered one works."""
    mappings = index_mappings(MODELS, VectorIndexOptions())
    del mappings["properties"][missing]
    mappings["dynamic"] = True
    settings = load_settings()
    store = build_store(settings)
    # The store's own client speaks the emulated cluster's version.
    store.connection.client.indices.create(
        index=f"{settings.es_index}-old", mappings=mappings, aliases={settings.es_index: {}}
    )
    doc = library_document("a.jpg")
    assert store.upsert([(doc, unit_vector([1.0]))]) == []
    store.refresh()

    with pytest.raises(ConfigError) as refused:
        store.search(unit_vector([1.0]), 3, filters=filters)
    assert kind in str(refused.value)
    assert "run `findimage index --rebuild`" in str(refused.value)
    assert [hit.document.path for hit in store.search(unit_vector([1.0]), 3)] == ["a.jpg"]
    store.close()
