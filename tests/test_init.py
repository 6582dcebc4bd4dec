"""``helm-harness init``: starter suites rendered from the fixture charts with the real Helm,
validated, and collected by pytest."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import yaml

from harness.cli.init import HttpCheck, PodTemplate, Rendered, _http_ports, suite_text
from harness.cli.main import main
from harness.suite.model import load_suite
from tests.conftest import FIXTURE_CHARTS, tiny_chart


def init(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["init", *args])
    out, err = capsys.readouterr()
    return code, out, err


def header_warnings(text: str) -> list[str]:
    """The warnings of a starter suite's header, each unwrapped to one line."""
    lines = text.split("\n# Warnings", 1)[1].split("\n#\n", 1)[0].splitlines()
    found: list[str] = []
    for line in lines:
        if line.startswith("# - "):
            found.append(line[4:])
        elif line.startswith("#   ") and found:
            found[-1] += " " + line[4:]
    return found


def prose(text: str) -> str:
    """A starter suite's comments as one line (the header wraps them)."""
    comments = [line[1:].strip() for line in text.splitlines() if line.startswith("#")]
    return " ".join(comment for comment in comments if comment)


def checks_of(path: Path) -> list[dict[str, object]]:
    doc = yaml.safe_load(path.read_text())
    checks: list[dict[str, object]] = doc["apps"][0]["checks"]
    return checks


def test_web_gets_ready_helm_test_and_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    chart = os.path.relpath(FIXTURE_CHARTS / "web", tmp_path)  # as a user would type it
    code, out, err = init(capsys, chart, "-o", "suites/web.suite.yaml")
    assert (code, err) == (0, "")
    assert out == (
        "wrote suites/web.suite.yaml: app web, items install, ready, helmTest, http[/healthz]\n"
    )
    written = tmp_path / "suites" / "web.suite.yaml"
    assert checks_of(written) == [
        {"ready": {}},
        {"helmTest": {}},
        # the readiness probe's path, on the container port the Service's targetPort names
        {"http": {"service": "web-web", "port": 80, "path": "/healthz", "expect": {"status": 200}}},
    ]
    suite = load_suite(written)
    assert suite.apps[0].source.chart == str(FIXTURE_CHARTS / "web")  # relative to the file
    text = written.read_text()
    assert text.startswith("# A starter suite for the chart ")
    for explained in (
        "- ready:",
        "Deployment/web-web",
        "- helmTest:",
        "Pod/web-web-test",
        "- http: GET /healthz on Service web-web port 80 (http)",
        "path from the readinessProbe of Deployment/web-web",
    ):
        assert explained in prose(text)
    assert "edit it" in text and "Warnings" not in text  # nothing to warn about


def test_db_gets_its_probe_path_and_a_warning_about_its_claims(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = init(capsys, str(FIXTURE_CHARTS / "db"))
    # port "db" (5432) looks like no HTTP port, but its readiness probe is an httpGet
    assert code == 0 and "items install, ready, http[/healthz]\n" in out
    written = tmp_path / "db.suite.yaml"
    assert checks_of(written) == [
        {"ready": {}},
        {"http": {"service": "db", "port": 5432, "path": "/healthz", "expect": {"status": 200}}},
    ]
    text = written.read_text()
    assert "StatefulSet/db" in text and "Service/db" in text
    assert "db-headless" not in text  # headless: no endpoints to wait for, nothing to GET
    warning = (
        "StatefulSet/db claims volumes (data): on kwok, which has no StorageClass, the claims "
        "stay Pending and its pods are never scheduled, so `ready` times out (kind and k3d "
        "bind them through their local-path provisioner); values to change: "
        "persistence.enabled=false"
    )
    assert err == f"helm-harness: warning: {warning}\n"
    assert header_warnings(text) == [warning]
    assert load_suite(written).apps[0].source.chart == str(FIXTURE_CHARTS / "db")


def test_the_written_suite_collects_as_expected(pytester: pytest.Pytester) -> None:
    assert (
        main(["init", str(FIXTURE_CHARTS / "web"), "-o", str(pytester.path / "web.suite.yaml")])
        == 0
    )
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        [
            "web.suite.yaml::web::install",
            "web.suite.yaml::web::ready",
            "web.suite.yaml::web::helmTest",
            "web.suite.yaml::web::http[[]/healthz[]]",
            "*4 tests collected*",
        ]
    )


def test_a_missing_chart_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = init(capsys, "charts/nope")
    assert code == 4 and out == ""
    assert err == (
        "helm-harness: error: chart not found: charts/nope (a chart folder or .tgz; "
        "or give --repo)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_chart_helm_cannot_render_gives_helms_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = tiny_chart(tmp_path, "bad", '{{ fail "the database password is required" }}\n')
    monkeypatch.chdir(tmp_path)
    code, _, err = init(capsys, str(chart))
    assert code == 4
    assert err.startswith(f"helm-harness: error: cannot render chart {chart}: ")
    assert "execution error at (bad/templates/bad.yaml" in err
    assert "the database password is required" in err and "Traceback" not in err
    assert not (tmp_path / "bad.suite.yaml").exists()


def test_an_existing_file_is_kept_unless_forced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "web.suite.yaml").write_text("mine\n")
    code, _, err = init(capsys, str(FIXTURE_CHARTS / "web"))
    assert code == 4 and "web.suite.yaml exists" in err and "--force" in err
    assert (tmp_path / "web.suite.yaml").read_text() == "mine\n"
    code, _, _ = init(
        capsys, str(FIXTURE_CHARTS / "web"), "-o", "web.suite.yaml", "--force", "--name", "front"
    )
    assert code == 0
    suite = load_suite(tmp_path / "web.suite.yaml")
    assert suite.apps[0].name == "front"  # release front: its Service is front-web
    assert checks_of(tmp_path / "web.suite.yaml")[2]["http"] == {
        "service": "front-web",
        "port": 80,
        "path": "/healthz",
        "expect": {"status": 200},
    }


def test_stdout_output_writes_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = init(capsys, str(FIXTURE_CHARTS / "web"), "-o", "-")
    assert code == 0 and "kind: Suite" in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--version", "1.0.0"], "--version applies to charts from a repo"),
        (["--name", "Web_App"], "--name 'Web_App': an app name is lower-case"),
    ],
)
def test_bad_options_are_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = init(capsys, str(FIXTURE_CHARTS / "web"), *args, "-o", "-")
    assert code == 4 and message in err


def port(number: int, name: str = "", **more: str) -> dict[str, object]:
    return {"port": number, **({"name": name} if name else {}), **more}


def test_which_ports_look_like_http() -> None:
    ports = [
        port(80, "http"),
        port(8443, "https"),
        port(443, "web"),
        port(9090, "http-metrics"),
        port(9100, "metrics"),
        port(8080),
        port(5432, "db"),
        port(50051, "grpc-http"),
        port(8081, "admin", appProtocol="http"),
        port(3000, "ui", protocol="UDP"),
    ]
    assert _http_ports("svc", ports) == [
        HttpCheck("svc", 80, "http", "/"),
        HttpCheck("svc", 9090, "http-metrics", "/metrics"),
        HttpCheck("svc", 9100, "metrics", "/metrics"),
        HttpCheck("svc", 8080, "", "/"),
        HttpCheck("svc", 8081, "admin", "/"),
    ]


def test_http_checks_with_the_same_path_are_named_apart(tmp_path: Path) -> None:
    rendered = Rendered(
        workloads=["Deployment/a"],
        http=[HttpCheck("a", 80, "http", "/"), HttpCheck("b", 8080, "web", "/")],
    )
    (tmp_path / "chart").mkdir()
    (tmp_path / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: a\nversion: 0.1.0\n")
    path = tmp_path / "a.suite.yaml"
    path.write_text(
        suite_text(
            app="a", chart="chart", chart_shown="chart", repo=None, version=None, rendered=rendered
        )
    )
    checks = load_suite(path).apps[0].checks or ()
    assert [check.id for check in checks] == ["ready", "http[a:80/]", "http[b:8080/]"]


def chart_with(folder: Path, name: str, template: str, values: str) -> Path:
    """A one-template chart with a values.yaml, written for a test."""
    chart = tiny_chart(folder, name, template)
    (chart / "values.yaml").write_text(values)
    return chart


PROBES_CHART = """\
{{- range $name := list "api" "worker" "plain" }}
apiVersion: v1
kind: Service
metadata: {name: {{ $.Release.Name }}-{{ $name }}}
spec:
  selector: {app: {{ $name }}}
  ports:
  {{- if eq $name "api" }}
    - {name: main, port: 80, targetPort: web}
    - {name: admin, port: 9000, targetPort: admin}
    - {name: grpc-api, port: 9090, targetPort: 9090}
  {{- else if eq $name "worker" }}
    - {name: status, port: 7070, targetPort: status}
  {{- else }}
    - {name: http, port: 80, targetPort: http}
    - {name: cache, port: 6379, targetPort: 6379}
  {{- end }}
---
{{- end }}
"""


def workload(
    name: str, container: str, *, kind: str = "Deployment", pod: str = "", spec: str = ""
) -> str:
    """A workload named ``<release>-NAME`` (``<release>`` for ``name=""``) of one container
    (its YAML after ``- name: ...``), its pods labelled ``app: NAME``; ``pod`` and ``spec``:
    more YAML for the pod spec and the workload's spec."""
    app = name or "main"
    full = "{{ .Release.Name }}" + (f"-{name}" if name else "")
    return f"""\
---
apiVersion: apps/v1
kind: {kind}
metadata: {{name: {full}}}
spec:
  selector: {{matchLabels: {{app: {app}}}}}
{textwrap.indent(spec, "  ")}\
  template:
    metadata: {{labels: {{app: {app}}}}}
    spec:
      containers:
        - name: {app}
          image: example.org/{app}:1
{textwrap.indent(container, " " * 10)}\
{textwrap.indent(pod, " " * 6)}"""


PROBES_CHART += workload(
    "api",
    """\
ports: [{name: web, containerPort: 8080}, {name: admin, containerPort: 9000}]
readinessProbe: {httpGet: {path: /ready, port: web}}
livenessProbe: {httpGet: {path: /live, port: admin}}
""",
)
PROBES_CHART += workload(
    "worker",
    """\
ports: [{name: status, containerPort: 7070}]
livenessProbe: {httpGet: {path: /healthz, port: 7070}}
startupProbe: {httpGet: {path: /started, port: status}}
""",
)
PROBES_CHART += workload(
    "plain",
    """\
ports: [{name: http, containerPort: 8080}, {containerPort: 6379}]
readinessProbe: {tcpSocket: {port: 6379}}
""",
)


def test_http_checks_take_path_and_port_from_the_pods_probes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = chart_with(tmp_path, "probes", PROBES_CHART, "{}\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = init(capsys, str(chart), "--name", "shop")
    assert (code, err) == (0, "")
    written = tmp_path / "shop.suite.yaml"
    https = [check["http"] for check in checks_of(written) if "http" in check]
    assert https == [
        # port "main" names no HTTP: the readiness probe on container port "web" does
        {"service": "shop-api", "port": 80, "path": "/ready", "expect": {"status": 200}},
        # the readiness probe is on another port: the liveness probe is on this one
        {"service": "shop-api", "port": 9000, "path": "/live", "expect": {"status": 200}},
        # no readiness probe: liveness before startup, a probe port given as a number
        {"service": "shop-worker", "port": 7070, "path": "/healthz", "expect": {"status": 200}},
        # no httpGet probe on the port: today's rule, by the port's name
        {"service": "shop-plain", "port": 80, "path": "/", "expect": {"status": 200}},
    ]  # gRPC by name (9090) and tcpSocket-probed 6379: none
    text = written.read_text()
    for source in (
        "GET /ready on Service shop-api port 80 (main)",
        "(path from the readinessProbe of Deployment/shop-api)",
        "(path from the livenessProbe of Deployment/shop-api)",
        "(path from the livenessProbe of Deployment/shop-worker)",
        "GET / on Service shop-plain port 80 (http) answers 200, through a port-forward to a "
        "ready pod behind it (no probe names a path: point `path` at a health endpoint)",
    ):
        assert source in prose(text)
    assert out.endswith(
        "items install, ready, http[/ready], http[/live], http[/healthz], http[/]\n"
    )


def test_https_and_grpc_probes_and_tls_ports_give_no_check() -> None:
    def pod(probe: dict[str, object]) -> PodTemplate:
        container = {"name": "c", "ports": [{"name": "api", "containerPort": 8000}], **probe}
        return PodTemplate("Deployment/d", {"app": "d"}, {"containers": [container]}, "")

    ports = [{"name": "api", "port": 8000, "targetPort": "api"}]  # 8000 looks like HTTP
    https = {"readinessProbe": {"httpGet": {"path": "/", "port": "api", "scheme": "HTTPS"}}}
    grpc = {"readinessProbe": {"grpc": {"port": 8000}}}
    assert _http_ports("svc", ports, [pod(https)]) == []
    assert _http_ports("svc", ports, [pod(grpc)]) == []
    assert _http_ports("svc", ports, [pod({})]) == [HttpCheck("svc", 8000, "api", "/")]
    http = {"readinessProbe": {"httpGet": {"path": "/ok", "port": 8000}}}
    tls = [{"name": "https-webhook", "port": 443, "targetPort": "api"}]
    assert _http_ports("svc", tls, [pod(http)]) == []  # a port that looks like TLS: never
    assert _http_ports("svc", ports, [pod(http)]) == [
        HttpCheck("svc", 8000, "api", "/ok", "the readinessProbe of Deployment/d")
    ]


STORE_CHART = (
    workload(
        "",
        "resources: {{- toYaml .Values.resources | nindent 12 }}\n",
        kind="StatefulSet",
        spec="""\
serviceName: {{ .Release.Name }}
{{- if .Values.persistence.enabled }}
volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
{{- end }}
""",
    )
    + """
---
{{- if .Values.uploads.persistence.enabled }}
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: {{ .Release.Name }}-uploads}
spec:
  storageClassName: fast
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
{{- end }}
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: {{ .Release.Name }}-cache}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
"""
    + workload(
        "cache",
        "resources: {limits: {ephemeral-storage: 2Gi}}\n",
        pod="volumes: [{name: c, persistentVolumeClaim: {claimName: {{ .Release.Name }}-cache}}]\n",
    )
)
STORE_VALUES = """\
persistence:
  enabled: true
uploads:
  persistence:
    enabled: true
resources:
  requests:
    cpu: 10m
    ephemeral-storage: 1Gi
"""


def test_storage_and_ephemeral_storage_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = chart_with(tmp_path, "store", STORE_CHART, STORE_VALUES)
    monkeypatch.chdir(tmp_path)
    code, _, err = init(capsys, str(chart))
    assert code == 0
    storage_values = (
        "values to change: persistence.enabled=false, uploads.persistence.enabled=false"
    )
    warnings = [
        "PersistentVolumeClaim/store-uploads: on kwok, which has no StorageClass, it stays "
        "Pending and `ready` times out; no pod the chart renders mounts it, so kind's and k3d's "
        "local-path provisioner, which binds a claim when a pod first uses it, leaves it "
        "Pending too; it asks for StorageClass fast: `ready` fails at once where the cluster "
        f"has none of that name (kind has standard, k3d local-path); {storage_values}",
        "PersistentVolumeClaim/store-cache: on kwok, which has no StorageClass, it stays "
        "Pending and `ready` times out, and so do the pods that mount it (kind and k3d bind it "
        f"through their local-path provisioner); {storage_values}",
        "StatefulSet/store claims volumes (data): on kwok, which has no StorageClass, the "
        "claims stay Pending and its pods are never scheduled, so `ready` times out (kind and "
        f"k3d bind them through their local-path provisioner); {storage_values}",
        "Deployment/store-cache (cache 2Gi), StatefulSet/store (main 1Gi) ask for "
        "ephemeral-storage: such pods schedule only on nodes that advertise it; kind's, k3d's "
        "and the harness's kwok nodes do, but on kwok nodes made without it (a kwok cluster "
        "used with --cluster existing) they stay Pending (Insufficient ephemeral-storage); "
        "values to change: resources.requests.ephemeral-storage=null",
    ]
    assert err.splitlines() == [f"helm-harness: warning: {warning}" for warning in warnings]
    text = (tmp_path / "store.suite.yaml").read_text()
    assert header_warnings(text) == warnings
    assert text.startswith("# A starter suite for the chart ")
    assert '"on kwok" holds there only' in text  # the cluster is chosen when the suite runs
    assert all(len(line) <= 90 for line in text.split("\napiVersion:")[0].splitlines()[1:])


NODE_AGENT_CHART = workload(
    "",
    "ports: [{containerPort: 9100}]\n",
    kind="DaemonSet",
    pod="hostNetwork: {{ .Values.hostNetwork }}\n",
) + workload(
    "statsd",
    "ports: [{containerPort: 8125, hostPort: {{ .Values.statsd.hostPort }}, protocol: UDP}]\n",
    spec="replicas: 2\n",
)


def test_host_network_and_host_port_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    values = "hostNetwork: true\nstatsd:\n  hostPort: 8125\n"
    chart = chart_with(tmp_path, "node-agent", NODE_AGENT_CHART, values)
    monkeypatch.chdir(tmp_path)
    code, _, err = init(capsys, str(chart), "-o", "-")
    assert code == 0
    shared = (
        "pods that need the same host port cannot share a node, and the harness's clusters "
        "have one by default (kwok: --cluster-nodes N), so a second one (another replica, or "
        "another app's pod on that port) stays Pending"
    )
    assert err.splitlines() == [
        "helm-harness: warning: DaemonSet/node-agent uses the node's network (hostNetwork): "
        f"{shared}; on kwok, Services get no endpoints for its pods unless the nodes have the "
        "harness's 198.18.0.x address (root puts it on lo once: see providers.md); values to "
        "change: hostNetwork=false",
        "helm-harness: warning: Deployment/node-agent-statsd asks for host port 8125: "
        f"{shared}; values to change: statsd.hostPort=null",
    ]


ADMISSION_CHART = """\
{{- if .Values.admissionWebhooks.enabled }}
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: {{ .Release.Name }}-validate}
webhooks:
  - name: validate.example.org
    clientConfig: {service: {name: {{ .Release.Name }}-webhook, namespace: default}}
    rules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}]
    admissionReviewVersions: [v1]
    sideEffects: None
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: {{ .Release.Name }}-mutate}
webhooks:
  - name: mutate.example.org
    clientConfig: {service: {name: {{ .Release.Name }}-webhook, namespace: default}}
    failurePolicy: Ignore
    rules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}]
    admissionReviewVersions: [v1]
    sideEffects: None
---
{{- end }}
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: {{ .Release.Name }}-external}
webhooks:
  - name: external.example.org
    clientConfig: {url: "https://policy.example.org/validate"}
    rules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [secrets]}]
    admissionReviewVersions: [v1]
    sideEffects: None
---
{{- if .Values.apiService.create }}
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.example.org}
spec:
  group: metrics.example.org
  version: v1beta1
  service: {name: {{ .Release.Name }}-api, namespace: {{ .Release.Namespace }}}
  groupPriorityMinimum: 100
  versionPriority: 100
---
{{- end }}
{{- if .Values.dbMigrate.enabled }}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-db-migrate
  annotations: {helm.sh/hook: pre-install}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: example.org/migrate:1}]
---
{{- end }}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-test
  annotations: {helm.sh/hook: test}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: test, image: example.org/test:1}]
"""
ADMISSION_VALUES = """\
admissionWebhooks:
  enabled: true
apiService:
  create: true
dbMigrate:
  enabled: true
"""


def test_webhook_api_service_and_hook_job_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = chart_with(tmp_path, "admission", ADMISSION_CHART, ADMISSION_VALUES)
    monkeypatch.chdir(tmp_path)
    code, out, err = init(capsys, str(chart), "--name", "gate")
    assert code == 0 and out.endswith("items install, ready, helmTest\n")
    behind = (
        "on kwok nothing answers behind its Service gate-webhook (no container runs): the API "
        "server's calls to the webhook fail, so requests it covers"
    )
    warnings = [
        "APIService/v1beta1.metrics.example.org: on kwok nothing answers behind its Service "
        "gate-api (no container runs), so metrics.example.org/v1beta1 stays unavailable: "
        "requests to it fail ('the server is currently unable to handle the request'), API "
        "discovery reports the group as failed (Helm and kubectl warn), and namespaces stay "
        "Terminating while it is registered; run this app on kind; values to change: "
        "apiService.create=false",
        f"MutatingWebhookConfiguration/gate-mutate: {behind} go through unchecked once the call "
        "fails or times out (failurePolicy Ignore); run this app on kind; values to change: "
        "admissionWebhooks.enabled=false",
        f"ValidatingWebhookConfiguration/gate-validate: {behind} are refused (failurePolicy "
        "Fail), this release's own objects and the pods controllers create for it included; "
        "run this app on kind; values to change: admissionWebhooks.enabled=false",
        # none for gate-external, which calls a URL, nor for the test hook Job (helmTest's)
        "Job/gate-db-migrate runs as a Helm hook (pre-install): Helm waits for it, and its "
        "failure fails the install; on kwok it completes without running (what it does, a "
        "migration say, is not done), on kind it runs for real and needs its image and "
        "whatever it talks to; values to change: dbMigrate.enabled=false",
    ]
    assert err.splitlines() == [f"helm-harness: warning: {warning}" for warning in warnings]
    written = tmp_path / "gate.suite.yaml"
    assert header_warnings(written.read_text()) == warnings
    assert [check.id for check in load_suite(written).apps[0].checks or ()] == [
        "ready",
        "helmTest",
    ]


def test_values_with_the_switch_turned_off_give_no_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    values = "admissionWebhooks:\n  enabled: false\napiService:\n  create: false\n"
    chart = chart_with(tmp_path, "admission", ADMISSION_CHART, values + "dbMigrate: {}\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = init(capsys, str(chart), "-o", "-")
    assert (code, err) == (0, "")
