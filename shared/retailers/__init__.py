"""Retailers: their API keys and their per-retailer settings.

A key is a random secret given to the retailer once; only its SHA-256 is stored. Every
retailer-facing API (ingestion, experiences, plays, privacy) authenticates with
``keys.authenticate`` through a ``keys.CachedApiKeys``.

Entry points: ``keys.issue_api_key``, ``keys.authenticate``, ``keys.CachedApiKeys``.
Stores: Firestore ``api_keys`` (``firestore_api_keys``) and ``retailers`` (rate limits,
``firestore_retailers``).
"""
