"""Capacity that follows load for the pull workers: Google's Cloud Run External Metrics
Autoscaler (CREMA) sets each worker pool's instance count from its subscription's backlog.

Cloud Run worker pools scale manually only; CREMA is Google's documented way to autoscale
them on an external metric (https://cloud.google.com/run/docs/configuring/workerpools/crema-autoscaling):
a Cloud Run service running Google's pre-built image, configured by a YAML document in
Parameter Manager (KEDA ``ScaledObject`` s; KEDA's ``gcp-pubsub`` scaler is in CREMA's
verified list, https://github.com/GoogleCloudPlatform/cloud-run-external-metrics-autoscaling).
Each worker declaring ``cloud_scaling`` gets one scaled object: ``ceil(undelivered
messages / backlog_per_instance)`` instances between its bounds, polled every 30 s, scaled
down only after 5 minutes below (Pub/Sub's metrics are sampled every minute and the
scale-down must not flap). The config is JSON, which is YAML.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pulumi
import pulumi_gcp as gcp

from cartwise_infra import iam
from cartwise_infra.context import Context, cloud_name
from shared.platform.resource_model import Worker

# Google's pre-built image (the README's "Image Versioning": pinned to a minor version).
CREMA_IMAGE = "us-central1-docker.pkg.dev/cloud-run-oss-images/crema-v1/autoscaler:1.1"
CREMA_BASE_IMAGE = "us-central1-docker.pkg.dev/serverless-runtimes/google-24/runtimes/java25"
PARAMETER_ID = "cartwise-autoscaler"
POLLING_INTERVAL_S = 30
SCALE_DOWN_WINDOW_S = 300
AUTH_NAME = "service-identity"
# What CREMA needs (its README, "Required roles"): read its config, read the subscriptions'
# metrics, set the pools' instance counts and act as their identities when it does.
PROJECT_ROLES = ("roles/parametermanager.parameterViewer", "roles/monitoring.viewer")
POOL_ROLE = "roles/run.developer"
ACT_AS_ROLE = "roles/iam.serviceAccountUser"


def scaled_workers(ctx: Context) -> list[Worker]:
    return [
        w for w in ctx.system.workers if w.cloud_delivery == "pull" and w.cloud_scaling is not None
    ]


def crema_config(project: str, region: str, workers: list[Worker]) -> dict[str, Any]:
    """The CremaConfig document: one scaled object per backlog-scaled worker pool."""
    objects = []
    for worker in workers:
        scaling = worker.cloud_scaling
        assert scaling is not None
        objects.append(
            {
                "spec": {
                    "scaleTargetRef": {
                        "name": f"projects/{project}/locations/{region}/workerpools/"
                        f"{cloud_name(worker.name)}"
                    },
                    "minReplicaCount": scaling.min_instances,
                    "maxReplicaCount": scaling.max_instances,
                    "triggers": [
                        {
                            "type": "gcp-pubsub",
                            "name": f"{cloud_name(worker.name)}-backlog",
                            "metadata": {
                                "subscriptionName": f"projects/{project}/subscriptions/"
                                f"{worker.subscription}",
                                "mode": "SubscriptionSize",
                                "value": str(scaling.backlog_per_instance),
                            },
                            "authenticationRef": {"name": AUTH_NAME},
                        }
                    ],
                    "advanced": {
                        "horizontalPodAutoscalerConfig": {
                            "behavior": {
                                "scaleDown": {"stabilizationWindowSeconds": SCALE_DOWN_WINDOW_S},
                                "scaleUp": {"stabilizationWindowSeconds": 0},
                            }
                        }
                    },
                }
            }
        )
    return {
        "apiVersion": "crema/v1",
        "kind": "CremaConfig",
        "spec": {
            "pollingInterval": POLLING_INTERVAL_S,
            "triggerAuthentications": [
                {"metadata": {"name": AUTH_NAME}, "spec": {"podIdentity": {"provider": "gcp"}}}
            ],
            "scaledObjects": objects,
        },
    }


class BacklogAutoscaler(pulumi.ComponentResource):
    """The CREMA service, its configuration and its grants (none if no worker scales)."""

    def __init__(self, ctx: Context) -> None:
        super().__init__("cartwise:compute:BacklogAutoscaler", "autoscaler")
        workers = scaled_workers(ctx)
        document = json.dumps(crema_config(ctx.project, ctx.region, workers), indent=2)
        opts = ctx.child(self)
        self.account = iam.service_account(
            ctx,
            "autoscaler",
            "cw",
            "autoscaler",
            "Sets the pull workers' instance counts from their backlog (CREMA)",
            self,
        )
        member = iam.member(self.account)
        parameter = gcp.parametermanager.Parameter(
            "autoscaler-config",
            parameter_id=PARAMETER_ID,
            project=ctx.project,
            format="YAML",
            opts=opts,
        )
        # A new version for each new content: the service is redeployed onto it.
        version_id = "v-" + hashlib.sha256(document.encode()).hexdigest()[:12]
        self.version = gcp.parametermanager.ParameterVersion(
            "autoscaler-config-version",
            parameter=parameter.id,
            parameter_version_id=version_id,
            parameter_data=document,
            opts=opts,
        )
        grants: list[pulumi.Resource] = [
            gcp.projects.IAMMember(
                f"autoscaler-{role.split('/')[1]}",
                project=ctx.project,
                role=role,
                member=member,
                opts=opts,
            )
            for role in PROJECT_ROLES
        ]
        for worker in workers:
            pool = ctx.worker_pools[worker.name]
            grants.append(
                gcp.cloudrunv2.WorkerPoolIamMember(
                    f"autoscaler-scales-{worker.name}",
                    project=ctx.project,
                    location=ctx.region,
                    name=pool.name,
                    role=POOL_ROLE,
                    member=member,
                    opts=opts,
                )
            )
            grants.append(
                gcp.serviceaccount.IAMMember(
                    f"autoscaler-acts-as-{worker.name}",
                    service_account_id=ctx.service_accounts[worker.name].id,
                    role=ACT_AS_ROLE,
                    member=member,
                    opts=opts,
                )
            )
        config_name = pulumi.Output.concat(
            f"projects/{ctx.project}/locations/global/parameters/{PARAMETER_ID}/versions/",
            self.version.parameter_version_id,
        )
        self.service = gcp.cloudrunv2.Service(
            "autoscaler",
            name="cartwise-autoscaler",
            project=ctx.project,
            location=ctx.region,
            deletion_protection=ctx.stack.deletion_protection,
            # No invoker is granted: nobody calls it (it polls on its own loop), as the
            # README deploys it (``--no-allow-unauthenticated --scaling=1``).
            scaling=gcp.cloudrunv2.ServiceScalingArgs(
                scaling_mode="MANUAL", manual_instance_count=1
            ),
            template=gcp.cloudrunv2.ServiceTemplateArgs(
                service_account=self.account.email,
                containers=[
                    gcp.cloudrunv2.ServiceTemplateContainerArgs(
                        image=CREMA_IMAGE,
                        base_image_uri=CREMA_BASE_IMAGE,
                        envs=[
                            gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(
                                name="CREMA_CONFIG", value=config_name
                            )
                        ],
                        resources=gcp.cloudrunv2.ServiceTemplateContainerResourcesArgs(
                            cpu_idle=False,  # the polling loop runs between requests
                            limits={"cpu": "1", "memory": "512Mi"},
                        ),
                    )
                ],
            ),
            opts=pulumi.ResourceOptions.merge(
                opts,
                pulumi.ResourceOptions(
                    depends_on=[self.version, *grants, *(ctx.worker_pools[w.name] for w in workers)]
                ),
            ),
        )
        self.register_outputs({})
