"""Errors of the vector stores, shared by every engine so callers catch one family."""

from __future__ import annotations


class VectorStoreError(RuntimeError):
    """The vector store cannot be used as configured; the message says why and what to do."""


class VectorStoreBusy(VectorStoreError):
    """Another process holds the embedded store's folder."""
