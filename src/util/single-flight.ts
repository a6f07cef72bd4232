// Single flight: callers that ask for the same thing while it is being made share one run and its
// result (or its error). Nothing is cached: the key is forgotten as soon as the run settles, so the
// next caller starts a fresh run and never gets data older than its own call.

/** A function that runs `make` for a key unless a run for that key is under way, whose promise it then returns. */
export type SingleFlight<T> = (key: string, make: () => Promise<T>) => Promise<T>;

export function singleFlight<T>(): SingleFlight<T> {
  const running = new Map<string, Promise<T>>();
  return (key, make) => {
    const current = running.get(key);
    if (current) return current;
    const run = make().finally(() => {
      if (running.get(key) === run) running.delete(key);
    });
    running.set(key, run);
    return run;
  };
}
