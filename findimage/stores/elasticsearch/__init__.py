"""The Elasticsearch store: the connection, the mapping, the store, rebuilds and the text model."""
