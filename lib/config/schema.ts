// Every configuration key of the worker: its default, environment variable and meaning.
// Layering (lowest to highest): defaults < config file (--config, JSON or YAML) <
// environment < command-line flags. `worker config --help` prints this table.
import os from 'node:os';
import path from 'node:path';
import { sidecarsFormat, type SidecarSetting } from '../features/sidecar-setting.ts';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const defaultStateDir = isRoot ? '/var/lib/docker-worker' : path.join(os.homedir(), '.local/state/docker-worker');

export function registriesFormat(value: unknown): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('must be an object of "<registry host or host/prefix>": {"username", "password"}');
  for (const [k, v] of Object.entries(value)) {
    const c = v as Record<string, unknown>;
    if (!c || typeof c.username !== 'string' || typeof c.password !== 'string') throw new Error(`entry "${k}" must be {"username": "...", "password": "..."}`);
  }
}

/** A whole number of at least 1 (convict's 'nat' takes 0, which makes no sense for these keys). */
export function positiveInteger(value: unknown): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw new Error('must be a whole number, at least 1');
}

const device = (name: string, doc: string, devicePath: string) => ({
  enabled: { doc: `Allow tasks (with the scope docker-worker:capability:device:${name}) to use ${doc}.`, format: Boolean, default: false, env: `WORKER_DEVICE_${name.toUpperCase()}` },
  path: { doc: `Host path of the ${name} device.`, format: String, default: devicePath },
});

export const configSchema = {
  rootUrl: { doc: 'Taskcluster root URL. Empty: start the embedded deployment in this process.', format: String, default: '', env: 'TASKCLUSTER_ROOT_URL' },
  credentials: {
    clientId: { doc: 'Taskcluster client id (ignored with the embedded deployment).', format: String, default: '', env: 'TASKCLUSTER_CLIENT_ID' },
    accessToken: { doc: 'Taskcluster access token.', format: String, default: '', env: 'TASKCLUSTER_ACCESS_TOKEN', sensitive: true },
    certificate: { doc: 'Certificate of temporary credentials, if any.', format: String, default: '', env: 'TASKCLUSTER_CERTIFICATE', sensitive: true },
  },
  provisionerId: { doc: 'Provisioner id: the first half of the task queue id.', format: String, default: 'local', env: 'WORKER_PROVISIONER_ID' },
  workerType: { doc: 'Worker type: the second half of the task queue id.', format: String, default: 'docker-worker', env: 'WORKER_TYPE' },
  workerGroup: { doc: 'Worker group.', format: String, default: 'local', env: 'WORKER_GROUP' },
  workerId: { doc: 'Worker id (default: the host name).', format: String, default: os.hostname().slice(0, 38), env: 'WORKER_ID' },
  capacity: { doc: 'How many tasks run at once.', format: positiveInteger, default: 1, env: 'WORKER_CAPACITY' },
  stateDir: { doc: 'Where the worker keeps its state (embedded deployment, caches index, logs).', format: String, default: defaultStateDir, env: 'WORKER_STATE_DIR' },
  logLevel: { doc: 'Worker log level (error, warn, info, debug).', format: ['error', 'warn', 'info', 'debug'], default: 'info', env: 'WORKER_LOG_LEVEL' },
  embedded: {
    host: { doc: 'Address the embedded deployment listens on.', format: String, default: '127.0.0.1', env: 'WORKER_EMBEDDED_HOST' },
    port: { doc: 'Port of the embedded deployment (0: pick a free one).', format: 'port', default: 0, env: 'WORKER_EMBEDDED_PORT' },
    claimTimeoutSeconds: { doc: 'How long a claim lasts before it must be reclaimed.', format: positiveInteger, default: 1200 },
  },
  docker: {
    socketPath: { doc: 'Docker Engine API socket.', format: String, default: '/var/run/docker.sock', env: 'DOCKER_SOCKET' },
    callTimeoutSeconds: { doc: 'How long the engine may leave a call unanswered before a task\'s container starts (create, image inspect, attach, start, network and volume calls): past it the engine counts as hung and the run is resolved exception/worker-shutdown, for the queue to run the task again.', format: positiveInteger, default: 60, env: 'WORKER_DOCKER_CALL_TIMEOUT_SECONDS' },
    progressTimeoutSeconds: { doc: 'How long an image pull or image load may go without progress (a pull event, archive bytes taken, a load line) before the engine counts as hung, as for callTimeoutSeconds. No bound on their total time.', format: positiveInteger, default: 300, env: 'WORKER_DOCKER_PROGRESS_TIMEOUT_SECONDS' },
  },
  registries: { doc: 'Registry credentials by registry host or host/prefix (longest prefix wins); used only for tasks with docker-worker:image:<name>.', format: registriesFormat, env: 'WORKER_REGISTRIES', default: {} as Record<string, { username: string; password: string }> },
  image: {
    pullRetries: { doc: 'How often an image pull is retried on network errors.', format: 'nat', default: 5 },
    pullBaseDelayMs: { doc: 'First retry delay of an image pull (doubles each time).', format: 'nat', default: 1000 },
    maxExpandedBytes: { doc: 'The most an image artifact (task-image, indexed-image) may expand to once decompressed; a load also stops at the Docker root\'s free space above diskspaceThreshold. Default 50 GB.', format: 'nat', default: 50_000_000_000 },
  },
  diskspaceThreshold: { doc: 'Free disk space (bytes) kept per free slot on the Docker root and caches volumes: below threshold x free slots the worker stops claiming and evicts unused images and caches. Default 2 GB, which a fresh host has (the old 30 GB default never claimed on small disks).', format: 'nat', default: 2_000_000_000, env: 'WORKER_DISKSPACE_THRESHOLD' },
  imageExpirationSeconds: { doc: 'Images the worker brought are removed after this long unused (0: only when disk space runs low).', format: 'nat', default: 86_400, env: 'WORKER_IMAGE_EXPIRATION_SECONDS' },
  cache: {
    purgePollSeconds: { doc: 'How often (at most) the purge-cache service is asked for purge requests of this worker pool.', format: 'nat', default: 20 },
  },
  allowPrivileged: { doc: 'Allow privileged containers (tasks also need docker-worker:capability:privileged).', format: Boolean, default: false, env: 'WORKER_ALLOW_PRIVILEGED' },
  allowDisableSeccomp: { doc: 'Allow containers without a seccomp profile, capabilities.disableSeccomp (tasks also need docker-worker:capability:disableSeccomp).', format: Boolean, default: false, env: 'WORKER_ALLOW_DISABLE_SECCOMP' },
  devices: {
    kvm: device('kvm', 'the KVM device', '/dev/kvm'),
    hostSharedMemory: device('hostSharedMemory', "the host's /dev/shm", '/dev/shm'),
    loopbackVideo: device('loopbackVideo', 'a v4l2loopback video device', '/dev/video0'),
    loopbackAudio: device('loopbackAudio', 'snd-aloop audio devices', '/dev/snd'),
  },
  shmSizeBytes: { doc: 'Size of /dev/shm in task containers.', format: 'nat', default: 1_800_000_000 },
  liveLog: {
    host: { doc: 'Address the live log server listens on.', format: String, default: '127.0.0.1', env: 'WORKER_LIVELOG_HOST' },
    port: { doc: 'Port of the live log server (0: pick a free one).', format: 'port', default: 0, env: 'WORKER_LIVELOG_PORT' },
    publicUrl: { doc: 'Base URL under which others reach the live log server (default: http://<host>:<port>; listening on every address, the host\'s publicIp, else publicHostname, else 127.0.0.1).', format: String, default: '', env: 'WORKER_LIVELOG_PUBLIC_URL' },
    graceSeconds: { doc: 'How long a finished task\'s live log URL keeps serving the complete log (then readers follow live.log to the uploaded copy).', format: 'nat', default: 300 },
    maxEndedLogs: { doc: 'How many finished tasks\' logs the live log server keeps serving at most (the oldest goes first); each costs only its file.', format: 'nat', default: 64 },
  },
  interactive: {
    host: { doc: 'Address the interactive shell servers listen on (one per interactive task, on a free port).', format: String, default: '127.0.0.1', env: 'WORKER_INTERACTIVE_HOST' },
    publicHost: { doc: 'Host name in the shell URLs handed to people (default: the bound address; listening on every address, the host\'s publicIp, else publicHostname, else 127.0.0.1).', format: String, default: '', env: 'WORKER_INTERACTIVE_PUBLIC_HOST' },
    tlsCertificatePath: { doc: 'PEM certificate (chain) for the shell servers: set with tlsKeyPath to serve https and wss.', format: String, default: '', env: 'WORKER_INTERACTIVE_TLS_CERT' },
    tlsKeyPath: { doc: 'PEM private key of tlsCertificatePath.', format: String, default: '', env: 'WORKER_INTERACTIVE_TLS_KEY' },
    minTimeSeconds: { doc: 'An interactive task\'s container stays open at least this long from its start, even when its command ended sooner.', format: 'nat', default: 180 },
    expirySeconds: { doc: 'An interactive task\'s container stays open this long after its last shell session ended.', format: 'nat', default: 900 },
  },
  artifacts: {
    storageType: { doc: 'How artifacts are stored: object (the object service) or s3 (legacy putUrl).', format: ['object', 's3'], default: 'object' },
    uploadRetries: { doc: 'How often an artifact upload is retried on network errors and 5xx.', format: 'nat', default: 5 },
    uploadParallelism: { doc: 'How many of a task\'s artifact uploads (files, also the files of a directory artifact) run at once.', format: positiveInteger, default: 8, env: 'WORKER_UPLOAD_PARALLELISM' },
  },
  task: {
    cancelPollSeconds: { doc: 'How often a running task\'s status is checked for cancellation (0: only at reclaim).', format: 'nat', default: 5 },
    reclaimMarginSeconds: { doc: 'Reclaim this long before takenUntil (at the latest half way).', format: 'nat', default: 60 },
    defaultLogName: { doc: 'Artifact name of the task log when payload.log does not name it.', format: String, default: 'public/logs/live.log' },
  },
  shutdown: {
    afterIdleSeconds: { doc: 'Exit after this long without a task (0: never).', format: 'nat', default: 0, env: 'WORKER_SHUTDOWN_AFTER_IDLE' },
    powerOffCommand: { doc: 'With --host aws, the command (split on spaces, no shell) run once the worker stopped for being idle.', format: String, default: '/sbin/shutdown -h now', env: 'WORKER_POWER_OFF_COMMAND' },
  },
  keys: {
    openpgpPrivateKeyPath: { doc: 'Armored OpenPGP private key of the worker (no passphrase): tasks encrypt encryptedEnv values to its public key; it also signs the legacy chainOfTrust.json.asc. Empty: <stateDir>/keys/openpgp-private.asc. `worker keys` creates it once and prints the public key.', format: String, default: '', env: 'WORKER_OPENPGP_PRIVATE_KEY_PATH' },
    ed25519PrivateKeyPath: { doc: 'ed25519 chain-of-trust signing key of the worker (base64 of the 32-byte seed, as generic-worker writes it). Empty: <stateDir>/keys/ed25519-private.key, created like the OpenPGP key.', format: String, default: '', env: 'WORKER_ED25519_PRIVATE_KEY_PATH' },
  },
  chainOfTrust: {
    openpgpSignature: { doc: 'Also publish public/chainOfTrust.json.asc, the certificate cleartext-signed with the OpenPGP key (docker-worker\'s form until 2019), beside the ed25519-signed public/chain-of-trust.json.', format: Boolean, default: false, env: 'WORKER_CHAIN_OF_TRUST_OPENPGP' },
  },
  sidecars: { doc: 'Sidecar containers by feature name: {"<name>": {"image", "command", "env", "capabilities", "devices", "alias", "readiness": {"port", "path", "status", "tries", "intervalMs"}, "requiredScope"}}. A task turns one on with payload.features.<name> and the scope docker-worker:feature:<name>. balrogVPNProxy and balrogStageVPNProxy need only an image (alias balrog, NET_ADMIN, /dev/net/tun, port 80 answering 401). Images must be on the host.', format: sidecarsFormat, env: 'WORKER_SIDECARS', default: {} as Record<string, Partial<SidecarSetting>> },
  relengAPI: {
    url: { doc: 'RelengAPI base URL for relengAPIProxy (empty: the feature is refused).', format: String, default: '', env: 'WORKER_RELENGAPI_URL' },
    token: { doc: 'The worker\'s RelengAPI token; relengAPIProxy mints a temporary token per task from it.', format: String, default: '', env: 'WORKER_RELENGAPI_TOKEN', sensitive: true },
  },
  host: {
    instanceType: { doc: 'Reported as TASKCLUSTER_INSTANCE_TYPE and in the log header.', format: String, default: 'local', env: 'WORKER_INSTANCE_TYPE' },
    publicIp: { doc: 'Reported as TASKCLUSTER_PUBLIC_IP and in the log header.', format: String, default: '127.0.0.1', env: 'WORKER_PUBLIC_IP' },
    privateIp: { doc: 'Private address of the host, in chain-of-trust certificates (environment.privateIpAddress). Empty: the first non-loopback IPv4 address of the host, else publicIp.', format: String, default: '', env: 'WORKER_PRIVATE_IP' },
    instanceId: { doc: 'Cloud instance id of the host, in chain-of-trust certificates when set.', format: String, default: '', env: 'WORKER_INSTANCE_ID' },
    region: { doc: 'Region of the host, if any (chain-of-trust certificates list it when set).', format: String, default: '' },
    publicHostname: { doc: 'Public host name of the host, if any (worker-runner, aws).', format: String, default: '' },
    metadataUrl: { doc: 'Base URL of the EC2 instance metadata service (--host aws). Tests point it at a fake on loopback.', format: String, default: 'http://169.254.169.254', env: 'WORKER_AWS_METADATA_URL' },
    spotPollSeconds: { doc: 'How often (--host aws) the spot termination notice is checked.', format: positiveInteger, default: 5 },
    workerLocation: { doc: 'JSON reported as TASKCLUSTER_WORKER_LOCATION, e.g. {"cloud":"aws","region":"us-east-1"} (empty: not set).', format: String, default: '', env: 'WORKER_LOCATION' },
  },
};
