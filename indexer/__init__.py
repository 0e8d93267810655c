"""Walks the image store, embeds the pictures and writes them to the vector store."""
