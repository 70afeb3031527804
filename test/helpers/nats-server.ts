import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NatsConnection } from 'nats';

/**
 * A private nats-server for one test file: its own port and its own JetStream store, so test
 * files running in parallel never see each other's streams or `swarm.task.request` messages, and
 * a test can stop the server and start it again with its data intact.
 */
export interface TestNatsServer {
  url: string;
  port: number;
  storeDir: string;
  running(): boolean;
  /** Stops the server (SIGTERM) and waits for it to exit; its store stays for `start()`. */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same store. */
  start(): Promise<void>;
  /** Stops it and removes its store. */
  dispose(): Promise<void>;
}

const CANDIDATES = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'];

function natsServerBinary(): string {
  const fromEnv = process.env.DISPATCH_TEST_NATS_SERVER;
  if (fromEnv) return fromEnv;
  for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    const candidate = path.join(dir, 'nats-server');
    if (existsSync(candidate)) return candidate;
  }
  const found = CANDIDATES.find((c) => existsSync(c));
  // Fail loudly rather than skip: CI must run these tests.
  if (!found) throw new Error('nats-server binary not found: install it or set DISPATCH_TEST_NATS_SERVER');
  return found;
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function accepts(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = new Socket();
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.connect(port, '127.0.0.1');
  });
}

/** `args` go to nats-server after the usual ones (e.g. `-c <config file>` for users and TLS). */
export async function startNatsServer(options: { args?: string[] } = {}): Promise<TestNatsServer> {
  const binary = natsServerBinary();
  const storeDir = await mkdtemp(path.join(tmpdir(), 'dispatch-nats-'));
  const port = await freePort();
  let child: ChildProcess | null = null;
  let output = '';

  const start = async () => {
    if (child) return;
    output = '';
    const proc = spawn(binary, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir, ...(options.args ?? [])], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    proc.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    proc.once('exit', () => {
      if (child === proc) child = null;
    });
    const deadline = Date.now() + 10_000;
    // "Server is ready" is printed once the client port listens and JetStream has recovered its store.
    while (!output.includes('Server is ready') || !(await accepts(port))) {
      if (child !== proc) throw new Error(`nats-server exited at start:\n${output}`);
      if (Date.now() > deadline) throw new Error(`nats-server did not start on port ${port}:\n${output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  const stop = async () => {
    const proc = child;
    if (!proc) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
    child = null;
  };

  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    running: () => child !== null,
    stop,
    start,
    async dispose() {
      await stop();
      await rm(storeDir, { recursive: true, force: true });
    },
  };
}

/** One message as stored in DISPATCH_EVENTS. */
export interface StoredMessage {
  seq: number;
  subject: string;
  msgId: string | undefined;
  traceparent: string | undefined;
  body: any;
}

/** Every message DISPATCH_EVENTS holds, in stream order (read by sequence, not by a consumer). */
export async function readStream(nc: NatsConnection, stream = 'DISPATCH_EVENTS'): Promise<StoredMessage[]> {
  const jsm = await nc.jetstreamManager();
  const { state } = await jsm.streams.info(stream);
  const out: StoredMessage[] = [];
  if (state.messages === 0) return out;
  const consumer = await nc.jetstream().consumers.get(stream);
  const messages = await consumer.consume({ max_messages: 1_000 });
  for await (const m of messages) {
    let body: unknown;
    try {
      body = m.json();
    } catch {
      body = m.string();
    }
    out.push({ seq: m.seq, subject: m.subject, msgId: m.headers?.get('Nats-Msg-Id') || undefined, traceparent: m.headers?.get('traceparent') || undefined, body });
    if (m.seq >= state.last_seq) break;
  }
  await messages.close();
  return out;
}
