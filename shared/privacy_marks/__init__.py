"""Privacy marks: the one check every writer of shopper data makes before it writes.

An erasure request or an objection (``shared.privacy``) writes a mark of the shopper, by
keyed hash, before it answers; the decider, the experiences API, the freezers, the rewards
game and the nightly's tree compilation read the marks of the shoppers in each batch and
drop what a mark blocks (``marks.Marks.blocks``). Below every capability that writes
shopper data, so that each can import it without importing the privacy capability.

Entry points: ``marks.PrivacyGate`` (built by ``bigtable_marks.privacy_gate`` in each
composition), ``marks.ShopperHasher``.
Stores: Bigtable ``privacy_marks`` (``bigtable_marks``).
"""
