import { connectNodeClient } from '../../client-node/node-client';
import type { NodeClient, NodeClientOptions } from '../../client-node/node-client';
import type { ClientState } from '../../shared/client/client-session';
import { generateIdentity } from '../../shared/identity';
import type { RecordingOptions } from './recording-coordinator';
import { RecordingCoordinator } from './recording-coordinator';

/** One real Node client joined to its own recording coordinator. */
export interface RecordedClient {
  coordinator: RecordingCoordinator;
  client: NodeClient;
  /** Every state the client session went through, in order. */
  states: ClientState[];
}

/**
 * Starts real Node clients against recording coordinators for client-side tests, and closes
 * them all in `closeAll` (call it from afterEach), so each test owns its servers and clients.
 */
export class RecordedClientPool {
  private servers: RecordingCoordinator[] = [];
  private clients: NodeClient[] = [];

  /** `base` gives the client options every test shares (data, backend...). */
  constructor(private readonly base: () => Omit<NodeClientOptions, 'server' | 'identity'>) {}

  /** A recording coordinator scripted by `server` and a fresh-identity client joined to it. */
  async start(
    server: RecordingOptions,
    client: Partial<NodeClientOptions> = {},
  ): Promise<RecordedClient> {
    const coordinator = await RecordingCoordinator.start(server);
    this.servers.push(coordinator);
    const states: ClientState[] = [];
    const node = await connectNodeClient({
      ...this.base(),
      server: coordinator.url,
      identity: generateIdentity(),
      reconnectDelayMs: 100,
      reconnectDelayMaxMs: 500,
      events: { onState: (state) => states.push(state) },
      ...client,
    });
    this.clients.push(node);
    return { coordinator, client: node, states };
  }

  /** Closes every client, then every coordinator. */
  async closeAll(): Promise<void> {
    for (const client of this.clients.splice(0)) client.close();
    for (const server of this.servers.splice(0)) await server.close();
  }
}
