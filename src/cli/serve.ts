/**
 * The foreground life of a server command (`local-kms`, `xks-proxy`): runs until SIGINT or
 * SIGTERM, then closes the server (open connections ended, tokens and data directory released)
 * before the command returns its exit status.
 */
export function serveUntilSignal(server: { close(): Promise<void> }): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      // A failing close still ends the command: the process is exiting either way.
      server.close().then(resolve, resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
