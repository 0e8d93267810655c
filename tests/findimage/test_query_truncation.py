"""Queries longer than the text model reads are cut to whole words, never an error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from findimage.cli import main
from findimage.encoders import ClipEncoder, FittedText, OnnxEncoder
from tests.support.pictures import draw_shape, encode


@pytest.fixture(scope="module")
def encoder(tiny_clip: Path) -> ClipEncoder:
    return ClipEncoder(str(tiny_clip), "FINDIMAGE_TEXT_MODEL", device="cpu")


def test_a_query_that_fits_is_left_alone(encoder: ClipEncoder) -> None:
    fitted = encoder.fit_text("a red circle")

    assert (fitted.text, fitted.cut) == ("a red circle", False)


def test_a_long_query_is_cut_to_whole_words_the_model_can_encode(encoder: ClipEncoder) -> None:
    """The tiny CLIP has 32 positions; without the cut it raises ValueError."""
    long = " ".join(f"red circle {n}" for n in range(40))
    with pytest.raises(ValueError):
        encoder.encode_texts([long])

    fitted = encoder.fit_text(long)

    assert fitted.cut and fitted.max_tokens == 32
    assert long.startswith(fitted.text) and long[len(fitted.text)] == " "
    encoder.encode_texts([fitted.text])
    one_more_word = long[: long.index(" ", len(fitted.text) + 1)]
    with pytest.raises(ValueError):
        encoder.encode_texts([one_more_word])


def test_a_long_query_without_spaces_is_cut_by_characters(encoder: ClipEncoder) -> None:
    fitted = encoder.fit_text("雪山" * 100)

    assert fitted.cut and fitted.text and fitted.text != "雪山" * 100
    encoder.encode_texts([fitted.text])


def test_the_cli_searches_with_the_cut_query_and_says_so_fitting_it_once(
    findimage_env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    library = tmp_path / "library"
    library.mkdir()
    (library / "circle.png").write_bytes(encode(draw_shape("red", "circle")))
    assert main(["index", str(library), "--json"]) == 0
    capsys.readouterr()
    long = " ".join(["snowy mountain"] * 40)
    fitted = _record_fitting(monkeypatch)

    assert main(["search", long]) == 0

    err = capsys.readouterr().err
    assert "findimage: note: the description was too long for the text model (32 tokens" in err
    assert "ValueError" not in err
    # The note and the search read one fitting of the query.
    assert fitted == [long]


def _record_fitting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each text the real encoders (either engine) fit, recorded as they fit it."""
    fitted: list[str] = []
    for encoder in (ClipEncoder, OnnxEncoder):
        real = encoder.fit_text

        def recording(self: Any, text: str, real: Callable[..., FittedText] = real) -> FittedText:
            fitted.append(text)
            return real(self, text)

        monkeypatch.setattr(encoder, "fit_text", recording)
    return fitted
