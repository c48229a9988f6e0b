"""Privacy: retention purges, erasure requests, objection (the suppression list).

``retention`` (a period per retailer and data class, with ceilings), ``store_plan`` (which
stores hold shopper data, derived from the declaration), ``service`` (the eraser registry,
erasure requests and their receipts, suppression, purges), ``api`` (erasure and suppression
requests, the maintenance entry the Scheduler calls); erasers per backend
(``bigquery_erasers``, ``bigtable_erasers``, ``firestore_records``).

Entry points: ``api.handle_erasure_api`` (``functions/erasure_requests``),
``api.handle_maintenance`` (``functions/privacy_maintenance``), ``composition``,
``commands`` (``cartwise retention``; ``commands.suppressed_shoppers``, the lookup that
replays, backfills and republish run first).
Stores: every store that holds shopper data (the store plan); Firestore
``erasure_requests``, ``suppressions``, ``privacy_audit``, retention settings.
"""
