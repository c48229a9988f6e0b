"""The demo: ``make demo``, the whole story on the Complete Journey, and its report.

``story`` runs the steps (history, nightly, live replay, report), ``probes`` measures what
a tracker sees (acknowledgement to experience readable), ``stores`` reads the figures
back from the stores, ``report`` renders them as text and HTML.

Entry points: ``story.run``, ``commands`` (``cartwise demo``, ``session``).
Stores: reads every store; writes through the capabilities' own paths.
"""
