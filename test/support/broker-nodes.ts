/**
 * Extra, throw-away RabbitMQ nodes for tests that need a cluster or a TLS listener.
 *
 *   const cluster = await startCluster({ size: 3 }); // warren-c1..3@localhost on 127.0.0.1:5701-5703
 *   ...
 *   await cluster.stop();
 *
 *   const tls = await startTlsNode(); // warren-tls@localhost: plain 5710, TLS 5711
 *   ...
 *   await tls.stop();
 *
 * Call `stopAllExtraNodes()` once at the start of a run (before any test file starts nodes) to clear what
 * a crashed earlier run left behind. Tests that use these nodes must not run concurrently with each other:
 * names and ports are fixed so that leftovers can be found and killed.
 *
 * How the nodes are isolated from the default node (rabbit@localhost on 5672, which this module never
 * touches):
 * - Each node has its own RABBITMQ_NODENAME, NODE_PORT, DIST_PORT, MNESIA_BASE, LOG_BASE, PID_FILE,
 *   CONFIG_FILE, ADVANCED_CONFIG_FILE, CONFIG_FILES (conf.d) and ENABLED_PLUGINS_FILE, all under
 *   /tmp/warren-nodes/<name>/ (override with WARREN_NODES_BASE), owned by the rabbitmq user.
 * - RABBITMQ_CONF_ENV_FILE points at an empty per-node file, so nothing from the default node's
 *   /etc/rabbitmq/rabbitmq-env.conf (NODENAME=rabbit@localhost, ...) applies; the environment of the
 *   calling process is not passed on either, only the variables set here.
 * - Each node has its own enabled_plugins file, so whatever the default node enables (today: nothing;
 *   management or prometheus would bind 15672/15692) never reaches an extra node. Extra nodes enable no
 *   plugin with a listener.
 * - Everything listens on 127.0.0.1 only, including Erlang distribution (inet_dist_use_interface) and
 *   epmd (ERL_EPMD_ADDRESS); rabbitmqctl gets the same flags so its own distribution listener is loopback.
 * - Nodes and rabbitmqctl run as the rabbitmq user (spawned with its uid/gid when we are root) so that
 *   they share /var/lib/rabbitmq/.erlang.cookie with the default node's CLI setup.
 *
 * Speed (2 cores; the suite's budget is tight). One node boots in ~4 s on an idle machine, almost all of
 * it CPU spent by the Erlang VM loading RabbitMQ's modules, so the levers are less work per boot and fewer
 * boots:
 * - Each node gets a plugins directory of symlinks to only the apps it needs (~21 of ~70), which cuts
 *   ~1.5 s of CPU per boot (shorter code path, fewer Cuttlefish schemas to parse).
 * - Cluster members 2..N join node 1 while they boot, through classic-config peer discovery, instead of
 *   booting standalone and then doing rabbitmqctl stop_app / join_cluster / start_app (~7 s more). They
 *   start in parallel once node 1 is up (see startCluster). rabbitmqctl joins stay as the fallback.
 * - Readiness comes from the node's own log ("Server startup complete") plus a TCP connect, where each
 *   rabbitmqctl call costs ~0.6 s of CLI boot. The TLS node gets its users from a definitions file loaded
 *   at boot instead of rabbitmqctl calls.
 * - Teardown SIGKILLs: the data is deleted anyway. stopNode() is graceful unless asked to kill.
 * Measured on this machine while other jobs loaded it: startCluster(3) 16-23 s, startNode 7-10 s,
 * startTlsNode 4-10 s, stop() < 0.3 s. WARREN_NODES_DEBUG=1 prints phase timings to stderr.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { chown, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Where every extra node keeps its config, data, logs and pid file: one directory per node. */
export const EXTRA_NODES_BASE = process.env.WARREN_NODES_BASE ?? '/tmp/warren-nodes';
/** Every extra node's name starts with this; stopAllExtraNodes() relies on it to find leftovers. */
export const EXTRA_NODE_PREFIX = 'warren-';

const RABBITMQ_BIN = '/usr/lib/rabbitmq/bin';
const HOST = '127.0.0.1';
const LOOPBACK_DIST_FLAGS = '-kernel inet_dist_use_interface {127,0,0,1}';
const DEFAULT_START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;
const CTL_TIMEOUT_MS = 60_000;
const LOG_TAIL_LINES = 40;
const DEBUG = Boolean(process.env.WARREN_NODES_DEBUG);
const debugStart = Date.now();

/** Phase timings on stderr with WARREN_NODES_DEBUG=1, to see where a slow CI run spends its time. */
function debug(message: string): void {
  if (DEBUG) process.stderr.write(`[broker-nodes +${Date.now() - debugStart} ms] ${message}\n`);
}

export interface ClusterNode {
  /** Full Erlang node name, e.g. `warren-c1@localhost`. */
  name: string;
  port: number;
  /** `amqp://guest:guest@127.0.0.1:PORT` */
  url: string;
}

export interface StopNodeOptions {
  /** SIGKILL the node (a crash: clients see their socket reset) instead of a graceful stop (clients get
   * connection.close 320 CONNECTION_FORCED first). */
  kill?: boolean;
}

export interface Cluster {
  /** One AMQP URL per node, in node order. */
  urls: string[];
  nodes: ClusterNode[];
  /** Stops node `i` (0-based). Its data is kept so startNode(i) brings it back into the cluster. */
  stopNode(i: number, options?: StopNodeOptions): Promise<void>;
  /** Starts node `i` (0-based) again after stopNode(i); resolves once it runs as part of the cluster.
   * With several nodes down, start the one stopped last first: a node waits (Mnesia) for a peer that
   * was still running when it stopped. */
  startNode(i: number): Promise<void>;
  /** Runs `rabbitmqctl -n <node i> ...args` and resolves with its stdout. */
  ctl(i: number, ...args: string[]): Promise<string>;
  /** Kills every node of the cluster and deletes their directories. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartClusterOptions {
  /** Number of nodes, 1..9. Default 3. */
  size?: number;
  /** AMQP port of node 1; node i listens on basePort + i - 1, distribution on that + 20000. Default 5701. */
  basePort?: number;
  /** Node names are `${prefix}${i}@localhost`; must start with `warren-`. Default `warren-c`. */
  prefix?: string;
  /** Bound for each node's boot. Default 60 s. */
  startTimeoutMs?: number;
}

export interface TlsNode {
  /** Plain AMQP port (guest/guest works here). */
  port: number;
  tlsPort: number;
  /** `amqp://guest:guest@127.0.0.1:PORT` */
  url: string;
  /** `amqps://guest:guest@localhost:TLSPORT`; the server certificate is valid for `localhost` and 127.0.0.1. */
  tlsUrl: string;
  /** PEM of the CA that signed the server and client certificates. */
  ca: Buffer;
  /** PEM client certificate, CN=warren-client, signed by `ca`: logs in as user `warren-client` with EXTERNAL. */
  cert: Buffer;
  /** PEM private key of `cert`. */
  key: Buffer;
  /** PEM of a second CA that signed nothing the server trusts or presents: verifying the server with it fails. */
  otherCa: Buffer;
  /** PEM client certificate, CN=warren-client, signed by `otherCa`: the server rejects it in the TLS handshake. */
  otherCert: Buffer;
  /** PEM private key of `otherCert`. */
  otherKey: Buffer;
  /** Directory holding the PEM files above (ca.pem, client.pem, client.key, other-ca.pem, ...). Deleted by stop(). */
  dir: string;
  /** Kills the node and deletes its directory. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartTlsNodeOptions {
  /** Plain AMQP port; the TLS port is port + 1. Default 5710. */
  port?: number;
  /** Node name, must start with `warren-`. Default `warren-tls`. */
  name?: string;
  startTimeoutMs?: number;
}

// ---------------------------------------------------------------------------------------------------
// Running things as the rabbitmq user

interface Account {
  uid: number;
  gid: number;
  home: string;
}

let account: Account | undefined;

function rabbitmqAccount(): Account {
  if (account) return account;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('rabbitmq:'));
  const fields = line?.split(':');
  if (!fields || fields.length < 6) {
    throw new Error('no rabbitmq user in /etc/passwd: install RabbitMQ with `apt-get install -y rabbitmq-server`');
  }
  account = { uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5] ?? '/var/lib/rabbitmq' };
  return account;
}

/** uid/gid options for spawn: nodes must run as rabbitmq to share its Erlang cookie and own their files. */
function asRabbitmq(): { uid?: number; gid?: number } {
  const acc = rabbitmqAccount();
  const me = process.getuid?.();
  if (me === acc.uid) return {};
  if (me === 0) return { uid: acc.uid, gid: acc.gid };
  throw new Error(`extra RabbitMQ nodes run as the rabbitmq user: run the tests as root or as rabbitmq (uid is ${me})`);
}

function baseEnv(): NodeJS.ProcessEnv {
  // A clean environment: RABBITMQ_* or ERL_* variables inherited from the caller would silently change
  // which node a command talks to.
  return {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: rabbitmqAccount().home,
    // The Elixir CLI warns (and mangles non-ASCII) under a latin1 locale.
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    ERL_EPMD_ADDRESS: HOST,
    ERL_FLAGS: LOOPBACK_DIST_FLAGS,
  };
}

interface RunResult {
  stdout: string;
  stderr: string;
}

function run(
  file: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; asRabbit?: boolean; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        env: options.env ?? process.env,
        cwd: options.cwd,
        timeout: options.timeoutMs ?? CTL_TIMEOUT_MS,
        killSignal: 'SIGKILL',
        maxBuffer: 16 * 1024 * 1024,
        ...(options.asRabbit ? asRabbitmq() : {}),
      },
      (error, stdout, stderr) => {
        if (error) {
          const how = error.killed ? `killed after ${options.timeoutMs ?? CTL_TIMEOUT_MS} ms` : `exit ${error.code}`;
          const output = `${stderr}\n${stdout}`.trim();
          reject(new Error(`${file} ${args.join(' ')} failed (${how})${output ? `:\n${output}` : ''}`));
        } else {
          resolve({ stdout, stderr });
        }
      },
    );
  });
}

async function chownTree(path: string): Promise<void> {
  const { uid, gid } = rabbitmqAccount();
  if (process.getuid?.() !== 0) return;
  await chown(path, uid, gid);
  if ((await stat(path)).isDirectory()) {
    for (const entry of readdirSync(path)) await chownTree(join(path, entry));
  }
}

// ---------------------------------------------------------------------------------------------------
// Processes

/** Alive and not a zombie: a node killed after its parent shell died is reparented to a PID 1 that may never reap it. */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state letter follows the parenthesised command name, which may itself contain ')'.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** The RABBITMQ_NODENAME a beam.smp process was started with, or undefined for any other process. */
function nodenameOf(pid: number): string | undefined {
  try {
    if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'beam.smp') return undefined;
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    const entry = env.find((e) => e.startsWith('RABBITMQ_NODENAME='));
    return entry?.slice('RABBITMQ_NODENAME='.length);
  } catch {
    return undefined;
  }
}

/** Running beam.smp processes whose RABBITMQ_NODENAME matches; the process environment cannot be
 * stale the way a pid file can, so this never picks a reused pid or the default node. */
function findBeams(match: (nodename: string) => boolean): Map<number, string> {
  const found = new Map<number, string>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const name = nodenameOf(pid);
    if (name !== undefined && match(name) && isAlive(pid)) found.set(pid, name);
  }
  return found;
}

async function waitForExit(pids: Iterable<number>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  const list = [...pids];
  while (list.some(isAlive)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** Waits for `promise` at most `ms`. The timer stays referenced on purpose: the child processes are
 * unref'd, so without it an await on their exit could let the event loop drain and the process quit. */
async function boundedWait(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

function portAnswers(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function tail(path: string, from = 0, lines = LOG_TAIL_LINES): string {
  try {
    const text = readFileSync(path, 'utf8').slice(from);
    return text.split('\n').slice(-lines).join('\n').trimEnd() || '(empty)';
  } catch {
    return '(missing)';
  }
}

// ---------------------------------------------------------------------------------------------------
// A minimal plugins directory

/**
 * The apps a node needs: `rabbit` and `plugins`, with everything they depend on, mapped to their
 * directories in the installed plugins directory. Booting with a plugins directory that holds only these
 * (as symlinks) instead of all ~70 apps saves ~1.5 s of wall and CPU time per boot: fewer code-path entries
 * to search and fewer Cuttlefish schemas to parse. Returns undefined when the installation does not look
 * as expected, and the node then uses the full directory.
 */
function neededApps(plugins: string[]): Map<string, string> | undefined {
  let installed: string;
  try {
    installed = join(dirname(dirname(realpathSync(join(RABBITMQ_BIN, 'rabbitmq-server')))), 'plugins');
  } catch {
    return undefined;
  }
  const dirs = new Map<string, string>();
  const deps = new Map<string, string[]>();
  for (const entry of readdirSync(installed)) {
    const app = /^(.+?)-\d[^/]*$/.exec(entry)?.[1];
    if (app === undefined) continue;
    let spec: string;
    try {
      spec = readFileSync(join(installed, entry, 'ebin', `${app}.app`), 'utf8');
    } catch {
      // An .ez archive or something else we cannot read cheaply: give up on the shortcut.
      return undefined;
    }
    dirs.set(app, join(installed, entry));
    const listed = [...spec.matchAll(/\{(?:included_)?applications,\s*\[([^\]]*)\]/g)].flatMap((m) =>
      (m[1] ?? '').split(',').map((a) => a.trim().replace(/^'|'$/g, '')),
    );
    deps.set(
      app,
      listed.filter((a) => a !== ''),
    );
  }
  const needed = new Map<string, string>();
  const queue = ['rabbit', ...plugins];
  for (let app = queue.pop(); app !== undefined; app = queue.pop()) {
    const dir = dirs.get(app);
    // Apps not in the plugins directory (kernel, ssl, ...) come with Erlang itself.
    if (dir === undefined || needed.has(app)) continue;
    needed.set(app, dir);
    queue.push(...(deps.get(app) ?? []));
  }
  return needed.has('rabbit') && plugins.every((p) => needed.has(p)) ? needed : undefined;
}

// ---------------------------------------------------------------------------------------------------
// One node

interface NodeSpec {
  /** Short name, e.g. `warren-c1`. */
  name: string;
  port: number;
  /** rabbitmq.conf body (sysctl format), on top of the listener set from RABBITMQ_NODE_PORT. */
  config: string;
  plugins: string[];
}

/** Nodes started by this process and not yet destroyed: killed synchronously if the process exits. */
const live = new Set<ExtraNode>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A test that throws before calling stop() must not leave nodes holding ports for the next file;
  // 'exit' handlers cannot await, so this only kills, and the next start deletes the directories.
  process.on('exit', () => {
    for (const node of live) node.killSync();
  });
}

class ExtraNode {
  readonly nodename: string;
  readonly dir: string;
  readonly port: number;
  readonly distPort: number;
  readonly url: string;
  private child: ChildProcess | undefined;
  private childExit: Promise<void> = Promise.resolve();
  private exitInfo: string | undefined;
  private pluginsDir: string | undefined;

  constructor(private readonly spec: NodeSpec) {
    if (!spec.name.startsWith(EXTRA_NODE_PREFIX)) {
      throw new Error(`extra node names must start with '${EXTRA_NODE_PREFIX}' (got '${spec.name}')`);
    }
    this.nodename = `${spec.name}@localhost`;
    this.dir = join(EXTRA_NODES_BASE, spec.name);
    this.port = spec.port;
    this.distPort = spec.port + 20000;
    this.url = `amqp://guest:guest@${HOST}:${spec.port}`;
  }

  get logFile(): string {
    return join(this.dir, 'log', `${this.nodename}.log`);
  }

  get consoleFile(): string {
    return join(this.dir, 'console.log');
  }

  private get envConfFile(): string {
    return join(this.dir, 'rabbitmq-env.conf');
  }

  /** Fresh directory and config files; kills a leftover node of the same name first. */
  async prepare(extraFiles: Record<string, string | Buffer> = {}): Promise<void> {
    if (!existsSync(join(RABBITMQ_BIN, 'rabbitmq-server'))) {
      throw new Error(
        `${RABBITMQ_BIN}/rabbitmq-server is missing: install RabbitMQ (apt-get install -y rabbitmq-server)`,
      );
    }
    const leftovers = findBeams((n) => n === this.nodename);
    for (const pid of leftovers.keys()) signal(pid, 'SIGKILL');
    await waitForExit(leftovers.keys(), STOP_TIMEOUT_MS);
    for (const port of [this.port, this.distPort]) {
      if (await portAnswers(port)) {
        throw new Error(
          `port ${HOST}:${port} is already in use, so ${this.nodename} cannot start. ` +
            `A leftover extra node? Run stopAllExtraNodes(). Otherwise see \`ss -ltnp | grep ${port}\`.`,
        );
      }
    }
    await rm(this.dir, { recursive: true, force: true });
    await mkdir(join(this.dir, 'conf.d'), { recursive: true });
    const plugins = this.spec.plugins.join(',');
    await writeFile(join(this.dir, 'enabled_plugins'), `[${plugins}].\n`);
    const apps = neededApps(this.spec.plugins);
    this.pluginsDir = undefined;
    if (apps) {
      this.pluginsDir = join(this.dir, 'plugins');
      await mkdir(this.pluginsDir);
      for (const dir of apps.values()) await symlink(dir, join(this.pluginsDir, basename(dir)));
    }
    await writeFile(
      this.envConfFile,
      "# Intentionally empty: keeps /etc/rabbitmq/rabbitmq-env.conf (the default node's) from applying.\n",
    );
    await writeFile(join(this.dir, 'advanced.config'), '[].\n');
    await writeFile(
      join(this.dir, 'rabbitmq.conf'),
      `# Generated by test/support/broker-nodes.ts for ${this.nodename}; the AMQP listener comes from the environment.\n` +
        'log.file.level = info\n' +
        'log.console = false\n' +
        this.spec.config,
    );
    for (const [name, content] of Object.entries(extraFiles)) await writeFile(join(this.dir, name), content);
    await chownTree(this.dir);
  }

  private nodeEnv(): NodeJS.ProcessEnv {
    const d = this.dir;
    return {
      ...baseEnv(),
      RABBITMQ_NODENAME: this.nodename,
      RABBITMQ_NODE_IP_ADDRESS: HOST,
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.distPort),
      RABBITMQ_CONF_ENV_FILE: this.envConfFile,
      RABBITMQ_CONFIG_FILE: join(d, 'rabbitmq.conf'),
      RABBITMQ_CONFIG_FILES: join(d, 'conf.d'),
      RABBITMQ_ADVANCED_CONFIG_FILE: join(d, 'advanced.config'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(d, 'enabled_plugins'),
      RABBITMQ_MNESIA_BASE: join(d, 'mnesia'),
      RABBITMQ_LOG_BASE: join(d, 'log'),
      RABBITMQ_PID_FILE: join(d, 'pid'),
      RABBITMQ_MOTD_FILE: join(d, 'motd'),
      ...(this.pluginsDir ? { RABBITMQ_PLUGINS_DIR: this.pluginsDir } : {}),
    };
  }

  /** Boots the node (fresh or after stop) and resolves once it accepts AMQP connections. */
  async start(timeoutMs = DEFAULT_START_TIMEOUT_MS): Promise<void> {
    if (this.child) throw new Error(`${this.nodename} is already running`);
    installExitHook();
    const logOffset = existsSync(this.logFile) ? (await stat(this.logFile)).size : 0;
    const consoleOffset = existsSync(this.consoleFile) ? (await stat(this.consoleFile)).size : 0;
    const out = openSync(this.consoleFile, 'a');
    let child: ChildProcess;
    try {
      // Not detached: a Ctrl-C in the terminal reaches the rabbitmq-server script, which stops its node.
      child = spawn(join(RABBITMQ_BIN, 'rabbitmq-server'), [], {
        cwd: this.dir,
        env: this.nodeEnv(),
        stdio: ['ignore', out, out],
        ...asRabbitmq(),
      });
    } finally {
      closeSync(out);
    }
    child.unref();
    this.child = child;
    this.exitInfo = undefined;
    live.add(this);
    this.childExit = new Promise((resolve) => {
      child.once('exit', (code, sig) => {
        this.exitInfo = sig ? `killed by ${sig}` : `exited with code ${code}`;
        if (this.child === child) this.child = undefined;
        resolve();
      });
      child.once('error', (error) => {
        this.exitInfo = `could not be spawned: ${error.message}`;
        if (this.child === child) this.child = undefined;
        resolve();
      });
    });

    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exitInfo !== undefined) {
        throw this.failure(`rabbitmq-server ${this.exitInfo} during boot`, logOffset, consoleOffset);
      }
      if (readLogFrom(this.logFile, logOffset).includes('Server startup complete') && (await portAnswers(this.port))) {
        debug(`${this.nodename}: booted`);
        return;
      }
      if (Date.now() > deadline) {
        this.killSync();
        throw this.failure(`did not start within ${timeoutMs} ms`, logOffset, consoleOffset);
      }
      await sleep(100);
    }
  }

  private failure(what: string, logOffset: number, consoleOffset: number): Error {
    return new Error(
      `${this.nodename} (AMQP ${HOST}:${this.port}, dist ${this.distPort}) ${what}.\n` +
        `--- ${this.logFile} (tail) ---\n${tail(this.logFile, logOffset)}\n` +
        `--- ${this.consoleFile} (tail) ---\n${tail(this.consoleFile, consoleOffset)}`,
    );
  }

  private beamPids(): number[] {
    return [...findBeams((n) => n === this.nodename).keys()];
  }

  /** SIGKILLs the node without waiting; for the process 'exit' hook and failed boots. */
  killSync(): void {
    for (const pid of this.beamPids()) signal(pid, 'SIGKILL');
    if (this.child?.pid !== undefined) signal(this.child.pid, 'SIGKILL');
  }

  /** Graceful (SIGTERM, which RabbitMQ treats like `rabbitmqctl stop`) unless `kill`; keeps the data. */
  async stop(options: StopNodeOptions = {}): Promise<void> {
    const pids = this.beamPids();
    for (const pid of pids) signal(pid, options.kill ? 'SIGKILL' : 'SIGTERM');
    if (!(await waitForExit(pids, STOP_TIMEOUT_MS))) {
      for (const pid of pids) signal(pid, 'SIGKILL');
      await waitForExit(pids, 5000);
    }
    // The script exits once its node has; wait so a following start() sees a clean slate.
    if (this.child?.pid !== undefined && !pids.length) signal(this.child.pid, 'SIGTERM');
    await boundedWait(this.childExit, 5000);
    this.child = undefined;
  }

  /** Kills the node and deletes its directory. */
  async destroy(): Promise<void> {
    await this.stop({ kill: true });
    live.delete(this);
    await rm(this.dir, { recursive: true, force: true });
  }

  async ctl(args: string[], timeoutMs = CTL_TIMEOUT_MS): Promise<string> {
    const env = { ...baseEnv(), RABBITMQ_CONF_ENV_FILE: this.envConfFile };
    const result = await run(join(RABBITMQ_BIN, 'rabbitmqctl'), ['-n', this.nodename, ...args], {
      env,
      asRabbit: true,
      timeoutMs,
      cwd: rabbitmqAccount().home,
    });
    return result.stdout;
  }

  async runningNodes(): Promise<string[]> {
    const out = await this.ctl(['cluster_status', '--formatter', 'json']);
    const parsed: unknown = JSON.parse(out);
    if (typeof parsed === 'object' && parsed !== null && 'running_nodes' in parsed) {
      const running = (parsed as { running_nodes: unknown }).running_nodes;
      if (Array.isArray(running)) return running.filter((n): n is string => typeof n === 'string');
    }
    throw new Error(`unexpected cluster_status output from ${this.nodename}: ${out}`);
  }
}

function readLogFrom(path: string, offset: number): string {
  try {
    return readFileSync(path, 'utf8').slice(offset);
  } catch {
    return '';
  }
}

/** Polls `node`'s view until every node in `expected` runs in its cluster. */
async function waitForRunning(node: ExtraNode, expected: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: string[] = [];
  for (;;) {
    last = await node.runningNodes();
    if (expected.every((n) => last.includes(n))) return;
    if (Date.now() > deadline) {
      throw new Error(
        `cluster did not form within ${timeoutMs} ms: ${node.nodename} sees running ${JSON.stringify(last)}, ` +
          `expected ${JSON.stringify(expected)}.\n--- ${node.logFile} (tail) ---\n${tail(node.logFile)}`,
      );
    }
    await sleep(250);
  }
}

// ---------------------------------------------------------------------------------------------------
// Cluster

export async function startCluster(options: StartClusterOptions = {}): Promise<Cluster> {
  const size = options.size ?? 3;
  const basePort = options.basePort ?? 5701;
  const prefix = options.prefix ?? 'warren-c';
  const timeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  if (!Number.isInteger(size) || size < 1 || size > 9) throw new RangeError(`cluster size must be 1..9, got ${size}`);

  const seedName = `${prefix}1@localhost`;
  // Joiners find the seed through classic-config peer discovery while they boot, which saves the
  // stop_app/join_cluster/start_app round (~7 s) that joining afterwards costs. They start only once the
  // seed has fully booted: a fresh seed migrates its Mnesia tables (feature flags) late in its boot, and a
  // node that joins before that fails with schema_integrity_check_failed. Only the seed is listed, so no
  // two nodes can form separate clusters.
  const discovery = [
    'cluster_formation.peer_discovery_backend = classic_config',
    `cluster_formation.classic_config.nodes.1 = ${seedName}`,
    `cluster_formation.discovery_retry_limit = ${Math.ceil(timeoutMs / 200)}`,
    'cluster_formation.discovery_retry_interval = 200',
    '',
  ].join('\n');
  const nodes = Array.from(
    { length: size },
    (_, i) =>
      new ExtraNode({ name: `${prefix}${i + 1}`, port: basePort + i, config: i === 0 ? '' : discovery, plugins: [] }),
  );
  const seed = nodes[0]!;
  const joiners = nodes.slice(1);
  const names = nodes.map((n) => n.nodename);
  const stopped = new Set<number>();

  const node = (i: number): ExtraNode => {
    const n = nodes[i];
    if (!n) throw new RangeError(`no cluster node ${i} (nodes are 0..${size - 1})`);
    return n;
  };

  try {
    await Promise.all(nodes.map((n) => n.prepare()));
    debug('cluster: prepared');
    // Not all at once: see the comment on `discovery`. Booting node 1 alone leaves part of the second core
    // idle for ~4 s, which is still far cheaper than a join round through rabbitmqctl.
    await seed.start(timeoutMs);
    await Promise.all(joiners.map((n) => n.start(timeoutMs)));
    debug('cluster: all nodes booted');
    // Peer discovery gives up (and the node boots standalone) if the seed never answered in time; join
    // those the classic way. stop_app runs in parallel, join_cluster one at a time because every join
    // changes the seed's Mnesia schema, start_app in parallel again.
    const running = await seed.runningNodes();
    const strays = joiners.filter((n) => !running.includes(n.nodename));
    if (strays.length) {
      debug(`cluster: joining ${strays.map((n) => n.nodename).join(', ')} with rabbitmqctl`);
      await Promise.all(strays.map((n) => n.ctl(['stop_app'])));
      for (const n of strays) await n.ctl(['join_cluster', seed.nodename]);
      await Promise.all(strays.map((n) => n.ctl(['start_app'])));
      await waitForRunning(seed, names, timeoutMs);
    }
    debug('cluster: all running');
  } catch (error) {
    await Promise.allSettled(nodes.map((n) => n.destroy()));
    throw error;
  }

  return {
    urls: nodes.map((n) => n.url),
    nodes: nodes.map((n) => ({ name: n.nodename, port: n.port, url: n.url })),
    async stopNode(i, stopOptions = {}) {
      const n = node(i);
      await n.stop(stopOptions);
      stopped.add(i);
    },
    async startNode(i) {
      const n = node(i);
      await n.start(timeoutMs);
      stopped.delete(i);
      // A restarted node rejoins from its own Mnesia data; wait until it sees every running member.
      await waitForRunning(
        n,
        names.filter((_, j) => !stopped.has(j)),
        timeoutMs,
      );
    },
    ctl(i, ...args) {
      return node(i).ctl(args);
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.destroy()));
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// TLS node

/** RabbitMQ's rabbit_password_hashing_sha256 format: base64(salt ++ sha256(salt ++ password)). */
function rabbitPasswordHash(password: string): string {
  const salt = randomBytes(4);
  const digest = createHash('sha256').update(salt).update(password, 'utf8').digest();
  return Buffer.concat([salt, digest]).toString('base64');
}

interface Pki {
  ca: Buffer;
  serverCert: Buffer;
  serverKey: Buffer;
  cert: Buffer;
  key: Buffer;
  otherCa: Buffer;
  otherCert: Buffer;
  otherKey: Buffer;
}

/** A CA, a server and a client certificate from it, and an unrelated CA with its own client certificate.
 * P-256 keys: generating them takes milliseconds where RSA-2048 takes a noticeable fraction of a second. */
async function makePki(dir: string): Promise<Pki> {
  await mkdir(dir, { recursive: true });
  const openssl = async (...args: string[]) => {
    try {
      await run('openssl', args, { cwd: dir, timeoutMs: 30_000 });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(`${message}\n(is Debian's openssl installed? \`apt-get install -y openssl\`)`);
    }
  };
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const days = ['-days', '3650'];
  await writeFile(
    join(dir, 'ext.cnf'),
    [
      '[server]',
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature, keyEncipherment',
      'extendedKeyUsage = serverAuth',
      'subjectAltName = DNS:localhost, IP:127.0.0.1',
      '[client]',
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature, keyEncipherment',
      'extendedKeyUsage = clientAuth',
      '',
    ].join('\n'),
  );
  const caExt = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'];
  const makeCa = (name: string, cn: string) =>
    openssl(
      'req',
      '-x509',
      ...key,
      ...days,
      '-subj',
      `/CN=${cn}`,
      ...caExt,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.pem`,
    );
  const makeLeaf = async (name: string, cn: string, ca: string, section: string) => {
    await openssl('req', '-new', ...key, '-subj', `/CN=${cn}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    await openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.pem`,
      '-CAkey',
      `${ca}.key`,
      '-set_serial',
      `0x${randomBytes(8).toString('hex')}`,
      ...days,
      '-extfile',
      'ext.cnf',
      '-extensions',
      section,
      '-out',
      `${name}.pem`,
    );
  };
  await Promise.all([makeCa('ca', 'warren test CA'), makeCa('other-ca', 'warren unrelated test CA')]);
  await Promise.all([
    makeLeaf('server', 'localhost', 'ca', 'server'),
    makeLeaf('client', 'warren-client', 'ca', 'client'),
    makeLeaf('other-client', 'warren-client', 'other-ca', 'client'),
  ]);
  const read = (name: string) => readFile(join(dir, name));
  return {
    ca: await read('ca.pem'),
    serverCert: await read('server.pem'),
    serverKey: await read('server.key'),
    cert: await read('client.pem'),
    key: await read('client.key'),
    otherCa: await read('other-ca.pem'),
    otherCert: await read('other-client.pem'),
    otherKey: await read('other-client.key'),
  };
}

export async function startTlsNode(options: StartTlsNodeOptions = {}): Promise<TlsNode> {
  const name = options.name ?? 'warren-tls';
  const port = options.port ?? 5710;
  const tlsPort = port + 1;
  const certs = join(EXTRA_NODES_BASE, name, 'certs');
  // Definitions loaded at boot replace two rabbitmqctl calls (add_user, set_permissions). When a node
  // loads definitions it skips creating the default guest user, so guest is defined here too.
  const allPermissions = { vhost: '/', configure: '.*', write: '.*', read: '.*' };
  const definitions = {
    vhosts: [{ name: '/' }],
    users: [
      {
        name: 'guest',
        password_hash: rabbitPasswordHash('guest'),
        hashing_algorithm: 'rabbit_password_hashing_sha256',
        tags: ['administrator'],
      },
      // No password hash: this user can only log in with EXTERNAL, i.e. its client certificate.
      { name: 'warren-client', password_hash: '', hashing_algorithm: 'rabbit_password_hashing_sha256', tags: [] },
    ],
    permissions: [
      { user: 'guest', ...allPermissions },
      { user: 'warren-client', ...allPermissions },
    ],
  };
  const node = new ExtraNode({
    name,
    port,
    plugins: ['rabbitmq_auth_mechanism_ssl'],
    config: [
      `listeners.ssl.1 = ${HOST}:${tlsPort}`,
      `ssl_options.cacertfile = ${join(certs, 'ca.pem')}`,
      `ssl_options.certfile = ${join(certs, 'server.pem')}`,
      `ssl_options.keyfile = ${join(certs, 'server.key')}`,
      'ssl_options.verify = verify_peer',
      'ssl_options.fail_if_no_peer_cert = false',
      'ssl_options.versions.1 = tlsv1.3',
      'ssl_options.versions.2 = tlsv1.2',
      'auth_mechanisms.1 = PLAIN',
      'auth_mechanisms.2 = AMQPLAIN',
      'auth_mechanisms.3 = EXTERNAL',
      'ssl_cert_login_from = common_name',
      `load_definitions = ${join(EXTRA_NODES_BASE, name, 'definitions.json')}`,
      '',
    ].join('\n'),
  });
  try {
    await node.prepare({ 'definitions.json': JSON.stringify(definitions, null, 2) });
    const pki = await makePki(certs);
    await chownTree(certs);
    await node.start(options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
    if (!(await portAnswers(tlsPort))) throw new Error(`${node.nodename} booted but its TLS port ${tlsPort} is closed`);
    return {
      port,
      tlsPort,
      url: node.url,
      tlsUrl: `amqps://guest:guest@localhost:${tlsPort}`,
      ca: pki.ca,
      cert: pki.cert,
      key: pki.key,
      otherCa: pki.otherCa,
      otherCert: pki.otherCert,
      otherKey: pki.otherKey,
      dir: certs,
      stop: () => node.destroy(),
    };
  } catch (error) {
    await node.destroy().catch(() => {});
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------
// OAuth 2.0 node

export interface StartOAuthNodeOptions {
  /** PEM of the RSA public key the node verifies tokens with (the test keeps the private key). */
  publicKeyPem: string;
  /** Key id tokens name in their `kid` header (and the node's default key). Default `warren-key`. */
  keyId?: string;
  /** Audience and scope prefix the node expects. Default `rabbitmq`. */
  resourceServerId?: string;
  /** AMQP port. Default 5730 (distribution 25730). */
  port?: number;
  /** Node name, must start with `warren-`. Default `warren-oauth`. */
  name?: string;
  startTimeoutMs?: number;
}

export interface OAuthNode {
  port: number;
  /** `amqp://127.0.0.1:PORT`: no user name or password, which the test supplies as a token. */
  url: string;
  /** Runs rabbitmqctl against this node. */
  ctl(args: string[]): Promise<string>;
  /** Kills the node and deletes its directory. */
  stop(): Promise<void>;
}

/**
 * A node whose only authentication backend is RabbitMQ's OAuth 2.0 plugin
 * (`rabbitmq_auth_backend_oauth2`, shipped with the broker): a client logs in with a JWT signed by
 * the key whose public half is given here, as its password; scopes such as
 * `rabbitmq.configure:*\/*` grant permissions, and the token's `exp` bounds its use.
 */
export async function startOAuthNode(options: StartOAuthNodeOptions): Promise<OAuthNode> {
  const name = options.name ?? 'warren-oauth';
  const port = options.port ?? 5730;
  const keyId = options.keyId ?? 'warren-key';
  const keyFile = join(EXTRA_NODES_BASE, name, 'signing-key.pem');
  const node = new ExtraNode({
    name,
    port,
    plugins: ['rabbitmq_auth_backend_oauth2'],
    config: [
      'auth_backends.1 = rabbit_auth_backend_oauth2',
      `auth_oauth2.resource_server_id = ${options.resourceServerId ?? 'rabbitmq'}`,
      `auth_oauth2.default_key = ${keyId}`,
      `auth_oauth2.signing_keys.${keyId} = ${keyFile}`,
      '',
    ].join('\n'),
  });
  try {
    await node.prepare({ 'signing-key.pem': options.publicKeyPem });
    await node.start(options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
    return {
      port,
      url: `amqp://${HOST}:${port}`,
      ctl: (args) => node.ctl(args),
      stop: () => node.destroy(),
    };
  } catch (error) {
    await node.destroy().catch(() => {});
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------
// Cleanup

/** Names of the `warren-*` nodes running right now, whoever started them. */
export function runningExtraNodes(): string[] {
  return [...new Set(findBeams((n) => n.startsWith(EXTRA_NODE_PREFIX)).values())].sort();
}

/**
 * Kills every running `warren-*` node (found through the pid files under EXTRA_NODES_BASE and by scanning
 * /proc for beam.smp processes started with RABBITMQ_NODENAME=warren-*), waits for them to exit, and
 * deletes EXTRA_NODES_BASE. Never touches any other node. Resolves with the names of the nodes it killed.
 */
export async function stopAllExtraNodes(): Promise<string[]> {
  const isExtra = (n: string) => n.startsWith(EXTRA_NODE_PREFIX);
  const beams = findBeams(isExtra);
  if (existsSync(EXTRA_NODES_BASE)) {
    for (const entry of readdirSync(EXTRA_NODES_BASE)) {
      try {
        const pid = Number(readFileSync(join(EXTRA_NODES_BASE, entry, 'pid'), 'utf8').trim());
        const name = nodenameOf(pid);
        // The pid file may be stale and its pid reused: only trust it if that process is a warren node.
        if (name !== undefined && isExtra(name) && isAlive(pid)) beams.set(pid, name);
      } catch {
        // No pid file: the node exited cleanly or never got that far.
      }
    }
  }
  live.clear();
  for (const pid of beams.keys()) signal(pid, 'SIGKILL');
  if (!(await waitForExit(beams.keys(), STOP_TIMEOUT_MS))) {
    const still = [...beams].filter(([pid]) => isAlive(pid)).map(([pid, name]) => `${name} (pid ${pid})`);
    throw new Error(`could not kill leftover extra RabbitMQ nodes: ${still.join(', ')}`);
  }
  await rm(EXTRA_NODES_BASE, { recursive: true, force: true });
  return [...new Set(beams.values())].sort();
}
