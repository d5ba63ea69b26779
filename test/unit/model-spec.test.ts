import { isCohortError } from '../../shared/errors';
import { canonicalJson } from '../../shared/model/canonical-json';
import { getModelSpec, isTaskName, MODEL_SPECS, TASK_NAMES } from '../../shared/model/registry';
import { specHash } from '../../shared/model/spec-hash';
import type { ModelSpec } from '../../shared/model/spec';
import { summarizeModelSpec, validateModelSpec } from '../../shared/model/validate-spec';

const TINY: ModelSpec = {
  input: [6, 6, 1],
  classes: 2,
  layers: [
    { type: 'conv2d', filters: 2, kernel: 3, activation: 'relu' },
    { type: 'maxpool', size: 2 },
    { type: 'flatten' },
    { type: 'dropout', rate: 0.5 },
    { type: 'dense', units: 2 },
  ],
};

function configInvalid(value: unknown): boolean {
  try {
    validateModelSpec(value);
    return false;
  } catch (err) {
    return isCohortError(err, 'CONFIG_INVALID');
  }
}

describe('validateModelSpec', () => {
  it('accepts a valid spec and returns an equal, independent copy', () => {
    const copy = validateModelSpec(TINY);
    expect(copy).toEqual(TINY);
    expect(copy).not.toBe(TINY);
    expect(copy.layers[0]).not.toBe(TINY.layers[0]);
  });

  it('computes output shapes and parameter counts by hand', () => {
    const summary = summarizeModelSpec(TINY);
    // conv 3x3 valid: 6 -> 4; pool 2: 4 -> 2; flatten 2*2*2 = 8; dense 8*2+2 = 18.
    expect(summary.outputShapes).toEqual([[4, 4, 2], [2, 2, 2], [8], [8], [2]]);
    expect(summary.parametersPerLayer).toEqual([3 * 3 * 1 * 2 + 2, 0, 0, 0, 18]);
    expect(summary.parameters).toBe(20 + 18);
  });

  it("keeps the size with 'same' padding, as torch's padding k // 2 does", () => {
    const spec: ModelSpec = {
      input: [5, 5, 3],
      classes: 2,
      layers: [
        { type: 'conv2d', filters: 4, kernel: 3, padding: 'same' },
        { type: 'flatten' },
        { type: 'dense', units: 2 },
      ],
    };
    expect(summarizeModelSpec(validateModelSpec(spec)).outputShapes[0]).toEqual([5, 5, 4]);
  });

  const mutate = (change: (spec: Record<string, unknown>) => void): unknown => {
    const spec = JSON.parse(JSON.stringify(TINY)) as Record<string, unknown>;
    change(spec);
    return spec;
  };
  const layers = (spec: Record<string, unknown>) => spec.layers as Record<string, unknown>[];

  it.each<[string, unknown]>([
    ['not an object', 42],
    ['null', null],
    ['missing input', mutate((s) => delete s.input)],
    ['2-D input', mutate((s) => (s.input = [6, 6]))],
    ['zero input side', mutate((s) => (s.input = [0, 6, 1]))],
    ['one class', mutate((s) => (s.classes = 1))],
    ['no layers', mutate((s) => (s.layers = []))],
    ['unknown top-level field', mutate((s) => (s.extra = 1))],
    ['unknown layer type', mutate((s) => layers(s).unshift({ type: 'batchnorm' }))],
    ['unknown layer field', mutate((s) => (layers(s)[0]!.filter = 3))],
    ['fractional filters', mutate((s) => (layers(s)[0]!.filters = 2.5))],
    ['string kernel', mutate((s) => (layers(s)[0]!.kernel = '3'))],
    ['kernel larger than input', mutate((s) => (layers(s)[0]!.kernel = 7))],
    ['bad padding', mutate((s) => (layers(s)[0]!.padding = 'full'))],
    [
      'same padding, even kernel',
      mutate((s) => Object.assign(layers(s)[0]!, { padding: 'same', kernel: 2 })),
    ],
    [
      'same padding, stride 2',
      mutate((s) => Object.assign(layers(s)[0]!, { padding: 'same', stride: 2 })),
    ],
    ['unknown activation', mutate((s) => (layers(s)[0]!.activation = 'tanh'))],
    ['hidden softmax', mutate((s) => (layers(s)[0]!.activation = 'softmax'))],
    ['pool larger than input', mutate((s) => (layers(s)[1]!.size = 5))],
    ['dropout rate 1', mutate((s) => (layers(s)[3]!.rate = 1))],
    ['dense without flatten', mutate((s) => layers(s).splice(2, 1))],
    [
      'conv after flatten',
      mutate((s) => layers(s).splice(3, 0, { type: 'conv2d', filters: 1, kernel: 1 })),
    ],
    ['last layer not dense', mutate((s) => layers(s).push({ type: 'dropout', rate: 0.1 }))],
    ['logits of the wrong width', mutate((s) => (layers(s)[4]!.units = 3))],
    ['softmax logits', mutate((s) => (layers(s)[4]!.activation = 'softmax'))],
    ['relu logits', mutate((s) => (layers(s)[4]!.activation = 'relu'))],
    [
      'absurd size',
      mutate((s) => Object.assign(layers(s)[4]!, { units: 60000 }) && (s.classes = 60000)),
    ],
  ])('refuses %s with CONFIG_INVALID', (_why, value) => {
    expect(configInvalid(value)).toBe(true);
  });

  it('refuses a model over the parameter cap', () => {
    const huge = {
      input: [1024, 1024, 3],
      classes: 10,
      layers: [{ type: 'flatten' }, { type: 'dense', units: 100 }, { type: 'dense', units: 10 }],
    };
    expect(configInvalid(huge)).toBe(true);
  });
});

describe('registry', () => {
  it('has valid mnist and cifar10 specs of the documented sizes', () => {
    expect(TASK_NAMES).toEqual(expect.arrayContaining(['mnist', 'cifar10']));
    const mnist = getModelSpec('mnist');
    expect(mnist.input).toEqual([28, 28, 1]);
    expect(mnist.classes).toBe(10);
    expect(summarizeModelSpec(mnist).parameters).toBeLessThan(50_000);
    const cifar = getModelSpec('cifar10');
    expect(cifar.input).toEqual([32, 32, 3]);
    const params = summarizeModelSpec(cifar).parameters;
    expect(params).toBeGreaterThan(100_000);
    expect(params).toBeLessThan(300_000);
  });

  it('returns mutable copies while the registry itself stays frozen', () => {
    const copy = getModelSpec('mnist');
    copy.layers.pop();
    expect(getModelSpec('mnist').layers.length).toBe(MODEL_SPECS.mnist.layers.length);
    expect(Object.isFrozen(MODEL_SPECS.mnist.layers[0])).toBe(true);
  });

  it('refuses unknown tasks', () => {
    expect(isTaskName('mnist')).toBe(true);
    expect(isTaskName('toString')).toBe(false);
    expect(() => getModelSpec('imagenet')).toThrow(/CONFIG_INVALID/);
  });
});

describe('canonicalJson and specHash', () => {
  it('sorts keys at every depth and drops undefined properties', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 'x', c: null }], e: undefined })).toBe(
      '{"a":[{"c":null,"d":"x"}],"b":1}',
    );
  });

  it('refuses values JSON would silently change', () => {
    expect(() => canonicalJson({ a: Number.NaN })).toThrow(/CONFIG_INVALID/);
    expect(() => canonicalJson([undefined])).toThrow(/CONFIG_INVALID/);
    expect(() => canonicalJson(new Float32Array(2))).toThrow(/CONFIG_INVALID/);
  });

  it('hashes equal specs equal regardless of key order, different specs differently', async () => {
    const reordered = JSON.parse(
      '{"layers":[{"activation":"relu","kernel":3,"filters":2,"type":"conv2d"},{"size":2,"type":"maxpool"},{"type":"flatten"},{"rate":0.5,"type":"dropout"},{"units":2,"type":"dense"}],"classes":2,"input":[6,6,1]}',
    ) as ModelSpec;
    const hash = await specHash(TINY);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(await specHash(reordered)).toBe(hash);
    expect(await specHash(getModelSpec('mnist'))).not.toBe(hash);
  });
});
