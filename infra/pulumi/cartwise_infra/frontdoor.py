"""The public functions behind an external Application Load Balancer (stack
``publicAccess: loadBalancer``): what works under a domain-restricted-sharing
organization policy, which refuses the ``allUsers`` invoker.

Each public function gets a serverless network endpoint group and a backend service
behind one HTTPS load balancer, at ``<function>.<domain>`` (a Google-managed
certificate for those hosts); every backend carries one Cloud Armor policy that bans a
client IP sending more than ``rateLimitPerMinute`` requests a minute for 10 minutes. The
functions accept traffic from the load balancer only (ingress ``internal-and-gclb``), and
Cloud Run's invoker check is turned off on them (``--no-invoker-iam-check``: no IAM member
at all, so nothing for the org policy to refuse); the functions check the retailer's API
key themselves, as before. DNS is the operator's (docs/DEPLOY.md).
"""

from __future__ import annotations

import pulumi
import pulumi_command as command
import pulumi_gcp as gcp

from cartwise_infra.context import Context, cloud_name

LB_INGRESS = "ALLOW_INTERNAL_AND_GCLB"
BAN_SECONDS = 600


def behind_load_balancer(ctx: Context) -> bool:
    return ctx.stack.public_access == "loadBalancer"


def host(ctx: Context, function: str) -> str:
    return f"{cloud_name(function)}.{ctx.stack.domain}"


def open_to_the_load_balancer(
    ctx: Context, name: str, function: gcp.cloudfunctionsv2.Function, parent: pulumi.Resource
) -> command.local.Command:
    """No invoker check on the function's Cloud Run service: the load balancer's
    unauthenticated requests are served without an ``allUsers`` member."""
    return command.local.Command(
        f"{name}-no-invoker-check",
        create=pulumi.Output.concat(
            "gcloud run services update ",
            function.name.apply(cloud_name),
            f" --no-invoker-iam-check --region={ctx.region} --project={ctx.project} --quiet",
        ),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[function]),
    )


class FrontDoor(pulumi.ComponentResource):
    def __init__(self, ctx: Context) -> None:
        super().__init__("cartwise:frontdoor:FrontDoor", "frontdoor")
        opts = ctx.child(self)
        public = [f.name for f in ctx.system.functions if f.public]
        armor = gcp.compute.SecurityPolicy(
            "armor",
            name="cartwise-public",
            project=ctx.project,
            description="per-client rate limit in front of the public functions",
            rules=[
                gcp.compute.SecurityPolicyRuleArgs(
                    action="rate_based_ban",
                    priority=1000,
                    description=f"more than {ctx.stack.rate_limit_per_minute} requests a "
                    f"minute from one IP: banned {BAN_SECONDS} s",
                    match=gcp.compute.SecurityPolicyRuleMatchArgs(
                        versioned_expr="SRC_IPS_V1",
                        config=gcp.compute.SecurityPolicyRuleMatchConfigArgs(src_ip_ranges=["*"]),
                    ),
                    rate_limit_options=gcp.compute.SecurityPolicyRuleRateLimitOptionsArgs(
                        conform_action="allow",
                        exceed_action="deny(429)",
                        enforce_on_key="IP",
                        rate_limit_threshold=gcp.compute.SecurityPolicyRuleRateLimitOptionsRateLimitThresholdArgs(
                            count=ctx.stack.rate_limit_per_minute, interval_sec=60
                        ),
                        ban_duration_sec=BAN_SECONDS,
                    ),
                ),
                gcp.compute.SecurityPolicyRuleArgs(
                    action="allow",
                    priority=2147483647,
                    description="default: allow",
                    match=gcp.compute.SecurityPolicyRuleMatchArgs(
                        versioned_expr="SRC_IPS_V1",
                        config=gcp.compute.SecurityPolicyRuleMatchConfigArgs(src_ip_ranges=["*"]),
                    ),
                ),
            ],
            opts=opts,
        )
        backends: dict[str, gcp.compute.BackendService] = {}
        for name in public:
            declared = next(f for f in ctx.system.functions if f.name == name)
            neg = gcp.compute.RegionNetworkEndpointGroup(
                f"neg-{cloud_name(name)}",
                name=f"cartwise-{cloud_name(name)}",
                project=ctx.project,
                region=ctx.region,
                network_endpoint_type="SERVERLESS",
                cloud_function=gcp.compute.RegionNetworkEndpointGroupCloudFunctionArgs(
                    function=ctx.functions[name].name
                ),
                opts=opts,
            )
            backends[name] = gcp.compute.BackendService(
                f"backend-{cloud_name(name)}",
                name=f"cartwise-{cloud_name(name)}",
                project=ctx.project,
                load_balancing_scheme="EXTERNAL_MANAGED",
                protocol="HTTPS",
                timeout_sec=declared.sizing.timeout_s,
                security_policy=armor.self_link,
                backends=[gcp.compute.BackendServiceBackendArgs(group=neg.id)],
                opts=opts,
            )
        first = backends[public[0]]
        url_map = gcp.compute.URLMap(
            "public-urls",
            name="cartwise-public",
            project=ctx.project,
            default_service=first.id,
            host_rules=[
                gcp.compute.URLMapHostRuleArgs(hosts=[host(ctx, n)], path_matcher=cloud_name(n))
                for n in public
            ],
            path_matchers=[
                gcp.compute.URLMapPathMatcherArgs(
                    name=cloud_name(n), default_service=backends[n].id
                )
                for n in public
            ],
            opts=opts,
        )
        certificate = gcp.compute.ManagedSslCertificate(
            "public-certificate",
            name="cartwise-public",
            project=ctx.project,
            managed=gcp.compute.ManagedSslCertificateManagedArgs(
                domains=[host(ctx, n) for n in public]
            ),
            opts=opts,
        )
        proxy = gcp.compute.TargetHttpsProxy(
            "public-proxy",
            name="cartwise-public",
            project=ctx.project,
            url_map=url_map.id,
            ssl_certificates=[certificate.id],
            opts=opts,
        )
        self.address = gcp.compute.GlobalAddress(
            "public-address", name="cartwise-public", project=ctx.project, opts=opts
        )
        gcp.compute.GlobalForwardingRule(
            "public-https",
            name="cartwise-public-https",
            project=ctx.project,
            load_balancing_scheme="EXTERNAL_MANAGED",
            ip_address=self.address.address,
            port_range="443",
            target=proxy.id,
            opts=opts,
        )
        self.urls = {n: f"https://{host(ctx, n)}" for n in public}
        self.register_outputs({"ip": self.address.address})
