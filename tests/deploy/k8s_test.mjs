// deploy_k8s_manifests: renders deploy/k8s (the base and every overlay) with `kubectl kustomize`,
// validates every object against the Kubernetes API schema (kubernetes-models; the Prometheus
// Operator's for ServiceMonitor and PrometheusRule), unknown fields included, and checks what
// Herald's deployment promises:
//   - every container has liveness, readiness and startup probes (Herald's: /healthz, /readyz on
//     its admin port), requests and limits, and a restrictive securityContext;
//   - a Herald pod's grace period exceeds its preStop pause plus its drain timeout;
//   - every Deployment is covered by a PodDisruptionBudget and by a NetworkPolicy of its own,
//     under a default-deny policy; api is reachable from the cluster only, ingest from anywhere,
//     Redis from Herald only; Herald may reach DNS, Redis and (api, worker) HTTPS;
//   - secrets are files from Secret volumes, never environment variables, and every file Herald
//     is told to read is in a mounted Secret;
//   - every HERALD_* variable is a flag of the herald binary, and the binary accepts each
//     container's flags and environment;
//   - Services and the ServiceMonitor point at ports that exist, autoscalers at Deployments that
//     leave replicas to them, the worker's external metric at the prometheus-adapter rule, which
//     reads a metric Herald exports;
//   - prod's PrometheusRule holds exactly the groups of deploy/prometheus/herald-rules.yml; dev's
//     Redis keeps an AOF on its volume and shares its password with Herald.
// Then it breaks the rendered manifests on purpose, one way at a time, and requires each break to
// be reported, so no check passes vacuously.
//
//   node k8s_test.mjs --herald=PATH --repo=DIR
// Exits 0 when everything holds, 1 with the problems listed otherwise, 77 (skipped) when kubectl
// is not installed.
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const m = /^--([^=]+)=(.*)$/.exec(a);
    if (!m) throw new Error(`unexpected argument ${a}`);
    return [m[1], m[2]];
  }),
);
for (const required of ["herald", "repo"]) {
  if (!args[required]) {
    console.error(`usage: node k8s_test.mjs --herald=PATH --repo=DIR (missing --${required})`);
    process.exit(2);
  }
}
const repo = path.resolve(args.repo);
const k8sDir = path.join(repo, "deploy/k8s");

function findOnPath(name) {
  for (const dir of (process.env.PATH || "").split(path.delimiter)) {
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

const kubectl = findOnPath("kubectl");
if (!kubectl) {
  console.log("SKIPPED: kubectl is not installed; it renders deploy/k8s (kubectl kustomize).");
  process.exit(77);
}

// ---- What the herald binary and the repository say ------------------------------------------

// Every flag of `herald --help`: name -> {env, default}.
const flags = new Map();
for (const line of execFileSync(args.herald, ["--help"], { encoding: "utf8" }).split("\n")) {
  const m = /^\s+--([a-z0-9_]+)=(.*?)\s+\(env (HERALD_[A-Z0-9_]+)\)$/.exec(line);
  if (m) flags.set(m[1], { default: m[2], env: m[3] });
}
if (!flags.has("drain_timeout") || !flags.has("redis_address")) {
  throw new Error("could not read the flags from `herald --help`");
}
const flagOfEnv = new Map([...flags].map(([name, f]) => [f.env, name]));
// Flags that carry a secret's value: given only as files.
const SECRET_FLAGS = ["redis_password", "admin_key", "encryption_key"];
// The Secrets a production cluster holds outside this repository (deploy/README.md).
const EXTERNAL_SECRETS = new Set(["herald-redis", "herald-admin-key", "herald-encryption-key"]);

const adapterRules = YAML.parse(
  fs.readFileSync(path.join(k8sDir, "prometheus-adapter/rules.yaml"), "utf8"),
);
const heraldRules = YAML.parse(
  fs.readFileSync(path.join(repo, "deploy/prometheus/herald-rules.yml"), "utf8"),
);

// Whether Herald's queue library declares a metric of this name.
function queueExportsMetric(name) {
  const stack = [path.join(repo, "libs/queue")];
  while (stack.length) {
    const dir = stack.pop();
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) stack.push(p);
      else if (/\.(cc|h)$/.test(entry.name) && !/_test\.cc$/.test(entry.name)) {
        if (fs.readFileSync(p, "utf8").includes(`"${name}"`)) return true;
      }
    }
  }
  return false;
}

// ---- Rendering and schema validation --------------------------------------------------------

function render(dir) {
  const out = execFileSync(kubectl, ["kustomize", dir], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 64 << 20,
  });
  const objects = [];
  for (const doc of YAML.parseAllDocuments(out)) {
    if (doc.errors.length) throw new Error(`${dir}: ${doc.errors[0].message}`);
    const value = doc.toJS();
    if (value) objects.push(value);
  }
  return objects;
}

const models = new Map();
async function modelFor(apiVersion, kind) {
  const key = `${apiVersion}/${kind}`;
  if (models.has(key)) return models.get(key);
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const module =
    group === ""
      ? `kubernetes-models/${version}/${kind}`
      : group === "monitoring.coreos.com"
        ? `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`
        : `kubernetes-models/${group}/${version}/${kind}`;
  let model = null;
  try {
    model = (await import(module))[kind] ?? null;
  } catch {
    model = null;
  }
  models.set(key, model);
  return model;
}

// Wraps `value` so that every property the schema validator reads is recorded: the validators
// read each property their schema defines (and enumerate maps), so a key never read is a field
// the schema does not have, such as a misspelt one.
function tracked(value, where, seen) {
  if (value === null || typeof value !== "object") return value;
  const entry = { read: new Set(), enumerated: false, value };
  seen.push([where, entry]);
  const children = new Map();
  return new Proxy(value, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof prop !== "string" || !Object.prototype.hasOwnProperty.call(target, prop)) return v;
      entry.read.add(prop);
      if (!children.has(prop)) children.set(prop, tracked(v, `${where}.${prop}`, seen));
      return children.get(prop);
    },
    has(target, prop) {
      if (typeof prop === "string") entry.read.add(prop);
      return Reflect.has(target, prop);
    },
    ownKeys(target) {
      entry.enumerated = true;
      return Reflect.ownKeys(target);
    },
  });
}

async function schemaProblems(obj) {
  const name = `${obj.kind}/${obj.metadata?.name}`;
  const model = await modelFor(obj.apiVersion, obj.kind);
  if (!model) return [`${name}: no schema for ${obj.apiVersion} ${obj.kind}`];
  const seen = [];
  const problems = [];
  const copy = structuredClone(obj);
  // kustomize wraps long base64 values over lines, which the API server's decoder skips.
  if (copy.kind === "Secret") {
    for (const key of Object.keys(copy.data || {}))
      copy.data[key] = String(copy.data[key]).replace(/\s+/g, "");
  }
  try {
    model.prototype.validate.call(tracked(copy, "", seen));
  } catch (e) {
    problems.push(`${name}: schema: ${e.message}`);
  }
  for (const [where, entry] of seen) {
    if (entry.enumerated || Array.isArray(entry.value)) continue;
    for (const key of Object.keys(entry.value)) {
      if (!entry.read.has(key))
        problems.push(`${name}: unknown field ${`${where}.${key}`.slice(1)}`);
    }
  }
  return problems;
}

// ---- Helpers over rendered objects ----------------------------------------------------------

function selects(selector, labels) {
  if (!selector) return false;
  for (const [k, v] of Object.entries(selector.matchLabels || {})) {
    if (labels?.[k] !== v) return false;
  }
  for (const e of selector.matchExpressions || []) {
    const has = labels && Object.prototype.hasOwnProperty.call(labels, e.key);
    const v = labels?.[e.key];
    if (e.operator === "In" && !(has && e.values.includes(v))) return false;
    if (e.operator === "NotIn" && has && e.values.includes(v)) return false;
    if (e.operator === "Exists" && !has) return false;
    if (e.operator === "DoesNotExist" && has) return false;
  }
  return true;
}

function isEmptySelector(selector) {
  return (
    !selector ||
    (Object.keys(selector.matchLabels || {}).length === 0 &&
      (selector.matchExpressions || []).length === 0)
  );
}

// absl duration text ("25s", "1m30s", "500ms") in seconds.
function durationSeconds(text) {
  const units = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, ns: 1e-9 };
  const re = /(\d+(?:\.\d+)?)(h|ms|us|ns|m|s)/g;
  let total = 0;
  let consumed = "";
  for (const m of String(text).matchAll(re)) {
    total += Number(m[1]) * units[m[2]];
    consumed += m[0];
  }
  if (!consumed || consumed !== String(text)) throw new Error(`not a duration: '${text}'`);
  return total;
}

// JSON with sorted keys (kubectl kustomize sorts every mapping). With `promql`, runs of
// whitespace in `expr` count as one space: kustomize re-emits a folded scalar whose lines are
// indented further with an extra line break, which PromQL ignores.
function canonical(value, promql = false, key = "") {
  if (Array.isArray(value)) return `[${value.map((v) => canonical(v, promql)).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k], promql, k)}`)
      .join(",")}}`;
  }
  if (promql && key === "expr" && typeof value === "string")
    return JSON.stringify(value.replace(/\s+/g, " ").trim());
  return JSON.stringify(value);
}

function quantityCores(q) {
  const s = String(q);
  return s.endsWith("m") ? Number(s.slice(0, -1)) / 1000 : Number(s);
}

// A memory quantity ("512Mi", "1Gi", "1G", "1048576") in bytes; NaN when not one.
function quantityBytes(q) {
  const m = /^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q));
  if (!m) return NaN;
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(m[1]) * (m[2] ? unit[m[2]] : 1);
}

function portOf(hostPort) {
  const m = /:(\d+)$/.exec(hostPort || "");
  return m ? Number(m[1]) : null;
}

function flagArg(argv, flag) {
  const prefix = `--${flag}=`;
  const found = (argv || []).filter(
    (a) => a.startsWith(prefix) || a.startsWith(`--${flag.replaceAll("_", "-")}=`),
  );
  return found.length
    ? found[found.length - 1].slice(found[found.length - 1].indexOf("=") + 1)
    : undefined;
}

function decodeSecret(secret, key) {
  if (secret.data?.[key] !== undefined)
    return Buffer.from(secret.data[key], "base64").toString("utf8");
  return secret.stringData?.[key];
}

const WORKLOAD_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet"]);

// ---- The invariants -------------------------------------------------------------------------

function invariantProblems(overlay, objects) {
  const problems = [];
  const problem = (what) => problems.push(what);
  const all = (kind) => objects.filter((o) => o.kind === kind);
  const find = (kind, name) => objects.find((o) => o.kind === kind && o.metadata?.name === name);
  const workloads = objects.filter((o) => WORKLOAD_KINDS.has(o.kind));
  const deployments = all("Deployment");
  const policies = all("NetworkPolicy");
  const podLabels = (w) => w.spec?.template?.metadata?.labels || {};
  const isHerald = (w) => podLabels(w)["app.kubernetes.io/name"] === "herald";
  const isRedis = (w) => podLabels(w)["app.kubernetes.io/name"] === "redis";
  const named = (o) => `${o.kind}/${o.metadata?.name}`;

  for (const o of objects) {
    if (o.kind !== "Namespace" && o.metadata?.namespace !== "herald") {
      problem(`${named(o)}: not in the namespace herald`);
    }
  }

  // Secrets: production's are never in the repository; every referenced one exists or is one of
  // the documented external Secrets.
  const secrets = all("Secret");
  if (overlay === "prod" && secrets.length) {
    problem(
      `prod renders Secrets (${secrets.map((s) => s.metadata.name).join(", ")}); production Secrets are created outside the repository`,
    );
  }

  // Policies allowing traffic to or from a workload's pods.
  const policiesFor = (w) =>
    policies.filter(
      (p) =>
        selects(p.spec?.podSelector || {}, podLabels(w)) || isEmptySelector(p.spec?.podSelector),
    );
  const containerPorts = (w) =>
    (w.spec.template.spec.containers || []).flatMap((c) => c.ports || []);
  const portMatches = (policyPort, number, w) => {
    if (policyPort === undefined) return true;
    if (typeof policyPort.port === "number") return policyPort.port === number;
    if (policyPort.port === undefined) return true;
    return containerPorts(w).some((p) => p.name === policyPort.port && p.containerPort === number);
  };
  const ingressRules = (w, number) =>
    policiesFor(w)
      .filter((p) => (p.spec.policyTypes || ["Ingress"]).includes("Ingress"))
      .flatMap((p) => p.spec.ingress || [])
      .filter((r) => !r.ports || r.ports.some((pp) => portMatches(pp, number, w)));
  const egressAllowed = (w, number, protocol = "TCP") =>
    policiesFor(w)
      .filter((p) => (p.spec.policyTypes || []).includes("Egress"))
      .flatMap((p) => p.spec.egress || [])
      .some(
        (r) =>
          !r.ports ||
          r.ports.some((pp) => (pp.protocol || "TCP") === protocol && portMatches(pp, number, w)),
      );

  const defaultDeny = policies.find(
    (p) =>
      isEmptySelector(p.spec?.podSelector) &&
      (p.spec.policyTypes || []).includes("Ingress") &&
      (p.spec.policyTypes || []).includes("Egress") &&
      !(p.spec.ingress || []).length &&
      !(p.spec.egress || []).length,
  );
  if (!defaultDeny)
    problem("no default-deny NetworkPolicy (empty podSelector, Ingress and Egress, no rules)");

  // Herald's settings as each container sees them.
  const settingsOf = (w, c) => {
    const env = {};
    for (const from of c.envFrom || []) {
      if (from.configMapRef) {
        const cm = find("ConfigMap", from.configMapRef.name);
        if (!cm) problem(`${named(w)}: ConfigMap ${from.configMapRef.name} is not rendered`);
        Object.assign(env, cm?.data || {});
      }
    }
    for (const e of c.env || []) if (e.value !== undefined) env[e.name] = e.value;
    return env;
  };
  const setting = (argv, env, flag) =>
    flagArg(argv, flag) ?? env[flags.get(flag).env] ?? flags.get(flag).default;

  for (const w of workloads) {
    const pod = w.spec.template.spec;
    const name = named(w);
    if (!selects(w.spec.selector, podLabels(w)))
      problem(`${name}: its selector does not match its pod labels`);
    if (pod.automountServiceAccountToken !== false)
      problem(`${name}: automountServiceAccountToken is not false`);
    if (pod.hostNetwork || pod.hostPID || pod.hostIPC)
      problem(`${name}: uses the host's namespaces`);
    if (pod.enableServiceLinks !== false) {
      problem(
        `${name}: enableServiceLinks is not false (service variables would mix with HERALD_* settings)`,
      );
    }

    // Mounted Secret volumes: mount path -> {secret, items}.
    const secretVolumes = new Map(
      (pod.volumes || []).filter((v) => v.secret).map((v) => [v.name, v.secret]),
    );
    for (const v of secretVolumes.values()) {
      if (!find("Secret", v.secretName) && !EXTERNAL_SECRETS.has(v.secretName)) {
        problem(
          `${name}: Secret ${v.secretName} is neither rendered nor one of the documented external Secrets`,
        );
      }
    }

    for (const c of pod.containers || []) {
      const cname = `${name} container ${c.name}`;
      for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"]) {
        if (!c[probe]) problem(`${cname}: no ${probe}`);
      }
      for (const kind of ["requests", "limits"]) {
        for (const res of ["cpu", "memory"]) {
          if (!c.resources?.[kind]?.[res]) problem(`${cname}: no resources.${kind}.${res}`);
        }
      }
      const sc = c.securityContext || {};
      const psc = pod.securityContext || {};
      if ((sc.runAsNonRoot ?? psc.runAsNonRoot) !== true)
        problem(`${cname}: runAsNonRoot is not true`);
      if ((sc.runAsUser ?? psc.runAsUser) === 0) problem(`${cname}: runs as UID 0`);
      if (sc.readOnlyRootFilesystem !== true)
        problem(`${cname}: readOnlyRootFilesystem is not true`);
      if (sc.allowPrivilegeEscalation !== false)
        problem(`${cname}: allowPrivilegeEscalation is not false`);
      if (sc.privileged) problem(`${cname}: privileged`);
      if (!(sc.capabilities?.drop || []).includes("ALL"))
        problem(`${cname}: capabilities do not drop ALL`);
      if ((sc.capabilities?.add || []).length) problem(`${cname}: adds capabilities`);
      if ((sc.seccompProfile ?? psc.seccompProfile)?.type !== "RuntimeDefault") {
        problem(`${cname}: seccompProfile is not RuntimeDefault`);
      }
      for (const e of c.env || []) {
        if (e.valueFrom?.secretKeyRef)
          problem(`${cname}: environment variable ${e.name} comes from a Secret`);
      }
      for (const e of c.envFrom || []) {
        if (e.secretRef) problem(`${cname}: environment from Secret ${e.secretRef.name}`);
      }
      for (const m of c.volumeMounts || []) {
        if (secretVolumes.has(m.name) && m.readOnly !== true)
          problem(`${cname}: Secret volume ${m.name} mounted writable`);
      }
    }

    if (!isHerald(w)) continue;

    // ---- Herald's pods ----
    const role = podLabels(w)["app.kubernetes.io/component"];
    if (w.kind === "Deployment" && !["api", "worker", "ingest"].includes(role)) {
      problem(`${name}: app.kubernetes.io/component is '${role}', not api, worker or ingest`);
    }
    const hostname = (pod.topologySpreadConstraints || []).find(
      (t) => t.topologyKey === "kubernetes.io/hostname" && selects(t.labelSelector, podLabels(w)),
    );
    if (!hostname)
      problem(`${name}: no topologySpreadConstraint across nodes selecting its own pods`);

    for (const c of pod.containers || []) {
      const cname = `${name} container ${c.name}`;
      if (!/(^|\/)herald(:|@|$)/.test(c.image || ""))
        problem(`${cname}: image '${c.image}' is not Herald's`);
      const argv = c.args || [];
      const env = settingsOf(w, c);
      if (argv[0] !== "serve") problem(`${cname}: args do not start with 'serve'`);
      if (flagArg(argv, "role") !== role)
        problem(`${cname}: --role=${flagArg(argv, "role")} but the pod's component is ${role}`);

      for (const key of Object.keys(env)) {
        if (!key.startsWith("HERALD_")) continue;
        const flag = flagOfEnv.get(key);
        if (!flag) problem(`${cname}: ${key} is not a setting of herald (herald --help)`);
        else if (SECRET_FLAGS.includes(flag))
          problem(`${cname}: the secret ${key} is in the environment`);
      }
      for (const a of argv) {
        const m = /^--([a-z0-9_-]+)=/.exec(a);
        if (m && SECRET_FLAGS.includes(m[1].replaceAll("-", "_")))
          problem(`${cname}: the secret --${m[1]} is on the command line`);
      }

      // Every file Herald is told to read is a key of a mounted Secret.
      const fileInSecret = (file, what) => {
        const found = secretFile(c, secretVolumes, file, find);
        if (found.error) problem(`${cname}: ${what} ${file}: ${found.error}`);
        return found.content;
      };
      const passwordFile = setting(argv, env, "redis_password_file");
      if (!passwordFile) problem(`${cname}: no Redis password file`);
      else fileInSecret(passwordFile, "Redis password file");
      const keyFile = setting(argv, env, "encryption_key_file");
      if (!keyFile)
        problem(
          `${cname}: no encryption key file (each process would seal with its own random key)`,
        );
      else {
        const key = fileInSecret(keyFile, "encryption key file");
        if (key !== null && key !== undefined && !/^[0-9a-fA-F]{64}\s*$/.test(key))
          problem(`${cname}: the encryption key is not 64 hex characters`);
      }
      if (role === "api") {
        const adminFile = setting(argv, env, "admin_key_file");
        if (!adminFile)
          problem(`${cname}: no admin key file (TenantService would refuse every call)`);
        else fileInSecret(adminFile, "admin key file");
      }

      // Probes on the admin port; the role's own port exposed.
      const ports = new Map((c.ports || []).map((p) => [p.name, p.containerPort]));
      const resolve = (port) => (typeof port === "number" ? port : ports.get(port));
      const adminPort = portOf(setting(argv, env, "admin_address"));
      if (![...ports.values()].includes(adminPort))
        problem(`${cname}: the admin port ${adminPort} is not a container port`);
      for (const [probe, wanted] of [
        ["livenessProbe", "/healthz"],
        ["readinessProbe", "/readyz"],
        ["startupProbe", "/healthz"],
      ]) {
        const get = c[probe]?.httpGet;
        if (!c[probe]) continue;
        if (!get || get.path !== wanted || resolve(get.port) !== adminPort) {
          problem(`${cname}: ${probe} is not GET ${wanted} on the admin port ${adminPort}`);
        }
      }
      const rolePort = { api: ["grpc_address", "grpc"], ingest: ["ingest_address", "webhooks"] }[
        role
      ];
      if (rolePort && ports.get(rolePort[1]) !== portOf(setting(argv, env, rolePort[0]))) {
        problem(`${cname}: container port ${rolePort[1]} is not the port of --${rolePort[0]}`);
      }

      // Grace period > preStop pause + drain timeout.
      const pre = c.lifecycle?.preStop;
      let pause = null;
      if (pre?.sleep?.seconds !== undefined) pause = Number(pre.sleep.seconds);
      else if (pre?.exec?.command && /(^|\/)sleep$/.test(pre.exec.command[0]))
        pause = Number(pre.exec.command[1]);
      if (!(pause > 0)) problem(`${cname}: no preStop pause before the drain`);
      let drain = NaN;
      try {
        drain = durationSeconds(setting(argv, env, "drain_timeout"));
      } catch (e) {
        problem(`${cname}: drain timeout: ${e.message}`);
      }
      const grace = pod.terminationGracePeriodSeconds ?? 30;
      if (!(grace > drain + (pause || 0))) {
        problem(
          `${cname}: terminationGracePeriodSeconds ${grace} is not above preStop ${pause} s + drain ${drain} s`,
        );
      }

      // The buffers a flood could fill stay well inside the memory limit: webhook bodies being
      // read (ingest) and media uploads held (api), each at most a quarter / half of it.
      const memory = quantityBytes(c.resources?.limits?.memory);
      const buffers = { ingest: ["webhook_max_body_bytes_in_flight", 4], api: ["media_buffer_bytes", 2] };
      if (buffers[role]) {
        const [flag, share] = buffers[role];
        const bytes = Number(setting(argv, env, flag));
        if (!(bytes > 0 && bytes <= memory / share))
          problem(`${cname}: --${flag}=${bytes} is over 1/${share} of its memory limit (${memory})`);
      }

      // Threads follow the CPU limit (0 would take every core of the node).
      const threads = Number(setting(argv, env, "io_threads"));
      const cores = Math.ceil(quantityCores(c.resources?.limits?.cpu));
      if (!(threads >= 1 && threads <= cores))
        problem(`${cname}: --io_threads=${threads} is not within 1..${cores} (its CPU limit)`);

      // Redis: a host:port list; several only for a Redis Cluster.
      const redis = String(setting(argv, env, "redis_address")).split(",");
      if (!redis.every((a) => /^[^\s:,]+:\d+$/.test(a)))
        problem(`${cname}: redis_address '${redis}' is not host:port[,host:port...]`);
      if (redis.length > 1 && String(setting(argv, env, "redis_cluster")) !== "true") {
        problem(`${cname}: several Redis addresses without HERALD_REDIS_CLUSTER=true`);
      }
      for (const a of redis) {
        if (!egressAllowed(w, portOf(a))) problem(`${cname}: no egress to Redis port ${portOf(a)}`);
      }

      // Herald itself accepts these flags and this environment (`version` parses them as `serve`).
      const childEnv = Object.fromEntries(
        Object.entries(process.env).filter(([k]) => !k.startsWith("HERALD_")),
      );
      const run = spawnSync(args.herald, ["version", ...argv.slice(1)], {
        env: { ...childEnv, ...env },
        encoding: "utf8",
        timeout: 10000,
      });
      if (run.status !== 0)
        problem(
          `${cname}: herald refuses its flags and environment: ${(run.stderr || run.error?.message || "").trim()}`,
        );
    }

    // Network: DNS for everyone, HTTPS to the upstream for api and worker.
    if (!egressAllowed(w, 53, "UDP")) problem(`${name}: no egress to DNS (UDP 53)`);
    if (["api", "worker"].includes(role) && !egressAllowed(w, 443))
      problem(`${name}: no egress to the upstream (TCP 443)`);
  }

  // A budget guards serving pods: an unready one (every pod, while Redis is down) may always be
  // evicted, or a node drain would wait for Redis.
  for (const p of all("PodDisruptionBudget")) {
    if (p.spec?.unhealthyPodEvictionPolicy !== "AlwaysAllow") {
      problem(`${named(p)}: unhealthyPodEvictionPolicy is not AlwaysAllow`);
    }
  }

  // Every Deployment: a disruption budget and a policy of its own.
  for (const d of deployments) {
    const labels = podLabels(d);
    if (
      !all("PodDisruptionBudget").some(
        (p) => !isEmptySelector(p.spec?.selector) && selects(p.spec.selector, labels),
      )
    ) {
      problem(`${named(d)}: no PodDisruptionBudget selects its pods`);
    }
    if (
      !policies.some(
        (p) => !isEmptySelector(p.spec?.podSelector) && selects(p.spec.podSelector, labels),
      )
    ) {
      problem(`${named(d)}: no NetworkPolicy of its own selects its pods`);
    }
    const hpa = all("HorizontalPodAutoscaler").find(
      (h) =>
        h.spec.scaleTargetRef?.kind === "Deployment" &&
        h.spec.scaleTargetRef?.name === d.metadata.name,
    );
    if (hpa && d.spec.replicas !== undefined) {
      problem(
        `${named(d)}: sets replicas although ${named(hpa)} scales it (each apply would reset it)`,
      );
    }
  }

  // Who may reach api, ingest and Redis.
  for (const w of workloads) {
    const role = podLabels(w)["app.kubernetes.io/component"];
    if (isHerald(w) && role === "api") {
      const grpc = containerPorts(w).find((p) => p.name === "grpc")?.containerPort;
      const rules = ingressRules(w, grpc);
      if (!rules.length)
        problem(`${named(w)}: no NetworkPolicy lets the cluster reach the gRPC port`);
      for (const r of rules) {
        if (!r.from || r.from.some((peer) => peer.ipBlock))
          problem(`${named(w)}: the gRPC port is open beyond the cluster`);
      }
    }
    if (isHerald(w) && role === "ingest") {
      const port = containerPorts(w).find((p) => p.name === "webhooks")?.containerPort;
      if (!ingressRules(w, port).some((r) => !r.from || !r.from.length))
        problem(`${named(w)}: the webhook port is not open to everyone`);
    }
    if (isRedis(w)) {
      const port = containerPorts(w)[0]?.containerPort;
      const rules = ingressRules(w, port);
      if (!rules.length) problem(`${named(w)}: Herald cannot reach Redis`);
      for (const r of rules) {
        const onlyHerald =
          r.from?.length &&
          r.from.every(
            (peer) =>
              peer.podSelector &&
              !peer.namespaceSelector &&
              !peer.ipBlock &&
              peer.podSelector.matchLabels?.["app.kubernetes.io/name"] === "herald",
          );
        if (!onlyHerald) problem(`${named(w)}: Redis is reachable from more than Herald's pods`);
      }
    }
  }

  // Services and the ServiceMonitor point at ports that exist.
  for (const s of all("Service")) {
    const backends = workloads.filter(
      (w) => s.spec.selector && selects({ matchLabels: s.spec.selector }, podLabels(w)),
    );
    if (!backends.length) problem(`${named(s)}: selects no pods`);
    for (const p of s.spec.ports || []) {
      const target = p.targetPort ?? p.port;
      for (const w of backends) {
        if (!containerPorts(w).some((cp) => cp.name === target || cp.containerPort === target)) {
          problem(
            `${named(s)}: port ${p.name} targets ${target}, which ${named(w)} does not expose`,
          );
        }
      }
    }
  }
  for (const m of all("ServiceMonitor")) {
    const services = all("Service").filter((s) =>
      selects(m.spec.selector, s.metadata.labels || {}),
    );
    if (!services.length) problem(`${named(m)}: selects no Service`);
    for (const e of m.spec.endpoints || []) {
      if (!services.every((s) => (s.spec.ports || []).some((p) => p.name === e.port)))
        problem(`${named(m)}: a selected Service has no port ${e.port}`);
      if (
        !(e.relabelings || []).some((r) => r.targetLabel === "job" && r.replacement === "herald")
      ) {
        problem(
          `${named(m)}: targets are not labelled job="herald", the job the alert rules select`,
        );
      }
    }
  }

  // Autoscalers.
  const asNames = (adapterRules.externalRules || []).map((r) => r.name?.as);
  for (const h of all("HorizontalPodAutoscaler")) {
    if (!find(h.spec.scaleTargetRef.kind, h.spec.scaleTargetRef.name))
      problem(`${named(h)}: scales ${h.spec.scaleTargetRef.name}, which is not rendered`);
    if (!(h.spec.minReplicas <= h.spec.maxReplicas))
      problem(`${named(h)}: minReplicas above maxReplicas`);
    for (const metric of h.spec.metrics || []) {
      if (metric.type === "External" && !asNames.includes(metric.external.metric.name)) {
        problem(
          `${named(h)}: external metric ${metric.external.metric.name} is not exposed by prometheus-adapter/rules.yaml`,
        );
      }
    }
  }
  if (overlay !== "dev") {
    const hpaOf = (name) =>
      all("HorizontalPodAutoscaler").find((h) => h.spec.scaleTargetRef.name === name);
    if (
      !(hpaOf("herald-api")?.spec.metrics || []).some(
        (m) => m.type === "Resource" && m.resource.name === "cpu",
      )
    ) {
      problem("herald-api has no autoscaler on CPU");
    }
    if (!(hpaOf("herald-worker")?.spec.metrics || []).some((m) => m.type === "External")) {
      problem("herald-worker has no autoscaler on the queue's backlog");
    }
  }

  // prod: the PrometheusRule is deploy/prometheus/herald-rules.yml.
  if (overlay === "prod") {
    const rule = find("PrometheusRule", "herald");
    if (!rule) problem("prod has no PrometheusRule herald");
    else if (canonical(rule.spec.groups, true) !== canonical(heraldRules.groups, true)) {
      problem(
        "PrometheusRule herald differs from deploy/prometheus/herald-rules.yml: run deploy/k8s/overlays/prod/generate-prometheusrule",
      );
    }
    if (!find("ServiceMonitor", "herald")) problem("prod has no ServiceMonitor herald");
  }

  // dev: Redis persists an AOF on its volume, never evicts, and shares its password with Herald.
  if (overlay === "dev") {
    const redis = workloads.filter(isRedis);
    if (redis.length !== 1 || redis[0].kind !== "StatefulSet")
      problem("dev has no single Redis StatefulSet");
    for (const w of redis) {
      const c = w.spec.template.spec.containers[0];
      const confMount = (c.volumeMounts || []).find((m) => m.mountPath.endsWith("redis.conf"));
      const confVolume = (w.spec.template.spec.volumes || []).find(
        (v) => v.name === confMount?.name,
      );
      const conf =
        find("ConfigMap", confVolume?.configMap?.name)?.data?.[
          confMount?.subPath || "redis.conf"
        ] || "";
      if (!/^appendonly yes$/m.test(conf)) problem(`${named(w)}: AOF is not on (appendonly yes)`);
      if (!/^maxmemory-policy noeviction$/m.test(conf))
        problem(`${named(w)}: Redis may evict Herald's keys (maxmemory-policy)`);
      const dir = /^dir (\S+)$/m.exec(conf)?.[1];
      const claims = (w.spec.volumeClaimTemplates || []).map((t) => t.metadata.name);
      if (!(c.volumeMounts || []).some((m) => m.mountPath === dir && claims.includes(m.name)))
        problem(`${named(w)}: its data directory ${dir} is not on a PersistentVolumeClaim`);
    }
    const secret = find("Secret", "herald-redis");
    const heraldPassword = secret && decodeSecret(secret, "password")?.trim();
    const own = secret && decodeSecret(secret, "auth.conf");
    const redisPassword = /^requirepass (.*)$/m.exec(own || "")?.[1];
    if (!heraldPassword || heraldPassword !== redisPassword)
      problem("dev: Herald's Redis password (password) is not Redis' own (auth.conf)");
  }
  return problems;
}

// The Secret key behind a file path in container `c`: {content} (null when the Secret is not
// rendered), or {error}.
function secretFile(c, secretVolumes, file, find) {
  const mount = (c.volumeMounts || []).find(
    (m) => secretVolumes.has(m.name) && file.startsWith(`${m.mountPath}/`),
  );
  if (!mount) return { error: "not in a mounted Secret", content: null };
  const volume = secretVolumes.get(mount.name);
  const rel = file.slice(mount.mountPath.length + 1);
  const key = volume.items ? volume.items.find((i) => i.path === rel)?.key : rel;
  const secret = find("Secret", volume.secretName);
  if (!key || (secret && decodeSecret(secret, key) === undefined)) {
    return { error: `Secret ${volume.secretName} has no such key`, content: null };
  }
  return { content: secret ? decodeSecret(secret, key) : null };
}

// The generated PrometheusRule file holds exactly the groups of herald-rules.yml.
function prometheusRuleFileProblems() {
  const file = path.join(k8sDir, "overlays/prod/prometheusrule.yaml");
  const rule = YAML.parse(fs.readFileSync(file, "utf8"));
  if (canonical(rule?.spec?.groups) !== canonical(heraldRules.groups)) {
    return [
      "overlays/prod/prometheusrule.yaml differs from deploy/prometheus/herald-rules.yml: run deploy/k8s/overlays/prod/generate-prometheusrule",
    ];
  }
  return [];
}

// The adapter rule reads a metric Herald exports, for ready jobs.
function adapterProblems() {
  const problems = [];
  for (const r of adapterRules.externalRules || []) {
    const metric = /^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(r.seriesQuery || "")?.[1];
    if (!metric || !queueExportsMetric(metric))
      problems.push(`prometheus-adapter/rules.yaml: ${metric} is not a metric of libs/queue`);
    if (!/state="ready"/.test(r.metricsQuery || ""))
      problems.push("prometheus-adapter/rules.yaml: the query does not keep to ready jobs");
  }
  if (!(adapterRules.externalRules || []).length)
    problems.push("prometheus-adapter/rules.yaml: no externalRules");
  return problems;
}

async function allProblems(overlay, objects) {
  const problems = [];
  for (const o of objects) problems.push(...(await schemaProblems(o)));
  if (overlay !== "base") problems.push(...invariantProblems(overlay, objects));
  return problems;
}

// ---- Run ------------------------------------------------------------------------------------

const started = Date.now();
const failures = [];
const rendered = new Map();
const dirs = [["base", path.join(k8sDir, "base")]];
for (const entry of fs.readdirSync(path.join(k8sDir, "overlays"), { withFileTypes: true })) {
  if (entry.isDirectory()) dirs.push([entry.name, path.join(k8sDir, "overlays", entry.name)]);
}
for (const required of ["dev", "prod"]) {
  if (!dirs.some(([name]) => name === required)) failures.push(`overlay ${required} is missing`);
}
for (const [name, dir] of dirs) {
  let objects;
  try {
    objects = render(dir);
  } catch (e) {
    failures.push(
      `${name}: kubectl kustomize failed: ${(e.stderr || e.message).toString().trim()}`,
    );
    continue;
  }
  rendered.set(name, objects);
  const problems = await allProblems(name, objects);
  failures.push(...problems.map((p) => `${name}: ${p}`));
  console.log(`${name}: ${objects.length} objects, ${problems.length} problems`);
}
failures.push(...adapterProblems(), ...prometheusRuleFileProblems());

// Each of these breaks must be reported: the checks above are not vacuous.
const container = (objects, deployment) =>
  objects.find((o) => o.kind === "Deployment" && o.metadata.name === deployment).spec.template.spec
    .containers[0];
const breaks = [
  [
    "dev",
    "no readiness probe",
    (o) => delete container(o, "herald-api").readinessProbe,
    /no readinessProbe/,
  ],
  [
    "dev",
    "a misspelt field",
    (o) => {
      const c = container(o, "herald-worker");
      c.livenesProbe = c.livenessProbe;
      delete c.livenessProbe;
    },
    /unknown field .*livenesProbe/,
  ],
  [
    "dev",
    "a wrong type",
    (o) => (o.find((x) => x.kind === "Deployment").spec.replicas = "one"),
    /schema: .*replicas/,
  ],
  [
    "dev",
    "a secret in env",
    (o) =>
      (container(o, "herald-worker").env = [
        {
          name: "HERALD_ENCRYPTION_KEY",
          valueFrom: { secretKeyRef: { name: "herald-encryption-key", key: "key" } },
        },
      ]),
    /from a Secret/,
  ],
  [
    "dev",
    "a longer preStop pause",
    (o) => (container(o, "herald-ingest").lifecycle.preStop.exec.command = ["sleep", "40"]),
    /terminationGracePeriodSeconds/,
  ],
  [
    "dev",
    "a writable root filesystem",
    (o) => (container(o, "herald-api").securityContext.readOnlyRootFilesystem = false),
    /readOnlyRootFilesystem/,
  ],
  [
    "dev",
    "no PodDisruptionBudget",
    (o) =>
      o.splice(
        o.findIndex((x) => x.kind === "PodDisruptionBudget" && x.metadata.name === "herald-ingest"),
        1,
      ),
    /no PodDisruptionBudget/,
  ],
  [
    "dev",
    "no NetworkPolicy of its own",
    (o) =>
      o.splice(
        o.findIndex((x) => x.kind === "NetworkPolicy" && x.metadata.name === "herald-worker"),
        1,
      ),
    /no NetworkPolicy of its own|no egress to the upstream/,
  ],
  [
    "dev",
    "Redis open to all",
    (o) =>
      (o.find(
        (x) => x.kind === "NetworkPolicy" && x.metadata.name === "herald-redis",
      ).spec.ingress[0].from = [{ namespaceSelector: {} }]),
    /more than Herald/,
  ],
  [
    "dev",
    "a misspelt setting",
    (o) =>
      (o.find(
        (x) => x.kind === "ConfigMap" && x.metadata.name.startsWith("herald-config"),
      ).data.HERALD_DRAIN_TIMOUT = "10s"),
    /HERALD_DRAIN_TIMOUT is not a setting/,
  ],
  [
    "dev",
    "an invalid setting",
    (o) =>
      (o.find(
        (x) => x.kind === "ConfigMap" && x.metadata.name.startsWith("herald-config"),
      ).data.HERALD_QUEUE_SHARDS = "many"),
    /herald refuses/,
  ],
  [
    "dev",
    "a missing secret key",
    (o) => (container(o, "herald-api").env[0].value = "/var/run/secrets/herald/admin-key/other"),
    /has no such key/,
  ],
  [
    "prod",
    "rules out of sync",
    (o) => (o.find((x) => x.kind === "PrometheusRule").spec.groups[0].rules[0].expr = "vector(1)"),
    /herald-rules\.yml/,
  ],
  [
    "prod",
    "replicas beside an autoscaler",
    (o) =>
      (o.find((x) => x.kind === "Deployment" && x.metadata.name === "herald-worker").spec.replicas =
        4),
    /sets replicas although/,
  ],
];
for (const [overlay, what, breakIt, expected] of breaks) {
  if (!rendered.has(overlay)) continue;
  const objects = structuredClone(rendered.get(overlay));
  breakIt(objects);
  const problems = await allProblems(overlay, objects);
  if (!problems.some((p) => expected.test(p))) {
    failures.push(
      `${overlay} with ${what}: not reported (got: ${problems.join("; ") || "nothing"})`,
    );
  }
}
console.log(`${breaks.length} deliberate breaks checked`);

if (failures.length) {
  console.error(`FAIL: ${failures.length} problems:\n  ${failures.join("\n  ")}`);
  process.exit(1);
}
console.log(
  `deploy/k8s: every overlay renders, validates and keeps its promises (${Date.now() - started} ms)`,
);
