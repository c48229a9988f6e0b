"""Offers that pay for themselves: the levels a personalized promotion may be offered at,
exploration with logged propensities, the uplift model learnt from what shoppers did when
shown, and the policy choosing each shopper's level (docs/MODEL.md, "The offer policy").

``levels`` (the levels within a campaign's bounds, ``OfferPlan`` held by a tree,
``explore``: the level shown and its propensity) is used by the tree compiler and the
decision engine; ``learning`` (``UpliftModel``, ``choose``, ``OfferPolicy``,
``policy_value``, ``gate``, ``qini``) by the simulation ``shared.journey.offer_trial``.

Entry points: ``levels.explore``, ``learning.UpliftModel.fit``, ``learning.gate``.
Stores: none (pure logic: nothing here imports ``google.*``).
"""
