"""The rewards game: gamified promotions, "play to win your basket".

``game`` (one cryptographic draw per qualifying order within the campaign's budget, the
play's life, the ledger), ``api`` (``POST /v1/plays``, claims), ``play_freezer`` and
``read_models`` (plays into BigQuery), ``ledger_cli`` (operators: owed, paid, payable).
Winners' e-mail addresses live only in the vault (``firestore_vault``), reached by this
package and by erasure, never by personalization (tests/unit/test_privacy_imports.py).

Entry points: ``api.handle`` (``functions/plays``), ``voids.void_batch``
(``functions/void_plays``), ``play_freezer.freeze_plays`` (``functions/freeze_plays``),
``composition`` (``plays``, ``void_plays``, ``play_freezer``), ``ledger_cli.main``.
Stores: Firestore ``rewards`` database (plays, budget slots, voided orders, claims);
Pub/Sub ``plays``; BigQuery ``plays``.
"""
