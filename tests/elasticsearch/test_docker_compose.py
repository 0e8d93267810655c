"""docker-compose.yml is valid YAML and wires the bot to Elasticsearch (no Docker engine here)."""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def test_compose_runs_elasticsearch_with_ml_and_the_bot_against_it() -> None:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    elasticsearch = compose["services"]["elasticsearch"]
    assert elasticsearch["image"].startswith("docker.elastic.co/elasticsearch/elasticsearch:9.")
    settings = elasticsearch["environment"]
    assert settings["discovery.type"] == "single-node"
    assert settings["xpack.license.self_generated.type"] == "trial"
    assert settings["xpack.ml.enabled"] == "true"

    bot = compose["services"]["bot"]
    assert "findimage serve" in " ".join(bot["command"])
    assert bot["depends_on"]["elasticsearch"]["condition"] == "service_healthy"
    env = bot["environment"]
    assert env["FINDIMAGE_BACKEND"] == "elasticsearch"
    assert env["FINDIMAGE_ES_URL"] == "http://elasticsearch:9200"
    # Read from .env, with the id eland gives the default text model when .env says nothing.
    assert env["FINDIMAGE_ES_TEXT_MODEL_ID"] == (
        "${FINDIMAGE_ES_TEXT_MODEL_ID-sentence-transformers__clip-vit-b-32-multilingual-v1}"
    )
    assert set(compose["volumes"]) >= {"es-data"}
