"""Ingestion: the Shopper Event API (``ingest_events``).

``api.handle`` authenticates the retailer, limits its rate, parses and validates the body;
``service.ingest`` de-duplicates on ``(retailer, event_id)``, persists every accepted
event to Bigtable and publishes it on ``shopper-events`` before answering; refused input
is kept with its reason. ``ratelimit`` is the per-retailer limit; ``composition`` builds
the function's dependencies.

Entry points: ``api.handle``, ``api.openapi``, ``service.ingest``, ``composition.ingest``.
Stores: Bigtable ``shopper_events``, ``event_ids``, ``rejected_events``, ``rate_limits``;
Pub/Sub ``shopper-events``, ``rejected-events``; reads Firestore ``api_keys``,
``retailers``, ``suppressions``.
"""
