"""The system as Google Cloud runs it: a worker declared ``cloud_delivery="push"`` becomes
its push form, a CloudEvent function behind a push subscription to its own subscription
(the same service function, one message a call); everything else as declared.

Why push for those (docs/CAPACITY.md): Cloud Run scales a push-fed service on its
requests in flight, so capacity follows the backlog with no autoscaler of our own, and
Pub/Sub push has no in-flight cap in the cloud (the emulator's 2 is why the local stack
pulls). Workers that batch (the freezers: one BigQuery write per batch) stay pull workers.
"""

from __future__ import annotations

from shared.platform.resource_model import Function, SystemResources


def cloud_shape(system: SystemResources) -> SystemResources:
    pushed = {w.name: w for w in system.workers if w.cloud_delivery == "push"}
    if not pushed:
        return system
    functions = tuple(
        Function(
            name=w.name,
            signature="cloudevent",
            entry_point=str(w.push_entry_point),
            description=f"{w.description} (push form)",
            sizing=w.push_sizing or w.sizing,
            access=w.access,
        )
        for w in pushed.values()
    )
    by_subscription = {w.subscription: w.name for w in pushed.values()}
    subscriptions = tuple(
        s.model_copy(update={"push_function": by_subscription[s.name]})
        if s.name in by_subscription
        else s
        for s in system.subscriptions
    )
    return SystemResources(
        **{
            **dict(system),
            "functions": (*system.functions, *functions),
            "subscriptions": subscriptions,
            "workers": tuple(w for w in system.workers if w.name not in pushed),
        }
    )
