"""The nightly: features, training, evaluation and gate, scoring, trees, publication.

Cloud Workflows calls ``steps_api`` (``functions/nightly_steps``) step by step; ``service``
runs each step for a ``run_id`` (idempotent), ``runs`` keeps the run records; the model
steps (``features``, ``training``, ``evaluation``, ``scoring``, ``neighbours``,
``complements``, ``metrics``) work on the contract of ``context`` and the tables of
``tables``; ``service`` compiles personal trees with ``shared.decisions.compiler``.

Entry points: ``steps_api.handle`` with ``composition.nightly_steps``
(``functions/nightly_steps``), ``steps.STEPS``, ``commands`` (``cartwise nightly``).
Stores: BigQuery (reads the read models; writes the nightly tables), Firestore
``nightly_runs``, Bigtable ``experience_trees``, models and run metadata in Cloud
Storage (``storage_artifacts``).
"""
