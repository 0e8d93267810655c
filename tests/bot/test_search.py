from __future__ import annotations

from pathlib import Path

import pytest

from bot.documents import ModelInfo
from bot.encoders import ClipEncoder
from bot.errors import ModelMismatchError
from bot.search import SearchQuery, SearchService
from bot.stores.embedded import EmbeddedStore
from tests.bot.stores.test_embedded import _doc
from tests.support.pictures import draw_shape


def test_a_text_query_loads_only_the_text_model(tmp_path: Path, tiny_clip: Path) -> None:
    text = ClipEncoder(str(tiny_clip), "FINDIMAGE_TEXT_MODEL", device="cpu")
    image = ClipEncoder("/models/never-loaded", "FINDIMAGE_IMAGE_MODEL", device="cpu")
    store = EmbeddedStore(tmp_path)
    store.record_models(ModelInfo(image.model_name, text.model_name, text.dims))
    vectors = text.encode_texts(["red", "blue"])
    store.upsert([(_doc("red.png"), vectors[0]), (_doc("blue.png"), vectors[1])])
    service = SearchService(store, image, text, max_file_bytes=1024 * 1024)

    # The image model cannot load: a text query that tried to would fail with ModelLoadError.
    hits = service.by_text("red", SearchQuery(k=1))

    assert [hit.document.path for hit in hits] == ["red.png"]
    store.close()


def test_an_index_of_other_models_is_refused_by_name(tmp_path: Path, tiny_clip: Path) -> None:
    encoder = ClipEncoder(str(tiny_clip), "FINDIMAGE_IMAGE_MODEL", device="cpu")
    store = EmbeddedStore(tmp_path)
    store.record_models(ModelInfo("another-image-model", encoder.model_name, encoder.dims))
    store.upsert([(_doc("a.png"), encoder.encode_images([draw_shape("red", "circle")])[0])])
    service = SearchService(store, encoder, encoder, max_file_bytes=1024 * 1024)
    with pytest.raises(ModelMismatchError, match="another-image-model"):
        service.by_text("red", SearchQuery(k=1))
    store.close()
