/**
 * A promise's value, or null once `ms` have passed without it. The timer is cleared as soon as
 * the race is decided: left running, it would keep a process that is done with the promise alive
 * until it fired.
 */
export async function raceTimeout<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
