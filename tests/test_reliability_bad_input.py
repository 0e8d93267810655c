"""Every kind of file a team throws at the bot, through `findimage index` and as a query
picture of `findimage search --image`: good ones indexed and searchable, bad ones skipped
(or refused) with their reason in one line, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from findimage.encoders import ClipEncoder
from findimage.images import decode_image
from tests.support.cli import json_in_process, run_in_process
from tests.support.es_emulator import ElasticsearchEmulator
from tests.support.odd_files import BAD, GOOD, MAX_FILE_MB
from tests.support.pictures import draw_shape, encode, make_library


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad-input") / "library"
    root.mkdir()
    for name, make in GOOD.items():
        (root / name).write_bytes(make())
    for name, (make, _) in BAD.items():
        (root / name).write_bytes(make())
    return root


@pytest.fixture
def env(findimage_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINDIMAGE_MAX_FILE_MB", str(MAX_FILE_MB))


def test_the_indexer_indexes_the_good_files_once_and_lists_each_bad_one_with_its_reason(
    files: Path, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_in_process(capsys, "index", str(files), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["indexed"] == len(GOOD)
    skipped = {item["path"]: item["reason"] for item in report["skipped"]}
    assert skipped.keys() == BAD.keys()
    for name, (_, reason) in BAD.items():
        assert reason in skipped[name], (name, skipped[name])
    assert "Traceback" not in err

    code, out, err = run_in_process(capsys, "index", str(files))
    assert code == 0
    assert f"skipped {len(BAD)}" in out
    # One line per skipped file, even for names that hold a newline.
    assert len([line for line in out.splitlines() if "skipped " in line]) == len(BAD) + 1

    code, out, _ = run_in_process(capsys, "search", "red circle", "-k", "50", "--json")
    assert code == 0
    found = [hit["path"] for hit in json.loads(out)["results"]]
    assert sorted(found) == sorted(GOOD), "every good file once, no bad one"

    # The terminal table: one line per picture, control characters shown escaped.
    code, out, _ = run_in_process(capsys, "search", "red circle", "-k", "50")
    assert code == 0
    assert len(out.splitlines()) == 2 + len(GOOD)
    assert "line\\nbreak.png" in out and "\\x1b]0;pwned\\x07title.png" in out
    assert "\x1b" not in out and "\x07" not in out


@pytest.mark.parametrize("name", list(GOOD))
def test_a_good_odd_file_is_a_query_picture(
    name: str, files: Path, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_in_process(capsys, "index", str(files))[0] == 0
    code, out, err = run_in_process(
        capsys, "search", "--image", str(files / name), "-k", "3", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["results"]


@pytest.mark.parametrize("name", list(BAD))
def test_a_bad_query_picture_is_one_sentence_with_its_reason(
    name: str, files: Path, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_in_process(capsys, "search", "--image", str(files / name))
    assert code != 0
    assert out == ""
    [line] = err.strip().splitlines()
    assert line.startswith("findimage: ") and BAD[name][1] in line, line


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_a_picture_stored_rotated_with_its_exif_orientation_embeds_as_the_upright_one(
    orientation: int, trained_clip: Path
) -> None:
    """Cameras store the sensor's pixels and an Orientation tag; the vector must be that of
    the picture as people see it."""
    upright = draw_shape("red", "triangle", (160, 96))
    # Orientation 3: rotated 180°; 6: the stored pixels need 90° clockwise; 8: 90° counter.
    stored = {
        3: upright.transpose(Image.Transpose.ROTATE_180),
        6: upright.transpose(Image.Transpose.ROTATE_90),
        8: upright.transpose(Image.Transpose.ROTATE_270),
    }[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    encoder = ClipEncoder(str(trained_clip), "FINDIMAGE_IMAGE_MODEL", "cpu")
    pictures = [
        decode_image(encode(upright, "JPEG", quality=95), 10_000_000).image,
        decode_image(encode(stored, "JPEG", quality=95, exif=exif), 10_000_000).image,
        decode_image(encode(stored, "JPEG", quality=95), 10_000_000).image,  # tag lost
    ]
    vectors = encoder.encode_images(pictures)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with_tag, without_tag = vectors[1] @ vectors[0], vectors[2] @ vectors[0]
    assert with_tag > 0.99
    assert with_tag > without_tag


@pytest.fixture(params=["embedded", "elasticsearch"])
def backend(
    request: pytest.FixtureRequest, env: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ElasticsearchEmulator | None]:
    """The embedded store, or an Elasticsearch index on the emulator."""
    if request.param == "embedded":
        yield None
        return
    with ElasticsearchEmulator() as cluster:
        monkeypatch.setenv("FINDIMAGE_BACKEND", "elasticsearch")
        monkeypatch.setenv("FINDIMAGE_ES_URL", cluster.url)
        yield cluster


@pytest.mark.slow
def test_a_thousand_files_with_one_in_ten_bad_are_indexed_good_once_and_bad_listed(
    tmp_path: Path,
    backend: ElasticsearchEmulator | None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "big-library"
    good = make_library(root, 900)
    bad_kinds = list(BAD.items())
    bad = {}
    for number in range(100):
        name, (make, reason) = bad_kinds[number % len(bad_kinds)]
        path = root / "bad" / f"{number:03d}-{name.replace(chr(10), ' ')}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make())
        bad[path.relative_to(root).as_posix()] = reason

    code, out, err = run_in_process(capsys, "index", str(root), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["indexed"] == len(good)
    skipped = {item["path"]: item["reason"] for item in report["skipped"]}
    assert skipped.keys() == bad.keys()
    assert all(reason in skipped[path] for path, reason in bad.items())
    code, out, _ = run_in_process(capsys, "index", str(root))
    assert code == 0 and "skipped 100." in out
    assert json_in_process(capsys, "status")["count"] == len(good)
    if backend is not None:
        stored = backend.stored_paths()
        assert sorted(stored) == sorted(p.relative_to(root).as_posix() for p in good)
