"""Indices, their mappings and settings, and aliases: create, get, delete, `_aliases`."""

from __future__ import annotations

import copy
import fnmatch
from typing import Any

from tests.support.es_emulator.common import (
    EmulatorState,
    EsError,
    Index,
    Json,
    as_list,
    bad_request,
    index_not_found,
)

MAX_DIMS = 4096
MAX_NAME_BYTES = 255
# Strings.INVALID_FILENAME_CHARS in elastic/elasticsearch (server/.../common/Strings.java).
INVALID_NAME_CHARS = ("\\", "/", "*", "?", '"', "<", ">", "|", " ", ",")
SIMILARITIES = {"cosine", "dot_product", "l2_norm", "max_inner_product"}
# dense_vector index_options types: https://www.elastic.co/docs/reference/elasticsearch/
# mapping-reference/dense-vector#dense-vector-index-options
INDEX_TYPES = {
    "hnsw",
    "int8_hnsw",
    "int4_hnsw",
    "bbq_hnsw",
    "flat",
    "int8_flat",
    "int4_flat",
    "bbq_flat",
}
FIELD_TYPES = {
    "dense_vector",
    "keyword",
    "date",
    "geo_point",
    "long",
    "double",
    "float",
    "integer",
    "text",
    "boolean",
    "object",
}
DEFAULT_SETTINGS = {"number_of_shards": "1", "number_of_replicas": "1", "refresh_interval": "1s"}


def name_problem(name: str) -> str | None:
    """What is wrong with an index or alias name, in Elasticsearch's words, or None.

    MetadataCreateIndexService.validateIndexOrAliasName in elastic/elasticsearch: no
    INVALID_FILENAME_CHARS, '#' or ':', no leading '_', '-' or '+', at most 255 bytes, not
    '.' or '..'.
    """
    if any(char in name for char in INVALID_NAME_CHARS):
        listed = ", ".join(INVALID_NAME_CHARS)
        return f"must not contain the following characters [{listed}]"
    if "#" in name:
        return "must not contain '#'"
    if ":" in name:
        return "must not contain ':'"
    if not name or name[0] in "_-+":
        return "must not start with '_', '-', or '+'"
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        return f"index name is too long, ({size} > {MAX_NAME_BYTES})"
    if name in {".", ".."}:
        return "must not be '.' or '..'"
    return None


def invalid_index_name(name: str, problem: str) -> EsError:
    # InvalidIndexNameException: "Invalid index name [NAME], PROBLEM"
    return EsError(
        400,
        "invalid_index_name_exception",
        f"Invalid index name [{name}], {problem}",
        index_uuid="_na_",
        index=name,
    )


def invalid_alias_name(name: str, problem: str) -> EsError:
    # InvalidAliasNameException: "Invalid alias name [NAME]: PROBLEM"
    return EsError(400, "invalid_alias_name_exception", f"Invalid alias name [{name}]: {problem}")


class IndicesMixin(EmulatorState):
    def _exists(self, name: str) -> bool:
        return name in self._indices or self._is_alias(name)

    def _is_alias(self, name: str) -> bool:
        return any(name in i.aliases for i in self._indices.values())

    def _resolve_read(self, name: str) -> list[str]:
        """Concrete indices behind names, aliases and wildcards (comma-separated).

        A wildcard that matches nothing resolves to nothing, as `allow_no_indices` (default
        true) lets it (https://www.elastic.co/docs/reference/elasticsearch/rest-apis/
        api-conventions#api-multi-index); a plain unknown name is index_not_found.
        """
        names: list[str] = []
        for part in name.split(","):
            if part in self._indices:
                names.append(part)
                continue
            matched = [i.name for i in self._indices.values() if part in i.aliases]
            if any(c in part for c in "*?"):
                matched += [n for n in self._indices if fnmatch.fnmatchcase(n, part)]
                names.extend(matched)
                continue
            if not matched:
                raise index_not_found(part)
            names.extend(matched)
        return sorted(set(names))

    def _resolve_one(self, name: str) -> Index:
        names = self._resolve_read(name)
        if not names:
            raise index_not_found(name)
        return self._indices[names[0]]

    def _resolve_write(self, name: str) -> Index:
        """The index a write to `name` lands in; an unknown name is created, as ES does."""
        if name in self._indices:
            return self._indices[name]
        holders = [i for i in self._indices.values() if name in i.aliases]
        if not holders:
            self._create(name, {})
            return self._indices[name]
        if len(holders) == 1:
            return holders[0]
        writers = [i for i in holders if i.aliases[name].get("is_write_index")]
        if len(writers) != 1:
            # IndexAbstraction.getWriteIndex: the text of the error, as in the
            # indices.put_alias and bulk YAML tests.
            raise bad_request(
                f"no write index is defined for alias [{name}]. The write index may be explicitly "
                "disabled using is_write_index=false or the alias points to multiple indices "
                "without one being designated as a write index"
            )
        return writers[0]

    def _create(self, name: str, body: Json) -> Json:
        if name in self._indices:
            raise EsError(
                400,
                "resource_already_exists_exception",
                f"index [{name}/emulated] already exists",
                index=name,
            )
        if self._is_alias(name):
            # MetadataCreateIndexService.validateIndexName: InvalidIndexNameException.
            raise invalid_index_name(name, "already exists as alias")
        if name != name.lower():
            raise invalid_index_name(name, "must be lowercase")
        problem = name_problem(name)
        if problem is not None:
            raise invalid_index_name(name, problem)
        mappings = copy.deepcopy(body.get("mappings", {}))
        for field_name, spec in mappings.get("properties", {}).items():
            _check_field_mapping(field_name, spec)
        settings = _flat_settings(body.get("settings", {}))
        _check_settings(settings)
        index = Index(
            name=name,
            mappings=mappings,
            settings={"index": {**DEFAULT_SETTINGS, **settings}},
            version=self._version(),
        )
        for alias, options in body.get("aliases", {}).items():
            self._check_alias_name(alias, name, removed=set())
            index.aliases[alias] = dict(options or {})
        self._indices[name] = index
        return {"acknowledged": True, "shards_acknowledged": True, "index": name}

    def _delete_index(self, name: str) -> Json:
        if name not in self._indices:
            if self._is_alias(name):
                # indices.delete/10_basic.yml: "Delete index against alias" is a 400.
                raise bad_request(
                    f"The provided expression [{name}] matches an alias, specify the "
                    "corresponding concrete indices instead."
                )
            if any(c in name for c in "*?"):
                for matched in self._resolve_read(name):
                    del self._indices[matched]
                return {"acknowledged": True}
            raise index_not_found(name)
        del self._indices[name]
        return {"acknowledged": True}

    def _get_index(self, name: str) -> Json:
        return {
            n: {
                "aliases": copy.deepcopy(self._indices[n].aliases),
                "mappings": copy.deepcopy(self._indices[n].mappings),
                "settings": copy.deepcopy(self._indices[n].settings),
            }
            for n in self._resolve_read(name)
        }

    def _get_mapping(self, name: str) -> Json:
        return {
            n: {"mappings": copy.deepcopy(self._indices[n].mappings)}
            for n in self._resolve_read(name)
        }

    def _put_mapping(self, name: str, body: Json) -> Json:
        for index_name in self._resolve_read(name):
            index = self._indices[index_name]
            for field_name, spec in body.get("properties", {}).items():
                _check_field_mapping(field_name, spec)
                existing = index.properties().get(field_name)
                if existing is not None and existing.get("type") != spec.get("type"):
                    raise bad_request(
                        f"mapper [{field_name}] cannot be changed from type "
                        f"[{existing.get('type')}] to [{spec.get('type')}]"
                    )
                if existing is not None and existing.get("dims", spec.get("dims")) != spec.get(
                    "dims", existing.get("dims")
                ):
                    raise bad_request(
                        f"Mapper for [{field_name}] conflicts with existing mapper: "
                        "Cannot update parameter [dims]"
                    )
                index.properties()[field_name] = copy.deepcopy(spec)
            if "_meta" in body:
                index.mappings["_meta"] = copy.deepcopy(body["_meta"])
        return {"acknowledged": True}

    def _get_settings(self, name: str) -> Json:
        # indices.get_settings: {"INDEX": {"settings": {"index": {...}}}}, values as strings.
        return {
            n: {"settings": copy.deepcopy(self._indices[n].settings)}
            for n in self._resolve_read(name)
        }

    def _put_settings(self, name: str, body: Json) -> Json:
        """Dynamic settings only; null puts the default back (indices.put_settings/10_basic.yml:
        "Test indices settings ... reset"). https://www.elastic.co/docs/api/doc/elasticsearch/
        operation/operation-indices-put-settings"""
        changes = _flat_settings(body.get("settings", body))
        if "number_of_shards" in changes:
            raise bad_request(
                "Can't update non dynamic settings [[index.number_of_shards]] for open indices"
            )
        _check_settings({k: v for k, v in changes.items() if v is not None})
        for index_name in self._resolve_read(name):
            current = self._indices[index_name].settings["index"]
            for key, value in changes.items():
                if value is None:
                    current.pop(key, None)
                    if key in DEFAULT_SETTINGS:
                        current[key] = DEFAULT_SETTINGS[key]
                else:
                    current[key] = value
        return {"acknowledged": True}

    def _check_alias_name(self, alias: str, index: str, removed: set[str]) -> None:
        """AliasValidator: the static name rules, and no index of the same name (unless the
        same `_aliases` call removes it: 30_remove_index_and_replace_with_alias.yml)."""
        problem = name_problem(alias)
        if problem is not None:
            raise invalid_alias_name(alias, problem)
        if alias == index:
            raise invalid_alias_name(alias, "an alias cannot have the same name as its index")
        if alias in self._indices and alias not in removed:
            raise invalid_alias_name(
                alias, "an index or data stream exists with the same name as the alias"
            )

    def _get_alias(self, index: str | None, alias: str | None, method: str) -> tuple[int, Json]:
        candidates = self._resolve_read(index) if index else sorted(self._indices)
        result: Json = {}
        for name in candidates:
            found = {
                a: copy.deepcopy(o)
                for a, o in self._indices[name].aliases.items()
                if alias is None or fnmatch.fnmatchcase(a, alias)
            }
            if found or alias is None:
                result[name] = {"aliases": found}
        if alias is not None and not result:
            if method == "HEAD":
                return 404, {}
            # indices.get_alias/10_basic.yml: a missing alias is 404 with this error string.
            return 404, {"error": f"alias [{alias}] missing", "status": 404}
        return 200, result

    def _update_aliases(self, body: Json) -> tuple[int, Json]:
        """All actions or none, apart from removals of missing aliases without must_exist.

        - Indices named in `remove_index` go first, so an alias can take an index's name in
          the same call (30_remove_index_and_replace_with_alias.yml); `remove_index` takes
          concrete indices only.
        - Since 8.14 a `remove` of a missing alias (must_exist unset or false) does not fail
          the call: the answer has `errors: true` and one `action_results` entry per action;
          when every action fails, the call is a 404 aliases_not_found_exception
          (40_must_exist.yml; elastic/elasticsearch#106514). must_exist: true fails it all.
        """
        actions = body.get("actions", [])
        removed: set[str] = set()
        for action in actions:
            (kind, options), *_ = action.items()
            if kind == "remove_index":
                if "must_exist" in options:
                    raise bad_request("[remove_index] unknown field [must_exist]")
                for name in as_list(options.get("index") or options.get("indices")):
                    if name not in self._indices and self._is_alias(name):
                        raise bad_request(
                            f"The provided expression [{name}] matches an alias, specify the "
                            "corresponding concrete indices instead."
                        )
                    removed.update(self._resolve_read(name))
        staged = {
            name: dict(index.aliases)
            for name, index in self._indices.items()
            if name not in removed
        }
        results: list[Json] = []
        for action in actions:
            (kind, options), *_ = action.items()
            names = as_list(options.get("index") or options.get("indices"))
            aliases = as_list(options.get("alias") or options.get("aliases"))
            described = {"type": kind, "indices": names, "aliases": aliases}
            if kind == "remove_index":
                results.append({"action": described, "status": 200})
                continue
            targets = [t for name in names for t in self._resolve_read(name) if t not in removed]
            if kind == "add":
                if "must_exist" in options:
                    raise bad_request("[add] unknown field [must_exist]")
                if not targets:
                    raise index_not_found(",".join(names))
                for target in targets:
                    for alias in aliases:
                        self._check_alias_name(alias, target, removed)
                        extra = {k: v for k, v in options.items() if k == "is_write_index"}
                        staged[target][alias] = extra
                results.append({"action": described, "status": 200})
            elif kind == "remove":
                missing = [
                    alias
                    for alias in aliases
                    if not any(alias in staged[target] for target in targets)
                ]
                if missing and options.get("must_exist"):
                    raise EsError(
                        404, "aliases_not_found_exception", f"aliases [{missing[0]}] missing"
                    )
                for target in targets:
                    for alias in aliases:
                        staged[target].pop(alias, None)
                if missing:
                    error = {
                        "type": "aliases_not_found_exception",
                        "reason": f"aliases [{','.join(missing)}] missing",
                    }
                    results.append({"action": described, "status": 404, "error": error})
                else:
                    results.append({"action": described, "status": 200})
            else:
                raise bad_request(f"[aliases] unknown field [{kind}]", "x_content_parse_exception")
        failed = [result for result in results if result["status"] != 200]
        if failed and len(failed) == len(results):
            reason = failed[0]["error"]["reason"]
            raise EsError(404, "aliases_not_found_exception", reason)
        for name in removed:
            del self._indices[name]
        for name, aliases in staged.items():
            self._indices[name].aliases = aliases
        if not failed:
            return 200, {"acknowledged": True, "errors": False}
        return 200, {"acknowledged": True, "errors": True, "action_results": results}


def _flat_settings(settings: Json) -> Json:
    """{"index": {"refresh_interval": ...}} or {"index.refresh_interval": ...} as flat strings,
    the way Elasticsearch stores and returns them (null kept: it means "back to default")."""
    nested = settings.get("index", {})
    flat: Json = {}
    for source in (settings, nested if isinstance(nested, dict) else {}):
        for key, value in source.items():
            if key == "index" and isinstance(value, dict):
                continue
            name = key.removeprefix("index.")
            if isinstance(value, bool):
                value = str(value).lower()
            flat[name] = None if value is None else str(value)
    return flat


def _check_settings(settings: Json) -> None:
    # number_of_replicas >= 0; refresh_interval a time value or -1 (IndexSettings).
    replicas = settings.get("number_of_replicas")
    if replicas is not None and (not replicas.lstrip("-").isdigit() or int(replicas) < 0):
        raise bad_request(
            f"Failed to parse value [{replicas}] for setting [index.number_of_replicas] must be "
            ">= 0"
        )
    interval = settings.get("refresh_interval")
    if interval is not None and interval != "-1" and not _is_time_value(interval):
        raise bad_request(
            f"failed to parse setting [index.refresh_interval] with value [{interval}] as a "
            "time value: unit is missing or unrecognized"
        )


def _is_time_value(value: str) -> bool:
    for unit in ("nanos", "micros", "ms", "s", "m", "h", "d"):
        if value.endswith(unit) and value[: -len(unit)].replace(".", "", 1).isdigit():
            return True
    return False


def _check_field_mapping(name: str, spec: Json) -> None:
    """The mapping checks a findimage mapping can meet (mapper_parsing_exception texts from
    DenseVectorFieldMapper and the dense_vector docs)."""
    kind = spec.get("type")
    if kind is None and "properties" in spec:
        return
    if kind not in FIELD_TYPES:
        raise EsError(
            400,
            "mapper_parsing_exception",
            f"No handler for type [{kind}] declared on field [{name}]",
        )
    if kind != "dense_vector":
        return
    dims = spec.get("dims")
    if dims is not None and not 1 <= int(dims) <= MAX_DIMS:
        raise EsError(
            400,
            "mapper_parsing_exception",
            f"The number of dimensions should be in the range [1, {MAX_DIMS}] but was [{dims}]",
        )
    similarity = spec.get("similarity", "cosine")
    if similarity not in SIMILARITIES:
        raise EsError(
            400, "mapper_parsing_exception", f"Unknown value [{similarity}] for field [similarity]"
        )
    options = spec.get("index_options")
    if options is not None:
        if options.get("type") not in INDEX_TYPES:
            raise EsError(
                400,
                "mapper_parsing_exception",
                f"Unknown vector index options type [{options.get('type')}] for field [{name}]",
            )
        for key in ("m", "ef_construction"):
            if key in options and int(options[key]) < 1:
                raise EsError(400, "mapper_parsing_exception", f"[{key}] must be greater than 0")


def dynamic_mapping(value: Any) -> Json:
    """How `dynamic: true` maps a new field (https://www.elastic.co/docs/manage-data/
    data-store/mapping/dynamic-field-mapping); float arrays of 128 to 4096 become
    dense_vector (dense-vector docs)."""
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "long"}
    if isinstance(value, float):
        return {"type": "float"}
    if (
        isinstance(value, list)
        and 128 <= len(value) <= MAX_DIMS
        and all(isinstance(v, float) for v in value)
    ):
        return {"type": "dense_vector", "dims": len(value), "similarity": "cosine", "index": True}
    if isinstance(value, list):
        return dynamic_mapping(value[0]) if value else {"type": "keyword"}
    if isinstance(value, dict):
        return {"properties": {k: dynamic_mapping(v) for k, v in value.items()}}
    return {"type": "keyword"}
