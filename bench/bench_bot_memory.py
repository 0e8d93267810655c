"""The bot's resident memory after start: text vectors from Elasticsearch (image tower only)
and both towers local, on each engine, side by side in one run.

    python -m bench.bench_bot_memory            # about a minute once the models are exported
    python -m bench.bench_bot_memory --quick    # the default engine (ONNX int8) only

Each setting starts a fresh process that does what `findimage serve` does before it takes
requests (settings, store, search service, the Slack app's modules) and warms the models
it will use, then reports its resident memory. Elasticsearch is the test suite's local
stand-in, so only the bot's side is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from bench.common import common_arguments, image_model, machine, table, text_model
from tests.support.es_emulator import ElasticsearchEmulator

SETTINGS = (
    ("text from Elasticsearch, image tower local", "elasticsearch"),
    ("both towers local, embedded store", "embedded"),
)
ENGINES = (("onnx", "int8"), ("onnx", "fp32"), ("torch", "fp32"))


def child() -> None:
    """Start as the bot does, warm what it will use, print the resident memory in MiB."""
    import bot.app  # noqa: F401 - the bot's own modules count toward its memory
    from bench.common import rss_mb
    from findimage.factory import build_encoders, build_store, build_text_side
    from findimage.search import SearchService
    from findimage.settings import load_settings

    settings = load_settings()
    store = build_store(settings)
    image, local_text = build_encoders(settings)
    text, text_search = build_text_side(settings, store, local_text)
    service = SearchService(store, image, text, settings.max_file_bytes, text_search)
    service.text_model_problem()
    image.warm("image")
    if text is local_text:
        local_text.warm("text")
    print(json.dumps({"rss": rss_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child()
        return
    print(machine())
    rows = []
    with ElasticsearchEmulator() as emulator, tempfile.TemporaryDirectory() as data:
        for engine, precision in ENGINES[:1] if args.quick else ENGINES:
            cells = []
            for _, backend in SETTINGS:
                env = {
                    **os.environ,
                    "FINDIMAGE_BACKEND": backend,
                    "FINDIMAGE_ES_URL": emulator.url,
                    "FINDIMAGE_ES_TEXT_MODEL_ID": "clip-vit-b-32-multilingual-v1",
                    "FINDIMAGE_IMAGE_MODEL": image_model(args),
                    "FINDIMAGE_TEXT_MODEL": text_model(args),
                    "FINDIMAGE_ENGINE": engine,
                    "FINDIMAGE_PRECISION": precision,
                    "FINDIMAGE_DEVICE": "cpu",
                    "FINDIMAGE_DATA_DIR": data,
                    "FINDIMAGE_MODEL_CACHE": str(args.work / "model-cache"),
                    "HF_HUB_OFFLINE": "1",
                }
                done = subprocess.run(
                    [sys.executable, "-m", "bench.bench_bot_memory", "--child"],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if done.returncode != 0:
                    raise SystemExit(f"{engine} {precision} {backend} failed:\n{done.stderr}")
                rss = json.loads(done.stdout.strip().splitlines()[-1])["rss"]
                cells.append(f"{rss:.0f}")
            rows.append((f"{engine} {precision}", *cells))
    print(table(rows, ("engine", *(f"{name}: resident MiB" for name, _ in SETTINGS))))


if __name__ == "__main__":
    main()
