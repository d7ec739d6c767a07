"""A real Kubernetes control plane on 127.0.0.1 for the cluster tests, or the cluster a user names.

Started here: Debian's etcd, then kube-apiserver (client certificates, RBAC on, service-account
signing keys), kube-controller-manager and kube-scheduler built from k8s.io/kubernetes, and kwok,
which plays one node and the kubelet's part for its pods (``tests/cluster/kwok-stages.yaml``).
Every process binds 127.0.0.1, logs to the run's temporary directory and is stopped (its whole
process group) when the session ends. Pods never run containers and have no network: nothing may
send traffic to a pod or Service IP.

An existing cluster is used instead when ``PRICECAST_TEST_KUBECONFIG`` names a kubeconfig (the
kind workflow in ``.github/workflows/e2e-kind.yaml`` sets it). A plain ``KUBECONFIG`` is never
picked up by itself: the tests install and delete releases, and a developer's current context may
be a cluster that matters.

Binaries come from ``tools/cluster/build.sh`` (versions in ``tools/cluster/versions.env``); where Go
is missing the cluster tests skip with one line saying how to enable them.
"""
from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO / "tools" / "cluster"
CACHE_DIR = Path(os.environ.get("PRICECAST_CLUSTER_CACHE", REPO / ".cache" / "cluster"))
BIN_DIR = CACHE_DIR / "bin"
KWOK_STAGES = REPO / "tests" / "cluster" / "kwok-stages.yaml"
# The real, unmodified upstream CRDs the chart's optional objects need (../shared/crds/README.md).
SHARED = Path(os.environ.get("PRICECAST_SHARED_DIR", REPO.parent / "shared"))
CRDS = tuple(SHARED / "crds" / f for f in ("servicemonitors.yaml", "prometheusrules.yaml", "httproutes.yaml"))
NODE_NAME = "kwok-node-0"
# The image the tests' pods name: kwok never pulls it; on kind (PRICECAST_TEST_KUBECONFIG) it must be loaded.
TEST_IMAGE = os.environ.get("PRICECAST_TEST_IMAGE", "pricecast:0.1.0")
# Extra values for the helm installs the tests make themselves (not the README's lines): the kind
# workflow passes ci/kind-values.yaml, the store its pods really read.
TEST_VALUES_ARGS = ["-f", os.environ["PRICECAST_TEST_VALUES"]] if os.environ.get("PRICECAST_TEST_VALUES") else []
# Pods with this image never become ready (kwok reports ErrImagePull): the failed-upgrade tests use it.
NEVER_READY_IMAGE = ("pricecast", "kwok-never-ready")
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
CLIENTS = ("kubectl", "helm")


def pinned_versions() -> dict[str, str]:
    """tools/cluster/versions.env as a dict: the one place every cluster-test version is pinned."""
    pins = {}
    for line in (TOOLS_DIR / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            pins[key] = value
    return pins


# Which tools/cluster/build.sh group makes each binary.
BUILD_GROUPS = {"kube-apiserver": "kubernetes", "kube-controller-manager": "kubernetes", "kube-scheduler": "kubernetes",
                "kwok": "kwok", "kubectl": "kubectl-helm", "helm": "kubectl-helm", "skaffold": "skaffold",
                "helm3/helm": "helm3"}


def ensure_binaries(names: tuple[str, ...]) -> Path:
    """Run tools/cluster/build.sh for ``names`` (instant when up to date) and return the bin dir;
    skip without Go."""
    if all((BIN_DIR / n).exists() for n in names) and os.environ.get("PRICECAST_CLUSTER_NO_BUILD"):
        return BIN_DIR
    if shutil.which("go") is None and not all((BIN_DIR / n).exists() for n in names):
        pytest.skip("cluster tests need Go >= 1.26 to build Kubernetes, kwok and skaffold: install Go, "
                    "then `make test` (tools/cluster/build.sh) builds them")
    groups = sorted({BUILD_GROUPS[n] for n in names})
    done = subprocess.run(["bash", str(TOOLS_DIR / "build.sh"), "--quiet", *groups], capture_output=True, text=True,
                          timeout=3600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"tools/cluster/build.sh failed:\n{done.stdout}\n{done.stderr}")
    missing = [n for n in names if not (BIN_DIR / n).exists()]
    if missing:
        raise RuntimeError(f"tools/cluster/build.sh did not produce {missing} in {BIN_DIR}")
    return BIN_DIR


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# Certificates: one CA signs the API server's serving certificate and every client's identity.
# ECDSA P-256 keys: they take milliseconds to make, and every Kubernetes component accepts them.

@dataclass(frozen=True)
class Pki:
    directory: Path
    ca_cert: Path
    ca_key: Path

    def issue(self, name: str, common_name: str, organizations: tuple[str, ...] = (),
              server_names: tuple[str, ...] = ()) -> tuple[Path, Path]:
        ca_key = serialization.load_pem_private_key(self.ca_key.read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        subject = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        subject += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
        builder = _cert_builder(x509.Name(subject), ca_cert.subject, key)
        if server_names:
            alt: list[x509.GeneralName] = []
            for n in server_names:
                try:
                    alt.append(x509.IPAddress(ipaddress.ip_address(n)))
                except ValueError:
                    alt.append(x509.DNSName(n))
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        usage = x509.oid.ExtendedKeyUsageOID
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([usage.SERVER_AUTH] if server_names else [usage.CLIENT_AUTH]), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return _write_pair(self.directory, name, cert, key)


def _cert_builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1)))


def _write_pair(directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pricecast-test-ca")])
    cert = (_cert_builder(name, name, key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = _write_pair(directory, "ca", cert, key)
    return Pki(directory, cert_path, key_path)


def write_kubeconfig(path: Path, server: str, ca: Path, cert: Path, key: Path, user: str) -> Path:
    b64 = lambda p: base64.b64encode(p.read_bytes()).decode()  # noqa: E731
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "pricecast-test",
        "clusters": [{"name": "pricecast-test", "cluster": {"server": server, "certificate-authority-data": b64(ca)}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)}}],
        "contexts": [{"name": "pricecast-test", "context": {"cluster": "pricecast-test", "user": user}}],
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


# ---------------------------------------------------------------------------------------------
# Processes

@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace_s: float = 10.0) -> None:
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)


def start(name: str, argv: list[str], logs: Path) -> Process:
    log = logs / f"{name}.log"
    handle = log.open("wb")
    popen = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    handle.close()
    return Process(name, popen, log)


# ---------------------------------------------------------------------------------------------
# The cluster

@dataclass
class Cluster:
    """What a test needs: a kubeconfig, the server URL and the client binaries (kubectl, helm)."""

    kubeconfig: Path
    server: str
    bin_dir: Path
    started_here: bool
    workdir: Path
    start_seconds: float = 0.0
    processes: list[Process] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        """A user's shell here: KUBECONFIG, kubectl/helm and the venv's pricecast first on PATH."""
        env = dict(os.environ)
        env.update(KUBECONFIG=str(self.kubeconfig),
                   PATH=os.pathsep.join((str(self.bin_dir), str(Path(sys.executable).parent), env.get("PATH", ""))),
                   HELM_CACHE_HOME=str(self.workdir / "helm-cache"),
                   HELM_CONFIG_HOME=str(self.workdir / "helm-config"),
                   HELM_DATA_HOME=str(self.workdir / "helm-data"))
        env.update(extra)
        return env

    def run(self, *argv: str, check: bool = True, timeout: float = 180, input: str | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run(list(argv), env=self.env(), capture_output=True, text=True, timeout=timeout,
                              input=input, cwd=cwd or REPO, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {done.returncode}\n--- stdout\n{done.stdout}\n"
                                 f"--- stderr\n{done.stderr}")
        return done

    def sh(self, line: str, *, cwd: Path, check: bool = True, timeout: float = 300,
           **extra_env: str) -> subprocess.CompletedProcess:
        """Run one shell line as a user would type it: kubectl, helm and the venv's pricecast on PATH."""
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", line], env=self.env(**extra_env), capture_output=True, text=True,
                              timeout=timeout, cwd=cwd, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"$ {line}\nexited {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}")
        return done

    def kubectl(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run(str(self.bin_dir / "kubectl"), *args, **kw)

    def helm(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run(str(self.bin_dir / "helm"), *args, **kw)

    def get(self, *args: str) -> dict:
        """``kubectl get ... -o json`` as a dict."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def exists(self, *args: str) -> bool:
        return self.kubectl("get", *args, "--ignore-not-found", "-o", "name", check=False).stdout.strip() != ""

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def _url_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    """True when ``url`` answers 200 (etcd's /health, the API server's /readyz)."""
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _wait(what: str, ready, processes: list[Process], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        for p in processes:
            if p.popen.poll() is not None:
                raise RuntimeError(f"{p.name} exited with {p.popen.returncode} while waiting for {what}:\n{p.tail()}")
        time.sleep(0.2)
    tails = "\n".join(f"--- {p.name}\n{p.tail()}" for p in processes)
    raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{tails}")


def start_control_plane(workdir: Path, timeout_s: float = 120) -> Cluster:
    """etcd → kube-apiserver → controller-manager, scheduler, kwok; returns once a node is Ready."""
    bin_dir = ensure_binaries(CONTROL_PLANE + CLIENTS)
    if shutil.which("etcd") is None:
        raise RuntimeError("etcd is missing: `apt-get install etcd-server` (scripts/test-prereqs.sh does it)")
    began = time.monotonic()
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    pki = make_pki(workdir / "pki")
    api_port, etcd_port, peer_port = free_port(), free_port(), free_port()
    server = f"https://127.0.0.1:{api_port}"
    serving = pki.issue("apiserver", "kube-apiserver", server_names=(
        "127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local", "10.96.0.1"))
    admin = pki.issue("admin", "pricecast-admin", ("system:masters",))
    sa_key = ec.generate_private_key(ec.SECP256R1())
    sa_key_path, sa_pub_path = workdir / "pki" / "sa.key", workdir / "pki" / "sa.pub"
    sa_key_path.write_bytes(sa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    sa_pub_path.write_bytes(sa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo))
    kubeconfig = write_kubeconfig(workdir / "kubeconfig", server, pki.ca_cert, *admin, "pricecast-admin")
    identities = {
        "kube-controller-manager": pki.issue("controller-manager", "system:kube-controller-manager"),
        "kube-scheduler": pki.issue("scheduler", "system:kube-scheduler"),
        # kwok plays every kubelet at once (node status, leases, pod status): a cluster admin.
        "kwok": pki.issue("kwok", "kwok-controller", ("system:masters",)),
    }
    configs = {name: write_kubeconfig(workdir / f"{name}.kubeconfig", server, pki.ca_cert, *pair, name)
               for name, pair in identities.items()}

    processes: list[Process] = []
    cluster = Cluster(kubeconfig, server, bin_dir, started_here=True, workdir=workdir, processes=processes)
    try:
        processes.append(start("etcd", [
            "etcd", "--name", "pricecast-test", "--data-dir", str(workdir / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-cluster", f"pricecast-test=http://127.0.0.1:{peer_port}",
            "--quota-backend-bytes", str(2 * 1024**3), "--log-level", "warn"], logs))
        etcd_health = f"http://127.0.0.1:{etcd_port}/health"
        _wait("etcd", lambda: _url_ok(etcd_health), processes, 30)

        processes.append(start("kube-apiserver", [
            str(bin_dir / "kube-apiserver"),
            "--etcd-servers", f"http://127.0.0.1:{etcd_port}",
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", str(api_port),
            "--tls-cert-file", str(serving[0]), "--tls-private-key-file", str(serving[1]),
            "--client-ca-file", str(pki.ca_cert),
            "--authorization-mode", "Node,RBAC",
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", str(sa_pub_path),
            "--service-account-signing-key-file", str(sa_key_path),
            "--service-cluster-ip-range", "10.96.0.0/16",
            "--allow-privileged=true", "--profiling=false", "--v=1",
            # Debian's etcd (3.4) cannot report watch progress, which streaming lists need. With
            # WatchList on, kwok's (client-go 1.36) watches keep ending and relisting after a
            # back-off, and every pod update took about a minute to land; with it off, clients
            # list and watch the classic way, as against any etcd before 3.4.31.
            "--feature-gates=WatchList=false"], logs))
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        context.load_cert_chain(*admin)
        _wait("kube-apiserver /readyz", lambda: _url_ok(f"{server}/readyz", context), processes, 90)

        controller_args = [
            str(bin_dir / "kube-controller-manager"), "--kubeconfig", str(configs["kube-controller-manager"]),
            "--bind-address", "127.0.0.1", "--secure-port", str(free_port()), "--cert-dir", str(workdir / "kcm-certs"),
            "--leader-elect=false", "--use-service-account-credentials=true",
            "--service-account-private-key-file", str(sa_key_path), "--root-ca-file", str(pki.ca_cert),
            "--cluster-signing-cert-file", str(pki.ca_cert), "--cluster-signing-key-file", str(pki.ca_key),
            "--profiling=false", "--v=1"]
        processes.append(start("kube-controller-manager", controller_args, logs))
        processes.append(start("kube-scheduler", [
            str(bin_dir / "kube-scheduler"), "--kubeconfig", str(configs["kube-scheduler"]),
            "--authentication-kubeconfig", str(configs["kube-scheduler"]),
            "--authorization-kubeconfig", str(configs["kube-scheduler"]),
            "--bind-address", "127.0.0.1", "--secure-port", str(free_port()), "--cert-dir", str(workdir / "sched-certs"),
            "--leader-elect=false", "--profiling=false", "--v=1"], logs))
        stages = workdir / "kwok-config.yaml"
        stages.write_text(_kwok_config())
        processes.append(start("kwok", [
            str(bin_dir / "kwok"), "--kubeconfig", str(configs["kwok"]), "--config", str(stages),
            "--manage-all-nodes=false", "--manage-nodes-with-label-selector", "type=kwok",
            "--cidr", "10.244.0.0/16", "--node-ip", "10.0.0.1", "--node-lease-duration-seconds", "40"], logs))

        cluster.kubectl("apply", "-f", "-", input=json.dumps(_node()))
        _wait("the kwok node to be Ready", lambda: _node_ready(cluster), processes, timeout_s)
        # The controller-manager makes each namespace's `default` ServiceAccount; pods need it.
        _wait("the default ServiceAccount", lambda: cluster.exists("serviceaccount", "default", "-n", "default"),
              processes, timeout_s)
    except BaseException:
        cluster.stop()
        raise
    cluster.start_seconds = time.monotonic() - began
    return cluster


def _node_ready(cluster: Cluster) -> bool:
    done = cluster.kubectl("get", "node", NODE_NAME, "-o",
                           "jsonpath={.status.conditions[?(@.type=='Ready')].status}", check=False)
    return done.stdout.strip() == "True"


def _node() -> dict:
    """One fake node, big enough for every scenario, labelled so kwok manages it."""
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE_NAME, "labels": {
            "type": "kwok", "kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", "node-role.kubernetes.io/agent": ""},
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"}},
        "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                   "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}},
    }


def _kwok_config() -> str:
    upstream = sorted((CACHE_DIR / "kwok-stages").glob("*.yaml"))
    if len(upstream) < 4:
        raise RuntimeError(f"kwok's own stages are missing from {CACHE_DIR / 'kwok-stages'}: rerun tools/cluster/build.sh")
    docs = [p.read_text() for p in upstream] + [KWOK_STAGES.read_text()]
    return "\n---\n".join(d.strip().removeprefix("---").strip() for d in docs) + "\n"


def existing_cluster(workdir: Path) -> Cluster | None:
    """The cluster PRICECAST_TEST_KUBECONFIG names (kind in CI), with kubectl and helm from PATH."""
    path = os.environ.get("PRICECAST_TEST_KUBECONFIG")
    if not path:
        return None
    kubectl, helm = shutil.which("kubectl"), shutil.which("helm")
    if not kubectl or not helm:
        raise RuntimeError("PRICECAST_TEST_KUBECONFIG is set but kubectl or helm is not on PATH")
    bin_dir = Path(kubectl).parent
    if Path(helm).parent != bin_dir:
        bin_dir = CACHE_DIR / "existing-bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        for name, target in (("kubectl", kubectl), ("helm", helm)):
            link = bin_dir / name
            link.unlink(missing_ok=True)
            link.symlink_to(target)
    config = yaml.safe_load(Path(path).read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])["context"]
    server = next(c for c in config["clusters"] if c["name"] == context["cluster"])["cluster"]["server"]
    return Cluster(Path(path), server, bin_dir, started_here=False, workdir=workdir)
