import type { DatasetSplit } from '../../shared/data/dataset';
import { CohortError } from '../../shared/errors';
import type { ModelSpec } from '../../shared/model/spec';
import type { JoinInfo } from '../../shared/protocol/web';
import { loadDataFiles } from '../data/data-files';
import { loadImageFolder } from '../data/image-folder';
import { loadSampleShard } from '../data/sample-shard';
import type { JoinStore } from './page-state';
import type { JoinQuery } from './query';
import { byTestId, setDataStatus } from './view';

/** The data the tab trains on, and what the user gave to get it. */
export interface ChosenData {
  split: DatasetSplit;
  source: 'sample' | 'folder' | 'files';
  /** The join token typed in (or from `?token=`), when the coordinator needs one. */
  joinToken?: string;
  description: string;
}

type Choice =
  { kind: 'sample' } | { kind: 'folder'; files: File[] } | { kind: 'files'; files: File[] };

/**
 * Waits for the data the tab will train on: at once with `?sample=1` (a random public sample
 * shard unless `?shard=` names one), otherwise from the user's pick: the sample button, a
 * folder of images, or IDX/CIFAR files. A pick that does not fit the task shows DATA_INVALID
 * and lets the user pick again. When the coordinator needs a join token that the URL did not
 * carry, a pick waits until one is typed in.
 */
export function chooseData(
  info: JoinInfo,
  spec: ModelSpec,
  query: JoinQuery,
  store: JoinStore,
): Promise<ChosenData> {
  const sampleButton = byTestId<HTMLButtonElement>('sample-button');
  const folderInput = byTestId<HTMLInputElement>('folder-input');
  const filesInput = byTestId<HTMLInputElement>('files-input');
  const tokenInput = byTestId<HTMLInputElement>('token-input');
  const controls = [sampleButton, folderInput, filesInput, tokenInput];
  const needsToken = info.joinTokenRequired && query.token === undefined;

  return new Promise((resolve) => {
    let busy = false;
    const attempt = async (choice: Choice): Promise<void> => {
      if (busy) return;
      const token = query.token ?? (tokenInput.value.trim() || undefined);
      if (info.joinTokenRequired && token === undefined) {
        setDataStatus('Enter the join token first (the operator has it), then choose again.');
        tokenInput.focus();
        return;
      }
      busy = true;
      for (const control of controls) control.disabled = true;
      store.update({ state: 'choosing-data', error: null });
      try {
        const loaded = await load(choice, info, spec, query);
        const { train, test } = loaded.split;
        store.update({
          dataSource: loaded.source,
          trainExamples: train.count,
          testExamples: test.count,
        });
        setDataStatus(
          `${loaded.description}: ${train.count} training and ${test.count} test examples, ` +
            'kept in this tab.',
        );
        resolve({ ...loaded, ...(token !== undefined ? { joinToken: token } : {}) });
      } catch (error) {
        store.fail(error);
        setDataStatus('That data cannot be used for this task: choose other data.');
        for (const control of controls) control.disabled = false;
        busy = false;
      } finally {
        folderInput.value = '';
        filesInput.value = '';
      }
    };

    sampleButton.addEventListener('click', () => void attempt({ kind: 'sample' }));
    folderInput.addEventListener('change', () => {
      const files = Array.from(folderInput.files ?? []);
      if (files.length > 0) void attempt({ kind: 'folder', files });
    });
    filesInput.addEventListener('change', () => {
      const files = Array.from(filesInput.files ?? []);
      if (files.length > 0) void attempt({ kind: 'files', files });
    });
    store.update({ state: 'choosing-data' });
    if (query.sample) {
      if (info.sample.shards === 0) {
        store.fail(
          new CohortError(
            'DATA_NOT_FOUND',
            '?sample=1 asks for public sample data, and this coordinator offers none: choose your own data',
          ),
        );
      } else if (needsToken) {
        setDataStatus('Enter the join token, then press "Use PUBLIC sample data".');
      } else {
        void attempt({ kind: 'sample' });
      }
    }
  });
}

async function load(
  choice: Choice,
  info: JoinInfo,
  spec: ModelSpec,
  query: JoinQuery,
): Promise<Omit<ChosenData, 'joinToken'>> {
  switch (choice.kind) {
    case 'sample': {
      const shard = query.shard ?? randomShard(info.sample.shards);
      setDataStatus(`Fetching public sample shard ${shard}…`);
      return {
        split: await loadSampleShard(shard, info.sample, spec),
        source: 'sample',
        description: `PUBLIC sample shard ${shard} (${info.sample.description})`,
      };
    }
    case 'folder': {
      setDataStatus(`Decoding ${choice.files.length} files…`);
      const split = await loadImageFolder(choice.files, spec, (done, total) =>
        setDataStatus(`Decoding images: ${done} of ${total}…`),
      );
      const root = choice.files[0]?.webkitRelativePath.split('/')[0] ?? 'folder';
      return { split, source: 'folder', description: `images from folder "${root}"` };
    }
    case 'files': {
      setDataStatus(`Reading ${choice.files.length} files…`);
      return {
        split: await loadDataFiles(choice.files, spec),
        source: 'files',
        description: choice.files.map((file) => file.name).join(', '),
      };
    }
  }
}

function randomShard(shards: number): number {
  const value = crypto.getRandomValues(new Uint32Array(1))[0]!;
  return value % shards;
}
