"""The charts as helm sees them: lint, template, and what they render (no cluster needed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.config import WebhookService, parse_config
from services.health import readiness_gate
from tests.deploy import hub_permissions
from tests.deploy.charts import AKO_VALUES, ALBUS, HUB, HUB_VALUES, REPO, find, helm, render

VALUE_SETS = {
    "albus-default": (ALBUS, []),
    "albus-ako": (ALBUS, [AKO_VALUES]),
    "hub-default": (HUB, []),
    "hub-values": (HUB, [HUB_VALUES]),
}


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_helm_lint(name: str) -> None:
    chart, values = VALUE_SETS[name]
    out = helm("lint", "--strict", str(chart), *[a for v in values for a in ("-f", str(v))])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 chart(s) failed" in out.stdout


def _config(objs: list[dict[str, Any]], suffix: str = "-config") -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(find(objs, "ConfigMap", suffix)["data"]["config.yaml"])
    return data


def test_ako_values_become_albus_configuration() -> None:
    objs = render(ALBUS, [AKO_VALUES], namespace="avi-system")
    raw = _config(objs)
    cfg = parse_config(raw)  # albus accepts what the chart renders (extra="forbid": no stray key)
    assert cfg.AKOSettings.clusterName == "east-prod"
    assert (cfg.AKOSettings.namespaceSelector.labelKey, cfg.AKOSettings.namespaceSelector.labelValue) == ("app-lb", "avi")
    assert cfg.AKOSettings.logLevel == "WARN" and cfg.AKOSettings.fullSyncFrequency == 1800
    assert cfg.AKOSettings.enableEvents is True  # AKO writes it as the string "true"
    c = cfg.ControllerSettings
    assert (c.controllerHost, c.controllerVersion, c.cloudName, c.tenantName, c.serviceEngineGroupName) == (
        "avi.example.com", "22.1.4", "vcenter-east", "team-east", "seg-east")
    assert c.verifyTLS is True
    assert [(n.networkName, n.cidr) for n in cfg.NetworkSettings.vipNetworkList] == [("vip-east", "10.50.0.0/24")]
    assert cfg.NetworkSettings.bgpPeerLabels == ["peer-east-1", "peer-east-2"] and cfg.NetworkSettings.enableRHI
    assert cfg.L7Settings.shardVSSize == "MEDIUM" and cfg.L4Settings.autoFQDN == "default"
    assert cfg.albus.namespace == "avi-system"
    assert cfg.albus.probes.address == "0.0.0.0"  # the kubelet probes the pod's address
    assert cfg.credentials.username == cfg.credentials.password == cfg.credentials.authtoken == ""


def test_ako_enable_events_false_as_string_or_boolean(tmp_path: Path) -> None:
    quoted = tmp_path / "quoted.yaml"  # AKO's values file quotes it; a boolean false must not read as unset
    quoted.write_text('AKOSettings:\n  enableEvents: "false"\n')
    for values, sets in (([quoted], None), ([], {"AKOSettings.enableEvents": "false"})):
        assert parse_config(_config(render(ALBUS, values, sets))).AKOSettings.enableEvents is False
    assert parse_config(_config(render(ALBUS))).AKOSettings.enableEvents is True


def test_default_values_render_a_valid_configuration() -> None:
    cfg = parse_config(_config(render(ALBUS)))
    assert cfg.AKOSettings.clusterName == "my-cluster"
    hub = parse_config(_config(render(HUB), "-syncer-config"))
    assert [c.name for c in hub.albus.syncer.clusters] == ["my-cluster"]


def test_hub_syncer_pool_serves_every_cluster() -> None:
    cfg = parse_config(_config(render(HUB, [HUB_VALUES], namespace="albus-hub"), "-syncer-config"))
    assert [(c.name, c.tenantName) for c in cfg.albus.syncer.clusters] == [("east-prod", "team-east"), ("west-prod", "")]
    assert cfg.albus.syncer.clusters[0].sealingKeyFile == "/etc/albus/sealing/east-prod/sealing.key"
    assert cfg.albus.natsReplicas == 3


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_no_credential_is_rendered(name: str) -> None:
    """Credentials come from Secrets the user creates: no Secret, no literal password in any object."""
    chart, values = VALUE_SETS[name]
    objs = render(chart, values)
    assert not [o for o in objs if o["kind"] == "Secret"]
    for o in objs:
        for container in (o.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []):
            for env in container.get("env") or []:
                if re.search(r"PASSWORD|TOKEN|_PW_|REMOTE", env["name"]) or env["name"] == "NATS_URL":
                    value = env.get("value", "")
                    from_secret = "valueFrom" in env
                    composed = "$(" in value  # expanded by Kubernetes from a Secret-backed variable
                    no_credentials = value.startswith("nats://") and "@" not in value
                    assert from_secret or composed or no_credentials, env


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_pods_are_non_root_read_only_and_probed(name: str) -> None:
    chart, values = VALUE_SETS[name]
    workloads = [o for o in render(chart, values) if o["kind"] in ("Deployment", "StatefulSet")]
    assert workloads
    for w in workloads:
        spec = w["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        for c in spec["containers"]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, w["metadata"]["name"]
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["livenessProbe"]["httpGet"]["path"].startswith("/healthz")
            assert c["readinessProbe"]["httpGet"]["path"].startswith(("/readyz", "/healthz"))
            assert c["resources"]["requests"]["memory"] and c["resources"]["limits"]["memory"]


def test_albus_chart_objects() -> None:
    objs = render(ALBUS, [AKO_VALUES], crds=True)
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objs}
    assert ("CustomResourceDefinition", "aviinfrasettings.ako.vmware.com") in kinds
    assert ("IngressClass", "avi-lb") in kinds and ("GatewayClass", "avi-lb") in kinds
    ic = find(objs, "IngressClass")
    assert ic["spec"]["controller"] == "ako.vmware.com/avi-lb"
    assert ic["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] == "true"
    deployments = {o["metadata"]["name"] for o in objs if o["kind"] == "Deployment"}
    assert deployments == {"albus-watcher", "albus-translator", "albus-health"}
    with_syncer = render(ALBUS, sets={"syncer.enabled": "true", "nats.leaf.enabled": "true"})
    assert {o["metadata"]["name"] for o in with_syncer if o["kind"] == "Deployment"} == {
        "albus-watcher", "albus-translator", "albus-health", "albus-syncer", "albus-nats-leaf"}


def test_readiness_gate_renders_its_service_port_and_configuration() -> None:
    off = render(ALBUS)
    assert parse_config(_config(off)).albus.readinessGate.port == 0  # off by default: no webhook
    assert not [o for o in off if o["kind"] == "Service"]
    objs = render(ALBUS, [AKO_VALUES], {"readinessGate.enabled": "true"}, namespace="avi-system")
    gate = parse_config(_config(objs)).albus.readinessGate
    assert (gate.port, gate.address) == (9443, "0.0.0.0")  # the API server calls the pod's address
    assert gate.service == WebhookService(namespace="avi-system", name="albus-webhook", port=443)
    svc = find(objs, "Service", "-webhook")
    health = find(objs, "Deployment", "-health")
    assert svc["spec"]["selector"] == health["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"] == [{"name": "webhook", "port": 443, "targetPort": "webhook", "protocol": "TCP"}]
    [container] = health["spec"]["template"]["spec"]["containers"]
    assert {"name": "webhook", "containerPort": 9443, "protocol": "TCP"} in container["ports"]
    for other in (find(objs, "Deployment", "-watcher"), find(objs, "Deployment", "-translator")):
        assert [p["name"] for p in other["spec"]["template"]["spec"]["containers"][0]["ports"]] == ["metrics"]
    # Health may create its configuration and update it (by name) when its CA or Service changes.
    rules = find(objs, "ClusterRole", "-health")["rules"]
    mwc = [r for r in rules if r["resources"] == ["mutatingwebhookconfigurations"]]
    assert {v for r in mwc for v in r["verbs"]} >= {"create", "get", "update"}
    assert [r.get("resourceNames") for r in mwc if "update" in r["verbs"]] == [[readiness_gate.CONFIGURATION_NAME]]
    # Two health replicas would register two CAs behind one Service: refused.
    out = helm("template", "albus", str(ALBUS), "--set", "readinessGate.enabled=true", "--set", "health.replicas=2")
    assert out.returncode != 0 and "health.replicas 1" in out.stderr


def test_rbac_is_the_repository_clusterrole() -> None:
    """One list of rules: the chart renders deploy/rbac/clusterrole.yaml, which the e2e tests run with."""
    repo = {d["metadata"]["labels"]["app.kubernetes.io/component"]: d["rules"]
            for d in yaml.safe_load_all((REPO / "deploy" / "rbac" / "clusterrole.yaml").read_text())
            if d and d["kind"] == "ClusterRole"}
    objs = render(ALBUS)
    rendered = {o["metadata"]["labels"]["app.kubernetes.io/component"]: o["rules"]
                for o in objs if o["kind"] == "ClusterRole"}
    assert rendered == repo and set(repo) == {"watcher", "health"}
    for b in (o for o in objs if o["kind"] == "ClusterRoleBinding"):
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": b["metadata"]["name"], "namespace": "albus-system"}]
    # The translator's pods carry no token: it never talks to Kubernetes.
    translator = find(objs, "Deployment", "-translator")
    assert translator["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_chart_crd_is_the_repository_crd() -> None:
    chart_crd = ALBUS / "crds" / "ako.vmware.com_aviinfrasettings.yaml"
    assert chart_crd.read_text() == (REPO / "deploy" / "crds" / chart_crd.name).read_text()


def test_hub_permissions_are_natsconfig() -> None:
    assert hub_permissions.PATH.read_text() == hub_permissions.generated(), (
        "regenerate with: python -m tests.deploy.hub_permissions")


def _nats_conf_users(conf: str) -> dict[str, Any]:
    """The users block of a rendered nats.conf (its $VARIABLES as strings, so it parses as JSON-ish YAML)."""
    block = conf[conf.index("users: [") + len("users: "):]
    block = block[: block.rindex("]") + 1]
    block = re.sub(r"password: \$(\w+)", r'password: "$\1"', block).replace("}\n", "},\n")
    users = yaml.safe_load(block)
    return {u["user"]: u for u in users}


def test_hub_nats_users_have_natsconfig_permissions() -> None:
    from albus import natsconfig

    conf = find(render(HUB, [HUB_VALUES]), "ConfigMap", "-nats")["data"]["nats.conf"]
    users = _nats_conf_users(conf)
    assert set(users) == {"albus-syncer", "albus-cluster-east-prod", "albus-cluster-west-prod"}
    assert users["albus-syncer"]["permissions"] == natsconfig.syncer_permissions()
    # natsconfig's permissions (spelt for leaf nodes), plus each JetStream API call under the hub's domain.
    want = natsconfig.cluster_permissions("west-prod")
    got = users["albus-cluster-west-prod"]["permissions"]
    assert got["subscribe"] == want["subscribe"]
    allow = hub_permissions.leaf_safe(want["publish"]["allow"])
    assert got["publish"]["allow"] == [x for a in allow for x in
                                       ([a, a.replace("$JS.API.", "$JS.hub.API.")] if a.startswith("$JS.API.") else [a])]
    assert users["albus-cluster-west-prod"]["password"] == "$ALBUS_NATS_PW_ALBUS_CLUSTER_WEST_PROD"
    assert "routes" in conf and conf.count("nats-route://") == 3


def _leaves(values: Any, prefix: str = "") -> list[str]:
    """Dotted names of every value (a ``resources`` block counts as one)."""
    if isinstance(values, dict) and values and not prefix.endswith("resources."):
        return [k for key, v in values.items() for k in _leaves(v, f"{prefix}{key}.")]
    return [prefix.rstrip(".")]


@pytest.mark.parametrize("chart", [ALBUS, HUB], ids=["albus", "albus-hub"])
def test_readme_lists_every_value(chart: Path) -> None:
    readme = (chart / "README.md").read_text()
    values = yaml.safe_load((chart / "values.yaml").read_text())
    missing = [k for k in _leaves(values) if f"`{k}`" not in readme]
    assert not missing, f"{chart.name}/README.md does not list: {missing}"


def test_helm_is_the_pinned_version() -> None:
    from albus.tools import helm as helm_tool

    out = helm("version", "--template", "{{.Version}}")
    assert out.returncode == 0 and out.stdout.strip() == helm_tool.HELM_VERSION, out
    helm_tool.check_go_mod()


def _matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` one token, ``>`` one or more at the end."""
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)


def test_leaf_spelling_allows_exactly_what_natsconfig_allows() -> None:
    from albus import natsconfig
    from services.common import subjects

    allow = natsconfig.cluster_permissions("east")["publish"]["allow"]
    spelt = hub_permissions.leaf_safe(allow)
    assert not [p for p in spelt if ".*." in p]
    real = [subjects.avi_tree(c, "admin", "vs") for c in ("east", "west")]
    real += [f"avi.{p}.east.admin.vs" for p in (0, 17, 63)] + ["avi.3.east"]
    real += [subjects.trace_spans("east", "t1"), subjects.trace_index("east", "Service", "ns", "web"),
             subjects.trace_spans("west", "t1"), "k8s.east.Service.ns.a", "avisync.east", "k8s.west.Service.ns.a"]
    for subject in real:
        assert any(_matches(p, subject) for p in allow) == any(_matches(p, subject) for p in spelt), subject
    # Subjects no albus process uses: the spelling is narrower there, never wider.
    for subject in ("avi.64.east.admin.vs", "avi.x.east.admin.vs", "trace.other.east.x"):
        assert not any(_matches(p, subject) for p in spelt), subject
