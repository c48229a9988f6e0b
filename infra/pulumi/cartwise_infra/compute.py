"""What runs code: Cloud Functions gen 2 (HTTP, or CloudEvent behind a push subscription),
pull workers as Cloud Run worker pools, and Cloud Run jobs.

Functions are deployed from their source bundle (``bundles.function_bundle``); workers and
jobs run one container image built by Cloud Build from ``bundles.runtime_bundle``, tagged
with its content hash, so that unchanged code is neither rebuilt nor redeployed. Each
function, worker and job has its own service account with only its declared access.
"""

from __future__ import annotations

import pulumi
import pulumi_command as command
import pulumi_gcp as gcp

from cartwise_infra import frontdoor, iam
from cartwise_infra.bundles import Bundle, function_bundle, runtime_bundle
from cartwise_infra.context import Context, cloud_name
from cartwise_infra.messaging import Messaging
from shared.platform.resource_model import Access, Function, Job, Secret, Sizing, Worker

RUNTIME = "python311"


def archive(bundle: Bundle) -> pulumi.AssetArchive:
    """The bundle's files as read when it was hashed (source code: text only)."""
    assets: dict[str, pulumi.Asset | pulumi.Archive] = {}
    for path, data in sorted(bundle.files.items()):
        try:
            assets[path] = pulumi.StringAsset(data.decode())
        except UnicodeDecodeError as exc:
            raise ValueError(f"{bundle.name}: {path} is not text; bundles hold code") from exc
    return pulumi.AssetArchive(assets)


def declared_secrets(ctx: Context, access: Access) -> list[Secret]:
    return [s for s in ctx.system.secrets if s.name in access.secrets]


def base_env(ctx: Context, access: Access) -> dict[str, str]:
    env = {"GOOGLE_CLOUD_PROJECT": ctx.project, "LOG_LEVEL": ctx.stack.log_level}
    if uses_bigtable(access):
        env["BIGTABLE_APP_PROFILE"] = ctx.system.bigtable_app_profile
    return env


def uses_bigtable(access: Access) -> bool:
    return bool(access.bigtable_reads or access.bigtable_writes)


def profile_needed(ctx: Context, access: Access) -> list[pulumi.Resource]:
    """The app profile a component's Bigtable requests name: created before it (a request
    naming a profile that does not exist is refused)."""
    if uses_bigtable(access) and ctx.bigtable_app_profile is not None:
        return [ctx.bigtable_app_profile]
    return []


class Sources(pulumi.ComponentResource):
    """The bucket of source bundles, the image repository, and the build identity."""

    def __init__(self, ctx: Context) -> None:
        super().__init__("cartwise:compute:Sources", "sources")
        opts = ctx.child(self)
        self.bucket = gcp.storage.Bucket(
            "sources",
            name=f"{ctx.project}-cartwise-sources",
            project=ctx.project,
            location=ctx.region,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            force_destroy=True,
            opts=opts,
        )
        self.repository = gcp.artifactregistry.Repository(
            "images",
            repository_id="cartwise",
            project=ctx.project,
            location=ctx.region,
            format="DOCKER",
            opts=opts,
        )
        self.builder = iam.service_account(
            ctx, "build", "cw", "build", "Cloud Build: builds functions and the runtime image", self
        )
        builder = iam.member(self.builder)
        # What a build needs (https://cloud.google.com/run/docs/configuring/services/build-service-account):
        # logs, images, and the objects of the sources bucket Cloud Functions copies the
        # source to (its own, named by Google: granted on the project). Builds run when a
        # function or the image is created: they are created after these grants.
        self.grants: list[pulumi.Resource] = []
        self.grants.append(
            gcp.projects.IAMMember(
                "build-uses-storage",
                project=ctx.project,
                role="roles/storage.objectAdmin",
                member=builder,
                opts=opts,
            )
        )
        bucket_grant = gcp.storage.BucketIAMMember(
            "build-reads-sources",
            bucket=self.bucket.name,
            role=iam.OBJECT_VIEWER,
            member=builder,
            opts=opts,
        )
        image_grant = gcp.artifactregistry.RepositoryIamMember(
            "build-writes-images",
            project=ctx.project,
            location=ctx.region,
            repository=self.repository.repository_id,
            role="roles/artifactregistry.writer",
            member=builder,
            opts=opts,
        )
        log_grant = gcp.projects.IAMMember(
            "build-writes-logs",
            project=ctx.project,
            role="roles/logging.logWriter",
            member=builder,
            opts=opts,
        )
        self.grants += [bucket_grant, image_grant, log_grant]
        self.register_outputs({"bucket": self.bucket.name})

    def upload(
        self, ctx: Context, key: str, folder: str, bundle: Bundle
    ) -> gcp.storage.BucketObject:
        return gcp.storage.BucketObject(
            f"{key}-source",
            bucket=self.bucket.name,
            name=f"{folder}/{bundle.object_name}",
            source=archive(bundle),
            opts=ctx.child(self),
        )


class CloudFunction(pulumi.ComponentResource):
    """One function: its identity and grants, its bundle, the function, and its trigger
    (public invoker for public HTTP endpoints; a push subscription for CloudEvents)."""

    def __init__(
        self, ctx: Context, sources: Sources, messaging: Messaging, declared: Function
    ) -> None:
        super().__init__("cartwise:compute:CloudFunction", declared.name)
        opts = ctx.child(self)
        key = declared.name
        self.declared_name = declared.name
        self.account = iam.service_account(
            ctx, key, "fn", declared.name, declared.description, self
        )
        self.access = declared.access
        # Created before the function: Cloud Run checks them when it makes the revision.
        needed = [
            *iam.secret_access(ctx, key, self.account, declared.access, self),
            *profile_needed(ctx, declared.access),
        ]
        bundle = function_bundle(ctx.root, declared.name)
        source = sources.upload(ctx, key, "functions", bundle)
        sizing = declared.sizing
        env = base_env(ctx, declared.access)
        if sizing.threads is not None:
            env["THREADS"] = str(sizing.threads)  # functions-framework's gunicorn threads
        build_env: dict[str, str] = {}
        if declared.signature == "cloudevent":
            env["FUNCTION_SIGNATURE_TYPE"] = "cloudevent"
            build_env["GOOGLE_FUNCTION_SIGNATURE_TYPE"] = "cloudevent"
        self.function = gcp.cloudfunctionsv2.Function(
            key,
            name=cloud_name(declared.name),
            project=ctx.project,
            location=ctx.region,
            description=declared.description,
            build_config=gcp.cloudfunctionsv2.FunctionBuildConfigArgs(
                runtime=RUNTIME,
                entry_point=declared.entry_point,
                environment_variables=build_env or None,
                service_account=sources.builder.id,
                # Images in the project's repository, where the build identity may write.
                docker_repository=sources.repository.id,
                source=gcp.cloudfunctionsv2.FunctionBuildConfigSourceArgs(
                    storage_source=gcp.cloudfunctionsv2.FunctionBuildConfigSourceStorageSourceArgs(
                        bucket=sources.bucket.name, object=source.name
                    )
                ),
            ),
            service_config=gcp.cloudfunctionsv2.FunctionServiceConfigArgs(
                available_memory=sizing.memory,
                available_cpu=sizing.cpu,
                min_instance_count=ctx.min_instances(sizing),
                max_instance_count=ctx.max_instances(sizing),
                max_instance_request_concurrency=sizing.concurrency,
                timeout_seconds=sizing.timeout_s,
                service_account_email=self.account.email,
                ingress_settings=(
                    frontdoor.LB_INGRESS
                    if declared.public and frontdoor.behind_load_balancer(ctx)
                    else "ALLOW_ALL"
                ),
                all_traffic_on_latest_revision=True,
                environment_variables=env,
                secret_environment_variables=[
                    gcp.cloudfunctionsv2.FunctionServiceConfigSecretEnvironmentVariableArgs(
                        key=secret.env,
                        project_id=ctx.project,
                        secret=ctx.secrets[secret.name].secret_id,
                        version="latest",
                    )
                    for secret in declared_secrets(ctx, declared.access)
                ],
            ),
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(depends_on=[*needed, *sources.grants])
            ),
        )
        ctx.functions[declared.name] = self.function
        if declared.public and frontdoor.behind_load_balancer(ctx):
            # Reached through the load balancer only (frontdoor.py): no allUsers member.
            frontdoor.open_to_the_load_balancer(ctx, key, self.function, self)
        elif declared.public:
            # Anyone may call it: the endpoint checks the retailer's API key itself.
            iam.invoker(ctx, key, declared.name, "allUsers", self)
        for sub in ctx.system.subscriptions:
            if sub.push_function == declared.name:
                self.push_subscription(ctx, messaging, sub.name)
        self.register_outputs({"url": self.function.url})

    def push_subscription(self, ctx: Context, messaging: Messaging, name: str) -> None:
        sub = next(s for s in ctx.system.subscriptions if s.name == name)
        pusher = iam.service_account(
            ctx, f"push-{name}", "push", name, f"Pub/Sub push identity of {name}", self
        )
        iam.invoker(ctx, f"push-{name}", self.declared_name, iam.member(pusher), self)
        # The path makes functions-framework set the CloudEvent source as Eventarc would.
        endpoint = pulumi.Output.concat(
            self.function.url, f"/projects/{ctx.project}/topics/{sub.topic}"
        )
        ctx.subscriptions[name] = messaging.subscription(
            ctx,
            sub,
            gcp.pubsub.SubscriptionPushConfigArgs(
                push_endpoint=endpoint,
                oidc_token=gcp.pubsub.SubscriptionPushConfigOidcTokenArgs(
                    service_account_email=pusher.email, audience=self.function.url
                ),
            ),
            parent=self,
        )
        if sub.dead_letter_topic:
            messaging.agent_subscribes(name)


def container_env(ctx: Context, access: Access) -> list[dict[str, object]]:
    """Plain variables, and secrets by reference (never their values)."""
    envs: list[dict[str, object]] = [
        {"name": k, "value": v} for k, v in base_env(ctx, access).items()
    ]
    for secret in declared_secrets(ctx, access):
        envs.append(
            {
                "name": secret.env,
                "value_source": {
                    "secret_key_ref": {
                        "secret": ctx.secrets[secret.name].secret_id,
                        "version": "latest",
                    }
                },
            }
        )
    return envs


def limits(sizing: Sizing) -> dict[str, str]:
    return {"cpu": sizing.cpu, "memory": sizing.memory}


class RuntimeImage(pulumi.ComponentResource):
    """The image of workers and jobs, built by Cloud Build when its content hash changes."""

    def __init__(self, ctx: Context, sources: Sources) -> None:
        super().__init__("cartwise:compute:RuntimeImage", "runtime")
        bundle = runtime_bundle(ctx.root)
        source = sources.upload(ctx, "runtime", "runtime", bundle)
        self.digest = bundle.digest
        self.image = pulumi.Output.concat(
            f"{ctx.region}-docker.pkg.dev/{ctx.project}/",
            sources.repository.repository_id,
            f"/runtime:{bundle.digest}",
        )
        self.build = command.local.Command(
            "runtime-build",
            create=pulumi.Output.concat(
                "gcloud builds submit gs://",
                sources.bucket.name,
                "/",
                source.name,
                " --tag=",
                self.image,
                f" --project={ctx.project} --region={ctx.region}",
                " --service-account=",
                sources.builder.id,
                " --default-buckets-behavior=regional-user-owned-bucket --quiet",
            ),
            triggers=[bundle.digest],
            opts=pulumi.ResourceOptions.merge(
                ctx.child(self),
                pulumi.ResourceOptions(depends_on=[source, sources.repository, *sources.grants]),
            ),
        )
        self.register_outputs({"image": self.image})


class PullWorker(pulumi.ComponentResource):
    """A pull worker: a Cloud Run worker pool (no HTTP, no invoker) running
    ``python -m functions.<name>.worker``: a fixed instance count, or, with
    ``cloud_scaling``, a count the backlog autoscaler sets (``autoscaling.py``) and
    ``pulumi up`` leaves alone."""

    def __init__(self, ctx: Context, image: RuntimeImage, declared: Worker) -> None:
        super().__init__("cartwise:compute:PullWorker", declared.name)
        key = declared.name
        self.account = iam.service_account(
            ctx, key, "wk", declared.name, declared.description, self
        )
        subscribes = (declared.subscription, *declared.access.subscribes)
        self.access = declared.access.model_copy(
            update={"subscribes": tuple(dict.fromkeys(subscribes))}
        )
        access = self.access
        needed = [
            *iam.secret_access(ctx, key, self.account, access, self),
            *profile_needed(ctx, access),
        ]
        self.pool = gcp.cloudrunv2.WorkerPool(
            key,
            name=cloud_name(declared.name),
            project=ctx.project,
            location=ctx.region,
            description=declared.description,
            deletion_protection=ctx.stack.deletion_protection,
            launch_stage="BETA",  # accepted whether worker pools are beta or GA
            scaling=gcp.cloudrunv2.WorkerPoolScalingArgs(
                manual_instance_count=ctx.instance_count(
                    declared.instances
                    if declared.cloud_scaling is None
                    else declared.cloud_scaling.min_instances
                )
            ),
            template=gcp.cloudrunv2.WorkerPoolTemplateArgs(
                service_account=self.account.email,
                containers=[
                    gcp.cloudrunv2.WorkerPoolTemplateContainerArgs(
                        image=image.image,
                        commands=["python"],
                        args=["-m", f"functions.{declared.name}.worker"],
                        envs=container_env(ctx, access),  # type: ignore[arg-type]
                        resources=gcp.cloudrunv2.WorkerPoolTemplateContainerResourcesArgs(
                            limits=limits(declared.sizing)
                        ),
                    )
                ],
            ),
            opts=pulumi.ResourceOptions.merge(
                ctx.child(self),
                pulumi.ResourceOptions(
                    depends_on=[image.build, *needed],
                    # The autoscaler owns the count once the pool exists.
                    ignore_changes=(
                        ["scaling.manualInstanceCount"] if declared.cloud_scaling else None
                    ),
                ),
            ),
        )
        ctx.worker_pools[declared.name] = self.pool
        self.register_outputs({})


class CloudRunJob(pulumi.ComponentResource):
    """A Cloud Run job (``python -m <module> [args]``), run by a workflow."""

    def __init__(self, ctx: Context, image: RuntimeImage, declared: Job) -> None:
        super().__init__("cartwise:compute:CloudRunJob", declared.name)
        key = declared.name
        self.account = iam.service_account(
            ctx, key, "job", declared.name, declared.description, self
        )
        self.access = declared.access
        sizing = declared.sizing
        needed = [
            *iam.secret_access(ctx, key, self.account, declared.access, self),
            *profile_needed(ctx, declared.access),
        ]
        self.job = gcp.cloudrunv2.Job(
            key,
            name=cloud_name(declared.name),
            project=ctx.project,
            location=ctx.region,
            deletion_protection=ctx.stack.deletion_protection,
            template=gcp.cloudrunv2.JobTemplateArgs(
                task_count=declared.tasks,
                template=gcp.cloudrunv2.JobTemplateTemplateArgs(
                    service_account=self.account.email,
                    max_retries=declared.max_retries,
                    timeout=f"{sizing.timeout_s}s",
                    containers=[
                        gcp.cloudrunv2.JobTemplateTemplateContainerArgs(
                            image=image.image,
                            commands=["python"],
                            args=["-m", declared.module, *declared.args],
                            envs=container_env(ctx, declared.access),  # type: ignore[arg-type]
                            resources=gcp.cloudrunv2.JobTemplateTemplateContainerResourcesArgs(
                                limits=limits(sizing)
                            ),
                        )
                    ],
                ),
            ),
            opts=pulumi.ResourceOptions.merge(
                ctx.child(self), pulumi.ResourceOptions(depends_on=[image.build, *needed])
            ),
        )
        ctx.jobs[declared.name] = self.job
        self.register_outputs({})
