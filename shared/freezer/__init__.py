"""The freezer: shopper events into BigQuery read models (cold data), exactly once in effect.

``read_models`` declares every read model and turns one event into rows with a
deterministic ``row_id``; ``service.freeze`` writes a batch through a ``ReadModelSink``
(an idempotent MERGE, ``bigquery_read_models``; large histories as load jobs,
``bigquery_bulk_load``) and dead-letters poison messages with their reason;
``republish`` re-sends stored events and re-drives dead letters.

Entry points: ``service.freeze``, ``composition.freezer`` (``functions/freeze_events``),
``republish.republish``, ``commands`` (``cartwise republish``, ``redrive-dead-letters``).
Stores: BigQuery read models and ``dead_letters``; Pub/Sub ``shopper-events-dead-letter``;
reads Bigtable ``shopper_events`` (republish).
"""
