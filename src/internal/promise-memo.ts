/**
 * Remembers one promise per key, at most `size` of them (the oldest is dropped first). A promise
 * that rejects is forgotten, so the next call tries again instead of replaying the failure.
 */
export function promiseMemo<T>(size: number): (key: string, make: () => Promise<T>) => Promise<T> {
  const memo = new Map<string, Promise<T>>();
  return (key, make) => {
    let hit = memo.get(key);
    if (!hit) {
      hit = make();
      memo.set(key, hit);
      hit.catch(() => memo.delete(key));
      if (memo.size > size) memo.delete(memo.keys().next().value as string);
    }
    return hit;
  };
}
