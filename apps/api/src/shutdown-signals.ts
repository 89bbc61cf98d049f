/**
 * SIGINT/SIGTERM handling from the very first moment of the process. main.ts imports this
 * module before anything else (loading the framework takes most of a second, and a signal in
 * that window would otherwise kill the process with the default action). A signal that comes
 * before main.ts installs its handler is remembered and handed over then.
 */
type SignalHandler = (signal: NodeJS.Signals) => void;

let handler: SignalHandler | undefined;
let pending: NodeJS.Signals[] = [];

const dispatch = (signal: NodeJS.Signals): void => {
  if (handler) handler(signal);
  else pending.push(signal);
};
process.on('SIGINT', dispatch);
process.on('SIGTERM', dispatch);

/** Installs the real handler; signals received so far are delivered to it at once, in order. */
export function onShutdownSignal(fn: SignalHandler): void {
  handler = fn;
  const early = pending;
  pending = [];
  for (const signal of early) fn(signal);
}
