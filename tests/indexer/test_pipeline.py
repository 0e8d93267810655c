"""The overlapped pipeline gives the vectors the plain one-picture-at-a-time loop gives."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from findimage.documents import ModelInfo, document_id
from findimage.encoders import ClipEncoder, ImageEncoder, OnnxEncoder
from findimage.images import decode_image
from findimage.stores.embedded import EmbeddedStore
from indexer.indexer import Indexer
from indexer.pipeline import BackgroundWriter, Failed, FilePreparer
from indexer.walk import LibraryFile
from tests.support.pictures import draw_shape, gradient, make_library, save

MAX_BYTES = 50 * 1024 * 1024


def big_jpegs(root: Path) -> list[Path]:
    """Camera-sized JPEGs (decoded at 1/8 scale) in both orientations, beside small pictures."""
    paths = []
    for index, size in enumerate([(4000, 3000), (3000, 4000), (1600, 1200), (700, 500)]):
        picture = gradient((size[0] // 20, size[1] // 20), seed=index).resize(size)
        picture.paste(draw_shape("red", "circle", (size[0] // 3, size[1] // 3)), (100, 100))
        paths.append(save(picture, root / "camera" / f"photo-{index}.jpg", quality=85))
    return paths


def loop_vectors(encoder: ImageEncoder, root: Path, paths: list[Path]) -> dict[str, np.ndarray]:
    """The seeds' way: each file decoded and encoded on its own, nothing overlapped."""
    vectors = {}
    for path in paths:
        decoded = decode_image(path.read_bytes(), MAX_BYTES, encoder.input_side)
        relative = path.relative_to(root).as_posix()
        vectors[document_id(relative)] = encoder.encode_images([decoded.image])[0]
    return vectors


def encoders(tiny_clip: Path, cache: Path) -> dict[str, ImageEncoder]:
    return {
        "torch": ClipEncoder(str(tiny_clip), "FINDIMAGE_IMAGE_MODEL", device="cpu", batch_size=4),
        "onnx-fp32": OnnxEncoder(str(tiny_clip), "X", "image", "fp32", cache, threads=2),
        "onnx-int8": OnnxEncoder(str(tiny_clip), "X", "image", "int8", cache, threads=2),
    }


@pytest.mark.parametrize("engine", ["torch", "onnx-fp32", "onnx-int8"])
def test_pipeline_vectors_equal_the_one_at_a_time_loop(
    tiny_clip: Path, model_cache: Path, tmp_path: Path, engine: str
) -> None:
    root = tmp_path / "library"
    paths = make_library(root, 21) + big_jpegs(root)
    encoder = encoders(tiny_clip, model_cache)[engine]
    store = EmbeddedStore(tmp_path / "data")
    indexer = Indexer(
        store=store,
        image_encoder=encoder,
        models=lambda: ModelInfo(encoder.model_name, encoder.model_name, encoder.dims),
        batch_size=4,
        decode_workers=3,
        max_file_bytes=MAX_BYTES,
    )
    report = indexer.run(root, progress=False)
    assert (report.indexed, report.skipped) == (len(paths), [])
    expected = loop_vectors(encoder, root, paths)
    for doc_id, vector in expected.items():
        found = store.get(doc_id)
        assert found is not None
        # PyTorch batches pictures together, which moves float sums by rounding only.
        np.testing.assert_allclose(found[1], vector, atol=1e-5 if engine == "torch" else 0)
    store.close()


def test_big_jpegs_decode_at_the_smallest_scale_covering_the_model(tmp_path: Path) -> None:
    path = big_jpegs(tmp_path)[0]
    with Image.open(path) as opened:
        opened.draft("RGB", (224, 224))
        assert opened.size == (500, 375)  # 1/8 of 4000x3000: the smallest scale above 224
    decoded = decode_image(path.read_bytes(), MAX_BYTES, 224)
    assert min(decoded.image.size) == 224
    assert (decoded.width, decoded.height) == (4000, 3000)


def test_the_writer_runs_jobs_in_order_one_behind() -> None:
    order: list[int] = []
    release = threading.Event()

    def job(number: int):
        def run() -> None:
            if number == 0:
                release.wait()
            order.append(number)

        return run

    with BackgroundWriter(depth=1) as writer:
        writer.submit(job(0))
        writer.submit(job(1))  # queued behind the running job: submit does not wait
        assert order == []
        release.set()
        writer.submit(job(2))  # the queue was full: this waited for job 0
        assert order[:1] == [0]
    assert order == [0, 1, 2]


def test_a_failed_write_is_raised_after_the_jobs_before_it_ran() -> None:
    done: list[int] = []

    def fail() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"), BackgroundWriter(depth=1) as writer:
        writer.submit(lambda: done.append(1))
        writer.submit(fail)
        writer.submit(lambda: done.append(3))
    assert done[0] == 1


def test_a_file_gone_between_the_walk_and_the_read_fails_with_its_reason(tmp_path: Path) -> None:
    gone = LibraryFile(root=tmp_path, relative_path="gone.jpg", size=10, mtime=1.0)
    # A model that cannot load: failing on the read must not need it.
    unloadable = ClipEncoder(str(tmp_path / "no-model"), "FINDIMAGE_IMAGE_MODEL", device="cpu")
    prepared = FilePreparer({}, document_id, max_file_bytes=1024, encoder=unloadable)(gone)
    assert prepared == Failed(gone, "cannot be read (No such file or directory)")
