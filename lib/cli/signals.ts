// Resolves with the first SIGINT or SIGTERM received.
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGINT', on); process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on); process.on('SIGTERM', on);
  });
}
