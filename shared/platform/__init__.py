"""The platform pieces every function uses, whatever its capability.

Structured logs (``logs``), the store-unavailable error (``errors``), framework-free HTTP
answers and the shared OpenAPI error schema (``http``), a TTL cache (``ttl_cache``),
request batching under service limits (``batching``), the resource declaration's types
(``resource_model``), the warehouse port (``warehouse``) and its BigQuery adapter, lazily
built Google Cloud clients (``clients``), which failures are transient (``transient``), raw
Bigtable calls (``bigtable_raw``), synchronous Pub/Sub publishing (``pubsub_publish``),
the pull workers' loop (``pubsub_pull``) and the dead-letter sink (``sinks``,
``pubsub_dead_letters``).

Entry points: ``clients.*_client``, ``pubsub_pull.serve``, ``http.error``, ``logs.configure``.
Stores: none of its own; the adapters here reach BigQuery, Bigtable and Pub/Sub for the
capabilities that inject them.
"""
