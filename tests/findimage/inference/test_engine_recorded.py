"""The index records which engine wrote its vectors, and refuses vectors from another."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from findimage.documents import ModelInfo
from findimage.errors import ModelMismatchError
from findimage.stores.elasticsearch.mapping import models_meta, read_models
from findimage.stores.embedded import DATABASE_NAME, EmbeddedStore
from tests.support.cli import run_in_process
from tests.support.pictures import draw_shape, make_library, save


@pytest.fixture
def library(tmp_path: Path, findimage_env: dict[str, str]) -> Path:
    root = tmp_path / "library"
    make_library(root, 6)
    return root


def status(capsys: pytest.CaptureFixture[str]) -> dict:
    code, out, err = run_in_process(capsys, "status", "--json")
    assert code == 0, err
    return json.loads(out)


def test_the_default_engine_is_recorded_and_another_is_refused_with_a_plain_sentence(
    library: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run_in_process(capsys, "index", str(library), "--json")
    assert code == 0, err
    assert status(capsys)["image_engine"] == "onnx int8"

    # A picture unlike any indexed one, so the run has to embed it (a copy would reuse the
    # vector already written by the recorded engine, which mixes nothing).
    save(draw_shape("black", "triangle", size=(50, 90)), library / "more" / "new.png")
    monkeypatch.setenv("FINDIMAGE_ENGINE", "torch")
    monkeypatch.setenv("FINDIMAGE_PRECISION", "fp32")
    code, out, err = run_in_process(capsys, "index", str(library), "--json")
    assert code != 0 and out == ""
    assert err.strip().splitlines()[-1] == (
        "findimage: The index was built by the onnx int8 image engine, but the settings say "
        "torch fp32: set FINDIMAGE_ENGINE=onnx and FINDIMAGE_PRECISION=int8 back, or rebuild "
        "the index with the new engine."
    )
    # Searching is not refused: a query vector from an engine that agrees ranks the same.
    code, out, err = run_in_process(capsys, "search", "a red circle", "--json")
    assert code == 0, err
    assert json.loads(out)["results"]


def test_int8_on_pytorch_is_refused_with_a_plain_sentence(
    library: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINDIMAGE_ENGINE", "torch")
    code, _, err = run_in_process(capsys, "index", str(library))
    assert code != 0
    assert err.strip().splitlines()[-1] == (
        "findimage: FINDIMAGE_PRECISION=int8 needs FINDIMAGE_ENGINE=onnx: PyTorch runs fp32 only."
    )


def test_elasticsearch_meta_keeps_the_engine_and_reads_older_indexes_as_pytorch() -> None:
    models = ModelInfo("image", "text", 512, engine="onnx", precision="int8")
    mappings = {
        "_meta": {"findimage": models_meta(models)},
        "properties": {"vector": {"type": "dense_vector", "dims": 512, "similarity": "cosine"}},
    }
    assert read_models("images", mappings) == models
    older = {"image_model": "image", "text_model": "text", "dims": 512}
    mappings["_meta"]["findimage"] = older
    assert read_models("images", mappings) == ModelInfo("image", "text", 512, "torch", "fp32")


def test_cuda_with_the_onnx_engine_is_refused_with_a_plain_sentence(
    library: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINDIMAGE_DEVICE", "cuda")
    code, _, err = run_in_process(capsys, "search", "a red circle")
    assert code != 0
    assert err.strip().splitlines()[-1] == (
        "findimage: FINDIMAGE_DEVICE=cuda needs FINDIMAGE_ENGINE=torch: the ONNX engine runs "
        "on the CPU."
    )


def test_once_exported_the_onnx_engine_runs_without_pytorch(
    library: Path, findimage_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """What keeps the bot small: after the export, neither PyTorch nor sentence-transformers
    is imported to search by text or by picture."""
    for command in (["index", str(library)], ["search", "a red circle"]):
        code, _, err = run_in_process(capsys, *command)  # each exports its tower, if not done yet
        assert code == 0, err
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from findimage.factory import build_search_service
        from findimage.query import Term
        from findimage.search import SearchRequest
        from findimage.settings import load_settings

        service = build_search_service(load_settings())
        assert service.search(SearchRequest((Term("text", "a red circle"),), k=2)).hits
        picture = sorted(Path({str(library)!r}).rglob("*.png"))[0].read_bytes()
        shown = SearchRequest((Term("picture", "p.png"),), k=2, pictures={{"p.png": picture}})
        assert service.search(shown).hits
        loaded = sorted({{"torch", "sentence_transformers"}} & set(sys.modules))
        print(",".join(loaded) or "none")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **findimage_env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none"


def test_an_embedded_index_from_before_engines_were_recorded_reads_as_pytorch(
    tmp_path: Path,
) -> None:
    store = EmbeddedStore(tmp_path)
    store.record_models(ModelInfo("image", "text", 16, engine="onnx", precision="int8"))
    store.close()
    with sqlite3.connect(tmp_path / DATABASE_NAME) as db:
        db.execute(
            "UPDATE meta SET value = ? WHERE key = 'models'",
            (json.dumps({"image_model": "image", "text_model": "text", "dims": 16}),),
        )
    reopened = EmbeddedStore(tmp_path)
    assert reopened.models() == ModelInfo("image", "text", 16, "torch", "fp32")
    with pytest.raises(ModelMismatchError, match="built by the torch fp32 image engine"):
        reopened.record_models(ModelInfo("image", "text", 16, engine="onnx", precision="int8"))
    reopened.close()
