"""The shopper event contract: what trackers send and what the stream carries.

``events``: the versioned envelope and one payload model per event type; unknown fields
are refused, identity and socio-demographic fields are refused at any depth.
``messages``: the message ``ingest_events`` publishes per accepted event and the way every
consumer reads it (``parse``) or sets it aside as poison.

Entry points: ``events.validate_event``, ``events.validate_request_json``,
``events.event_json_schema``, ``messages.parse``, ``messages.decode_push``.
Stores: none (pure; every other package builds on it).
"""
