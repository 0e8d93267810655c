"""The CLIP text model deployed in Elasticsearch (with eland), as findimage's text encoder.

`encode_texts` is the two-step way (`_infer`, then kNN); `by_text` is the one-round-trip
way, where the search itself embeds the text through `query_vector_builder`. Either way a
failure is explained by the deployment's state, as `ml.get_trained_models_stats` reports it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from elasticsearch import NotFoundError as EsNotFoundError

from findimage.documents import SearchHit
from findimage.errors import BackendUnavailableError, FindImageError
from findimage.filters import Filters
from findimage.stores.elasticsearch.connection import translate_errors
from findimage.stores.elasticsearch.store import ElasticsearchStore

log = logging.getLogger(__name__)

STARTED = "started"


class ElasticsearchTextModel:
    """`model_name` is the model as findimage knows it (FINDIMAGE_TEXT_MODEL); `model_id` is its
    id in Elasticsearch (FINDIMAGE_ES_TEXT_MODEL_ID)."""

    def __init__(self, store: ElasticsearchStore, model_id: str, model_name: str):
        self.model_name = model_name
        self.model_id = model_id
        self._store = store
        self._connection = store.connection
        self._checked = False

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        self._require_started()
        action = f"run the text model {self.model_id}"
        with self._explained(), translate_errors(self._connection, action):
            response = self._connection.client.ml.infer_trained_model(
                model_id=self.model_id, docs=[{"text_field": text} for text in texts]
            )
        vectors = np.asarray(
            [result["predicted_value"] for result in response["inference_results"]],
            dtype=np.float32,
        )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1, norms)

    def by_text(
        self, text: str, k: int, folder: str | None, filters: Filters | None = None
    ) -> list[SearchHit]:
        self._require_started()
        with self._explained():
            return self._store.by_text(text, self.model_id, k, folder, filters)

    def problem(self) -> str | None:
        """One plain sentence when the model cannot embed text now, else None."""
        try:
            with translate_errors(self._connection, f"read the state of {self.model_id}"):
                try:
                    response = self._connection.client.ml.get_trained_models_stats(
                        model_id=self.model_id
                    )
                except EsNotFoundError:
                    return self._missing()
        except FindImageError as error:
            return str(error)
        stats = response["trained_model_stats"]
        if not stats:
            return self._missing()
        deployment = stats[0].get("deployment_stats")
        if not deployment:
            return (
                f"The text model {self.model_id} is in Elasticsearch but not deployed: start it "
                f"with POST _ml/trained_models/{self.model_id}/deployment/_start."
            )
        state = deployment.get("state", "unknown")
        if state != STARTED:
            return (
                f"The text model {self.model_id} is {state} in Elasticsearch, not started: "
                f"wait for it, or start it with POST _ml/trained_models/{self.model_id}"
                "/deployment/_start."
            )
        return None

    def _missing(self) -> str:
        return (
            f"The text model {self.model_id} is not in Elasticsearch: import it with "
            "eland_import_hub_model (see docs/elasticsearch.md), or unset "
            "FINDIMAGE_ES_TEXT_MODEL_ID to embed text locally."
        )

    def _require_started(self) -> None:
        """Check the deployment once, on first use; afterwards failures are explained as met."""
        if self._checked:
            return
        problem = self.problem()
        if problem is not None:
            raise BackendUnavailableError(problem)
        self._checked = True

    @contextmanager
    def _explained(self) -> Iterator[None]:
        """Replace a failure's sentence by the deployment's state when that is the cause."""
        try:
            yield
        except BackendUnavailableError as error:
            problem = self.problem()
            if problem is None or problem == str(error):
                raise
            log.warning("text model %s: %s", self.model_id, problem)
            raise BackendUnavailableError(problem) from None
