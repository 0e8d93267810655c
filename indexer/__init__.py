"""Walks the library, embeds the pictures and writes them to the vector store."""
