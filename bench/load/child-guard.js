'use strict';
// Shared by every forked load generator: receive the one job message, exit when the harness goes
// away (IPC closed) or after the job's hard limit, and report the result or the error over IPC.

/**
 * Runs `job(message, progress)` for the first message from the parent. The process exits when the
 * parent disconnects, and in any case after message.hardLimitMs (default 120 s).
 */
function runJob(job) {
  process.on('disconnect', () => process.exit(0));
  process.once('message', (message) => {
    const limit = setTimeout(() => {
      process.stderr.write(`hard limit of ${message.hardLimitMs ?? 120_000} ms reached\n`);
      process.exit(3);
    }, message.hardLimitMs ?? 120_000);
    limit.unref();
    const progress = (data) => process.send?.({ type: 'progress', data });
    Promise.resolve()
      .then(() => job(message, progress))
      .then(
        (data) => process.send({ type: 'result', data }, () => process.exit(0)),
        (err) => process.send({ type: 'error', message: err?.stack ?? String(err) }, () => process.exit(1)),
      );
  });
}

module.exports = { runJob };
