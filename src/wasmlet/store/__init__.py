"""The platform database behind one interface: SQLite (default) and PostgreSQL."""

from wasmlet.store.base import Row, Store
from wasmlet.store.factory import open_store

__all__ = ["Row", "Store", "open_store"]
