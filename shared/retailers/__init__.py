"""Retailers: their API keys and their per-retailer settings.

A key is a random secret given to the retailer once; only its SHA-256 is stored. Every
retailer-facing API (ingestion, experiences, plays, privacy) authenticates with
``access.caller`` (browser-facing APIs) or ``access.back_end`` (secret keys only),
through a ``keys.CachedApiKeys``.

Entry points: ``keys.issue_api_key``, ``keys.identify``, ``access.caller``,
``access.back_end``, ``keys.CachedApiKeys``.
Stores: Firestore ``api_keys`` in the ``credentials`` database, read only for every
function, written by ``commands`` (``firestore_api_keys``; ``firestore_migration`` moves
keys still in ``(default)``), and ``retailers`` (rate limits, ``firestore_retailers``).
"""
