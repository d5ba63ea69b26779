import { connectNodeClient } from '../../client-node/node-client';
import type { NodeClient, NodeClientOptions } from '../../client-node/node-client';
import type { Dataset } from '../../shared/data/dataset';
import { selectExamples } from '../../shared/data/dataset';
import { generateIdentity } from '../../shared/identity';

/** Contiguous examples [from, to) of a dataset. */
export function slice(data: Dataset, from: number, to: number): Dataset {
  return selectExamples(
    data,
    Array.from({ length: to - from }, (_, i) => from + i),
  );
}

/**
 * Starts `count` real Node clients against `url`, client i training on its own disjoint
 * block of `perClient` examples; `extra(i)` adds per-client options (faults, secure...).
 */
export async function startClients(
  url: string,
  count: number,
  data: { train: Dataset; test: Dataset },
  perClient: number,
  backend: string,
  extra: (i: number) => Partial<NodeClientOptions> = () => ({}),
): Promise<NodeClient[]> {
  const clients: NodeClient[] = [];
  for (let i = 0; i < count; i++) {
    clients.push(
      await connectNodeClient({
        server: url,
        task: 'mnist',
        train: slice(data.train, i * perClient, (i + 1) * perClient),
        test: slice(data.test, 0, Math.min(100, data.test.count)),
        identity: generateIdentity(),
        backend,
        reconnectDelayMs: 100,
        reconnectDelayMaxMs: 500,
        ...extra(i),
      }),
    );
  }
  return clients;
}

/** Closes every client; safe on a partly started list. */
export function closeAll(clients: readonly NodeClient[]): void {
  for (const client of clients) client.close();
}
