"""Vector stores: one interface, an embedded and an Elasticsearch implementation."""
