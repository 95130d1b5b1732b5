// Bench helper processes (upstream, generator) end when the bench that started them is gone,
// even if it was killed without a chance to clean up.
export function exitWithParent(): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 500).unref();
}
