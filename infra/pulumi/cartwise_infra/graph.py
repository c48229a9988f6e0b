"""The declared dependency graph of a run of the program, and the rules a first
``pulumi up`` on an empty project needs it to obey.

Pulumi creates a resource once everything it depends on exists (explicit
``depends_on``, and every resource whose outputs are among its inputs); nothing else
orders two creations. Each rule below says, from resource types and inputs only, which
resources must exist before another one is created; ``violations`` lists every pair the
graph leaves unordered. The rules know no resource by name: what other components
declare (a bucket, a job, a table) is judged the same way.

- APIs: a resource is created after the ``gcp.projects.Service`` of every API its type
  needs (``apis.apis_of``).
- Service agents: an IAM member naming a Google-managed service agent
  (``service-<number>@gcp-sa-<service>...``) is created after the
  ``gcp.projects.ServiceIdentity`` that makes that agent exist.
- Secrets: a function, service, job or worker pool reading a secret is created after a
  version of that secret and after the grant letting its runtime identity access it
  (Cloud Run checks both when it creates a revision).
- Build identities: a resource built by a service account (a function's build, the
  image build) is created after every grant the program gives that account.
- References: a resource whose inputs name a service account of the program (its email)
  is created after that account.
- Bigtable app profiles: a function, service, job or worker pool whose environment names
  an app profile (``BIGTABLE_APP_PROFILE``) is created after the ``gcp.bigtable.AppProfile``
  of that id (Bigtable refuses a request naming an unknown profile).
- Log-based metrics: a resource naming a user metric (an alert policy's filter) is created
  after the ``gcp.logging.Metric`` defining it (Monitoring refuses an unknown metric).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from cartwise_infra.apis import SERVICE_IDENTITY_TYPE, SERVICE_TYPE, apis_of

SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"  # noqa: S105 (a role name)
_SERVICE_AGENT = re.compile(r"service-\d+@gcp-sa-[a-z0-9-]+\.iam\.gserviceaccount\.com")
_BUILD_ACCOUNT_FLAG = re.compile(r"--service-account=(\S+)")
_USER_METRIC = re.compile(r"logging\.googleapis\.com/user/([A-Za-z0-9_/.-]+?)(?=[\"'\s]|$)")


@dataclass(frozen=True)
class Node:
    """One registered resource: what Pulumi received, and the mock's outputs."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str | None
    dependencies: frozenset[str]
    inputs: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Violation:
    rule: str
    resource: str  # "type name"
    needs: str
    reason: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.resource} can be created before {self.needs}: {self.reason}"


def _label(node: Node) -> str:
    return f"{node.type} {node.name}"


def _secret_id(value: object) -> str:
    """``projects/p/secrets/x`` or ``x`` -> ``x``."""
    return str(value).rsplit("/secrets/", 1)[-1].split("/", 1)[0]


def _account_email(value: object) -> str:
    """``projects/p/serviceAccounts/e``, ``serviceAccount:e`` or ``e`` -> ``e``."""
    text = str(value).rsplit("/serviceAccounts/", 1)[-1]
    return text.removeprefix("serviceAccount:")


PROFILE_ENV = "BIGTABLE_APP_PROFILE"


def _walk(value: object, skip: frozenset[str] = frozenset()) -> Iterator[tuple[str, object]]:
    """Every (key, value) pair below ``value``, except under the keys in ``skip``."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in skip:
                continue
            yield str(key), item
            yield from _walk(item, skip)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _walk(item, skip)


def secrets_read(node: Node) -> set[str]:
    """Secrets a runtime resource reads: environment variables or volumes by reference."""
    found: set[str] = set()
    for key, value in _walk(node.inputs):
        if key in {"secretKeyRef", "secret_key_ref"} and isinstance(value, Mapping):
            found.add(_secret_id(value.get("secret")))
        elif key in {"secretEnvironmentVariables", "secretVolumes"} and isinstance(
            value, list | tuple
        ):
            found |= {_secret_id(v.get("secret")) for v in value if isinstance(v, Mapping)}
    return found


def app_profiles_named(node: Node) -> set[str]:
    """Bigtable app profiles a runtime resource's environment names: in a function's
    ``environmentVariables`` map or a container's ``envs`` list (``name``/``value``)."""
    found: set[str] = set()
    for key, value in _walk(node.inputs):
        if key == PROFILE_ENV and isinstance(value, str):
            found.add(value)
        elif key == "envs" and isinstance(value, list | tuple):
            found |= {
                str(v.get("value"))
                for v in value
                if isinstance(v, Mapping) and v.get("name") == PROFILE_ENV
            }
    return found


def runtime_account(node: Node) -> str | None:
    """The identity a function, service, job or worker pool runs as (not its build's)."""
    for key, value in _walk(node.inputs, skip=frozenset({"buildConfig"})):
        if key in {"serviceAccountEmail", "serviceAccount"} and isinstance(value, str):
            return _account_email(value)
    return None


def build_account(node: Node) -> str | None:
    """The identity that builds what this resource runs, when it is built at creation."""
    config = node.inputs.get("buildConfig")
    if isinstance(config, Mapping) and config.get("serviceAccount"):
        return _account_email(config["serviceAccount"])
    create = node.inputs.get("create")
    if isinstance(create, str) and (match := _BUILD_ACCOUNT_FLAG.search(create)):
        return _account_email(match.group(1))
    return None


def is_iam_member(node: Node) -> bool:
    kind = node.type.rsplit(":", 1)[-1].lower()
    return kind.endswith("iammember") or kind.endswith("iambinding")


def members_of(node: Node) -> list[str]:
    if "member" in node.inputs:
        return [str(node.inputs["member"])]
    return [str(m) for m in node.inputs.get("members", ())]


@dataclass
class Graph:
    nodes: dict[str, Node]

    def custom(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.custom]

    def of_type(self, type_token: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.type == type_token]

    @cached_property
    def _before(self) -> dict[str, frozenset[str]]:
        """Each resource's direct predecessors: its dependencies, and a custom parent
        (a child waits for it)."""
        before: dict[str, frozenset[str]] = {}
        for urn, node in self.nodes.items():
            deps = set(node.dependencies)
            parent = self.nodes.get(node.parent or "")
            if parent is not None and parent.custom:
                deps.add(parent.urn)
            before[urn] = frozenset(deps)
        return before

    @cached_property
    def _closure(self) -> dict[str, frozenset[str]]:
        closure: dict[str, frozenset[str]] = {}

        def visit(urn: str, path: tuple[str, ...]) -> frozenset[str]:
            if urn in closure:
                return closure[urn]
            if urn in path:
                raise ValueError(f"dependency cycle through {urn}")
            found: set[str] = set()
            for dep in self._before.get(urn, frozenset()):
                found.add(dep)
                found |= visit(dep, (*path, urn))
            closure[urn] = frozenset(found)
            return closure[urn]

        for urn in self.nodes:
            visit(urn, ())
        return closure

    def created_after(self, node: Node, other: Node) -> bool:
        """Whether Pulumi creates ``node`` only once ``other`` exists."""
        return other.urn in self._closure[node.urn]

    def waves(self) -> list[list[Node]]:
        """Custom resources in creation waves: each wave needs only earlier ones."""
        # A node's depth: the longest chain of custom predecessors.
        depth: dict[str, int] = {}

        def depth_of(urn: str) -> int:
            if urn not in depth:
                preds = [d for d in self._before[urn] if self.nodes.get(d) and self.nodes[d].custom]
                depth[urn] = 1 + max((depth_of(d) for d in preds), default=-1)
            return depth[urn]

        out: dict[int, list[Node]] = {}
        for node in self.custom():
            out.setdefault(depth_of(node.urn), []).append(node)
        return [sorted(out[k], key=lambda n: (n.type, n.name)) for k in sorted(out)]

    # --- rules -----------------------------------------------------------------------

    def api_violations(self) -> list[Violation]:
        services = {str(n.inputs.get("service")): n for n in self.of_type(SERVICE_TYPE)}
        problems: list[Violation] = []
        for node in self.custom():
            for api in apis_of(node.type, node.inputs):
                service = services.get(api)
                if service is None:
                    problems.append(
                        Violation("apis", _label(node), api, "the program does not enable it")
                    )
                elif not self.created_after(node, service):
                    problems.append(
                        Violation("apis", _label(node), api, "no dependency on its enablement")
                    )
        return problems

    def service_agent_violations(self) -> list[Violation]:
        identities = {str(n.outputs.get("email")): n for n in self.of_type(SERVICE_IDENTITY_TYPE)}
        problems: list[Violation] = []
        for node in self.custom():
            if not is_iam_member(node):
                continue
            for member in members_of(node):
                agent = _SERVICE_AGENT.search(member)
                if agent is None:
                    continue
                identity = identities.get(agent.group(0))
                if identity is None or not self.created_after(node, identity):
                    problems.append(
                        Violation(
                            "service-agents",
                            _label(node),
                            f"service identity {agent.group(0)}",
                            "a service agent exists only once its identity is created",
                        )
                    )
        return problems

    def secret_violations(self) -> list[Violation]:
        versions = [n for n in self.custom() if n.type.endswith("secretVersion:SecretVersion")]
        grants = [
            n
            for n in self.custom()
            if is_iam_member(n)
            and n.type.startswith("gcp:secretmanager")
            and n.inputs.get("role") == SECRET_ACCESSOR
        ]
        problems: list[Violation] = []
        for node in self.custom():
            read = secrets_read(node)
            if not read:
                continue
            account = runtime_account(node)
            for secret in sorted(read):
                mine = [v for v in versions if _secret_id(v.inputs.get("secret")) == secret]
                if not any(self.created_after(node, v) for v in mine):
                    problems.append(
                        Violation(
                            "secrets",
                            _label(node),
                            f"a version of secret {secret}",
                            "Cloud Run resolves the secret when it creates the revision",
                        )
                    )
                granted = [
                    g
                    for g in grants
                    if _secret_id(g.inputs.get("secretId")) == secret
                    and account is not None
                    and f"serviceAccount:{account}" in members_of(g)
                ]
                if not any(self.created_after(node, g) for g in granted):
                    problems.append(
                        Violation(
                            "secrets",
                            _label(node),
                            f"the accessor grant of {secret} to {account}",
                            "Cloud Run checks the identity's access when it creates the revision",
                        )
                    )
        return problems

    def build_identity_violations(self) -> list[Violation]:
        problems: list[Violation] = []
        iam = [n for n in self.custom() if is_iam_member(n)]
        for node in self.custom():
            account = build_account(node)
            if account is None:
                continue
            for grant in iam:
                if f"serviceAccount:{account}" in members_of(grant) and not self.created_after(
                    node, grant
                ):
                    problems.append(
                        Violation(
                            "build-identity",
                            _label(node),
                            f"{grant.inputs.get('role')} for {account} ({grant.name})",
                            "the build runs when the resource is created",
                        )
                    )
        return problems

    def reference_violations(self) -> list[Violation]:
        accounts = {
            str(n.outputs.get("email")): n
            for n in self.custom()
            if n.type == "gcp:serviceaccount/account:Account" and n.outputs.get("email")
        }
        problems: list[Violation] = []
        for node in self.custom():
            named = {
                _account_email(v) for _, v in _walk(node.inputs) if isinstance(v, str) and "@" in v
            }
            for email in sorted(named & set(accounts)):
                if not self.created_after(node, accounts[email]):
                    problems.append(
                        Violation(
                            "references",
                            _label(node),
                            f"service account {email}",
                            "its inputs name the account",
                        )
                    )
        return problems

    def app_profile_violations(self) -> list[Violation]:
        profiles = {
            str(n.inputs.get("appProfileId")): n
            for n in self.custom()
            if n.type == "gcp:bigtable/appProfile:AppProfile"
        }
        problems: list[Violation] = []
        for node in self.custom():
            for profile in sorted(app_profiles_named(node)):
                declared = profiles.get(profile)
                if declared is None or not self.created_after(node, declared):
                    problems.append(
                        Violation(
                            "app-profiles",
                            _label(node),
                            f"Bigtable app profile {profile}",
                            "its environment names the profile",
                        )
                    )
        return problems

    def log_metric_violations(self) -> list[Violation]:
        metrics = {
            str(n.inputs.get("name")): n
            for n in self.custom()
            if n.type.startswith("gcp:logging/metric:")
        }
        problems: list[Violation] = []
        for node in self.custom():
            named = {
                m.group(1)
                for _, v in _walk(node.inputs)
                if isinstance(v, str)
                for m in _USER_METRIC.finditer(v)
            }
            for name in sorted(named):
                metric = metrics.get(name)
                if metric is None or not self.created_after(node, metric):
                    problems.append(
                        Violation(
                            "log-metrics",
                            _label(node),
                            f"log-based metric {name}",
                            "its inputs name the metric",
                        )
                    )
        return problems

    def violations(self) -> list[Violation]:
        return [
            *self.api_violations(),
            *self.service_agent_violations(),
            *self.secret_violations(),
            *self.build_identity_violations(),
            *self.reference_violations(),
            *self.app_profile_violations(),
            *self.log_metric_violations(),
        ]
