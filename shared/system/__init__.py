"""The system as deployed: the one resource declaration and each function's settings.

``resources.SYSTEM`` declares every topic, subscription, table, database, secret,
function, worker, workflow and scheduler job; the local bootstrap (``emulators``) and the
Pulumi program (``infra/pulumi``) both read it, so what runs locally is what is deployed.
It gathers each capability's table declarations (read models, decisions, plays, the
nightly tables, the data set's campaign tables) and the retention defaults. ``settings``
holds one pydantic-settings object per function; ``workflow_render`` what a workflow is
deployed with.

Entry points: ``resources.SYSTEM``, ``settings.*Settings``, ``workflow_render.render``.
Stores: none (pure data).
"""
