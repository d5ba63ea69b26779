/**
 * Switches the wasm backend between Cohort's training kernels and tfjs's stock ones, so the
 * bench can show what the fast-path kernels buy in the same process. The stock configs must
 * be captured before Cohort's kernels replace them, hence the capture at module load, right
 * after the wasm package registers its kernels.
 */
import '@tensorflow/tfjs-backend-wasm';
import {
  BatchMatMul,
  Conv2DBackpropInput,
  getKernel,
  MaxPoolGrad,
  registerKernel,
  Sum,
  unregisterKernel,
} from '@tensorflow/tfjs';
import type { KernelConfig } from '@tensorflow/tfjs';

/** The kernels Cohort replaces with faster versions (Conv2DBackpropFilter it adds, not replaces). */
const FAST_PATH_KERNELS = [Conv2DBackpropInput, MaxPoolGrad, BatchMatMul, Sum];

/** The stock wasm configs as the package registered them, or none when Cohort's came first. */
const stockConfigs: KernelConfig[] = FAST_PATH_KERNELS.flatMap((name) => {
  const config = getKernel(name, 'wasm');
  return config === undefined ? [] : [{ ...config }];
});

/**
 * Lets the bench flip between kernel sets. Create it after Cohort's kernels are registered
 * (selectBackend({preferred: 'wasm'})); it snapshots them so they can be put back.
 */
export class WasmKernelModes {
  private readonly cohortConfigs: KernelConfig[];

  constructor() {
    this.cohortConfigs = FAST_PATH_KERNELS.flatMap((name) => {
      const config = getKernel(name, 'wasm');
      return config === undefined ? [] : [{ ...config }];
    });
  }

  /**
   * Why the stock kernels cannot be restored, or null when they can: they must have been
   * captured before Cohort replaced them, and must differ from Cohort's.
   */
  stockUnavailableReason(): string | null {
    if (stockConfigs.length !== FAST_PATH_KERNELS.length) {
      return 'stock wasm kernels were not captured';
    }
    const replaced = stockConfigs.every(
      (stock, i) => stock.kernelFunc !== this.cohortConfigs[i]?.kernelFunc,
    );
    return replaced ? null : "Cohort's kernels were registered before the stock ones were captured";
  }

  /** Registers the stock Conv2DBackpropInput and MaxPoolGrad (Cohort's filter gradient stays). */
  useStock(): void {
    if (this.stockUnavailableReason() !== null) throw new Error('stock kernels unavailable');
    swapIn(stockConfigs);
  }

  /** Puts Cohort's fast-path kernels back. */
  useCohort(): void {
    swapIn(this.cohortConfigs);
  }
}

function swapIn(configs: KernelConfig[]): void {
  for (const config of configs) {
    if (getKernel(config.kernelName, 'wasm')?.kernelFunc === config.kernelFunc) continue;
    unregisterKernel(config.kernelName, 'wasm');
    registerKernel(config);
  }
}
