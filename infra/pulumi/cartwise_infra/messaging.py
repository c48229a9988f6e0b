"""Pub/Sub topics and subscriptions: ordering, retry policy, dead-letter topics.

Pub/Sub itself moves a message to the dead-letter topic after the declared number of
deliveries: its service agent needs to publish there and to subscribe to the source.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from cartwise_infra.context import Context
from cartwise_infra.iam import PUBLISHER, SUBSCRIBER
from shared.platform.resource_model import Subscription


def consumed(ctx: Context) -> set[str]:
    """Subscriptions a component reads (worker or push function), not only operators."""
    pulled = {w.subscription for w in ctx.system.workers}
    pushed = {s.name for s in ctx.system.subscriptions if s.push_function}
    read = {s for a in ctx.system.accesses().values() for s in a.subscribes}
    return pulled | pushed | read


def check_dead_letters(ctx: Context) -> None:
    """A message a component cannot process must end somewhere: its dead-letter topic."""
    read = consumed(ctx)
    for sub in ctx.system.subscriptions:
        if sub.name in read and not sub.dead_letter_topic:
            raise ValueError(f"{sub.name} is read by a component but has no dead-letter topic")


def seconds(value: int) -> str:
    return f"{value}s"


class Messaging(pulumi.ComponentResource):
    def __init__(self, ctx: Context, pubsub_agent: pulumi.Input[str]) -> None:
        super().__init__("cartwise:messaging:Messaging", "pubsub")
        opts = ctx.child(self)
        for topic in ctx.system.topics:
            ctx.topics[topic.name] = gcp.pubsub.Topic(
                f"topic-{topic.name}",
                name=topic.name,
                project=ctx.project,
                message_retention_duration=seconds(topic.message_retention_days * 86_400),
                opts=opts,
            )
        check_dead_letters(ctx)
        for sub in ctx.system.subscriptions:
            if sub.push_function:
                continue  # made with its function (it needs the function's URL)
            ctx.subscriptions[sub.name] = self.subscription(ctx, sub, None)
        dead_letter_topics = sorted(
            {s.dead_letter_topic for s in ctx.system.subscriptions if s.dead_letter_topic}
        )
        for topic_name in dead_letter_topics:
            gcp.pubsub.TopicIAMMember(
                f"pubsub-agent-publishes-{topic_name}",
                project=ctx.project,
                topic=ctx.topics[topic_name].name,
                role=PUBLISHER,
                member=pubsub_agent,
                opts=opts,
            )
        self._agent = pubsub_agent
        self._ctx = ctx
        for sub in ctx.system.subscriptions:
            if sub.dead_letter_topic and not sub.push_function:
                self.agent_subscribes(sub.name)
        self.register_outputs({})

    def agent_subscribes(self, name: str) -> None:
        gcp.pubsub.SubscriptionIAMMember(
            f"pubsub-agent-subscribes-{name}",
            project=self._ctx.project,
            subscription=self._ctx.subscriptions[name].name,
            role=SUBSCRIBER,
            member=self._agent,
            opts=self._ctx.child(self),
        )

    def subscription(
        self,
        ctx: Context,
        sub: Subscription,
        push: gcp.pubsub.SubscriptionPushConfigArgs | None,
        parent: pulumi.Resource | None = None,
    ) -> gcp.pubsub.Subscription:
        dead_letter = None
        if sub.dead_letter_topic:
            dead_letter = gcp.pubsub.SubscriptionDeadLetterPolicyArgs(
                dead_letter_topic=ctx.topics[sub.dead_letter_topic].id,
                max_delivery_attempts=sub.max_delivery_attempts,
            )
        return gcp.pubsub.Subscription(
            f"subscription-{sub.name}",
            name=sub.name,
            project=ctx.project,
            topic=ctx.topics[sub.topic].id,
            ack_deadline_seconds=sub.ack_deadline_s,
            enable_message_ordering=sub.enable_message_ordering,
            retry_policy=gcp.pubsub.SubscriptionRetryPolicyArgs(
                minimum_backoff=seconds(sub.retry.minimum_backoff_s),
                maximum_backoff=seconds(sub.retry.maximum_backoff_s),
            ),
            dead_letter_policy=dead_letter,
            expiration_policy=gcp.pubsub.SubscriptionExpirationPolicyArgs(ttl=""),  # never
            push_config=push,
            opts=ctx.child(parent or self),
        )
