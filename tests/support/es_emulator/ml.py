"""Machine learning: trained model stats and `_infer`, backed by a Python callable."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tests.support.es_emulator.common import EmulatorState, EsError, Json, bad_request

Encode = Callable[[list[str]], Sequence[Sequence[float]]]

# The id eland gives sentence-transformers/clip-ViT-B-32-multilingual-v1 in Elasticsearch.
TEXT_MODEL_ID = "sentence-transformers__clip-vit-b-32-multilingual-v1"

# eland imports text_embedding models with this input field
# (https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-ml-infer-trained-model:
# "docs: ... the default field name is text_field").
INPUT_FIELD = "text_field"


@dataclass
class TrainedModel:
    encode: Encode | None
    state: str | None = "started"


class MlMixin(EmulatorState):
    _models: dict[str, TrainedModel]

    def _ml(self, model_id: str, rest: list[str], body: Json) -> tuple[int, Json]:
        if rest[-1] == "_stats":
            return 200, self._model_stats(model_id)
        if rest[-1] == "_infer":
            texts = []
            for doc in body.get("docs", []):
                if INPUT_FIELD not in doc:
                    # A document without the model's input field is refused, not embedded as
                    # empty text. The exact wording was not found in Elastic's docs or
                    # issues; findimage always sends text_field, so only the 400 matters.
                    raise EsError(
                        400,
                        "status_exception",
                        f"Input field [{INPUT_FIELD}] does not exist in the request document",
                    )
                texts.append(str(doc[INPUT_FIELD]))
            vectors = self._infer_with(model_id, texts)
            return 200, {"inference_results": [{"predicted_value": list(v)} for v in vectors]}
        raise bad_request(f"no handler found for uri [/_ml/trained_models/{model_id}/...]")

    def _model_stats(self, model_id: str) -> Json:
        """The shape of GET _ml/trained_models/<id>/_stats: no `deployment_stats` when the
        model is imported but not deployed (ml/3rd_party_deployment.yml)."""
        model = self._models.get(model_id)
        if model is None:
            raise EsError(
                404,
                "resource_not_found_exception",
                f"No known trained model with model_id [{model_id}]",
            )
        stats: Json = {
            "model_id": model_id,
            "model_size_stats": {"model_size_bytes": 0, "required_native_memory_bytes": 0},
            "pipeline_count": 0,
            "inference_stats": {"failure_count": 0, "inference_count": 0, "cache_miss_count": 0},
        }
        if model.state is not None:
            stats["deployment_stats"] = {
                "deployment_id": model_id,
                "model_id": model_id,
                "state": model.state,
                "allocation_status": {
                    "allocation_count": 1 if model.state == "started" else 0,
                    "target_allocation_count": 1,
                    "state": "fully_allocated" if model.state == "started" else "starting",
                },
                "nodes": [],
            }
        return {"count": 1, "trained_model_stats": [stats]}

    def _infer_with(self, model_id: str, texts: list[str]) -> list[list[float]]:
        model = self._models.get(model_id)
        if model is None:
            raise EsError(
                404, "resource_not_found_exception", f"Could not find trained model [{model_id}]"
            )
        if model.state != "started" or model.encode is None:
            # 409 status_exception for a model that is not deployed (ml/3rd_party_deployment.yml).
            raise EsError(409, "status_exception", f"Trained model [{model_id}] is not deployed")
        return [list(map(float, v)) for v in model.encode(texts)]
