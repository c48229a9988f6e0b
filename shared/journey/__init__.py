"""The Complete Journey: a year of real grocery baskets as shopper traffic.

``dataset`` reads the 84.51 data set (behaviour and campaigns only), ``tracker_simulator``
turns baskets into the sessions real trackers would send, ``replay`` sends them through
the Shopper Event API (``http_event_api``), ``backfill`` loads history straight into the
read models, ``campaigns`` imports the data set's campaigns. ``response`` is a seeded model
of shoppers who respond to what they are shown, ``responding`` the replay that lets them
(through the ingest and experiences APIs, keeping the injected truth apart), and
``uplift_trial`` the pure-logic check that the campaign report's uplift recovers it.

Entry points: ``replay.replay``, ``backfill.load``, ``campaigns.import_campaigns``,
``responding.RespondingReplay``, ``uplift_trial.run_trials``, ``commands``
(``cartwise replay``, ``backfill``, ``import-campaigns``).
Stores: through the API (replay); BigQuery read models (backfill); Firestore
``campaigns`` and BigQuery campaign tables (import).
"""
