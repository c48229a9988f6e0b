"""cartwise's product package: one sub-package per capability (docs/ARCHITECTURE.md).

- ``contract``: the shopper event contract and the stream's messages;
- ``platform``: what every function uses (logs, errors, HTTP answers, clients, caches,
  batching, the warehouse and Pub/Sub plumbing, the resource types);
- ``system``: the one resource declaration and each function's settings;
- ``retailers``: retailers' API keys and settings;
- ``ingestion``, ``freezer``, ``decisions``, ``campaigns``, ``rewards``, ``privacy``,
  ``nightly``: the capabilities;
- ``journey`` (the Complete Journey data set as shopper traffic) and ``demo`` (``make demo``);
- ``cli``: the ``cartwise`` command, dispatching to each capability's ``commands``.

In every package, modules named ``bigquery_*``, ``bigtable_*``, ``firestore_*`` and
``pubsub_*`` are backend adapters of the ports the package declares, ``composition`` builds
a function's dependencies, and everything else is domain logic importing nothing from
``google.*`` (tests/unit/test_architecture.py).
"""
