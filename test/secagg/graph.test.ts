import { buildNeighbourGraph, graphSeed } from '../../shared/secagg';

const ids = Array.from({ length: 30 }, (_, i) => i.toString(16).padStart(32, '0'));
const seed = graphSeed(new Uint8Array(32).fill(1));

describe('neighbour graph', () => {
  it('is complete when k >= n - 1', () => {
    const graph = buildNeighbourGraph(ids.slice(0, 6), 5, seed);
    expect(graph.complete).toBe(true);
    expect(graph.neighboursOf(ids[2]!)).toEqual(ids.slice(0, 6).filter((id) => id !== ids[2]));
    expect(graph.holdersOf(ids[2]!)).toEqual(ids.slice(0, 6));
  });

  it('is a symmetric, exactly k-regular graph for k < n - 1, the same for everyone with the seed', () => {
    const graph = buildNeighbourGraph(ids, 6, seed);
    expect(graph.complete).toBe(false);
    for (const id of ids) {
      const neighbours = graph.neighboursOf(id);
      expect(neighbours).toHaveLength(6);
      expect(new Set(neighbours).size).toBe(6);
      expect(neighbours).not.toContain(id);
      for (const other of neighbours) expect(graph.neighboursOf(other)).toContain(id);
      expect(graph.holdersOf(id)).toEqual([...neighbours, id].sort());
    }
    const again = buildNeighbourGraph([...ids], 6, graphSeed(new Uint8Array(32).fill(1)));
    for (const id of ids) expect(again.neighboursOf(id)).toEqual(graph.neighboursOf(id));
    // Another round view gives another graph.
    const other = buildNeighbourGraph(ids, 6, graphSeed(new Uint8Array(32).fill(2)));
    expect(ids.some((id) => other.neighboursOf(id).join() !== graph.neighboursOf(id).join())).toBe(
      true,
    );
  });

  it('refuses odd k, unsorted lists and unknown ids', () => {
    expect(() => buildNeighbourGraph(ids, 5, seed)).toThrow(/CONFIG_UNSAFE/);
    expect(() => buildNeighbourGraph([ids[1]!, ids[0]!, ids[2]!], 2, seed)).toThrow(
      /MESSAGE_INVALID/,
    );
    expect(() => buildNeighbourGraph([ids[0]!, ids[0]!, ids[2]!], 2, seed)).toThrow(
      /MESSAGE_INVALID/,
    );
    expect(() => buildNeighbourGraph(ids, 4, seed).neighboursOf('f'.repeat(32))).toThrow(
      /SECAGG_INCONSISTENT/,
    );
  });

  it('derives its seed from the round view hash alone', () => {
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    expect(hex(graphSeed(new Uint8Array(32).fill(1)))).toBe(hex(seed));
    const other = new Uint8Array(32).fill(1);
    other[31] = 0;
    expect(hex(graphSeed(other))).not.toBe(hex(seed));
  });
});
