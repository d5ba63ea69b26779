/**
 * Why an optional TensorFlow.js package could not be used, in words a user can act on.
 * `installed: false` is the normal case of an optional dependency npm skipped; `true` means
 * the package is there but broken (missing native addon, missing CUDA libraries, ...), which
 * the user must hear about because they expected it to work.
 */
export interface LoadFailure {
  readonly installed: boolean;
  readonly reason: string;
}

/** libtensorflow that @tensorflow/tfjs-node(-gpu) 4.22 downloads, and what its GPU build needs. */
export const LIBTENSORFLOW_VERSION = '2.9.1';
export const GPU_REQUIREMENTS =
  'the GPU build of libtensorflow 2.9.1 needs an NVIDIA driver plus CUDA 11.2 and cuDNN 8.1 ' +
  'libraries on the library path (LD_LIBRARY_PATH)';

/**
 * Classifies the error thrown while requiring `packageName`. Node reports a missing package
 * as MODULE_NOT_FOUND naming that package; a MODULE_NOT_FOUND naming another file (the
 * package's native addon) or a dlopen failure means the package is installed but broken.
 */
export function classifyLoadFailure(packageName: string, error: unknown): LoadFailure {
  const code = (error as { code?: unknown } | null)?.code;
  const message = firstLine(error instanceof Error ? error.message : String(error));
  if (code === 'MODULE_NOT_FOUND' && message.includes(`'${packageName}'`)) {
    return { installed: false, reason: `${packageName} is not installed` };
  }
  let hint = '';
  if (/tfjs_binding\.node/.test(message) || code === 'MODULE_NOT_FOUND') {
    hint =
      `; its native addon is missing (the install script could not download libtensorflow?): ` +
      `run \`npm rebuild ${packageName}\` on a machine with internet access`;
  } else if (/cud|libcu|nvidia/i.test(message)) {
    hint = `; ${GPU_REQUIREMENTS}`;
  } else if (
    code === 'ERR_DLOPEN_FAILED' ||
    /shared object|dlopen|\.so\b|\.dll\b|\.dylib\b/.test(message)
  ) {
    hint = `; a native library could not be loaded (libtensorflow ${LIBTENSORFLOW_VERSION})`;
  }
  if (packageName.endsWith('-gpu') && !hint.includes('CUDA')) hint += `; note: ${GPU_REQUIREMENTS}`;
  return {
    installed: true,
    reason: `${packageName} is installed but failed to load: ${message}${hint}`,
  };
}

function firstLine(text: string): string {
  const line = text.split('\n', 1)[0] ?? '';
  return line.length > 300 ? `${line.slice(0, 300)}...` : line;
}
