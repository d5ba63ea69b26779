import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { discoverTask } from '../../client-node/discover-task';
import { Coordinator } from '../../coordinator/coordinator';
import { isCohortError } from '../../shared/errors';
import { generateIdentity } from '../../shared/identity';
import { getModelSpec } from '../../shared/model/registry';
import { specHash } from '../../shared/model/spec-hash';
import { RecordingCoordinator } from '../helpers/recording-coordinator';

/**
 * A client started without --task asks the coordinator which task it runs (from the
 * challenge every connection gets) instead of assuming MNIST, and refuses an announcement
 * it cannot act on with TASK_MISMATCH.
 */

let dir: string;
const stops: Array<() => Promise<void>> = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-task-discovery-'));
});
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
  rmSync(dir, { recursive: true, force: true });
});

test.each(['mnist', 'cifar10'] as const)(
  'a %s coordinator announces its task and model hash',
  async (task) => {
    const coordinator = await Coordinator.start(
      {
        host: '127.0.0.1',
        port: 0,
        task,
        rounds: 1,
        minClients: 50,
        evaluation: 'none',
        database: `file:${join(dir, `${task}.db`)}`,
      },
      { identity: generateIdentity() },
    );
    stops.push(() => coordinator.stop());
    expect(await discoverTask(coordinator.url)).toEqual({
      task,
      modelSpecHash: await specHash(getModelSpec(task)),
    });
  },
);

test('an announcement without a task, of an unknown task, or of another model is refused', async () => {
  const mnistHash = await specHash(getModelSpec('mnist'));
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{}, /pass --task/],
    [{ task: 'imagenet', modelSpecHash: mnistHash }, /does not know/],
    [{ task: 'mnist', modelSpecHash: 'ab'.repeat(32) }, /differs from this client's/],
  ];
  for (const [extra, message] of cases) {
    const fake = await RecordingCoordinator.start({
      challenge: (honest) => ({ ...honest, ...extra }),
    });
    stops.push(() => fake.close());
    const error = await discoverTask(fake.url).catch((e: unknown) => e);
    expect(isCohortError(error, 'TASK_MISMATCH')).toBe(true);
    expect((error as Error).message).toMatch(message);
  }
});
