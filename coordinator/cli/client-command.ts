/* eslint-disable no-console -- the CLI's job is to print */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { loadDataFolder } from '../../client-node/data/load-data-folder';
import { loadTaskData, parseShard } from '../../client-node/data/load-task-data';
import {
  defaultIdentityPath,
  loadOrCreateIdentity,
  loadTrustedKeys,
  publicKeyHex,
} from '../../client-node/identity-store';
import { connectNodeClient } from '../../client-node/node-client';
import { limitExamples } from '../../shared/data/dataset';
import { CohortError } from '../../shared/errors';
import { DEFAULT_MIN_PARTICIPANTS, MIN_THRESHOLD } from '../../shared/secagg/params';
import { integerFlag } from './parse';
import { addBackendOption, chooseBackend, runCommand } from './run-context';
import { TASK_CHOICES } from './shared-options';
import type { TaskName } from '../../shared/model/registry';

interface ClientFlags {
  server: string;
  task: TaskName;
  shard?: string;
  data?: string;
  limit?: number;
  identity: string;
  trustedKeys?: string;
  name?: string;
  cacheDir: string;
  backend: string;
  allowPlain: boolean;
  coordinatorKey?: string;
  shareMetrics: boolean;
  minParticipants: number;
}

/** `cohort client`: join a coordinator and train on a private dataset that never leaves. */
export function clientCommand(): Command {
  const command = new Command('client')
    .description('join a coordinator as a Node client and train on local data')
    .requiredOption('--server <url>', 'coordinator URL, e.g. http://HOST:8080')
    .addOption(
      new Option('--task <task>', 'learning task; must match the coordinator')
        .choices(TASK_CHOICES)
        .default('mnist'),
    )
    .option('--shard <i/n>', "train on shard i of n of the task's bundled or downloaded dataset")
    .option(
      '--data <dir>',
      'private dataset: class folders of PNG/JPEG, CIFAR-10 binary or IDX files (.gz ok)',
    )
    .option('--limit <n>', 'train on at most N examples (quick runs)', integerFlag(1))
    .option(
      '--identity <file>',
      'long-term identity key file (created on first run, mode 0600)',
      defaultIdentityPath(),
    )
    .option(
      '--trusted-keys <file>',
      'secure rounds only with these identities: one hex public key per line',
    )
    .option(
      '--allow-plain',
      'also join plain rounds, which send updates unmasked (without it: secure rounds only)',
      false,
    )
    .option(
      '--coordinator-key <hex>',
      "pin the coordinator's public key (it prints it at start-up); any other is refused",
    )
    .option(
      '--share-metrics',
      'in secure rounds, share evaluation metrics and example counts with the coordinator',
      false,
    )
    .option(
      '--min-participants <n>',
      'smallest secure round to take part in (small cohorts ease differencing attacks)',
      integerFlag(MIN_THRESHOLD, 100_000),
      DEFAULT_MIN_PARTICIPANTS,
    )
    .option('--name <name>', 'display name shown by the coordinator')
    .option(
      '--cache-dir <dir>',
      'where downloaded datasets are cached',
      join(homedir(), '.cache', 'cohort'),
    );
  addBackendOption(command);
  return command.action((flags: ClientFlags) =>
    runCommand(async () => {
      if (flags.shard !== undefined && flags.data !== undefined) {
        throw new CohortError(
          'CONFIG_INVALID',
          '--shard and --data conflict: a private --data folder is used whole',
        );
      }
      if (flags.coordinatorKey !== undefined && !/^[0-9a-fA-F]{64}$/.test(flags.coordinatorKey)) {
        throw new CohortError(
          'CONFIG_INVALID',
          `--coordinator-key must be the 64-character hex key the coordinator prints, got "${flags.coordinatorKey}"`,
        );
      }
      const shard = flags.shard !== undefined ? parseShard(flags.shard) : undefined;
      const backend = await chooseBackend(flags.backend);
      const trustedKeys =
        flags.trustedKeys !== undefined ? await loadTrustedKeys(flags.trustedKeys) : undefined;
      const { identity, created } = await loadOrCreateIdentity(flags.identity);
      console.log(
        `${created ? 'created' : 'loaded'} identity ${flags.identity} (public key ${publicKeyHex(identity)})`,
      );
      if (trustedKeys) console.log(`secure rounds limited to ${trustedKeys.length} trusted keys`);
      console.log(
        flags.allowPlain
          ? 'plain rounds allowed (--allow-plain): updates may leave this machine unmasked'
          : `secure aggregation required, with at least ${flags.minParticipants} participants per round`,
      );
      if (flags.coordinatorKey !== undefined)
        console.log(`coordinator key pinned: ${flags.coordinatorKey.toLowerCase()}`);
      console.log('loading data...');
      const data =
        flags.data !== undefined
          ? await loadDataFolder(flags.data)
          : await loadTaskData(flags.task, {
              ...(shard ? { shard } : {}),
              cacheDir: flags.cacheDir,
            });
      const train = limitExamples(data.train, flags.limit);
      console.log(`data: ${train.count} training and ${data.test.count} test examples`);
      let lastStep = -1;
      const client = await connectNodeClient({
        server: flags.server,
        task: flags.task,
        train,
        test: data.test,
        identity,
        identityPath: flags.identity,
        backend,
        allowPlain: flags.allowPlain,
        shareMetrics: flags.shareMetrics,
        minParticipants: flags.minParticipants,
        ...(flags.coordinatorKey !== undefined ? { coordinatorKey: flags.coordinatorKey } : {}),
        ...(trustedKeys ? { trustedKeys } : {}),
        ...(flags.name !== undefined ? { displayName: flags.name } : {}),
        events: {
          onLog: (line) => console.log(line),
          onState: (state) => {
            if (state === 'connecting') console.log(`connecting to ${flags.server}...`);
            if (state === 'training') lastStep = -1;
          },
          onProgress: (_roundId, p) => {
            const step = Math.floor(p.fraction * 10);
            if (step > lastStep) {
              lastStep = step;
              console.log(`training ${(p.fraction * 100).toFixed(0)}% (loss ${p.loss.toFixed(4)})`);
            }
          },
          onRoundSummary: (s) =>
            console.log(
              `round ${s.round} ${s.status}: ${s.participants} clients` +
                (s.testAccuracy !== null
                  ? `, test accuracy ${(s.testAccuracy * 100).toFixed(2)}%`
                  : ''),
            ),
        },
      });
      const stop = () => client.close();
      process.once('SIGINT', stop);
      const done = await client.session.finished;
      process.off('SIGINT', stop);
      console.log(`coordinator finished: ${done.reason}`);
      client.close();
    }),
  );
}
