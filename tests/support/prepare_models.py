"""The run's shared models and their exports, made while the xdist workers start.

`python -m tests.support.prepare_models RUN_FOLDER`, started by the controller
(tests/conftest.py). Each thing is made under the same lock a worker takes for it
(tests/support/shared.py, and the exporter's own lock for the exports), so a worker that
needs one before it is ready waits for it, and one this process failed to make is made by
the first worker that needs it. Before this, the workers made them on first use: the first
Slack test of each worker waited for the trained CLIP (about 9 s of training) and its two
exports, one worker busy and three idle.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import torch

from findimage.encoders import OnnxEncoder
from tests.support.shared import (
    MODEL_CACHE,
    OTHER_CLIP,
    TINY_CLIP,
    TRAINED_CLIP,
    made_once_in,
)
from tests.support.tiny_clip import save_other_clip, save_tiny_clip
from tests.support.trained_clip import train_tiny_clip

# The exports the suite uses most, roughly in the order its tests first need them: the Slack
# tests' trained CLIP, then the tiny CLIP at the default precision and at fp32, then the
# other models an index is rebuilt with.
EXPORTS = (
    (TRAINED_CLIP, "image", "int8"),
    (TRAINED_CLIP, "text", "int8"),
    (TINY_CLIP, "image", "int8"),
    (TINY_CLIP, "text", "int8"),
    (TINY_CLIP, "image", "fp32"),
    (TINY_CLIP, "text", "fp32"),
    (OTHER_CLIP, "image", "int8"),
)


def prepare(run_folder: Path) -> None:
    # One core's worth: the workers are importing and collecting on the others.
    torch.set_num_threads(1)
    models = {
        TINY_CLIP: made_once_in(run_folder, TINY_CLIP, save_tiny_clip),
        OTHER_CLIP: made_once_in(run_folder, OTHER_CLIP, save_other_clip),
        TRAINED_CLIP: made_once_in(run_folder, TRAINED_CLIP, train_tiny_clip),
    }
    cache = made_once_in(run_folder, MODEL_CACHE, lambda folder: None)
    for model, tower, precision in EXPORTS:
        encoder = OnnxEncoder(
            str(models[model]), "FINDIMAGE_IMAGE_MODEL", tower, precision, cache, threads=1
        )
        try:
            encoder.load()
        except Exception:
            # Logged (prepare-models.log in the run's folder) and left to the first test that
            # needs it, which then fails with the reason; the other exports go on.
            traceback.print_exc()


if __name__ == "__main__":
    prepare(Path(sys.argv[1]))
