"""cartwise on Google Cloud: ``pulumi up`` deploys ``shared.system.resources.SYSTEM``.

Configuration is read here only (``Pulumi.<stack>.yaml``); the components are in
``cartwise_infra``.
"""

from __future__ import annotations

from pathlib import Path

import pulumi

from cartwise_infra.config import CONFIG_KEYS, config_value, stack_config
from cartwise_infra.program import deploy
from shared.system.resources import SYSTEM

ROOT = Path(__file__).resolve().parents[2]

config = pulumi.Config("cartwise")
stack = stack_config(
    pulumi.Config("gcp").require("project"),
    {key: config_value(config.get(key)) for key in CONFIG_KEYS},
)
secrets = {s.name: v for s in SYSTEM.secrets if (v := config.get_secret(s.name)) is not None}
deployment = deploy(SYSTEM, stack, ROOT, secret_values=secrets)

for name, url in deployment.function_urls.items():
    pulumi.export(f"{name}_url", url)
if deployment.front_door_ip is not None:
    pulumi.export("lb_ip", deployment.front_door_ip)  # the domain's A records (docs/DEPLOY.md)
