"""Test-side helpers: tiny CLIP models, generated pictures, local stand-ins for services."""
