/**
 * Runs a task every few seconds while the page is visible (home.js asks for prompts every 3 s: this is
 * how a device without notifications gets them). One run at a time; a hidden page stops asking and asks
 * again as soon as it is shown; `now()` runs it at once (a push message arrived).
 */
export function poll(task, everyMs) {
  let timer = null;
  let running = false;
  let stopped = false;

  async function tick() {
    clearTimeout(timer);
    timer = null;
    if (stopped || running || document.visibilityState !== 'visible') return;
    running = true;
    try {
      await task();
    } catch {
      // The task shows its own errors; the next tick tries again.
    } finally {
      running = false;
    }
    if (!stopped && document.visibilityState === 'visible') timer = setTimeout(tick, everyMs);
  }

  const onVisibility = () => {
    if (document.visibilityState === 'visible') tick();
  };
  document.addEventListener('visibilitychange', onVisibility);
  tick();
  return {
    now: tick,
    stop() {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    },
  };
}
