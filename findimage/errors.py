"""Errors that carry one plain sentence for the user; details go to the logs."""

from __future__ import annotations


class FindImageError(Exception):
    """A failure the user can act on. str(error) is the sentence to show them."""

    exit_code = 1


class ConfigError(FindImageError):
    """A setting or an argument is wrong: fix it and run again."""

    exit_code = 2


class ModelLoadError(FindImageError):
    """A CLIP model could not be loaded."""


class ModelMismatchError(FindImageError):
    """The index was built with other models than the ones configured."""

    exit_code = 2


class IndexChangedError(ModelMismatchError):
    """The index was rebuilt with other models after they were checked (by another process).

    The search service answers it by checking the models again, so a running bot refuses
    with the very sentence a fresh process gives.
    """


class ImageError(FindImageError):
    """A picture cannot be used: unreadable, too large, unsupported."""


class IndexEmptyError(FindImageError):
    """The index holds no pictures yet."""


class NotFoundError(FindImageError):
    """An id that the index does not hold: the id given is wrong, as a misspelt option is."""

    exit_code = 2


class BackendUnavailableError(FindImageError):
    """The vector store cannot be reached or is not in a usable state."""


class ShardsNotDoneError(FindImageError):
    """A rebuild spread over workers cannot go live yet: a shard has not reported done."""
