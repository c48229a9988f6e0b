"""Real-time decisions: shoppers move along their shopping experience trees.

``trees`` (trees are data), ``engine.decide`` (one event moves the live state and says what
to show, hold out, and why), ``compiler`` (campaigns into default and personal trees),
``service.decide_batch`` (the decider: state and trees in, decisions out),
``experiences_api`` (what a tracker shows now), ``play_tokens`` (signed invitations to the
rewards game), ``read_models`` (decisions frozen into BigQuery).

Entry points: ``service.decide_batch`` with ``composition.decider``
(``functions/decide_events``), ``experiences_api.handle`` with ``composition.experiences``
(``functions/experiences``), ``read_models.freeze_decisions`` with
``composition.decision_freezer`` (``functions/freeze_decisions``),
``compiler.compile_default_tree``, ``commands`` (``cartwise compile-trees``).
Stores: Bigtable ``shopper_state``, ``experience_trees``; Pub/Sub ``shopper-experiences``;
BigQuery ``decisions``, ``decision_experiences``; reads Firestore ``campaigns`` (budgets).
"""
