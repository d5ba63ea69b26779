/* eslint-disable no-console -- the CLI's job is to print */
import { fromHex } from '../../shared/bytes';
import { bytesEqual } from '../../shared/secagg/encoding';
import { parseCertificateFile } from '../../shared/registrar';
import { Command } from 'commander';
import { loadTaskData, parseShard } from '../../client-node/data/load-task-data';
import {
  loadOrCreateIdentity,
  loadTrustedKeys,
  publicKeyHex,
} from '../../client-node/identity-store';
import { lockClientIdentity } from '../../client-node/identity-lock';
import { discoverTask } from '../../client-node/discover-task';
import { availableParallelism } from 'node:os';
import { connectNodeClient } from '../../client-node/node-client';
import { limitExamples } from '../../shared/data/dataset';
import { CohortError } from '../../shared/errors';
import { readJoinTokenFile } from '../enrollment';
import { readConfigFile } from '../read-config-file';
import { defaultClientIdentityPath } from '../options';
import { addTableOptions, tableValues } from './command-options';
import { chooseBackend, runCommand } from './run-context';

/** `cohort client`: join a coordinator and train on a private dataset that never leaves. */
export function clientCommand(): Command {
  const command = new Command('client').description(
    'join a coordinator as a Node client and train on local data',
  );
  addTableOptions(command, 'client');
  return command.action((parsed: Record<string, unknown>) =>
    runCommand(async () => {
      const flags = tableValues('client', parsed);
      if (flags.shard !== undefined && flags.clientData !== undefined) {
        throw new CohortError(
          'CONFIG_INVALID',
          '--shard and --data conflict: a private --data folder is used whole',
        );
      }
      const shard = flags.shard !== undefined ? parseShard(flags.shard) : undefined;
      const backend = await chooseBackend(flags.backend!);
      const trustedKeys =
        flags.trustedKeys !== undefined ? await loadTrustedKeys(flags.trustedKeys) : undefined;
      if (flags.clientJoinToken !== undefined && flags.clientJoinTokenFile !== undefined) {
        throw new CohortError(
          'CONFIG_INVALID',
          '--join-token and --join-token-file conflict: give one',
        );
      }
      const ca = flags.ca !== undefined ? await readCaFile(flags.ca) : undefined;
      const joinToken =
        flags.clientJoinTokenFile !== undefined
          ? await readJoinTokenFile(flags.clientJoinTokenFile)
          : flags.clientJoinToken;
      // One process per identity: a second client on this machine started without
      // --identity takes the next free one instead of fighting the first for its connection.
      const lock = lockClientIdentity(flags.clientIdentity!, {
        explicit: flags.clientIdentity !== defaultClientIdentityPath(),
        note: (line) => console.log(line),
      });
      const identityPath = lock.identityPath;
      const { identity, created } = await loadOrCreateIdentity(identityPath);
      console.log(
        `${created ? 'created' : 'loaded'} identity ${identityPath} (public key ${publicKeyHex(identity)})`,
      );
      if (trustedKeys) console.log(`secure rounds limited to ${trustedKeys.length} trusted keys`);
      const certificate =
        flags.certificate !== undefined
          ? parseCertificateFile(
              await readConfigFile(flags.certificate, 'certificate'),
              flags.certificate,
            )
          : undefined;
      if (certificate && !bytesEqual(certificate.publicKey, identity.publicKey)) {
        throw new CohortError(
          'CONFIG_INVALID',
          `certificate ${flags.certificate!} is for another identity than ${identityPath}`,
        );
      }
      const registrarKey =
        flags.registrarKey !== undefined ? fromHex(flags.registrarKey.toLowerCase()) : undefined;
      if (registrarKey) {
        console.log(
          `registrar pinned: every member of a secure round must be certified by ${flags.registrarKey!.toLowerCase()}`,
        );
      }
      console.log(
        flags.allowPlain!
          ? 'plain rounds allowed (--allow-plain): updates may leave this machine unmasked'
          : `secure aggregation required, with at least ${flags.minParticipants!} participants per round`,
      );
      if (flags.coordinatorKey !== undefined)
        console.log(`coordinator key pinned: ${flags.coordinatorKey.toLowerCase()}`);
      let task = flags.clientTask;
      if (task === undefined) {
        console.log(`asking ${flags.server!} which task it runs...`);
        task = (await discoverTask(flags.server!, ca !== undefined ? { ca } : {})).task;
        console.log(`task: ${task} (announced by the coordinator)`);
      }
      console.log('loading data...');
      const data = await loadTaskData(task, {
        ...(shard ? { shard } : {}),
        ...(flags.clientData !== undefined ? { data: flags.clientData } : {}),
        cacheDir: flags.cacheDir!,
        resize: flags.resize!,
      });
      const train = limitExamples(data.train, flags.clientLimit);
      console.log(`data: ${train.count} training and ${data.test.count} test examples`);
      let lastStep = -1;
      const client = await connectNodeClient({
        server: flags.server!,
        task,
        train,
        test: data.test,
        identity,
        identityPath,
        backend,
        threads: flags.clientThreads ?? availableParallelism(),
        allowPlain: flags.allowPlain!,
        shareMetrics: flags.shareMetrics!,
        minParticipants: flags.minParticipants!,
        ...(flags.coordinatorKey !== undefined ? { coordinatorKey: flags.coordinatorKey } : {}),
        ...(trustedKeys ? { trustedKeys } : {}),
        ...(certificate ? { certificate: certificate.certificate } : {}),
        ...(registrarKey ? { registrarKey } : {}),
        ...(joinToken !== undefined ? { joinToken } : {}),
        ...(ca !== undefined ? { ca } : {}),
        ...(flags.name !== undefined ? { displayName: flags.name } : {}),
        events: {
          onLog: (line) => console.log(line),
          onState: (state) => {
            if (state === 'connecting') console.log(`connecting to ${flags.server!}...`);
            if (state === 'training') lastStep = -1;
          },
          onProgress: (_roundId, p) => {
            const step = Math.floor(p.fraction * 10);
            if (step > lastStep) {
              lastStep = step;
              console.log(`training ${(p.fraction * 100).toFixed(0)}% (loss ${p.loss.toFixed(4)})`);
            }
          },
          onPhase: (_roundId, phase) => console.log(`secure aggregation: ${phase}`),
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
      lock.release();
    }),
  );
}

/** The `--ca` file's PEM text (CONFIG_INVALID when unreadable or not a certificate). */
async function readCaFile(path: string): Promise<string> {
  const text = await readConfigFile(path, '--ca');
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    throw new CohortError('CONFIG_INVALID', `--ca ${path} holds no PEM certificate`);
  }
  return text;
}
